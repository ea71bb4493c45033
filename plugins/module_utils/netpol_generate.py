# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A zero-trust policy set generated from declared flows, and the proof that it is right.

Pure Python: nothing here imports ``ansible``.  The ``zerotrust.cilium.network_policy_plan``
module is a thin wrapper around :func:`plan_policies`; the ``network_policy`` role writes or
applies what it returns.

Input: the namespaces under management, the workloads (name, labels, ports), the declared
flows (from a workload or namespace to a workload or to DNS names, on ports, optionally with
HTTP rules), and the baseline options (DNS, NodeLocal DNS, API server access, Cilium's
policy enforcement mode, extra policies the user opts into).  In render mode the pods are
made up from the workloads; in apply mode they are the cluster's, read with k8s_info.

Output, per managed namespace: a default deny for ingress and egress; DNS egress to
kube-dns on UDP and TCP 53 (and to a NodeLocal DNS address); API server egress for the
workloads that need it; per declared flow the egress allow on the source side and the
ingress allow on the destination side, as NetworkPolicy for L3/L4 and only as
CiliumNetworkPolicy where HTTP rules or DNS names are asked for (an L4 allow for the same
pods and port would make the L7 rule ineffective).

The proof (:func:`prove`) runs the reachability engine of ``netpol`` on the generated
objects plus the extra and existing policies, and refuses the set when a declared flow is
denied, when a managed pod loses DNS, when an L7 rule is shadowed by an L4 allow, or when
anything undeclared is allowed to or from a managed pod.  Semantics: ``docs/policy-engine.md``;
the role and the proof: ``docs/network-policy.md``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_model import (
    ENFORCEMENT_MODES,
    KIND_CCNP,
    KIND_CNP,
    KIND_NP,
    LABEL_NS_NAME,
    SOURCE_K8S,
    _FQDN_NAME,
    _FQDN_PATTERN,
    _parse_np_ports,
    is_svc_name,
    parse_k8s_selector,
    validate_label_key,
    validate_label_value,
)

WHERE = "network_policy"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "zerotrust.cilium"
PURPOSE_LABEL = "zerotrust.cilium/purpose"
FLOW_LABEL = "zerotrust.cilium/flow"
NAME_PREFIX = "zerotrust-"
CLUSTERWIDE_DIR = "_clusterwide"
CILIUM_NAMESPACE_KEY = "k8s:io.kubernetes.pod.namespace"

PURPOSES = ("default-deny", "dns", "dns-ingress", "apiserver", "health", "flow", "extra")
"""Values of the ``zerotrust.cilium/purpose`` label, in the order objects are listed."""

DEFAULT_DNS = {"namespace": "kube-system", "selector": {"matchLabels": {"k8s-app": "kube-dns"}}, "nodelocal_ip": None}

VIOLATION_KINDS = ("declared_denied", "dns_lost", "l7_shadowed", "undeclared_allowed")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_FLOW_NAME_MAX = 40
_REPLICAS_MAX = 50
_EXPLAIN_MAX = 25
_HTTP_FIELDS = ("method", "path", "host", "headers")
_FLOW_FIELDS = ("name", "from", "to", "to_fqdns", "ports", "http", "description")
_WORKLOAD_FIELDS = ("name", "labels", "ports", "replicas", "service_account")
_DNS_FIELDS = ("namespace", "selector", "nodelocal_ip")
_ENDPOINT_FIELDS = ("namespace", "workload", "selector")
_STRIPPED_METADATA = ("name", "namespace", "labels", "annotations")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


# --------------------------------------------------------------------------- model


@dataclass
class Workload:
    namespace: str
    name: str
    labels: Dict[str, str]
    ports: List[dict]
    replicas: int
    service_account: str

    @property
    def ref(self):
        return "%s/%s" % (self.namespace, self.name)


@dataclass
class FlowEnd:
    """One end of a flow: a workload, a label selector, or a whole namespace."""

    namespace: str
    workload: Optional[str]
    selector: Optional[dict]  # Kubernetes LabelSelector; None selects the whole namespace
    display: str
    pods: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class FlowPort:
    protocol: str
    port: Optional[int] = None
    end_port: Optional[int] = None
    name: Optional[str] = None

    def describe(self):
        if self.name is not None:
            return "%s/%s" % (self.name, self.protocol)
        if self.end_port is not None:
            return "%d-%d/%s" % (self.port, self.end_port, self.protocol)
        return "%d/%s" % (self.port, self.protocol)

    def covers(self, port, protocol, names=()):
        if protocol != self.protocol:
            return False
        if self.name is not None:
            return self.name in names
        if self.end_port is not None:
            return self.port <= port <= self.end_port
        return port == self.port


@dataclass
class Flow:
    index: int
    name: str
    source: FlowEnd
    destination: Optional[FlowEnd]
    fqdns: Tuple[Tuple[str, str], ...]
    ports: Tuple[FlowPort, ...]
    http: Tuple[dict, ...]
    description: str = ""

    @property
    def where(self):
        return "flow %s" % self.name

    @property
    def path(self):
        return "flows[%d]" % self.index

    @property
    def target(self):
        if self.destination is not None:
            return self.destination.display
        return ", ".join(value for _kind, value in self.fqdns)

    @property
    def l7(self):
        parts = []
        if self.http:
            parts.append("HTTP " + "; ".join(_describe_http(rule) for rule in self.http))
        if self.fqdns:
            parts.append("DNS names")
        return ", ".join(parts)


@dataclass
class Dns:
    namespace: str
    selector: dict
    nodelocal_ip: Optional[str]


@dataclass
class World:
    """What the proof reasons about: namespaces, pods, and the policies already there."""

    mode: str  # render or apply
    namespaces: Dict[str, Dict[str, str]]
    pods: List[dict]
    groups: Dict[str, str]  # pod ref -> workload group (namespace/workload, or namespace/pod)
    existing: List[dict] = field(default_factory=list)  # policies the set does not manage
    managed_existing: List[dict] = field(default_factory=list)  # policies a previous run applied

    def pods_in(self, namespace):
        return [pod for pod in self.pods if pod["namespace"] == namespace]


@dataclass
class Spec:
    managed: List[str]
    workloads: Dict[str, Dict[str, Workload]]
    flows: List[Flow]
    dns: Dns
    api_access: List[FlowEnd]
    api_server_port: int
    mode: str
    extras: List[dict]
    cluster_name: str
    allow_localhost: bool

    def enforced(self, namespace):
        """Whether Cilium isolates the namespace's pods once the set is applied."""
        return namespace in self.managed or self.mode == "always"


@dataclass
class PolicyObject:
    namespace: Optional[str]
    kind: str
    name: str
    purpose: str
    description: str
    manifest: dict
    flow: Optional[str] = None

    @property
    def display(self):
        if self.namespace:
            return "%s %s/%s" % (self.kind, self.namespace, self.name)
        return "%s %s" % (self.kind, self.name)

    @property
    def file(self):
        return "%s/%s.yaml" % (self.namespace or CLUSTERWIDE_DIR, self.name)

    def as_dict(self):
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "purpose": self.purpose,
            "flow": self.flow,
            "description": self.description,
            "file": self.file,
            "manifest": self.manifest,
        }


# --------------------------------------------------------------------------- small checks


def _type_name(value):
    return type(value).__name__ if value is not None else "null"


def _mapping(value, path, where, allow_none=False):
    if value is None and allow_none:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(path, value, "must be a mapping, got %s" % _type_name(value), where=where)
    return value


def _sequence(value, path, where, allow_none=False):
    if value is None and allow_none:
        return []
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(path, value, "must be a list, got %s" % _type_name(value), where=where)
    return list(value)


def _known_fields(mapping, path, where, known):
    for key in mapping:
        if key not in known:
            raise InvalidInput(
                "%s.%s" % (path, key), mapping[key], "is not a known field; known: %s" % ", ".join(known), where=where
            )


def _namespace_name(value, path, where):
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise InvalidInput(path, value, "is not a valid namespace name (DNS-1123 label)", where=where)
    return value


def _whole_number(value, path, where, minimum, maximum):
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidInput(path, value, "must be an integer from %d to %d" % (minimum, maximum), where=where)
    return value


def _labels(value, path, where, required=False):
    labels = _mapping(value, path, where, allow_none=not required)
    if required and not labels:
        raise InvalidInput(path, value, "must name at least one label (the workload's selector)", where=where)
    result = {}
    for key in sorted(labels):
        validate_label_key(key, "%s[%r]" % (path, key), where)
        validate_label_value(labels[key], "%s[%r]" % (path, key), where)
        result[key] = labels[key]
    return result


def _selector(value, path, where):
    """A Kubernetes LabelSelector, validated as the API server does; returned cleaned."""
    value = _mapping(value, path, where)
    parse_k8s_selector(value, path, where)
    cleaned = {}
    if value.get("matchLabels"):
        cleaned["matchLabels"] = dict(sorted(value["matchLabels"].items()))
    if value.get("matchExpressions"):
        cleaned["matchExpressions"] = [
            dict((key, expression[key]) for key in ("key", "operator", "values") if key in expression)
            for expression in value["matchExpressions"]
        ]
    return cleaned


