# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/cilium_values.py: main() with ansible-core's
``patch_module_args``, the exit JSON, check and diff mode, and errors turned into fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

from ansible_collections.zerotrust.cilium.plugins.modules import cilium_values

SPEC = {
    "zerotrust_api_server_host": "192.0.2.10",
    "zerotrust_pod_cidr": "10.244.0.0/16",
    "zerotrust_service_cidr": "10.96.0.0/12",
    "zerotrust_node_cidrs": ["192.0.2.0/24"],
    "zerotrust_underlay_mtu": 9000,
    "cilium_nodes": 5,
    "cilium_control_plane_nodes": 3,
    "cilium_routing_mode": "native",
}


def run_main(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            cilium_values.main()
    output = capsys.readouterr().out
    assert "Traceback" not in output
    return exit_info.value.code, json.loads(output)


def test_documentation_lists_every_option_of_the_argument_spec():
    documented = yaml.safe_load(cilium_values.DOCUMENTATION)["options"]
    assert sorted(documented) == [
        "allow_upgrade", "chart_version", "helm", "lb_ip_pools", "overrides", "preflight", "release", "spec", "values"]
    assert sorted(documented["helm"]["suboptions"]) == [
        "binary_path", "chart_ref", "chart_repo_url", "context", "history_max", "kubeconfig", "namespace",
        "release_name", "timeout"]


def test_main_builds_validated_values(capsys):
    pools = [{"name": "public", "blocks": [{"cidr": "192.0.2.128/27"}]}]
    code, result = run_main(capsys, {"spec": SPEC, "lb_ip_pools": pools})
    assert code == 0
    assert result["changed"] is False
    values = result["values"]
    # The underlay MTU goes to Helm unreduced; Cilium subtracts overhead itself.
    assert values["MTU"] == 9000
    assert values["routingMode"] == "native"
    assert values["ipv4NativeRoutingCIDR"] == "10.244.0.0/16"
    assert values["autoDirectNodeRoutes"] is True
    assert values["kubeProxyReplacement"] is True
    assert values["k8sServiceHost"] == "192.0.2.10" and values["k8sServicePort"] == 6443
    assert values["operator"]["replicas"] == 2
    assert result["plan"]["mtu"]["route_mtu"] == 9000
    assert result["lb_ip_pools"][0]["kind"] == "CiliumLoadBalancerIPPool"
    assert result["helm"]["chart_repo_url"] == "https://helm.cilium.io/"
    assert result["helm"]["chart_version"] == "1.20.0"
    assert result["helm_command"].startswith("helm upgrade --install")
    assert result["value_warnings"] == []
    assert "diff" not in result
    assert "release" not in result


def test_main_in_check_mode_gives_the_same_answer(capsys):
    _code, normal = run_main(capsys, {"spec": SPEC})
    code, checked = run_main(capsys, {"spec": SPEC, "_ansible_check_mode": True})
    assert code == 0
    assert checked["changed"] is False
    assert checked["values"] == normal["values"]


def test_main_returns_the_overrides_as_a_diff(capsys):
    code, result = run_main(capsys, {"spec": SPEC, "overrides": {"hubble": {"relay": {"replicas": 3}}},
                                     "_ansible_diff": True})
    assert code == 0
    assert result["diff"]["before"]["hubble"]["relay"]["replicas"] == 2
    assert result["diff"]["after"]["hubble"]["relay"]["replicas"] == 3
    assert result["diff"]["after"] == result["values"]


def test_main_reports_findings_as_warnings(capsys):
    code, result = run_main(capsys, {"spec": dict(SPEC, cilium_control_plane_nodes=1)})
    assert code == 0
    assert len(result["value_warnings"]) == 1
    assert "lowered to 1" in result["value_warnings"][0]


def test_main_fails_with_every_violation_and_no_traceback(capsys):
    values = {"lb": {"algorithm": "maglev"}, "policyEnforceMode": "always", "conntrack": {"enabled": False},
              "lbExternalIPPool": {"cidr": "192.168.100.0/24"}, "tunnel": "vxlan"}
    code, result = run_main(capsys, {"values": values})
    assert code == 1
    assert result["failed"] is True
    assert result["msg"].startswith("cilium_values: 5 problem(s) found:\n- ")
    for fragment in ("values.lb.algorithm: 'maglev' is not a key", "did you mean loadBalancer.algorithm?",
                     "did you mean policyEnforcementMode?", "values.conntrack.enabled: False",
                     "values.lbExternalIPPool.cidr", "values.tunnel: 'vxlan'", "routingMode (native or tunnel)"):
        assert fragment in result["msg"]


def test_main_fails_on_a_bad_spec_naming_the_variable(capsys):
    code, result = run_main(capsys, {"spec": dict(SPEC, cilium_routing_mode="natve")})
    assert code == 1
    assert result["msg"] == ("cilium_values: 1 problem(s) found:\n- cilium_routing_mode: 'natve' is not one of: "
                             "native, tunnel")


def test_main_validates_a_values_file(capsys):
    code, result = run_main(capsys, {"values": {"hubble": {"metrics": {"enabled": ["dns", "http"]}}}})
    assert code == 0
    assert result["value_warnings"] == ["hubble.metrics.enabled lists the legacy 'http' metric; 'httpV2' is the "
                                        "maintained one (they cannot be combined)"]
    assert "helm" not in result


@pytest.mark.parametrize("args, message", [
    ({}, "one of the following is required: spec, values"),
    ({"spec": SPEC, "values": {}}, "parameters are mutually exclusive: spec|values"),
])
def test_main_needs_exactly_one_input(capsys, args, message):
    code, result = run_main(capsys, args)
    assert code == 1
    assert message in result["msg"]


def test_main_decides_the_release_action(capsys):
    current = {"chart": "cilium-1.19.3", "status": "deployed", "revision": "7", "values": {"MTU": 9000}}
    code, result = run_main(capsys, {"spec": SPEC, "release": current})
    assert code == 0
    assert result["release"]["action"] == "upgrade"
    assert result["release"]["blocked"].endswith("upgrading a running CNI is opt-in: set cilium_upgrade: true")
    code, allowed = run_main(capsys, {"spec": SPEC, "release": current, "allow_upgrade": True})
    assert allowed["release"]["blocked"] is None
    assert allowed["release"]["preflight"] is True
    assert allowed["release"]["rollback_revision"] == 7
    assert allowed["preflight_helm"]["release_values"]["preflight"]["enabled"] is True


def test_main_builds_helm_arguments_for_a_local_chart(capsys):
    code, result = run_main(capsys, {"spec": SPEC, "helm": {"chart_ref": "/srv/charts/cilium-1.20.0.tgz",
                                                            "kubeconfig": "/etc/kubernetes/admin.conf",
                                                            "binary_path": "/usr/local/bin/helm"}})
    assert code == 0
    assert result["chart"]["source"] == "local"
    assert "chart_version" not in result["helm"]
    assert "chart_repo_url" not in result["helm"]
    assert result["helm"]["kubeconfig"] == "/etc/kubernetes/admin.conf"
    assert result["helm"]["binary_path"] == "/usr/local/bin/helm"
