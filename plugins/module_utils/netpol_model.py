# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Internal model of namespaces, pods, probes and network policies, with validation.

Pure Python: nothing here imports ``ansible``.  Every manifest is turned into
:class:`PolicyUnit` objects (one per Cilium rule, one per NetworkPolicy) whose
:class:`Rule` entries carry peers, ports and L7 data in a form the engine in
``netpol_engine`` evaluates.  Bad input raises ``InvalidInput`` naming the policy
(``where``) and the field path (``spec.ingress[0].ports[1].endPort``).

The semantics are documented in ``docs/policy-engine.md``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import (
    InvalidInput,
    InvalidInputs,
)

# --------------------------------------------------------------------------- constants

PROTOCOLS = ("TCP", "UDP", "SCTP")
"""Transport protocols a probe can use (the ones NetworkPolicy knows)."""

CILIUM_PROTOCOLS = ("TCP", "UDP", "SCTP", "VRRP", "IGMP", "GRE", "IPIP", "IPV6", "ESP", "AH", "ANY")
"""``toPorts[].ports[].protocol`` values the CiliumNetworkPolicy CRD accepts."""

ENTITIES = (
    "all",
    "world",
    "cluster",
    "host",
    "init",
    "ingress",
    "unmanaged",
    "remote-node",
    "health",
    "none",
    "kube-apiserver",
)
"""``fromEntities``/``toEntities`` values the CRD accepts."""

PROBE_ENTITIES = ("host", "remote-node", "kube-apiserver", "health", "ingress", "init", "unmanaged", "world")
"""Entities a probe may name as ``entity:<name>`` (a pseudo-endpoint each)."""

ENFORCEMENT_MODES = ("default", "always", "never")

LABEL_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_NS_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
LABEL_SERVICE_ACCOUNT = "io.cilium.k8s.policy.serviceaccount"
LABEL_CLUSTER = "io.cilium.k8s.policy.cluster"
LABEL_NS_NAME = "kubernetes.io/metadata.name"
RESERVED_POD_LABEL_PREFIXES = ("io.kubernetes.pod.namespace", "io.cilium.k8s.")

SOURCE_ANY = "any"
SOURCE_K8S = "k8s"
SOURCE_RESERVED = "reserved"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_FQDN_NAME = re.compile(r"^([-a-zA-Z0-9_]+[.]?)+$")
_FQDN_PATTERN = re.compile(r"^([-a-zA-Z0-9_*]+[.]?)+$")
_ICMP_TYPE_NAMES = frozenset(
    (
        "EchoReply",
        "DestinationUnreachable",
        "Redirect",
        "Echo",
        "EchoRequest",
        "RouterAdvertisement",
        "RouterSelection",
        "TimeExceeded",
        "ParameterProblem",
        "Timestamp",
        "TimestampReply",
        "Photuris",
        "ExtendedEchoRequest",
        "ExtendedEcho Reply",
        "PacketTooBig",
        "MulticastListenerQuery",
        "MulticastListenerReport",
        "MulticastListenerDone",
        "RouterSolicitation",
        "NeighborSolicitation",
        "NeighborAdvertisement",
        "RedirectMessage",
        "RouterRenumbering",
        "ICMPNodeInformationQuery",
        "ICMPNodeInformationResponse",
        "InverseNeighborDiscoverySolicitation",
        "InverseNeighborDiscoveryAdvertisement",
        "HomeAgentAddressDiscoveryRequest",
        "HomeAgentAddressDiscoveryReply",
        "MobilePrefixSolicitation",
        "MobilePrefixAdvertisement",
        "DuplicateAddressRequestCodeSuffix",
        "DuplicateAddressConfirmationCodeSuffix",
        "ExtendedEchoReply",
    )
)

KIND_NP = "NetworkPolicy"
KIND_CNP = "CiliumNetworkPolicy"
KIND_CCNP = "CiliumClusterwideNetworkPolicy"
POLICY_KINDS = {
    ("networking.k8s.io/v1", KIND_NP),
    ("cilium.io/v2", KIND_CNP),
    ("cilium.io/v2", KIND_CCNP),
}

# Fields of the Cilium CRDs (openAPIV3Schema, cilium.io/v2) this engine models, and the
# ones it refuses by name.  The two sets together are exactly the schema's properties;
# a unit test keeps them in step with the CRD files.
CNP_SPEC_FIELDS = frozenset(
    (
        "description",
        "egress",
        "egressDeny",
        "enableDefaultDeny",
        "endpointSelector",
        "ingress",
        "ingressDeny",
        "labels",
        "log",
    )
)
CNP_SPEC_UNSUPPORTED = {
    "nodeSelector": "host policies (nodeSelector) are not modelled; only pods are policy subjects",
}
CNP_INGRESS_FIELDS = frozenset(("fromCIDR", "fromCIDRSet", "fromEndpoints", "fromEntities", "icmps", "toPorts"))
CNP_INGRESS_UNSUPPORTED = {
    "authentication": "mutual authentication is not modelled",
    "fromGroups": "cloud provider groups are not modelled",
    "fromNodes": "node selectors need node labels, which are not an input",
}
CNP_INGRESS_DENY_FIELDS = frozenset(("fromCIDR", "fromCIDRSet", "fromEndpoints", "fromEntities", "icmps", "toPorts"))
CNP_INGRESS_DENY_UNSUPPORTED = {
    "fromGroups": "cloud provider groups are not modelled",
    "fromNodes": "node selectors need node labels, which are not an input",
}
CNP_EGRESS_FIELDS = frozenset(("icmps", "toCIDR", "toCIDRSet", "toEndpoints", "toEntities", "toFQDNs", "toPorts"))
CNP_EGRESS_UNSUPPORTED = {
    "authentication": "mutual authentication is not modelled",
    "toGroups": "cloud provider groups are not modelled",
    "toNodes": "node selectors need node labels, which are not an input",
    "toServices": "Services are not an input; select the backend pods with toEndpoints",
}
CNP_EGRESS_DENY_FIELDS = frozenset(("icmps", "toCIDR", "toCIDRSet", "toEndpoints", "toEntities", "toPorts"))
CNP_EGRESS_DENY_UNSUPPORTED = {
    "toGroups": "cloud provider groups are not modelled",
    "toNodes": "node selectors need node labels, which are not an input",
    "toServices": "Services are not an input; select the backend pods with toEndpoints",
}
# fromRequires/toRequires are in the schema with maxItems 0 (removed in Cilium 1.19):
# an empty list is accepted and means nothing.
CNP_INGRESS_EMPTY_ONLY = frozenset(("fromRequires",))
CNP_EGRESS_EMPTY_ONLY = frozenset(("toRequires",))
CNP_PORT_RULE_FIELDS = frozenset(("ports", "rules"))
CNP_PORT_RULE_UNSUPPORTED = {
    "listener": "custom Envoy listeners are not modelled",
    "originatingTLS": "TLS origination is not modelled",
    "serverNames": "TLS SNI matching is not modelled",
    "terminatingTLS": "TLS termination is not modelled",
}
CNP_CIDR_RULE_UNSUPPORTED = {
    "cidrGroupRef": "CiliumCIDRGroup objects are not an input",
    "cidrGroupSelector": "CiliumCIDRGroup objects are not an input",
}
HTTP_RULE_FIELDS = frozenset(("headerMatches", "headers", "host", "method", "path"))


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``source:key operator values``.

    ``source`` is ``any`` (matches a label of any source), ``k8s`` or ``reserved``.
    """

    source: str
    key: str
    operator: str
    values: Tuple[str, ...] = ()

    def describe(self):
        key = self.key if self.source == SOURCE_ANY else "%s:%s" % (self.source, self.key)
        if self.operator in ("Exists", "DoesNotExist"):
            return "%s %s" % (key, self.operator)
        if self.operator == "In" and len(self.values) == 1:
            return "%s=%s" % (key, self.values[0])
        return "%s %s (%s)" % (key, self.operator, ", ".join(self.values))


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements; no requirement selects everything."""

    requirements: Tuple[Requirement, ...] = ()

    def matches(self, labels):
        """Match against an endpoint label map ``key -> (source, value)``."""
        for req in self.requirements:
            found = labels.get(req.key)
            if found is not None and req.source != SOURCE_ANY and found[0] != req.source:
                found = None
            op = req.operator
            if op == "In":
                if found is None or found[1] not in req.values:
                    return False
            elif op == "NotIn":
                if found is not None and found[1] in req.values:
                    return False
            elif op == "Exists":
                if found is None:
                    return False
            elif found is not None:  # DoesNotExist
                return False
        return True

    def describe(self):
        if not self.requirements:
            return "everything"
        return ", ".join(req.describe() for req in self.requirements)


