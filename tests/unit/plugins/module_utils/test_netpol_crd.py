# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Cilium policy validation of module_utils/netpol_model.py against the CRD schemas.

The CRDs (cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy,
openAPIV3Schema) are the reference files in ../shared/reference/cilium-crds.  These tests
check that:

* every field the schema defines is either modelled or refused by name, and the engine
  knows no field the schema lacks;
* manifests the schema accepts (checked with jsonschema) are accepted by the engine, unless
  Cilium itself refuses them (Rule.Sanitize), in which case the engine says why;
* manifests the schema rejects are rejected by the engine as well.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import jsonschema
import pytest
import yaml

from ansible_collections.zerotrust.cilium.plugins.module_utils import netpol_model as model
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability


def _crd_dir():
    """The reference CRDs: $ZEROTRUST_CILIUM_CRDS, else shared/reference/cilium-crds next to
    the checkout (DESIGN: "Reference data in ../shared/reference"), symlinks resolved."""
    if os.environ.get("ZEROTRUST_CILIUM_CRDS"):
        return os.environ["ZEROTRUST_CILIUM_CRDS"]
    here = os.path.dirname(os.path.realpath(__file__))
    while os.path.dirname(here) != here:
        here = os.path.dirname(here)
        candidate = os.path.join(here, "shared", "reference", "cilium-crds")
        if os.path.isdir(candidate):
            return candidate
    raise RuntimeError("Cilium CRD reference files not found; set ZEROTRUST_CILIUM_CRDS to the cilium-crds directory")


CRD_DIR = _crd_dir()


def load_schema(kind):
    filename = {
        "CiliumNetworkPolicy": "ciliumnetworkpolicies.yaml",
        "CiliumClusterwideNetworkPolicy": "ciliumclusterwidenetworkpolicies.yaml",
    }[kind]
    with open(os.path.join(CRD_DIR, filename)) as handle:
        crd = yaml.safe_load(handle)
    (version,) = [item for item in crd["spec"]["versions"] if item["name"] == "v2"]
    return version["schema"]["openAPIV3Schema"]


SCHEMAS = {kind: load_schema(kind) for kind in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")}


def spec_schema(kind="CiliumNetworkPolicy"):
    return SCHEMAS[kind]["properties"]["spec"]


def props(schema):
    return set(schema["properties"])


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_rule_fields_match_schema(kind):
    spec = spec_schema(kind)
    assert props(spec) == set(model.CNP_SPEC_FIELDS) | set(model.CNP_SPEC_UNSUPPORTED)
    # specs[] items carry the same rule fields as spec
    assert props(SCHEMAS[kind]["properties"]["specs"]["items"]) == props(spec)
    directions = {
        "ingress": (model.CNP_INGRESS_FIELDS, model.CNP_INGRESS_UNSUPPORTED, model.CNP_INGRESS_EMPTY_ONLY),
        "ingressDeny": (
            model.CNP_INGRESS_DENY_FIELDS,
            model.CNP_INGRESS_DENY_UNSUPPORTED,
            model.CNP_INGRESS_EMPTY_ONLY,
        ),
        "egress": (model.CNP_EGRESS_FIELDS, model.CNP_EGRESS_UNSUPPORTED, model.CNP_EGRESS_EMPTY_ONLY),
        "egressDeny": (model.CNP_EGRESS_DENY_FIELDS, model.CNP_EGRESS_DENY_UNSUPPORTED, model.CNP_EGRESS_EMPTY_ONLY),
    }
    for key, (fields, unsupported, empty_only) in directions.items():
        items = spec["properties"][key]["items"]
        assert props(items) == set(fields) | set(unsupported) | set(empty_only), key
        for name in empty_only:
            assert items["properties"][name]["maxItems"] == 0
    port_rule = spec["properties"]["ingress"]["items"]["properties"]["toPorts"]["items"]
    assert props(port_rule) == set(model.CNP_PORT_RULE_FIELDS) | set(model.CNP_PORT_RULE_UNSUPPORTED)
    deny_port_rule = spec["properties"]["ingressDeny"]["items"]["properties"]["toPorts"]["items"]
    assert props(deny_port_rule) == {"ports"}
    assert props(port_rule["properties"]["ports"]["items"]) == {"port", "endPort", "protocol"}
    rules = port_rule["properties"]["rules"]
    assert props(rules) == {"http", "dns"}
    assert props(rules["properties"]["http"]["items"]) == set(model.HTTP_RULE_FIELDS)
    cidr_rule = spec["properties"]["egress"]["items"]["properties"]["toCIDRSet"]["items"]
    assert props(cidr_rule) == {"cidr", "except"} | set(model.CNP_CIDR_RULE_UNSUPPORTED)
    selector = spec["properties"]["endpointSelector"]
    assert props(selector) == {"matchLabels", "matchExpressions"}
    assert props(spec["properties"]["enableDefaultDeny"]) == {"ingress", "egress"}


def test_enums_match_schema():
    spec = spec_schema()
    egress = spec["properties"]["egress"]["items"]["properties"]
    assert tuple(egress["toEntities"]["items"]["enum"]) == model.ENTITIES
    ports = egress["toPorts"]["items"]["properties"]["ports"]["items"]["properties"]
    assert tuple(ports["protocol"]["enum"]) == model.CILIUM_PROTOCOLS
    assert (ports["endPort"]["minimum"], ports["endPort"]["maximum"]) == (0, 65535)
    operators = spec["properties"]["endpointSelector"]["properties"]["matchExpressions"]["items"]["properties"][
        "operator"
    ]["enum"]
    assert operators == ["In", "NotIn", "Exists", "DoesNotExist"]


NAMESPACES = {"production": {}, "kube-system": {}}
PODS = [
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
        "ports": [{"port": 53, "protocol": "UDP"}],
    },
]