def _selected(selector, pods):
    """The pods a (validated) LabelSelector selects, with the engine's selector semantics."""
    if not selector:
        return list(pods)
    parsed = parse_k8s_selector(selector, "selector", WHERE)
    return [pod for pod in pods if parsed.matches({key: (SOURCE_K8S, value) for key, value in pod["labels"].items()})]


def _describe_selector(selector):
    if not selector:
        return "*"
    parts = ["%s=%s" % item for item in sorted(selector.get("matchLabels", {}).items())]
    for expression in selector.get("matchExpressions", []):
        values = expression.get("values") or []
        parts.append(
            "%s %s%s" % (expression["key"], expression["operator"], " (%s)" % ", ".join(values) if values else "")
        )
    return "{%s}" % ", ".join(parts)


def _describe_http(rule):
    text = " ".join(str(rule[key]) for key in ("method", "path") if key in rule) or "any request"
    if "host" in rule:
        text += " host %s" % rule["host"]
    return text


# --------------------------------------------------------------------------- inputs


def parse_managed_namespaces(value):
    items = _sequence(value, "managed_namespaces", WHERE)
    if not items:
        raise InvalidInput("managed_namespaces", value, "must name at least one namespace", where=WHERE)
    seen = []
    for index, name in enumerate(items):
        _namespace_name(name, "managed_namespaces[%d]" % index, WHERE)
        if name in seen:
            raise InvalidInput("managed_namespaces[%d]" % index, name, "is listed twice", where=WHERE)
        seen.append(name)
    return seen


def parse_workloads(value):
    """``{namespace: [{name, labels, ports, replicas, service_account}]}`` -> ``{ns: {name: Workload}}``."""
    value = _mapping(value, "workloads", WHERE, allow_none=True)
    result = {}
    for namespace in sorted(value):
        _namespace_name(namespace, "workloads", WHERE)
        items = _sequence(value[namespace], "workloads[%r]" % namespace, WHERE, allow_none=True)
        declared = {}
        for index, item in enumerate(items):
            path = "workloads[%r][%d]" % (namespace, index)
            item = _mapping(item, path, WHERE)
            _known_fields(item, path, WHERE, _WORKLOAD_FIELDS)
            name = item.get("name")
            if not isinstance(name, str) or len(name) > 50 or not _DNS1123_LABEL.match(name):
                raise InvalidInput(
                    path + ".name", name, "is not a valid workload name (DNS-1123 label, at most 50)", where=WHERE
                )
            where = "workload %s/%s" % (namespace, name)
            if name in declared:
                raise InvalidInput(path + ".name", name, "is declared twice in namespace %s" % namespace, where=WHERE)
            labels = _labels(item.get("labels"), path + ".labels", where, required=True)
            ports = []
            port_names = set()
            for port_index, port in enumerate(_sequence(item.get("ports"), path + ".ports", where, allow_none=True)):
                sub = "%s.ports[%d]" % (path, port_index)
                port = _mapping(port, sub, where)
                _known_fields(port, sub, where, ("name", "port", "protocol"))
                entry = {"port": _whole_number(port.get("port"), sub + ".port", where, 1, 65535)}
                entry["protocol"] = port.get("protocol", "TCP")
                if entry["protocol"] not in ("TCP", "UDP", "SCTP"):
                    raise InvalidInput(sub + ".protocol", entry["protocol"], "is not one of: TCP, UDP, SCTP",
                                       where=where)
                if port.get("name") is not None:
                    if not is_svc_name(port["name"]):
                        raise InvalidInput(
                            sub + ".name", port["name"],
                            "is not a valid port name (IANA service name: at most 15 lowercase alphanumerics or "
                            "'-', with a letter)", where=where,
                        )
                    if port["name"] in port_names:
                        raise InvalidInput(sub + ".name", port["name"], "is used twice in this workload", where=where)
                    port_names.add(port["name"])
                    entry["name"] = port["name"]
                ports.append(entry)
            replicas = _whole_number(item.get("replicas", 1), path + ".replicas", where, 1, _REPLICAS_MAX)
            account = item.get("service_account", "default")
            if not isinstance(account, str) or not account:
                raise InvalidInput(path + ".service_account", account, "must be a service account name", where=where)
            declared[name] = Workload(namespace, name, labels, ports, replicas, account)
        result[namespace] = declared
    return result


def parse_dns(value):
    value = copy.deepcopy(_mapping(value, "dns", WHERE, allow_none=True))
    _known_fields(value, "dns", WHERE, _DNS_FIELDS)
    merged = dict(DEFAULT_DNS)
    merged.update({key: item for key, item in value.items() if item is not None})
    namespace = _namespace_name(merged["namespace"], "dns.namespace", WHERE)
    selector = _selector(merged["selector"], "dns.selector", WHERE)
    if not selector:
        raise InvalidInput(
            "dns.selector", merged["selector"], "must select the DNS pods (empty selects every pod)", where=WHERE
        )
    nodelocal = merged.get("nodelocal_ip")
    if nodelocal in ("", None):
        nodelocal = None
    else:
        try:
            nodelocal = str(ipaddress.ip_address(nodelocal))
        except ValueError:
            raise InvalidInput("dns.nodelocal_ip", nodelocal, "is not an IP address such as 169.254.20.10", where=WHERE)
    return Dns(namespace, selector, nodelocal)


def _parse_end(value, path, where, workloads, namespaces, pods_by_namespace):
    """``ns/workload``, ``ns``, ``ns/*`` or ``{namespace, workload | selector}`` -> FlowEnd."""
    if isinstance(value, str):
        namespace, slash, name = value.partition("/")
        value = {"namespace": namespace}
        if slash and name != "*":
            value["workload"] = name
    value = _mapping(value, path, where)
    _known_fields(value, path, where, _ENDPOINT_FIELDS)
    namespace = value.get("namespace")
    if namespace not in namespaces:
        raise InvalidInput(
            path + ".namespace",
            namespace,
            "is not a known namespace; known: %s" % ", ".join(sorted(namespaces)),
            where=where,
        )
    if "workload" in value and "selector" in value:
        raise InvalidInput(path, value, "must set workload or selector, not both", where=where)
    if "workload" in value:
        declared = workloads.get(namespace, {})
        workload = declared.get(value["workload"])
        if workload is None:
            raise InvalidInput(
                path + ".workload",
                value["workload"],
                "is not a workload of namespace %s; declared there: %s"
                % (namespace, ", ".join(sorted(declared)) or "none"),
                where=where,
            )
        end = FlowEnd(namespace, workload.name, {"matchLabels": dict(workload.labels)}, workload.ref)
    elif "selector" in value:
        selector = _selector(value["selector"], path + ".selector", where)
        end = FlowEnd(namespace, None, selector or None, "%s/%s" % (namespace, _describe_selector(selector)))
    else:
        end = FlowEnd(namespace, None, None, "%s/*" % namespace)
    end.pods = [pod["ref"] for pod in _selected(end.selector, pods_by_namespace.get(namespace, []))]
    return end


def _parse_flow_ports(value, path, where):
    items = _sequence(value, path, where)
    if not items:
        raise InvalidInput(path, value, "must list at least one port (zero trust: no implicit all-ports)", where=where)
    for index, item in enumerate(items):
        item = _mapping(item, "%s[%d]" % (path, index), where)
        if item.get("port") is None and item.get("endPort") is None:
            raise InvalidInput(
                "%s[%d].port" % (path, index),
                None,
                "is required: name the port (a number from 1 to 65535 or a port name)",
                where=where,
            )
    specs = _parse_np_ports(items, path, where)
    return tuple(FlowPort(spec.protocol, spec.port, spec.end_port, spec.name) for spec in specs)


def _parse_http(value, path, where, ports):
    items = _sequence(value, path, where, allow_none=True)
    rules = []
    for index, item in enumerate(items):
        sub = "%s[%d]" % (path, index)
        item = _mapping(item, sub, where)
        _known_fields(item, sub, where, _HTTP_FIELDS)
        rule = {}
        for key in ("method", "path", "host"):
            if key in item:
                if not isinstance(item[key], str) or not item[key]:
                    raise InvalidInput("%s.%s" % (sub, key), item[key], "must be a non-empty string", where=where)
                try:
                    re.compile(item[key])
                except re.error as exc:
                    raise InvalidInput(
                        "%s.%s" % (sub, key), item[key], "is not a valid regular expression: %s" % exc, where=where
                    )
                rule[key] = item[key]
        if "headers" in item:
            headers = _sequence(item["headers"], sub + ".headers", where)
            for position, header in enumerate(headers):
                if not isinstance(header, str) or not header:
                    raise InvalidInput(
                        "%s.headers[%d]" % (sub, position), header, "must be a non-empty string", where=where
                    )
            rule["headers"] = list(headers)
        rules.append(rule)
    if rules:
        for index, port in enumerate(ports):
            if port.protocol != "TCP":
                raise InvalidInput(
                    "%s.ports[%d].protocol" % (path.rsplit(".", 1)[0], index),
                    port.protocol,
                    "must be TCP when http rules are given (Cilium enforces HTTP rules on TCP only)",
                    where=where,
                )
    return tuple(rules)


