# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cilium semantics of module_utils/netpol.py (CiliumNetworkPolicy, clusterwide policies,
entities, CIDR rules, deny rules, L7, enforcement modes) and the explain output.

Expected results are written from Cilium's documentation and code, cited per test:

* layer3.rst      Documentation/security/policy/layer3.rst (entities, CIDR, "CIDR-based
                  selectors do not match in-cluster entities", empty EndpointSelector)
* kubernetes.rst  Documentation/security/policy/kubernetes.rst (namespace scoping)
* deny.rst        Documentation/security/policy/deny.rst (deny takes precedence)
* intro.rst       Documentation/security/policy/intro.rst (enforcement modes, EnableDefaultDeny)
* layer7.rst      Documentation/security/policy/layer7.rst ("If a layer 4 rule is specified
                  in the policy, and a similar layer 4 rule with layer 7 rules is also
                  specified, then the layer 7 portions of the latter rule will have no effect")
* utils.go        pkg/k8s/apis/cilium.io/utils/utils.go getEndpointSelector
* entity.go       pkg/policy/api/entity.go EntitySelectorMapping, InitEntities
* rules.go        pkg/policy/rule.go mergeIngress (an L3-only rule is merged only when it has a
                  selector; toPorts without a peer get the wildcard selector) and
                  pkg/policy/utils mergeEndpointSelectors ("Explicitly check for empty non-nil
                  slices, it should not result in any identity being selected")
* CRD             cilium.io/v2 schema descriptions (fromEndpoints: "nil FromEndpoints is
                  implicitly treated as a wildcard selector if ToPorts are also specified")
* validation.go   pkg/policy/api/rule_validation.go Sanitize (EnableDefaultDeny defaults)

The model is the x/y/z model of the Kubernetes e2e tests (see test_netpol_kubernetes.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
ALL = ["%s/%s" % (namespace, pod) for namespace in NAMESPACES for pod in PODS]


def xyz_namespaces():
    return {name: {"ns": name} for name in NAMESPACES}


def xyz_pods():
    pods = []
    for ns_index, namespace in enumerate(NAMESPACES):
        for pod_index, name in enumerate(PODS):
            pods.append(
                {
                    "namespace": namespace,
                    "name": name,
                    "labels": {"pod": name},
                    "ip": "10.244.%d.%d" % (ns_index, pod_index + 10),
                    "service_account": "sa-" + name,
                    "ports": [
                        {"name": "serve-%d-%s" % (port, protocol.lower()), "port": port, "protocol": protocol}
                        for port in (80, 81)
                        for protocol in ("TCP", "UDP", "SCTP")
                    ],
                }
            )
    return pods


def cnp(name, spec, namespace="x"):
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def ccnp(name, spec):
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def np(name, spec, namespace="x"):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def pod(name):
    return {"matchLabels": {"pod": name}}


def plan(policies, probes, **kwargs):
    return plan_reachability(xyz_namespaces(), xyz_pods(), policies, probes=probes, **kwargs)


def sources_allowed_to(policies, destination, port=80, protocol="TCP", sources=None, **kwargs):
    probe = {"port": port, "protocol": protocol, "to": destination}
    if sources is not None:
        probe["from"] = sources
    entry = plan(policies, [probe], **kwargs)["reachability"][0]
    return sorted(src for src, dst in entry["allowed"])


def destinations_allowed_from(policies, source, destinations=None, port=80, protocol="TCP", **kwargs):
    probe = {"port": port, "protocol": protocol, "from": source}
    if destinations is not None:
        probe["to"] = destinations
    entry = plan(policies, [probe], **kwargs)["reachability"][0]
    return sorted(dst for src, dst in entry["allowed"])


OTHERS_OF_XA = sorted(ref for ref in ALL if ref != "x/a")


# ----------------------------------------------------------------------------- namespace scoping


def test_cnp_from_endpoints_defaults_to_policy_namespace():
    # kubernetes.rst + utils.go: without a namespace label the peer is limited to the
    # namespace of the CiliumNetworkPolicy.
    policy = cnp("from-b", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("b")]}]})
    assert sources_allowed_to([policy], "x/a") == ["x/b"]


@pytest.mark.parametrize("key", ["k8s:io.kubernetes.pod.namespace", "io.kubernetes.pod.namespace"])
def test_cnp_from_endpoints_with_namespace_label(key):
    # kubernetes.rst: the namespace label in fromEndpoints selects another namespace.
    policy = cnp(
        "from-y-b",
        {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [{"matchLabels": {"pod": "b", key: "y"}}]}]},
    )
    assert sources_allowed_to([policy], "x/a") == ["y/b"]