def cnp(spec, kind="CiliumNetworkPolicy"):
    manifest = {"apiVersion": "cilium.io/v2", "kind": kind, "metadata": {"name": "sample"}, "spec": spec}
    if kind == "CiliumNetworkPolicy":
        manifest["metadata"]["namespace"] = "production"
    return manifest


def schema_accepts(manifest):
    validator = jsonschema.Draft7Validator(SCHEMAS[manifest["kind"]])
    return not list(validator.iter_errors(manifest))


VALID = [
    # the source guide's L7 policy
    cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "backend"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app": "frontend"}}],
                    "toPorts": [
                        {
                            "ports": [{"port": "8080", "protocol": "TCP"}],
                            "rules": {"http": [{"method": "GET", "path": "/api/v1/data"}]},
                        }
                    ],
                }
            ],
        }
    ),
    cnp(
        {
            "endpointSelector": {},
            "egress": [
                {
                    "toEndpoints": [
                        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}
                    ],
                    "toPorts": [
                        {"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}
                    ],
                },
                {
                    "toFQDNs": [{"matchName": "api.example.com"}, {"matchPattern": "*.example.org"}],
                    "toPorts": [{"ports": [{"port": "443"}]}],
                },
                {"toEntities": ["kube-apiserver", "host"]},
                {"toCIDRSet": [{"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}], "toRequires": []},
                {
                    "toCIDR": ["198.51.100.0/24"],
                    "toPorts": [{"ports": [{"port": "8000", "endPort": 8100, "protocol": "TCP"}]}],
                },
            ],
        }
    ),
    cnp(
        {
            "endpointSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["backend"]}]},
            "enableDefaultDeny": {"ingress": False, "egress": False},
            "description": "relaxed",
            "labels": [{"key": "team", "value": "a"}],
            "ingressDeny": [{"fromEntities": ["world"], "toPorts": [{"ports": [{"port": "api"}]}]}],
            "egressDeny": [{"toCIDR": ["192.0.2.0/24"]}],
        }
    ),
    cnp(
        {
            "endpointSelector": {},
            "ingress": [
                {"fromEndpoints": [{}]},
                {"icmps": [{"fields": [{"type": "EchoRequest", "family": "IPv4"}]}]},
                {"fromCIDRSet": [{"cidr": "10.0.0.0/8"}], "fromRequires": []},
                {},
            ],
        },
        kind="CiliumClusterwideNetworkPolicy",
    ),
]


@pytest.mark.parametrize("manifest", VALID)
def test_schema_valid_manifests_are_accepted(manifest):
    assert schema_accepts(manifest)
    plan_reachability(NAMESPACES, PODS, [manifest])


# Manifests the schema itself rejects; the engine must reject them too.
SCHEMA_INVALID = [
    ("integer-port", cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": 8080}]}]}]})),
    ("entity", cnp({"endpointSelector": {}, "egress": [{"toEntities": ["internet"]}]})),
    (
        "protocol",
        cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "protocol": "ICMP"}]}]}]}),
    ),
    (
        "operator",
        cnp({"endpointSelector": {"matchExpressions": [{"key": "a", "operator": "Equals"}]}, "ingress": [{}]}),
    ),
    (
        "end-port",
        cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80", "endPort": 70000}]}]}]}),
    ),
    ("label-value", cnp({"endpointSelector": {"matchLabels": {"app": "a b"}}, "ingress": [{}]})),
    ("no-rules", cnp({"endpointSelector": {}})),
    ("from-requires", cnp({"endpointSelector": {}, "ingress": [{"fromRequires": [{}]}]})),
    ("fqdn-pattern", cnp({"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "bad name"}]}]})),
    ("default-deny-type", cnp({"endpointSelector": {}, "enableDefaultDeny": {"ingress": "yes"}, "ingress": [{}]})),
]


@pytest.mark.parametrize("case_id, manifest", SCHEMA_INVALID, ids=[case[0] for case in SCHEMA_INVALID])
def test_schema_invalid_manifests_are_rejected(case_id, manifest):
    assert not schema_accepts(manifest)
    with pytest.raises(InvalidInput):
        plan_reachability(NAMESPACES, PODS, [manifest])


# Manifests the schema accepts but Cilium refuses (Rule.Sanitize) or the API
# server prunes: the engine refuses them with the reason.
CILIUM_INVALID = [
    (
        "port-overflow",
        cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "99999"}]}]}]}),
        "must be a port number from 0 to 65535",
    ),
    (
        "combined-peers",
        cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}], "fromEntities": ["world"]}]}),
        "allows only one kind of peer per rule",
    ),
    (
        "dns-ingress",
        cnp(
            {
                "endpointSelector": {},
                "ingress": [{"toPorts": [{"ports": [{"port": "53"}], "rules": {"dns": [{"matchName": "a"}]}}]}],
            }
        ),
        "not allowed on ingress",
    ),
    (
        "http-any-protocol",
        cnp({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{}]}}]}]}),
        "needs protocol TCP",
    ),
    ("all-empty", cnp({"endpointSelector": {}, "ingress": []}), "Cilium refuses such a rule"),
    (
        "pruned-field",
        cnp({"endpointSelector": {}, "ingress": [{"fromEndpoint": [{}]}]}),
        "the API server would drop it silently",
    ),
]


@pytest.mark.parametrize("case_id, manifest, message", CILIUM_INVALID, ids=[case[0] for case in CILIUM_INVALID])
def test_cilium_invalid_manifests_are_rejected(case_id, manifest, message):
    if case_id != "pruned-field":
        assert schema_accepts(manifest)
    with pytest.raises(InvalidInput) as raised:
        plan_reachability(NAMESPACES, PODS, [manifest])
    assert message in str(raised.value)


def test_log_field_is_accepted():
    # spec.log has the pattern ^\PC*$ (no control characters), which Python's re cannot
    # compile, so it is left out of the jsonschema samples above.
    manifest = cnp({"endpointSelector": {}, "ingress": [{}], "log": {"value": "audit-x"}})
    plan_reachability(NAMESPACES, PODS, [manifest])