def _parse_fqdns(value, path, where):
    items = _sequence(value, path, where)
    if not items:
        raise InvalidInput(path, value, "must list at least one DNS name", where=where)
    result = []
    for index, item in enumerate(items):
        sub = "%s[%d]" % (path, index)
        if not isinstance(item, str) or len(item) > 255:
            raise InvalidInput(sub, item, "must be a DNS name or pattern such as api.example.com", where=where)
        if "*" in item:
            if not _FQDN_PATTERN.match(item):
                raise InvalidInput(sub, item, "is not a valid DNS name pattern such as *.example.com", where=where)
            result.append(("matchPattern", item))
        else:
            if not _FQDN_NAME.match(item):
                raise InvalidInput(sub, item, "is not a valid DNS name such as api.example.com", where=where)
            result.append(("matchName", item))
    return tuple(result)


def _resolve_named_ports(flow, pods_by_ref):
    """A named port must be served, with the flow's protocol, by some destination pod."""
    for index, port in enumerate(flow.ports):
        if port.name is None:
            continue
        if flow.destination is None:
            raise InvalidInput(
                "%s.ports[%d].port" % (flow.path, index),
                port.name,
                "is a port name; flows to DNS names need port numbers",
                where=flow.where,
            )
        served = [
            pod_ref
            for pod_ref in flow.destination.pods
            if any(
                item.get("name") == port.name and item.get("protocol", "TCP") == port.protocol
                for item in pods_by_ref[pod_ref]["ports"]
            )
        ]
        if not served:
            raise InvalidInput(
                "%s.ports[%d].port" % (flow.path, index),
                port.name,
                "names a port no pod of %s serves over %s" % (flow.destination.display, port.protocol),
                where=flow.where,
            )


def parse_flows(value, spec_managed, workloads, world):
    items = _sequence(value, "flows", WHERE, allow_none=True)
    pods_by_namespace = {}
    for pod in world.pods:
        pods_by_namespace.setdefault(pod["namespace"], []).append(pod)
    pods_by_ref = {pod["ref"]: pod for pod in world.pods}
    flows = []
    names = {}
    for index, item in enumerate(items):
        path = "flows[%d]" % index
        item = _mapping(item, path, WHERE)
        name = item.get("name")
        if not isinstance(name, str) or len(name) > _FLOW_NAME_MAX or not _DNS1123_LABEL.match(name):
            raise InvalidInput(
                path + ".name",
                name,
                "is required: a DNS-1123 label of at most %d characters (it names the policies)" % _FLOW_NAME_MAX,
                where=WHERE,
            )
        where = "flow %s" % name
        if name in names:
            raise InvalidInput(path + ".name", name, "is also the name of flows[%d]" % names[name], where=where)
        names[name] = index
        _known_fields(item, path, where, _FLOW_FIELDS)
        if "from" not in item:
            raise InvalidInput(path + ".from", None, "is required (namespace/workload or namespace)", where=where)
        if ("to" in item) == ("to_fqdns" in item):
            raise InvalidInput(path, sorted(item), "must set exactly one of to, to_fqdns", where=where)
        source = _parse_end(item["from"], path + ".from", where, workloads, world.namespaces, pods_by_namespace)
        destination = None
        fqdns = ()
        if "to" in item:
            destination = _parse_end(item["to"], path + ".to", where, workloads, world.namespaces, pods_by_namespace)
        else:
            fqdns = _parse_fqdns(item["to_fqdns"], path + ".to_fqdns", where)
        ports = _parse_flow_ports(item.get("ports"), path + ".ports", where)
        http = _parse_http(item.get("http"), path + ".http", where, ports)
        description = item.get("description", "")
        if not isinstance(description, str):
            raise InvalidInput(path + ".description", description, "must be a string", where=where)
        flow = Flow(index, name, source, destination, fqdns, ports, http, description)
        if fqdns and source.namespace not in spec_managed:
            raise InvalidInput(
                path + ".from",
                source.display,
                "must be in a managed namespace: DNS-name egress is enforced on the source's side",
                where=where,
            )
        if source.namespace not in spec_managed and (destination is None or destination.namespace not in spec_managed):
            raise InvalidInput(
                path,
                "%s -> %s" % (source.display, flow.target),
                "touches no managed namespace (%s); the role only writes policies there" % ", ".join(spec_managed),
                where=where,
            )
        _resolve_named_ports(flow, pods_by_ref)
        flows.append(flow)
    return flows


def parse_api_access(value, managed, workloads, world):
    items = _sequence(value, "api_server_access", WHERE, allow_none=True)
    pods_by_namespace = {}
    for pod in world.pods:
        pods_by_namespace.setdefault(pod["namespace"], []).append(pod)
    result = []
    for index, item in enumerate(items):
        path = "api_server_access[%d]" % index
        end = _parse_end(item, path, WHERE, workloads, world.namespaces, pods_by_namespace)
        if end.namespace not in managed:
            raise InvalidInput(
                path, end.display, "is not in a managed namespace (%s)" % ", ".join(managed), where=WHERE
            )
        if end.workload is None and end.selector is not None:
            raise InvalidInput(path, item, "must name a workload or a whole namespace", where=WHERE)
        if any(other.display == end.display for other in result):
            raise InvalidInput(path, end.display, "is listed twice", where=WHERE)
        result.append(end)
    return result