def test_cnp_empty_from_endpoints_selector_is_own_namespace():
    # layer3.rst: "An empty EndpointSelector will select all egress endpoints ... based on
    # the CiliumNetworkPolicy namespace".
    policy = cnp("from-ns", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [{}]}]})
    assert sources_allowed_to([policy], "x/a") == ["x/b", "x/c"]


def test_cnp_namespace_labels_select_across_namespaces():
    # utils.go: selectors using io.cilium.k8s.namespace.labels.* get no namespace scoping.
    policy = cnp(
        "from-ns-z",
        {
            "endpointSelector": pod("a"),
            "ingress": [{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.namespace.labels.ns": "z"}}]}],
        },
    )
    assert sources_allowed_to([policy], "x/a") == ["z/a", "z/b", "z/c"]


def test_cnp_endpoint_selector_is_limited_to_policy_namespace():
    # kubernetes.rst: "The endpointSelector always applies to pods in the namespace
    # associated with the CiliumNetworkPolicy"; a namespace named there is replaced.
    policy = cnp(
        "isolate",
        {
            "endpointSelector": {"matchLabels": {"pod": "a", "k8s:io.kubernetes.pod.namespace": "y"}},
            "ingress": [{"fromEntities": []}],
        },
    )
    result = plan([policy], [{"port": 80}])
    denied = {tuple(pair) for pair in result["reachability"][0]["denied"]}
    assert denied == {(src, "x/a") for src in OTHERS_OF_XA}
    assert result["warnings"] == [
        "CiliumNetworkPolicy x/isolate: spec.endpointSelector names namespace y; Cilium replaces it with the policy namespace x"
    ]


def test_ccnp_from_endpoints_match_all_namespaces():
    # kubernetes.rst (Clusterwide Policies) + utils.go: without a namespace label a
    # clusterwide fromEndpoints selects pods of every namespace.
    policy = ccnp("leia", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("b")]}]})
    assert sources_allowed_to([policy], "x/a") == ["x/b", "y/b", "z/b"]
    assert sources_allowed_to([policy], "y/a") == ["x/b", "y/b", "z/b"]


def test_ccnp_empty_from_endpoints_selects_pods_not_entities():
    # utils.go: for a clusterwide policy an empty selector gets "namespace label exists",
    # so it never selects host or world.
    policy = ccnp("pods-only", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]})
    allowed = sources_allowed_to([policy], "x/a", sources=["y/c", "entity:remote-node", "cidr:198.51.100.7"])
    assert allowed == ["y/c"]


def test_service_account_label():
    # Cilium adds io.cilium.k8s.policy.serviceaccount to the pod identity.
    policy = cnp(
        "from-sa",
        {
            "endpointSelector": pod("a"),
            "ingress": [{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "sa-c"}}]}],
        },
    )
    assert sources_allowed_to([policy], "x/a") == ["x/c"]


def test_match_expressions_not_in_and_does_not_exist():
    policy = cnp(
        "expr",
        {
            "endpointSelector": pod("a"),
            "ingress": [
                {
                    "fromEndpoints": [
                        {
                            "matchExpressions": [
                                {"key": "pod", "operator": "NotIn", "values": ["b"]},
                                {"key": "tier", "operator": "DoesNotExist"},
                            ]
                        }
                    ]
                }
            ],
        },
    )
    assert sources_allowed_to([policy], "x/a") == ["x/c"]


# ----------------------------------------------------------------------------- empty rules


def test_empty_rule_selects_nothing():
    # CRD (fromEndpoints): "nil FromEndpoints is implicitly treated as a wildcard selector if
    # ToPorts are also specified" -- not without ToPorts; rule.go mergeIngress merges an L3-only
    # rule only when it has a selector.  ingress: [{}] isolates and allows nothing, and a
    # deny rule {} denies nothing.  The engine warns, since the rule is easily misread.
    policy = cnp("empty-rule", {"endpointSelector": pod("a"), "ingress": [{}]})
    sources = ["y/b", "entity:world", "cidr:198.51.100.7", "entity:remote-node"]
    assert sources_allowed_to([policy], "x/a", sources=sources) == []
    result = plan([policy], [{"port": 80}])
    assert result["warnings"] == [
        "CiliumNetworkPolicy x/empty-rule: spec.ingress[0] has no peer and no port field; Cilium reads it as "
        "selecting nothing, so it puts the endpoint in default deny without allowing anything. Write "
        "fromEntities: [all] to allow everything, or fromEntities: [] to say so"
    ]
    deny_nothing = cnp(
        "deny-nothing", {"endpointSelector": pod("a"), "enableDefaultDeny": {"egress": False}, "egressDeny": [{}]}
    )
    assert destinations_allowed_from([deny_nothing], "x/a", ["y/b", "entity:world"]) == ["entity:world", "y/b"]
    all_entities = cnp("allow-all", {"endpointSelector": pod("a"), "ingress": [{"fromEntities": ["all"]}]})
    assert sources_allowed_to([all_entities], "x/a", sources=sources) == sorted(sources)