@dataclass(frozen=True)
class PortSpec:
    """A port match: ``protocol`` (``ANY`` for TCP/UDP/SCTP), then one of:
    ``name`` (named port), ``port``/``end_port`` (range, inclusive), or neither (all ports).
    ``protocol`` may also be a non-transport protocol (GRE, ESP...) or ``ICMP``, which no
    probe uses."""

    protocol: str
    port: Optional[int] = None
    end_port: Optional[int] = None
    name: Optional[str] = None

    def matches_number(self, probe_port, probe_protocol):
        if not self._protocol_matches(probe_protocol) or self.name is not None:
            return False
        if self.port is None:
            return True
        if self.end_port is not None:
            return self.port <= probe_port <= self.end_port
        return self.port == probe_port

    def matches_name(self, probe_protocol, served_names):
        return self.name is not None and self._protocol_matches(probe_protocol) and self.name in served_names

    def _protocol_matches(self, probe_protocol):
        if self.protocol == "ANY":
            return probe_protocol in PROTOCOLS
        return self.protocol == probe_protocol

    def describe(self):
        if self.protocol == "ICMP":
            return "ICMP"
        if self.name is not None:
            where = "port named %s" % self.name
        elif self.port is None:
            where = "all ports"
        elif self.end_port is not None:
            where = "%d-%d" % (self.port, self.end_port)
        else:
            where = str(self.port)
        return "%s/%s" % (where, self.protocol)


@dataclass(frozen=True)
class Peer:
    """One peer term of a rule.

    ``kind`` is one of: ``all`` (everything, pods and non-pods), ``selector``, ``entity``,
    ``cidr`` (``network`` minus ``excepts``, external addresses only) and ``fqdn``
    (an external address learnt from DNS: only known at run time).
    """

    kind: str
    selector: Optional[Selector] = None
    entity: Optional[str] = None
    network: Optional[object] = None
    excepts: Tuple[object, ...] = ()
    fqdn: Optional[str] = None

    def describe(self):
        if self.kind == "all":
            return "any peer"
        if self.kind == "selector":
            return "endpoints with %s" % self.selector.describe()
        if self.kind == "entity":
            return "entity %s" % self.entity
        if self.kind == "cidr":
            text = "CIDR %s" % self.network
            if self.excepts:
                text += " except %s" % ", ".join(str(net) for net in self.excepts)
            return text
        return "FQDN %s" % self.fqdn


@dataclass(frozen=True)
class Rule:
    """One allow or deny rule of a policy unit, for one direction.

    ``peers`` ``None`` means "any peer"; an empty tuple means "no peer" (Cilium's explicit
    empty selector list).  ``ports`` ``None`` means every port and protocol; an empty tuple
    matches no TCP/UDP/SCTP probe (an ICMP-only rule or a ``toPorts`` entry without ports).
    ``l7_kind`` (``http`` or ``dns``) and ``l7_rules`` are the L7 rules attached to these
    ports; ``fqdn`` lists the ``toFQDNs`` selectors of the rule.  A Cilium rule with several
    ``toPorts`` entries becomes one :class:`Rule` per entry (``path`` says which).
    """

    direction: str
    verdict: str
    path: str
    peers: Optional[Tuple[Peer, ...]]
    ports: Optional[Tuple[PortSpec, ...]]
    l7_kind: Optional[str] = None
    l7_rules: Tuple[dict, ...] = ()
    fqdn: Tuple[str, ...] = ()

    @property
    def restricted(self):
        return self.l7_kind is not None or bool(self.fqdn)

    def describe_l7(self):
        """The L7 restriction as a JSON-friendly dict (empty when there is none)."""
        result = {}
        if self.l7_kind is not None:
            result[self.l7_kind] = [dict(item) for item in self.l7_rules]
        if self.fqdn:
            result["toFQDNs"] = list(self.fqdn)
        return result


@dataclass
class PolicyUnit:
    """What one Cilium rule (or one NetworkPolicy) contributes."""

    display: str
    kind: str
    namespace: Optional[str]
    name: str
    path: str
    subject: Selector
    default_deny_ingress: bool
    default_deny_egress: bool
    rules: List[Rule] = field(default_factory=list)


@dataclass(frozen=True)
class ServedPort:
    name: Optional[str]
    port: int
    protocol: str


@dataclass
class Pod:
    namespace: str
    name: str
    labels: Dict[str, str]
    ip: Optional[object]
    ports: Tuple[ServedPort, ...]
    service_account: str

    @property
    def ref(self):
        return "%s/%s" % (self.namespace, self.name)


@dataclass
class Model:
    namespaces: Dict[str, Dict[str, str]]
    pods: List[Pod]
    units: List[PolicyUnit]
    policy_counts: Dict[str, int]
    warnings: List[str]
    cluster_name: str


@dataclass(frozen=True)
class Probe:
    port: int
    protocol: str
    sources: Optional[Tuple[str, ...]]
    destinations: Optional[Tuple[str, ...]]
    index: int


# --------------------------------------------------------------------------- field checks


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    if _is_int(value):
        return "integer"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _expect_mapping(value, path, where, allow_none=False):
    if value is None and allow_none:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(path, value, "must be a mapping, got %s" % _type_name(value), where=where)
    return value


def _expect_list(value, path, where, allow_none=True):
    if value is None and allow_none:
        return None
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(path, value, "must be a list, got %s" % _type_name(value), where=where)
    return list(value)


def _expect_string(value, path, where):
    if not isinstance(value, str):
        raise InvalidInput(path, value, "must be a string, got %s" % _type_name(value), where=where)
    return value


