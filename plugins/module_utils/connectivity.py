# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connectivity truth table: probes, what they observed and how that compares with the plan.

Nothing here imports ``ansible``.  The ``zerotrust.cilium.connectivity_check`` module and
the ``zerotrust.cilium.connectivity_probes`` filter are thin wrappers around this file.

A probe goes from a source (``from``, a label such as ``production/frontend``) to an
address (``to`` names the destination) over one of ``tcp``, ``udp``, ``http`` (a method
and path, for L7 flows), ``dns`` (a lookup of ``query`` at a DNS server) or ``icmp`` (one
echo request), and says whether the plan expects it ``allowed`` or ``denied``.

What a probe observes, whoever ran it (``run_probes`` here with sockets and ``ping``, or
the probe pod's tools whose output ``classify_exec`` reads):

* ``allowed``      tcp connected, udp got a reply, http got an HTTP response other than
                   an L7 deny, dns got an answer (NOERROR, NXDOMAIN or another rcode that
                   is not REFUSED), icmp got an echo reply;
* ``l7_denied``    http 403 whose body is Envoy's ``Access denied`` (Cilium's L7 deny), or
                   a DNS answer REFUSED (Cilium's DNS proxy deny); compared as denied;
* ``denied``       nothing came back before the timeout: Cilium drops denied packets
                   silently;
* ``no_listener``  TCP RST or ICMP port unreachable (ECONNREFUSED): the packet got through
                   and nothing listens on the port;
* ``error``        anything else (no route, unexpected tool output, a missing tool).

``compare_results`` turns observations into a result per probe with a ``kind``: ``ok``,
``blocked`` (expected allowed but blocked), ``open`` (expected denied but open; a
connection refused by the destination counts as open, since the packet got through) or
``probe_error`` (the network path cannot be judged: an error, or an allowed flow whose
destination does not listen).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import http.client
import ipaddress
import json
import math
import os
import random
import re
import socket
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.zerotrust.cilium.plugins.module_utils import checks
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError, InvalidInput, InvalidInputs, raise_problems
from ansible_collections.zerotrust.cilium.plugins.module_utils.mtu_probe import ANSWER, TIMEOUT, parse_ping

MODULE_NAME = "connectivity_check"
FILTER_NAME = "connectivity_probes"

MODES = ("probe", "commands", "compare")
PROTOCOLS = ("tcp", "udp", "http", "dns", "icmp")
EXPECTATIONS = ("allowed", "denied")
# HEAD is left out on purpose: its 403 has no body, so Cilium's L7 deny cannot be told
# from the application's own 403, and ``curl -X HEAD`` waits for a body that never comes.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

ALLOWED = "allowed"
DENIED = "denied"
L7_DENIED = "l7_denied"
NO_LISTENER = "no_listener"
ERROR = "error"
OBSERVATIONS = (ALLOWED, L7_DENIED, DENIED, NO_LISTENER, ERROR)

OK = "ok"
BLOCKED = "blocked"
OPEN = "open"
PROBE_ERROR = "probe_error"
KINDS = (OK, BLOCKED, OPEN, PROBE_ERROR)

DEFAULT_TIMEOUT = 2.0
MIN_TIMEOUT = 0.1
MAX_TIMEOUT = 30.0
DEFAULT_DNS_PORT = 53
DEFAULT_HTTP_METHOD = "GET"
DEFAULT_HTTP_PATH = "/"
DEFAULT_DNS_QUERY = "kubernetes.default.svc.cluster.local"
# What ``agnhost netexec --udp-port`` answers (with the pod's host name).
UDP_PAYLOAD = b"hostname\n"
# The body Cilium's Envoy sends with a 403 when an L7 rule denies a request.
ENVOY_DENY_BODY = "Access denied"
MAX_PARALLEL = 16
NETNS_DIR = "/var/run/netns"
CLONE_NEWNET = 0x40000000
PING_PACKAGES = "iputils-ping on Debian and Ubuntu, iputils on RHEL, Fedora and SUSE"

PROBE_KEYS = ("name", "from", "to", "address", "protocol", "port", "method", "path", "query", "expected", "flow")
SERVICE_KEYS = ("protocol", "port", "method", "path", "query", "flow")
EXEC_RESULT_KEYS = ("name", "rc", "stdout", "stderr")

_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$")
# Visible ASCII without "#" (curl would not send a fragment): no spaces or control characters.
_HTTP_PATH = re.compile(r'^/[!-"$-~]*$')
_NUMBER_TEXT = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


class ProbeSetupError(CollectionError):
    """The host cannot run the probes (a missing tool, a namespace it cannot enter)."""


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------

def _checked(problems, function, *args, **kwargs):
    """``function(...)``, or None with its InvalidInput(s) added to ``problems``."""
    try:
        return function(*args, **kwargs)
    except InvalidInputs as err:
        problems.extend(err.problems)
    except InvalidInput as err:
        problems.append(err)
    return None


def _given(value):
    """None and blank strings count as not given (Ansible fills unset sub-options with None)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def validate_timeout(value, where=MODULE_NAME):
    """Seconds per probe as a float, 0.1 to 30."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _NUMBER_TEXT.match(value):
        number = float(value)
    if number is None or math.isnan(number):
        raise InvalidInput("timeout", value, "is not a number of seconds such as 2 or 0.5", where=where)
    if number < MIN_TIMEOUT or number > MAX_TIMEOUT:
        raise InvalidInput("timeout", value, "is out of range: give %g to %g seconds" % (MIN_TIMEOUT, MAX_TIMEOUT),
                           where=where)
    return number


def validate_netns(value, where=MODULE_NAME):
    """A network namespace name as ``ip netns list`` shows it (not a path)."""
    if not isinstance(value, str) or not value or "/" in value or value in (".", "..") or "\0" in value:
        raise InvalidInput("netns", value, "is not a network namespace name (a name listed by ip netns list)",
                           where=where)
    return value


def _label_field(field, value, what, where, problems):
    if not _given(value):
        problems.append(InvalidInput(field, value, "is missing: give %s" % what, where=where))
        return None
    if not isinstance(value, str):
        problems.append(InvalidInput(field, value, "is not a string: give %s" % what, where=where))
        return None
    value = value.strip()
    if "|" in value or "\n" in value:
        problems.append(InvalidInput(field, value, "must not contain '|' or a line break", where=where))
        return None
    return value


def _address_field(field, value, where, problems):
    what = "an IPv4 or IPv6 address such as 10.42.1.10 or fd00::10"
    if not _given(value):
        problems.append(InvalidInput(field, value, "is missing: give %s" % what, where=where))
        return None
    try:
        if not isinstance(value, str) or "%" in value:
            raise ValueError(value)
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        problems.append(InvalidInput(field, value, "is not %s (host names and zone ids are not accepted)" % what,
                                     where=where))
        return None


def _choice_field(field, value, accepted, where, problems):
    try:
        return checks.choice(where, field, value, accepted)
    except InvalidInput as err:
        problems.append(err)
        return None


def _service_fields(entry, prefix, where, problems):
    """protocol, port, method, path, query of a probe or a service, checked together."""
    protocol = _choice_field(prefix + "protocol", entry.get("protocol"), PROTOCOLS, where, problems)
    normalised = {"protocol": protocol, "port": None, "method": None, "path": None, "query": None}
    if protocol is None:
        return normalised
    port = entry.get("port")
    if protocol == "icmp":
        if _given(port):
            problems.append(InvalidInput(prefix + "port", port, "is not accepted for protocol icmp (ICMP has no ports)",
                                         where=where))
    elif not _given(port) and protocol == "dns":
        normalised["port"] = DEFAULT_DNS_PORT
    elif not _given(port):
        problems.append(InvalidInput(prefix + "port", port, "is missing: protocol %s needs a port, 1 to 65535"
                                     % protocol, where=where))
    else:
        try:
            normalised["port"] = checks.whole_number(where, prefix + "port", port, minimum=1, maximum=65535)
        except InvalidInput as err:
            problems.append(err)
    for key, owner in (("method", "http"), ("path", "http"), ("query", "dns")):
        if protocol != owner and _given(entry.get(key)):
            problems.append(InvalidInput(prefix + key, entry.get(key), "is only accepted for protocol %s (this probe is %s)"
                                         % (owner, protocol), where=where))
    if protocol == "http":
        method = entry.get("method") if _given(entry.get("method")) else DEFAULT_HTTP_METHOD
        normalised["method"] = _choice_field(prefix + "method", method, HTTP_METHODS, where, problems)
        path = entry.get("path") if _given(entry.get("path")) else DEFAULT_HTTP_PATH
        if not isinstance(path, str) or not _HTTP_PATH.match(path):
            problems.append(InvalidInput(prefix + "path", path, "is not a URL path: it must start with / and hold no "
                                         "spaces, control characters or #", where=where))
        else:
            normalised["path"] = path
    if protocol == "dns":
        query = entry.get("query") if _given(entry.get("query")) else DEFAULT_DNS_QUERY
        if not isinstance(query, str) or not _HOSTNAME.match(query.strip()):
            problems.append(InvalidInput(prefix + "query", query, "is not a DNS name such as "
                                         "kubernetes.default.svc.cluster.local", where=where))
        else:
            normalised["query"] = query.strip()
    return normalised


def _flow_field(field, value, where, problems):
    if not _given(value):
        return None
    if not isinstance(value, str):
        problems.append(InvalidInput(field, value, "is not a string (the name of the flow this probe proves)",
                                     where=where))
        return None
    return value.strip()


def _unknown_keys(entry, accepted):
    return sorted(str(key) for key in entry if key not in accepted)


def probe_label(probe):
    """``FROM -> TO PROTOCOL/PORT[ METHOD PATH]`` (``[ QUERY]`` for dns): the default name."""
    service = probe["protocol"] if probe["port"] is None else "%s/%d" % (probe["protocol"], probe["port"])
    if probe["protocol"] == "http":
        service += " %s %s" % (probe["method"], probe["path"])
    elif probe["protocol"] == "dns":
        service += " %s" % probe["query"]
    return "%s -> %s %s" % (probe["from"], probe["to"], service)


def normalise_probes(probes, where=MODULE_NAME):
    """Every probe with all keys of ``PROBE_KEYS`` set (None where they do not apply).

    Every problem of every probe is reported at once.  Names default to ``probe_label``
    and must be unique.
    """
    if not isinstance(probes, list) or not probes:
        raise InvalidInput("probes", probes, "must be a non-empty list of probes ({from, to, address, protocol, "
                           "expected} and port, method, path, query, flow, name as needed)", where=where)
    problems = []
    normalised = []
    for index, probe in enumerate(probes):
        prefix = "probes[%d]." % index
        if not isinstance(probe, dict):
            problems.append(InvalidInput("probes[%d]" % index, probe, "is not a mapping with from, to, address, "
                                         "protocol and expected", where=where))
            continue
        unknown = _unknown_keys(probe, PROBE_KEYS)
        if unknown:
            problems.append(InvalidInput("probes[%d]" % index, unknown, "are unknown keys; accepted: %s"
                                         % ", ".join(PROBE_KEYS), where=where))
        before = len(problems)
        entry = {
            "from": _label_field(prefix + "from", probe.get("from"),
                                 "the source, e.g. production/frontend or a node name", where, problems),
            "to": _label_field(prefix + "to", probe.get("to"),
                               "the destination, e.g. production/api or a node name", where, problems),
            "address": _address_field(prefix + "address", probe.get("address"), where, problems),
        }
        entry.update(_service_fields(probe, prefix, where, problems))
        entry["expected"] = _choice_field(prefix + "expected", probe.get("expected"), EXPECTATIONS, where, problems)
        entry["flow"] = _flow_field(prefix + "flow", probe.get("flow"), where, problems)
        name = probe.get("name")
        if _given(name) and not isinstance(name, str):
            problems.append(InvalidInput(prefix + "name", name, "is not a string", where=where))
        if len(problems) > before:
            continue
        entry["name"] = name.strip() if _given(name) else probe_label(entry)
        normalised.append(dict((key, entry[key]) for key in PROBE_KEYS))
    raise_problems(problems, where)
    names = [probe["name"] for probe in normalised]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        raise InvalidInput("probes", duplicates, "name more than one probe; give each probe a name of its own "
                           "(the default name is FROM -> TO PROTOCOL/PORT with method and path, or query)",
                           where=where)
    return normalised


def normalise_exec_results(exec_results, probes, where=MODULE_NAME):
    """``{probe name: {rc, stdout, stderr}}``, one per probe and only for probes."""
    if not isinstance(exec_results, list):
        raise InvalidInput("exec_results", exec_results, "must be a list of {name, rc, stdout, stderr}, one per probe",
                           where=where)
    probe_names = [probe["name"] for probe in probes]
    problems = []
    by_name = {}
    for index, entry in enumerate(exec_results):
        field = "exec_results[%d]" % index
        if not isinstance(entry, dict):
            problems.append(InvalidInput(field, entry, "is not a mapping {name, rc, stdout, stderr}", where=where))
            continue
        unknown = _unknown_keys(entry, EXEC_RESULT_KEYS)
        if unknown:
            problems.append(InvalidInput(field, unknown, "are unknown keys; accepted: %s" % ", ".join(EXEC_RESULT_KEYS),
                                         where=where))
            continue
        name = entry.get("name")
        if name not in probe_names:
            problems.append(InvalidInput(field + ".name", name, "is not the name of a probe", where=where))
            continue
        if name in by_name:
            problems.append(InvalidInput(field + ".name", name, "has more than one result", where=where))
            continue
        try:
            rc = checks.whole_number(where, field + ".rc", entry.get("rc"))
        except InvalidInput as err:
            problems.append(err)
            continue
        outputs = {}
        for stream in ("stdout", "stderr"):
            text = entry.get(stream)
            if text is None:
                text = ""
            if not isinstance(text, str):
                problems.append(InvalidInput("%s.%s" % (field, stream), text, "is not a string", where=where))
            outputs[stream] = text
        by_name[name] = {"rc": rc, "stdout": outputs["stdout"], "stderr": outputs["stderr"]}
    missing = [name for name in probe_names if name not in by_name]
    if missing and not problems:
        problems.append(InvalidInput("exec_results", missing, "have no result: give one {name, rc, stdout, stderr} "
                                     "per probe", where=where))
    raise_problems(problems, where)
    return by_name


def validate_mode_options(mode, netns=None, exec_results=None, where=MODULE_NAME):
    """The mode, and the options that belong to another mode refused by name."""
    mode = checks.choice(where, "mode", mode, MODES)
    if netns is not None:
        if mode != "probe":
            raise InvalidInput("netns", netns, "is only used in mode probe (mode is %s)" % mode, where=where)
        validate_netns(netns, where=where)
    if mode == "compare" and exec_results is None:
        raise InvalidInput("exec_results", exec_results, "is missing: mode compare needs the {name, rc, stdout, "
                           "stderr} of each probe's command", where=where)
    if mode != "compare" and exec_results is not None:
        raise InvalidInput("exec_results", exec_results, "is only used in mode compare (mode is %s)" % mode,
                           where=where)
    return mode


# --------------------------------------------------------------------------------------
# Commands for the probe pod (agnhost image: /agnhost, curl, dig, busybox ping)
# --------------------------------------------------------------------------------------

def seconds_text(seconds):
    """2.0 -> '2', 0.5 -> '0.5'."""
    return "%g" % seconds


def whole_seconds(seconds):
    """dig +time and busybox ping -W take whole seconds: round up, at least 1."""
    return max(1, int(math.ceil(seconds - 1e-9)))


def host_port(address, port):
    """``10.0.0.1:80``, ``[fd00::1]:80``."""
    if ":" in address:
        return "[%s]:%d" % (address, port)
    return "%s:%d" % (address, port)


def probe_command(probe, timeout):
    """argv that runs ``probe`` inside the source pod with the probe image's tools.

    ``classify_exec`` reads what it prints.  curl gets ``-v`` so a refused connection can be
    told from an unreachable one (both are exit 7), writes the status code and the connect
    time on the last line (a connect time of 0 means the TCP handshake never completed),
    ignores proxy variables and does not glob ``[]{}`` in the path.
    """
    address, port = probe["address"], probe["port"]
    protocol = probe["protocol"]
    if protocol == "tcp":
        return ["/agnhost", "connect", host_port(address, port), "--timeout=%ss" % seconds_text(timeout)]
    if protocol == "udp":
        return ["/agnhost", "connect", host_port(address, port), "--timeout=%ss" % seconds_text(timeout),
                "--protocol=udp"]
    if protocol == "http":
        return ["curl", "-sS", "-v", "--globoff", "--noproxy", "*", "-w", "\\n%{http_code} %{time_connect}",
                "--max-time", seconds_text(timeout), "-X", probe["method"],
                "http://%s%s" % (host_port(address, port), probe["path"])]
    if protocol == "dns":
        argv = ["dig", "+time=%d" % whole_seconds(timeout), "+tries=1"]
        if port != DEFAULT_DNS_PORT:
            argv += ["-p", str(port)]
        return argv + ["@%s" % address, probe["query"]]
    return ["ping", "-c", "1", "-W", str(whole_seconds(timeout)), address]


# --------------------------------------------------------------------------------------
# Reading the tools' output
# --------------------------------------------------------------------------------------

def _lines(*texts):
    return [line.strip() for text in texts for line in (text or "").splitlines() if line.strip()]


def _observation(observed, detail):
    return {"observed": observed, "detail": detail}


def _no_answer(timeout, tool_said=None):
    detail = "no answer within %s s" % seconds_text(timeout)
    if tool_said:
        detail += " (%s)" % tool_said
    return _observation(DENIED, detail)


def _transport(probe):
    return "udp" if probe["protocol"] in ("udp", "dns") else "tcp"


def _refused(probe, tool_said=None):
    detail = "connection refused: nothing listens on %s port %s at %s" % (
        _transport(probe), probe["port"], probe["address"])
    if tool_said:
        detail += " (%s)" % tool_said
    return _observation(NO_LISTENER, detail)


def _missing_tool(rc, lines, tool):
    if rc in (126, 127):
        return _observation(ERROR, "%s could not be run in the probe pod (exit %d: %s)"
                            % (tool, rc, lines[-1] if lines else "no output"))
    return None


def _classify_agnhost(probe, rc, stdout, stderr, timeout):
    lines = _lines(stderr, stdout)
    missing = _missing_tool(rc, lines, "/agnhost")
    if missing:
        return missing
    if rc == 0:
        if probe["protocol"] == "udp":
            return _observation(ALLOWED, "got a reply from %s" % host_port(probe["address"], probe["port"]))
        return _observation(ALLOWED, "connected to %s" % host_port(probe["address"], probe["port"]))
    for line in lines:
        if line == "TIMEOUT" or line.startswith("TIMEOUT:"):
            return _no_answer(timeout, "agnhost: %s" % line)
        if line == "REFUSED" or line.startswith("REFUSED:"):
            return _refused(probe, "agnhost: %s" % line)
        if line.startswith("OTHER: No data received"):
            # agnhost says this when the reply was an empty datagram: a reply all the same.
            return _observation(ALLOWED, "got an empty reply from %s" % host_port(probe["address"], probe["port"]))
        if line.startswith(("OTHER:", "DNS:", "UNKNOWN:")):
            return _observation(ERROR, "agnhost connect failed: %s" % line)
    return _observation(ERROR, "unexpected output from /agnhost connect (exit %d): %s"
                        % (rc, " | ".join(lines[-3:]) or "none"))


_CURL_TRAILER = re.compile(r"^(\d{3}) (\d+(?:[.,]\d+)?)$")
_CURL_ERROR = re.compile(r"^curl: \(\d+\) .*$")


def _http_answer(status, body):
    if status == 403 and body.strip() == ENVOY_DENY_BODY:
        return _observation(L7_DENIED, "HTTP 403 'Access denied' from Cilium's L7 proxy (Envoy)")
    return _observation(ALLOWED, "HTTP %d" % status)


def _classify_curl(probe, rc, stdout, stderr, timeout):
    error_lines = _lines(stderr)
    missing = _missing_tool(rc, error_lines, "curl")
    if missing:
        return missing
    text = (stdout or "").rstrip("\r\n")
    body, separator, trailer = text.rpartition("\n")
    if not separator:
        body, trailer = "", text
    match = _CURL_TRAILER.match(trailer.strip())
    curl_said = [line for line in error_lines if _CURL_ERROR.match(line)]
    curl_said = curl_said[-1] if curl_said else "exit %d" % rc
    if match is None:
        return _observation(ERROR, "unexpected output from curl (%s): the last line of stdout is %r, not "
                            "'STATUS CONNECT_TIME'" % (curl_said, trailer[-80:]))
    status = int(match.group(1))
    connected = float(match.group(2).replace(",", ".")) > 0
    if rc == 0 and status > 0:
        return _http_answer(status, body)
    if rc == 28:
        if connected:
            return _observation(ERROR, "connected, but no HTTP response within %s s (%s)"
                                % (seconds_text(timeout), curl_said))
        return _no_answer(timeout, curl_said)
    if rc == 7:
        verbose = " ".join(error_lines).lower()
        if "connection refused" in verbose:
            return _refused(probe, curl_said)
        reasons = [line.lstrip("* ") for line in error_lines if " failed: " in line]
        return _observation(ERROR, "could not connect: %s" % (reasons[-1] if reasons else curl_said))
    return _observation(ERROR, "curl failed: %s" % curl_said)


_DIG_STATUS = re.compile(r"->>HEADER<<-.*\bstatus:\s*([A-Z0-9]+)")


def _dns_answer(probe, rcode_name):
    if rcode_name == "REFUSED":
        return _observation(L7_DENIED, "DNS answer REFUSED for %s: Cilium's DNS proxy refuses names the policy "
                            "does not allow" % probe["query"])
    if rcode_name in ("NOERROR", "NXDOMAIN"):
        return _observation(ALLOWED, "DNS answer %s for %s" % (rcode_name, probe["query"]))
    return _observation(ALLOWED, "DNS answer %s for %s: the server answered, so the path is open, but it did not "
                        "resolve the name" % (rcode_name, probe["query"]))


def _classify_dig(probe, rc, stdout, stderr, timeout):
    lines = _lines(stdout, stderr)
    missing = _missing_tool(rc, lines, "dig")
    if missing:
        return missing
    statuses = [_DIG_STATUS.search(line) for line in lines]
    statuses = [match.group(1) for match in statuses if match]
    if rc == 0 and statuses:
        return _dns_answer(probe, statuses[-1])
    problems = [line.lstrip(";").strip() for line in lines if line.startswith(";;") and (
        "error" in line or "timed out" in line or "refused" in line or "unreachable" in line
        or "no servers" in line)]
    said = "; ".join(problems) or "exit %d" % rc
    text = " ".join(lines).lower()
    if "connection refused" in text:
        return _refused(probe, "dig: %s" % said)
    if "unreachable" in text:
        return _observation(ERROR, "dig could not reach the server: %s" % said)
    if rc == 9:
        return _no_answer(timeout, "dig: %s" % said)
    return _observation(ERROR, "unexpected output from dig (exit %d): %s" % (rc, " | ".join(lines[-3:]) or "none"))


def _classify_ping(probe, rc, stdout, stderr, timeout):
    lines = _lines(stdout, stderr)
    missing = _missing_tool(rc, lines, "ping")
    if missing:
        return missing
    outcome = parse_ping(rc, stdout, stderr)
    if outcome.kind == ANSWER:
        return _observation(ALLOWED, "echo reply from %s" % probe["address"])
    if outcome.kind == TIMEOUT:
        return _no_answer(whole_seconds(timeout), "ping: %s" % outcome.detail)
    return _observation(ERROR, "ping failed: %s" % (outcome.detail or "exit %d" % rc))


_CLASSIFIERS = {
    "tcp": _classify_agnhost,
    "udp": _classify_agnhost,
    "http": _classify_curl,
    "dns": _classify_dig,
    "icmp": _classify_ping,
}


def classify_exec(probe, rc, stdout, stderr, timeout=DEFAULT_TIMEOUT):
    """``{observed, detail}`` from what ``probe_command(probe)`` printed in the pod."""
    return _CLASSIFIERS[probe["protocol"]](probe, rc, stdout or "", stderr or "", timeout)


# --------------------------------------------------------------------------------------
# Probing from this host with sockets (and ping)
# --------------------------------------------------------------------------------------

def _family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _os_error(action, err):
    reason = err.strerror or str(err)
    return _observation(ERROR, "%s: %s" % (action, reason))


def probe_tcp(probe, timeout):
    """Open a TCP connection and close it."""
    connection = socket.socket(_family(probe["address"]), socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect((probe["address"], probe["port"]))
        return _observation(ALLOWED, "connected to %s" % host_port(probe["address"], probe["port"]))
    except socket.timeout:
        return _no_answer(timeout)
    except ConnectionRefusedError:
        return _refused(probe)
    except OSError as err:
        return _os_error("connect to %s" % host_port(probe["address"], probe["port"]), err)
    finally:
        connection.close()


def probe_udp(probe, timeout):
    """Send ``hostname\\n`` (what agnhost netexec answers) and wait for any reply."""
    connection = socket.socket(_family(probe["address"]), socket.SOCK_DGRAM)
    connection.settimeout(timeout)
    try:
        connection.connect((probe["address"], probe["port"]))
        connection.send(UDP_PAYLOAD)
        reply = connection.recv(65535)
        return _observation(ALLOWED, "got a reply of %d bytes from %s"
                            % (len(reply), host_port(probe["address"], probe["port"])))
    except socket.timeout:
        return _no_answer(timeout)
    except ConnectionRefusedError:
        return _refused(probe)
    except OSError as err:
        return _os_error("udp to %s" % host_port(probe["address"], probe["port"]), err)
    finally:
        connection.close()


def probe_http(probe, timeout):
    """One HTTP/1.1 request; a timeout after the TCP handshake is an error, not a deny."""
    connection = http.client.HTTPConnection(probe["address"], probe["port"], timeout=timeout)
    try:
        try:
            connection.connect()
        except socket.timeout:
            return _no_answer(timeout)
        except ConnectionRefusedError:
            return _refused(probe)
        except OSError as err:
            return _os_error("connect to %s" % host_port(probe["address"], probe["port"]), err)
        try:
            connection.request(probe["method"], probe["path"], headers={
                "User-Agent": "zerotrust.cilium-connectivity_check", "Connection": "close"})
            response = connection.getresponse()
            body = response.read(65536).decode("utf-8", "replace")
        except socket.timeout:
            return _observation(ERROR, "connected, but no HTTP response within %s s" % seconds_text(timeout))
        except (http.client.HTTPException, OSError) as err:
            return _observation(ERROR, "connected, but no HTTP response: %s" % (str(err) or type(err).__name__))
        return _http_answer(response.status, body)
    finally:
        connection.close()


RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def dns_query(name, query_id):
    """A DNS query (recursion desired) for the A record of ``name``, as bytes."""
    labels = [label for label in name.rstrip(".").split(".") if label]
    question = b"".join(struct.pack("!B", len(label)) + label.encode("ascii") for label in labels) + b"\0"
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)


def dns_rcode(response, query_id):
    """The rcode name of a DNS response to ``query_id``; None when it is not one."""
    if len(response) < 12:
        return None
    response_id, flags = struct.unpack("!HH", response[:4])
    if response_id != query_id or not flags & 0x8000:
        return None
    rcode = flags & 0x000F
    return RCODE_NAMES.get(rcode, "RCODE%d" % rcode)


def probe_dns(probe, timeout):
    """Ask the server for ``query`` over UDP and read the rcode of the answer."""
    query_id = random.randint(0, 0xFFFF)
    connection = socket.socket(_family(probe["address"]), socket.SOCK_DGRAM)
    connection.settimeout(timeout)
    try:
        connection.connect((probe["address"], probe["port"]))
        connection.send(dns_query(probe["query"], query_id))
        while True:
            rcode_name = dns_rcode(connection.recv(65535), query_id)
            if rcode_name is not None:
                return _dns_answer(probe, rcode_name)
    except socket.timeout:
        return _no_answer(timeout)
    except ConnectionRefusedError:
        return _refused(probe)
    except OSError as err:
        return _os_error("dns to %s" % host_port(probe["address"], probe["port"]), err)
    finally:
        connection.close()


def probe_icmp(probe, timeout, ping_path):
    """One echo request with ``ping``, read like the probe pod's ping."""
    argv = probe_command(probe, timeout)
    argv[0] = ping_path
    try:
        completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                   env=dict(os.environ, LC_ALL="C"), timeout=whole_seconds(timeout) + 5, check=False)
    except subprocess.TimeoutExpired:
        return _observation(ERROR, "ping did not finish within %d s" % (whole_seconds(timeout) + 5))
    except OSError as err:
        return _os_error("run %s" % ping_path, err)
    return _classify_ping(probe, completed.returncode, completed.stdout, completed.stderr, timeout)