def test_explicit_empty_peer_list_isolates_without_allowing():
    # rules.go: "empty non-nil slices ... should not result in any identity being selected".
    for field in ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet"):
        policy = cnp("isolate", {"endpointSelector": pod("a"), "ingress": [{field: []}]})
        assert sources_allowed_to([policy], "x/a", sources=["y/b", "x/b", "entity:world"]) == [], field


def test_to_ports_without_peers_allows_every_peer_on_that_port():
    # CRD: "nil FromEndpoints is implicitly treated as a wildcard selector if ToPorts are also specified".
    policy = cnp(
        "port-81",
        {"endpointSelector": pod("a"), "ingress": [{"toPorts": [{"ports": [{"port": "81", "protocol": "TCP"}]}]}]},
    )
    assert sources_allowed_to([policy], "x/a", port=81, sources=["z/c", "entity:world"]) == ["entity:world", "z/c"]
    assert sources_allowed_to([policy], "x/a", port=80, sources=["z/c", "entity:world"]) == []


def test_to_ports_entry_without_ports_matches_nothing():
    policy = cnp("no-ports", {"endpointSelector": pod("a"), "ingress": [{"toPorts": [{"ports": []}]}]})
    assert sources_allowed_to([policy], "x/a") == []


# ----------------------------------------------------------------------------- default deny


def test_default_deny_only_in_directions_with_rules():
    # validation.go Sanitize: default deny is true for each direction that has rules.
    policy = cnp("ingress-only", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("b")]}]})
    assert sources_allowed_to([policy], "x/a") == ["x/b"]
    assert destinations_allowed_from([policy], "x/a") == OTHERS_OF_XA


def test_enable_default_deny_false_allows_are_additive():
    # intro.rst: rules with EnableDefaultDeny disabled are ignored when determining the mode.
    policy = cnp(
        "no-default-deny",
        {
            "endpointSelector": pod("a"),
            "enableDefaultDeny": {"ingress": False, "egress": False},
            "ingress": [{"fromEndpoints": [pod("b")]}],
        },
    )
    assert sources_allowed_to([policy], "x/a") == OTHERS_OF_XA


def test_enable_default_deny_true_without_rules_in_that_direction():
    policy = cnp(
        "deny-egress-too",
        {
            "endpointSelector": pod("a"),
            "enableDefaultDeny": {"egress": True},
            "ingress": [{"fromEndpoints": [pod("b")]}],
        },
    )
    assert destinations_allowed_from([policy], "x/a") == []


def test_any_policy_requesting_default_deny_wins():
    # EnableDefaultDeny: "If multiple policies apply to an endpoint, that endpoint's default
    # deny will be enabled if any policy requests it."
    relaxed = cnp(
        "relaxed",
        {
            "endpointSelector": pod("a"),
            "enableDefaultDeny": {"ingress": False},
            "ingress": [{"fromEndpoints": [pod("b")]}],
        },
    )
    strict = cnp("strict", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("c")]}]})
    assert sources_allowed_to([relaxed, strict], "x/a") == ["x/b", "x/c"]


# ----------------------------------------------------------------------------- deny rules


def test_ingress_deny_takes_precedence_over_network_policy_allow():
    # deny.rst: deny policies take precedence over allow policies of any kind.
    allow_all = np("allow-all", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]})
    deny_y = cnp(
        "deny-y",
        {
            "endpointSelector": pod("a"),
            "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "y"}}]}],
        },
    )
    assert sources_allowed_to([allow_all, deny_y], "x/a") == ["x/b", "x/c", "z/a", "z/b", "z/c"]


def test_deny_only_policy_puts_endpoint_in_default_deny():
    # deny.rst: "Pods will enter default-deny mode as soon a single policy selects it";
    # validation.go counts IngressDeny rules for the ingress default.
    deny_y = cnp(
        "deny-y",
        {
            "endpointSelector": pod("a"),
            "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "y"}}]}],
        },
    )
    assert sources_allowed_to([deny_y], "x/a") == []


