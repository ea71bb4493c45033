# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy reachability engine: what stays reachable once the policies are applied.

Pure Python: nothing here imports ``ansible``.  The ``zerotrust.cilium.policy_plan``
module is a thin wrapper around :func:`plan_reachability`.

Inputs are plain data: namespaces (name -> labels), pods (namespace, name, labels, ip,
ports), policy manifests (``networking.k8s.io/v1`` NetworkPolicy, ``cilium.io/v2``
CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy, as dicts) and probes
(``{port, protocol, from, to}``).  The result is JSON-friendly.

Layers: ``netpol_model`` parses and validates into dataclasses; ``netpol_engine``
groups pods into identities and evaluates; this file resolves probes, runs the engine
and shapes the report.  Semantics: ``docs/policy-engine.md``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_engine import (
    EndpointDirectory,
    IdentityEngine,
    PairEvaluator,
    iter_bits,
)
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_model import (
    ENFORCEMENT_MODES,
    PROTOCOLS,
    parse_model,
    parse_probes,
    serves,
)

__all__ = ["plan_reachability", "ENFORCEMENT_MODES"]


def plan_reachability(
    namespaces,
    pods,
    policies,
    probes=None,
    policy_enforcement_mode="default",
    explain=None,
    cluster_name="default",
    allow_localhost=True,
    report_pairs=True,
):
    """Compute the reachability matrix the given policies produce.

    :param namespaces: mapping namespace name -> labels.
    :param pods: list of ``{namespace, name, labels, ip, ports: [{name, port, protocol}], service_account}``.
    :param policies: list of NetworkPolicy / CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy manifests.
    :param probes: list of ``{port, protocol, from, to}``; default every (port, protocol) a pod serves.
        ``from``/``to`` take ``namespace/pod``, ``namespace/*``, ``entity:<name>`` or ``cidr:<address>``;
        without ``from`` every pod is a source, without ``to`` every pod serving the port is a destination.
    :param policy_enforcement_mode: Cilium's ``policyEnforcementMode``: default, always or never.
    :param explain: list of pairs to explain: ``[from, to]``, ``[from, to, port]``,
        ``[from, to, port, protocol]`` or ``{from, to, port, protocol}``.
    :param cluster_name: Cilium cluster name (the ``io.cilium.k8s.policy.cluster`` label).
    :param allow_localhost: Cilium's default ``allow-localhost``: the node may always reach its pods.
    :param report_pairs: list the pairs (True) or only count them (False).
    :returns: dict with ``reachability``, ``explain``, ``identities``, ``summary`` and ``warnings``.
    :raises InvalidInput: (or ``InvalidInputs``) on any bad input.
    """
    if policy_enforcement_mode not in ENFORCEMENT_MODES:
        raise InvalidInput(
            "policy_enforcement_mode",
            policy_enforcement_mode,
            "is not one of: %s" % ", ".join(ENFORCEMENT_MODES),
            where="netpol",
        )
    if not isinstance(allow_localhost, bool):
        raise InvalidInput("allow_localhost", allow_localhost, "must be a boolean", where="netpol")
    model = parse_model(namespaces, pods, policies, cluster_name)
    parsed_probes = parse_probes(probes, model.pods)
    directory = EndpointDirectory(model)
    sources, destinations = _resolve_probe_endpoints(parsed_probes, directory)
    requests = _parse_explain(explain, parsed_probes, directory)
    engine = IdentityEngine(model, directory, policy_enforcement_mode, allow_localhost, list(directory.pseudo.values()))
    results = engine.run(parsed_probes, sources, destinations)
    evaluator = PairEvaluator(model, policy_enforcement_mode, allow_localhost)

    reachability = []
    totals = {"allowed": 0, "denied": 0, "restricted": 0}
    for result in results:
        allowed, restricted, total = engine.count_pairs(result)
        entry = {
            "port": result.probe.port,
            "protocol": result.probe.protocol,
            "counts": {"allowed": allowed, "denied": total - allowed, "restricted": restricted},
        }
        if report_pairs:
            entry.update(_materialize(engine, evaluator, result))
        reachability.append(entry)
        totals["allowed"] += allowed
        totals["denied"] += total - allowed
        totals["restricted"] += restricted

    explained = [_explain_one(evaluator, *request) for request in requests]
    summary = {
        "namespaces": len(model.namespaces),
        "pods": len(model.pods),
        "policies": dict(model.policy_counts),
        "policy_units": len(model.units),
        "identities": engine.pod_identity_count,
        "probes": len(parsed_probes),
        "policy_enforcement_mode": policy_enforcement_mode,
        "isolated_pods": _isolated_pods(engine),
        "pairs": totals,
    }
    return {
        "reachability": reachability,
        "explain": explained,
        "identities": engine.pod_identity_count,
        "summary": summary,
        "warnings": list(model.warnings),
    }


def _resolve_probe_endpoints(probes, directory):
    sources = []
    destinations = []
    for probe in probes:
        path = "probes[%d]" % probe.index
        if probe.sources is None:
            probe_sources = list(directory.pods)
        else:
            probe_sources = _resolve_refs(probe.sources, path + ".from", directory)
        if probe.destinations is None:
            probe_destinations = [
                endpoint for endpoint in directory.pods if serves(endpoint.ports, probe.port, probe.protocol)
            ]
        else:
            probe_destinations = _resolve_refs(probe.destinations, path + ".to", directory)
        sources.append(probe_sources)
        destinations.append(probe_destinations)
    return sources, destinations


def _resolve_refs(refs, path, directory):
    seen = set()
    result = []
    for position, ref in enumerate(refs):
        for endpoint in directory.resolve(ref, "%s[%d]" % (path, position), "probes"):
            if endpoint.ref not in seen:
                seen.add(endpoint.ref)
                result.append(endpoint)
    return result


