# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/sysctl_state.py: a fake root tree, this host, and main()."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.module_utils import sysctl
from ansible_collections.zerotrust.cilium.plugins.modules import sysctl_state

DROPIN = "/etc/sysctl.d/90-zerotrust-cilium.conf"


def _write(root, path, text):
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def make_root(tmp_path, systemd=True, files=None, proc=None):
    """A node: /proc/sys values, sysctl files, and systemd when asked."""
    root = tmp_path / "root"
    values = {
        "net/ipv4/ip_forward": "0\n",
        "net/ipv4/tcp_mtu_probing": "0\n",
        "net/ipv4/ip_local_port_range": "32768\t60999\n",
        "net/ipv4/conf/all/rp_filter": "2\n",
        "net/ipv4/conf/eth0/rp_filter": "2\n",
        "net/ipv4/conf/lxc12ab/rp_filter": "2\n",
        "net/ipv4/conf/lxc_health/rp_filter": "0\n",
        "net/ipv4/conf/eth0.100/rp_filter": "1\n",
        "net/netfilter/nf_conntrack_max": "262144\n",
    }
    values.update(proc or {})
    for path, value in values.items():
        _write(root, "/proc/sys/" + path, value)
    for path, text in (files or {}).items():
        _write(root, path, text)
    if systemd:
        (root / "run" / "systemd" / "system").mkdir(parents=True)
        _write(root, "/usr/lib/systemd/systemd-sysctl", "")
    return str(root)


def test_expand_key_matches_devices_and_translates_dots(tmp_path):
    root = make_root(tmp_path)
    assert sysctl_state.expand_key(root, "net.ipv4.conf.lxc*.rp_filter") == [
        "net.ipv4.conf.lxc12ab.rp_filter", "net.ipv4.conf.lxc_health.rp_filter"]
    assert sysctl_state.expand_key(root, "net.ipv4.conf.eth0/100.rp_filter") == ["net.ipv4.conf.eth0/100.rp_filter"]
    assert sysctl_state.expand_key(root, "net.ipv4.conf.*.rp_filter") == [
        "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.eth0.rp_filter", "net.ipv4.conf.eth0/100.rp_filter",
        "net.ipv4.conf.lxc12ab.rp_filter", "net.ipv4.conf.lxc_health.rp_filter"]
    assert sysctl_state.expand_key(root, "net.ipv4.conf.cilium_*.rp_filter") == []
    assert sysctl_state.expand_key(root, "net.ipv6.conf.all.forwarding") == []
    # A directory is not a key.
    assert sysctl_state.expand_key(root, "net.ipv4.conf") == []


def test_gather_reads_values_absent_keys_and_applier(tmp_path):
    root = make_root(tmp_path)
    desired = {"net.ipv4.ip_forward": "1", "net.ipv4.ip_local_port_range": "32768 60999",
               "net.ipv4.conf.lxc*.rp_filter": 0, "net.ipv6.conf.all.forwarding": "1"}
    result = sysctl_state.gather(root, desired, DROPIN)
    assert result["applier"] == "systemd"
    assert result["apply_command"] == ["/usr/lib/systemd/systemd-sysctl", DROPIN]
    assert result["running"] == {
        "net.ipv4.conf.lxc12ab.rp_filter": "2",
        "net.ipv4.conf.lxc_health.rp_filter": "0",
        "net.ipv4.ip_forward": "0",
        "net.ipv4.ip_local_port_range": "32768 60999",
    }
    assert result["absent"] == ["net.ipv6.conf.all.forwarding"]
    assert "net.ipv6.conf.all.forwarding" not in result["existing"]
    assert result["conflicts"] == [] and result["files"] == [DROPIN]


def test_gather_without_systemd_uses_procps(tmp_path):
    root = make_root(tmp_path, systemd=False, files={"/etc/sysctl.conf": "net.ipv4.ip_forward = 0\n"})
    result = sysctl_state.gather(root, {"net.ipv4.ip_forward": "1"}, DROPIN, sysctl_binary="/usr/sbin/sysctl")
    assert result["applier"] == "procps"
    assert result["apply_command"] == ["/usr/sbin/sysctl", "-p", DROPIN]
    # procps reads /etc/sysctl.conf last: it overrides the drop-in.
    assert [(item["file"], item["line"]) for item in result["conflicts"]] == [("/etc/sysctl.conf", 1)]
    # systemd-sysctl does not read /etc/sysctl.conf.
    assert sysctl_state.gather(root, {"net.ipv4.ip_forward": "1"}, DROPIN, applier="systemd")["conflicts"] == []