def _check_fields(mapping, path, where, known, unsupported=None, empty_only=frozenset()):
    """Refuse fields the schema does not have and fields that are not modelled."""
    unsupported = unsupported or {}
    for key in mapping:
        if key in known:
            continue
        sub = "%s.%s" % (path, key) if path else key
        if key in empty_only:
            if mapping[key] in (None, [], ()):
                continue
            raise InvalidInput(
                sub, mapping[key], "must be empty: the field is deprecated and was removed in Cilium 1.19", where=where
            )
        if key in unsupported:
            raise InvalidInput(
                sub, mapping[key], "is not modelled by the policy engine: %s" % unsupported[key], where=where
            )
        accepted = sorted(set(known) | set(unsupported) | set(empty_only))
        raise InvalidInput(
            sub,
            mapping[key],
            "is not a known field here (the API server would drop it silently); known fields: %s" % ", ".join(accepted),
            where=where,
        )


def is_svc_name(text):
    """IANA service name as Kubernetes (IsValidPortName) and Cilium define it."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= 15
        and bool(_SVC_NAME.match(text))
        and "--" not in text
        and any("a" <= char <= "z" for char in text)
    )


def validate_label_key(key, path, where):
    """Kubernetes qualified name: optional DNS subdomain prefix, then a name of <= 63 chars."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(path, key, "must be a non-empty label key", where=where)
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix):
            raise InvalidInput(
                path,
                key,
                "has an invalid prefix: a DNS subdomain (lowercase alphanumerics, '-' and '.') of at most 253 "
                "characters is expected",
                where=where,
            )
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise InvalidInput(
            path,
            key,
            "is not a valid label name: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending "
            "with an alphanumeric",
            where=where,
        )


def validate_label_value(value, path, where):
    if not isinstance(value, str):
        raise InvalidInput(path, value, "must be a string label value, got %s" % _type_name(value), where=where)
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise InvalidInput(
            path,
            value,
            "is not a valid label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending "
            "with an alphanumeric",
            where=where,
        )


def _parse_labels(labels, path, where):
    labels = _expect_mapping(labels, path, where, allow_none=True)
    result = {}
    for key, value in labels.items():
        validate_label_key(key, "%s[%r]" % (path, key), where)
        validate_label_value(value, "%s[%r]" % (path, key), where)
        result[key] = value
    return result


def _parse_network(text, path, where):
    if not isinstance(text, str) or "/" not in text:
        raise InvalidInput(path, text, "must be a CIDR in prefix notation such as 10.0.0.0/8", where=where)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidInput(path, text, "is not a valid CIDR: %s" % exc, where=where)


def parse_ip(text, path, where):
    if not isinstance(text, str):
        raise InvalidInput(path, text, "must be an IP address string", where=where)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(path, text, "is not a valid IP address", where=where)


# --------------------------------------------------------------------------- selectors

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _split_source(key):
    """Cilium selector keys may carry a source: ``k8s:app``, ``reserved:host``, ``any:app``."""
    source, colon, name = key.partition(":")
    if colon:
        return source, name
    return SOURCE_ANY, key


def parse_k8s_selector(value, path, where, key_prefix="", extra=()):
    """Parse a Kubernetes LabelSelector (NetworkPolicy podSelector/namespaceSelector).

    Keys and values are validated as Kubernetes validates them; the requirements use the
    ``k8s`` source and get ``key_prefix`` prepended (used for namespace labels).
    """
    value = _expect_mapping(value, path, where, allow_none=True)
    _check_fields(value, path, where, ("matchLabels", "matchExpressions"))
    requirements = list(extra)
    match_labels = _expect_mapping(value.get("matchLabels"), path + ".matchLabels", where, allow_none=True)
    for key in sorted(match_labels):
        sub = "%s.matchLabels[%r]" % (path, key)
        validate_label_key(key, sub, where)
        validate_label_value(match_labels[key], sub, where)
        requirements.append(Requirement(SOURCE_K8S, key_prefix + key, "In", (match_labels[key],)))
    expressions = _expect_list(value.get("matchExpressions"), path + ".matchExpressions", where) or []
    for index, expression in enumerate(expressions):
        sub = "%s.matchExpressions[%d]" % (path, index)
        expression = _expect_mapping(expression, sub, where)
        _check_fields(expression, sub, where, ("key", "operator", "values"))
        key = expression.get("key")
        validate_label_key(key, sub + ".key", where)
        operator, values = _parse_operator(expression, sub, where, validate_values=True)
        requirements.append(Requirement(SOURCE_K8S, key_prefix + key, operator, values))
    return Selector(tuple(requirements))


def _parse_operator(expression, path, where, validate_values):
    operator = expression.get("operator")
    if operator not in _OPERATORS:
        raise InvalidInput(path + ".operator", operator, "is not one of: %s" % ", ".join(_OPERATORS), where=where)
    values = _expect_list(expression.get("values"), path + ".values", where) or []
    for position, item in enumerate(values):
        if validate_values:
            validate_label_value(item, "%s.values[%d]" % (path, position), where)
        else:
            _expect_string(item, "%s.values[%d]" % (path, position), where)
    if operator in ("In", "NotIn") and not values:
        raise InvalidInput(path + ".values", values, "must not be empty for operator %s" % operator, where=where)
    if operator in ("Exists", "DoesNotExist") and values:
        raise InvalidInput(path + ".values", values, "must be empty for operator %s" % operator, where=where)
    return operator, tuple(sorted(set(values)))


def parse_cilium_selector(value, path, where):
    """Parse a Cilium EndpointSelector; returns a list of raw requirements."""
    value = _expect_mapping(value, path, where, allow_none=True)
    _check_fields(value, path, where, ("matchLabels", "matchExpressions"))
    requirements = []
    match_labels = _expect_mapping(value.get("matchLabels"), path + ".matchLabels", where, allow_none=True)
    for key in sorted(match_labels):
        sub = "%s.matchLabels[%r]" % (path, key)
        if not isinstance(key, str) or not key:
            raise InvalidInput(sub, key, "must be a non-empty string key", where=where)
        label_value = match_labels[key]
        if not isinstance(label_value, str):
            raise InvalidInput(sub, label_value, "must be a string, got %s" % _type_name(label_value), where=where)
        if len(label_value) > 63 or not _LABEL_VALUE.match(label_value):
            raise InvalidInput(
                sub,
                label_value,
                "does not match the CRD pattern for label values (at most 63 characters, alphanumerics, '-', '_' or "
                "'.', starting and ending with an alphanumeric)",
                where=where,
            )
        source, name = _split_source(key)
        requirements.append(Requirement(source, name, "In", (label_value,)))
    expressions = _expect_list(value.get("matchExpressions"), path + ".matchExpressions", where) or []
    for index, expression in enumerate(expressions):
        sub = "%s.matchExpressions[%d]" % (path, index)
        expression = _expect_mapping(expression, sub, where)
        _check_fields(expression, sub, where, ("key", "operator", "values"))
        key = expression.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidInput(sub + ".key", key, "must be a non-empty string", where=where)
        operator, values = _parse_operator(expression, sub, where, validate_values=False)
        source, name = _split_source(key)
        requirements.append(Requirement(source, name, operator, values))
    return requirements


def _has_key(requirements, name, sources=(SOURCE_K8S, SOURCE_ANY)):
    return any(req.key == name and req.source in sources for req in requirements)


def _has_key_prefix(requirements, prefix, sources=(SOURCE_K8S, SOURCE_ANY)):
    return any(req.key.startswith(prefix) and req.source in sources for req in requirements)