def test_deny_with_default_deny_disabled_only_blocks_what_it_names():
    deny_y = cnp(
        "deny-y",
        {
            "endpointSelector": pod("a"),
            "enableDefaultDeny": {"ingress": False},
            "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "y"}}]}],
        },
    )
    assert sources_allowed_to([deny_y], "x/a") == ["x/b", "x/c", "z/a", "z/b", "z/c"]


def test_deny_on_one_port_only():
    # deny.rst table, second column: deny on 80/TCP, allows on 80 and 81: 81 allowed, 80 denied.
    allow = cnp("allow", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("b")]}]})
    deny = cnp(
        "deny-80",
        {
            "endpointSelector": pod("a"),
            "ingressDeny": [{"fromEndpoints": [pod("b")], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}],
        },
    )
    assert sources_allowed_to([allow, deny], "x/a", port=81) == ["x/b"]
    assert sources_allowed_to([allow, deny], "x/a", port=80) == []


def test_egress_deny_to_world_keeps_pods():
    allow = cnp(
        "allow-all-egress",
        {"endpointSelector": pod("a"), "egress": [{"toEntities": ["all"]}], "egressDeny": [{"toEntities": ["world"]}]},
    )
    assert destinations_allowed_from(
        [allow], "x/a", ["y/b", "entity:world", "cidr:198.51.100.7", "entity:kube-apiserver"]
    ) == ["entity:kube-apiserver", "y/b"]


# ----------------------------------------------------------------------------- entities and CIDR


def test_to_entities_kube_apiserver():
    # layer3.rst: kube-apiserver entity; egress isolation otherwise.
    policy = cnp(
        "api",
        {
            "endpointSelector": pod("a"),
            "egress": [
                {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]}
            ],
        },
    )
    destinations = ["entity:kube-apiserver", "entity:host", "entity:world", "cidr:203.0.113.9", "y/a"]
    assert destinations_allowed_from([policy], "x/a", destinations, port=6443) == ["entity:kube-apiserver"]
    assert destinations_allowed_from([policy], "x/a", destinations, port=443) == []


def test_cluster_entity_is_everything_but_world():
    # entity.go InitEntities: host, remote-node, init, ingress, health, unmanaged,
    # kube-apiserver and the pods of this cluster.
    policy = cnp("cluster", {"endpointSelector": pod("a"), "egress": [{"toEntities": ["cluster"]}]})
    destinations = [
        "entity:host",
        "entity:remote-node",
        "entity:health",
        "entity:kube-apiserver",
        "entity:init",
        "entity:ingress",
        "entity:unmanaged",
        "entity:world",
        "cidr:203.0.113.9",
        "z/c",
    ]
    assert destinations_allowed_from([policy], "x/a", destinations) == sorted(
        set(destinations) - {"entity:world", "cidr:203.0.113.9"}
    )


def test_cluster_entity_uses_cluster_name():
    policy = cnp("cluster", {"endpointSelector": pod("a"), "egress": [{"toEntities": ["cluster"]}]})
    assert destinations_allowed_from([policy], "x/a", ["z/c"], cluster_name="east") == ["z/c"]
    label = cnp(
        "other-cluster",
        {
            "endpointSelector": pod("a"),
            "egress": [
                {
                    "toEndpoints": [
                        {
                            "matchLabels": {
                                "io.cilium.k8s.policy.cluster": "west",
                                "k8s:io.kubernetes.pod.namespace": "z",
                            }
                        }
                    ]
                }
            ],
        },
    )
    assert destinations_allowed_from([label], "x/a", ["z/c"], cluster_name="east") == []


def test_world_entity_and_none():
    world = cnp("world", {"endpointSelector": pod("a"), "egress": [{"toEntities": ["world"]}]})
    none = cnp("none", {"endpointSelector": pod("b"), "egress": [{"toEntities": ["none"]}]})
    destinations = ["entity:world", "cidr:203.0.113.9", "entity:host", "y/a"]
    assert destinations_allowed_from([world, none], "x/a", destinations) == ["cidr:203.0.113.9", "entity:world"]
    assert destinations_allowed_from([world, none], "x/b", destinations) == []


def test_reserved_label_selector_in_from_endpoints():
    # utils.go: selectors with reserved: labels are used as written (no namespace scoping).
    policy = cnp(
        "from-host",
        {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [{"matchLabels": {"reserved:remote-node": ""}}]}]},
    )
    assert sources_allowed_to([policy], "x/a", sources=["entity:remote-node", "entity:health", "y/b"]) == [
        "entity:remote-node"
    ]