def test_gather_finds_a_hardening_dropin_and_ignores_our_own_file(tmp_path):
    files = {
        "/etc/sysctl.d/99-hardening.conf": "# CIS 3.1.1\nnet.ipv4.ip_forward = 0\nkernel.kptr_restrict = 2\n",
        "/etc/sysctl.d/README.sysctl": "net.ipv4.ip_forward = 0\n",
        DROPIN: "net.ipv4.ip_forward = 0\n",  # an older version of our file is not a conflict
        "/usr/lib/sysctl.d/50-default.conf": "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n",
        "/usr/lib/sysctl.d/99-zzz-late.conf": "net.ipv4.conf.lxc12ab.rp_filter = 1\n",
    }
    root = make_root(tmp_path, files=files)
    plan = sysctl.plan_sysctls()["sysctls"]
    result = sysctl_state.gather(root, plan, DROPIN)
    assert result["files"] == ["/usr/lib/sysctl.d/50-default.conf", DROPIN, "/etc/sysctl.d/99-hardening.conf",
                               "/usr/lib/sysctl.d/99-zzz-late.conf"]
    found = [(item["file"], item["line"], item["key"], item["theirs"]) for item in result["conflicts"]]
    assert found == [
        ("/etc/sysctl.d/99-hardening.conf", 2, "net.ipv4.ip_forward", "0"),
        ("/usr/lib/sysctl.d/99-zzz-late.conf", 1, "net.ipv4.conf.lxc*.rp_filter", "1"),
    ]
    assert result["conflicts"][0]["message"] == (
        "/etc/sysctl.d/99-hardening.conf line 2 sets net.ipv4.ip_forward = 0, which wins over "
        "net.ipv4.ip_forward = 1 from /etc/sysctl.d/90-zerotrust-cilium.conf")


def test_gather_skips_a_dangling_link(tmp_path):
    root = make_root(tmp_path)
    os.makedirs(os.path.join(root, "etc", "sysctl.d"))
    os.symlink("../sysctl.conf", os.path.join(root, "etc", "sysctl.d", "99-sysctl.conf"))
    result = sysctl_state.gather(root, {"net.ipv4.ip_forward": "1"}, DROPIN)
    assert result["conflicts"] == []
    assert result["files"] == [DROPIN]


def test_gather_this_host_matches_proc_sys():
    result = sysctl_state.gather("/", {"net.ipv4.ip_forward": "1", "net.ipv4.ip_local_port_range": "1 2"}, DROPIN)
    for key in ("net.ipv4.ip_forward", "net.ipv4.ip_local_port_range"):
        with open(sysctl.key_to_path(key)) as handle:
            assert result["running"][key] == " ".join(handle.read().split())
    assert result["absent"] == []


# --------------------------------------------------------------------------------------
# main()
# --------------------------------------------------------------------------------------

def _run_main(capsys, args):
    return run_module(sysctl_state, capsys, args)


def test_main_reads_without_changing(capsys):
    code, result = _run_main(capsys, {"sysctls": {"net.ipv4.ip_forward": 1}, "_ansible_check_mode": True})
    assert code == 0
    assert result["changed"] is False
    assert set(result) >= {"applier", "apply_command", "running", "existing", "absent", "files", "conflicts"}
    assert result["apply_command"][-1] == DROPIN


@pytest.mark.parametrize("args, message", [
    ({"sysctls": {"net..ip_forward": 1}},
     "sysctl_state: sysctls[net..ip_forward]: 'net..ip_forward' is not a dotted sysctl name such as "
     "'net.ipv4.ip_forward'"),
    ({"sysctls": {"net.ipv4.ip_forward": 1}, "dropin": "/etc/zerotrust.conf"},
     "sysctl_state: dropin_path: '/etc/zerotrust.conf' is not a *.conf file in one of: " + ", ".join(
         sysctl.SYSCTL_D_DIRS)),
])
def test_main_turns_domain_errors_into_fail_json(capsys, args, message):
    code, result = _run_main(capsys, args)
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == message


def test_main_rejects_an_unknown_applier(capsys):
    code, result = _run_main(capsys, {"sysctls": {}, "applier": "sysvinit"})
    assert code == 1
    assert "applier" in result["msg"] and "auto, systemd, procps" in result["msg"]
