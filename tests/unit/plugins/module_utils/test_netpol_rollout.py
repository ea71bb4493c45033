# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/netpol_rollout.py and the filters over it.

The staged rollout talks to a live cluster (cilium-dbg and hubble in the Cilium agent pods),
which this machine does not have.  The inputs below are mock command output standing in for
those agents, written in the shape ``cilium-dbg endpoint list -o json`` and ``hubble observe
-o json`` print (one JSON object per line); the expected verdicts are worked out by hand.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.filter import network_policy as filters
from ansible_collections.zerotrust.cilium.plugins.module_utils import netpol_rollout as rollout
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

# Mock `cilium-dbg endpoint list -o json` of two agents.
MOCK_ENDPOINTS_NODE1 = json.dumps([
    {"id": 112, "status": {"external-identifiers": {"k8s-namespace": "production", "k8s-pod-name": "frontend-0"},
                           "identity": {"id": 4711, "labels": ["k8s:app=frontend",
                                                               "k8s:io.kubernetes.pod.namespace=production"]}}},
    {"id": 7, "status": {"external-identifiers": {}, "identity": {"id": 4, "labels": ["reserved:health"]}}},
    {"id": 905, "status": {"external-identifiers": {"k8s-namespace": "kube-system", "k8s-pod-name": "coredns-0"},
                           "identity": {"id": 102, "labels": ["k8s:k8s-app=kube-dns"]}}},
])
MOCK_ENDPOINTS_NODE2 = json.dumps([
    # an older agent without external identifiers: the namespace comes from the identity labels
    {"id": 2301, "status": {"identity": {"id": 4712, "labels": ["k8s:app=backend",
                                                                "k8s:io.kubernetes.pod.namespace=production"]}}},
    {"id": 2302, "status": {"external-identifiers": {"k8s-namespace": "data", "k8s-pod-name": "database-0"}}},
])


def flow_line(verdict, source, destination, port, protocol="TCP", reply=False, drop_reason=None, direction="INGRESS"):
    """One line of mock `hubble observe -o json` output."""
    flow = {
        "time": "2026-11-26T11:00:00.000Z",
        "verdict": verdict,
        "IP": {"source": source.get("ip", "10.42.1.10"), "destination": destination.get("ip", "10.42.2.10")},
        "l4": {protocol: {"source_port": 43512, "destination_port": port}},
        "source": source,
        "destination": destination,
        "Type": "L3_L4",
        "traffic_direction": direction,
        "is_reply": reply,
    }
    if drop_reason:
        flow["drop_reason_desc"] = drop_reason
    return json.dumps({"flow": flow, "node_name": "zt-lab-w1", "time": flow["time"]})


FRONTEND = {"namespace": "production", "pod_name": "frontend-0",
            "labels": ["k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=production"]}
BACKEND = {"namespace": "production", "pod_name": "backend-0",
           "labels": ["k8s:app=backend", "k8s:io.kubernetes.pod.namespace=production"]}
COREDNS = {"namespace": "kube-system", "pod_name": "coredns-0",
           "labels": ["k8s:k8s-app=kube-dns", "k8s:io.kubernetes.pod.namespace=kube-system"]}
PROMETHEUS = {"namespace": "monitoring", "pod_name": "prometheus-0",
              "labels": ["k8s:app=prometheus", "k8s:io.kubernetes.pod.namespace=monitoring"]}
WORLD = {"labels": ["reserved:world"], "ip": "203.0.113.7"}
OTHER = {"namespace": "tools", "pod_name": "debug-0", "labels": ["k8s:app=debug"]}