def _labelled(manifest, purpose, flow=None):
    manifest = copy.deepcopy(manifest)
    labels = manifest.setdefault("metadata", {}).setdefault("labels", {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    labels[PURPOSE_LABEL] = purpose
    if flow:
        labels[FLOW_LABEL] = flow
    return manifest


def parse_extra_policies(value, managed, mode):
    items = _sequence(value, "extra_policies", WHERE, allow_none=True)
    result = []
    for index, manifest in enumerate(items):
        path = "extra_policies[%d]" % index
        manifest = _mapping(manifest, path, WHERE)
        metadata = _mapping(manifest.get("metadata"), path + ".metadata", WHERE)
        kind = manifest.get("kind")
        namespace = metadata.get("namespace")
        if kind in (KIND_NP, KIND_CNP):
            if namespace not in managed and mode != "always":
                raise InvalidInput(
                    path + ".metadata.namespace",
                    namespace,
                    "must be a managed namespace (%s): extra policies elsewhere would isolate unmanaged pods"
                    % ", ".join(managed),
                    where=WHERE,
                )
        elif kind != KIND_CCNP:
            raise InvalidInput(
                path + ".kind",
                kind,
                "is not one of: NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy",
                where=WHERE,
            )
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(path + ".metadata.name", name, "is required", where=WHERE)
        if name.startswith(NAME_PREFIX):
            raise InvalidInput(
                path + ".metadata.name", name, "must not start with %r (generated objects use it)" % NAME_PREFIX,
                where=WHERE,
            )
        result.append(_labelled(manifest, "extra"))
    return result


# --------------------------------------------------------------------------- the world


def render_world(managed, workloads, dns, existing_policies=None):
    """Render mode: namespaces and pods made up from the declared workloads.

    ``existing_policies`` are the manifests the cluster is said to have already."""
    names = set(managed) | set(workloads) | {dns.namespace}
    namespaces = {name: {LABEL_NS_NAME: name} for name in sorted(names)}
    pods = []
    groups = {}
    for namespace in sorted(workloads):
        for workload in workloads[namespace].values():
            for replica in range(workload.replicas):
                ref = "%s/%s-%d" % (namespace, workload.name, replica)
                pods.append(
                    {
                        "namespace": namespace,
                        "name": "%s-%d" % (workload.name, replica),
                        "ref": ref,
                        "labels": dict(workload.labels),
                        "ports": [dict(port) for port in workload.ports],
                        "service_account": workload.service_account,
                    }
                )
                groups[ref] = workload.ref
    existing = []
    managed_existing = []
    for index, manifest in enumerate(_sequence(existing_policies, "existing_policies", WHERE, allow_none=True)):
        manifest = _strip_manifest(_mapping(manifest, "existing_policies[%d]" % index, WHERE))
        (managed_existing if _is_managed(manifest) else existing).append(manifest)
    return World("render", namespaces, pods, groups, existing, managed_existing)


def _strip_manifest(item):
    """The parts of a cluster object a policy manifest consists of (no status, no server fields)."""
    metadata = item.get("metadata") or {}
    kept = {key: copy.deepcopy(metadata[key]) for key in _STRIPPED_METADATA if metadata.get(key)}
    if "annotations" in kept:
        kept["annotations"].pop(_LAST_APPLIED, None)
        if not kept["annotations"]:
            del kept["annotations"]
    manifest = {"apiVersion": item.get("apiVersion"), "kind": item.get("kind"), "metadata": kept}
    for key in ("spec", "specs"):
        if item.get(key) is not None:
            manifest[key] = copy.deepcopy(item[key])
    return manifest


def _is_managed(manifest):
    return ((manifest.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def cluster_world(cluster, workloads):
    """Apply mode: namespaces, pods and policies as k8s_info returned them."""
    cluster = _mapping(cluster, "cluster", WHERE)
    _known_fields(cluster, "cluster", WHERE, ("namespaces", "pods", "policies"))
    namespaces = {}
    for index, item in enumerate(_sequence(cluster.get("namespaces"), "cluster.namespaces", WHERE, allow_none=True)):
        metadata = _mapping(_mapping(item, "cluster.namespaces[%d]" % index, WHERE).get("metadata"),
                            "cluster.namespaces[%d].metadata" % index, WHERE)
        name = metadata.get("name")
        labels = dict(metadata.get("labels") or {})
        labels[LABEL_NS_NAME] = name
        namespaces[name] = labels
    pods = []
    groups = {}
    for index, item in enumerate(_sequence(cluster.get("pods"), "cluster.pods", WHERE, allow_none=True)):
        item = _mapping(item, "cluster.pods[%d]" % index, WHERE)
        metadata = item.get("metadata") or {}
        spec = item.get("spec") or {}
        status = item.get("status") or {}
        if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
            continue  # host-network pods are the node's identity; finished pods have no endpoint
        namespace = metadata.get("namespace")
        if namespace not in namespaces:
            continue
        ports = []
        names = set()
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for port in container.get("ports") or []:
                entry = {"port": port.get("containerPort"), "protocol": port.get("protocol", "TCP")}
                if port.get("name") and port["name"] not in names:
                    names.add(port["name"])
                    entry["name"] = port["name"]
                ports.append(entry)
        pod = {
            "namespace": namespace,
            "name": metadata.get("name"),
            "ref": "%s/%s" % (namespace, metadata.get("name")),
            "labels": dict(metadata.get("labels") or {}),
            "ports": ports,
            "service_account": spec.get("serviceAccountName") or "default",
        }
        if status.get("podIP"):
            pod["ip"] = status["podIP"]
        pods.append(pod)
        group = pod["ref"]
        for workload in workloads.get(namespace, {}).values():
            if all(pod["labels"].get(key) == value for key, value in workload.labels.items()):
                group = workload.ref
                break
        groups[pod["ref"]] = group
    existing = []
    managed_existing = []
    for index, item in enumerate(_sequence(cluster.get("policies"), "cluster.policies", WHERE, allow_none=True)):
        manifest = _strip_manifest(_mapping(item, "cluster.policies[%d]" % index, WHERE))
        (managed_existing if _is_managed(manifest) else existing).append(manifest)
    return World("apply", namespaces, pods, groups, existing, managed_existing)


def _engine_pods(world):
    result = []
    for pod in world.pods:
        entry = {key: pod[key] for key in ("namespace", "name", "labels", "service_account") if key in pod}
        entry["ports"] = [dict(port) for port in pod["ports"]]
        if pod.get("ip"):
            entry["ip"] = pod["ip"]
        result.append(entry)
    return result


# --------------------------------------------------------------------------- generation


def _metadata(name, namespace, purpose, flow=None):
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PURPOSE_LABEL: purpose}
    if flow:
        labels[FLOW_LABEL] = flow
    metadata = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = labels
    return metadata


def _np(name, namespace, purpose, spec, flow=None):
    return {"apiVersion": "networking.k8s.io/v1", "kind": KIND_NP,
            "metadata": _metadata(name, namespace, purpose, flow), "spec": spec}


def _cnp(name, namespace, purpose, spec, flow=None, kind=KIND_CNP):
    return {"apiVersion": "cilium.io/v2", "kind": kind,
            "metadata": _metadata(name, namespace, purpose, flow), "spec": spec}


def _pod_selector(end):
    return copy.deepcopy(end.selector) if end.selector else {}


def _np_peer(end, policy_namespace):
    peer = {}
    if end.namespace != policy_namespace:
        peer["namespaceSelector"] = {"matchLabels": {LABEL_NS_NAME: end.namespace}}
        if end.selector:
            peer["podSelector"] = _pod_selector(end)
    else:
        peer["podSelector"] = _pod_selector(end)
    return peer


def _cilium_peer(end):
    selector = _pod_selector(end)
    labels = dict(selector.get("matchLabels", {}))
    labels[CILIUM_NAMESPACE_KEY] = end.namespace
    selector["matchLabels"] = dict(sorted(labels.items()))
    return selector


def _np_ports(ports):
    result = []
    for port in ports:
        entry = {"protocol": port.protocol, "port": port.name if port.name is not None else port.port}
        if port.end_port is not None:
            entry["endPort"] = port.end_port
        result.append(entry)
    return result


def _cilium_ports(ports):
    result = []
    for port in ports:
        entry = {"port": port.name if port.name is not None else str(port.port), "protocol": port.protocol}
        if port.end_port is not None:
            entry["endPort"] = port.end_port
        result.append(entry)
    return result


def _dns_ports(protocols=("UDP", "TCP")):
    return [FlowPort(protocol, 53) for protocol in protocols]


def _flow_objects(flow, spec):
    objects = []
    cilium = bool(flow.http or flow.fqdns)
    source = flow.source
    destination = flow.destination
    source_side = spec.enforced(source.namespace)
    destination_side = destination is not None and spec.enforced(destination.namespace)
    summary = "%s -> %s on %s" % (source.display, flow.target, ", ".join(port.describe() for port in flow.ports))
    if flow.l7:
        summary += " (%s)" % flow.l7
    note = " " + flow.description.strip() if flow.description.strip() else ""
    if source_side:
        name = "%sflow-%s-egress" % (NAME_PREFIX, flow.name)
        description = "Flow %s, egress side: %s.%s" % (flow.name, summary, note)
        if cilium:
            to_ports = {"ports": _cilium_ports(flow.ports)}
            if flow.http and not destination_side:
                to_ports["rules"] = {"http": [dict(rule) for rule in flow.http]}
            if flow.fqdns:
                rule = {"toFQDNs": [{key: value} for key, value in flow.fqdns], "toPorts": [to_ports]}
            else:
                rule = {"toEndpoints": [_cilium_peer(destination)], "toPorts": [to_ports]}
            manifest = _cnp(name, source.namespace, "flow",
                            {"endpointSelector": _pod_selector(source), "egress": [rule]}, flow.name)
            objects.append(PolicyObject(source.namespace, KIND_CNP, name, "flow", description, manifest, flow.name))
        else:
            manifest = _np(name, source.namespace, "flow", {
                "podSelector": _pod_selector(source),
                "policyTypes": ["Egress"],
                "egress": [{"to": [_np_peer(destination, source.namespace)], "ports": _np_ports(flow.ports)}],
            }, flow.name)
            objects.append(PolicyObject(source.namespace, KIND_NP, name, "flow", description, manifest, flow.name))
    if destination_side:
        name = "%sflow-%s-ingress" % (NAME_PREFIX, flow.name)
        description = "Flow %s, ingress side: %s.%s" % (flow.name, summary, note)
        if cilium:
            to_ports = {"ports": _cilium_ports(flow.ports)}
            if flow.http:
                to_ports["rules"] = {"http": [dict(rule) for rule in flow.http]}
            manifest = _cnp(name, destination.namespace, "flow", {
                "endpointSelector": _pod_selector(destination),
                "ingress": [{"fromEndpoints": [_cilium_peer(source)], "toPorts": [to_ports]}],
            }, flow.name)
            objects.append(
                PolicyObject(destination.namespace, KIND_CNP, name, "flow", description, manifest, flow.name)
            )
        else:
            manifest = _np(name, destination.namespace, "flow", {
                "podSelector": _pod_selector(destination),
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [_np_peer(source, destination.namespace)], "ports": _np_ports(flow.ports)}],
            }, flow.name)
            objects.append(
                PolicyObject(destination.namespace, KIND_NP, name, "flow", description, manifest, flow.name)
            )
    return objects


def _dns_object(namespace, spec):
    dns = spec.dns
    fqdn_flows = [flow.name for flow in spec.flows if flow.fqdns and flow.source.namespace == namespace]
    name = NAME_PREFIX + "allow-dns"
    dns_end = FlowEnd(dns.namespace, None, dns.selector, "%s/%s" % (dns.namespace, _describe_selector(dns.selector)))
    targets = dns_end.display + (" and NodeLocal DNS %s" % dns.nodelocal_ip if dns.nodelocal_ip else "")
    if not fqdn_flows and not dns.nodelocal_ip:
        manifest = _np(name, namespace, "dns", {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [_np_peer(dns_end, namespace)], "ports": _np_ports(_dns_ports())}],
        })
        description = "DNS egress of every pod in %s to %s on 53/UDP and 53/TCP." % (namespace, targets)
        return PolicyObject(namespace, KIND_NP, name, "dns", description, manifest)
    to_ports = {"ports": _cilium_ports(_dns_ports())}
    if fqdn_flows:
        # toFQDNs learns addresses from the DNS answers Cilium's DNS proxy sees: the DNS
        # egress must go through the proxy (a DNS rule), never around it (an L4 allow).
        to_ports["rules"] = {"dns": [{"matchPattern": "*"}]}
    rules = [{"toEndpoints": [_cilium_peer(dns_end)], "toPorts": [copy.deepcopy(to_ports)]}]
    if dns.nodelocal_ip:
        prefix = 32 if ipaddress.ip_address(dns.nodelocal_ip).version == 4 else 128
        # A host-network NodeLocal DNS address is identified as the host or as an outside
        # address depending on when Cilium saw it on the node (cilium/cilium#18644): allow both.
        rules.append({"toCIDR": ["%s/%d" % (dns.nodelocal_ip, prefix)], "toPorts": [copy.deepcopy(to_ports)]})
        rules.append({"toEntities": ["host"], "toPorts": [copy.deepcopy(to_ports)]})
    manifest = _cnp(name, namespace, "dns", {"endpointSelector": {}, "egress": rules})
    description = "DNS egress of every pod in %s to %s on 53/UDP and 53/TCP%s." % (
        namespace,
        targets,
        ", through Cilium's DNS proxy so that the DNS-name flows (%s) work" % ", ".join(fqdn_flows)
        if fqdn_flows else "",
    )
    return PolicyObject(namespace, KIND_CNP, name, "dns", description, manifest)