def test_to_cidr_never_matches_pods():
    # layer3.rst: "CIDR rules do not apply to traffic where both sides of the connection are
    # ... managed by Cilium".  10.0.0.0/8 covers every pod IP of the model.
    policy = cnp("cidr", {"endpointSelector": pod("a"), "egress": [{"toCIDR": ["10.0.0.0/8"]}]})
    destinations = ["y/b", "cidr:10.99.0.1", "cidr:203.0.113.9"]
    assert destinations_allowed_from([policy], "x/a", destinations) == ["cidr:10.99.0.1"]


def test_cidr_probe_on_a_pod_ip_is_the_pod():
    # Cilium maps a pod IP to the pod's identity, so a cidr: probe of y/b's IP is y/b.
    result = plan([], [{"port": 80, "from": "x/a", "to": "cidr:10.244.1.11"}])
    assert result["reachability"][0]["allowed"] == [["x/a", "y/b"]]


def test_to_cidr_set_except():
    policy = cnp(
        "cidrset",
        {
            "endpointSelector": pod("a"),
            "egress": [{"toCIDRSet": [{"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}]}],
        },
    )
    assert destinations_allowed_from([policy], "x/a", ["cidr:203.0.113.5", "cidr:203.0.113.200"]) == [
        "cidr:203.0.113.5"
    ]


def test_world_pseudo_endpoint_and_cidr_rules():
    # entity:world is "some outside address": only 0.0.0.0/0 without except is sure to hold it.
    everything = cnp("any-v4", {"endpointSelector": pod("a"), "egress": [{"toCIDR": ["0.0.0.0/0"]}]})
    partial = cnp(
        "part",
        {"endpointSelector": pod("b"), "egress": [{"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}]}]},
    )
    assert destinations_allowed_from([everything, partial], "x/a", ["entity:world"]) == ["entity:world"]
    assert destinations_allowed_from([everything, partial], "x/b", ["entity:world"]) == []


def test_from_cidr_ingress_for_outside_sources():
    policy = cnp("from-cidr", {"endpointSelector": pod("a"), "ingress": [{"fromCIDR": ["198.51.100.0/24"]}]})
    assert sources_allowed_to([policy], "x/a", sources=["cidr:198.51.100.7", "cidr:192.0.2.1", "y/a"]) == [
        "cidr:198.51.100.7"
    ]


# ----------------------------------------------------------------------------- ports


def test_cilium_port_forms():
    # Port "0" means every port; omitted protocol means ANY (TCP, UDP and SCTP); named ports
    # resolve on the destination; endPort gives a range.
    all_ports = cnp(
        "all-ports",
        {
            "endpointSelector": pod("a"),
            "ingress": [{"fromEndpoints": [pod("b")], "toPorts": [{"ports": [{"port": "0"}]}]}],
        },
    )
    assert sources_allowed_to([all_ports], "x/a", port=81, protocol="SCTP") == ["x/b"]
    named = cnp(
        "named",
        {
            "endpointSelector": pod("a"),
            "ingress": [{"fromEndpoints": [pod("b")], "toPorts": [{"ports": [{"port": "SERVE-81-UDP"}]}]}],
        },
    )
    assert sources_allowed_to([named], "x/a", port=81, protocol="UDP") == ["x/b"]
    assert sources_allowed_to([named], "x/a", port=80, protocol="UDP") == []
    ranged = cnp(
        "range",
        {
            "endpointSelector": pod("a"),
            "ingress": [
                {
                    "fromEndpoints": [pod("b")],
                    "toPorts": [{"ports": [{"port": "80", "endPort": 81, "protocol": "UDP"}]}],
                }
            ],
        },
    )
    assert sources_allowed_to([ranged], "x/a", port=81, protocol="UDP") == ["x/b"]
    assert sources_allowed_to([ranged], "x/a", port=81, protocol="TCP") == []


def test_icmp_only_rule_opens_no_transport_port():
    policy = cnp(
        "ping",
        {
            "endpointSelector": pod("a"),
            "ingress": [{"fromEndpoints": [pod("b")], "icmps": [{"fields": [{"type": 8}]}]}],
        },
    )
    assert sources_allowed_to([policy], "x/a") == []


def test_specs_list_adds_rules():
    policy = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "two", "namespace": "x"},
        "specs": [
            {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("b")]}]},
            {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("c")]}]},
        ],
    }
    assert sources_allowed_to([policy], "x/a") == ["x/b", "x/c"]