def cilium_peer_selector(requirements, namespace):
    """Apply Cilium's namespace scoping to a fromEndpoints/toEndpoints selector.

    Mirrors ``getEndpointSelector`` in cilium ``pkg/k8s/apis/cilium.io/utils``: selectors
    naming a ``reserved:`` label are used as written; otherwise, without a namespace key,
    a CiliumNetworkPolicy restricts the peer to its own namespace (unless the selector uses
    ``io.cilium.k8s.namespace.labels.*``) and a clusterwide policy to pods of any namespace.
    """
    if any(req.source == SOURCE_RESERVED for req in requirements):
        return Selector(tuple(requirements))
    if _has_key(requirements, LABEL_NAMESPACE):
        return Selector(tuple(requirements))
    if namespace is None:
        return Selector(tuple(requirements) + (Requirement(SOURCE_K8S, LABEL_NAMESPACE, "Exists"),))
    if _has_key_prefix(requirements, LABEL_NS_LABELS_PREFIX):
        return Selector(tuple(requirements))
    return Selector(tuple(requirements) + (Requirement(SOURCE_K8S, LABEL_NAMESPACE, "In", (namespace,)),))


# --------------------------------------------------------------------------- inputs


def parse_namespaces(namespaces):
    """``name -> labels``; ``kubernetes.io/metadata.name`` is added as the API server does."""
    where = "namespaces"
    if namespaces is None:
        namespaces = {}
    namespaces = _expect_mapping(namespaces, "namespaces", where)
    result = {}
    for name in sorted(namespaces):
        if not isinstance(name, str) or len(name) > 63 or not _DNS1123_LABEL.match(name):
            raise InvalidInput("namespaces", name, "is not a valid namespace name (DNS-1123 label)", where=where)
        labels = _parse_labels(namespaces[name], "namespaces[%r]" % name, where)
        if labels.get(LABEL_NS_NAME, name) != name:
            raise InvalidInput(
                "namespaces[%r][%r]" % (name, LABEL_NS_NAME),
                labels[LABEL_NS_NAME],
                "must equal the namespace name (the API server sets it)",
                where=where,
            )
        labels[LABEL_NS_NAME] = name
        result[name] = labels
    return result


def parse_pods(pods, namespaces):
    where = "pods"
    pods = _expect_list(pods, "pods", where, allow_none=True) or []
    result = []
    seen = set()
    addresses = {}
    for index, item in enumerate(pods):
        path = "pods[%d]" % index
        item = _expect_mapping(item, path, where)
        _check_fields(item, path, where, ("namespace", "name", "labels", "ip", "ports", "service_account"))
        namespace = item.get("namespace")
        if namespace not in namespaces:
            raise InvalidInput(
                path + ".namespace",
                namespace,
                "is not one of the namespaces given (%s)" % ", ".join(sorted(namespaces)),
                where=where,
            )
        name = item.get("name")
        if not isinstance(name, str) or len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
            raise InvalidInput(path + ".name", name, "is not a valid pod name (DNS-1123 subdomain)", where=where)
        if (namespace, name) in seen:
            raise InvalidInput(path + ".name", name, "is given twice in namespace %s" % namespace, where=where)
        seen.add((namespace, name))
        labels = _parse_labels(item.get("labels"), path + ".labels", where)
        for key in labels:
            if key.startswith(RESERVED_POD_LABEL_PREFIXES):
                raise InvalidInput(
                    "%s.labels[%r]" % (path, key),
                    labels[key],
                    "uses a key Cilium reserves for its own identity labels",
                    where=where,
                )
        address = None
        if item.get("ip") is not None:
            address = parse_ip(item.get("ip"), path + ".ip", where)
            if address in addresses:
                raise InvalidInput(
                    path + ".ip", item.get("ip"), "is also the IP of %s" % addresses[address], where=where
                )
            addresses[address] = "%s/%s" % (namespace, name)
        account = item.get("service_account", "default")
        if not isinstance(account, str) or len(account) > 253 or not _DNS1123_SUBDOMAIN.match(account):
            raise InvalidInput(path + ".service_account", account, "is not a valid service account name", where=where)
        served = []
        names = set()
        for port_index, port in enumerate(_expect_list(item.get("ports"), path + ".ports", where) or []):
            sub = "%s.ports[%d]" % (path, port_index)
            port = _expect_mapping(port, sub, where)
            _check_fields(port, sub, where, ("name", "port", "protocol"))
            number = port.get("port")
            if not _is_int(number) or not 1 <= number <= 65535:
                raise InvalidInput(sub + ".port", number, "must be an integer from 1 to 65535", where=where)
            protocol = port.get("protocol", "TCP")
            if protocol not in PROTOCOLS:
                raise InvalidInput(sub + ".protocol", protocol, "is not one of: %s" % ", ".join(PROTOCOLS), where=where)
            port_name = port.get("name")
            if port_name is not None:
                if not is_svc_name(port_name):
                    raise InvalidInput(
                        sub + ".name",
                        port_name,
                        "is not a valid port name (IANA service name: at most 15 lowercase alphanumerics or '-', "
                        "with a letter)",
                        where=where,
                    )
                if port_name in names:
                    raise InvalidInput(sub + ".name", port_name, "is used twice in this pod", where=where)
                names.add(port_name)
            served.append(ServedPort(port_name, number, protocol))
        result.append(Pod(namespace, name, labels, address, tuple(served), account))
    return result


def parse_probes(probes, pods):
    """Probes to evaluate; default: every (port, protocol) some pod serves."""
    where = "probes"
    if probes is None:
        served = sorted(
            {(port.protocol, port.port) for pod in pods for port in pod.ports},
            key=lambda item: (PROTOCOLS.index(item[0]), item[1]),
        )
        return [Probe(port, protocol, None, None, index) for index, (protocol, port) in enumerate(served)]
    probes = _expect_list(probes, "probes", where, allow_none=False)
    result = []
    for index, item in enumerate(probes):
        path = "probes[%d]" % index
        item = _expect_mapping(item, path, where)
        _check_fields(item, path, where, ("port", "protocol", "from", "to"))
        port = item.get("port")
        if not _is_int(port) or not 1 <= port <= 65535:
            raise InvalidInput(path + ".port", port, "must be an integer from 1 to 65535", where=where)
        protocol = item.get("protocol") or "TCP"
        if not isinstance(protocol, str) or protocol.upper() not in PROTOCOLS:
            raise InvalidInput(path + ".protocol", protocol, "is not one of: %s" % ", ".join(PROTOCOLS), where=where)
        result.append(
            Probe(
                port,
                protocol.upper(),
                _endpoint_refs(item.get("from"), path + ".from", where),
                _endpoint_refs(item.get("to"), path + ".to", where),
                index,
            )
        )
    return result


def _endpoint_refs(value, path, where):
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    value = _expect_list(value, path, where)
    if not value:
        raise InvalidInput(path, value, "must name at least one endpoint when given", where=where)
    for position, item in enumerate(value):
        _expect_string(item, "%s[%d]" % (path, position), where)
    return tuple(value)


# --------------------------------------------------------------------------- policies


