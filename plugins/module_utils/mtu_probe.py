# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Path MTU proof on the wire: the search, the classification and ping's output.

Pure Python: nothing here imports ``ansible``.  The ``zerotrust.cilium.mtu_probe`` module
runs ping on a node and hands each result to this file; tests drive the search with a
fake network instead.

Sizes are IP packet sizes (what an MTU limits): an IPv4 echo request of ``size`` bytes
carries ``size - 28`` bytes of ICMP payload (20 IPv4 + 8 ICMP), an IPv6 one
``size - 48`` (40 + 8).  That is the number ``ping -s`` takes.

The search (``probe_path``) gets a callable ``send(size)`` that sends one don't-fragment
echo request of ``size`` bytes and returns a ``ProbeOutcome``:

* ``answer``  an echo reply came back;
* ``refused`` the packet was refused with a PMTU error: the local kernel's EMSGSIZE
  ("message too long, mtu=N") or an ICMP "fragmentation needed" / ICMPv6 "packet too
  big" from a router on the way.  The sender then knows the path MTU;
* ``timeout`` nothing came back, no error either;
* ``error``   another error (host or network unreachable, administratively prohibited,
  ``connect: Network is unreachable``...).

It probes the expected size first (one probe when the path is fine), then the family
minimum, then bisects between the largest size that was answered and the smallest that was
not.  A size that times out is tried again ``retries`` times before it counts as lost, so
one dropped packet does not make a black hole.  The path is then classified by what
happens to the first size above the largest answered one:

* ``ok``              the expected size gets an answer;
* ``refused_locally`` it is refused with a PMTU error: nothing is lost silently;
* ``black_hole``      it leaves and nothing comes back while smaller packets do: what
                      dropped fragments or dropped "frag needed" messages look like;
* ``unreachable``     even the smallest packet gets no answer, or the first size that
                      fails gets an error other than a PMTU one.

The bisection assumes that every size up to the path MTU passes and none above does,
which is how MTUs work; ``probes`` in the result lists every size tried, so a path that
does not behave that way can be seen.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.zerotrust.cilium.plugins.module_utils import checks
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

MODULE_NAME = "mtu_probe"

FAMILIES = ("ipv4", "ipv6")
# Smallest MTU a link may have: 68 for IPv4 (RFC 791), 1280 for IPv6 (RFC 8200).
FAMILY_MINIMUM = {"ipv4": 68, "ipv6": 1280}
# IP + ICMP echo header in front of ping's payload.
ECHO_OVERHEAD = {"ipv4": 28, "ipv6": 48}
# Largest IP packet: the 16-bit total length (IPv4) or payload length plus header (IPv6).
FAMILY_MAXIMUM = {"ipv4": 65535, "ipv6": 65575}

ANSWER = "answer"
REFUSED = "refused"
TIMEOUT = "timeout"
ERROR = "error"
OUTCOMES = (ANSWER, REFUSED, TIMEOUT, ERROR)

OK = "ok"
REFUSED_LOCALLY = "refused_locally"
BLACK_HOLE = "black_hole"
UNREACHABLE = "unreachable"
STATUSES = (OK, REFUSED_LOCALLY, BLACK_HOLE, UNREACHABLE)


class ProbeOutcome:
    """What happened to one probe.

    ``kind`` is one of ``OUTCOMES``; ``mtu`` is the MTU a PMTU error reported (or None);
    ``source`` is ``local`` for the sender's own kernel, the router's address for an ICMP
    error, None otherwise; ``detail`` is the line of ping's output the outcome was read from.
    """

    def __init__(self, kind, mtu=None, source=None, detail=""):
        if kind not in OUTCOMES:
            raise ValueError("unknown probe outcome %r" % (kind,))
        self.kind = kind
        self.mtu = mtu
        self.source = source
        self.detail = detail

    def as_dict(self):
        return {"outcome": self.kind, "reported_mtu": self.mtu, "source": self.source, "detail": self.detail}

    def __eq__(self, other):
        return isinstance(other, ProbeOutcome) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "ProbeOutcome(%r, mtu=%r, source=%r, detail=%r)" % (self.kind, self.mtu, self.source, self.detail)