def test_network_policy_and_cilium_policy_allows_are_unioned():
    allow_b = np("allow-b", {"podSelector": pod("a"), "ingress": [{"from": [{"podSelector": pod("b")}]}]})
    allow_c = cnp("allow-c", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("c")]}]})
    assert sources_allowed_to([allow_b, allow_c], "x/a") == ["x/b", "x/c"]


# ----------------------------------------------------------------------------- L7 and FQDN


L7_RULE = {"method": "GET", "path": "/api/v1/data"}


def l7_policy(name="l7"):
    return cnp(
        name,
        {
            "endpointSelector": pod("a"),
            "ingress": [
                {
                    "fromEndpoints": [pod("b")],
                    "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [L7_RULE]}}],
                }
            ],
        },
    )


def test_http_rule_reported_as_restricted_with_rule():
    entry = plan([l7_policy()], [{"port": 80, "to": "x/a"}])["reachability"][0]
    assert entry["allowed"] == [["x/b", "x/a"]]
    assert entry["restricted"] == [
        {
            "from": "x/b",
            "to": "x/a",
            "rules": [
                {
                    "policy": "CiliumNetworkPolicy x/l7",
                    "rule": "spec.ingress[0].toPorts[0]",
                    "direction": "ingress",
                    "l7": {"http": [L7_RULE]},
                }
            ],
        }
    ]
    assert entry["counts"] == {"allowed": 1, "denied": 7, "restricted": 1}


def test_l4_allow_on_the_same_port_lifts_the_l7_restriction():
    # layer7.rst: a similar L4 rule makes the L7 portions of the other rule have no effect.
    l4 = np(
        "l4", {"podSelector": pod("a"), "ingress": [{"from": [{"podSelector": pod("b")}], "ports": [{"port": 80}]}]}
    )
    entry = plan([l7_policy(), l4], [{"port": 80, "to": "x/a"}])["reachability"][0]
    assert entry["allowed"] == [["x/b", "x/a"]]
    assert entry["restricted"] == []


def test_l7_rules_in_a_default_allow_direction_restrict_nothing():
    # rule.go createL4Filter: with default deny disabled for the endpoint, L7 rules get a
    # wildcard, so they do not restrict.
    policy = cnp(
        "l7-relaxed",
        {
            "endpointSelector": pod("a"),
            "enableDefaultDeny": {"ingress": False},
            "ingress": [
                {
                    "fromEndpoints": [pod("b")],
                    "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [L7_RULE]}}],
                }
            ],
        },
    )
    entry = plan([policy], [{"port": 80, "to": "x/a"}])["reachability"][0]
    assert len(entry["allowed"]) == 8
    assert entry["restricted"] == []


def test_to_fqdns_is_restricted_and_outside_only():
    policy = cnp(
        "fqdn",
        {
            "endpointSelector": pod("a"),
            "egress": [
                {
                    "toFQDNs": [{"matchName": "api.example.com"}],
                    "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
                }
            ],
        },
    )
    entry = plan([policy], [{"port": 443, "from": "x/a", "to": ["cidr:203.0.113.9", "y/a"]}])["reachability"][0]
    assert entry["allowed"] == [["x/a", "cidr:203.0.113.9"]]
    assert entry["denied"] == [["x/a", "y/a"]]
    assert entry["restricted"][0]["rules"][0]["l7"] == {"toFQDNs": ["matchName=api.example.com"]}


def test_dns_rules_on_egress():
    policy = cnp(
        "dns",
        {
            "endpointSelector": pod("a"),
            "egress": [
                {
                    "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "z", "pod": "c"}}],
                    "toPorts": [
                        {"ports": [{"port": "80", "protocol": "UDP"}], "rules": {"dns": [{"matchPattern": "*"}]}}
                    ],
                }
            ],
        },
    )
    entry = plan([policy], [{"port": 80, "protocol": "UDP", "from": "x/a"}])["reachability"][0]
    assert entry["allowed"] == [["x/a", "z/c"]]
    assert entry["restricted"][0]["rules"][0]["l7"] == {"dns": [{"dns": "matchPattern=*"}]}


# ----------------------------------------------------------------------------- enforcement modes and host


def test_always_mode_isolates_pods_without_policies():
    # intro.rst: with always, policy enforcement is enabled on all endpoints.
    result = plan([], [{"port": 80}], policy_enforcement_mode="always")
    assert result["reachability"][0]["allowed"] == []
    assert result["summary"]["isolated_pods"] == {"ingress": 9, "egress": 9}


