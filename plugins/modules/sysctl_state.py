#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sysctl_state
short_description: Read a node's running sysctls and the sysctl files that override a drop-in
version_added: 0.1.0
description:
  - Reads, without changing anything, the running value of each sysctl in O(sysctls) from
    C(/proc/sys) (glob keys such as C(net.ipv4.conf.lxc*.rp_filter) are expanded to the
    devices that exist), and says which keys the node does not have.
  - Reads every C(*.conf) file in C(/etc/sysctl.d), C(/run/sysctl.d),
    C(/usr/local/lib/sysctl.d), C(/usr/lib/sysctl.d) and C(/lib/sysctl.d) (and
    C(/etc/sysctl.conf)) and returns the assignments that the boot-time applier makes after
    O(dropin) and that give one of O(sysctls) another value, with file and line.
  - Works out which program applies sysctl files on the node (C(systemd-sysctl) or procps
    C(sysctl)) and the command that applies O(dropin) alone.
  - The C(zerotrust.cilium.node_tuning) role uses it before writing its drop-in (keys that
    do not exist, conflicts) and after applying it (read-back).
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  sysctls:
    description:
      - The sysctls to look at, name to wanted value (as the C(zerotrust.cilium.sysctl_plan)
        filter returns them under C(sysctls)).
      - Names use dots (C(net.ipv4.ip_forward)); C(*), C(?) and C([...]) globs are allowed
        in any part except the first.
    type: dict
    required: true
  dropin:
    description:
      - The drop-in file the values are (or will be) written to; conflicts are judged from its
        place in the application order.
    type: path
    default: /etc/sysctl.d/90-zerotrust-cilium.conf
  applier:
    description:
      - Which program applies the sysctl files at boot, which decides the application order
        and how globs and explicit keys interact.
      - C(auto) picks C(systemd) when systemd is running and C(systemd-sysctl) exists,
        otherwise C(procps).
    type: str
    choices: [auto, systemd, procps]
    default: auto
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same result.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
notes:
  - systemd-sysctl does not read C(/etc/sysctl.conf) (Debian links it in as
    C(/etc/sysctl.d/99-sysctl.conf)); procps C(sysctl --system) reads it last.
  - A file in an earlier directory of the list shadows files of the same name in later ones.
seealso:
  - name: sysctl.d(5)
    description: Where sysctl files live and in which order they are applied.
    link: https://www.freedesktop.org/software/systemd/man/latest/sysctl.d.html
"""

EXAMPLES = r"""
- name: Read the running values and the files that would override the drop-in
  zerotrust.cilium.sysctl_state:
    sysctls:
      net.ipv4.ip_forward: "1"
      net.ipv4.conf.lxc*.rp_filter: "0"
    dropin: /etc/sysctl.d/90-zerotrust-cilium.conf
  register: node_sysctls

- name: Stop when another file sets one of the keys after the drop-in
  ansible.builtin.fail:
    msg: "{{ node_sysctls.conflicts | map(attribute='message') | join('; ') }}"
  when: node_sysctls.conflicts | length > 0
"""

RETURN = r"""
applier:
  description: The program that applies sysctl files on the node.
  returned: always
  type: str
  sample: systemd
apply_command:
  description: Command that applies O(dropin) alone, as a list of arguments.
  returned: always
  type: list
  elements: str
  sample: [/usr/lib/systemd/systemd-sysctl, /etc/sysctl.d/90-zerotrust-cilium.conf]
running:
  description:
    - Running value of each concrete key, whitespace-normalised; null when the key exists
      but cannot be read. Glob keys appear as the concrete keys they match.
  returned: always
  type: dict
  sample: {net.ipv4.ip_forward: "1", net.netfilter.nf_conntrack_max: "262144"}
existing:
  description: Concrete keys that exist on the node (plain keys of O(sysctls) and glob matches).
  returned: always
  type: list
  elements: str
absent:
  description: Plain (non-glob) keys of O(sysctls) that do not exist on the node.
  returned: always
  type: list
  elements: str
  sample: [net.ipv6.conf.all.forwarding]
files:
  description: Sysctl files found, in the order the applier applies them (shadowed files left out).
  returned: always
  type: list
  elements: str
  sample: [/usr/lib/sysctl.d/50-pid-max.conf, /etc/sysctl.d/90-zerotrust-cilium.conf]
conflicts:
  description: Assignments in other files that override one of O(sysctls), in application order.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Key of O(sysctls) that is overridden (may be a glob).
      type: str
    ours:
      description: Value O(sysctls) wants.
      type: str
    theirs:
      description: Value the other file sets; null when it excludes the key (C(-key) without a value).
      type: str
    their_key:
      description: Key as written in the other file.
      type: str
    file:
      description: The other file.
      type: str
    line:
      description: Line number in the other file.
      type: int
    message:
      description: One sentence naming file, line, key and both values.
      type: str
  sample:
    - key: net.ipv4.ip_forward
      ours: "1"
      theirs: "0"
      their_key: net.ipv4.ip_forward
      file: /etc/sysctl.d/99-hardening.conf
      line: 3
      message: >-
        /etc/sysctl.d/99-hardening.conf line 3 sets net.ipv4.ip_forward = 0, which wins over
        net.ipv4.ip_forward = 1 from /etc/sysctl.d/90-zerotrust-cilium.conf
