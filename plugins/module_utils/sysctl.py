# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sysctl planning for Cilium nodes: desired values, the drop-in file, conflicts, read-back.

Pure Python: nothing here imports ``ansible``.  The ``node_tuning`` role computes the plan
with :func:`plan_sysctls`, writes :func:`render_dropin`, checks the other sysctl files of
the node with :func:`find_conflicts` and, after applying, compares the running values with
:func:`compare_running`.

How the files are applied (``sysctl.d(5)``, procps ``sysctl --system``):

- ``*.conf`` files from ``/etc/sysctl.d``, ``/run/sysctl.d``, ``/usr/local/lib/sysctl.d``,
  ``/usr/lib/sysctl.d`` (and ``/lib/sysctl.d`` on split-usr systems) are sorted by file
  name, whatever their directory; a file shadows files of the same name in the
  directories after it in that list; later assignments override earlier ones.
- systemd-sysctl does not read ``/etc/sysctl.conf`` (Debian links it in as
  ``/etc/sysctl.d/99-sysctl.conf``); procps ``sysctl --system`` reads it last.
- systemd (>= 245) accepts glob keys such as ``net.ipv4.conf.*.rp_filter``; an explicit
  key always beats a glob whatever the file order, and ``-key`` without a value excludes
  a key from globs.  A ``-`` prefix makes failures to set the key non-fatal.

Cilium's rp_filter needs: the agent's own ``sysctlfix`` writes
``99-zzz-override_cilium.conf`` with ``net.ipv4.conf.all.rp_filter = 0`` (the kernel
uses ``max(conf.all, conf.<dev>)``) and ``-net.ipv4.conf.{lxc*,cilium_*}.rp_filter = 0``
so that systemd's ``net.ipv4.conf.*.rp_filter = 2`` does not hit Cilium's devices.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import posixpath
import re

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import (
    InvalidInput,
    InvalidInputs,
)

SYSCTL_D_DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
SYSCTL_CONF = "/etc/sysctl.conf"
DEFAULT_DROPIN = "/etc/sysctl.d/90-zerotrust-cilium.conf"
APPLIERS = ("systemd", "procps")

OVERRIDES_FIELD = "node_tuning_sysctl_overrides"
REMOVALS_FIELD = "node_tuning_sysctl_remove"
BEST_EFFORT_FIELD = "node_tuning_sysctl_best_effort"

# A running value stricter than the desired one that the kernel will not let us relax
# (unprivileged_bpf_disabled=1 can only be cleared by a reboot) counts as applied.
_STRICTER_ACCEPTED = {"kernel.unprivileged_bpf_disabled": {"2": ("1",)}}

_SEGMENT = r"[A-Za-z0-9_*?\[\]/:@+-]+"
_KEY_RE = re.compile(r"^%s(\.%s)+$" % (_SEGMENT, _SEGMENT))
_INTS_RE = re.compile(r"^-?\d+$")


def _problems_to_error(problems):
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidInputs(problems)


# --------------------------------------------------------------------------------------
# Keys and values
# --------------------------------------------------------------------------------------

def normalize_key(key, field="sysctl key"):
    """Return the dotted form of a sysctl name (``sysctl.d(5)`` separator rules).

    ``net/ipv4/conf/eth0.100/rp_filter`` -> ``net.ipv4.conf.eth0/100.rp_filter``.
    """
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(field, key, "is not a sysctl name such as 'net.ipv4.ip_forward'")
    text = key.strip()
    if text.startswith("-"):
        raise InvalidInput(field, key, "must not start with '-'; list keys that may fail in %s"
                           % BEST_EFFORT_FIELD)
    first_dot, first_slash = text.find("."), text.find("/")
    if first_slash != -1 and (first_dot == -1 or first_slash < first_dot):
        text = text.translate(str.maketrans("./", "/."))
    if not _KEY_RE.match(text) or ".." in text:
        raise InvalidInput(field, key, "is not a dotted sysctl name such as 'net.ipv4.ip_forward'")
    return text


def key_to_path(key):
    """``net.ipv4.conf.eth0/100.rp_filter`` -> ``/proc/sys/net/ipv4/conf/eth0.100/rp_filter``."""
    return "/proc/sys/" + key.translate(str.maketrans("./", "/."))


def is_glob(key):
    return any(char in key for char in "*?[")


