# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to module_utils/netpol.py: every case must raise the collection's error with a
message naming the policy (or input), the field path and what is wrong -- never a traceback
from deeper down.

The rules come from Kubernetes API validation (ValidateNetworkPolicySpec, ValidateIPBlock,
label selector validation, IsValidPortName), from the CiliumNetworkPolicy CRD schema and from
Cilium's Rule.Sanitize (pkg/policy/api/rule_validation.go).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability

NAMESPACES = {"production": {"env": "prod"}, "kube-system": {}}
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
        "name": "backend-0",
        "labels": {"app": "backend"},
        "ip": "10.0.1.20",
        "ports": [{"name": "api", "port": 8080}],
    },
    {
        "namespace": "kube-system",
        "name": "coredns-0",
        "labels": {"k8s-app": "kube-dns"},
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
    },
]


def np(spec, name="p", namespace="production"):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def cnp(spec, name="c", namespace="production"):
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def ccnp(spec, name="cc"):
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def ingress_ports(*ports):
    return np({"podSelector": {}, "ingress": [{"ports": list(ports)}]})


def cnp_ports(*ports, **extra):
    entry = {"ports": list(ports)}
    entry.update(extra)
    return cnp({"endpointSelector": {}, "ingress": [{"toPorts": [entry]}]})


