# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/kube_proxy_cleanup.py: argument handling, the errors a
user sees (fail_json, never a traceback) and a run that is asked to touch nothing.

These tests never let the module change this machine. What it does to real iptables,
ip6tables and nftables (both backends, check mode, diff, idempotence) is tested in
network namespaces by tests/integration/test_kube_proxy_cleanup.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible.module_utils.basic import AnsibleModule

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.module_utils.kube_proxy import iptables_backend_from_version
from ansible_collections.zerotrust.cilium.plugins.modules import kube_proxy_cleanup

NOTHING = {"iptables": False, "nftables": False, "ipvs": False, "ipsets": False, "ipvs_interface": ""}


def run_main(capsys, args):
    return run_module(kube_proxy_cleanup, capsys, args)


@pytest.mark.parametrize("args, fragments", [
    (dict(NOTHING, keep_chains=["KUBE FIREWALL"]),
     ["kube_proxy_cleanup: keep_chains: 'KUBE FIREWALL' is not an iptables chain name"]),
    (dict(NOTHING, keep_chains=["-j"]), ["keep_chains: '-j' is not an iptables chain name"]),
    (dict(NOTHING, nodeport_range="30000:32767"),
     ["kube_proxy_cleanup: nodeport_range: '30000:32767' is not a port range such as '30000-32767'"]),
    (dict(NOTHING, nodeport_range="40000-30000"), ["nodeport_range: '40000-30000' must be FIRST-LAST"]),
    (dict(NOTHING, families=["ipv4", "inet"]), ["families", "inet", "ipv4, ipv6"]),
    (dict(NOTHING, backends=["iptables"]), ["backends", "iptables", "nft, legacy"]),
])
def test_bad_arguments_fail_with_a_message_and_change_nothing(capsys, args, fragments):
    code, result = run_main(capsys, args)
    assert code == 1
    assert result["failed"] is True
    assert result.get("changed", False) is False
    for fragment in fragments:
        assert fragment in result["msg"]
    assert "Traceback" not in result["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_run_asked_to_touch_nothing_reports_nothing(capsys, check_mode):
    code, result = run_main(capsys, dict(NOTHING, _ansible_check_mode=check_mode, _ansible_diff=True))
    assert code == 0
    assert result["changed"] is False
    assert result["iptables"] == []
    assert result["counts"] == {"ipv4": {}, "ipv6": {}}
    assert result["backends"] == []
    assert result["nftables"] == {"available": False, "removed": []}
    assert result["ipvs"] == {"available": False, "reason": "not asked (ipvs: false)", "removed": []}
    assert result["ipsets"] == {"available": False, "removed": []}
    assert result["interface"] == {"name": "", "present": False, "kind": None, "addresses": [], "removed": False}
    assert result["diff"] == []


def test_a_failing_program_is_reported_with_its_command_and_exit_code():
    with patch_module_args(dict(NOTHING)):
        module = AnsibleModule(argument_spec=dict(
            families=dict(type="list", elements="str", default=["ipv4"]),
            iptables=dict(type="bool"), nftables=dict(type="bool"), ipvs=dict(type="bool"),
            ipsets=dict(type="bool"), ipvs_interface=dict(type="str")), supports_check_mode=True)
    cleanup = kube_proxy_cleanup.Cleanup(module)
    with pytest.raises(kube_proxy_cleanup.CleanupFailed) as error:
        cleanup.run(["sh", "-c", "echo 'iptables-restore: line 3 failed' >&2; exit 2"])
    assert str(error.value) == ("kube_proxy_cleanup: 'sh -c echo 'iptables-restore: line 3 failed' >&2; exit 2' "
                                "failed with exit code 2: iptables-restore: line 3 failed")
    rc, out, _err = cleanup.run(["sh", "-c", "exit 1"], allowed_rc=(0, 1))
    assert rc == 1


@pytest.mark.parametrize("version, backend", [
    ("iptables-save v1.8.9 (nf_tables)", "nft"),
    ("iptables-save v1.8.9 (legacy)", "legacy"),
    ("iptables-save v1.6.1", "legacy"),
    ("ip6tables-save v1.8.4 (nf_tables)\n", "nft"),
    ("", "legacy"),
])
def test_the_backend_of_a_plain_iptables_save_comes_from_its_version(version, backend):
    assert iptables_backend_from_version(version) == backend