EXPECTED_ALLOWED = [
    {"flow": "frontend-to-backend",
     "from": {"namespace": "production", "selector": {"matchLabels": {"app": "frontend"}}},
     "to": {"namespace": "production", "selector": {"matchLabels": {"app": "backend"}}},
     "ports": [{"protocol": "TCP", "port": 8080, "end_port": None, "name": None}]},
    {"flow": "dns", "from": {"namespace": "production", "selector": {}},
     "to": {"namespace": "kube-system", "selector": {"matchLabels": {"k8s-app": "kube-dns"}}},
     "ports": [{"protocol": "UDP", "port": 53, "end_port": None, "name": None}]},
    {"flow": "to-payments", "from": {"namespace": "production", "selector": {"matchLabels": {"app": "backend"}}},
     "to": "world", "ports": [{"protocol": "TCP", "port": 443, "end_port": None, "name": None}]},
]


def test_audit_endpoints_per_agent():
    targets = rollout.audit_endpoints([MOCK_ENDPOINTS_NODE1, {"stdout": MOCK_ENDPOINTS_NODE2}],
                                      ["production", "data"], agents=["cilium-a", "cilium-b"])
    assert targets == [
        {"agent": "cilium-a", "endpoints": [112], "pods": ["production/frontend-0"]},
        {"agent": "cilium-b", "endpoints": [2301, 2302], "pods": ["data/database-0", "production/?"]},
    ]


def test_audit_endpoints_refuses_output_that_is_not_an_endpoint_list():
    with pytest.raises(InvalidInput) as raised:
        rollout.audit_endpoints(["Error: cannot reach agent"], ["production"])
    assert "network_policy_audit_endpoints: input: 'Error: cannot reach agent' is not the JSON of cilium-dbg" in str(
        raised.value)
    with pytest.raises(InvalidInput) as raised:
        rollout.audit_endpoints([MOCK_ENDPOINTS_NODE1], ["production"], agents=["a", "b"])
    assert "agents: ['a', 'b'] must name one agent per output (1)" in str(raised.value)
    with pytest.raises(InvalidInput) as raised:
        rollout.audit_endpoints([MOCK_ENDPOINTS_NODE1], [])
    assert "namespaces: [] must be a non-empty list of namespace names" in str(raised.value)


def test_clean_audit_has_no_audit_verdict_for_managed_pods():
    node1 = "\n".join([
        flow_line("FORWARDED", FRONTEND, BACKEND, 8080),
        flow_line("AUDIT", PROMETHEUS, OTHER, 9100),  # neither side managed
        "some log line the CLI printed",
    ])
    verdict = rollout.audit_verdict([node1, ""], ["production"])
    assert verdict == {"clean": True, "findings": [], "flows": 2}


def test_audit_with_would_be_drops_is_not_clean():
    node1 = "\n".join([
        flow_line("AUDIT", PROMETHEUS, FRONTEND, 80),
        flow_line("AUDIT", PROMETHEUS, FRONTEND, 80),
        flow_line("AUDIT", FRONTEND, BACKEND, 8080, reply=True),  # reply packets do not count
        flow_line("AUDIT", BACKEND, WORLD, 443, direction="EGRESS"),
    ])
    verdict = rollout.audit_verdict([{"stdout": node1}], ["production"])
    assert verdict["clean"] is False
    assert verdict["findings"] == [
        {"from": "monitoring/prometheus-0", "to": "production/frontend-0", "port": 80, "protocol": "TCP",
         "direction": "INGRESS", "count": 2},
        {"from": "production/backend-0", "to": "world", "port": 443, "protocol": "TCP",
         "direction": "EGRESS", "count": 1},
    ]


def test_post_apply_check_passes_when_only_undeclared_traffic_is_dropped():
    drops = "\n".join([
        flow_line("DROPPED", PROMETHEUS, FRONTEND, 80, drop_reason="POLICY_DENIED"),
        flow_line("DROPPED", FRONTEND, BACKEND, 9000, drop_reason="POLICY_DENIED"),  # not the declared port
        flow_line("DROPPED", FRONTEND, BACKEND, 8080, drop_reason="CT_MAP_INSERTION_FAILED"),  # not policy
        flow_line("FORWARDED", FRONTEND, BACKEND, 8080),
    ])
    policies = [{"kind": "CiliumNetworkPolicy", "metadata": {"name": "zerotrust-flow-a-ingress", "namespace": "production"},
                 "status": {"conditions": [{"type": "Valid", "status": "True"}],
                            "nodes": {"zt-lab-w1": {"ok": True, "enforcing": True}}}}]
    verdict = rollout.post_apply_verdict([drops], EXPECTED_ALLOWED, policies)
    assert verdict == {"ok": True, "problems": [], "dropped": [], "other_drops": 2}