def parse_policies(policies, namespaces):
    """Parse every manifest; report the problems of all policies at once."""
    policies = _expect_list(policies, "policies", "policies", allow_none=True) or []
    units = []
    counts = {KIND_NP: 0, KIND_CNP: 0, KIND_CCNP: 0}
    warnings = []
    problems = []
    seen = {}
    for index, manifest in enumerate(policies):
        try:
            kind, display, parsed, notes = _parse_policy(manifest, index, namespaces)
        except InvalidInput as exc:
            problems.append(exc)
            continue
        if display in seen:
            problems.append(
                InvalidInput(
                    "policies[%d].metadata.name" % index,
                    display,
                    "is defined twice (also policies[%d])" % seen[display],
                    where=display,
                )
            )
            continue
        seen[display] = index
        counts[kind] += 1
        units.extend(parsed)
        warnings.extend(notes)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidInputs(problems, where="policies")
    return units, counts, warnings


def _parse_policy(manifest, index, namespaces):
    path = "policies[%d]" % index
    manifest = _expect_mapping(manifest, path, path)
    api_version = manifest.get("apiVersion")
    kind = manifest.get("kind")
    if (api_version, kind) not in POLICY_KINDS:
        raise InvalidInput(
            path + ".kind",
            "%s %s" % (api_version, kind),
            "is not one of: networking.k8s.io/v1 NetworkPolicy, cilium.io/v2 CiliumNetworkPolicy, cilium.io/v2 "
            "CiliumClusterwideNetworkPolicy",
            where=path,
        )
    metadata = _expect_mapping(manifest.get("metadata"), path + ".metadata", "%s %s" % (kind, path))
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        raise InvalidInput(
            "metadata.name", name, "is not a valid object name (DNS-1123 subdomain)", where="%s %s" % (kind, path)
        )
    namespace = metadata.get("namespace")
    if kind == KIND_CCNP:
        if namespace is not None:
            raise InvalidInput(
                "metadata.namespace",
                namespace,
                "must not be set: a CiliumClusterwideNetworkPolicy is cluster-scoped",
                where="%s %s" % (kind, name),
            )
        display = "%s %s" % (kind, name)
    else:
        if namespace is None:
            raise InvalidInput(
                "metadata.namespace",
                namespace,
                "is required so the policy's scope is explicit",
                where="%s %s" % (kind, name),
            )
        if namespace not in namespaces:
            raise InvalidInput(
                "metadata.namespace",
                namespace,
                "is not one of the namespaces given (%s)" % ", ".join(sorted(namespaces)),
                where="%s %s/%s" % (kind, namespace, name),
            )
        display = "%s %s/%s" % (kind, namespace, name)
    if kind == KIND_NP:
        _check_fields(manifest, "", display, ("apiVersion", "kind", "metadata", "spec", "status"))
        unit, notes = _parse_network_policy(manifest, display, namespace, name)
        return kind, display, [unit], notes
    _check_fields(manifest, "", display, ("apiVersion", "kind", "metadata", "spec", "specs", "status"))
    sections = []
    if manifest.get("spec") is not None:
        sections.append(("spec", manifest["spec"]))
    specs = _expect_list(manifest.get("specs"), "specs", display)
    for position, spec in enumerate(specs or []):
        sections.append(("specs[%d]" % position, spec))
    if not sections:
        raise InvalidInput(
            "spec", None, "is required (or specs): a Cilium policy without rules is rejected", where=display
        )
    units = []
    notes = []
    for section_path, spec in sections:
        unit, unit_notes = _parse_cilium_rule(spec, section_path, display, kind, namespace, name)
        units.append(unit)
        notes.extend(unit_notes)
    return kind, display, units, notes


# ----------------------------------------------------------------- NetworkPolicy


def _parse_network_policy(manifest, display, namespace, name):
    spec = _expect_mapping(manifest.get("spec"), "spec", display)
    _check_fields(spec, "spec", display, ("podSelector", "policyTypes", "ingress", "egress"))
    if "podSelector" not in spec:
        raise InvalidInput(
            "spec.podSelector", None, "is required ({} selects every pod of the namespace)", where=display
        )
    subject = parse_k8s_selector(
        spec.get("podSelector"),
        "spec.podSelector",
        display,
        extra=(Requirement(SOURCE_K8S, LABEL_NAMESPACE, "In", (namespace,)),),
    )
    ingress = _expect_list(spec.get("ingress"), "spec.ingress", display)
    egress = _expect_list(spec.get("egress"), "spec.egress", display)
    types = _expect_list(spec.get("policyTypes"), "spec.policyTypes", display)
    if types:
        for position, item in enumerate(types):
            if item not in ("Ingress", "Egress"):
                raise InvalidInput(
                    "spec.policyTypes[%d]" % position, item, "is not one of: Ingress, Egress", where=display
                )
    else:
        types = ["Ingress"] + (["Egress"] if egress else [])
    notes = []
    unit = PolicyUnit(display, KIND_NP, namespace, name, "spec", subject, "Ingress" in types, "Egress" in types)
    for direction, rules, peer_key in (("ingress", ingress, "from"), ("egress", egress, "to")):
        if not rules:
            continue
        if direction.capitalize() not in types:
            notes.append(
                "%s: spec.%s has rules but spec.policyTypes does not list %s; Kubernetes ignores them"
                % (display, direction, direction.capitalize())
            )
            continue
        for position, rule in enumerate(rules):
            path = "spec.%s[%d]" % (direction, position)
            rule = _expect_mapping(rule, path, display, allow_none=True)
            _check_fields(rule, path, display, (peer_key, "ports"))
            peers = _parse_np_peers(rule.get(peer_key), "%s.%s" % (path, peer_key), display, namespace)
            ports = _parse_np_ports(rule.get("ports"), path + ".ports", display)
            unit.rules.append(Rule(direction, "allow", path, peers, ports))
    return unit, notes


def _parse_np_peers(peers, path, where, namespace):
    peers = _expect_list(peers, path, where)
    if not peers:
        return None
    result = []
    for position, peer in enumerate(peers):
        sub = "%s[%d]" % (path, position)
        peer = _expect_mapping(peer, sub, where)
        _check_fields(peer, sub, where, ("podSelector", "namespaceSelector", "ipBlock"))
        if not peer:
            raise InvalidInput(sub, peer, "must set podSelector, namespaceSelector or ipBlock", where=where)
        if "ipBlock" in peer:
            if "podSelector" in peer or "namespaceSelector" in peer:
                raise InvalidInput(
                    sub + ".ipBlock",
                    peer["ipBlock"],
                    "cannot be combined with podSelector or namespaceSelector in one peer",
                    where=where,
                )
            result.append(_parse_ip_block(peer["ipBlock"], sub + ".ipBlock", where))
            continue
        # NetworkPolicy peers select pods only: never host, world or other entities.
        extra = [Requirement(SOURCE_K8S, LABEL_NAMESPACE, "Exists")]
        if "namespaceSelector" in peer:
            namespace_selector = parse_k8s_selector(
                peer["namespaceSelector"], sub + ".namespaceSelector", where, key_prefix=LABEL_NS_LABELS_PREFIX
            )
            extra.extend(namespace_selector.requirements)
        else:
            extra.append(Requirement(SOURCE_K8S, LABEL_NAMESPACE, "In", (namespace,)))
        selector = parse_k8s_selector(peer.get("podSelector"), sub + ".podSelector", where, extra=extra)
        result.append(Peer("selector", selector=selector))
    return tuple(result)