def generate(spec):
    """The policy set for ``spec``, as :class:`PolicyObject` items in a stable order."""
    objects = []
    for namespace in spec.managed:
        manifest = _np(NAME_PREFIX + "default-deny", namespace, "default-deny",
                       {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        objects.append(PolicyObject(
            namespace, KIND_NP, NAME_PREFIX + "default-deny", "default-deny",
            "Default deny: isolates every pod in %s for ingress and egress." % namespace, manifest,
        ))
        objects.append(_dns_object(namespace, spec))
    if spec.enforced(spec.dns.namespace):
        name = NAME_PREFIX + "allow-dns-ingress"
        manifest = _np(name, spec.dns.namespace, "dns-ingress", {
            "podSelector": copy.deepcopy(spec.dns.selector),
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchExpressions": [
                    {"key": LABEL_NS_NAME, "operator": "In", "values": sorted(spec.managed)}]}}],
                "ports": _np_ports(_dns_ports()),
            }],
        })
        objects.append(PolicyObject(
            spec.dns.namespace, KIND_NP, name, "dns-ingress",
            "DNS ingress of %s from the managed namespaces (%s): the DNS namespace is isolated too."
            % (_describe_selector(spec.dns.selector), ", ".join(spec.managed)), manifest,
        ))
    for end in spec.api_access:
        suffix = end.workload or "all"
        name = "%sapiserver-%s" % (NAME_PREFIX, suffix)
        manifest = _cnp(name, end.namespace, "apiserver", {
            "endpointSelector": _pod_selector(end),
            "egress": [{"toEntities": ["kube-apiserver"],
                        "toPorts": [{"ports": _cilium_ports([FlowPort("TCP", spec.api_server_port)])}]}],
        })
        objects.append(PolicyObject(
            end.namespace, KIND_CNP, name, "apiserver",
            "API server egress of %s on %d/TCP." % (end.display, spec.api_server_port), manifest,
        ))
    if spec.mode == "always":
        name = NAME_PREFIX + "allow-health"
        manifest = _cnp(name, None, "health", {
            "endpointSelector": {"matchLabels": {"reserved:health": ""}},
            "ingress": [{"fromEntities": ["remote-node"]}],
            "egress": [{"toEntities": ["remote-node"]}],
        }, kind=KIND_CCNP)
        objects.append(PolicyObject(
            None, KIND_CCNP, name, "health",
            "Cilium health checks between nodes: policyEnforcementMode always isolates the health endpoints.",
            manifest,
        ))
    for flow in spec.flows:
        objects.extend(_flow_objects(flow, spec))
    for manifest in spec.extras:
        metadata = manifest["metadata"]
        objects.append(PolicyObject(
            metadata.get("namespace"), manifest["kind"], metadata["name"], "extra",
            "Extra policy opted into by the user.", manifest,
        ))
    seen = {}
    for position, item in enumerate(objects):
        key = (item.kind, item.namespace, item.name)
        if key in seen:
            raise InvalidInput(
                "extra_policies", item.display, "has the name of another object of the set", where=WHERE
            )
        seen[key] = position
    order = {purpose: position for position, purpose in enumerate(PURPOSES)}
    objects.sort(key=lambda item: (item.namespace or "", order[item.purpose], item.name))
    return objects


# --------------------------------------------------------------------------- proof


@dataclass
class Verdicts:
    """Engine answers per ``(from, to, port, protocol)``: allowed, restricted or denied."""

    answers: Dict[Tuple[str, str, int, str], Tuple[str, list]] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)

    def get(self, source, destination, port, protocol):
        return self.answers.get((source, destination, port, protocol), (None, None))


def _run_engine(world, policies, probes, spec, explain=None):
    probes = [probe for probe in probes if probe["from"] and probe["to"]]
    verdicts = Verdicts()
    if not probes:
        return verdicts, []
    result = plan_reachability(
        world.namespaces,
        _engine_pods(world),
        policies,
        probes=probes,
        policy_enforcement_mode=spec.mode,
        explain=explain or [],
        cluster_name=spec.cluster_name,
        allow_localhost=spec.allow_localhost,
        report_pairs=True,
    )
    for entry in result["reachability"]:
        port = entry["port"]
        protocol = entry["protocol"]
        for source, destination in entry["allowed"]:
            verdicts.answers[(source, destination, port, protocol)] = ("allowed", None)
        for source, destination in entry["denied"]:
            verdicts.answers[(source, destination, port, protocol)] = ("denied", None)
        for item in entry["restricted"]:
            verdicts.answers[(item["from"], item["to"], port, protocol)] = ("restricted", item["rules"])
    verdicts.warnings = list(result["warnings"])
    return verdicts, result["explain"]


def _port_numbers(flow_port, destination_pods, pods_by_ref):
    """Numbers to probe for one flow port: the port (and the end of a range), or the named
    port resolved on each destination pod.  Returns ``{number: [destination refs]}``."""
    if flow_port.name is None:
        numbers = [flow_port.port] + ([flow_port.end_port] if flow_port.end_port is not None else [])
        return {number: list(destination_pods) for number in numbers}
    result = {}
    for ref in destination_pods:
        for item in pods_by_ref[ref]["ports"] if ref in pods_by_ref else []:
            if item.get("name") == flow_port.name and item.get("protocol", "TCP") == flow_port.protocol:
                result.setdefault(item["port"], []).append(ref)
    return result


def _restriction(rules):
    kinds = set()
    for rule in rules or []:
        kinds.update((rule.get("l7") or {}).keys())
    return kinds


def _declared_probes(spec, world, dns_targets, managed_pods):
    """Probes for what must be allowed, with the expectation for each pair."""
    pods_by_ref = {pod["ref"]: pod for pod in world.pods}
    expected = []  # (kind, label, probe, expectation)
    for flow in spec.flows:
        for flow_port in flow.ports:
            if flow.destination is None:
                probe = {"port": flow_port.port, "protocol": flow_port.protocol,
                         "from": list(flow.source.pods), "to": ["entity:world"]}
                expected.append((flow, flow_port, probe))
                if flow_port.end_port is not None:
                    expected.append((flow, flow_port, dict(probe, port=flow_port.end_port)))
                continue
            for number, destinations in sorted(_port_numbers(flow_port, flow.destination.pods, pods_by_ref).items()):
                probe = {"port": number, "protocol": flow_port.protocol,
                         "from": list(flow.source.pods), "to": destinations}
                expected.append((flow, flow_port, probe))
    dns_probes = [
        {"port": 53, "protocol": protocol, "from": list(managed_pods), "to": list(dns_targets)}
        for protocol in ("UDP", "TCP")
    ]
    return expected, dns_probes


def _sweep_ports(spec, world):
    ports = set()
    for pod in world.pods:
        for item in pod["ports"]:
            ports.add((item["port"], item.get("protocol", "TCP")))
    for flow in spec.flows:
        for flow_port in flow.ports:
            if flow_port.name is None:
                ports.add((flow_port.port, flow_port.protocol))
                if flow_port.end_port is not None:
                    ports.add((flow_port.end_port, flow_port.protocol))
    ports.update({(53, "UDP"), (53, "TCP"), (spec.api_server_port, "TCP")})
    protocol_order = {"TCP": 0, "UDP": 1, "SCTP": 2}
    return sorted(ports, key=lambda item: (protocol_order.get(item[1], 3), item[0]))