# (case id, policy, expected message) -- the message is compared in full.
POLICY_CASES = [
    (
        "unknown-kind",
        {"apiVersion": "networking.k8s.io/v1beta1", "kind": "NetworkPolicy", "metadata": {"name": "p"}},
        "policies[0]: policies[0].kind: 'networking.k8s.io/v1beta1 NetworkPolicy' is not one of: networking.k8s.io/v1 NetworkPolicy, "
        "cilium.io/v2 CiliumNetworkPolicy, cilium.io/v2 CiliumClusterwideNetworkPolicy",
    ),
    (
        "missing-namespace",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "p"},
            "spec": {"podSelector": {}},
        },
        "NetworkPolicy p: metadata.namespace: None is required so the policy's scope is explicit",
    ),
    (
        "unknown-namespace",
        np({"podSelector": {}}, namespace="staging"),
        "NetworkPolicy staging/p: metadata.namespace: 'staging' is not one of the namespaces given (kube-system, production)",
    ),
    (
        "bad-name",
        np({"podSelector": {}}, name="Bad_Name"),
        "NetworkPolicy policies[0]: metadata.name: 'Bad_Name' is not a valid object name (DNS-1123 subdomain)",
    ),
    (
        "missing-pod-selector",
        np({"policyTypes": ["Ingress"]}),
        "NetworkPolicy production/p: spec.podSelector: None is required ({} selects every pod of the namespace)",
    ),
    (
        "unknown-spec-field",
        np({"podSelector": {}, "ingres": []}),
        "NetworkPolicy production/p: spec.ingres: [] is not a known field here (the API server would drop it silently); "
        "known fields: egress, ingress, podSelector, policyTypes",
    ),
    (
        "bad-policy-type",
        np({"podSelector": {}, "policyTypes": ["Inbound"]}),
        "NetworkPolicy production/p: spec.policyTypes[0]: 'Inbound' is not one of: Ingress, Egress",
    ),
    (
        "unknown-operator",
        np({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["a"]}]}}),
        "NetworkPolicy production/p: spec.podSelector.matchExpressions[0].operator: 'Equals' is not one of: In, NotIn, Exists, DoesNotExist",
    ),
    (
        "in-without-values",
        np({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}),
        "NetworkPolicy production/p: spec.podSelector.matchExpressions[0].values: [] must not be empty for operator In",
    ),
    (
        "exists-with-values",
        np({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}}),
        "NetworkPolicy production/p: spec.podSelector.matchExpressions[0].values: ['x'] must be empty for operator Exists",
    ),
    (
        "bad-label-key",
        np({"podSelector": {"matchLabels": {"app name": "x"}}}),
        "NetworkPolicy production/p: spec.podSelector.matchLabels['app name']: 'app name' is not a valid label name: at most 63 "
        "characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric",
    ),
    (
        "bad-label-value",
        np({"podSelector": {"matchLabels": {"app": "-x"}}}),
        "NetworkPolicy production/p: spec.podSelector.matchLabels['app']: '-x' is not a valid label value: at most 63 characters, "
        "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric",
    ),
    (
        "selector-not-a-mapping",
        np({"podSelector": ["app"]}),
        "NetworkPolicy production/p: spec.podSelector: ['app'] must be a mapping, got list",
    ),
    (
        "port-zero",
        ingress_ports({"port": 0}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].port: 0 must be a port number from 1 to 65535 or a port name",
    ),
    (
        "port-too-big",
        ingress_ports({"port": 70000}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].port: 70000 must be a port number from 1 to 65535 or a port name",
    ),
    (
        "port-as-digit-string",
        ingress_ports({"port": "8080"}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].port: '8080' is not a valid named port (IANA service name: at most "
        "15 lowercase alphanumerics or '-', with a letter) (write the number without quotes)",
    ),
    (
        "bad-protocol",
        ingress_ports({"port": 80, "protocol": "ICMP"}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].protocol: 'ICMP' is not one of: TCP, UDP, SCTP",
    ),
    (
        "end-port-without-port",
        ingress_ports({"endPort": 90}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].endPort: 90 needs port to be set (the start of the range)",
    ),
    (
        "end-port-below-port",
        ingress_ports({"port": 100, "endPort": 90}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].endPort: 90 must be greater than or equal to port (100)",
    ),
    (
        "end-port-with-named-port",
        ingress_ports({"port": "http", "endPort": 90}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].endPort: 90 needs a numeric port, not the named port 'http'",
    ),
    (
        "end-port-out-of-range",
        ingress_ports({"port": 100, "endPort": 65536}),
        "NetworkPolicy production/p: spec.ingress[0].ports[0].endPort: 65536 must be a port number from 1 to 65535",
    ),
    (
        "named-port-nobody-serves",
        ingress_ports({"port": "metrics"}),
        "NetworkPolicy production/p: spec.ingress[0].ports: 'metrics' names a port no pod serves over TCP",
    ),
    (
        "named-port-other-protocol",
        ingress_ports({"port": "dns", "protocol": "TCP"}),
        "NetworkPolicy production/p: spec.ingress[0].ports: 'dns' names a port no pod serves over TCP (served over UDP)",
    ),
    (
        "empty-peer",
        np({"podSelector": {}, "ingress": [{"from": [{}]}]}),
        "NetworkPolicy production/p: spec.ingress[0].from[0]: {} must set podSelector, namespaceSelector or ipBlock",
    ),
    (
        "ip-block-with-selector",
        np({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}),
        "NetworkPolicy production/p: spec.ingress[0].from[0].ipBlock: {'cidr': '10.0.0.0/8'} cannot be combined with "
        "podSelector or namespaceSelector in one peer",
    ),
    (
        "ip-block-bad-cidr",
        np({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]}),
        "NetworkPolicy production/p: spec.egress[0].to[0].ipBlock.cidr: '10.0.0.300/8' is not a valid CIDR: "
        "'10.0.0.300/8' does not appear to be an IPv4 or IPv6 network",
    ),
    (
        "ip-block-plain-address",
        np({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]}),
        "NetworkPolicy production/p: spec.egress[0].to[0].ipBlock.cidr: '10.0.0.1' must be a CIDR in prefix notation such as 10.0.0.0/8",
    ),
    (
        "ip-block-except-outside",
        np({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}]}]}),
        "NetworkPolicy production/p: spec.egress[0].to[0].ipBlock.except[0]: '10.1.0.0/24' must be a strict subset of cidr 10.0.0.0/16",
    ),
    (
        "ip-block-except-equal",
        np({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}}]}]}),
        "NetworkPolicy production/p: spec.egress[0].to[0].ipBlock.except[0]: '10.0.0.0/16' must be a strict subset of cidr 10.0.0.0/16",
    ),
    # ---- Cilium
    (
        "cnp-port-not-a-string",
        cnp_ports({"port": 8080, "protocol": "TCP"}),
        'CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].ports[0].port: 8080 must be a string in a Cilium policy (quote it: "8080")',
    ),
    (
        "cnp-port-out-of-range",
        cnp_ports({"port": "99999"}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].ports[0].port: '99999' must be a port number from 0 to 65535 or a port name",
    ),
    (
        "cnp-port-missing",
        cnp_ports({"protocol": "TCP"}),
        'CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].ports[0].port: None is required (use "0" for all ports)',
    ),
    (
        "cnp-end-port-below-port",
        cnp_ports({"port": "8080", "endPort": 80}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].ports[0].endPort: 80 must be greater than or equal to port (8080)",
    ),
    (
        "cnp-bad-protocol",
        cnp_ports({"port": "80", "protocol": "tcp"}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].ports[0].protocol: 'tcp' is not one of: TCP, UDP, SCTP, VRRP, "
        "IGMP, GRE, IPIP, IPV6, ESP, AH, ANY",
    ),
    (
        "cnp-http-on-udp",
        cnp_ports({"port": "80", "protocol": "UDP"}, rules={"http": [{"method": "GET"}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].rules.http: [{'method': 'GET'}] needs protocol TCP on every "
        "port of the entry (Cilium refuses L7 rules on UDP)",
    ),
    (
        "cnp-http-on-port-zero",
        cnp_ports({"port": "0", "protocol": "TCP"}, rules={"http": [{"method": "GET"}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].rules.http: [{'method': 'GET'}] cannot be used with port 0 (all ports)",
    ),
    (
        "cnp-dns-on-ingress",
        cnp_ports({"port": "53", "protocol": "UDP"}, rules={"dns": [{"matchPattern": "*"}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].rules.dns: [{'matchPattern': '*'}] is not allowed on ingress "
        "(Cilium refuses DNS rules there)",
    ),
    (
        "cnp-http-bad-regex",
        cnp_ports({"port": "80", "protocol": "TCP"}, rules={"http": [{"path": "/api/("}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].rules.http[0].path: '/api/(' is not a valid regular "
        "expression: missing ), unterminated subpattern at position 5",
    ),
    (
        "cnp-two-l7-kinds",
        cnp_ports({"port": "80", "protocol": "TCP"}, rules={"http": [], "dns": []}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].rules: {'http': [], 'dns': []} must set exactly one of http, dns",
    ),
    (
        "cnp-bad-entity",
        cnp({"endpointSelector": {}, "egress": [{"toEntities": ["internet"]}]}),
        "CiliumNetworkPolicy production/c: spec.egress[0].toEntities[0]: 'internet' is not one of: all, world, cluster, host, init, "
        "ingress, unmanaged, remote-node, health, none, kube-apiserver",
    ),
    (
        "cnp-to-services",
        cnp(
            {
                "endpointSelector": {},
                "egress": [{"toServices": [{"k8sService": {"serviceName": "db", "namespace": "production"}}]}],
            }
        ),
        "CiliumNetworkPolicy production/c: spec.egress[0].toServices: [{'k8sService': {'serviceName': 'db', 'namespace': 'production'}}] "
        "is not modelled by the policy engine: Services are not an input; select the backend pods with toEndpoints",
    ),
    (
        "ccnp-node-selector",
        ccnp({"nodeSelector": {}, "ingress": [{}]}),
        "CiliumClusterwideNetworkPolicy cc: spec.nodeSelector: {} is not modelled by the policy engine: host policies (nodeSelector) "
        "are not modelled; only pods are policy subjects",
    ),
    (
        "cnp-authentication",
        cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}], "authentication": {"mode": "required"}}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].authentication: {'mode': 'required'} is not modelled by the policy "
        "engine: mutual authentication is not modelled",
    ),
    (
        "cnp-server-names",
        cnp_ports({"port": "443", "protocol": "TCP"}, serverNames=["example.com"]),
        "CiliumNetworkPolicy production/c: spec.ingress[0].toPorts[0].serverNames: ['example.com'] is not modelled by the policy "
        "engine: TLS SNI matching is not modelled",
    ),
    (
        "cnp-cidr-group",
        cnp({"endpointSelector": {}, "egress": [{"toCIDRSet": [{"cidrGroupRef": "corp"}]}]}),
        "CiliumNetworkPolicy production/c: spec.egress[0].toCIDRSet[0].cidrGroupRef: 'corp' is not modelled by the policy engine: "
        "CiliumCIDRGroup objects are not an input",
    ),
    (
        "cnp-typo-field",
        cnp({"endpointSelector": {}, "ingress": [{"fromEndpoint": [{"matchLabels": {"app": "x"}}]}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].fromEndpoint: [{'matchLabels': {'app': 'x'}}] is not a known field here "
        "(the API server would drop it silently); known fields: authentication, fromCIDR, fromCIDRSet, fromEndpoints, fromEntities, "
        "fromGroups, fromNodes, fromRequires, icmps, toPorts",
    ),
    (
        "cnp-combined-peers",
        cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}], "fromCIDR": ["10.0.0.0/8"]}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0]: ['fromEndpoints', 'fromCIDR'] combines fromEndpoints and fromCIDR; "
        "Cilium allows only one kind of peer per rule (split it into several rules)",
    ),
    (
        "cnp-icmps-with-ports",
        cnp(
            {
                "endpointSelector": {},
                "ingress": [{"icmps": [{"fields": [{"type": 8}]}], "toPorts": [{"ports": [{"port": "80"}]}]}],
            }
        ),
        "CiliumNetworkPolicy production/c: spec.ingress[0].icmps: [{'fields': [{'type': 8}]}] cannot be combined with toPorts in "
        "one rule (Cilium refuses it); use a separate rule",
    ),
    (
        "cnp-from-requires",
        cnp({"endpointSelector": {}, "ingress": [{"fromRequires": [{"matchLabels": {"env": "prod"}}]}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].fromRequires: [{'matchLabels': {'env': 'prod'}}] must be empty: the "
        "field is deprecated and was removed in Cilium 1.19",
    ),
    (
        "cnp-no-rule-field",
        cnp({"endpointSelector": {}}),
        "CiliumNetworkPolicy production/c: spec: {'endpointSelector': {}} must set at least one of ingress, ingressDeny, egress, "
        "egressDeny (the CRD requires it)",
    ),
    (
        "cnp-all-rules-empty",
        cnp({"endpointSelector": {}, "ingress": [], "egress": []}),
        "CiliumNetworkPolicy production/c: spec: {'endpointSelector': {}, 'ingress': [], 'egress': []} has no rule in ingress, "
        "ingressDeny, egress or egressDeny; Cilium refuses such a rule. Use ingress: [{fromEntities: []}] to isolate without "
        "allowing anything",
    ),
    (
        "cnp-no-spec",
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "c", "namespace": "production"},
        },
        "CiliumNetworkPolicy production/c: spec: None is required (or specs): a Cilium policy without rules is rejected",
    ),
    (
        "cnp-missing-endpoint-selector",
        cnp({"ingress": [{}]}),
        "CiliumNetworkPolicy production/c: spec.endpointSelector: None is required (nodeSelector, the alternative, is not modelled)",
    ),
    (
        "cnp-bad-label-value",
        cnp({"endpointSelector": {"matchLabels": {"app": "a b"}}, "ingress": [{}]}),
        "CiliumNetworkPolicy production/c: spec.endpointSelector.matchLabels['app']: 'a b' does not match the CRD pattern for label "
        "values (at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)",
    ),
    (
        "cnp-selector-unknown-field",
        cnp({"endpointSelector": {"matchLabel": {"app": "a"}}, "ingress": [{}]}),
        "CiliumNetworkPolicy production/c: spec.endpointSelector.matchLabel: {'app': 'a'} is not a known field here (the API server "
        "would drop it silently); known fields: matchExpressions, matchLabels",
    ),
    (
        "cnp-default-deny-not-bool",
        cnp({"endpointSelector": {}, "enableDefaultDeny": {"ingress": "no"}, "ingress": [{}]}),
        "CiliumNetworkPolicy production/c: spec.enableDefaultDeny.ingress: 'no' must be a boolean",
    ),
    (
        "cnp-cidr-except-outside",
        cnp(
            {"endpointSelector": {}, "egress": [{"toCIDRSet": [{"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}]}]}
        ),
        "CiliumNetworkPolicy production/c: spec.egress[0].toCIDRSet[0].except[0]: '192.168.0.0/24' must lie inside cidr 10.0.0.0/16 "
        "(Cilium refuses the rule otherwise)",
    ),
    (
        "cnp-fqdn-both",
        cnp(
            {"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "a.example", "matchPattern": "*.example"}]}]}
        ),
        "CiliumNetworkPolicy production/c: spec.egress[0].toFQDNs[0]: {'matchName': 'a.example', 'matchPattern': '*.example'} "
        "must set exactly one of matchName, matchPattern",
    ),
    (
        "cnp-deny-with-l7",
        cnp(
            {"endpointSelector": {}, "ingressDeny": [{"toPorts": [{"ports": [{"port": "80"}], "rules": {"http": []}}]}]}
        ),
        "CiliumNetworkPolicy production/c: spec.ingressDeny[0].toPorts[0].rules: {'http': []} is not a known field here (the API "
        "server would drop it silently); known fields: ports",
    ),
    (
        "ccnp-with-namespace",
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": "cc", "namespace": "production"},
            "spec": {"endpointSelector": {}, "ingress": [{}]},
        },
        "CiliumClusterwideNetworkPolicy cc: metadata.namespace: 'production' must not be set: a CiliumClusterwideNetworkPolicy is cluster-scoped",
    ),
    (
        "cnp-icmp-type",
        cnp({"endpointSelector": {}, "ingress": [{"icmps": [{"fields": [{"type": 300}]}]}]}),
        "CiliumNetworkPolicy production/c: spec.ingress[0].icmps[0].fields[0].type: 300 must be an ICMP type number (0-255) or name "
        "such as EchoRequest",
    ),
]


@pytest.mark.parametrize("case_id, policy, message", POLICY_CASES, ids=[case[0] for case in POLICY_CASES])
def test_bad_policy(case_id, policy, message):
    with pytest.raises(InvalidInput) as raised:
        plan_reachability(copy.deepcopy(NAMESPACES), copy.deepcopy(PODS), [policy])
    assert str(raised.value) == message


def test_several_bad_policies_are_reported_together():
    policies = [
        ingress_ports({"port": 0}),
        np({"podSelector": {}}, name="ok"),
        cnp({"endpointSelector": {}, "egress": [{"toEntities": ["internet"]}]}),
    ]
    with pytest.raises(InvalidInputs) as raised:
        plan_reachability(NAMESPACES, PODS, policies)
    assert len(raised.value.problems) == 2
    assert str(raised.value).splitlines()[0] == "policies: 2 problem(s) found:"
    assert "NetworkPolicy production/p: spec.ingress[0].ports[0].port: 0" in str(raised.value)
    assert "CiliumNetworkPolicy production/c: spec.egress[0].toEntities[0]: 'internet'" in str(raised.value)


def test_duplicate_policy():
    with pytest.raises(InvalidInput) as raised:
        plan_reachability(NAMESPACES, PODS, [np({"podSelector": {}}), np({"podSelector": {}})])
    assert (
        str(raised.value)
        == "NetworkPolicy production/p: policies[1].metadata.name: 'NetworkPolicy production/p' is defined twice (also policies[0])"
    )


# (case id, keyword arguments, expected message)
INPUT_CASES = [
    (
        "pod-unknown-namespace",
        dict(pods=[{"namespace": "staging", "name": "x"}]),
        "pods: pods[0].namespace: 'staging' is not one of the namespaces given (kube-system, production)",
    ),
    (
        "pod-bad-name",
        dict(pods=[{"namespace": "production", "name": "X_1"}]),
        "pods: pods[0].name: 'X_1' is not a valid pod name (DNS-1123 subdomain)",
    ),
    (
        "pod-duplicate",
        dict(pods=[{"namespace": "production", "name": "x"}, {"namespace": "production", "name": "x"}]),
        "pods: pods[1].name: 'x' is given twice in namespace production",
    ),
    (
        "pod-bad-ip",
        dict(pods=[{"namespace": "production", "name": "x", "ip": "10.0.0.256"}]),
        "pods: pods[0].ip: '10.0.0.256' is not a valid IP address",
    ),
    (
        "pod-duplicate-ip",
        dict(
            pods=[
                {"namespace": "production", "name": "x", "ip": "10.0.0.5"},
                {"namespace": "production", "name": "y", "ip": "10.0.0.5"},
            ]
        ),
        "pods: pods[1].ip: '10.0.0.5' is also the IP of production/x",
    ),
    (
        "pod-port-range",
        dict(pods=[{"namespace": "production", "name": "x", "ports": [{"port": 0}]}]),
        "pods: pods[0].ports[0].port: 0 must be an integer from 1 to 65535",
    ),
    (
        "pod-port-name",
        dict(pods=[{"namespace": "production", "name": "x", "ports": [{"port": 80, "name": "Web"}]}]),
        "pods: pods[0].ports[0].name: 'Web' is not a valid port name (IANA service name: at most 15 lowercase alphanumerics or '-', with a letter)",
    ),
    (
        "pod-reserved-label",
        dict(pods=[{"namespace": "production", "name": "x", "labels": {"io.kubernetes.pod.namespace": "other"}}]),
        "pods: pods[0].labels['io.kubernetes.pod.namespace']: 'other' uses a key Cilium reserves for its own identity labels",
    ),
    (
        "pod-unknown-field",
        dict(pods=[{"namespace": "production", "name": "x", "label": {}}]),
        "pods: pods[0].label: {} is not a known field here (the API server would drop it silently); known fields: ip, labels, "
        "name, namespace, ports, service_account",
    ),
    (
        "namespace-bad-name",
        dict(namespaces={"Prod": {}}),
        "namespaces: namespaces: 'Prod' is not a valid namespace name (DNS-1123 label)",
    ),
    (
        "namespace-name-label",
        dict(namespaces={"production": {"kubernetes.io/metadata.name": "prod"}}),
        "namespaces: namespaces['production']['kubernetes.io/metadata.name']: 'prod' must equal the namespace name (the API server sets it)",
    ),
    (
        "probe-unknown-namespace",
        dict(probes=[{"port": 80, "to": "staging/web-0"}]),
        "probes: probes[0].to[0]: 'staging/web-0' names unknown namespace 'staging'; known: kube-system, production",
    ),
    (
        "probe-unknown-pod",
        dict(probes=[{"port": 80, "from": "production/web-9"}]),
        "probes: probes[0].from[0]: 'production/web-9' names a pod that is not in the pods input",
    ),
    (
        "probe-unknown-entity",
        dict(probes=[{"port": 80, "to": "entity:internet"}]),
        "probes: probes[0].to[0]: 'entity:internet' names an unknown entity; known: entity:host, entity:remote-node, "
        "entity:kube-apiserver, entity:health, entity:ingress, entity:init, entity:unmanaged, entity:world",
    ),
    (
        "probe-bad-address",
        dict(probes=[{"port": 80, "to": "cidr:example.com"}]),
        "probes: probes[0].to[0]: 'example.com' is not a valid IP address",
    ),
    (
        "probe-bad-ref",
        dict(probes=[{"port": 80, "to": "frontend"}]),
        "probes: probes[0].to[0]: 'frontend' must be namespace/pod, namespace/*, entity:<name> or cidr:<address>",
    ),
    ("probe-port", dict(probes=[{"port": 0}]), "probes: probes[0].port: 0 must be an integer from 1 to 65535"),
    (
        "probe-protocol",
        dict(probes=[{"port": 80, "protocol": "ICMP"}]),
        "probes: probes[0].protocol: 'ICMP' is not one of: TCP, UDP, SCTP",
    ),
    (
        "explain-wildcard",
        dict(explain=[["production/*", "production/backend-0", 80]]),
        "explain: explain[0].from: 'production/*' names a pod that is not in the pods input",
    ),
    (
        "explain-shape",
        dict(explain=["production/frontend-0"]),
        "explain: explain[0]: 'production/frontend-0' must be [from, to], [from, to, port], [from, to, port, protocol] or a "
        "mapping with from, to, port, protocol",
    ),
    (
        "explain-port",
        dict(explain=[["production/frontend-0", "production/backend-0", "http"]]),
        "explain: explain[0].port: 'http' must be an integer from 1 to 65535",
    ),
    (
        "mode",
        dict(policy_enforcement_mode="strict"),
        "netpol: policy_enforcement_mode: 'strict' is not one of: default, always, never",
    ),
]


@pytest.mark.parametrize("case_id, kwargs, message", INPUT_CASES, ids=[case[0] for case in INPUT_CASES])
def test_bad_input(case_id, kwargs, message):
    arguments = dict(namespaces=copy.deepcopy(NAMESPACES), pods=copy.deepcopy(PODS), policies=[])
    arguments.update(kwargs)
    with pytest.raises(InvalidInput) as raised:
        plan_reachability(**arguments)
    assert str(raised.value) == message


def test_errors_carry_field_and_where():
    with pytest.raises(InvalidInput) as raised:
        plan_reachability(NAMESPACES, PODS, [ingress_ports({"port": 100, "endPort": 90})])
    assert raised.value.where == "NetworkPolicy production/p"
    assert raised.value.field == "spec.ingress[0].ports[0].endPort"
    assert raised.value.value == 90


@pytest.mark.parametrize("value", [None, "text", 3, [1, 2]])
def test_non_mapping_manifest(value):
    with pytest.raises(InvalidInput) as raised:
        plan_reachability(NAMESPACES, PODS, [value])
    assert raised.value.field == "policies[0]"
