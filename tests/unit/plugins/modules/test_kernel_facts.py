# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/kernel_facts.py: a fake root tree, this host, and main()."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import json
import os
import re
import subprocess

import pytest

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput
from ansible_collections.zerotrust.cilium.plugins.modules import kernel_facts

RHEL_RELEASE = "4.18.0-553.el8_10.x86_64"

CONFIG_TEXT = """\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_MODULES=y
CONFIG_BPF=y
CONFIG_BPF_SYSCALL=y
CONFIG_VXLAN=m
# CONFIG_GENEVE is not set
CONFIG_LOG_BUF_SHIFT=18
CONFIG_DEFAULT_HOSTNAME="(none)"
"""

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0
"""


def _write(root, path, data):
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        target.write_bytes(data)
    else:
        target.write_text(data)
    return target


def make_root(tmp_path, release=RHEL_RELEASE, proc_config=True, boot_config=False, mounts=MOUNTS,
              btf=True, modules=True, sysctls=None):
    root = tmp_path / "root"
    _write(root, "/proc/sys/kernel/osrelease", release + "\n")
    _write(root, "/proc/sys/kernel/arch", "aarch64\n")
    if proc_config:
        _write(root, "/proc/config.gz", gzip.compress(CONFIG_TEXT.encode()))
    if boot_config:
        _write(root, "/boot/config-" + release, CONFIG_TEXT.replace("CONFIG_VXLAN=m", "CONFIG_VXLAN=y"))
    if mounts is not None:
        _write(root, "/proc/mounts", mounts)
    if btf:
        _write(root, "/sys/kernel/btf/vmlinux", b"\x9f\xeb\x01\x00")
    if modules:
        _write(root, "/proc/modules", "vxlan 77824 0 - Live 0x0000000000000000\n")
    values = {"net/core/bpf_jit_enable": "1\n", "net/core/bpf_jit_harden": "2\n",
              "kernel/unprivileged_bpf_disabled": "1\n"}
    values.update(sysctls or {})
    for path, value in values.items():
        if value is not None:
            _write(root, "/proc/sys/" + path, value)
    return str(root)


# --------------------------------------------------------------------------------------
# A fake root tree
# --------------------------------------------------------------------------------------

def test_gather_fake_rhel_node(tmp_path):
    facts = kernel_facts.gather(make_root(tmp_path))
    assert facts["release"] == RHEL_RELEASE
    assert facts["version"] == "4.18.0"
    assert facts["version_tuple"] == [4, 18, 0]
    assert facts["rhel"] == {"major": 8, "minor": 10}
    assert facts["architecture"] == "aarch64"
    assert facts["config"]["source"] == "/proc/config.gz"
    # Only matrix options are kept by default: CONFIG_LOG_BUF_SHIFT is dropped.
    assert facts["config"]["options"] == {"CONFIG_BPF": "y", "CONFIG_BPF_SYSCALL": "y", "CONFIG_GENEVE": "n",
                                          "CONFIG_MODULES": "y", "CONFIG_VXLAN": "m"}
    assert facts["config"]["problems"] == []
    assert (facts["modules_supported"], facts["modules_evidence"]) == (True, "config")
    assert facts["btf"] == {"present": True, "path": "/sys/kernel/btf/vmlinux"}
    assert facts["bpffs"] == {"mounted": True, "path": "/sys/fs/bpf"}
    assert facts["cgroup2"] == {"mounted": True, "path": "/sys/fs/cgroup", "mount_points": ["/sys/fs/cgroup"]}
    assert facts["sysctls"] == {"net.core.bpf_jit_enable": 1, "net.core.bpf_jit_harden": 2,
                                "kernel.unprivileged_bpf_disabled": 1}
    json.dumps(facts)  # facts must be JSON-friendly


def test_gather_all_config_options(tmp_path):
    facts = kernel_facts.gather(make_root(tmp_path), config_options="all")
    assert facts["config"]["options"]["CONFIG_LOG_BUF_SHIFT"] == "18"
    assert facts["config"]["options"]["CONFIG_DEFAULT_HOSTNAME"] == "(none)"


def test_gather_falls_back_to_boot_config(tmp_path):
    facts = kernel_facts.gather(make_root(tmp_path, proc_config=False, boot_config=True))
    assert facts["config"]["source"] == "/boot/config-" + RHEL_RELEASE
    assert facts["config"]["options"]["CONFIG_VXLAN"] == "y"


def test_gather_unknown_config_is_a_state(tmp_path):
    facts = kernel_facts.gather(make_root(tmp_path, proc_config=False, modules=False))
    assert facts["config"] == {"source": "unknown", "options": {}, "problems": []}
    # Without a config, module support is read from /proc/modules.
    assert (facts["modules_supported"], facts["modules_evidence"]) == (False, "procfs")


def test_gather_skips_a_corrupt_config_and_says_why(tmp_path):
    root = make_root(tmp_path, boot_config=True)
    _write(tmp_path / "root", "/proc/config.gz", b"\x1f\x8b\x08\x00garbage")
    facts = kernel_facts.gather(root)
    assert facts["config"]["source"] == "/boot/config-" + RHEL_RELEASE
    assert len(facts["config"]["problems"]) == 1
    assert facts["config"]["problems"][0].startswith("/proc/config.gz: ")


def test_gather_custom_config_paths(tmp_path):
    root = make_root(tmp_path, proc_config=False)
    _write(tmp_path / "root", "/lib/modules/%s/config" % RHEL_RELEASE, "CONFIG_NETKIT=y\n# CONFIG_MODULES is not set\n")
    facts = kernel_facts.gather(root, config_paths=["/nowhere/config", "/lib/modules/{release}/config"])
    assert facts["config"]["source"] == "/lib/modules/%s/config" % RHEL_RELEASE
    assert facts["config"]["options"] == {"CONFIG_NETKIT": "y", "CONFIG_MODULES": "n"}
    # CONFIG_MODULES from the config wins over /proc/modules.
    assert (facts["modules_supported"], facts["modules_evidence"]) == (False, "config")


def test_gather_missing_mounts_btf_and_sysctls(tmp_path):
    mounts = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ntmpfs /sys/fs/bpf tmpfs rw 0 0\n"
    root = make_root(tmp_path, mounts=mounts, btf=False, sysctls={"net/core/bpf_jit_harden": None,
                                                                  "net/core/bpf_jit_enable": "junk\n"})
    facts = kernel_facts.gather(root)
    assert facts["bpffs"]["mounted"] is False  # tmpfs at the path is not bpffs
    assert facts["cgroup2"] == {"mounted": False, "path": None, "mount_points": []}
    assert facts["btf"]["present"] is False
    assert facts["sysctls"]["net.core.bpf_jit_harden"] is None
    assert facts["sysctls"]["net.core.bpf_jit_enable"] is None


def test_gather_bad_release_is_a_domain_error(tmp_path):
    root = make_root(tmp_path, release="unknown-kernel")
    with pytest.raises(InvalidInput) as caught:
        kernel_facts.gather(root)
    assert str(caught.value) == ("/proc/sys/kernel/osrelease: 'unknown-kernel' does not start with "
                                 "<major>.<minor> (e.g. '5.15.0-105-generic')")


# --------------------------------------------------------------------------------------
# This host's real /proc and /sys
# --------------------------------------------------------------------------------------

def _mountinfo_fstypes():
    """Mount point -> fstype from /proc/self/mountinfo (a different file than /proc/mounts)."""
    result = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            before, after = line.split(" - ", 1)
            result[before.split()[4]] = after.split()[0]
    return result


def test_gather_this_host():
    facts = kernel_facts.gather("/")
    uname = os.uname()
    assert facts["release"] == uname.release
    numbers = [int(part) for part in re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", uname.release).groups("0")]
    assert facts["version_tuple"] == numbers
    assert facts["architecture"] == uname.machine

    if os.path.exists("/proc/config.gz"):
        assert facts["config"]["source"] == "/proc/config.gz"
        with gzip.open("/proc/config.gz", "rt") as handle:
            config_text = handle.read()
        bpf_line = [line for line in config_text.splitlines() if line.startswith("CONFIG_BPF=")][0]
        assert facts["config"]["options"]["CONFIG_BPF"] == bpf_line.split("=", 1)[1]
        modules_on = "CONFIG_MODULES=y" in config_text.splitlines()
        assert facts["modules_supported"] is modules_on
    elif os.path.exists("/boot/config-" + uname.release):
        assert facts["config"]["source"] == "/boot/config-" + uname.release
    else:
        assert facts["config"]["source"] == "unknown"
    assert facts["modules_supported"] is os.path.exists("/proc/modules")

    assert facts["btf"]["present"] is os.path.exists("/sys/kernel/btf/vmlinux")
    fstypes = _mountinfo_fstypes()
    assert facts["bpffs"]["mounted"] is (fstypes.get("/sys/fs/bpf") == "bpf")
    assert set(facts["cgroup2"]["mount_points"]) == {p for p, t in fstypes.items() if t == "cgroup2"}
    if facts["cgroup2"]["path"]:
        stat = subprocess.run(["stat", "-f", "-c", "%T", facts["cgroup2"]["path"]],
                              stdout=subprocess.PIPE, universal_newlines=True, check=True)
        assert stat.stdout.strip() == "cgroup2fs"

    for key in ("net.core.bpf_jit_enable", "net.core.bpf_jit_harden", "kernel.unprivileged_bpf_disabled"):
        sysctl_cmd = subprocess.run(["sysctl", "-n", key], stdout=subprocess.PIPE,
                                    universal_newlines=True, check=True)
        assert facts["sysctls"][key] == int(sysctl_cmd.stdout.strip())


# --------------------------------------------------------------------------------------
# main()
# --------------------------------------------------------------------------------------

def _run_main(capsys, args):
    return run_module(kernel_facts, capsys, args)


def test_main_returns_facts_under_one_key(capsys):
    code, result = _run_main(capsys, {"_ansible_check_mode": True})
    assert code == 0
    assert result["changed"] is False
    assert list(result["ansible_facts"]) == ["zerotrust_kernel"]
    assert result["ansible_facts"]["zerotrust_kernel"]["release"] == os.uname().release


def test_main_turns_domain_errors_into_fail_json(capsys, monkeypatch):
    def broken_gather(root, config_paths, config_options):
        raise InvalidInput("/proc/sys/kernel/osrelease", "garbage", "does not start with <major>.<minor>")

    monkeypatch.setattr(kernel_facts, "gather", broken_gather)
    code, result = _run_main(capsys, {})
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == "/proc/sys/kernel/osrelease: 'garbage' does not start with <major>.<minor>"


def test_main_rejects_unknown_config_options_choice(capsys):
    code, result = _run_main(capsys, {"config_options": "some"})
    assert code == 1
    assert "config_options" in result["msg"] and "relevant" in result["msg"]