def _sweep_probes(spec, world, managed_pods, extra_targets):
    """Every connection to or from a managed pod: what may be allowed only if declared."""
    managed = set(managed_pods)
    probes = []
    all_pods = [pod["ref"] for pod in world.pods]
    for port, protocol in _sweep_ports(spec, world):
        serving = [
            pod["ref"] for pod in world.pods
            if any(item["port"] == port and item.get("protocol", "TCP") == protocol for item in pod["ports"])
        ]
        inbound = [ref for ref in serving if ref in managed]
        probes.append({"port": port, "protocol": protocol, "from": all_pods + ["entity:world"], "to": inbound})
        outbound = [ref for ref in serving if ref not in managed] + ["entity:world"]
        outbound += extra_targets.get((port, protocol), [])
        probes.append({"port": port, "protocol": protocol, "from": list(managed_pods), "to": outbound})
    return probes


class _Declared:
    """Which (from, to, port, protocol) pairs the user declared (flows, DNS, API server)."""

    def __init__(self, spec, world, dns_targets, managed_pods):
        pods_by_ref = {pod["ref"]: pod for pod in world.pods}
        self.flows = []
        for flow in spec.flows:
            destinations = flow.destination.pods if flow.destination is not None else ["entity:world"]
            self.flows.append((flow, set(flow.source.pods), set(destinations)))
        self.pods_by_ref = pods_by_ref
        self.dns = (set(managed_pods), set(dns_targets))
        self.api = set()
        for end in spec.api_access:
            self.api.update(end.pods)
        self.api_port = spec.api_server_port

    def why(self, source, destination, port, protocol):
        """The reason a pair is declared, or None."""
        for flow, sources, destinations in self.flows:
            if source in sources and destination in destinations:
                names = ()
                if destination in self.pods_by_ref:
                    names = [
                        item.get("name") for item in self.pods_by_ref[destination]["ports"]
                        if item["port"] == port and item.get("protocol", "TCP") == protocol and item.get("name")
                    ]
                if any(flow_port.covers(port, protocol, names) for flow_port in flow.ports):
                    return "flow %s" % flow.name
        if port == 53 and source in self.dns[0] and destination in self.dns[1]:
            return "DNS"
        if (destination == "entity:kube-apiserver" and port == self.api_port and protocol == "TCP"
                and source in self.api):
            return "API server access"
        return None


def _explain_text(entry):
    sides = []
    for side_name in ("egress", "ingress"):
        side = entry.get(side_name) or {}
        for item in side.get("allowed_by") or []:
            sides.append("%s (%s)" % (item["policy"], side_name))
    return sides


def prove(spec, world, objects):
    """Run the engine on the set to be applied plus what stays; return the proof."""
    generated = [item.manifest for item in objects]
    policies = generated + list(world.existing)
    managed_pods = [pod["ref"] for pod in world.pods if pod["namespace"] in spec.managed]
    managed = set(managed_pods)
    dns_pods = [pod["ref"] for pod in _selected(spec.dns.selector, world.pods_in(spec.dns.namespace))]
    if not dns_pods:
        raise InvalidInput(
            "dns.selector",
            _describe_selector(spec.dns.selector),
            "selects no pod in namespace %s, so DNS cannot be proven; declare the DNS workload "
            "(workloads[%r]) or fix the selector" % (spec.dns.namespace, spec.dns.namespace),
            where=WHERE,
        )
    dns_targets = list(dns_pods)
    if spec.dns.nodelocal_ip:
        dns_targets += ["cidr:%s" % spec.dns.nodelocal_ip, "entity:host"]
    extra_targets = {(spec.api_server_port, "TCP"): ["entity:kube-apiserver"]}
    if spec.dns.nodelocal_ip:
        for protocol in ("UDP", "TCP"):
            extra_targets[(53, protocol)] = ["cidr:%s" % spec.dns.nodelocal_ip, "entity:host"]

    flow_probes, dns_probes = _declared_probes(spec, world, dns_targets, managed_pods)
    sweep = _sweep_probes(spec, world, managed_pods, extra_targets)
    all_probes = [probe for _flow, _port, probe in flow_probes] + dns_probes + sweep
    verdicts = _run_engine(world, policies, all_probes, spec)[0]
    baseline = None
    if spec.extras:
        without_extras = [item.manifest for item in objects if item.purpose != "extra"] + list(world.existing)
        baseline = _run_engine(world, without_extras, sweep, spec)[0]

    declared = _Declared(spec, world, dns_targets, managed_pods)
    violations = []
    flow_results = {flow.name: {"allowed": 0, "restricted": 0, "denied": 0} for flow in spec.flows}
    for flow, flow_port, probe in flow_probes:
        for source in probe["from"]:
            for destination in probe["to"]:
                if source == destination:
                    continue
                verdict, rules = verdicts.get(source, destination, probe["port"], probe["protocol"])
                counts = flow_results[flow.name]
                key = (_group(source, world), _group(destination, world))
                if verdict == "denied":
                    counts["denied"] += 1
                    violations.append(_violation("declared_denied", source, destination, probe, key, flow=flow.name))
                    continue
                counts["restricted" if verdict == "restricted" else "allowed"] += 1
                kinds = _restriction(rules)
                if flow.http and "http" not in kinds:
                    violations.append(_violation(
                        "l7_shadowed", source, destination, probe, key, flow=flow.name,
                        detail="The HTTP rules (%s) have no effect: an L4 allow for the same pods and port wins"
                        % "; ".join(_describe_http(rule) for rule in flow.http),
                    ))
    fqdn_sources = set()
    for flow in spec.flows:
        if flow.fqdns:
            fqdn_sources.update(flow.source.pods)
    dns_results = {"allowed": 0, "restricted": 0, "denied": 0}
    for probe in dns_probes:
        for source in probe["from"]:
            for destination in probe["to"]:
                verdict, rules = verdicts.get(source, destination, 53, probe["protocol"])
                key = (_group(source, world), _group(destination, world))
                if verdict == "denied":
                    dns_results["denied"] += 1
                    violations.append(_violation("dns_lost", source, destination, probe, key))
                    continue
                dns_results["restricted" if verdict == "restricted" else "allowed"] += 1
                if source in fqdn_sources and destination in dns_pods and "dns" not in _restriction(rules):
                    violations.append(_violation(
                        "l7_shadowed", source, destination, probe, key,
                        detail="DNS of a pod with DNS-name flows bypasses Cilium's DNS proxy, so toFQDNs never "
                        "learns the addresses: an L4 allow on port 53 wins over the DNS rule",
                    ))
    api_results = {"allowed": 0, "denied": 0}
    for source in sorted(declared.api):
        verdict = verdicts.get(source, "entity:kube-apiserver", spec.api_server_port, "TCP")[0]
        probe = {"port": spec.api_server_port, "protocol": "TCP"}
        if verdict == "denied":
            api_results["denied"] += 1
            violations.append(_violation(
                "declared_denied", source, "entity:kube-apiserver", probe,
                (_group(source, world), "kube-apiserver"), flow="api-server-access",
            ))
        else:
            api_results["allowed"] += 1

    opted_in = []
    for probe in sweep:
        for source in probe["from"]:
            for destination in probe["to"]:
                if source == destination or (source not in managed and destination not in managed):
                    continue
                verdict = verdicts.get(source, destination, probe["port"], probe["protocol"])[0]
                if verdict in (None, "denied"):
                    continue
                if declared.why(source, destination, probe["port"], probe["protocol"]):
                    continue
                key = (_group(source, world), _group(destination, world))
                entry = _violation("undeclared_allowed", source, destination, probe, key)
                if baseline is not None and baseline.get(source, destination, probe["port"],
                                                         probe["protocol"])[0] in (None, "denied"):
                    opted_in.append(entry)
                else:
                    violations.append(entry)

    violations = _aggregate(violations)
    opted_in = _aggregate(opted_in)
    _attach_explanations(violations, world, policies, spec)
    matrix = _matrix(all_probes, verdicts, world)
    flows = []
    for flow in spec.flows:
        counts = flow_results[flow.name]
        if counts["denied"]:
            verdict = "denied"
        elif not counts["allowed"] and not counts["restricted"]:
            verdict = "no pods"
        elif counts["restricted"] and not counts["allowed"]:
            verdict = "allowed, restricted at L7" if flow.http else "allowed, restricted to the DNS names"
        else:
            verdict = "allowed"
        flows.append({
            "name": flow.name,
            "from": flow.source.display,
            "to": flow.target,
            "ports": [port.describe() for port in flow.ports],
            "l7": flow.l7,
            "http": [dict(rule) for rule in flow.http],
            "fqdns": [value for _kind, value in flow.fqdns],
            "pairs": counts,
            "verdict": verdict,
        })
    expected_allowed = _expected_allowed(spec)
    return {
        "ok": not violations,
        "violations": violations,
        "opted_in": opted_in,
        "flows": flows,
        "dns": {
            "namespace": spec.dns.namespace,
            "selector": _describe_selector(spec.dns.selector),
            "servers": dns_pods,
            "nodelocal_ip": spec.dns.nodelocal_ip,
            "pairs": dns_results,
        },
        "api_server": {
            "port": spec.api_server_port,
            "access": [end.display for end in spec.api_access],
            "pairs": api_results,
        },
        "matrix": matrix,
        "expected_allowed": expected_allowed,
        "warnings": sorted(set(verdicts.warnings)),
    }