# --------------------------------------------------------------------------------------
# Sizes and inputs
# --------------------------------------------------------------------------------------

def payload_size(size, family):
    """``ping -s`` value that makes an echo request of ``size`` bytes (IP header included)."""
    return size - ECHO_OVERHEAD[family]


def address_family(address):
    """``ipv4`` or ``ipv6`` for an IP address literal, None for anything else (a name)."""
    try:
        parsed = ipaddress.ip_address(u"%s" % address)
    except ValueError:
        return None
    return "ipv4" if parsed.version == 4 else "ipv6"


def validate_expected_mtu(value, family, where=MODULE_NAME):
    """The expected MTU as an int within what ``family`` can carry."""
    mtu = checks.whole_number(where, "expected_mtu", value)
    low, high = FAMILY_MINIMUM[family], FAMILY_MAXIMUM[family]
    if mtu < low or mtu > high:
        raise InvalidInput(
            "expected_mtu", value,
            "is out of range for %s: give the MTU the sender uses, %d to %d" % (family, low, high),
            where=where)
    return mtu


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$")


def normalise_targets(targets, where=MODULE_NAME):
    """``[{name, address}]`` from a list of addresses or of ``{name, address}`` mappings.

    A plain address is its own name.  Addresses are IP literals or host names; names must be
    unique so results can be told apart.
    """
    if not isinstance(targets, list) or not targets:
        raise InvalidInput("targets", targets, "must be a non-empty list of addresses or of "
                           "{name, address} mappings", where=where)
    normalised = []
    for index, target in enumerate(targets):
        field = "targets[%d]" % index
        if isinstance(target, dict):
            unknown = sorted(set(target) - {"name", "address"})
            if unknown:
                raise InvalidInput(field, target, "has unknown keys %s; accepted: name, address"
                                   % ", ".join(unknown), where=where)
            address = target.get("address")
            name = target.get("name", address)
        else:
            address, name = target, target
        if not isinstance(address, str) or not address.strip():
            raise InvalidInput(field, target, "has no address (an IP address or a host name)", where=where)
        address = address.strip()
        if address_family(address) is None and not _HOSTNAME.match(address):
            raise InvalidInput(field, target, "is neither an IP address nor a host name", where=where)
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(field, target, "has an empty name", where=where)
        normalised.append({"name": name.strip(), "address": address})
    names = [target["name"] for target in normalised]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidInput("targets", duplicates, "are named more than once; give each target its own name",
                           where=where)
    return normalised


# --------------------------------------------------------------------------------------
# ping output
# --------------------------------------------------------------------------------------

# iputils: "ping: local error: message too long, mtu=1450" (IPv4, 2021 and later),
# "ping: local error: Message too long, mtu=1450" (20180629 as on RHEL 8),
# "ping: local error: message too long, mtu: 1280" (IPv6 in ping6_common.c).
_LOCAL_EMSGSIZE = re.compile(r"local error: message too long,\s*mtu\s*[=:]\s*(\d+)", re.IGNORECASE)
# iputils when sendmsg() itself fails and the error queue is empty; older tools say sendto.
_SEND_EMSGSIZE = re.compile(r"(?:sendmsg|sendto)(?:\(\))?: message too long", re.IGNORECASE)
# "From 10.42.11.1 icmp_seq=1 Frag needed and DF set (mtu = 1450)" (IPv4),
# "From 2001:db8::1 icmp_seq=1 Packet too big: mtu=1400" (IPv6); with -n no name in front.
_FROM_LINE = re.compile(r"^From\s+(\S+?)(?:\s+\(([^)]*)\))?:?\s+icmp_seq=\d+\s+(.*)$", re.IGNORECASE)
_PMTU_ERROR = re.compile(r"(?:frag(?:mentation)? needed.*?|packet too big.*?)mtu\s*[=:]\s*(\d+)", re.IGNORECASE)
_REPLY = re.compile(r"^\d+ bytes from ", re.IGNORECASE)
_RECEIVED = re.compile(r"(\d+)\s+(?:packets\s+)?received", re.IGNORECASE)
_OTHER_PING_ERROR = re.compile(r"^ping6?:\s+(.*)$", re.IGNORECASE)