"""

import fnmatch
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError
from ansible_collections.zerotrust.cilium.plugins.module_utils.sysctl import (
    DEFAULT_DROPIN,
    SYSCTL_CONF,
    SYSCTL_D_DIRS,
    application_order,
    describe_conflict,
    find_conflicts,
    is_glob,
    normalize_key,
    normalize_running,
)

SYSTEMD_SYSCTL_PATHS = ("/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl")
PROC_SYS = "/proc/sys"


def _under(root, path):
    return os.path.join(root, path.lstrip("/"))


def _part_to_name(part):
    """A key part as a /proc/sys entry name (``eth0/100`` -> ``eth0.100``)."""
    return part.replace("/", ".")


def _name_to_part(name):
    return name.replace(".", "/")


def expand_key(root, key):
    """Concrete keys under ``root``/proc/sys for ``key`` (itself when it is not a glob)."""
    parts = key.split(".")
    found = [([], _under(root, PROC_SYS))]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following = []
        for prefix, directory in found:
            if is_glob(part):
                try:
                    names = sorted(os.listdir(directory))
                except OSError:
                    names = []
                candidates = [name for name in names if fnmatch.fnmatchcase(_name_to_part(name), part)]
            else:
                candidates = [_part_to_name(part)]
            for name in candidates:
                path = os.path.join(directory, name)
                if (last and os.path.isfile(path)) or (not last and os.path.isdir(path)):
                    following.append((prefix + [_name_to_part(name)], path))
        found = following
    return [".".join(prefix) for prefix, _path in found]


def _read_running(root, key):
    path = _under(root, PROC_SYS + "/" + key.translate(str.maketrans("./", "/.")))
    try:
        with open(path) as handle:
            return normalize_running(handle.read())
    except (IOError, OSError):
        return None


def _sysctl_files(root):
    files = {}
    for directory in SYSCTL_D_DIRS:
        real_directory = _under(root, directory)
        try:
            names = sorted(os.listdir(real_directory))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".conf"):
                continue
            path = os.path.join(real_directory, name)
            try:
                with open(path) as handle:
                    files["%s/%s" % (directory, name)] = handle.read()
            except (IOError, OSError):
                continue  # a dangling link (e.g. 99-sysctl.conf without /etc/sysctl.conf) sets nothing
    try:
        with open(_under(root, SYSCTL_CONF)) as handle:
            files[SYSCTL_CONF] = handle.read()
    except (IOError, OSError):
        pass
    return files


def resolve_applier(root, applier, sysctl_binary="sysctl"):
    """``(applier, command_prefix)`` for the node under ``root``."""
    systemd_sysctl = None
    for path in SYSTEMD_SYSCTL_PATHS:
        if os.path.exists(_under(root, path)):
            systemd_sysctl = path
            break
    if applier == "auto":
        booted = os.path.isdir(_under(root, "/run/systemd/system"))
        applier = "systemd" if booted and systemd_sysctl else "procps"
    if applier == "systemd":
        return applier, [systemd_sysctl or SYSTEMD_SYSCTL_PATHS[0]]
    return applier, [sysctl_binary, "-p"]


def gather(root, sysctls, dropin, applier="auto", sysctl_binary="sysctl"):
    """Read the node below ``root`` (``/`` on a node, a fake tree in tests)."""
    keys = [normalize_key(key, field="sysctls[%s]" % key) for key in sysctls]
    desired = {normalize_key(key): normalize_running(str(value)) for key, value in sysctls.items()}
    resolved, command = resolve_applier(root, applier, sysctl_binary)

    running, existing, absent = {}, [], []
    for key in keys:
        concrete = expand_key(root, key)
        if not is_glob(key) and not concrete:
            absent.append(key)
        for name in concrete:
            existing.append(name)
            running[name] = _read_running(root, name)

    files = _sysctl_files(root)
    dropin_path = os.path.normpath(dropin)
    others = {path: text for path, text in files.items() if path != dropin_path}
    conflicts = find_conflicts(others, dropin_path, desired, applier=resolved, existing_keys=existing)
    for conflict in conflicts:
        conflict["message"] = describe_conflict(conflict, dropin_path)
    order = application_order(sorted(set(files) | {dropin_path}), applier=resolved)
    return {
        "applier": resolved,
        "apply_command": command + [dropin_path],
        "running": dict(sorted(running.items())),
        "existing": sorted(set(existing)),
        "absent": sorted(absent),
        "files": order,
        "conflicts": conflicts,
    }


def main():
    argument_spec = dict(
        sysctls=dict(type="dict", required=True),
        dropin=dict(type="path", default=DEFAULT_DROPIN),
        applier=dict(type="str", choices=["auto", "systemd", "procps"], default="auto"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    sysctl_binary = module.get_bin_path("sysctl", opt_dirs=["/usr/sbin", "/sbin"]) or "sysctl"
    try:
        result = gather("/", module.params["sysctls"], module.params["dropin"], module.params["applier"],
                        sysctl_binary)
    except CollectionError as err:
        module.fail_json(msg="sysctl_state: %s" % err)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