def _violation(kind, source, destination, probe, key, flow=None, detail=None):
    entry = {
        "kind": kind,
        "from": key[0],
        "to": key[1],
        "port": probe["port"],
        "protocol": probe["protocol"],
        "example": [source, destination],
    }
    if flow:
        entry["flow"] = flow
    if detail:
        entry["detail"] = detail
    return entry


def _aggregate(entries):
    """One entry per (kind, flow, from group, to group, port, protocol), with a pair count."""
    merged = {}
    for entry in entries:
        key = (entry["kind"], entry.get("flow", ""), entry["from"], entry["to"], entry["port"], entry["protocol"])
        if key in merged:
            merged[key]["pairs"] += 1
        else:
            merged[key] = dict(entry, pairs=1)
    kind_order = {kind: position for position, kind in enumerate(VIOLATION_KINDS)}
    return sorted(merged.values(), key=lambda item: (
        kind_order.get(item["kind"], 9), item.get("flow", ""), item["from"], item["to"], item["protocol"],
        item["port"],
    ))


def _attach_explanations(violations, world, policies, spec):
    """Say why, for the first violations: which policies allow, or which side denies."""
    requests = []
    for entry in violations[:_EXPLAIN_MAX]:
        requests.append(entry)
    if not requests:
        return
    probes = [{"port": entry["port"], "protocol": entry["protocol"], "from": [entry["example"][0]],
               "to": [entry["example"][1]]} for entry in requests]
    explain = [[entry["example"][0], entry["example"][1], entry["port"], entry["protocol"]] for entry in requests]
    explained = _run_engine(world, policies, probes, spec, explain=explain)[1]
    for entry, answer in zip(requests, explained):
        entry["reason"] = answer["reason"]
        if entry["kind"] in ("undeclared_allowed", "l7_shadowed"):
            entry["allowed_by"] = _explain_text(answer)


def _cell(answers):
    if not answers:
        return "–"
    kinds = set(verdict for verdict, _rules in answers)
    if kinds == {"denied"}:
        return "denied"
    if "denied" in kinds:
        return "partly"
    if kinds == {"allowed"}:
        return "allowed"
    restrictions = set()
    for verdict, rules in answers:
        if verdict == "restricted":
            restrictions.update(_restriction(rules))
        else:
            restrictions.add("L4")
    if "L4" in restrictions:
        return "partly L7"
    labels = {"http": "HTTP", "dns": "DNS", "toFQDNs": "FQDN"}
    return "allowed (%s)" % "+".join(sorted(labels.get(kind, kind) for kind in restrictions))


def _group(ref, world):
    """The matrix row or column of an endpoint: its workload group, entity name or address."""
    if ref.startswith("entity:"):
        return ref[len("entity:"):]
    if ref.startswith("cidr:"):
        return ref[len("cidr:"):]
    return world.groups.get(ref, ref)


def _matrix(probes, verdicts, world):
    """Per port: rows are source groups, columns destination groups, cells the verdict."""
    tables = {}
    for probe in probes:
        key = (probe["port"], probe["protocol"])
        table = tables.setdefault(key, {})
        for source in probe["from"]:
            for destination in probe["to"]:
                if source == destination:
                    continue
                answer = verdicts.get(source, destination, probe["port"], probe["protocol"])
                if answer[0] is None:
                    continue
                cell = table.setdefault((_group(source, world), _group(destination, world)), {})
                cell[(source, destination)] = answer
    result = []
    protocol_order = {"TCP": 0, "UDP": 1, "SCTP": 2}
    for (port, protocol) in sorted(tables, key=lambda item: (protocol_order.get(item[1], 3), item[0])):
        table = tables[(port, protocol)]
        if not table:
            continue
        rows = sorted({row for row, _column in table}, key=_group_order)
        columns = sorted({column for _row, column in table}, key=_group_order)
        result.append({
            "port": port,
            "protocol": protocol,
            "columns": columns,
            "rows": [
                {"from": row, "cells": [
                    _cell(list(table[(row, column)].values())) if (row, column) in table
                    else ("–" if row == column and "/" in row else "·")
                    for column in columns
                ]}
                for row in rows
            ],
        })
    return result


def _group_order(name):
    return ("/" not in name, name)


def _expected_allowed(spec):
    """What must pass once enforced, by selector (pods may be replaced): for the post-apply check."""
    expected = []
    for flow in spec.flows:
        entry = {
            "flow": flow.name,
            "from": {"namespace": flow.source.namespace, "selector": flow.source.selector or {}},
            "ports": [
                {"protocol": port.protocol, "port": port.port, "end_port": port.end_port, "name": port.name}
                for port in flow.ports
            ],
        }
        if flow.destination is not None:
            entry["to"] = {"namespace": flow.destination.namespace, "selector": flow.destination.selector or {}}
        else:
            entry["to"] = "world"
        expected.append(entry)
    for namespace in spec.managed:
        expected.append({
            "flow": "dns",
            "from": {"namespace": namespace, "selector": {}},
            "to": {"namespace": spec.dns.namespace, "selector": spec.dns.selector},
            "ports": [{"protocol": protocol, "port": 53, "end_port": None, "name": None}
                      for protocol in ("UDP", "TCP")],
        })
    for end in spec.api_access:
        expected.append({
            "flow": "api-server-access",
            "from": {"namespace": end.namespace, "selector": end.selector or {}},
            "to": "kube-apiserver",
            "ports": [{"protocol": "TCP", "port": spec.api_server_port, "end_port": None, "name": None}],
        })
    return expected


# --------------------------------------------------------------------------- apply-mode bookkeeping