def parse_ping(returncode, stdout, stderr):
    """Turn one ``ping -c 1`` run of iputils into a ``ProbeOutcome``.

    Handles the wording of iputils 20180629 (RHEL 8), 20210202 (RHEL 9), 20211215 (Ubuntu
    22.04), 20221126 (Debian 12) and 20240117 (Ubuntu 24.04).  busybox and GNU inetutils
    ping cannot set the don't-fragment bit at all; the module refuses them before probing.
    """
    lines = [line.strip() for line in (stdout or "").splitlines() + (stderr or "").splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if _REPLY.match(line):
            return ProbeOutcome(ANSWER, detail=line)
    for line in lines:
        match = _LOCAL_EMSGSIZE.search(line)
        if match:
            return ProbeOutcome(REFUSED, mtu=int(match.group(1)), source="local", detail=line)
        if _SEND_EMSGSIZE.search(line):
            return ProbeOutcome(REFUSED, source="local", detail=line)
    for line in lines:
        match = _FROM_LINE.match(line)
        if not match:
            continue
        router = match.group(2) or match.group(1)
        message = match.group(3)
        pmtu = _PMTU_ERROR.search(message)
        if pmtu:
            return ProbeOutcome(REFUSED, mtu=int(pmtu.group(1)), source=router.rstrip(":"), detail=line)
        return ProbeOutcome(ERROR, source=router.rstrip(":"), detail=line)
    for line in lines:
        match = _RECEIVED.search(line)
        if match and int(match.group(1)) > 0 and returncode == 0:
            return ProbeOutcome(ANSWER, detail=line)
    for line in lines:
        match = _OTHER_PING_ERROR.match(line)
        if match:
            return ProbeOutcome(ERROR, source="local", detail=line)
    if returncode == 1:
        summary = [line for line in lines if _RECEIVED.search(line)]
        return ProbeOutcome(TIMEOUT, detail=summary[0] if summary else "no reply")
    if returncode == 0:
        return ProbeOutcome(ANSWER, detail=lines[-1] if lines else "exit status 0")
    return ProbeOutcome(ERROR, detail=(lines[-1] if lines else "exit status %d" % returncode))


def ping_flavour(version_output):
    """``iputils``, ``busybox``, ``inetutils`` or ``unknown`` from ``ping -V`` output."""
    text = (version_output or "").lower()
    if "iputils" in text:
        return "iputils"
    if "busybox" in text:
        return "busybox"
    if "inetutils" in text:
        return "inetutils"
    return "unknown"


def ping_command(address, size, family, timeout, netns=None):
    """argv of one don't-fragment echo request of ``size`` bytes (IP header included).

    ``-n``: no reverse lookups (they would cost seconds); ``-M do``: set DF and never
    fragment locally; ``-c 1 -W timeout``: one request, wait ``timeout`` seconds.
    """
    timeout_text = ("%g" % timeout) if isinstance(timeout, float) else str(timeout)
    argv = ["ping", "-4" if family == "ipv4" else "-6", "-n", "-M", "do", "-c", "1", "-W", timeout_text,
            "-s", str(payload_size(size, family)), address]
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    return argv


# --------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------

def probe_path(send, expected_mtu, family="ipv4", retries=1, minimum=None):
    """Find the largest don't-fragment size that gets an answer and classify the path.

    ``send(size)`` sends one probe of ``size`` bytes and returns a ``ProbeOutcome``.
    Returns a dict: ``status``, ``expected_mtu``, ``path_mtu`` (largest size answered, None
    when nothing was), ``black_hole_from`` (first size lost silently, for ``black_hole``),
    ``refused_from`` and ``reported_mtu``/``refused_by`` (for ``refused_locally``),
    ``fix_mtu`` (the MTU that would make the path work: ``path_mtu`` when the status is
    not ``ok``), ``failed_outcome`` and ``probes`` (every size sent, in order).
    """
    family = checks.choice(MODULE_NAME, "family", family, FAMILIES)
    expected_mtu = validate_expected_mtu(expected_mtu, family)
    retries = checks.whole_number(MODULE_NAME, "retries", retries, minimum=0)
    if minimum is None:
        minimum = FAMILY_MINIMUM[family]
    minimum = min(minimum, expected_mtu)

    probes = []
    known = {}

    def outcome_of(size):
        if size in known:
            return known[size]
        outcome = None
        for _attempt in range(retries + 1):
            outcome = send(size)
            if not isinstance(outcome, ProbeOutcome):
                raise TypeError("send(%d) returned %r, not a ProbeOutcome" % (size, outcome))
            entry = dict(outcome.as_dict(), size=size, payload=payload_size(size, family))
            probes.append(entry)
            if outcome.kind != TIMEOUT:
                break
        known[size] = outcome
        return outcome

    result = {
        "expected_mtu": expected_mtu,
        "family": family,
        "path_mtu": None,
        "black_hole_from": None,
        "refused_from": None,
        "reported_mtu": None,
        "refused_by": None,
        "fix_mtu": None,
        "failed_outcome": None,
        "probes": probes,
    }

    top = outcome_of(expected_mtu)
    if top.kind == ANSWER:
        result.update(status=OK, path_mtu=expected_mtu)
        return result

    bottom = outcome_of(minimum)
    if bottom.kind != ANSWER:
        result.update(status=UNREACHABLE, failed_outcome=bottom.as_dict())
        return result

    # Invariant: ``low`` was answered, ``high`` was not.  PMTU errors name the MTU they
    # expect: try it and the byte after it first, which usually ends the search at once.
    low, high = minimum, expected_mtu
    hints = []
    if top.kind == REFUSED and top.mtu:
        hints = [top.mtu, top.mtu + 1]
    while high - low > 1:
        candidates = [size for size in hints if low < size < high]
        size = candidates[0] if candidates else (low + high) // 2
        if size in hints:
            hints.remove(size)
        outcome = outcome_of(size)
        if outcome.kind == ANSWER:
            low = size
        else:
            high = size
            if outcome.kind == REFUSED and outcome.mtu:
                hints = [outcome.mtu, outcome.mtu + 1] + hints

    boundary = known[high]
    result.update(path_mtu=low, fix_mtu=low, failed_outcome=boundary.as_dict())
    if boundary.kind == TIMEOUT:
        result.update(status=BLACK_HOLE, black_hole_from=high)
    elif boundary.kind == REFUSED:
        result.update(status=REFUSED_LOCALLY, refused_from=high, reported_mtu=boundary.mtu,
                      refused_by=boundary.source)
    else:
        result.update(status=UNREACHABLE)
    return result


def describe(result):
    """One sentence about a classified path, for tables and failure messages."""
    status = result["status"]
    if status == OK:
        return "%d-byte DF packets get an answer" % result["expected_mtu"]
    if status == BLACK_HOLE:
        return ("DF packets from %d bytes are lost silently (black hole); %d gets through; "
                "an MTU of %d fixes it" % (result["black_hole_from"], result["path_mtu"], result["fix_mtu"]))
    if status == REFUSED_LOCALLY:
        who = "the local kernel" if result["refused_by"] == "local" else (result["refused_by"] or "the path")
        reported = (" (mtu=%d)" % result["reported_mtu"]) if result["reported_mtu"] else ""
        return ("DF packets from %d bytes are refused by %s%s; path MTU %d is known to the sender, "
                "nothing is lost silently" % (result["refused_from"], who, reported, result["path_mtu"]))
    failed = result.get("failed_outcome") or {}
    detail = failed.get("detail") or failed.get("outcome") or "no answer"
    if result["path_mtu"] is None:
        return "no answer even to a %d-byte probe: %s" % (
            min(FAMILY_MINIMUM[result["family"]], result["expected_mtu"]), detail)
    return "DF packets from %d bytes fail: %s" % (result["path_mtu"] + 1, detail)


def summarise(results):
    """Counts per status and the smallest path MTU over ``results`` (None when none answered)."""
    counts = dict((status, 0) for status in STATUSES)
    for result in results:
        counts[result["status"]] += 1
    path_mtus = [result["path_mtu"] for result in results if result["path_mtu"] is not None]
    return counts, (min(path_mtus) if path_mtus else None)