def _parse_explain(explain, probes, directory):
    where = "explain"
    if explain is None:
        return []
    if not isinstance(explain, (list, tuple)):
        raise InvalidInput("explain", explain, "must be a list of pairs", where=where)
    requests = []
    for index, item in enumerate(explain):
        path = "explain[%d]" % index
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"from", "to", "port", "protocol"})
            if unknown:
                raise InvalidInput(
                    "%s.%s" % (path, unknown[0]),
                    item[unknown[0]],
                    "is not a known field; known: from, to, port, protocol",
                    where=where,
                )
            source, destination, port, protocol = (
                item.get("from"),
                item.get("to"),
                item.get("port"),
                item.get("protocol"),
            )
        elif isinstance(item, (list, tuple)) and 2 <= len(item) <= 4:
            padded = list(item) + [None] * (4 - len(item))
            source, destination, port, protocol = padded
        else:
            raise InvalidInput(
                path,
                item,
                "must be [from, to], [from, to, port], [from, to, port, protocol] or a mapping with from, to, port, "
                "protocol",
                where=where,
            )
        for key, value in (("from", source), ("to", destination)):
            if not isinstance(value, str):
                raise InvalidInput(
                    "%s.%s" % (path, key),
                    value,
                    "must be an endpoint reference such as production/frontend-0",
                    where=where,
                )
        source_endpoint = directory.resolve(source, path + ".from", where, allow_wildcard=False)[0]
        destination_endpoint = directory.resolve(destination, path + ".to", where, allow_wildcard=False)[0]
        if port is None:
            if protocol is not None:
                raise InvalidInput(path + ".protocol", protocol, "needs a port", where=where)
            if not probes:
                raise InvalidInput(
                    path + ".port", port, "is required: there are no probes to take ports from", where=where
                )
            ports = [(probe.port, probe.protocol) for probe in probes]
        else:
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise InvalidInput(path + ".port", port, "must be an integer from 1 to 65535", where=where)
            protocol = protocol or "TCP"
            if not isinstance(protocol, str) or protocol.upper() not in PROTOCOLS:
                raise InvalidInput(
                    path + ".protocol", protocol, "is not one of: %s" % ", ".join(PROTOCOLS), where=where
                )
            ports = [(port, protocol.upper())]
        for probe_port, probe_protocol in ports:
            requests.append((source_endpoint, destination_endpoint, probe_port, probe_protocol))
    return requests


def _materialize(engine, evaluator, result):
    source_by_identity = {}
    for endpoint in result.sources:
        source_by_identity.setdefault(engine.identity_of[endpoint.ref], []).append(endpoint)
    allowed_pairs = []
    denied_pairs = []
    restricted_pairs = []
    probe = result.probe
    for identity_index, members, allowed_mask, restricted_mask in result.groups:
        for source_identity in iter_bits(result.source_mask):
            sources = source_by_identity.get(source_identity, ())
            bit = 1 << source_identity
            allowed = bool(allowed_mask & bit)
            rules = None
            if restricted_mask & bit:
                rules = _l7_rules(evaluator, sources[0], members[0], probe)
            for source in sources:
                for destination in members:
                    if source.ref == destination.ref:
                        continue
                    pair = [source.ref, destination.ref]
                    if allowed:
                        allowed_pairs.append(pair)
                        if rules is not None:
                            restricted_pairs.append({"from": source.ref, "to": destination.ref, "rules": rules})
                    else:
                        denied_pairs.append(pair)
    allowed_pairs.sort()
    denied_pairs.sort()
    restricted_pairs.sort(key=lambda item: (item["from"], item["to"]))
    return {"allowed": allowed_pairs, "denied": denied_pairs, "restricted": restricted_pairs}


def _l7_rules(evaluator, source, destination, probe):
    """The L7/FQDN rules that restrict an allowed pair (from a representative pod pair)."""
    verdict, egress, ingress = evaluator.evaluate(source, destination, probe.port, probe.protocol, collect=True)
    rules = []
    for direction, side in (("egress", egress), ("ingress", ingress)):
        if side.restricted:
            for entry in side.allowed_by:
                rules.append(dict(entry, direction=direction))
    return rules


def _explain_one(evaluator, source, destination, port, protocol):
    verdict, egress, ingress = evaluator.evaluate(source, destination, port, protocol, collect=True)
    if verdict == "denied":
        blocking = [side for name, side in (("egress", egress), ("ingress", ingress)) if not side.allowed]
        reason = "denied: " + "; ".join(side.note for side in blocking)
    elif verdict == "restricted":
        reason = "allowed at L4, restricted at L7 (%s)" % "; ".join(
            "%s: %s" % (name, ", ".join("%s %s" % (entry["policy"], entry["rule"]) for entry in side.allowed_by))
            for name, side in (("egress", egress), ("ingress", ingress))
            if side.restricted
        )
    else:
        reason = "allowed: egress %s; ingress %s" % (egress.note, ingress.note)
    return {
        "from": source.ref,
        "to": destination.ref,
        "port": port,
        "protocol": protocol,
        "verdict": verdict,
        "egress": egress.as_dict(),
        "ingress": ingress.as_dict(),
        "reason": reason,
    }


def _isolated_pods(engine):
    counts = {"ingress": 0, "egress": 0}
    for identity in engine.identities[: engine.pod_identity_count]:
        bit = 1 << identity.index
        if engine.isolated_ingress & bit:
            counts["ingress"] += len(identity.members)
        if engine.isolated_egress & bit:
            counts["egress"] += len(identity.members)
    return counts