def probe_once(probe, timeout, ping_path=None):
    """``{observed, detail}`` of one probe sent from this process's network namespace."""
    try:
        if probe["protocol"] == "tcp":
            return probe_tcp(probe, timeout)
        if probe["protocol"] == "udp":
            return probe_udp(probe, timeout)
        if probe["protocol"] == "http":
            return probe_http(probe, timeout)
        if probe["protocol"] == "dns":
            return probe_dns(probe, timeout)
        return probe_icmp(probe, timeout, ping_path)
    except Exception as err:  # one broken probe must not hide the others' results
        return _observation(ERROR, "probe failed: %s: %s" % (type(err).__name__, err))


def probe_all(probes, timeout, ping_path=None, max_parallel=MAX_PARALLEL):
    """Observations of ``probes`` (in order), up to ``max_parallel`` at a time."""
    workers = max(1, min(max_parallel, len(probes)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda probe: probe_once(probe, timeout, ping_path), probes))


def enter_netns(path):
    """Move the calling thread into the network namespace bound at ``path``."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        setns = getattr(os, "setns", None)  # Python 3.12 and later
        if setns is not None:
            setns(descriptor, CLONE_NEWNET)
            return
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number))
    finally:
        os.close(descriptor)


def run_in_netns(netns, function, *args):
    """``function(*args)`` run in a forked child that entered network namespace ``netns``.

    The result travels back as JSON over a pipe; this process never changes namespace.
    """
    path = os.path.join(NETNS_DIR, netns)
    if not os.path.exists(path):
        existing = sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []
        raise InvalidInput("netns", netns, "does not exist on %s (ip netns list: %s)"
                           % (socket.gethostname(), ", ".join(existing) or "none"), where=MODULE_NAME)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: probe, report through the pipe, never return
        os.close(read_end)
        status = 0
        try:
            try:
                enter_netns(path)
            except OSError as err:
                raise ProbeSetupError("cannot enter network namespace %s (%s): %s" % (netns, path, err.strerror or err))
            payload = {"result": function(*args)}
        except BaseException as err:
            payload = {"error": str(err) or type(err).__name__}
            status = 1
        try:
            with os.fdopen(write_end, "wb") as stream:
                stream.write(json.dumps(payload).encode("utf-8"))
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        data = stream.read()
    while True:
        try:
            os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    try:
        payload = json.loads(data.decode("utf-8"))
    except ValueError:
        raise ProbeSetupError("%s: the probe process in network namespace %s ended without a result"
                              % (MODULE_NAME, netns))
    if "error" in payload:
        raise ProbeSetupError("%s: %s" % (MODULE_NAME, payload["error"]))
    return payload["result"]


def run_probes(probes, timeout, netns=None, ping_path=None):
    """Observations of ``probes`` sent from this host, or from inside ``netns``."""
    if any(probe["protocol"] == "icmp" for probe in probes) and not ping_path:
        raise ProbeSetupError("%s: icmp probes need ping, and there is no ping on %s; install %s"
                              % (MODULE_NAME, socket.gethostname(), PING_PACKAGES))
    if netns:
        return run_in_netns(netns, probe_all, probes, timeout, ping_path)
    return probe_all(probes, timeout, ping_path)


# --------------------------------------------------------------------------------------
# Comparison, truth table, matrix
# --------------------------------------------------------------------------------------

def _subject(probe):
    label = probe_label(probe)
    if probe["name"] == label:
        return label
    return "%s (%s)" % (probe["name"], label)


def compare(probe, observation):
    """``(match, kind, detail, mismatch message or None)`` for one probe."""
    observed, detail = observation["observed"], observation["detail"]
    expected = probe["expected"]
    subject = _subject(probe)
    if observed == ERROR:
        sentence = "probe error, the network path cannot be judged: %s" % detail
        return False, PROBE_ERROR, sentence, "%s: %s" % (subject, sentence)
    if observed == NO_LISTENER and expected == ALLOWED:
        sentence = ("probe error: the probe workload at %s does not listen on %s port %s, so the network path cannot "
                    "be judged" % (probe["address"], _transport(probe), probe["port"]))
        return False, PROBE_ERROR, sentence, "%s: %s" % (subject, sentence)
    is_open = observed in (ALLOWED, NO_LISTENER)
    if (expected == ALLOWED and is_open) or (expected == DENIED and not is_open):
        return True, OK, detail, None
    if expected == ALLOWED:
        sentence = "expected allowed but blocked (%s: %s)" % (observed, detail)
        return False, BLOCKED, sentence, "%s: %s" % (subject, sentence)
    if observed == NO_LISTENER:
        sentence = "expected denied but open (connection refused by the destination, so the packet got through)"
    else:
        sentence = "expected denied but open (%s: %s)" % (observed, detail)
    return False, OPEN, sentence, "%s: %s" % (subject, sentence)


def compare_results(probes, observations):
    """Results (one per probe, in order) and the mismatch messages."""
    results, mismatches = [], []
    for probe, observation in zip(probes, observations):
        match, kind, detail, message = compare(probe, observation)
        result = dict(probe)
        result.update(observed=observation["observed"], match=match, kind=kind, detail=detail)
        results.append(result)
        if message:
            mismatches.append(message)
    return results, mismatches


def summarise(results):
    """``{probes, matched, blocked, open, errors}``."""
    kinds = [result["kind"] for result in results]
    return {"probes": len(results), "matched": kinds.count(OK), "blocked": kinds.count(BLOCKED),
            "open": kinds.count(OPEN), "errors": kinds.count(PROBE_ERROR)}


def _probe_column(result):
    return probe_label(result)[len("%s -> %s " % (result["from"], result["to"])):]


_RESULT_WORDS = {OK: "ok", BLOCKED: "BLOCKED", OPEN: "OPEN", PROBE_ERROR: "ERROR", None: "not run"}


def truth_table(results):
    """Fixed-width lines: FROM, TO, PROBE, EXPECTED, OBSERVED, RESULT, FLOW; header first."""
    header = ("FROM", "TO", "PROBE", "EXPECTED", "OBSERVED", "RESULT", "FLOW")
    rows = [header] + [(result["from"], result["to"], _probe_column(result), result["expected"],
                        result["observed"] or "-", _RESULT_WORDS[result["kind"]], result["flow"] or "")
                       for result in results]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def reachability_matrix(results):
    """``{sources, targets, cells: {"SRC|TGT": [...]}}`` for a report to draw."""
    cells = {}
    for result in results:
        cells.setdefault("%s|%s" % (result["from"], result["to"]), []).append(dict(
            (key, result[key]) for key in ("protocol", "port", "method", "path", "query", "expected", "observed",
                                           "match", "kind")))
    return {"sources": sorted(set(result["from"] for result in results)),
            "targets": sorted(set(result["to"] for result in results)),
            "cells": cells}


def mismatch_message(report):
    """One line for a failed task: how many probes do not match and every mismatch."""
    return "%s: %d of %d probes do not match the plan: %s" % (
        MODULE_NAME, len(report["mismatches"]), report["summary"]["probes"], "; ".join(report["mismatches"]))


def connectivity_check(mode, probes, timeout=DEFAULT_TIMEOUT, netns=None, exec_results=None, ping_path=None,
                       prober=None):
    """The whole check: validate, probe (or build commands, or read exec results), compare.

    ``prober(probes, timeout, netns, ping_path)`` returns the observations in probe mode
    (``run_probes`` unless given).  Returns ``{mode, results, mismatches, summary, table,
    matrix}`` and, in commands mode, ``commands``.  Nothing is sent
    before every input has been checked.
    """
    problems = []
    mode = _checked(problems, validate_mode_options, mode, netns=netns, exec_results=exec_results)
    timeout = _checked(problems, validate_timeout, timeout)
    probes = _checked(problems, normalise_probes, probes)
    raise_problems(problems, MODULE_NAME)
    commands = None
    if mode == "commands":
        commands = [{"name": probe["name"], "from": probe["from"], "argv": probe_command(probe, timeout)}
                    for probe in probes]
        results = []
        for probe, command in zip(probes, commands):
            result = dict(probe)
            result.update(observed=None, match=None, kind=None, command=command["argv"],
                          detail="not probed: run command in a pod of %s and pass its rc, stdout and stderr as "
                                 "exec_results in mode compare" % probe["from"])
            results.append(result)
        mismatches = []
    else:
        if mode == "compare":
            outputs = normalise_exec_results(exec_results, probes)
            observations = [classify_exec(probe, timeout=timeout, **outputs[probe["name"]]) for probe in probes]
        else:
            observations = (prober or run_probes)(probes, timeout, netns, ping_path)
        results, mismatches = compare_results(probes, observations)
    report = {
        "mode": mode,
        "results": results,
        "mismatches": mismatches,
        "summary": summarise(results),
        "table": truth_table(results),
        "matrix": reachability_matrix(results),
    }
    if commands is not None:
        report["commands"] = commands
    return report


# --------------------------------------------------------------------------------------
# Probe lists for the verify phase (the connectivity_probes filter)
# --------------------------------------------------------------------------------------

def _normalise_endpoints(endpoints, where):
    if not isinstance(endpoints, list) or len(endpoints) < 2:
        raise InvalidInput("endpoints", endpoints, "must be a list of at least two {name, address} (one probe goes "
                           "from each endpoint to each other one)", where=where)
    problems, normalised = [], []
    for index, endpoint in enumerate(endpoints):
        field = "endpoints[%d]" % index
        if not isinstance(endpoint, dict):
            problems.append(InvalidInput(field, endpoint, "is not a mapping {name, address}", where=where))
            continue
        before = len(problems)
        name = _label_field(field + ".name", endpoint.get("name"), "the endpoint's name, e.g. production/api",
                            where, problems)
        address = _address_field(field + ".address", endpoint.get("address"), where, problems)
        if len(problems) == before:
            normalised.append({"name": name, "address": address})
    raise_problems(problems, where)
    names = [endpoint["name"] for endpoint in normalised]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        raise InvalidInput("endpoints", duplicates, "name more than one endpoint; give each its own name", where=where)
    return normalised


def _normalise_services(services, where):
    if not isinstance(services, list) or not services:
        raise InvalidInput("services", services, "must be a non-empty list of {protocol, port, method, path, query, "
                           "flow}", where=where)
    problems, normalised, seen = [], [], {}
    for index, service in enumerate(services):
        field = "services[%d]" % index
        if not isinstance(service, dict):
            problems.append(InvalidInput(field, service, "is not a mapping {protocol, port, method, path, query, flow}",
                                         where=where))
            continue
        unknown = _unknown_keys(service, SERVICE_KEYS)
        if unknown:
            problems.append(InvalidInput(field, unknown, "are unknown keys; accepted: %s" % ", ".join(SERVICE_KEYS),
                                         where=where))
            continue
        before = len(problems)
        entry = _service_fields(service, field + ".", where, problems)
        entry["flow"] = _flow_field(field + ".flow", service.get("flow"), where, problems)
        if len(problems) > before:
            continue
        identity = tuple(entry[key] for key in ("protocol", "port", "method", "path", "query"))
        if identity in seen:
            problems.append(InvalidInput(field, service, "probes the same as services[%d]" % seen[identity],
                                         where=where))
            continue
        seen[identity] = index
        normalised.append(entry)
    raise_problems(problems, where)
    return normalised


def connectivity_probes(endpoints, services=None, expected=None):
    """One probe per ordered pair of distinct endpoints per service, all ``expected``.

    ``endpoints`` is a list of ``{name, address}`` (other keys are ignored), ``services`` a
    list of ``{protocol, port, method, path, query, flow}``.  Probes are ordered by source,
    then destination, then service; keys that do not apply are left out and names are left
    to the module's default.
    """
    problems = []
    endpoints = _checked(problems, _normalise_endpoints, endpoints, FILTER_NAME)
    services = _checked(problems, _normalise_services, services, FILTER_NAME)
    expected = _checked(problems, checks.choice, FILTER_NAME, "expected", expected, EXPECTATIONS)
    raise_problems(problems, FILTER_NAME)
    probes = []
    for source in endpoints:
        for target in endpoints:
            if target["name"] == source["name"]:
                continue
            for service in services:
                probe = {"from": source["name"], "to": target["name"], "address": target["address"]}
                probe.update((key, value) for key, value in service.items() if value is not None)
                probe["expected"] = expected
                probes.append(probe)
    return probes


# --------------------------------------------------------------------------------------
# Probes a policy proof expects, and one truth table out of several hosts' reports
# --------------------------------------------------------------------------------------

EXPECTED_FILTER_NAME = "connectivity_expected"
MERGE_FILTER_NAME = "connectivity_merge"
DENIED_HTTP_PATH = "/zerotrust-verify-denied"
# Matrix cells of the network_policy role's proof that a probe pod can stand for: the verdict is
# the same for every pod of the pair. "partly" cells differ between pods of one workload, "–" is
# a workload to itself and "·" was not evaluated: those are not probed.
_PROBED_CELLS = ("allowed", "denied")


def _proof_part(proof, where):
    if not isinstance(proof, dict):
        raise InvalidInput("proof", proof, "is not a policy proof (the content of policies/proof.json)", where=where)
    inner = proof.get("proof", proof)
    if not isinstance(inner, dict) or not isinstance(inner.get("matrix"), list):
        raise InvalidInput("proof", sorted(proof) if isinstance(proof, dict) else proof,
                           "has no matrix: pass the content of the network_policy role's policies/proof.json",
                           where=where)
    return inner


def _addresses(addresses, where):
    if not isinstance(addresses, dict) or not addresses:
        raise InvalidInput("addresses", addresses, "must map namespace/workload to the probe pod's address", where=where)
    problems = []
    checked = {}
    for label, address in sorted(addresses.items()):
        value = _address_field("addresses[%s]" % label, address, where, problems)
        if value is not None:
            checked[str(label)] = value
    raise_problems(problems, where)
    return checked


def _http_rules(flows, source, target, port, protocol):
    rules = []
    for flow in flows:
        if flow.get("from") == source and flow.get("to") == target and "%s/%s" % (port, protocol) in flow.get("ports", []):
            for rule in flow.get("http") or []:
                rules.append((flow.get("name"), rule.get("method") or DEFAULT_HTTP_METHOD, rule.get("path") or "/"))
    return rules


def expected_probes(proof, addresses=None, dns_server=None, dns_query=DEFAULT_DNS_QUERY, denied_path=DENIED_HTTP_PATH):
    """The probes that check a policy proof's matrix between probe pods.

    ``proof`` is the content of the network_policy role's ``policies/proof.json``;
    ``addresses`` maps ``namespace/workload`` to the address of the probe pod standing for that
    workload.  For every source and destination of the matrix that have a probe pod: a TCP or
    UDP connect per port, expected as the cell says.  Where the cell is allowed at L7 for HTTP
    (``allowed (HTTP)``), one HTTP probe per rule of the declared flow (expected allowed) and one
    with a path no rule allows (expected denied: Cilium's 403).  With ``dns_server``, a DNS
    lookup of ``dns_query`` from every probe pod, expected as the proof's DNS section says.
    """
    where = EXPECTED_FILTER_NAME
    inner = _proof_part(proof, where)
    addresses = _addresses(addresses, where)
    if dns_server is not None:
        problems = []
        dns_server = _address_field("dns_server", dns_server, where, problems)
        raise_problems(problems, where)
    flows = inner.get("flows") or []
    probes = []
    for table in inner["matrix"]:
        port, protocol = table.get("port"), str(table.get("protocol", "")).upper()
        if protocol not in ("TCP", "UDP") or not isinstance(port, int):
            continue
        for row in table.get("rows", []):
            source = row.get("from")
            for target, cell in zip(table.get("columns", []), row.get("cells", [])):
                if source == target or source not in addresses or target not in addresses:
                    continue
                base = {"from": source, "to": target, "address": addresses[target], "port": port}
                if cell in _PROBED_CELLS:
                    probes.append(dict(base, protocol=protocol.lower(), expected=cell))
                elif cell == "allowed (HTTP)" and protocol == "TCP":
                    rules = _http_rules(flows, source, target, port, protocol)
                    for flow, method, path in rules:
                        probes.append(dict(base, protocol="http", method=method, path=path, expected="allowed", flow=flow))
                    if rules:
                        probes.append(dict(base, protocol="http", method=rules[0][1], path=denied_path,
                                           expected="denied", flow=rules[0][0]))
    if dns_server is not None:
        dns = inner.get("dns") or {}
        expected = "allowed" if (dns.get("pairs") or {}).get("denied", 0) == 0 else "denied"
        for source in sorted(addresses):
            probes.append({"from": source, "to": "%s/kube-dns" % dns.get("namespace", "kube-system"),
                           "address": dns_server, "protocol": "dns", "query": dns_query, "expected": expected,
                           "flow": "dns"})
    return probes


def merge_reports(reports):
    """One report (results, mismatches, summary, table, matrix) out of several hosts' reports.

    ``reports`` are what ``connectivity_check`` returned on each host; the results keep their
    order, host after host.
    """
    well_formed = isinstance(reports, list) and all(
        isinstance(report, dict) and isinstance(report.get("results"), list) for report in reports)
    if not well_formed:
        raise InvalidInput("reports", reports, "must be a list of zerotrust.cilium.connectivity_check results",
                           where=MERGE_FILTER_NAME)
    results = [result for report in reports for result in report["results"]]
    mismatches = [message for report in reports for message in report.get("mismatches") or []]
    return {"results": results, "mismatches": mismatches, "summary": summarise(results),
            "table": truth_table(results), "matrix": reachability_matrix(results)}
