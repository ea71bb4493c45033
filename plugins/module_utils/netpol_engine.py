# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reachability evaluation over the model of ``netpol_model``.

Pure Python: nothing here imports ``ansible``.

Two evaluators share one set of semantics:

* :class:`IdentityEngine` works like Cilium: pods with the same namespace, labels and
  service account share one *identity*; every selector is evaluated once against all
  identities at the same time (identity sets are Python integers used as bitsets), and
  each probe is answered per (source identity, destination group) instead of per pod pair.
* :class:`PairEvaluator` answers one (source, destination, port) question at a time by
  walking every policy.  It records which policy and rule decided, so it serves ``explain``;
  it is also the naive baseline of ``bench/bench_netpol.py`` and a cross-check in the tests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_model import (
    LABEL_CLUSTER,
    PROBE_ENTITIES,
    SOURCE_K8S,
    SOURCE_RESERVED,
    Requirement,
    Selector,
    parse_ip,
    pod_labels,
    served_names,
)

_CLUSTER_ENTITIES = ("host", "remote-node", "init", "ingress", "health", "unmanaged", "kube-apiserver")


if hasattr(int, "bit_count"):  # Python >= 3.10

    def _bit_count(value):
        return value.bit_count()

else:

    def _bit_count(value):
        return bin(value).count("1")


