# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/policy_plan.py: main() with ansible-core's
``patch_module_args``, the exit JSON, check mode and errors turned into fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import yaml

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.modules import policy_plan

NAMESPACES = {"production": {}, "kube-system": {}}
PODS = [
    {
        "namespace": "production",
        "name": "frontend-0",
        "labels": {"app": "frontend"},
        "ports": [{"name": "http", "port": 80}],
    },
    {
        "namespace": "production",
        "name": "backend-0",
        "labels": {"app": "backend"},
        "ports": [{"name": "api", "port": 8080}],
    },
    {
        "namespace": "kube-system",
        "name": "coredns-0",
        "labels": {"k8s-app": "kube-dns"},
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
    },
]
ALLOW_FRONTEND = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-frontend-to-backend", "namespace": "production"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "backend"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        ],
    },
}


def run_main(capsys, args):
    return run_module(policy_plan, capsys, args)


def test_main_returns_matrix(capsys):
    code, result = run_main(
        capsys,
        {
            "namespaces": NAMESPACES,
            "pods": PODS,
            "policies": [ALLOW_FRONTEND],
            "probes": [{"port": 8080}],
            "explain": [["kube-system/coredns-0", "production/backend-0", 8080]],
        },
    )
    assert code == 0
    assert result["changed"] is False
    assert result["reachability"] == [
        {
            "port": 8080,
            "protocol": "TCP",
            "counts": {"allowed": 1, "denied": 1, "restricted": 0},
            "allowed": [["production/frontend-0", "production/backend-0"]],
            "denied": [["kube-system/coredns-0", "production/backend-0"]],
            "restricted": [],
        }
    ]
    assert result["identities"] == 3
    assert result["explain"][0]["verdict"] == "denied"
    assert result["explain"][0]["reason"] == (
        "denied: production/backend-0 is isolated for ingress and no ingress rule allows kube-system/coredns-0 on 8080/TCP"
    )
    assert result["summary"]["policies"] == {
        "NetworkPolicy": 1,
        "CiliumNetworkPolicy": 0,
        "CiliumClusterwideNetworkPolicy": 0,
    }


def test_main_in_check_mode_gives_the_same_answer(capsys):
    args = {"namespaces": NAMESPACES, "pods": PODS, "policies": [ALLOW_FRONTEND]}
    _result, normal = run_main(capsys, args)
    code, checked = run_main(capsys, dict(args, _ansible_check_mode=True))
    assert code == 0
    assert checked["changed"] is False
    assert checked["reachability"] == normal["reachability"]
    assert [(entry["port"], entry["protocol"]) for entry in checked["reachability"]] == [
        (80, "TCP"),
        (8080, "TCP"),
        (53, "UDP"),
    ]


def test_main_accepts_manifests_loaded_from_yaml(capsys):
    manifest = yaml.safe_load("""
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: dns-only
spec:
  endpointSelector: {}
  egress:
  - toEndpoints:
    - matchLabels:
        k8s:io.kubernetes.pod.namespace: kube-system
        k8s-app: kube-dns
    toPorts:
    - ports:
      - port: "53"
        protocol: UDP
""")
    code, result = run_main(
        capsys,
        {
            "namespaces": NAMESPACES,
            "pods": PODS,
            "policies": [manifest],
            "probes": [{"port": 53, "protocol": "udp"}, {"port": 6443, "to": "entity:kube-apiserver"}],
            "report_pairs": False,
        },
    )
    assert code == 0
    assert result["reachability"] == [
        {"port": 53, "protocol": "UDP", "counts": {"allowed": 2, "denied": 0, "restricted": 0}},
        {"port": 6443, "protocol": "TCP", "counts": {"allowed": 0, "denied": 3, "restricted": 0}},
    ]


def test_main_fails_with_the_domain_error(capsys):
    bad = dict(ALLOW_FRONTEND, spec=dict(ALLOW_FRONTEND["spec"], ingress=[{"ports": [{"port": 8080, "endPort": 80}]}]))
    code, result = run_main(capsys, {"namespaces": NAMESPACES, "pods": PODS, "policies": [bad]})
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == (
        "NetworkPolicy production/allow-frontend-to-backend: spec.ingress[0].ports[0].endPort: 80 "
        "must be greater than or equal to port (8080)"
    )


def test_main_fails_on_unknown_probe_namespace(capsys):
    code, result = run_main(
        capsys, {"namespaces": NAMESPACES, "pods": PODS, "probes": [{"port": 80, "to": "staging/*"}]}
    )
    assert code == 1
    assert (
        result["msg"]
        == "probes: probes[0].to[0]: 'staging/*' names unknown namespace 'staging'; known: kube-system, production"
    )


def test_main_reports_policy_warnings(capsys):
    ignored = dict(ALLOW_FRONTEND, spec=dict(ALLOW_FRONTEND["spec"], policyTypes=["Egress"]))
    code, result = run_main(capsys, {"namespaces": NAMESPACES, "pods": PODS, "policies": [ignored]})
    assert code == 0
    expected = (
        "NetworkPolicy production/allow-frontend-to-backend: spec.ingress has rules but spec.policyTypes does not "
        "list Ingress; Kubernetes ignores them"
    )
    assert result["policy_warnings"] == [expected]


def test_main_rejects_bad_mode_choice(capsys):
    code, result = run_main(capsys, {"namespaces": NAMESPACES, "pods": PODS, "policy_enforcement_mode": "strict"})
    assert code == 1
    assert "policy_enforcement_mode" in result["msg"] and "default, always, never" in result["msg"]


def test_documentation_parses_and_matches_argument_spec():
    documentation = yaml.safe_load(policy_plan.DOCUMENTATION)
    assert documentation["module"] == "policy_plan"
    assert set(documentation["options"]) == {
        "namespaces",
        "pods",
        "policies",
        "probes",
        "policy_enforcement_mode",
        "explain",
        "cluster_name",
        "allow_localhost",
        "report_pairs",
    }
    assert documentation["options"]["policy_enforcement_mode"]["choices"] == ["default", "always", "never"]
    returned = yaml.safe_load(policy_plan.RETURN)
    assert set(returned) == {"reachability", "explain", "identities", "summary", "policy_warnings"}
    examples = yaml.safe_load(policy_plan.EXAMPLES)
    assert all("zerotrust.cilium.policy_plan" in task or "ansible.builtin.assert" in task for task in examples)
