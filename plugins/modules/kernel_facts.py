#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kernel_facts
short_description: Gather the kernel facts a Cilium node is judged on
version_added: 0.1.0
description:
  - Reads C(/proc), C(/sys) and C(/boot) and returns, without changing anything, the kernel
    release and a comparable version (vendor strings such as RHEL C(4.18.0-553.el8_10) included),
    the architecture, the kernel config and where it came from, whether the kernel supports
    modules, BTF, the bpf filesystem at C(/sys/fs/bpf), the cgroup v2 mount and the BPF sysctls.
  - A kernel config that cannot be found is reported as C(config.source=unknown), not as an error.
  - The facts are returned under the single key C(zerotrust_kernel); the
    C(zerotrust.cilium.kernel_preflight) role turns them into a per-feature verdict.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  config_paths:
    description:
      - Files tried in order for the kernel config; the first readable one wins.
      - C({release}) is replaced by the running kernel release.
      - Files are read as gzip when they start with the gzip magic bytes.
    type: list
    elements: str
    default: ['/proc/config.gz', '/boot/config-{release}']
  config_options:
    description:
      - C(relevant) returns only the C(CONFIG_*) options the Cilium requirement matrix looks at.
      - C(all) returns every option of the kernel config (several thousand entries).
    type: str
    choices: [relevant, all]
    default: relevant
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same facts.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  facts:
    support: full
    description: Returns C(ansible_facts.zerotrust_kernel).
notes:
  - Needs read access to C(/proc/config.gz) or C(/boot/config-*); both are world-readable on
    common distributions.
  - C(CONFIG_*=m) only counts when the kernel supports modules; C(modules_supported) says so,
    from C(CONFIG_MODULES) when the config is known, otherwise from C(/proc/modules).
seealso:
  - name: Cilium system requirements
    description: The kernel options and versions Cilium documents per feature.
    link: https://docs.cilium.io/en/stable/operations/system_requirements/
"""

EXAMPLES = r"""
- name: Gather kernel facts for the Cilium preflight
  zerotrust.cilium.kernel_facts:

- name: Look for the kernel config in a distribution-specific place as well
  zerotrust.cilium.kernel_facts:
    config_paths:
      - /proc/config.gz
      - /boot/config-{release}
      - /lib/modules/{release}/config

- name: Show the kernel version Cilium's floor is compared with
  ansible.builtin.debug:
    msg: "{{ ansible_facts.zerotrust_kernel.version }} ({{ ansible_facts.zerotrust_kernel.config.source }})"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    zerotrust_kernel:
      description: Kernel facts of the node.
      returned: always
      type: dict
      contains:
        release:
          description: Running kernel release (C(uname -r)).
          type: str
          sample: 4.18.0-553.el8_10.x86_64
        version:
          description: Upstream version parsed from the release.
          type: str
          sample: 4.18.0
        version_tuple:
          description: The version as C([major, minor, patch]) for comparisons.
          type: list
          elements: int
          sample: [4, 18, 0]
        rhel:
          description: RHEL major and minor release when the release string carries C(.elN[_M]), else null.
          type: dict
          sample: {major: 8, minor: 10}
        architecture:
          description: Machine architecture.
          type: str
          sample: x86_64
        config:
          description: The kernel config.
          type: dict
          contains:
            source:
              description: File the config was read from, or C(unknown).
              type: str
              sample: /proc/config.gz
            options:
              description: C(CONFIG_*) name to value (C(y), C(m), C(n) or the string value).
              type: dict
              sample: {CONFIG_BPF: y, CONFIG_VXLAN: m}
            problems:
              description: Config files that were found but could not be read, with the reason.
              type: list
              elements: str
              sample: []
        modules_supported:
          description: Whether the kernel can load modules.
          type: bool
          sample: true
        modules_evidence:
          description: What C(modules_supported) is based on (C(config) or C(procfs)).
          type: str
          sample: config
        btf:
          description: Kernel BTF.
          type: dict
          contains:
            present:
              description: Whether C(/sys/kernel/btf/vmlinux) exists.
              type: bool
            path:
              description: Path checked.
              type: str
          sample: {present: true, path: /sys/kernel/btf/vmlinux}
        bpffs:
          description: The bpf filesystem at C(/sys/fs/bpf).
          type: dict
          sample: {mounted: false, path: /sys/fs/bpf}
        cgroup2:
          description: cgroup v2 mounts; C(path) is the first one (C(/sys/fs/cgroup) on unified hosts).
          type: dict
          sample: {mounted: true, path: /sys/fs/cgroup/unified, mount_points: [/sys/fs/cgroup/unified]}
        sysctls:
          description: BPF-related sysctls as integers; null when not present.
          type: dict
          sample: {net.core.bpf_jit_enable: 1, net.core.bpf_jit_harden: 0, kernel.unprivileged_bpf_disabled: 2}