def _parse_ip_block(block, path, where):
    block = _expect_mapping(block, path, where)
    _check_fields(block, path, where, ("cidr", "except"))
    network = _parse_network(block.get("cidr"), path + ".cidr", where)
    excepts = []
    for position, text in enumerate(_expect_list(block.get("except"), path + ".except", where) or []):
        sub = "%s.except[%d]" % (path, position)
        excluded = _parse_network(text, sub, where)
        if (
            excluded.version != network.version
            or not excluded.subnet_of(network)
            or excluded.prefixlen <= network.prefixlen
        ):
            raise InvalidInput(sub, text, "must be a strict subset of cidr %s" % block.get("cidr"), where=where)
        excepts.append(excluded)
    return Peer("cidr", network=network, excepts=tuple(excepts))


def _parse_np_ports(ports, path, where):
    ports = _expect_list(ports, path, where)
    if not ports:
        return None
    result = []
    for position, item in enumerate(ports):
        sub = "%s[%d]" % (path, position)
        item = _expect_mapping(item, sub, where)
        _check_fields(item, sub, where, ("protocol", "port", "endPort"))
        protocol = item.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            raise InvalidInput(sub + ".protocol", protocol, "is not one of: %s" % ", ".join(PROTOCOLS), where=where)
        port = item.get("port")
        end_port = item.get("endPort")
        if port is None:
            if end_port is not None:
                raise InvalidInput(
                    sub + ".endPort", end_port, "needs port to be set (the start of the range)", where=where
                )
            result.append(PortSpec(protocol))
            continue
        if isinstance(port, str):
            if not is_svc_name(port):
                hint = " (write the number without quotes)" if port.isdigit() else ""
                raise InvalidInput(
                    sub + ".port",
                    port,
                    "is not a valid named port (IANA service name: at most 15 lowercase alphanumerics or '-', with a "
                    "letter)%s" % hint,
                    where=where,
                )
            if end_port is not None:
                raise InvalidInput(
                    sub + ".endPort", end_port, "needs a numeric port, not the named port %r" % port, where=where
                )
            result.append(PortSpec(protocol, name=port))
            continue
        if not _is_int(port) or not 1 <= port <= 65535:
            raise InvalidInput(sub + ".port", port, "must be a port number from 1 to 65535 or a port name", where=where)
        if end_port is not None:
            if not _is_int(end_port) or not 1 <= end_port <= 65535:
                raise InvalidInput(sub + ".endPort", end_port, "must be a port number from 1 to 65535", where=where)
            if end_port < port:
                raise InvalidInput(
                    sub + ".endPort", end_port, "must be greater than or equal to port (%d)" % port, where=where
                )
        result.append(PortSpec(protocol, port, end_port))
    return tuple(result)


# ----------------------------------------------------------------- Cilium rules

_L3_INGRESS = ("fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities")
_L3_EGRESS = ("toEndpoints", "toCIDR", "toCIDRSet", "toEntities", "toFQDNs")


def _parse_cilium_rule(spec, path, display, kind, namespace, name):
    spec = _expect_mapping(spec, path, display)
    _check_fields(spec, path, display, CNP_SPEC_FIELDS, CNP_SPEC_UNSUPPORTED)
    if "endpointSelector" not in spec:
        raise InvalidInput(
            path + ".endpointSelector",
            None,
            "is required (nodeSelector, the alternative, is not modelled)",
            where=display,
        )
    notes = []
    requirements = parse_cilium_selector(spec.get("endpointSelector"), path + ".endpointSelector", display)
    if namespace is not None:
        kept = []
        for req in requirements:
            if req.key == LABEL_NAMESPACE and req.source == SOURCE_K8S and req.operator == "In":
                if req.values != (namespace,):
                    notes.append(
                        "%s: %s.endpointSelector names namespace %s; Cilium replaces it with the policy namespace %s"
                        % (display, path, ", ".join(req.values), namespace)
                    )
                continue
            kept.append(req)
        requirements = kept + [Requirement(SOURCE_K8S, LABEL_NAMESPACE, "In", (namespace,))]
    subject = Selector(tuple(requirements))
    directions = {}
    for key in ("ingress", "ingressDeny", "egress", "egressDeny"):
        directions[key] = _expect_list(spec.get(key), "%s.%s" % (path, key), display)
    if all(value is None for value in directions.values()):
        raise InvalidInput(
            path,
            spec,
            "must set at least one of ingress, ingressDeny, egress, egressDeny (the CRD requires it)",
            where=display,
        )
    if not any(directions.values()):
        raise InvalidInput(
            path,
            spec,
            "has no rule in ingress, ingressDeny, egress or egressDeny; Cilium refuses such a rule. Use ingress: "
            "[{fromEntities: []}] to isolate without allowing anything",
            where=display,
        )
    default_deny = _expect_mapping(spec.get("enableDefaultDeny"), path + ".enableDefaultDeny", display, allow_none=True)
    _check_fields(default_deny, path + ".enableDefaultDeny", display, ("ingress", "egress"))
    for key in ("ingress", "egress"):
        if key in default_deny and not isinstance(default_deny[key], bool):
            raise InvalidInput(
                "%s.enableDefaultDeny.%s" % (path, key), default_deny[key], "must be a boolean", where=display
            )
    deny_in = default_deny.get("ingress", bool(directions["ingress"]) or bool(directions["ingressDeny"]))
    deny_out = default_deny.get("egress", bool(directions["egress"]) or bool(directions["egressDeny"]))
    _check_rule_labels(spec.get("labels"), path + ".labels", display)
    if "log" in spec:
        log = _expect_mapping(spec["log"], path + ".log", display)
        _check_fields(log, path + ".log", display, ("value",))
    if "description" in spec:
        _expect_string(spec["description"], path + ".description", display)
    unit = PolicyUnit(display, kind, namespace, name, path, subject, deny_in, deny_out)
    for key, verdict, direction in (
        ("ingress", "allow", "ingress"),
        ("ingressDeny", "deny", "ingress"),
        ("egress", "allow", "egress"),
        ("egressDeny", "deny", "egress"),
    ):
        for position, rule in enumerate(directions[key] or []):
            rule_path = "%s.%s[%d]" % (path, key, position)
            rules, note = _parse_cilium_direction_rule(rule, rule_path, display, key, verdict, direction, namespace)
            unit.rules.extend(rules)
            if note:
                notes.append(note)
    return unit, notes


def _check_rule_labels(labels, path, where):
    for position, item in enumerate(_expect_list(labels, path, where) or []):
        sub = "%s[%d]" % (path, position)
        item = _expect_mapping(item, sub, where)
        _check_fields(item, sub, where, ("key", "value", "source"))
        _expect_string(item.get("key"), sub + ".key", where)


