# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/network_policy_plan.py: main() with ansible-core's
``patch_module_args``, the exit JSON, check mode, a refused proof, bad input and a missing
controller library turned into fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.modules import network_policy_plan

WORKLOADS = {
    "production": [
        {"name": "frontend", "labels": {"app": "frontend"}, "ports": [{"name": "http", "port": 80}]},
        {"name": "backend", "labels": {"app": "backend"}, "ports": [{"name": "api", "port": 8080}]},
    ],
    "kube-system": [{"name": "coredns", "labels": {"k8s-app": "kube-dns"},
                     "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}],
}
FLOW = {"name": "frontend-to-backend", "from": "production/frontend", "to": "production/backend",
        "ports": [{"port": 8080}], "http": [{"method": "GET", "path": "/api/v1/data"}]}
ARGS = {"managed_namespaces": ["production"], "workloads": WORKLOADS, "flows": [FLOW]}


def run_main(capsys, args):
    return run_module(network_policy_plan, capsys, args)


def test_main_returns_objects_proof_and_report(capsys):
    code, result = run_main(capsys, ARGS)
    assert code == 0
    assert result["changed"] is False
    assert [item["file"] for item in result["objects"]] == [
        "production/zerotrust-default-deny.yaml",
        "production/zerotrust-allow-dns.yaml",
        "production/zerotrust-flow-frontend-to-backend-egress.yaml",
        "production/zerotrust-flow-frontend-to-backend-ingress.yaml",
    ]
    assert result["proof"]["ok"] is True
    assert result["proof"]["flows"][0]["pairs"] == {"allowed": 0, "restricted": 1, "denied": 0}
    assert result["summary"]["kinds"] == {"NetworkPolicy": 2, "CiliumNetworkPolicy": 2}
    assert result["report"].startswith("# Network policy proof\n\n**Verdict: proven.**")
    assert "changes" not in result  # render mode


def test_main_in_check_mode_gives_the_same_answer(capsys):
    normal = run_main(capsys, ARGS)[1]
    code, checked = run_main(capsys, dict(ARGS, _ansible_check_mode=True))
    assert code == 0
    assert checked["objects"] == normal["objects"]
    assert checked["proof"] == normal["proof"]


def test_main_returns_a_refused_proof_without_failing(capsys):
    l4 = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "allow-frontend-to-backend", "namespace": "production"},
          "spec": {"podSelector": {"matchLabels": {"app": "backend"}}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                                "ports": [{"protocol": "TCP", "port": 8080}]}]}}
    code, result = run_main(capsys, dict(ARGS, existing_policies=[l4]))
    assert code == 0
    assert result["proof"]["ok"] is False
    assert [item["kind"] for item in result["proof"]["violations"]] == ["l7_shadowed"]


def test_bad_flow_fails_with_the_flow_and_field(capsys):
    bad = dict(FLOW, ports=[{"port": 8080, "endPort": 80}])
    code, result = run_main(capsys, dict(ARGS, flows=[bad]))
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == (
        "flow frontend-to-backend: flows[0].ports[0].endPort: 80 must be greater than or equal to port (8080)"
    )
    assert "exception" not in result


def test_unsupported_kubernetes_version_fails_cleanly(capsys):
    code, result = run_main(capsys, dict(ARGS, kubernetes_version="1.9"))
    assert code == 1
    assert "kubernetes_version: '1.9' is not covered by the installed kubernetes-validate" in result["msg"]


def test_missing_controller_library_is_reported_as_such(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes_validate", None)
    code, result = run_main(capsys, ARGS)
    assert code == 1
    assert "Failed to import the required Python library (kubernetes-validate)" in result["msg"]
    assert "it validates NetworkPolicy against the Kubernetes schema" in result["msg"]


def test_choices_are_enforced_by_the_argument_spec(capsys):
    code, result = run_main(capsys, dict(ARGS, policy_enforcement_mode="never"))
    assert code == 1
    assert "value of policy_enforcement_mode must be one of: default, always, got: never" in result["msg"]