"""

import gzip
import os
import platform
import zlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError
from ansible_collections.zerotrust.cilium.plugins.module_utils.kernel import (
    known_config_options,
    parse_kernel_config,
    parse_mounts,
    parse_release,
)

DEFAULT_CONFIG_PATHS = ["/proc/config.gz", "/boot/config-{release}"]
FACT_SYSCTLS = ("net.core.bpf_jit_enable", "net.core.bpf_jit_harden", "kernel.unprivileged_bpf_disabled")
BTF_PATH = "/sys/kernel/btf/vmlinux"
BPFFS_PATH = "/sys/fs/bpf"
_GZIP_MAGIC = b"\x1f\x8b"


def _under(root, path):
    return os.path.join(root, path.lstrip("/"))


def _read_text(root, path):
    with open(_under(root, path), "rb") as handle:
        return handle.read().decode("utf-8", "replace")


def _read_config(root, path):
    with open(_under(root, path), "rb") as handle:
        data = handle.read()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def _find_config(root, paths, release):
    problems = []
    for template in paths:
        path = template.replace("{release}", release)
        if not os.path.exists(_under(root, path)):
            continue
        try:
            return path, parse_kernel_config(_read_config(root, path)), problems
        except (IOError, OSError, EOFError, ValueError, zlib.error) as err:
            problems.append("%s: %s" % (path, err))
    return "unknown", {}, problems


def _read_sysctl(root, key):
    try:
        text = _read_text(root, "/proc/sys/" + key.replace(".", "/")).strip()
    except (IOError, OSError):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def gather(root="/", config_paths=None, config_options="relevant"):
    """Read the kernel facts below ``root`` (``/`` on a node, a fake tree in tests)."""
    release = _read_text(root, "/proc/sys/kernel/osrelease").strip()
    parsed = parse_release(release, field="/proc/sys/kernel/osrelease")

    try:
        architecture = _read_text(root, "/proc/sys/kernel/arch").strip()
    except (IOError, OSError):
        architecture = platform.machine()

    source, options, problems = _find_config(root, config_paths or DEFAULT_CONFIG_PATHS, release)
    if config_options == "relevant":
        wanted = set(known_config_options())
        options = {name: value for name, value in options.items() if name in wanted}

    if source != "unknown" and options.get("CONFIG_MODULES") in ("y", "n"):
        modules_supported, evidence = options["CONFIG_MODULES"] == "y", "config"
    else:
        # /proc/modules exists exactly when the kernel was built with CONFIG_MODULES.
        modules_supported, evidence = os.path.exists(_under(root, "/proc/modules")), "procfs"

    try:
        mounts = parse_mounts(_read_text(root, "/proc/mounts"))
    except (IOError, OSError):
        mounts = []
    bpffs_mounted = any(m["target"] == BPFFS_PATH and m["fstype"] == "bpf" for m in mounts)
    cgroup2_points = [m["target"] for m in mounts if m["fstype"] == "cgroup2"]

    return {
        "release": parsed["release"],
        "version": parsed["version_string"],
        "version_tuple": parsed["version"],
        "rhel": parsed["rhel"],
        "architecture": architecture,
        "config": {"source": source, "options": dict(sorted(options.items())), "problems": problems},
        "modules_supported": modules_supported,
        "modules_evidence": evidence,
        "btf": {"present": os.path.exists(_under(root, BTF_PATH)), "path": BTF_PATH},
        "bpffs": {"mounted": bpffs_mounted, "path": BPFFS_PATH},
        "cgroup2": {
            "mounted": bool(cgroup2_points),
            "path": cgroup2_points[0] if cgroup2_points else None,
            "mount_points": cgroup2_points,
        },
        "sysctls": {key: _read_sysctl(root, key) for key in FACT_SYSCTLS},
    }


def main():
    argument_spec = dict(
        config_paths=dict(type="list", elements="str", default=list(DEFAULT_CONFIG_PATHS)),
        config_options=dict(type="str", choices=["relevant", "all"], default="relevant"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        facts = gather("/", module.params["config_paths"], module.params["config_options"])
    except CollectionError as err:
        module.fail_json(msg=str(err))
    except (IOError, OSError) as err:
        module.fail_json(msg="kernel_facts: cannot read %s: %s" % (getattr(err, "filename", "?"), err))
    module.exit_json(changed=False, ansible_facts={"zerotrust_kernel": facts})


if __name__ == "__main__":
    main()