def _parse_cilium_direction_rule(rule, path, where, key, verdict, direction, namespace):
    rule = _expect_mapping(rule, path, where, allow_none=True)
    fields, unsupported = {
        "ingress": (CNP_INGRESS_FIELDS, CNP_INGRESS_UNSUPPORTED),
        "ingressDeny": (CNP_INGRESS_DENY_FIELDS, CNP_INGRESS_DENY_UNSUPPORTED),
        "egress": (CNP_EGRESS_FIELDS, CNP_EGRESS_UNSUPPORTED),
        "egressDeny": (CNP_EGRESS_DENY_FIELDS, CNP_EGRESS_DENY_UNSUPPORTED),
    }[key]
    empty_only = CNP_INGRESS_EMPTY_ONLY if direction == "ingress" else CNP_EGRESS_EMPTY_ONLY
    _check_fields(rule, path, where, fields, unsupported, empty_only)
    l3_keys = _L3_INGRESS if direction == "ingress" else _L3_EGRESS
    present = [name for name in l3_keys if rule.get(name) is not None]
    if len(present) > 1:
        raise InvalidInput(
            path,
            present,
            "combines %s; Cilium allows only one kind of peer per rule (split it into several rules)"
            % " and ".join(present),
            where=where,
        )
    if rule.get("icmps") and rule.get("toPorts"):
        raise InvalidInput(
            path + ".icmps",
            rule.get("icmps"),
            "cannot be combined with toPorts in one rule (Cilium refuses it); use a separate rule",
            where=where,
        )
    peers = None
    fqdns = ()
    if present:
        l3_key = present[0]
        items = _expect_list(rule[l3_key], "%s.%s" % (path, l3_key), where)
        sub = "%s.%s" % (path, l3_key)
        if l3_key in ("fromEndpoints", "toEndpoints"):
            peers = tuple(
                Peer(
                    "selector",
                    selector=cilium_peer_selector(
                        parse_cilium_selector(item, "%s[%d]" % (sub, position), where), namespace
                    ),
                )
                for position, item in enumerate(items)
            )
        elif l3_key in ("fromEntities", "toEntities"):
            peers = tuple(
                Peer("entity", entity=_parse_entity(item, "%s[%d]" % (sub, position), where))
                for position, item in enumerate(items)
            )
        elif l3_key in ("fromCIDR", "toCIDR"):
            peers = tuple(
                Peer("cidr", network=_parse_network(item, "%s[%d]" % (sub, position), where))
                for position, item in enumerate(items)
            )
        elif l3_key in ("fromCIDRSet", "toCIDRSet"):
            peers = tuple(
                _parse_cidr_rule(item, "%s[%d]" % (sub, position), where) for position, item in enumerate(items)
            )
        else:
            fqdns = tuple(_parse_fqdn(item, "%s[%d]" % (sub, position), where) for position, item in enumerate(items))
            peers = tuple(Peer("fqdn", fqdn=text) for text in fqdns)
    ports = None
    if rule.get("icmps"):
        fields = _parse_icmps(rule["icmps"], path + ".icmps", where)
        if fields:
            ports = (PortSpec("ICMP"),)
    entries = _expect_list(rule.get("toPorts"), path + ".toPorts", where)
    if not present and not entries and ports is None:
        # No peer field and no port field.  The CRD documents a missing peer field as a
        # wildcard only "if ToPorts are also specified", and Cilium merges an L3-only rule
        # only when it has a selector: such a rule selects nothing.
        peer_word = "from" if direction == "ingress" else "to"
        note = (
            "%s: %s has no peer and no port field; Cilium reads it as selecting nothing, so it %s "
            "without %s anything. Write %sEntities: [all] to %s everything, or %sEntities: [] to say so"
            % (
                where,
                path,
                "puts the endpoint in default deny" if verdict == "allow" else "is ignored",
                "allowing" if verdict == "allow" else "denying",
                peer_word,
                "allow" if verdict == "allow" else "deny",
                peer_word,
            )
        )
        return [Rule(direction, verdict, path, (), None)], note
    if not entries:
        return [Rule(direction, verdict, path, peers, ports, fqdn=fqdns)], None
    result = []
    for position, entry in enumerate(entries):
        entry_path = "%s.toPorts[%d]" % (path, position)
        specs, l7_kind, l7_rules = _parse_cilium_port_rule(entry, entry_path, where, verdict, direction)
        result.append(Rule(direction, verdict, entry_path, peers, specs, l7_kind, l7_rules, fqdns))
    return result, None


def _parse_entity(item, path, where):
    if item not in ENTITIES:
        raise InvalidInput(path, item, "is not one of: %s" % ", ".join(ENTITIES), where=where)
    return item


def _parse_cidr_rule(item, path, where):
    item = _expect_mapping(item, path, where)
    _check_fields(item, path, where, ("cidr", "except"), CNP_CIDR_RULE_UNSUPPORTED)
    if "cidr" not in item:
        raise InvalidInput(path + ".cidr", None, "is required", where=where)
    network = _parse_network(item["cidr"], path + ".cidr", where)
    excepts = []
    for position, text in enumerate(_expect_list(item.get("except"), path + ".except", where) or []):
        sub = "%s.except[%d]" % (path, position)
        excluded = _parse_network(text, sub, where)
        if excluded.version != network.version or excluded.network_address not in network:
            raise InvalidInput(
                sub, text, "must lie inside cidr %s (Cilium refuses the rule otherwise)" % item["cidr"], where=where
            )
        excepts.append(excluded)
    return Peer("cidr", network=network, excepts=tuple(excepts))


def _parse_fqdn(item, path, where):
    item = _expect_mapping(item, path, where)
    _check_fields(item, path, where, ("matchName", "matchPattern"))
    if len(item) != 1:
        raise InvalidInput(path, item, "must set exactly one of matchName, matchPattern", where=where)
    key, value = next(iter(item.items()))
    pattern = _FQDN_NAME if key == "matchName" else _FQDN_PATTERN
    if not isinstance(value, str) or len(value) > 255 or not pattern.match(value):
        raise InvalidInput(
            "%s.%s" % (path, key),
            value,
            "is not a valid DNS name%s (at most 255 characters)" % (" pattern" if key == "matchPattern" else ""),
            where=where,
        )
    return "%s=%s" % (key, value)


def _parse_icmps(items, path, where):
    """Validate ICMP rules; return how many ICMP fields they list."""
    count = 0
    for position, item in enumerate(_expect_list(items, path, where) or []):
        sub = "%s[%d]" % (path, position)
        item = _expect_mapping(item, sub, where)
        _check_fields(item, sub, where, ("fields",))
        fields = _expect_list(item.get("fields"), sub + ".fields", where) or []
        if len(fields) > 40:
            raise InvalidInput(sub + ".fields", len(fields), "has more than 40 entries (the CRD maximum)", where=where)
        for field_index, entry in enumerate(fields):
            entry_path = "%s.fields[%d]" % (sub, field_index)
            entry = _expect_mapping(entry, entry_path, where)
            _check_fields(entry, entry_path, where, ("family", "type"))
            if entry.get("family", "IPv4") not in ("IPv4", "IPv6"):
                raise InvalidInput(
                    entry_path + ".family", entry.get("family"), "is not one of: IPv4, IPv6", where=where
                )
            icmp_type = entry.get("type")
            valid = (_is_int(icmp_type) and 0 <= icmp_type <= 255) or (
                isinstance(icmp_type, str)
                and (icmp_type in _ICMP_TYPE_NAMES or (icmp_type.isdigit() and int(icmp_type) <= 255))
            )
            if not valid:
                raise InvalidInput(
                    entry_path + ".type",
                    icmp_type,
                    "must be an ICMP type number (0-255) or name such as EchoRequest",
                    where=where,
                )
            count += 1
    return count


