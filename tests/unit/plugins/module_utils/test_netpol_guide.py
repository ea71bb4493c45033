# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source guide's zero-trust policies as a worked example (docs/policy-engine.md).

The guide (section 4 and 5) applies, in namespace ``production``:

1. ``default-deny-all``: NetworkPolicy, podSelector {}, policyTypes Ingress and Egress;
2. ``allow-frontend-to-backend``: NetworkPolicy, ingress to app=backend from app=frontend on TCP 8080;
3. ``l7-frontend-policy``: CiliumNetworkPolicy, ingress to app=backend from app=frontend on
   TCP 8080 with the HTTP rule GET /api/v1/data.

The expected matrices are worked out by hand from Kubernetes semantics (ingress and egress
must both allow a connection) and Cilium's (layer7.rst: an L4 rule on the same port makes
the L7 rule of another rule have no effect).  The documentation shows the same matrices.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import yaml

from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability

GUIDE_POLICIES = """
# default-deny.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
  namespace: production
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
---
# allow-frontend-to-backend.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-frontend-to-backend
  namespace: production
spec:
  podSelector:
    matchLabels:
      app: backend
  policyTypes:
  - Ingress
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - protocol: TCP
      port: 8080
---
# l7-policy.yaml
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l7-frontend-policy
  namespace: production
spec:
  endpointSelector:
    matchLabels:
      app: backend
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: frontend
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
      rules:
        http:
        - method: "GET"
          path: "/api/v1/data"
"""

EGRESS_FIXES = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-frontend-egress-to-backend
  namespace: production
spec:
  podSelector:
    matchLabels:
      app: frontend
  policyTypes:
  - Egress
  egress:
  - to:
    - podSelector:
        matchLabels:
          app: backend
    ports:
    - protocol: TCP
      port: 8080
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-dns-egress
  namespace: production