def iter_bits(mask):
    """Yield the positions of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


# --------------------------------------------------------------------------- endpoints


@dataclass
class Endpoint:
    """Something a probe starts from or goes to: a pod or a pseudo-endpoint.

    ``kind`` is ``pod``, ``entity`` (``entity:host``...) or ``external``
    (``cidr:<address>``, an address outside the cluster).  ``labels`` maps
    ``key -> (source, value)`` as Cilium identity labels do.
    """

    ref: str
    kind: str
    labels: Dict[str, Tuple[str, str]]
    ip: Optional[object] = None
    ports: tuple = ()
    pod: Optional[object] = None


def entity_selectors(entity, cluster_name):
    """Selectors an entity stands for (cilium ``pkg/policy/api/entity.go``)."""
    if entity == "all":
        return (Selector(),)
    if entity == "cluster":
        return tuple(Selector((Requirement(SOURCE_RESERVED, name, "Exists"),)) for name in _CLUSTER_ENTITIES) + (
            Selector((Requirement(SOURCE_K8S, LABEL_CLUSTER, "In", (cluster_name,)),)),
        )
    return (Selector((Requirement(SOURCE_RESERVED, entity, "Exists"),)),)


def cidr_matches(peer, endpoint):
    """CIDR peers match addresses outside the cluster only (Cilium's CIDR semantics).

    ``entity:world`` stands for an arbitrary outside address: only a ``/0`` prefix without
    exceptions is sure to contain it.
    """
    if endpoint.kind == "entity":
        return endpoint.ref == "entity:world" and peer.network.prefixlen == 0 and not peer.excepts
    if endpoint.kind != "external" or endpoint.ip.version != peer.network.version:
        return False
    if endpoint.ip not in peer.network:
        return False
    return not any(endpoint.ip in excluded for excluded in peer.excepts)


def is_outside(endpoint):
    return endpoint.kind == "external" or endpoint.ref == "entity:world"


class EndpointDirectory:
    """Pods and pseudo-endpoints by reference, and the resolution of probe references."""

    def __init__(self, model):
        self.model = model
        self.pods = []
        self.by_ref = {}
        self.by_namespace = {}
        self.by_ip = {}
        for pod in model.pods:
            endpoint = Endpoint(
                pod.ref,
                "pod",
                pod_labels(pod, model.namespaces[pod.namespace], model.cluster_name),
                pod.ip,
                pod.ports,
                pod,
            )
            self.pods.append(endpoint)
            self.by_ref[pod.ref] = endpoint
            self.by_namespace.setdefault(pod.namespace, []).append(endpoint)
            if pod.ip is not None:
                self.by_ip[pod.ip] = endpoint
        self.pseudo = {}

    def resolve(self, ref, path, where, allow_wildcard=True):
        """Resolve ``ns/name``, ``ns/*``, ``entity:<name>`` or ``cidr:<address>``."""
        if ref.startswith("entity:"):
            name = ref[len("entity:") :]
            if name not in PROBE_ENTITIES:
                raise InvalidInput(
                    path,
                    ref,
                    "names an unknown entity; known: %s" % ", ".join("entity:" + item for item in PROBE_ENTITIES),
                    where=where,
                )
            return [self._pseudo(ref, "entity", {name: (SOURCE_RESERVED, "")})]
        if ref.startswith("cidr:"):
            address = parse_ip(ref[len("cidr:") :], path, where)
            if address in self.by_ip:
                return [self.by_ip[address]]
            return [self._pseudo("cidr:%s" % address, "external", {"world": (SOURCE_RESERVED, "")}, address)]
        namespace, slash, name = ref.partition("/")
        if not slash or not namespace or not name:
            raise InvalidInput(
                path, ref, "must be namespace/pod, namespace/*, entity:<name> or cidr:<address>", where=where
            )
        if namespace not in self.model.namespaces:
            raise InvalidInput(
                path,
                ref,
                "names unknown namespace %r; known: %s" % (namespace, ", ".join(sorted(self.model.namespaces))),
                where=where,
            )
        if name == "*" and allow_wildcard:
            return list(self.by_namespace.get(namespace, []))
        if ref not in self.by_ref:
            raise InvalidInput(path, ref, "names a pod that is not in the pods input", where=where)
        return [self.by_ref[ref]]

    def _pseudo(self, ref, kind, labels, address=None):
        if ref not in self.pseudo:
            self.pseudo[ref] = Endpoint(ref, kind, labels, address)
        return self.pseudo[ref]


# --------------------------------------------------------------------------- per-pair evaluation


def rule_ports_match(rule, port, protocol, names):
    if rule.ports is None:
        return True
    for spec in rule.ports:
        if spec.matches_number(port, protocol) or spec.matches_name(protocol, names):
            return True
    return False


def peer_matches(rule, endpoint, cluster_name):
    if rule.peers is None:
        return True
    for peer in rule.peers:
        kind = peer.kind
        if kind == "all":
            return True
        if kind == "selector":
            if peer.selector.matches(endpoint.labels):
                return True
        elif kind == "entity":
            if any(selector.matches(endpoint.labels) for selector in entity_selectors(peer.entity, cluster_name)):
                return True
        elif kind == "cidr":
            if cidr_matches(peer, endpoint):
                return True
        elif is_outside(endpoint):  # fqdn
            return True
    return False


@dataclass
class SideVerdict:
    """What one side (egress of the source, ingress of the destination) decided."""

    enforced: bool
    isolated: bool = False
    isolated_by: List[str] = field(default_factory=list)
    selected_by: List[str] = field(default_factory=list)
    allowed_by: List[dict] = field(default_factory=list)
    denied_by: List[dict] = field(default_factory=list)
    allowed: bool = True
    restricted: bool = False
    note: str = ""

    def as_dict(self):
        return {
            "enforced": self.enforced,
            "isolated": self.isolated,
            "isolated_by": list(self.isolated_by),
            "selected_by": list(self.selected_by),
            "allowed_by": list(self.allowed_by),
            "denied_by": list(self.denied_by),
            "allowed": self.allowed,
            "restricted_at_l7": self.restricted,
            "note": self.note,
        }


class PairEvaluator:
    """Evaluate one connection at a time by walking every policy (no caching, no grouping)."""

    def __init__(self, model, mode="default", allow_localhost=True):
        self.model = model
        self.mode = mode
        self.allow_localhost = allow_localhost

    def evaluate(self, source, destination, port, protocol, collect=False):
        """Return ``(verdict, egress SideVerdict, ingress SideVerdict)``.

        ``verdict`` is ``allowed``, ``restricted`` (allowed at L4, restricted at L7) or
        ``denied``.
        """
        names = served_names(destination.ports, port, protocol)
        egress = self._side("egress", source, destination, port, protocol, names, collect)
        ingress = self._side("ingress", destination, source, port, protocol, names, collect)
        if not (egress.allowed and ingress.allowed):
            verdict = "denied"
        elif egress.restricted or ingress.restricted:
            verdict = "restricted"
        else:
            verdict = "allowed"
        return verdict, egress, ingress

    def _side(self, direction, subject, peer, port, protocol, names, collect):
        if subject.kind != "pod":
            return SideVerdict(
                False,
                note="%s is not a Cilium endpoint with policy in this model; %s is not enforced"
                % (subject.ref, direction),
            )
        if self.mode == "never":
            return SideVerdict(False, note="policyEnforcementMode never: no policy is enforced")
        side = SideVerdict(True, isolated=self.mode == "always")
        cluster_name = self.model.cluster_name
        allowed_any = allowed_plain = denied = False
        for unit in self.model.units:
            if not unit.subject.matches(subject.labels):
                continue
            if collect:
                side.selected_by.append(unit.display if unit.path == "spec" else "%s (%s)" % (unit.display, unit.path))
            unit_isolates = unit.default_deny_ingress if direction == "ingress" else unit.default_deny_egress
            if unit_isolates and self.mode == "default":
                side.isolated = True
                if collect:
                    side.isolated_by.append(unit.display)
            for rule in unit.rules:
                if rule.direction != direction:
                    continue
                if not rule_ports_match(rule, port, protocol, names):
                    continue
                if not peer_matches(rule, peer, cluster_name):
                    continue
                if rule.verdict == "deny":
                    denied = True
                    if collect:
                        side.denied_by.append({"policy": unit.display, "rule": rule.path})
                    continue
                allowed_any = True
                if not rule.restricted:
                    allowed_plain = True
                if collect:
                    entry = {"policy": unit.display, "rule": rule.path}
                    if rule.restricted:
                        entry["l7"] = rule.describe_l7()
                    side.allowed_by.append(entry)
        if self.mode == "always" and collect:
            side.isolated_by.append("policyEnforcementMode always")
        localhost = direction == "ingress" and self.allow_localhost and peer.ref == "entity:host"
        if localhost:
            allowed_any = allowed_plain = True
        if denied:
            side.allowed = False
            side.note = "a deny rule matches; deny rules take precedence over every allow"
        elif not side.isolated:
            side.allowed = True
            side.note = "no policy isolates %s for %s; default allow" % (subject.ref, direction)
        elif allowed_any:
            side.allowed = True
            side.restricted = not allowed_plain
            if localhost and not side.allowed_by:
                side.note = "traffic from the local host is always allowed (allow-localhost)"
            elif side.restricted:
                side.note = "allowed at L4, restricted at L7: every rule that allows it carries L7 rules or toFQDNs"
            else:
                side.note = "allowed by policy"
        else:
            side.allowed = False
            side.note = "%s is isolated for %s and no %s rule allows %s on %d/%s" % (
                subject.ref,
                direction,
                direction,
                peer.ref,
                port,
                protocol,
            )
        return side


# --------------------------------------------------------------------------- identity engine


@dataclass
class Identity:
    index: int
    kind: str
    labels: Dict[str, Tuple[str, str]]
    members: List[Endpoint]


class LabelIndex:
    """Bitset index of identity labels; evaluates a selector for all identities at once."""

    def __init__(self, identities):
        self.all_mask = (1 << len(identities)) - 1
        self.by_key = {}
        self.by_source_key = {}
        for identity in identities:
            bit = 1 << identity.index
            for key, (source, value) in identity.labels.items():
                values = self.by_key.setdefault(key, {})
                values[value] = values.get(value, 0) | bit
                values = self.by_source_key.setdefault((source, key), {})
                values[value] = values.get(value, 0) | bit
        self.present = {key: _or_all(values.values()) for key, values in self.by_key.items()}
        self.present_source = {key: _or_all(values.values()) for key, values in self.by_source_key.items()}
        self.cache = {}
        self.evaluations = 0

    def selector_mask(self, selector):
        cached = self.cache.get(selector)
        if cached is not None:
            return cached
        self.evaluations += 1
        mask = self.all_mask
        for req in selector.requirements:
            if req.source == "any":
                values = self.by_key.get(req.key, {})
                present = self.present.get(req.key, 0)
            else:
                values = self.by_source_key.get((req.source, req.key), {})
                present = self.present_source.get((req.source, req.key), 0)
            if req.operator == "In":
                mask &= _or_all(values.get(item, 0) for item in req.values)
            elif req.operator == "NotIn":
                mask &= ~_or_all(values.get(item, 0) for item in req.values)
            elif req.operator == "Exists":
                mask &= present
            else:
                mask &= ~present
            if not mask:
                break
        mask &= self.all_mask
        self.cache[selector] = mask
        return mask


def _or_all(masks):
    result = 0
    for mask in masks:
        result |= mask
    return result


class _Aggregate:
    """Rules that share one subject set (ingress) or one peer set (egress), per probe."""

    __slots__ = ("allow_any", "allow_plain", "deny", "named")

    def __init__(self, probe_count):
        self.allow_any = [0] * probe_count
        self.allow_plain = [0] * probe_count
        self.deny = [0] * probe_count
        self.named = []


@dataclass
class ProbeResult:
    """Answer for one probe: per destination group, the source identities allowed."""

    probe: object
    groups: List[Tuple[int, List[Endpoint], int, int]]
    sources: List[Endpoint]
    source_mask: int


class IdentityEngine:
    """Cilium-style evaluation per identity, with selectors evaluated once as bitsets."""

    def __init__(self, model, directory, mode="default", allow_localhost=True, extra_endpoints=()):
        self.model = model
        self.directory = directory
        self.mode = mode
        self.allow_localhost = allow_localhost
        self.identities = []
        self.identity_of = {}
        groups = {}
        for endpoint in directory.pods:
            pod = endpoint.pod
            key = (pod.namespace, frozenset(pod.labels.items()), pod.service_account)
            identity = groups.get(key)
            if identity is None:
                identity = Identity(len(self.identities), "pod", endpoint.labels, [])
                groups[key] = identity
                self.identities.append(identity)
            identity.members.append(endpoint)
            self.identity_of[endpoint.ref] = identity.index
        self.pod_identity_count = len(self.identities)
        for endpoint in extra_endpoints:
            if endpoint.ref in self.identity_of:
                continue
            identity = Identity(len(self.identities), endpoint.kind, endpoint.labels, [endpoint])
            self.identities.append(identity)
            self.identity_of[endpoint.ref] = identity.index
        self.all_mask = (1 << len(self.identities)) - 1
        self.pod_mask = (1 << self.pod_identity_count) - 1
        self.index = LabelIndex(self.identities)
        self.host_mask = 0
        if "entity:host" in self.identity_of:
            self.host_mask = 1 << self.identity_of["entity:host"]
        self.outside_mask = _or_all(
            1 << identity.index
            for identity in self.identities
            if identity.kind != "pod" and is_outside(identity.members[0])
        )

    # ----------------------------------------------------------------- compilation

    def _peer_mask(self, rule):
        if rule.peers is None:
            return self.all_mask
        mask = 0
        for peer in rule.peers:
            if peer.kind == "all":
                return self.all_mask
            if peer.kind == "selector":
                mask |= self.index.selector_mask(peer.selector)
            elif peer.kind == "entity":
                for selector in entity_selectors(peer.entity, self.model.cluster_name):
                    mask |= self.index.selector_mask(selector)
            elif peer.kind == "cidr":
                for identity in self.identities[self.pod_identity_count :]:
                    if cidr_matches(peer, identity.members[0]):
                        mask |= 1 << identity.index
            else:
                mask |= self.outside_mask
        return mask

    def _compile(self, probes):
        """Group the rules per subject set (ingress) and per peer set (egress)."""
        count = len(probes)
        self.isolated_ingress = 0
        self.isolated_egress = 0
        self.ingress_by_identity = [[] for _identity in self.identities]
        self.egress_by_identity = [[] for _identity in self.identities]
        if self.mode == "never":
            return
        port_cache = {}
        ingress = {}
        egress = {}
        for unit in self.model.units:
            subject = self.index.selector_mask(unit.subject) & self.pod_mask
            if not subject:
                continue
            if unit.default_deny_ingress:
                self.isolated_ingress |= subject
            if unit.default_deny_egress:
                self.isolated_egress |= subject
            for rule in unit.rules:
                peer = self._peer_mask(rule)
                if not peer:
                    continue
                if rule.direction == "ingress":
                    aggregate, contribution = ingress.get(subject), peer
                    if aggregate is None:
                        aggregate = ingress[subject] = _Aggregate(count)
                else:
                    aggregate, contribution = egress.get(peer), subject
                    if aggregate is None:
                        aggregate = egress[peer] = _Aggregate(count)
                numeric = port_cache.get(rule.ports)
                if numeric is None:
                    numeric = port_cache[rule.ports] = self._numeric_probe_mask(rule.ports, probes)
                for position in iter_bits(numeric):
                    if rule.verdict == "deny":
                        aggregate.deny[position] |= contribution
                    else:
                        aggregate.allow_any[position] |= contribution
                        if not rule.restricted:
                            aggregate.allow_plain[position] |= contribution
                for spec in rule.ports or ():
                    if spec.name is not None:
                        aggregate.named.append((spec, rule.verdict, rule.restricted, contribution))
        if self.mode == "always":
            self.isolated_ingress = self.pod_mask
            self.isolated_egress = self.pod_mask
        for subject, aggregate in ingress.items():
            for position in iter_bits(subject):
                self.ingress_by_identity[position].append(aggregate)
        for peer, aggregate in egress.items():
            for position in iter_bits(peer):
                self.egress_by_identity[position].append(aggregate)

    @staticmethod
    def _numeric_probe_mask(ports, probes):
        mask = 0
        for position, probe in enumerate(probes):
            if ports is None or any(spec.matches_number(probe.port, probe.protocol) for spec in ports):
                mask |= 1 << position
        return mask

    # ----------------------------------------------------------------- evaluation

    def run(self, probes, sources_per_probe, destinations_per_probe):
        """Evaluate every probe; return one :class:`ProbeResult` each."""
        self._compile(probes)
        results = []
        for position, probe in enumerate(probes):
            sources = sources_per_probe[position]
            source_mask = _or_all(1 << self.identity_of[endpoint.ref] for endpoint in sources)
            groups = []
            for identity_index, members in self._destination_groups(probe, destinations_per_probe[position]):
                names = served_names(members[0].ports, probe.port, probe.protocol)
                allowed, restricted = self._allowed_sources(identity_index, position, probe, names)
                groups.append((identity_index, members, allowed & source_mask, restricted & source_mask))
            results.append(ProbeResult(probe, groups, sources, source_mask))
        return results

    def _destination_groups(self, probe, destinations):
        grouped = {}
        order = []
        for endpoint in destinations:
            identity_index = self.identity_of[endpoint.ref]
            key = (identity_index, served_names(endpoint.ports, probe.port, probe.protocol))
            if key not in grouped:
                grouped[key] = []
                order.append(key)
            grouped[key].append(endpoint)
        return [(key[0], grouped[key]) for key in order]

    def _allowed_sources(self, identity_index, position, probe, names):
        all_mask = self.all_mask
        if self.mode == "never":
            return all_mask, 0
        bit = 1 << identity_index
        # ingress of the destination
        if identity_index >= self.pod_identity_count:
            ingress_ok = ingress_plain = all_mask
        else:
            allow_any = allow_plain = deny = 0
            for aggregate in self.ingress_by_identity[identity_index]:
                allow_any |= aggregate.allow_any[position]
                allow_plain |= aggregate.allow_plain[position]
                deny |= aggregate.deny[position]
                for spec, verdict, restricted, contribution in aggregate.named:
                    if spec.matches_name(probe.protocol, names):
                        if verdict == "deny":
                            deny |= contribution
                        else:
                            allow_any |= contribution
                            if not restricted:
                                allow_plain |= contribution
            if self.isolated_ingress & bit:
                base_any, base_plain = allow_any, allow_plain
            else:
                base_any = base_plain = all_mask
            if self.allow_localhost:
                base_any |= self.host_mask
                base_plain |= self.host_mask
            ingress_ok = base_any & ~deny
            ingress_plain = base_plain & ~deny
        # egress of the sources towards this destination
        allow_any = allow_plain = deny = 0
        for aggregate in self.egress_by_identity[identity_index]:
            allow_any |= aggregate.allow_any[position]
            allow_plain |= aggregate.allow_plain[position]
            deny |= aggregate.deny[position]
            for spec, verdict, restricted, contribution in aggregate.named:
                if spec.matches_name(probe.protocol, names):
                    if verdict == "deny":
                        deny |= contribution
                    else:
                        allow_any |= contribution
                        if not restricted:
                            allow_plain |= contribution
        free = all_mask & ~self.isolated_egress
        egress_ok = (free | allow_any) & ~deny
        egress_plain = (free | allow_plain) & ~deny
        allowed = ingress_ok & egress_ok
        restricted = allowed & ~(ingress_plain & egress_plain)
        return allowed, restricted

    # ----------------------------------------------------------------- pair counts

    def count_pairs(self, result):
        """Allowed, restricted and total pod-level pairs of one probe (self-pairs excluded)."""
        weights = {}
        for endpoint in result.sources:
            identity_index = self.identity_of[endpoint.ref]
            weights[identity_index] = weights.get(identity_index, 0) + 1
        weight_masks = []
        for identity_index, weight in weights.items():
            position = 0
            while weight >> position:
                if (weight >> position) & 1:
                    while len(weight_masks) <= position:
                        weight_masks.append(0)
                    weight_masks[position] |= 1 << identity_index
                position += 1
        source_set = {endpoint.ref for endpoint in result.sources}
        total = allowed = restricted = 0
        source_count = len(result.sources)
        for identity_index, members, allowed_mask, restricted_mask in result.groups:
            size = len(members)
            self_pairs = sum(1 for member in members if member.ref in source_set)
            total += source_count * size - self_pairs
            allowed_sources = sum(
                _bit_count(allowed_mask & mask) << position for position, mask in enumerate(weight_masks)
            )
            restricted_sources = sum(
                _bit_count(restricted_mask & mask) << position for position, mask in enumerate(weight_masks)
            )
            allowed += allowed_sources * size
            restricted += restricted_sources * size
            if allowed_mask >> identity_index & 1:
                allowed -= self_pairs
            if restricted_mask >> identity_index & 1:
                restricted -= self_pairs
        return allowed, restricted, total