def _parse_cilium_port(item, path, where):
    """Parse one ``toPorts[].ports[]`` entry as Cilium's PortProtocol.sanitize does."""
    item = _expect_mapping(item, path, where)
    _check_fields(item, path, where, ("port", "endPort", "protocol"))
    protocol = item.get("protocol") or "ANY"
    if protocol not in CILIUM_PROTOCOLS:
        raise InvalidInput(path + ".protocol", protocol, "is not one of: %s" % ", ".join(CILIUM_PROTOCOLS), where=where)
    port = item.get("port")
    if port is None or port == "":
        raise InvalidInput(path + ".port", port, 'is required (use "0" for all ports)', where=where)
    if not isinstance(port, str):
        raise InvalidInput(
            path + ".port", port, 'must be a string in a Cilium policy (quote it: "%s")' % port, where=where
        )
    end_port = item.get("endPort")
    if end_port is not None and (not _is_int(end_port) or not 0 <= end_port <= 65535):
        raise InvalidInput(path + ".endPort", end_port, "must be an integer from 0 to 65535", where=where)
    if is_svc_name(port.lower()):
        if end_port is not None:
            raise InvalidInput(
                path + ".endPort", end_port, "needs a numeric port, not the named port %r" % port, where=where
            )
        return PortSpec(protocol, name=port.lower())
    if not port.isdigit() or int(port) > 65535:
        raise InvalidInput(path + ".port", port, "must be a port number from 0 to 65535 or a port name", where=where)
    number = int(port)
    if end_port is not None and end_port != 0 and end_port < number:
        raise InvalidInput(
            path + ".endPort", end_port, "must be greater than or equal to port (%d)" % number, where=where
        )
    if number == 0 and not end_port:
        return PortSpec(protocol)
    return PortSpec(protocol, number, end_port if end_port else None)


def _parse_cilium_port_rule(item, path, where, verdict, direction):
    """One ``toPorts`` entry: its port specs and the L7 rules attached to them."""
    item = _expect_mapping(item, path, where)
    if verdict == "deny":
        _check_fields(item, path, where, ("ports",))
    else:
        _check_fields(item, path, where, CNP_PORT_RULE_FIELDS, CNP_PORT_RULE_UNSUPPORTED)
    entries = _expect_list(item.get("ports"), path + ".ports", where) or []
    if len(entries) > 40:
        raise InvalidInput(path + ".ports", len(entries), "has more than 40 entries (the CRD maximum)", where=where)
    specs = tuple(
        _parse_cilium_port(entry, "%s.ports[%d]" % (path, index), where) for index, entry in enumerate(entries)
    )
    l7_kind = None
    l7_rules = ()
    if item.get("rules") is not None:
        l7_kind, l7_rules = _parse_l7(item["rules"], path + ".rules", where, direction, specs)
        if not l7_rules:
            l7_kind = None
    return specs, l7_kind, l7_rules


def _parse_l7(rules, path, where, direction, specs):
    rules = _expect_mapping(rules, path, where)
    _check_fields(rules, path, where, ("http", "dns"))
    present = [key for key in ("http", "dns") if key in rules]
    if len(present) != 1:
        raise InvalidInput(path, rules, "must set exactly one of http, dns", where=where)
    kind = present[0]
    entries = _expect_list(rules[kind], "%s.%s" % (path, kind), where) or []
    if kind == "dns":
        if direction == "ingress":
            raise InvalidInput(
                path + ".dns", entries, "is not allowed on ingress (Cilium refuses DNS rules there)", where=where
            )
        if not specs:
            raise InvalidInput(path + ".dns", entries, "needs ports (port 53) in the same toPorts entry", where=where)
        for spec in specs:
            if spec.end_port is not None:
                raise InvalidInput(path + ".dns", entries, "cannot be used with a port range", where=where)
        parsed = tuple(
            {"dns": _parse_fqdn(entry, "%s.dns[%d]" % (path, index), where)} for index, entry in enumerate(entries)
        )
        return kind, parsed
    for spec in specs:
        if spec.protocol != "TCP":
            raise InvalidInput(
                path + ".http",
                entries,
                "needs protocol TCP on every port of the entry (Cilium refuses L7 rules on %s)" % spec.protocol,
                where=where,
            )
        if spec.port is None and spec.name is None:
            raise InvalidInput(path + ".http", entries, "cannot be used with port 0 (all ports)", where=where)
    parsed = []
    for index, entry in enumerate(entries):
        sub = "%s.http[%d]" % (path, index)
        entry = _expect_mapping(entry, sub, where, allow_none=True)
        _check_fields(entry, sub, where, HTTP_RULE_FIELDS)
        for key in ("method", "path", "host"):
            if key in entry:
                _expect_string(entry[key], "%s.%s" % (sub, key), where)
                try:
                    re.compile(entry[key])
                except re.error as exc:
                    raise InvalidInput(
                        "%s.%s" % (sub, key), entry[key], "is not a valid regular expression: %s" % exc, where=where
                    )
        parsed.append(dict(entry))
    return kind, tuple(parsed)


# --------------------------------------------------------------------------- top level


def parse_model(namespaces, pods, policies, cluster_name="default"):
    """Validate every input and return a :class:`Model`."""
    if not isinstance(cluster_name, str) or not _LABEL_VALUE.match(cluster_name) or not cluster_name:
        raise InvalidInput("cluster_name", cluster_name, "must be a valid label value", where="netpol")
    parsed_namespaces = parse_namespaces(namespaces)
    parsed_pods = parse_pods(pods, parsed_namespaces)
    units, counts, warnings = parse_policies(policies, parsed_namespaces)
    _check_named_ports(units, parsed_pods)
    return Model(parsed_namespaces, parsed_pods, units, counts, warnings, cluster_name)


def _check_named_ports(units, pods):
    """A named port that no pod serves (with that protocol) can never match: refuse it."""
    served = {}
    for pod in pods:
        for port in pod.ports:
            if port.name:
                served.setdefault(port.name, set()).add(port.protocol)
    for unit in units:
        for rule in unit.rules:
            for position, spec in enumerate(rule.ports or ()):
                if spec.name is None:
                    continue
                protocols = served.get(spec.name, set())
                wanted = PROTOCOLS if spec.protocol == "ANY" else (spec.protocol,)
                if not protocols.intersection(wanted):
                    raise InvalidInput(
                        "%s.ports" % rule.path,
                        spec.name,
                        "names a port no pod serves over %s%s"
                        % (
                            "/".join(wanted),
                            " (served over %s)" % ", ".join(sorted(protocols)) if protocols else "",
                        ),
                        where=unit.display,
                    )


def pod_labels(pod, namespace_labels, cluster_name):
    """The identity labels Cilium derives for a pod: ``key -> (source, value)``."""
    labels = {key: (SOURCE_K8S, value) for key, value in pod.labels.items()}
    labels[LABEL_NAMESPACE] = (SOURCE_K8S, pod.namespace)
    for key, value in namespace_labels.items():
        labels[LABEL_NS_LABELS_PREFIX + key] = (SOURCE_K8S, value)
    labels[LABEL_SERVICE_ACCOUNT] = (SOURCE_K8S, pod.service_account)
    labels[LABEL_CLUSTER] = (SOURCE_K8S, cluster_name)
    return labels


def served_names(pod_ports, port, protocol):
    """Names of the pod ports serving ``port``/``protocol`` (for named-port rules)."""
    return frozenset(item.name for item in pod_ports if item.port == port and item.protocol == protocol and item.name)


def serves(pod_ports, port, protocol):
    return any(item.port == port and item.protocol == protocol for item in pod_ports)