def test_always_mode_needs_explicit_dns_and_api_server_allows():
    dns = ccnp(
        "dns",
        {
            "endpointSelector": {},
            "egress": [
                {
                    "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "z", "pod": "c"}}],
                    "toPorts": [{"ports": [{"port": "80", "protocol": "UDP"}]}],
                }
            ],
            "ingress": [{"fromEndpoints": [{}], "toPorts": [{"ports": [{"port": "80", "protocol": "UDP"}]}]}],
        },
    )
    result = plan(
        [dns],
        [{"port": 80, "protocol": "UDP", "to": "z/c"}, {"port": 6443, "to": "entity:kube-apiserver"}],
        policy_enforcement_mode="always",
    )
    assert sorted(src for src, dst in result["reachability"][0]["allowed"]) == sorted(
        ref for ref in ALL if ref != "z/c"
    )
    assert result["reachability"][1]["allowed"] == []


def test_never_mode_enforces_nothing():
    # intro.rst: never disables enforcement even when rules select endpoints (deny too).
    deny_all = np("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    deny = cnp("deny", {"endpointSelector": {}, "ingressDeny": [{}]})
    result = plan([deny_all, deny], [{"port": 80}], policy_enforcement_mode="never")
    assert len(result["reachability"][0]["allowed"]) == 72


def test_local_host_always_reaches_its_pods():
    # layer3.rst: "Kubernetes will automatically allow all communication from the local host
    # of all local endpoints" unless --allow-localhost=policy.
    deny_all = np("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]})
    assert sources_allowed_to([deny_all], "x/a", sources=["entity:host", "entity:remote-node"]) == ["entity:host"]
    assert sources_allowed_to([deny_all], "x/a", sources=["entity:host"], allow_localhost=False) == []


def test_isolated_pod_needs_host_entity_for_egress_to_node():
    deny_all = np("deny-all", {"podSelector": {}, "policyTypes": ["Egress"]})
    host = cnp("to-host", {"endpointSelector": pod("b"), "egress": [{"toEntities": ["host"]}]})
    assert destinations_allowed_from([deny_all, host], "x/a", ["entity:host"]) == []
    assert destinations_allowed_from([deny_all, host], "x/b", ["entity:host"]) == ["entity:host"]


# ----------------------------------------------------------------------------- probes and identities


def test_default_probes_are_served_ports_and_destinations_serve_them():
    pods = [
        {"namespace": "x", "name": "web", "labels": {"app": "web"}, "ports": [{"port": 8080}]},
        {"namespace": "x", "name": "dns", "labels": {"app": "dns"}, "ports": [{"port": 53, "protocol": "UDP"}]},
        {"namespace": "y", "name": "client", "labels": {"app": "client"}},
    ]
    result = plan_reachability({"x": {}, "y": {}}, pods, [])
    assert [(entry["port"], entry["protocol"]) for entry in result["reachability"]] == [(8080, "TCP"), (53, "UDP")]
    assert result["reachability"][0]["allowed"] == [["x/dns", "x/web"], ["y/client", "x/web"]]
    assert result["reachability"][1]["allowed"] == [["x/web", "x/dns"], ["y/client", "x/dns"]]


def test_pods_with_same_labels_share_an_identity():
    pods = [
        {"namespace": "x", "name": "web-%d" % index, "labels": {"app": "web"}, "ports": [{"port": 80}]}
        for index in range(5)
    ]
    pods.append({"namespace": "y", "name": "web-0", "labels": {"app": "web"}, "ports": [{"port": 80}]})
    result = plan_reachability({"x": {}, "y": {}}, pods, [])
    assert result["identities"] == 2
    # 6 pods, every ordered pair but the self-pairs: 6 * 5.
    assert result["reachability"][0]["counts"] == {"allowed": 30, "denied": 0, "restricted": 0}


def test_namespace_wildcard_in_probes_and_report_pairs_off():
    result = plan([], [{"port": 80, "from": "y/*", "to": "z/*"}], report_pairs=False)
    entry = result["reachability"][0]
    assert entry == {"port": 80, "protocol": "TCP", "counts": {"allowed": 9, "denied": 0, "restricted": 0}}


# ----------------------------------------------------------------------------- explain


def test_explain_denied_by_missing_egress_allow():
    deny_all = np("default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    allow_b = np(
        "allow-b",
        {
            "podSelector": pod("a"),
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": pod("b")}], "ports": [{"port": 80}]}],
        },
    )
    result = plan([deny_all, allow_b], [{"port": 80}], explain=[["x/b", "x/a", 80]])
    explained = result["explain"][0]
    assert explained["verdict"] == "denied"
    assert explained["egress"]["isolated_by"] == ["NetworkPolicy x/default-deny-all"]
    assert explained["egress"]["allowed_by"] == []
    assert explained["ingress"]["allowed_by"] == [{"policy": "NetworkPolicy x/allow-b", "rule": "spec.ingress[0]"}]
    assert explained["ingress"]["allowed"] is True
    assert explained["reason"] == "denied: x/b is isolated for egress and no egress rule allows x/a on 80/TCP"


def test_explain_allowed_and_denied_by_deny_rule():
    deny = cnp(
        "deny-y",
        {
            "endpointSelector": pod("a"),
            "enableDefaultDeny": {"ingress": False},
            "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "y"}}]}],
        },
    )
    result = plan([deny], [{"port": 80}], explain=[{"from": "y/b", "to": "x/a", "port": 80}, ["z/b", "x/a"]])
    first, second = result["explain"]
    assert first["verdict"] == "denied"
    assert first["ingress"]["denied_by"] == [{"policy": "CiliumNetworkPolicy x/deny-y", "rule": "spec.ingressDeny[0]"}]
    assert second["verdict"] == "allowed"
    assert second["ingress"]["selected_by"] == ["CiliumNetworkPolicy x/deny-y"]
    assert second["ingress"]["isolated"] is False
    assert second["egress"]["selected_by"] == []


def test_explain_restricted_and_non_pod_side():
    result = plan([l7_policy()], [{"port": 80}], explain=[["x/b", "x/a", 80], ["entity:world", "x/a", 80, "tcp"]])
    restricted, world = result["explain"]
    assert restricted["verdict"] == "restricted"
    assert restricted["ingress"]["restricted_at_l7"] is True
    assert restricted["ingress"]["allowed_by"][0]["l7"] == {"http": [L7_RULE]}
    assert world["verdict"] == "denied"
    assert world["egress"]["enforced"] is False


def test_explain_without_port_covers_every_probe():
    result = plan([], [{"port": 80}, {"port": 81, "protocol": "UDP"}], explain=[["x/a", "y/a"]])
    assert [(item["port"], item["protocol"], item["verdict"]) for item in result["explain"]] == [
        (80, "TCP", "allowed"),
        (81, "UDP", "allowed"),
    ]


def test_summary_counts():
    deny_all = np("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]})
    isolate_all = ccnp("c", {"endpointSelector": {}, "ingress": [{"fromEntities": []}]})
    result = plan([deny_all, l7_policy(), isolate_all], [{"port": 80}])
    summary = result["summary"]
    assert summary["policies"] == {"NetworkPolicy": 1, "CiliumNetworkPolicy": 1, "CiliumClusterwideNetworkPolicy": 1}
    assert summary["pods"] == 9 and summary["namespaces"] == 3 and summary["identities"] == 9
    assert summary["isolated_pods"] == {"ingress": 9, "egress": 0}
    # every pod is isolated for ingress; only x/b -> x/a is allowed, by the L7 rule
    assert summary["pairs"] == {"allowed": 1, "denied": 71, "restricted": 1}


def test_deny_on_a_named_port_in_both_directions():
    # Named ports resolve on the destination pod for deny rules as for allow rules.
    allow = cnp("allow", {"endpointSelector": pod("a"), "ingress": [{"fromEndpoints": [pod("b")]}]})
    deny_in = cnp(
        "deny-in",
        {
            "endpointSelector": pod("a"),
            "ingressDeny": [{"fromEndpoints": [pod("b")], "toPorts": [{"ports": [{"port": "serve-80-tcp"}]}]}],
        },
    )
    assert sources_allowed_to([allow, deny_in], "x/a", port=80) == []
    assert sources_allowed_to([allow, deny_in], "x/a", port=81) == ["x/b"]
    deny_out = cnp(
        "deny-out",
        {
            "endpointSelector": pod("c"),
            "enableDefaultDeny": {"egress": False},
            "egressDeny": [{"toPorts": [{"ports": [{"port": "serve-81-udp"}]}]}],
        },
    )
    assert destinations_allowed_from([deny_out], "x/c", ["y/a"], port=81, protocol="UDP") == []
    assert destinations_allowed_from([deny_out], "x/c", ["y/a"], port=80, protocol="UDP") == ["y/a"]