def test_post_apply_check_fails_on_dropped_declared_connections_and_invalid_policies():
    drops = "\n".join([
        flow_line("DROPPED", FRONTEND, BACKEND, 8080, drop_reason="POLICY_DENIED"),
        flow_line("DROPPED", FRONTEND, COREDNS, 53, protocol="UDP", drop_reason="POLICY_DENIED", direction="EGRESS"),
        flow_line("DROPPED", BACKEND, WORLD, 443, drop_reason="POLICY_DENIED", direction="EGRESS"),
        flow_line("DROPPED", FRONTEND, WORLD, 443, drop_reason="POLICY_DENIED", direction="EGRESS"),
    ])
    policies = [
        {"kind": "CiliumNetworkPolicy", "metadata": {"name": "zerotrust-allow-dns", "namespace": "production"},
         "status": {"conditions": [{"type": "Valid", "status": "False", "message": "unknown field toFQDN"}]}},
        {"kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "zerotrust-allow-health"},
         "status": {"nodes": {"zt-lab-w2": {"error": "policy import failed"}}}},
    ]
    verdict = rollout.post_apply_verdict([drops], EXPECTED_ALLOWED, policies)
    assert verdict["ok"] is False
    assert verdict["problems"] == [
        "CiliumNetworkPolicy production/zerotrust-allow-dns is not valid for Cilium: unknown field toFQDN",
        "CiliumClusterwideNetworkPolicy zerotrust-allow-health failed on node zt-lab-w2: policy import failed",
        "dns: production/frontend-0 -> kube-system/coredns-0 on 53/UDP was dropped 1 time(s)",
        "frontend-to-backend: production/frontend-0 -> production/backend-0 on 8080/TCP was dropped 1 time(s)",
        "to-payments: production/backend-0 -> world on 443/TCP was dropped 1 time(s)",
    ]
    # the frontend's 443 to the outside world is not declared: a drop there is the point
    assert verdict["other_drops"] == 1


def test_flows_in_json_spelling_are_read_too():
    line = json.dumps({"flow": {"verdict": "AUDIT", "isReply": False, "trafficDirection": "INGRESS",
                                "l4": {"UDP": {"destinationPort": 53}},
                                "source": {"namespace": "production", "podName": "backend-0", "labels": []},
                                "destination": {"namespace": "kube-system", "podName": "coredns-0", "labels": []}}})
    (flow,) = rollout.parse_flows(line)
    assert (flow["from"]["display"], flow["to"]["display"], flow["port"], flow["protocol"]) == (
        "production/backend-0", "kube-system/coredns-0", 53, "UDP")


def test_filters_wrap_the_functions_and_turn_errors_into_filter_errors():
    module = filters.FilterModule().filters()
    assert sorted(module) == [
        "network_policy_audit_endpoints",
        "network_policy_audit_verdict",
        "network_policy_post_apply_verdict",
    ]
    verdict = module["network_policy_audit_verdict"]([{"stdout": flow_line("AUDIT", PROMETHEUS, FRONTEND, 80)}],
                                                     ["production"])
    assert verdict["clean"] is False
    with pytest.raises(AnsibleFilterError) as raised:
        module["network_policy_post_apply_verdict"]([""], "not-a-list")
    assert "network_policy_post_apply_verdict: expected_allowed: 'not-a-list' must be the proof's" in str(raised.value)
    with pytest.raises(AnsibleFilterError) as raised:
        module["network_policy_audit_endpoints"](42, ["production"])
    assert "network_policy_audit_endpoints: input: 42 must be command output" in str(raised.value)
