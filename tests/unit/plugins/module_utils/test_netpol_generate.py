# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/netpol_generate.py: the policy set generated from
declared flows, its schema validation, the proof and its matrix, and bad input.

The expected manifests and matrices are written by hand from the semantics in
docs/policy-engine.md (a connection needs the source's egress and the destination's ingress;
an L4 allow for the same pods and port makes an L7 rule ineffective).  The worked example
is the source guide's: default deny in ``production``, frontend -> backend on TCP 8080 with
the HTTP rule GET /api/v1/data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest
import yaml

from ansible_collections.zerotrust.cilium.plugins.module_utils import netpol_generate as generate
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_schema import ManifestValidator

VALIDATOR = ManifestValidator("1.31")

# The pods of docs/policy-engine.md's worked example, as workloads.
GUIDE_WORKLOADS = {
    "production": [
        {"name": "frontend", "labels": {"app": "frontend"}, "replicas": 2, "ports": [{"name": "http", "port": 80}]},
        {"name": "backend", "labels": {"app": "backend"}, "replicas": 2, "ports": [{"name": "api", "port": 8080}]},
    ],
    "kube-system": [
        {
            "name": "coredns",
            "labels": {"k8s-app": "kube-dns"},
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
        }
    ],
    "monitoring": [{"name": "prometheus", "labels": {"app": "prometheus"}, "ports": [{"name": "web", "port": 9090}]}],
}
GUIDE_FLOW = {
    "name": "frontend-to-backend",
    "from": "production/frontend",
    "to": "production/backend",
    "ports": [{"port": 8080, "protocol": "TCP"}],
    "http": [{"method": "GET", "path": "/api/v1/data"}],
}