spec:
  podSelector: {}
  policyTypes:
  - Egress
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
"""

NAMESPACES = {"production": {}, "kube-system": {}, "monitoring": {}}
PODS = [
    {
        "namespace": "production",
        "name": "frontend-0",
        "labels": {"app": "frontend"},
        "ip": "10.0.1.10",
        "ports": [{"name": "http", "port": 80}],
    },
    {
        "namespace": "production",
        "name": "frontend-1",
        "labels": {"app": "frontend"},
        "ip": "10.0.1.11",
        "ports": [{"name": "http", "port": 80}],
    },
    {
        "namespace": "production",
        "name": "backend-0",
        "labels": {"app": "backend"},
        "ip": "10.0.2.10",
        "ports": [{"name": "api", "port": 8080}],
    },
    {
        "namespace": "production",
        "name": "backend-1",
        "labels": {"app": "backend"},
        "ip": "10.0.2.11",
        "ports": [{"name": "api", "port": 8080}],
    },
    {
        "namespace": "kube-system",
        "name": "coredns-0",
        "labels": {"k8s-app": "kube-dns"},
        "ip": "10.0.0.10",
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
    },
    {
        "namespace": "monitoring",
        "name": "prometheus-0",
        "labels": {"app": "prometheus"},
        "ip": "10.0.3.10",
        "ports": [{"name": "web", "port": 9090}],
    },
]
PRODUCTION = ["production/frontend-0", "production/frontend-1", "production/backend-0", "production/backend-1"]
FRONTENDS = PRODUCTION[:2]
BACKENDS = PRODUCTION[2:]
EVERYONE = PRODUCTION + ["kube-system/coredns-0", "monitoring/prometheus-0"]
GET_DATA = {"method": "GET", "path": "/api/v1/data"}


def guide_policies():
    return list(yaml.safe_load_all(GUIDE_POLICIES))


def egress_fixes():
    return list(yaml.safe_load_all(EGRESS_FIXES))


def matrix(policies, **kwargs):
    result = plan_reachability(NAMESPACES, PODS, policies, **kwargs)
    return {(entry["port"], entry["protocol"]): entry for entry in result["reachability"]}, result


def pairs(sources, destinations):
    return sorted([src, dst] for src in sources for dst in destinations if src != dst)


def test_guide_policies_as_written_block_frontend_to_backend():
    # default-deny-all isolates egress too, and nothing allows the frontend's egress:
    # the flow the guide means to allow is denied, and so is DNS from production.
    entries, result = matrix(guide_policies(), explain=[["production/frontend-0", "production/backend-0", 8080]])
    assert sorted(entries) == [(53, "TCP"), (53, "UDP"), (80, "TCP"), (8080, "TCP"), (9090, "TCP")]
    assert entries[(8080, "TCP")]["allowed"] == []
    assert entries[(8080, "TCP")]["denied"] == pairs(EVERYONE, BACKENDS)
    assert entries[(80, "TCP")]["allowed"] == []
    # kube-system and monitoring have no policy: only production's isolated egress blocks.
    assert entries[(53, "UDP")]["allowed"] == [["monitoring/prometheus-0", "kube-system/coredns-0"]]
    assert entries[(53, "UDP")]["denied"] == pairs(PRODUCTION, ["kube-system/coredns-0"])
    assert entries[(9090, "TCP")]["allowed"] == [["kube-system/coredns-0", "monitoring/prometheus-0"]]
    explained = result["explain"][0]
    assert explained["verdict"] == "denied"
    assert explained["egress"]["isolated_by"] == ["NetworkPolicy production/default-deny-all"]
    assert explained["egress"]["allowed_by"] == []
    assert explained["ingress"]["allowed"] is True
    assert [entry["policy"] for entry in explained["ingress"]["allowed_by"]] == [
        "NetworkPolicy production/allow-frontend-to-backend",
        "CiliumNetworkPolicy production/l7-frontend-policy",
    ]
    assert result["summary"]["isolated_pods"] == {"ingress": 4, "egress": 4}
    assert result["identities"] == 4


def test_guide_policies_with_egress_fixes():
    entries, result = matrix(guide_policies() + egress_fixes())
    backend = entries[(8080, "TCP")]
    assert backend["allowed"] == pairs(FRONTENDS, BACKENDS)
    assert backend["denied"] == sorted(
        pairs(BACKENDS, BACKENDS) + pairs(["kube-system/coredns-0", "monitoring/prometheus-0"], BACKENDS)
    )
    # The NetworkPolicy opens TCP 8080 at L4 for the same peers, so the L7 rule of the
    # CiliumNetworkPolicy has no effect (layer7.rst): nothing is restricted.
    assert backend["restricted"] == []
    for protocol in ("UDP", "TCP"):
        assert entries[(53, protocol)]["allowed"] == pairs(EVERYONE, ["kube-system/coredns-0"])
    assert entries[(80, "TCP")]["allowed"] == []
    # pairs per probe: 80/TCP 10 (all denied), 8080/TCP 10 (4 allowed), 9090/TCP 5 (1 allowed:
    # coredns; production egress is isolated), 53/UDP 5 and 53/TCP 5 (all allowed).
    assert result["summary"]["pairs"] == {"allowed": 4 + 1 + 5 + 5, "denied": 10 + 6 + 4, "restricted": 0}


def test_guide_l7_policy_alone_restricts_to_get_api_v1_data():
    policies = [policy for policy in guide_policies() if policy["metadata"]["name"] != "allow-frontend-to-backend"]
    entries, result = matrix(
        policies + egress_fixes(), explain=[["production/frontend-1", "production/backend-0", 8080]]
    )
    backend = entries[(8080, "TCP")]
    assert backend["allowed"] == pairs(FRONTENDS, BACKENDS)
    rule = {
        "policy": "CiliumNetworkPolicy production/l7-frontend-policy",
        "rule": "spec.ingress[0].toPorts[0]",
        "direction": "ingress",
        "l7": {"http": [GET_DATA]},
    }
    assert backend["restricted"] == [
        {"from": src, "to": dst, "rules": [rule]} for src, dst in pairs(FRONTENDS, BACKENDS)
    ]
    assert result["explain"][0]["verdict"] == "restricted"
    assert result["explain"][0]["reason"] == (
        "allowed at L4, restricted at L7 (ingress: CiliumNetworkPolicy production/l7-frontend-policy spec.ingress[0].toPorts[0])"
    )


def test_guide_api_server_access_needs_an_explicit_allow():
    probe = [{"port": 6443, "from": "production/*", "to": "entity:kube-apiserver"}]
    entries, _explanations = matrix(guide_policies() + egress_fixes(), probes=probe)
    assert entries[(6443, "TCP")]["allowed"] == []
    api = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "allow-api", "namespace": "production"},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "backend"}},
            "egress": [
                {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]}
            ],
        },
    }
    entries, _explanations = matrix(guide_policies() + egress_fixes() + [api], probes=probe)
    assert entries[(6443, "TCP")]["allowed"] == [[backend, "entity:kube-apiserver"] for backend in BACKENDS]


def test_guide_policies_in_always_mode_cut_other_namespaces_too():
    # With policyEnforcementMode always, coredns (kube-system, no policy) is isolated as
    # well: production's DNS egress allow is no longer enough.  The flows allowed on both
    # sides keep working.
    entries, result = matrix(guide_policies() + egress_fixes(), policy_enforcement_mode="always")
    assert entries[(53, "UDP")]["allowed"] == []
    assert entries[(8080, "TCP")]["allowed"] == pairs(FRONTENDS, BACKENDS)
    assert entries[(9090, "TCP")]["allowed"] == []
    assert result["summary"]["isolated_pods"] == {"ingress": 6, "egress": 6}