def normalize_value(value, field="sysctl value"):
    """Return a sysctl value as a string of integers separated by single spaces.

    Accepts an int, a string of integers (``"32768   60999"``) or a list of ints; rejects
    booleans, floats, None, mappings and non-integer text.
    """
    if isinstance(value, bool):
        raise InvalidInput(field, value, "is a boolean; sysctl values are integers (write 1 or 0)")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise InvalidInput(field, value, "is a float; sysctl values are integers")
    if value is None:
        raise InvalidInput(field, value, "has no value; give an integer or space-separated integers "
                           "(to drop a key use %s)" % REMOVALS_FIELD)
    if isinstance(value, dict):
        raise InvalidInput(field, value, "is a mapping; give an integer or space-separated integers")
    if isinstance(value, (list, tuple)):
        if not value or any(isinstance(part, bool) or not isinstance(part, int) for part in value):
            raise InvalidInput(field, value, "must be a non-empty list of integers")
        return " ".join(str(part) for part in value)
    if isinstance(value, str):
        parts = value.split()
        if parts and all(_INTS_RE.match(part) for part in parts):
            return " ".join(str(int(part)) for part in parts)
        raise InvalidInput(field, value, "is not an integer or space-separated integers")
    raise InvalidInput(field, value, "is not an integer or space-separated integers")


def normalize_running(raw):
    """Whitespace-normalise a value read from ``/proc/sys`` (tabs in multi-int values)."""
    if raw is None:
        return None
    return " ".join(str(raw).split())