def _contains(actual, desired):
    """Whether ``actual`` (as the API server returns it) has everything ``desired`` asks for."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(_contains(left, right) for left, right in zip(actual, desired)))
    return actual == desired


def changes(objects, world):
    """What applying the set changes in the cluster.

    ``create`` (objects the cluster does not have: a restore deletes them), ``update`` and
    ``unchanged`` (displays), ``delete`` (objects a previous run applied that the set no longer
    has), and ``changed``.
    """
    current = {}
    for manifest in world.managed_existing:
        metadata = manifest.get("metadata") or {}
        current[(manifest.get("kind"), metadata.get("namespace"), metadata.get("name"))] = manifest
    result = {"create": [], "update": [], "delete": [], "unchanged": []}
    wanted = set()
    for item in objects:
        key = (item.kind, item.namespace, item.name)
        wanted.add(key)
        existing = current.get(key)
        if existing is None:
            result["create"].append({
                "apiVersion": item.manifest["apiVersion"],
                "kind": item.kind,
                "namespace": item.namespace,
                "name": item.name,
                "display": item.display,
            })
        elif _contains(existing, item.manifest):
            result["unchanged"].append(item.display)
        else:
            result["update"].append(item.display)
    for key, manifest in sorted(current.items(), key=lambda item: tuple(part or "" for part in item[0])):
        if key not in wanted:
            metadata = manifest.get("metadata") or {}
            result["delete"].append({
                "apiVersion": manifest.get("apiVersion"),
                "kind": key[0],
                "namespace": key[1],
                "name": key[2],
                "display": ("%s %s/%s" % key) if key[1] else "%s %s" % (key[0], key[2]),
                "labels": dict(metadata.get("labels") or {}),
            })
    result["changed"] = bool(result["create"] or result["update"] or result["delete"])
    return result


def backup(world, managed):
    """The policies the cluster has now where the set will change things, to restore them."""
    items = []
    for manifest in list(world.existing) + list(world.managed_existing):
        metadata = manifest.get("metadata") or {}
        namespace = metadata.get("namespace")
        if namespace is not None and namespace not in managed:
            continue
        if namespace is None and not _is_managed(manifest):
            continue
        items.append({
            "file": "%s/%s-%s.yaml" % (namespace or CLUSTERWIDE_DIR, manifest.get("kind", "").lower(),
                                       metadata.get("name")),
            "managed": _is_managed(manifest),
            "manifest": manifest,
        })
    items.sort(key=lambda item: item["file"])
    return items


# --------------------------------------------------------------------------- entry point


def plan_policies(
    managed_namespaces,
    flows,
    workloads=None,
    cluster=None,
    existing_policies=None,
    dns=None,
    api_server_access=None,
    api_server_port=6443,
    policy_enforcement_mode="default",
    extra_policies=None,
    cluster_name="default",
    allow_localhost=True,
    validate_manifest=None,
):
    """Generate the policy set for the declared flows and prove it before anything is applied.

    :param managed_namespaces: namespaces that get the default deny and the baseline allows.
    :param flows: declared flows (see ``docs/network-policy.md``).
    :param workloads: ``{namespace: [{name, labels, ports, replicas, service_account}]}``.
    :param cluster: ``{namespaces, pods, policies}`` as k8s_info returns them (apply mode);
        without it the pods are made up from ``workloads`` (render mode).
    :param existing_policies: render mode: the policies the cluster already has (they stay and
        take part in the proof).  Apply mode reads them from ``cluster``.
    :param dns: ``{namespace, selector, nodelocal_ip}``; default kube-system, k8s-app=kube-dns.
    :param api_server_access: workloads (``namespace/workload``) or namespaces that reach the API server.
    :param api_server_port: the API server port pods reach after service translation.
    :param policy_enforcement_mode: Cilium's ``policyEnforcementMode`` (default or always).
    :param extra_policies: manifests the user opts into; applied with the set and proven with it.
    :param validate_manifest: callable raising ``InvalidInput`` for a manifest the API server refuses.
    :returns: dict with ``objects``, ``proof``, ``report``, and in apply mode ``changes`` and ``backup``.
    """
    if policy_enforcement_mode not in ENFORCEMENT_MODES:
        raise InvalidInput("policy_enforcement_mode", policy_enforcement_mode,
                           "is not one of: %s" % ", ".join(ENFORCEMENT_MODES), where=WHERE)
    if policy_enforcement_mode == "never":
        raise InvalidInput(
            "policy_enforcement_mode", "never",
            "enforces no policy at all, so a default deny can never hold; use default or always", where=WHERE,
        )
    if not isinstance(allow_localhost, bool):
        raise InvalidInput("allow_localhost", allow_localhost, "must be a boolean", where=WHERE)
    api_server_port = _whole_number(api_server_port, "api_server_port", WHERE, 1, 65535)
    managed = parse_managed_namespaces(managed_namespaces)
    declared_workloads = parse_workloads(workloads)
    dns_config = parse_dns(dns)
    if cluster is None:
        world = render_world(managed, declared_workloads, dns_config, existing_policies)
    else:
        if existing_policies:
            raise InvalidInput("existing_policies", len(existing_policies),
                               "must be empty in apply mode: the policies are read from the cluster", where=WHERE)
        world = cluster_world(cluster, declared_workloads)
        for index, namespace in enumerate(managed):
            if namespace not in world.namespaces:
                raise InvalidInput("managed_namespaces[%d]" % index, namespace,
                                   "is not a namespace of the cluster", where=WHERE)
        for namespace in declared_workloads:
            if namespace not in world.namespaces:
                raise InvalidInput("workloads", namespace, "is not a namespace of the cluster", where=WHERE)
    warnings = []
    parsed_flows = parse_flows(flows, managed, declared_workloads, world)
    for flow in parsed_flows:
        for end, side in ((flow.source, "from"), (flow.destination, "to")):
            if end is not None and not end.pods:
                warnings.append("flow %s: %s %s selects no pod; nothing to prove for it" % (
                    flow.name, side, end.display))
    spec = Spec(
        managed=managed,
        workloads=declared_workloads,
        flows=parsed_flows,
        dns=dns_config,
        api_access=parse_api_access(api_server_access, managed, declared_workloads, world),
        api_server_port=api_server_port,
        mode=policy_enforcement_mode,
        extras=parse_extra_policies(extra_policies, managed, policy_enforcement_mode),
        cluster_name=cluster_name,
        allow_localhost=allow_localhost,
    )
    objects = generate(spec)
    if validate_manifest is not None:
        problems = []
        for item in objects:
            try:
                validate_manifest(item.manifest)
            except InvalidInput as exc:
                problems.append(exc)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise InvalidInputs(problems, where=WHERE)
    proof = prove(spec, world, objects)
    proof["warnings"] = warnings + proof["warnings"]
    result = {
        "objects": [item.as_dict() for item in objects],
        "proof": proof,
        "summary": _summary(spec, world, objects, proof),
    }
    if cluster is not None:
        result["changes"] = changes(objects, world)
        result["backup"] = backup(world, managed)
    result["report"] = render_report(result, spec, world)
    return result


def _summary(spec, world, objects, proof):
    kinds = {}
    for item in objects:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    return {
        "mode": world.mode,
        "managed_namespaces": list(spec.managed),
        "objects": len(objects),
        "kinds": kinds,
        "flows": len(spec.flows),
        "pods": len(world.pods),
        "managed_pods": sum(1 for pod in world.pods if pod["namespace"] in spec.managed),
        "existing_policies": len(world.existing),
        "policy_enforcement_mode": spec.mode,
        "violations": len(proof["violations"]),
    }


# --------------------------------------------------------------------------- report


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    return lines


def _violation_line(entry):
    text = "**%s**" % entry["kind"]
    if entry.get("flow"):
        text += " (flow %s)" % entry["flow"]
    text += ": %s -> %s on %d/%s" % (entry["from"], entry["to"], entry["port"], entry["protocol"])
    text += ", %d pair%s (e.g. %s -> %s)" % (entry["pairs"], "" if entry["pairs"] == 1 else "s",
                                             entry["example"][0], entry["example"][1])
    if entry.get("detail"):
        text += ". " + entry["detail"]
    if entry.get("allowed_by"):
        text += ". Allowed by: " + ", ".join(entry["allowed_by"])
    elif entry.get("reason"):
        text += ". " + entry["reason"]
    return "- " + text


def render_report(result, spec, world):
    """The proof as Markdown: verdict, objects, flows, violations and the matrix."""
    proof = result["proof"]
    lines = ["# Network policy proof", ""]
    if proof["ok"]:
        lines.append("**Verdict: proven.** Every declared flow is allowed, every managed pod keeps DNS, no L7 "
                     "rule is shadowed and nothing undeclared is allowed to or from a managed pod.")
    else:
        lines.append("**Verdict: refused, %d violation(s).** Nothing may be applied until they are fixed."
                     % len(proof["violations"]))
    lines += [
        "",
        "- mode: %s (%d pods, %d in managed namespaces)" % (
            world.mode, result["summary"]["pods"], result["summary"]["managed_pods"]),
        "- managed namespaces: %s" % ", ".join(spec.managed),
        "- Cilium policyEnforcementMode: %s" % spec.mode,
        "- DNS: %s in %s%s" % (proof["dns"]["selector"], proof["dns"]["namespace"],
                               ", NodeLocal DNS %s" % spec.dns.nodelocal_ip if spec.dns.nodelocal_ip else ""),
        "- API server access (%d/TCP): %s" % (spec.api_server_port, ", ".join(proof["api_server"]["access"]) or "none"),
        "- policies already in the cluster and kept: %d" % len(world.existing),
        "",
        "## Objects",
        "",
    ]
    lines += _table(["file", "kind", "purpose", "what it does"], [
        ["`%s`" % item["file"], item["kind"], item["purpose"], item["description"]] for item in result["objects"]
    ])
    lines += ["", "## Declared flows", ""]
    if proof["flows"]:
        lines += _table(["flow", "from", "to", "ports", "L7 / DNS names", "pairs allowed / denied", "verdict"], [
            [item["name"], item["from"], item["to"], ", ".join(item["ports"]), item["l7"] or "–",
             "%d / %d" % (item["pairs"]["allowed"] + item["pairs"]["restricted"], item["pairs"]["denied"]),
             item["verdict"]]
            for item in proof["flows"]
        ])
    else:
        lines.append("None: the managed namespaces only get the default deny and the baseline allows.")
    dns_pairs = proof["dns"]["pairs"]
    lines += ["", "DNS: %d pod-to-server pairs allowed, %d denied." % (
        dns_pairs["allowed"] + dns_pairs["restricted"], dns_pairs["denied"])]
    lines += ["", "## Violations", ""]
    if proof["violations"]:
        lines += [_violation_line(entry) for entry in proof["violations"]]
    else:
        lines.append("None.")
    if proof["opted_in"]:
        lines += ["", "## Allowed only by the extra policies (opted in)", ""]
        lines += [_violation_line(dict(entry, kind="opted in")) for entry in proof["opted_in"]]
    if proof["warnings"]:
        lines += ["", "## Warnings", ""]
        lines += ["- %s" % warning for warning in proof["warnings"]]
    lines += [
        "",
        "## Reachability matrix",
        "",
        "Every connection to or from a pod of a managed namespace, per port, with the policies above applied. "
        "Rows are sources, columns destinations (workloads, or `world`, `kube-apiserver`, `host` and "
        "addresses outside the cluster). `allowed (HTTP)`: allowed at L4 and restricted by HTTP rules; "
        "`allowed (DNS)`: through Cilium's DNS proxy; `allowed (FQDN)`: only to the declared DNS names; "
        "`partly`: some pod pairs only; `–`: no pair (a single pod to itself); `·`: not evaluated (neither side "
        "is managed, or the destination does not serve the port).",
    ]
    for table in proof["matrix"]:
        lines += ["", "### %d/%s" % (table["port"], table["protocol"]), ""]
        lines += _table(["from \\ to"] + table["columns"],
                        [[row["from"]] + row["cells"] for row in table["rows"]])
    return "\n".join(lines) + "\n"