# The source guide's three policies, as written there (sections 4 and 5).
GUIDE_POLICIES = list(yaml.safe_load_all("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-all, namespace: production}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-frontend-to-backend, namespace: production}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{protocol: TCP, port: 8080}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-frontend-policy, namespace: production}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http: [{method: GET, path: /api/v1/data}]
"""))

MANAGED_LABELS = {"app.kubernetes.io/managed-by": "zerotrust.cilium"}


def plan(flows=None, managed=("production",), workloads=None, **options):
    return generate.plan_policies(
        list(managed),
        [GUIDE_FLOW] if flows is None else flows,
        workloads=GUIDE_WORKLOADS if workloads is None else workloads,
        validate_manifest=VALIDATOR.validate,
        **options
    )


def by_file(result):
    return {item["file"]: item for item in result["objects"]}


def table(result, port, protocol="TCP"):
    (found,) = [item for item in result["proof"]["matrix"] if (item["port"], item["protocol"]) == (port, protocol)]
    return {"columns": found["columns"], "rows": {row["from"]: row["cells"] for row in found["rows"]}}


def labels(purpose, flow=None):
    result = dict(MANAGED_LABELS, **{"zerotrust.cilium/purpose": purpose})
    if flow:
        result["zerotrust.cilium/flow"] = flow
    return result


# --------------------------------------------------------------------------- generation


def test_guide_flow_generates_default_deny_dns_and_a_cilium_policy_pair():
    result = plan()
    objects = by_file(result)
    assert list(objects) == [
        "production/zerotrust-default-deny.yaml",
        "production/zerotrust-allow-dns.yaml",
        "production/zerotrust-flow-frontend-to-backend-egress.yaml",
        "production/zerotrust-flow-frontend-to-backend-ingress.yaml",
    ]
    assert objects["production/zerotrust-default-deny.yaml"]["manifest"] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "zerotrust-default-deny", "namespace": "production", "labels": labels("default-deny")},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert objects["production/zerotrust-allow-dns.yaml"]["manifest"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        ],
    }
    # The HTTP rule sits on the destination's ingress, and nothing opens 8080 at L4 for the
    # same pods: no NetworkPolicy for this flow at all.
    assert objects["production/zerotrust-flow-frontend-to-backend-ingress.yaml"]["manifest"] == {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {
            "name": "zerotrust-flow-frontend-to-backend-ingress",
            "namespace": "production",
            "labels": labels("flow", "frontend-to-backend"),
        },
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "backend"}},
            "ingress": [
                {
                    "fromEndpoints": [
                        {"matchLabels": {"app": "frontend", "k8s:io.kubernetes.pod.namespace": "production"}}
                    ],
                    "toPorts": [
                        {
                            "ports": [{"port": "8080", "protocol": "TCP"}],
                            "rules": {"http": [{"method": "GET", "path": "/api/v1/data"}]},
                        }
                    ],
                }
            ],
        },
    }
    assert objects["production/zerotrust-flow-frontend-to-backend-egress.yaml"]["manifest"]["spec"] == {
        "endpointSelector": {"matchLabels": {"app": "frontend"}},
        "egress": [
            {
                "toEndpoints": [{"matchLabels": {"app": "backend", "k8s:io.kubernetes.pod.namespace": "production"}}],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
            }
        ],
    }
    assert [item["kind"] for item in result["objects"]] == [
        "NetworkPolicy",
        "NetworkPolicy",
        "CiliumNetworkPolicy",
        "CiliumNetworkPolicy",
    ]


def test_l4_flow_across_namespaces_becomes_two_network_policies():
    database = {"name": "database", "labels": {"app": "database"}, "ports": [{"name": "postgres", "port": 5432}]}
    workloads = dict(GUIDE_WORKLOADS, data=[database])
    flow = {"name": "backend-to-database", "from": "production/backend", "to": "data/database",
            "ports": [{"port": 5432}]}
    objects = by_file(plan([flow], managed=("production", "data"), workloads=workloads))
    assert objects["production/zerotrust-flow-backend-to-database-egress.yaml"]["manifest"]["spec"] == {
        "podSelector": {"matchLabels": {"app": "backend"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
                        "podSelector": {"matchLabels": {"app": "database"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 5432}],
            }
        ],
    }
    assert objects["data/zerotrust-flow-backend-to-database-ingress.yaml"]["manifest"]["spec"] == {
        "podSelector": {"matchLabels": {"app": "database"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "production"}},
                        "podSelector": {"matchLabels": {"app": "backend"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 5432}],
            }
        ],
    }


def test_flow_from_an_unmanaged_namespace_only_gets_the_ingress_side():
    flow = {"name": "scrape", "from": "monitoring/prometheus", "to": "production", "ports": [{"port": "http"}]}
    result = plan([flow])
    files = [item["file"] for item in result["objects"] if item["purpose"] == "flow"]
    # monitoring is not managed: an egress policy there would isolate prometheus
    assert files == ["production/zerotrust-flow-scrape-ingress.yaml"]
    ingress = by_file(result)["production/zerotrust-flow-scrape-ingress.yaml"]["manifest"]["spec"]
    assert ingress == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                        "podSelector": {"matchLabels": {"app": "prometheus"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": "http"}],
            }
        ],
    }
    assert result["proof"]["ok"], result["proof"]["violations"]
    # the named port resolves to 80 on the frontends; the backends do not serve it
    assert table(result, 80)["rows"]["monitoring/prometheus"] == ["allowed", "·"]


def test_dns_names_use_cilium_and_route_dns_through_the_proxy():
    flow = {"name": "backend-to-payments", "from": "production/backend",
            "to_fqdns": ["api.payments.example", "*.cdn.example"], "ports": [{"port": 443}]}
    result = plan([flow])
    objects = by_file(result)
    assert objects["production/zerotrust-flow-backend-to-payments-egress.yaml"]["manifest"]["spec"] == {
        "endpointSelector": {"matchLabels": {"app": "backend"}},
        "egress": [
            {
                "toFQDNs": [{"matchName": "api.payments.example"}, {"matchPattern": "*.cdn.example"}],
                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
            }
        ],
    }
    dns = objects["production/zerotrust-allow-dns.yaml"]
    assert dns["kind"] == "CiliumNetworkPolicy"
    assert dns["manifest"]["spec"] == {
        "endpointSelector": {},
        "egress": [
            {
                "toEndpoints": [
                    {"matchLabels": {"k8s-app": "kube-dns", "k8s:io.kubernetes.pod.namespace": "kube-system"}}
                ],
                "toPorts": [
                    {
                        "ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}],
                        "rules": {"dns": [{"matchPattern": "*"}]},
                    }
                ],
            }
        ],
    }
    assert result["proof"]["ok"], result["proof"]["violations"]
    assert table(result, 443)["rows"] == {
        "production/backend": ["allowed (FQDN)"],
        "production/frontend": ["denied"],
    }
    assert table(result, 53, "UDP")["rows"]["production/frontend"] == ["allowed (DNS)", "denied"]


def test_nodelocal_dns_is_allowed_by_address_and_as_the_host():
    result = plan(dns={"nodelocal_ip": "169.254.20.10"})
    dns = by_file(result)["production/zerotrust-allow-dns.yaml"]["manifest"]["spec"]
    to_ports = [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}]
    assert dns["egress"][1:] == [
        {"toCIDR": ["169.254.20.10/32"], "toPorts": to_ports},
        {"toEntities": ["host"], "toPorts": to_ports},
    ]
    assert result["proof"]["ok"], result["proof"]["violations"]
    assert table(result, 53, "UDP") == {
        "columns": ["kube-system/coredns", "169.254.20.10", "host", "world"],
        "rows": {
            "production/backend": ["allowed", "allowed", "allowed", "denied"],
            "production/frontend": ["allowed", "allowed", "allowed", "denied"],
        },
    }


def test_api_server_access_only_for_the_named_workload():
    result = plan(api_server_access=["production/backend"], api_server_port=6443)
    api = by_file(result)["production/zerotrust-apiserver-backend.yaml"]["manifest"]
    assert api["spec"] == {
        "endpointSelector": {"matchLabels": {"app": "backend"}},
        "egress": [{"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]}],
    }
    assert result["proof"]["ok"]
    assert table(result, 6443) == {
        "columns": ["kube-apiserver", "world"],
        "rows": {"production/backend": ["allowed", "denied"], "production/frontend": ["denied", "denied"]},
    }
    assert result["proof"]["api_server"]["pairs"] == {"allowed": 2, "denied": 0}


def test_enforcement_mode_always_adds_health_and_dns_ingress_and_both_flow_sides():
    flow = {"name": "scrape", "from": "monitoring/prometheus", "to": "production/frontend", "ports": [{"port": 80}]}
    result = plan([flow], policy_enforcement_mode="always")
    objects = by_file(result)
    assert objects["_clusterwide/zerotrust-allow-health.yaml"]["manifest"] == {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": "zerotrust-allow-health", "labels": labels("health")},
        "spec": {
            "endpointSelector": {"matchLabels": {"reserved:health": ""}},
            "ingress": [{"fromEntities": ["remote-node"]}],
            "egress": [{"toEntities": ["remote-node"]}],
        },
    }
    assert objects["kube-system/zerotrust-allow-dns-ingress.yaml"]["manifest"]["spec"] == {
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["production"]}
                            ]
                        }
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        ],
    }
    # with always, monitoring is isolated too: the egress side of the flow is needed there
    assert "monitoring/zerotrust-flow-scrape-egress.yaml" in objects
    assert result["proof"]["ok"], result["proof"]["violations"]


def test_extra_policies_are_labelled_applied_and_reported_as_opted_in():
    extra = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "frontend-from-world", "namespace": "production"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "frontend"}},
            "ingress": [{"fromEntities": ["world"], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}],
        },
    }
    result = plan(extra_policies=[extra])
    item = by_file(result)["production/frontend-from-world.yaml"]
    assert item["purpose"] == "extra"
    assert item["manifest"]["metadata"]["labels"] == labels("extra")
    assert extra["metadata"] == {"name": "frontend-from-world", "namespace": "production"}  # input untouched
    assert result["proof"]["ok"]
    assert result["proof"]["opted_in"] == [
        {
            "kind": "undeclared_allowed",
            "from": "world",
            "to": "production/frontend",
            "port": 80,
            "protocol": "TCP",
            "example": ["entity:world", "production/frontend-0"],
            "pairs": 2,
        }
    ]


def test_every_generated_object_passes_its_schema():
    workloads = copy.deepcopy(GUIDE_WORKLOADS)
    flows = [
        GUIDE_FLOW,
        {"name": "scrape", "from": "monitoring/prometheus", "to": "production", "ports": [{"port": 8000, "endPort": 9000}]},
        {"name": "to-payments", "from": {"namespace": "production", "selector": {"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["backend", "frontend"]}]}},
         "to_fqdns": ["api.payments.example"], "ports": [{"port": 443}], "http": [{"method": "POST", "path": "/v1/.*"}]},
    ]
    result = plan(flows, policy_enforcement_mode="always", api_server_access=["production"],
                  dns={"nodelocal_ip": "169.254.20.10"})
    assert [item["file"] for item in result["objects"]] == [
        "_clusterwide/zerotrust-allow-health.yaml",
        "kube-system/zerotrust-allow-dns-ingress.yaml",
        "monitoring/zerotrust-flow-scrape-egress.yaml",
        "production/zerotrust-default-deny.yaml",
        "production/zerotrust-allow-dns.yaml",
        "production/zerotrust-apiserver-all.yaml",
        "production/zerotrust-flow-frontend-to-backend-egress.yaml",
        "production/zerotrust-flow-frontend-to-backend-ingress.yaml",
        "production/zerotrust-flow-scrape-ingress.yaml",
        "production/zerotrust-flow-to-payments-egress.yaml",
    ]
    assert result["proof"]["ok"], result["proof"]["violations"]
    for item in result["objects"]:
        VALIDATOR.validate(item["manifest"])


# --------------------------------------------------------------------------- proof


def test_guide_worked_example_is_proven_with_this_matrix():
    result = plan()
    proof = result["proof"]
    assert proof["ok"] is True
    assert proof["violations"] == []
    assert proof["flows"] == [
        {
            "name": "frontend-to-backend",
            "from": "production/frontend",
            "to": "production/backend",
            "ports": ["8080/TCP"],
            "l7": "HTTP GET /api/v1/data",
            "http": [{"method": "GET", "path": "/api/v1/data"}],
            "fqdns": [],
            "pairs": {"allowed": 0, "restricted": 4, "denied": 0},
            "verdict": "allowed, restricted at L7",
        }
    ]
    assert proof["dns"]["pairs"] == {"allowed": 8, "restricted": 0, "denied": 0}
    assert [(item["port"], item["protocol"]) for item in proof["matrix"]] == [
        (53, "TCP"), (80, "TCP"), (6443, "TCP"), (8080, "TCP"), (9090, "TCP"), (53, "UDP"),
    ]
    assert table(result, 8080) == {
        "columns": ["production/backend", "world"],
        "rows": {
            "kube-system/coredns": ["denied", "·"],
            "monitoring/prometheus": ["denied", "·"],
            "production/backend": ["denied", "denied"],
            "production/frontend": ["allowed (HTTP)", "denied"],
            "world": ["denied", "·"],
        },
    }
    assert table(result, 80) == {
        "columns": ["production/frontend", "world"],
        "rows": {
            "kube-system/coredns": ["denied", "·"],
            "monitoring/prometheus": ["denied", "·"],
            "production/backend": ["denied", "denied"],
            "production/frontend": ["denied", "denied"],
            "world": ["denied", "·"],
        },
    }
    for protocol in ("TCP", "UDP"):
        assert table(result, 53, protocol) == {
            "columns": ["kube-system/coredns", "world"],
            "rows": {"production/backend": ["allowed", "denied"], "production/frontend": ["allowed", "denied"]},
        }
    assert table(result, 9090)["rows"] == {
        "production/backend": ["denied", "denied"],
        "production/frontend": ["denied", "denied"],
    }
    assert "**Verdict: proven.**" in result["report"]
    assert "| production/frontend | allowed (HTTP) | denied |" in result["report"]


def test_guide_policies_already_in_the_cluster_shadow_the_l7_rule():
    result = plan(existing_policies=GUIDE_POLICIES)
    proof = result["proof"]
    assert proof["ok"] is False
    assert len(proof["violations"]) == 1
    violation = proof["violations"][0]
    assert {key: violation[key] for key in ("kind", "flow", "from", "to", "port", "protocol", "pairs")} == {
        "kind": "l7_shadowed",
        "flow": "frontend-to-backend",
        "from": "production/frontend",
        "to": "production/backend",
        "port": 8080,
        "protocol": "TCP",
        "pairs": 4,
    }
    assert "NetworkPolicy production/allow-frontend-to-backend (ingress)" in violation["allowed_by"]
    assert proof["flows"][0]["pairs"] == {"allowed": 4, "restricted": 0, "denied": 0}
    assert table(result, 8080)["rows"]["production/frontend"] == ["allowed", "denied"]
    assert "**Verdict: refused, 1 violation(s).**" in result["report"]
    assert "**l7_shadowed** (flow frontend-to-backend)" in result["report"]


def test_existing_allow_all_is_refused_as_undeclared():
    allow_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-same-namespace", "namespace": "production"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}],
                 "egress": [{"to": [{"podSelector": {}}]}], "policyTypes": ["Ingress", "Egress"]},
    }
    result = plan(existing_policies=[allow_all])
    proof = result["proof"]
    assert proof["ok"] is False
    found = [(item["kind"], item["from"], item["to"], item["port"], item["pairs"]) for item in proof["violations"]]
    # every production pod reaches every other production pod's served port. The declared
    # frontend -> backend 8080 is not undeclared, but allow-same-namespace opens it at L4 on
    # both sides, so the HTTP rule would have no effect.
    assert found == [
        ("l7_shadowed", "production/frontend", "production/backend", 8080, 4),
        ("undeclared_allowed", "production/backend", "production/backend", 8080, 2),
        ("undeclared_allowed", "production/backend", "production/frontend", 80, 4),
        ("undeclared_allowed", "production/frontend", "production/frontend", 80, 2),
    ]
    assert proof["violations"][1]["allowed_by"] == [
        "NetworkPolicy production/allow-same-namespace (egress)",
        "NetworkPolicy production/allow-same-namespace (ingress)",
    ]
    assert table(result, 8080)["rows"]["production/frontend"] == ["allowed", "denied"]
    assert table(result, 80)["rows"]["production/backend"] == ["allowed", "denied"]


def test_declared_flow_denied_by_the_other_side_is_refused():
    isolate = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "prometheus-egress-lockdown", "namespace": "monitoring"},
        "spec": {"podSelector": {"matchLabels": {"app": "prometheus"}}, "policyTypes": ["Egress"]},
    }
    flow = {"name": "scrape", "from": "monitoring/prometheus", "to": "production/frontend", "ports": [{"port": 80}]}
    result = plan([flow], existing_policies=[isolate])
    (violation,) = result["proof"]["violations"]
    assert violation["kind"] == "declared_denied"
    assert violation["flow"] == "scrape"
    assert (violation["from"], violation["to"], violation["port"], violation["pairs"]) == (
        "monitoring/prometheus", "production/frontend", 80, 2)
    assert violation["reason"] == (
        "denied: monitoring/prometheus-0 is isolated for egress and no egress rule allows production/frontend-0 on "
        "80/TCP"
    )


def test_dns_lost_through_a_deny_rule_is_refused():
    block = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "no-udp-dns", "namespace": "production"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "backend"}},
            "egressDeny": [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system"}}],
                            "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}]}]}],
        },
    }
    result = plan(existing_policies=[block])
    violations = result["proof"]["violations"]
    assert [(item["kind"], item["from"], item["to"], item["protocol"], item["pairs"]) for item in violations] == [
        ("dns_lost", "production/backend", "kube-system/coredns", "UDP", 2),
    ]
    assert "a deny rule matches" in violations[0]["reason"]
    assert table(result, 53, "UDP")["rows"]["production/backend"] == ["denied", "denied"]
    assert table(result, 53, "TCP")["rows"]["production/backend"] == ["allowed", "denied"]


def test_l4_dns_allow_shadows_the_dns_proxy_for_dns_name_flows():
    l4_dns = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "plain-dns", "namespace": "production"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                 "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}]},
    }
    flow = {"name": "to-payments", "from": "production/backend", "to_fqdns": ["api.payments.example"],
            "ports": [{"port": 443}]}
    result = plan([flow], existing_policies=[l4_dns])
    kinds = sorted({(item["kind"], item["from"], item["protocol"]) for item in result["proof"]["violations"]})
    # the backends' UDP DNS bypasses the proxy; TCP still goes through it. The L4 rule also
    # allows the frontends' and backends' UDP 53 to the outside world, which nobody declared.
    assert ("l7_shadowed", "production/backend", "UDP") in kinds
    assert ("l7_shadowed", "production/backend", "TCP") not in kinds
    assert ("undeclared_allowed", "production/frontend", "UDP") in kinds


def test_declared_pairs_of_named_ports_and_ranges_are_allowed():
    flows = [
        {"name": "named", "from": "production/frontend", "to": "production/backend", "ports": [{"port": "api"}]},
        {"name": "range", "from": "monitoring/prometheus", "to": "production/backend",
         "ports": [{"port": 8000, "endPort": 8100}]},
    ]
    result = plan(flows)
    assert result["proof"]["ok"], result["proof"]["violations"]
    assert table(result, 8080)["rows"]["production/frontend"] == ["allowed", "denied"]
    assert table(result, 8080)["rows"]["monitoring/prometheus"] == ["allowed", "·"]
    assert [item["pairs"] for item in result["proof"]["flows"]] == [
        {"allowed": 4, "restricted": 0, "denied": 0},
        # the range's two ends (8000 and 8100) on both backends
        {"allowed": 4, "restricted": 0, "denied": 0},
    ]


def test_flow_selecting_no_pod_is_a_warning_not_an_error():
    flow = {"name": "nobody", "from": {"namespace": "production", "selector": {"matchLabels": {"app": "gone"}}},
            "to": "production/backend", "ports": [{"port": 8080}]}
    result = plan([flow])
    assert result["proof"]["ok"]
    assert result["proof"]["warnings"] == ["flow nobody: from production/{app=gone} selects no pod; nothing to prove for it"]
    assert result["proof"]["flows"][0]["verdict"] == "no pods"


# --------------------------------------------------------------------------- bad input

BAD_FLOWS = [
    (
        "malformed-selector",
        {"name": "f", "from": {"namespace": "production", "selector": {"matchLabels": {"bad key!": "x"}}},
         "to": "production/backend", "ports": [{"port": 8080}]},
        "flow f: flows[0].from.selector.matchLabels['bad key!']: 'bad key!' is not a valid label name",
    ),
    (
        "unknown-operator",
        {"name": "f", "from": {"namespace": "production", "selector": {"matchExpressions": [
            {"key": "app", "operator": "Equals", "values": ["x"]}]}},
         "to": "production/backend", "ports": [{"port": 8080}]},
        "flow f: flows[0].from.selector.matchExpressions[0].operator: 'Equals' is not one of: In, NotIn, Exists, "
        "DoesNotExist",
    ),
    (
        "port-out-of-range",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "ports": [{"port": 70000}]},
        "flow f: flows[0].ports[0].port: 70000 must be a port number from 1 to 65535 or a port name",
    ),
    (
        "end-port-without-port",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "ports": [{"endPort": 9000}]},
        "flow f: flows[0].ports[0].endPort: 9000 needs port to be set (the start of the range)",
    ),
    (
        "end-port-below-port",
        {"name": "f", "from": "production/frontend", "to": "production/backend",
         "ports": [{"port": 8080, "endPort": 80}]},
        "flow f: flows[0].ports[0].endPort: 80 must be greater than or equal to port (8080)",
    ),
    (
        "named-port-nobody-serves",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "ports": [{"port": "grpc"}]},
        "flow f: flows[0].ports[0].port: 'grpc' names a port no pod of production/backend serves over TCP",
    ),
    (
        "named-port-wrong-protocol",
        {"name": "f", "from": "production/frontend", "to": "production/backend",
         "ports": [{"port": "api", "protocol": "UDP"}]},
        "flow f: flows[0].ports[0].port: 'api' names a port no pod of production/backend serves over UDP",
    ),
    (
        "unknown-namespace",
        {"name": "f", "from": "production/frontend", "to": "prod/backend", "ports": [{"port": 8080}]},
        "flow f: flows[0].to.namespace: 'prod' is not a known namespace; known: kube-system, monitoring, production",
    ),
    (
        "unknown-workload",
        {"name": "f", "from": "production/frontnd", "to": "production/backend", "ports": [{"port": 8080}]},
        "flow f: flows[0].from.workload: 'frontnd' is not a workload of namespace production; declared there: "
        "backend, frontend",
    ),
    (
        "no-ports",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "ports": []},
        "flow f: flows[0].ports: [] must list at least one port (zero trust: no implicit all-ports)",
    ),
    (
        "portless-entry",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "ports": [{"protocol": "TCP"}]},
        "flow f: flows[0].ports[0].port: None is required: name the port (a number from 1 to 65535 or a port name)",
    ),
    (
        "bad-protocol",
        {"name": "f", "from": "production/frontend", "to": "production/backend",
         "ports": [{"port": 8080, "protocol": "tcp"}]},
        "flow f: flows[0].ports[0].protocol: 'tcp' is not one of: TCP, UDP, SCTP",
    ),
    (
        "missing-name",
        {"from": "production/frontend", "to": "production/backend", "ports": [{"port": 8080}]},
        "network_policy: flows[0].name: None is required: a DNS-1123 label of at most 40 characters",
    ),
    (
        "both-targets",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "to_fqdns": ["a.example"],
         "ports": [{"port": 8080}]},
        "flow f: flows[0]: ['from', 'name', 'ports', 'to', 'to_fqdns'] must set exactly one of to, to_fqdns",
    ),
    (
        "unknown-field",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "port": 8080},
        "flow f: flows[0].port: 8080 is not a known field; known: name, from, to, to_fqdns, ports, http, description",
    ),
    (
        "http-on-udp",
        {"name": "f", "from": "production/frontend", "to": "production/backend",
         "ports": [{"port": 8080, "protocol": "UDP"}], "http": [{"method": "GET"}]},
        "flow f: flows[0].ports[0].protocol: 'UDP' must be TCP when http rules are given",
    ),
    (
        "http-bad-regex",
        {"name": "f", "from": "production/frontend", "to": "production/backend", "ports": [{"port": 8080}],
         "http": [{"path": "/api/(v1"}]},
        "flow f: flows[0].http[0].path: '/api/(v1' is not a valid regular expression",
    ),
    (
        "bad-dns-name",
        {"name": "f", "from": "production/frontend", "to_fqdns": ["not a name"], "ports": [{"port": 443}]},
        "flow f: flows[0].to_fqdns[0]: 'not a name' is not a valid DNS name such as api.example.com",
    ),
    (
        "dns-names-from-unmanaged",
        {"name": "f", "from": "monitoring/prometheus", "to_fqdns": ["a.example"], "ports": [{"port": 443}]},
        "flow f: flows[0].from: 'monitoring/prometheus' must be in a managed namespace",
    ),
    (
        "no-managed-side",
        {"name": "f", "from": "monitoring/prometheus", "to": "kube-system/coredns", "ports": [{"port": 53}]},
        "flow f: flows[0]: 'monitoring/prometheus -> kube-system/coredns' touches no managed namespace (production)",
    ),
]


@pytest.mark.parametrize("case_id, flow, message", BAD_FLOWS, ids=[case[0] for case in BAD_FLOWS])
def test_bad_flows_are_refused_naming_the_flow_and_field(case_id, flow, message):
    with pytest.raises(InvalidInput) as raised:
        plan([flow])
    assert message in str(raised.value)


def test_duplicate_flow_names_are_refused():
    with pytest.raises(InvalidInput) as raised:
        plan([GUIDE_FLOW, GUIDE_FLOW])
    assert str(raised.value) == "flow frontend-to-backend: flows[1].name: 'frontend-to-backend' is also the name of flows[0]"


BAD_OPTIONS = [
    ("managed-empty", dict(managed=()), "network_policy: managed_namespaces: [] must name at least one namespace"),
    ("managed-invalid", dict(managed=("Production",)),
     "managed_namespaces[0]: 'Production' is not a valid namespace name (DNS-1123 label)"),
    ("workload-labels", dict(workloads={"production": [{"name": "web", "labels": {}}]}),
     "workload production/web: workloads['production'][0].labels: {} must name at least one label"),
    ("workload-replicas", dict(workloads={"production": [{"name": "web", "labels": {"a": "b"}, "replicas": 0}]}),
     "workloads['production'][0].replicas: 0 must be an integer from 1 to 50"),
    ("workload-port", dict(workloads={"production": [{"name": "web", "labels": {"a": "b"}, "ports": [{"port": 0}]}]}),
     "workloads['production'][0].ports[0].port: 0 must be an integer from 1 to 65535"),
    ("nodelocal", dict(dns={"nodelocal_ip": "169.254.20"}),
     "dns.nodelocal_ip: '169.254.20' is not an IP address such as 169.254.20.10"),
    ("dns-selects-nothing", dict(dns={"selector": {"matchLabels": {"k8s-app": "coredns"}}}),
     "dns.selector: '{k8s-app=coredns}' selects no pod in namespace kube-system, so DNS cannot be proven"),
    ("dns-selector-empty", dict(dns={"selector": {}}), "dns.selector: {} must select the DNS pods"),
    ("api-unmanaged", dict(api_server_access=["monitoring/prometheus"]),
     "api_server_access[0]: 'monitoring/prometheus' is not in a managed namespace (production)"),
    ("enforcement-never", dict(policy_enforcement_mode="never"),
     "policy_enforcement_mode: 'never' enforces no policy at all"),
    ("extra-unmanaged", dict(extra_policies=[{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                              "metadata": {"name": "x", "namespace": "monitoring"},
                                              "spec": {"podSelector": {}}}]),
     "extra_policies[0].metadata.namespace: 'monitoring' must be a managed namespace (production)"),
    ("extra-prefix", dict(extra_policies=[{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                           "metadata": {"name": "zerotrust-x", "namespace": "production"},
                                           "spec": {"podSelector": {}}}]),
     "extra_policies[0].metadata.name: 'zerotrust-x' must not start with 'zerotrust-'"),
    ("extra-schema", dict(extra_policies=[{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                           "metadata": {"name": "x", "namespace": "production"},
                                           "spec": {"podSelector": {}, "ingres": []}}]),
     "NetworkPolicy production/x: spec: {'podSelector': {}, 'ingres': []} is refused by the Kubernetes 1.31 "
     "NetworkPolicy schema: Additional properties are not allowed ('ingres' was unexpected)"),
    ("extra-crd-schema", dict(extra_policies=[{"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                                               "metadata": {"name": "x", "namespace": "production"},
                                               "spec": {"endpointSelector": {}, "ingress": [
                                                   {"toPorts": [{"ports": [{"port": 80}]}]}]}}]),
     "CiliumNetworkPolicy production/x: spec.ingress[0].toPorts[0].ports[0].port: 80 is refused by the "
     "CiliumNetworkPolicy CRD schema (cilium.io/v2): 80 is not of type 'string'"),
    ("existing-unknown-namespace", dict(existing_policies=[{
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "x", "namespace": "elsewhere"}, "spec": {"podSelector": {}}}]),
     "metadata.namespace: 'elsewhere' is not one of the namespaces given"),
]


@pytest.mark.parametrize("case_id, options, message", BAD_OPTIONS, ids=[case[0] for case in BAD_OPTIONS])
def test_bad_options_are_refused(case_id, options, message):
    with pytest.raises((InvalidInput, InvalidInputs)) as raised:
        plan(**options)
    assert message in str(raised.value)


def test_schema_problems_of_several_objects_are_reported_together():
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "x", "namespace": "production"}, "spec": {"podSelector": {}, "egres": []}}
    worse = dict(bad, metadata={"name": "y", "namespace": "production"})
    with pytest.raises(InvalidInputs) as raised:
        plan(extra_policies=[bad, worse])
    assert str(raised.value).startswith("network_policy: 2 problem(s) found:\n- NetworkPolicy production/x: spec:")


@pytest.mark.parametrize("version, message", [
    ("1.12", "kubernetes_version: '1.12' is not covered by the installed kubernetes-validate (schemas 1.25 to"),
    ("latest", "kubernetes_version: 'latest' must be a Kubernetes version such as 1.31"),
])
def test_kubernetes_versions_the_schemas_do_not_cover_are_refused(version, message):
    with pytest.raises(InvalidInput) as raised:
        ManifestValidator(version)
    assert message in str(raised.value)


def test_crd_log_pattern_is_checked_without_unicode_classes():
    manifest = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                "metadata": {"name": "x", "namespace": "production"},
                "spec": {"endpointSelector": {}, "ingress": [{}], "log": {"value": "audit-x"}}}
    VALIDATOR.validate(manifest)
    manifest["spec"]["log"]["value"] = "bad\x07bell"
    with pytest.raises(InvalidInput) as raised:
        VALIDATOR.validate(manifest)
    assert "spec.log.value" in str(raised.value)


# --------------------------------------------------------------------------- apply mode (mock cluster)

# Stands in for the Kubernetes API: objects shaped as kubernetes.core.k8s_info returns them.
MOCK_K8S_INFO = {
    "namespaces": [
        {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}}
        for name in ("production", "kube-system", "monitoring")
    ],
    "pods": [
        {"metadata": {"name": "frontend-7d9c-abcde", "namespace": "production",
                      "labels": {"app": "frontend", "pod-template-hash": "7d9c"}},
         "spec": {"containers": [{"name": "web", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}]},
         "status": {"phase": "Running", "podIP": "10.42.1.10"}},
        {"metadata": {"name": "backend-5f6b-fghij", "namespace": "production", "labels": {"app": "backend"}},
         "spec": {"containers": [{"name": "api", "ports": [{"name": "api", "containerPort": 8080}]}],
                  "serviceAccountName": "backend"},
         "status": {"phase": "Running", "podIP": "10.42.2.10"}},
        {"metadata": {"name": "migrate-1-xyz", "namespace": "production", "labels": {"job": "migrate"}},
         "spec": {"containers": [{"name": "job"}]}, "status": {"phase": "Succeeded"}},
        {"metadata": {"name": "coredns-abc", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
         "spec": {"containers": [{"name": "coredns", "ports": [
             {"name": "dns", "containerPort": 53, "protocol": "UDP"},
             {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}]}]},
         "status": {"phase": "Running", "podIP": "10.42.0.5"}},
        {"metadata": {"name": "cilium-x1", "namespace": "kube-system", "labels": {"k8s-app": "cilium"}},
         "spec": {"hostNetwork": True, "containers": [{"name": "cilium-agent"}]},
         "status": {"phase": "Running", "podIP": "172.31.213.11"}},
        {"metadata": {"name": "prometheus-0", "namespace": "monitoring", "labels": {"app": "prometheus"}},
         "spec": {"containers": [{"name": "prometheus", "ports": [{"name": "web", "containerPort": 9090}]}]},
         "status": {"phase": "Running", "podIP": "10.42.3.3"}},
    ],
    "policies": [],
}
APPLY_WORKLOADS = {"production": [{"name": "frontend", "labels": {"app": "frontend"}},
                                  {"name": "backend", "labels": {"app": "backend"}}]}


def server_copy(manifest):
    """The object as the API server returns it: server fields and defaults added."""
    item = copy.deepcopy(manifest)
    item["metadata"].update({"uid": "0a1b", "resourceVersion": "42", "generation": 1,
                             "creationTimestamp": "2026-11-01T00:00:00Z",
                             "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}})
    item["status"] = {}
    return item


def test_cluster_state_becomes_pods_groups_and_a_first_run_creates_everything():
    result = plan(workloads=APPLY_WORKLOADS, cluster=MOCK_K8S_INFO)
    assert result["summary"]["pods"] == 4  # the finished job and the host-network agent are left out
    assert result["proof"]["ok"], result["proof"]["violations"]
    assert table(result, 8080)["rows"]["production/frontend"] == ["allowed (HTTP)", "denied"]
    assert [item["display"] for item in result["changes"]["create"]] == [
        "NetworkPolicy production/zerotrust-default-deny",
        "NetworkPolicy production/zerotrust-allow-dns",
        "CiliumNetworkPolicy production/zerotrust-flow-frontend-to-backend-egress",
        "CiliumNetworkPolicy production/zerotrust-flow-frontend-to-backend-ingress",
    ]
    assert result["changes"]["changed"] is True
    assert result["backup"] == []
    assert "- mode: apply (4 pods, 2 in managed namespaces)" in result["report"]


def test_second_run_against_the_applied_set_changes_nothing_and_prunes_stale_objects():
    first = plan(workloads=APPLY_WORKLOADS, cluster=MOCK_K8S_INFO)
    applied = [server_copy(item["manifest"]) for item in first["objects"]]
    stale = server_copy(generate._np("zerotrust-flow-old-egress", "production", "flow",
                                     {"podSelector": {}, "policyTypes": ["Egress"]}, "old"))
    foreign = server_copy({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"name": "team-policy", "namespace": "monitoring"},
                           "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                                    "ingress": [{"from": [{"namespaceSelector": {}}]}]}})
    cluster = dict(MOCK_K8S_INFO, policies=applied + [stale, foreign])
    second = plan(workloads=APPLY_WORKLOADS, cluster=cluster)
    changes = second["changes"]
    assert changes["create"] == [] and changes["update"] == []
    assert len(changes["unchanged"]) == 4
    assert [item["display"] for item in changes["delete"]] == ["NetworkPolicy production/zerotrust-flow-old-egress"]
    assert changes["changed"] is True
    # the backup holds what the managed namespaces have now (not the other namespaces' policies)
    assert [item["file"] for item in second["backup"]] == [
        "production/ciliumnetworkpolicy-zerotrust-flow-frontend-to-backend-egress.yaml",
        "production/ciliumnetworkpolicy-zerotrust-flow-frontend-to-backend-ingress.yaml",
        "production/networkpolicy-zerotrust-allow-dns.yaml",
        "production/networkpolicy-zerotrust-default-deny.yaml",
        "production/networkpolicy-zerotrust-flow-old-egress.yaml",
    ]
    backed_up = second["backup"][2]["manifest"]
    assert "uid" not in backed_up["metadata"] and "status" not in backed_up
    assert "annotations" not in backed_up["metadata"]
    # the foreign policy in monitoring stays and takes part in the proof
    assert "- policies already in the cluster and kept: 1" in second["report"]

    changed_flow = copy.deepcopy(applied)
    changed_flow[3]["spec"]["ingress"][0]["toPorts"][0]["rules"]["http"][0]["path"] = "/api/v2/data"
    third = plan(workloads=APPLY_WORKLOADS, cluster=dict(MOCK_K8S_INFO, policies=changed_flow))
    assert third["changes"]["update"] == ["CiliumNetworkPolicy production/zerotrust-flow-frontend-to-backend-ingress"]


def test_apply_mode_refuses_unknown_namespaces_and_existing_policy_input():
    with pytest.raises(InvalidInput) as raised:
        plan(managed=("production", "payments"), workloads=APPLY_WORKLOADS, cluster=MOCK_K8S_INFO)
    assert "managed_namespaces[1]: 'payments' is not a namespace of the cluster" in str(raised.value)
    with pytest.raises(InvalidInput) as raised:
        plan(workloads=APPLY_WORKLOADS, cluster=MOCK_K8S_INFO, existing_policies=GUIDE_POLICIES)
    assert "existing_policies: 3 must be empty in apply mode" in str(raised.value)


def test_expected_allowed_lists_flows_dns_and_api_access_by_selector():
    result = plan(api_server_access=["production/backend"])
    assert result["proof"]["expected_allowed"] == [
        {
            "flow": "frontend-to-backend",
            "from": {"namespace": "production", "selector": {"matchLabels": {"app": "frontend"}}},
            "to": {"namespace": "production", "selector": {"matchLabels": {"app": "backend"}}},
            "ports": [{"protocol": "TCP", "port": 8080, "end_port": None, "name": None}],
        },
        {
            "flow": "dns",
            "from": {"namespace": "production", "selector": {}},
            "to": {"namespace": "kube-system", "selector": {"matchLabels": {"k8s-app": "kube-dns"}}},
            "ports": [{"protocol": "UDP", "port": 53, "end_port": None, "name": None},
                      {"protocol": "TCP", "port": 53, "end_port": None, "name": None}],
        },
        {
            "flow": "api-server-access",
            "from": {"namespace": "production", "selector": {"matchLabels": {"app": "backend"}}},
            "to": "kube-apiserver",
            "ports": [{"protocol": "TCP", "port": 6443, "end_port": None, "name": None}],
        },
    ]