def validate_sysctls(values, field=OVERRIDES_FIELD):
    """Validate a user mapping of sysctls; every problem is reported, naming ``field[key]``."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidInput(field, values, "must be a mapping of sysctl name to integer value")
    problems = []
    result = {}
    for key, value in values.items():
        entry_field = "%s[%s]" % (field, key)
        try:
            name = normalize_key(key, field=entry_field)
            result[name] = normalize_value(value, field=entry_field)
        except InvalidInput as err:
            problems.append(err)
    _problems_to_error(problems)
    return dict(sorted(result.items()))


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------

def _positive_int(value, field, problems, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append(InvalidInput(field, value, "must be a positive integer"))
        return None
    return value


def plan_sysctls(conntrack_max=None, conntrack_buckets=None, ipv6=True,
                 inotify_max_user_instances=8192, inotify_max_user_watches=524288,
                 unprivileged_bpf_disabled=1, relax_rp_filter=True,
                 overrides=None, removals=None):
    """Compute the sysctls a Cilium node needs.

    ``conntrack_max``/``conntrack_buckets`` come from the conntrack sizing (None leaves
    them alone).  Returns ``{"sysctls": {key: value}, "origins": {key: variable}}``; the
    origin names the variable to change when a key cannot be applied.
    """
    problems = []
    conntrack_max = _positive_int(conntrack_max, "node_tuning_conntrack_max", problems, allow_none=True)
    conntrack_buckets = _positive_int(conntrack_buckets, "node_tuning_conntrack_buckets", problems,
                                      allow_none=True)
    instances = _positive_int(inotify_max_user_instances, "node_tuning_inotify_max_user_instances",
                              problems)
    watches = _positive_int(inotify_max_user_watches, "node_tuning_inotify_max_user_watches", problems)
    if not isinstance(ipv6, bool):
        problems.append(InvalidInput("node_tuning_ipv6", ipv6, "must be a boolean (true or false)"))
    if not isinstance(relax_rp_filter, bool):
        problems.append(InvalidInput("node_tuning_relax_rp_filter", relax_rp_filter,
                                     "must be a boolean (true or false)"))
    if isinstance(unprivileged_bpf_disabled, bool) or unprivileged_bpf_disabled not in (1, 2):
        problems.append(InvalidInput("node_tuning_unprivileged_bpf_disabled", unprivileged_bpf_disabled,
                                     "is not one of: 1, 2 (1 cannot be undone without a reboot)"))
    user_values = {}
    try:
        user_values = validate_sysctls(overrides, OVERRIDES_FIELD)
    except (InvalidInput, InvalidInputs) as err:
        problems.extend(getattr(err, "problems", [err]))
    _problems_to_error(problems)

    sysctls, origins = {}, {}

    def put(key, value, origin):
        sysctls[key] = str(value)
        origins[key] = origin

    builtin = "%s (built in; drop with %s)" % ("node_tuning", REMOVALS_FIELD)
    put("net.ipv4.ip_forward", 1, builtin)
    put("net.ipv4.tcp_mtu_probing", 1, builtin)
    if ipv6:
        put("net.ipv6.conf.all.forwarding", 1, "node_tuning_ipv6")
    put("fs.inotify.max_user_instances", instances, "node_tuning_inotify_max_user_instances")
    put("fs.inotify.max_user_watches", watches, "node_tuning_inotify_max_user_watches")
    put("kernel.unprivileged_bpf_disabled", unprivileged_bpf_disabled,
        "node_tuning_unprivileged_bpf_disabled")
    if relax_rp_filter:
        for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.lxc*.rp_filter",
                    "net.ipv4.conf.cilium_*.rp_filter"):
            put(key, 0, "node_tuning_relax_rp_filter")
    if conntrack_max is not None:
        put("net.netfilter.nf_conntrack_max", conntrack_max, "node_tuning_conntrack_max")
    if conntrack_buckets is not None:
        put("net.netfilter.nf_conntrack_buckets", conntrack_buckets, "node_tuning_conntrack_buckets")
    for key, value in user_values.items():
        sysctls[key] = value
        origins[key] = "%s[%s]" % (OVERRIDES_FIELD, key)

    if removals is not None:
        if isinstance(removals, (str, bytes)) or not isinstance(removals, (list, tuple)):
            raise InvalidInput(REMOVALS_FIELD, removals, "must be a list of sysctl names")
        for index, key in enumerate(removals):
            field = "%s[%d]" % (REMOVALS_FIELD, index)
            try:
                name = normalize_key(key, field=field)
            except InvalidInput as err:
                problems.append(err)
                continue
            if name in user_values:
                problems.append(InvalidInput(field, key, "is also set in %s; keep one of them"
                                             % OVERRIDES_FIELD))
            elif name not in sysctls:
                problems.append(InvalidInput(field, key, "is not a key this role sets; it sets: %s"
                                             % ", ".join(sorted(sysctls))))
            else:
                del sysctls[name]
                del origins[name]
        _problems_to_error(problems)
    return {"sysctls": dict(sorted(sysctls.items())), "origins": dict(sorted(origins.items()))}


def validate_best_effort(best_effort, sysctls, field=BEST_EFFORT_FIELD):
    """Check the best-effort key list against the plan; returns the normalised names."""
    if best_effort is None:
        return []
    if isinstance(best_effort, (str, bytes)) or not isinstance(best_effort, (list, tuple)):
        raise InvalidInput(field, best_effort, "must be a list of sysctl names")
    problems, names = [], []
    for index, key in enumerate(best_effort):
        entry_field = "%s[%d]" % (field, index)
        try:
            name = normalize_key(key, field=entry_field)
        except InvalidInput as err:
            problems.append(err)
            continue
        if name not in sysctls:
            problems.append(InvalidInput(entry_field, key, "is not in the planned sysctls"))
        else:
            names.append(name)
    _problems_to_error(problems)
    return names


def check_keys_exist(plan, available_keys, best_effort=()):
    """Fail, naming the responsible variable, for planned keys the node does not have.

    Glob keys are not checked (they may match nothing yet).  Best-effort keys that do not
    exist are returned instead of failing.
    """
    available = set(available_keys)
    best = set(best_effort)
    problems, absent_best_effort = [], []
    for key in plan["sysctls"]:
        if is_glob(key) or key in available:
            continue
        if key in best:
            absent_best_effort.append(key)
            continue
        problems.append(InvalidInput(plan["origins"][key], key,
                                     "does not exist on this node (%s); remove it or list it in %s"
                                     % (key_to_path(key), BEST_EFFORT_FIELD)))
    _problems_to_error(problems)
    return absent_best_effort


# --------------------------------------------------------------------------------------
# The drop-in file
# --------------------------------------------------------------------------------------

def render_dropin(sysctls, best_effort=(), role="node_tuning"):
    """Render the drop-in file: a header, then ``key = value`` lines sorted by key.

    Glob keys and best-effort keys get systemd's ``-`` prefix so a key the node cannot
    take does not fail systemd-sysctl at boot (the role's read-back still reports it).
    """
    best = set(best_effort)
    lines = [
        "# Managed by the zerotrust.cilium collection (%s role)." % role,
        "# Local edits are overwritten; change the role variables instead.",
    ]
    for key in sorted(sysctls):
        prefix = "-" if is_glob(key) or key in best else ""
        lines.append("%s%s = %s" % (prefix, key, sysctls[key]))
    return "\n".join(lines) + "\n"


def parse_sysctl_file(text):
    """Parse sysctl.d text into ``[{key, value, line, ignore_failure}]``.

    ``value`` is None for a ``-key`` line without ``=`` (a glob exclusion).  Lines that are
    not assignments are skipped, as systemd-sysctl does.
    """
    entries = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line[0] in "#;":
            continue
        ignore_failure = line.startswith("-")
        if ignore_failure:
            line = line[1:].lstrip()
        if "=" in line:
            raw_key, raw_value = line.split("=", 1)
            value = " ".join(raw_value.split())
        elif ignore_failure:
            raw_key, value = line, None
        else:
            continue
        try:
            key = normalize_key(raw_key)
        except InvalidInput:
            continue
        entries.append({"key": key, "value": value, "line": number, "ignore_failure": ignore_failure})
    return entries


# --------------------------------------------------------------------------------------
# Application order and conflicts
# --------------------------------------------------------------------------------------

def application_order(paths, applier="systemd"):
    """Order in which ``applier`` applies the given files (shadowed ones left out)."""
    if applier not in APPLIERS:
        raise InvalidInput("applier", applier, "is not one of: %s" % ", ".join(APPLIERS))
    chosen = {}
    for path in paths:
        directory, name = posixpath.split(posixpath.normpath(path))
        if directory not in SYSCTL_D_DIRS or not name.endswith(".conf"):
            continue
        priority = SYSCTL_D_DIRS.index(directory)
        if name not in chosen or priority < chosen[name][0]:
            chosen[name] = (priority, path)
    ordered = [chosen[name][1] for name in sorted(chosen)]
    if applier == "procps" and SYSCTL_CONF in [posixpath.normpath(p) for p in paths]:
        ordered.append(SYSCTL_CONF)
    return ordered


def key_matches(pattern, key):
    """Whether glob ``pattern`` matches ``key``; ``*`` does not cross a ``.`` (a ``/``)."""
    pattern_parts, key_parts = pattern.split("."), key.split(".")
    if len(pattern_parts) != len(key_parts):
        return False
    return all(fnmatch.fnmatchcase(part, pat) for pat, part in zip(pattern_parts, key_parts))


def _probe_name(pattern):
    """A concrete name a glob certainly matches (``lxc*`` -> ``lxc0``), to test overlaps."""
    probe = re.sub(r"\[!?([^\]]*)\]", lambda m: m.group(1)[:1] or "x", pattern)
    return probe.replace("*", "0").replace("?", "0")


def _same(ours, theirs):
    return theirs is not None and normalize_running(theirs) == normalize_running(ours)


def find_conflicts(files, dropin_path, desired, applier="systemd", existing_keys=()):
    """Find files that would override our drop-in for one of our keys.

    ``files`` maps each sysctl file found on the node to its text (the drop-in itself may
    be absent; its content is taken from ``desired``).  ``existing_keys`` are concrete
    keys present on the node, used to test glob overlaps.  Returns
    ``[{key, ours, theirs, file, line}]`` in application order; ``theirs`` is None when
    the other file excludes the key (``-key`` without a value).
    """
    if applier not in APPLIERS:
        raise InvalidInput("applier", applier, "is not one of: %s" % ", ".join(APPLIERS))
    dropin = posixpath.normpath(dropin_path)
    texts = {posixpath.normpath(path): text for path, text in files.items()}
    texts[dropin] = render_dropin(desired)
    order = application_order(list(texts), applier)
    if dropin not in order:
        raise InvalidInput("dropin_path", dropin_path,
                           "is not a *.conf file in one of: %s" % ", ".join(SYSCTL_D_DIRS))
    ours_at = order.index(dropin)
    assignments = []  # (position, path, entry)
    for position, path in enumerate(order):
        for entry in parse_sysctl_file(texts[path] or ""):
            assignments.append((position, path, entry))

    conflicts = []
    seen = set()

    def report(key, ours, position_entry):
        _position, path, entry = position_entry
        marker = (key, path, entry["line"])
        if marker in seen:
            return
        seen.add(marker)
        conflicts.append({"key": key, "ours": ours, "theirs": entry["value"], "file": path,
                          "line": entry["line"], "their_key": entry["key"]})

    for key, ours in sorted(desired.items()):
        if not is_glob(key):
            _explicit_conflicts(key, ours, assignments, ours_at, applier, report)
        else:
            probes = [_probe_name(key)] + [name for name in existing_keys if key_matches(key, name)]
            _glob_conflicts(key, ours, probes, desired, assignments, ours_at, applier, report)
    conflicts.sort(key=lambda item: (order.index(item["file"]), item["line"], item["key"]))
    return conflicts


def _explicit_conflicts(key, ours, assignments, ours_at, applier, report):
    later = [item for item in assignments if item[0] > ours_at]
    if applier == "systemd":
        # Only a later explicit assignment (or exclusion) of the same key beats ours.
        winners = [item for item in later if item[2]["key"] == key]
        if winners and not _same(ours, winners[-1][2]["value"]):
            report(key, ours, winners[-1])
        return
    winners = [item for item in later if item[2]["key"] == key or key_matches(item[2]["key"], key)]
    if winners and not _same(ours, winners[-1][2]["value"]):
        report(key, ours, winners[-1])


def _glob_conflicts(key, ours, probes, desired, assignments, ours_at, applier, report):
    for probe in probes:
        if probe in desired:
            continue  # our own explicit key decides that one
        if applier == "systemd":
            explicit = [item for item in assignments
                        if not is_glob(item[2]["key"]) and item[2]["key"] == probe]
            if explicit:
                # An explicit key wins over every glob, earlier or later.
                if not _same(ours, explicit[-1][2]["value"]):
                    report(key, ours, explicit[-1])
                continue
        later = [item for item in assignments if item[0] > ours_at
                 and (item[2]["key"] == probe or (is_glob(item[2]["key"])
                                                  and key_matches(item[2]["key"], probe)))]
        if later and not _same(ours, later[-1][2]["value"]):
            report(key, ours, later[-1])


# --------------------------------------------------------------------------------------
# Read-back
# --------------------------------------------------------------------------------------

def compare_running(desired, running, best_effort=()):
    """Compare desired sysctls with the values read back from the node.

    ``running`` maps concrete keys to the text read from ``/proc/sys`` (None when the key
    could not be read).  Glob keys are compared on every running key they match.
    Returns ``{"mismatched": [...], "best_effort_unapplied": [...], "matched": [...]}``,
    each item ``{key, desired, running}``.
    """
    best = set(best_effort)
    result = {"mismatched": [], "best_effort_unapplied": [], "matched": []}

    def judge(key, want, rule_key):
        have = normalize_running(running.get(key))
        item = {"key": key, "desired": want, "running": have}
        accepted = _STRICTER_ACCEPTED.get(key, {}).get(want, ())
        if have is not None and (have == want or have in accepted):
            result["matched"].append(item)
        elif rule_key in best or key in best:
            result["best_effort_unapplied"].append(item)
        else:
            result["mismatched"].append(item)

    for key, want in sorted(desired.items()):
        want = normalize_running(want)
        if not is_glob(key):
            judge(key, want, key)
            continue
        for name in sorted(running):
            if name not in desired and key_matches(key, name):
                judge(name, want, key)
    return result


def mismatch_message(comparison):
    """One line per mismatched key, for ``fail_json``/``fail`` messages."""
    lines = []
    for item in comparison["mismatched"]:
        running = "<not readable>" if item["running"] is None else repr(item["running"])
        lines.append("%s: wanted %r, running %s" % (item["key"], item["desired"], running))
    return "; ".join(lines)


# --------------------------------------------------------------------------------------
# The role's view: one settings mapping in, plan + best effort out; messages that name
# the variable to change
# --------------------------------------------------------------------------------------

PLAN_SETTINGS = (
    "conntrack_max",
    "conntrack_buckets",
    "ipv6",
    "inotify_max_user_instances",
    "inotify_max_user_watches",
    "unprivileged_bpf_disabled",
    "relax_rp_filter",
    "overrides",
    "removals",
    "best_effort",
)


def plan_from_settings(settings):
    """:func:`plan_sysctls` and :func:`validate_best_effort` from one mapping.

    ``settings`` uses the keyword names of :func:`plan_sysctls` plus ``best_effort``;
    missing keys take the defaults.  Returns ``{"sysctls", "origins", "best_effort"}``.
    """
    if not isinstance(settings, dict):
        raise InvalidInput("settings", settings, "must be a mapping with keys among: %s" % ", ".join(PLAN_SETTINGS))
    unknown = sorted(str(key) for key in settings if key not in PLAN_SETTINGS)
    if unknown:
        raise InvalidInput("settings", unknown, "are not among: %s" % ", ".join(PLAN_SETTINGS))
    arguments = {key: value for key, value in settings.items() if key != "best_effort"}
    plan = plan_sysctls(**arguments)
    plan["best_effort"] = validate_best_effort(settings.get("best_effort"), plan["sysctls"])
    return plan


def plan_from_dropin(text, dropin_path):
    """The plan a drop-in file carries, to check a node against what was written to it.

    ``text`` is the drop-in as :func:`render_dropin` wrote it.  Returns a plan like
    :func:`plan_from_settings` (``{"sysctls", "origins", "best_effort"}``): every assignment,
    the file as the origin of each key, and the keys written with systemd's ``-`` prefix as
    best effort (globs excepted: their ``-`` only says that no device may match yet).  Glob
    exclusions (``-key`` without a value) carry no wanted value and are left out.
    """
    if not isinstance(text, str):
        raise InvalidInput("dropin", text, "must be the text of a sysctl.d file")
    plan = {"sysctls": {}, "origins": {}, "best_effort": []}
    for entry in parse_sysctl_file(text):
        if entry["value"] is None:
            continue
        plan["sysctls"][entry["key"]] = entry["value"]
        plan["origins"][entry["key"]] = "%s line %d" % (dropin_path, entry["line"])
        if entry["ignore_failure"] and not is_glob(entry["key"]):
            plan["best_effort"].append(entry["key"])
    plan["best_effort"].sort()
    return plan


def origin_of(key, origins):
    """The variable behind ``key``: its own entry, else the glob entry that matches it."""
    if key in origins:
        return origins[key]
    for pattern in sorted(origins):
        if is_glob(pattern) and key_matches(pattern, key):
            return origins[pattern]
    return None


def readback(plan, running):
    """Compare a plan with the values read back from the node, with a failure message.

    ``plan`` is what :func:`plan_from_settings` returns.  Returns :func:`compare_running`'s
    result plus ``message``: one entry per mismatched key with the variable behind it
    (empty when nothing is mismatched).
    """
    comparison = compare_running(plan["sysctls"], running, plan.get("best_effort") or ())
    lines = []
    for item in comparison["mismatched"]:
        shown = "<not readable>" if item["running"] is None else repr(item["running"])
        origin = origin_of(item["key"], plan.get("origins") or {})
        lines.append("%s: wanted %r, running %s%s" % (item["key"], item["desired"], shown,
                                                      " (set by %s)" % origin if origin else ""))
    comparison["message"] = "; ".join(lines)
    comparison["lines"] = readback_lines(comparison, plan["sysctls"], running)
    return comparison


def readback_lines(comparison, desired=None, running=None):
    """One readable line per key of a :func:`compare_running` result, sorted by key.

    With ``desired`` and ``running``, glob keys that match no running key yet (Cilium's
    ``lxc*`` devices before the agent runs) get a line of their own too.
    """
    entries = []
    for key, want in sorted((desired or {}).items()):
        if is_glob(key) and not any(key_matches(key, name) for name in (running or {})):
            entries.append((key, "%s = %s (no device matches yet)" % (key, normalize_running(want))))
    for item in comparison["matched"]:
        entries.append((item["key"], "%s = %s" % (item["key"], item["running"])))
    for item in comparison["best_effort_unapplied"]:
        if item["running"] is None:
            entries.append((item["key"], "%s: not on this node (best effort: wanted %s)"
                            % (item["key"], item["desired"])))
        else:
            entries.append((item["key"], "%s = %s (best effort: wanted %s, the node did not take it)"
                            % (item["key"], item["running"], item["desired"])))
    for item in comparison["mismatched"]:
        shown = "<not readable>" if item["running"] is None else item["running"]
        entries.append((item["key"], "%s = %s (wanted %s)" % (item["key"], shown, item["desired"])))
    return [line for _key, line in sorted(entries)]


def describe_conflict(conflict, dropin_path):
    """One sentence for an item of :func:`find_conflicts`, naming the other file and line."""
    where = "%s line %d" % (conflict["file"], conflict["line"])
    if conflict["theirs"] is None:
        return ("%s excludes %s ('-%s' without a value), so %s = %s from %s is not applied"
                % (where, conflict["their_key"], conflict["their_key"], conflict["key"], conflict["ours"],
                   dropin_path))
    return ("%s sets %s = %s, which wins over %s = %s from %s"
            % (where, conflict["their_key"], conflict["theirs"], conflict["key"], conflict["ours"], dropin_path))
