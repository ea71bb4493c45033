# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the staged rollout in apply mode, as pure functions over recorded output.

Pure Python: nothing here imports ``ansible``.  The ``network_policy`` role runs the
commands (``cilium-dbg endpoint list``, ``hubble observe``) in the Cilium agent pods with
``kubernetes.core.k8s_exec`` and hands their output to these functions through the
``zerotrust.cilium.network_policy_*`` filters:

* :func:`audit_endpoints`: which endpoints of which agent to put into policy audit mode;
* :func:`audit_verdict`: is the audit clean (no would-be drop, ``AUDIT`` verdict, to or from
  a managed pod)?  Only then may the set be enforced;
* :func:`post_apply_verdict`: after enforcing, did Cilium accept every policy and did no
  declared connection get dropped?  If not, the role restores the previous set.

Hubble prints one JSON object per line (``{"flow": {...}, "node_name": ..., "time": ...}``);
field names are taken in both the proto (``destination_port``) and JSON (``destinationPort``)
spelling.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_model import SOURCE_K8S, parse_k8s_selector

_RESERVED_PREFIX = "reserved:"
_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
_POLICY_DROP_REASONS = ("POLICY_DENIED", "POLICY_DENY", "Policy denied", "Policy denied by denylist")
_PROTOCOLS = ("TCP", "UDP", "SCTP")


def _field(mapping, *names):
    for name in names:
        if isinstance(mapping, dict) and name in mapping:
            return mapping[name]
    return None


def _outputs(value, where):
    """A string, or a list of strings / k8s_exec results (``stdout``), as one list of texts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InvalidInput("input", value, "must be command output (a string) or a list of them", where=where)
    texts = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            item = item.get("stdout", "")
        if not isinstance(item, str):
            raise InvalidInput("input[%d]" % index, item, "must be command output (a string)", where=where)
        texts.append(item)
    return texts


def _namespaces(value, where):
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value) or not value:
        raise InvalidInput("namespaces", value, "must be a non-empty list of namespace names", where=where)
    return set(value)


# --------------------------------------------------------------------------- endpoints


def _endpoint_namespace(endpoint):
    status = endpoint.get("status") or {}
    identifiers = status.get("external-identifiers") or {}
    namespace = identifiers.get("k8s-namespace")
    pod = identifiers.get("k8s-pod-name")
    if namespace:
        return namespace, pod
    labels = (status.get("identity") or {}).get("labels") or []
    for label in labels:
        key, _equals, value = label.partition("=")
        if key in ("k8s:" + _NAMESPACE_LABEL, _NAMESPACE_LABEL):
            return value, pod
    return None, pod


def audit_endpoints(outputs, namespaces, agents=None):
    """Endpoint IDs of the pods of ``namespaces``, per Cilium agent.

    :param outputs: ``cilium-dbg endpoint list -o json`` output of each agent (strings, or
        k8s_exec results with ``stdout``), in the order of ``agents``.
    :param namespaces: the managed namespaces.
    :param agents: names of the agent pods (default ``agent-0``, ``agent-1``...).
    :returns: list of ``{agent, endpoints: [id], pods: [namespace/pod]}``.
    """
    where = "network_policy_audit_endpoints"
    texts = _outputs(outputs, where)
    wanted = _namespaces(namespaces, where)
    if agents is None:
        agents = ["agent-%d" % index for index in range(len(texts))]
    if len(agents) != len(texts):
        raise InvalidInput("agents", agents, "must name one agent per output (%d)" % len(texts), where=where)
    result = []
    for agent, text in zip(agents, texts):
        try:
            endpoints = json.loads(text or "[]")
        except ValueError as exc:
            raise InvalidInput("input", text[:200], "is not the JSON of cilium-dbg endpoint list: %s" % exc,
                               where=where)
        if not isinstance(endpoints, list):
            raise InvalidInput("input", text[:200], "must be a JSON list of endpoints", where=where)
        ids = []
        pods = []
        for endpoint in endpoints:
            if not isinstance(endpoint, dict) or "id" not in endpoint:
                continue
            namespace, pod = _endpoint_namespace(endpoint)
            if namespace in wanted:
                ids.append(endpoint["id"])
                pods.append("%s/%s" % (namespace, pod or "?"))
        result.append({"agent": agent, "endpoints": sorted(ids), "pods": sorted(pods)})
    return result


# --------------------------------------------------------------------------- flows


def _labels(endpoint):
    labels = {}
    reserved = set()
    for label in _field(endpoint, "labels") or []:
        key, _equals, value = str(label).partition("=")
        if key.startswith(_RESERVED_PREFIX):
            reserved.add(key[len(_RESERVED_PREFIX):])
            continue
        source, colon, name = key.partition(":")
        labels[name if colon else source] = value
    return labels, reserved


def _endpoint(flow, side, ip_side):
    endpoint = _field(flow, side) or {}
    labels, reserved = _labels(endpoint)
    namespace = _field(endpoint, "namespace") or labels.get(_NAMESPACE_LABEL)
    pod = _field(endpoint, "pod_name", "podName")
    address = _field(_field(flow, "IP", "ip") or {}, ip_side)
    if namespace and pod:
        display = "%s/%s" % (namespace, pod)
    elif reserved:
        display = sorted(reserved)[0]
    else:
        display = address or "unknown"
    return {"namespace": namespace, "pod": pod, "labels": labels, "reserved": reserved, "display": display}


def parse_flows(text):
    """Hubble ``observe -o json`` output -> list of normalized flows (lines that are not flows skipped)."""
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        flow = record.get("flow", record) if isinstance(record, dict) else None
        if not isinstance(flow, dict) or "verdict" not in flow:
            continue
        layer4 = _field(flow, "l4") or {}
        protocol = None
        port = None
        for name in _PROTOCOLS:
            if name in layer4:
                protocol = name
                port = _field(layer4[name], "destination_port", "destinationPort")
        result.append({
            "verdict": flow.get("verdict"),
            "drop_reason": _field(flow, "drop_reason_desc", "dropReasonDesc"),
            "reply": bool(_field(flow, "is_reply", "isReply")),
            "direction": _field(flow, "traffic_direction", "trafficDirection"),
            "from": _endpoint(flow, "source", "source"),
            "to": _endpoint(flow, "destination", "destination"),
            "protocol": protocol,
            "port": port,
            "node": record.get("node_name") or flow.get("node_name"),
        })
    return result


def _aggregate(flows):
    merged = {}
    for flow in flows:
        key = (flow["from"]["display"], flow["to"]["display"], flow["port"] or 0, flow["protocol"] or "")
        if key in merged:
            merged[key]["count"] += 1
        else:
            merged[key] = {"from": key[0], "to": key[1], "port": flow["port"], "protocol": flow["protocol"],
                           "direction": flow["direction"], "count": 1}
    return [merged[key] for key in sorted(merged)]


def _touches(flow, namespaces):
    return flow["from"]["namespace"] in namespaces or flow["to"]["namespace"] in namespaces


def audit_verdict(outputs, namespaces):
    """Whether the audit is clean: no ``AUDIT`` verdict (a drop the policies would cause) to or
    from a pod of ``namespaces``.

    :param outputs: ``hubble observe --verdict AUDIT -o json`` output of each agent.
    :returns: ``{clean, findings: [{from, to, port, protocol, direction, count}], flows}``.
    """
    where = "network_policy_audit_verdict"
    texts = _outputs(outputs, where)
    wanted = _namespaces(namespaces, where)
    flows = [flow for text in texts for flow in parse_flows(text)]
    audited = [flow for flow in flows if flow["verdict"] == "AUDIT" and not flow["reply"] and _touches(flow, wanted)]
    findings = _aggregate(audited)
    return {"clean": not findings, "findings": findings, "flows": len(flows)}


def _matches_end(expected, endpoint):
    if expected == "world":
        return "world" in endpoint["reserved"] or (not endpoint["namespace"] and not endpoint["reserved"])
    if expected == "kube-apiserver":
        return "kube-apiserver" in endpoint["reserved"]
    if not isinstance(expected, dict) or endpoint["namespace"] != expected.get("namespace"):
        return False
    selector = parse_k8s_selector(expected.get("selector") or {}, "selector", "network_policy_post_apply_verdict")
    return selector.matches({key: (SOURCE_K8S, value) for key, value in endpoint["labels"].items()})


def _matches_port(ports, flow):
    for port in ports:
        if port.get("protocol", "TCP") != flow["protocol"]:
            continue
        if port.get("name"):
            return True  # a named port: the number is per pod; any drop on the protocol counts
        start = port.get("port")
        end = port.get("end_port") or start
        if flow["port"] is not None and start is not None and start <= flow["port"] <= end:
            return True
    return False


def _policy_problems(policies):
    problems = []
    for item in policies or []:
        if not isinstance(item, dict):
            continue
        metadata = item.get("metadata") or {}
        name = metadata.get("name")
        if metadata.get("namespace"):
            name = "%s/%s" % (metadata["namespace"], name)
        display = "%s %s" % (item.get("kind", "policy"), name)
        status = item.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Valid" and condition.get("status") == "False":
                problems.append("%s is not valid for Cilium: %s" % (display, condition.get("message", "")))
        for node, state in sorted((status.get("nodes") or {}).items()):
            if isinstance(state, dict) and state.get("error"):
                problems.append("%s failed on node %s: %s" % (display, node, state["error"]))
    return problems


def post_apply_verdict(outputs, expected_allowed, policies=None):
    """Whether the enforced set passed its check.

    It fails when Cilium marked one of ``policies`` (the applied Cilium policies, as
    k8s_info returns them) invalid or failed to apply it on a node, or when Hubble saw a
    policy drop of a declared connection (``expected_allowed`` of the proof: flows, DNS and API
    server access, by namespace and selector).

    :param outputs: ``hubble observe --verdict DROPPED -o json`` output of each agent.
    :returns: ``{ok, problems: [text], dropped: [{flow, from, to, port, protocol, count}], other_drops}``.
    """
    where = "network_policy_post_apply_verdict"
    texts = _outputs(outputs, where)
    if not isinstance(expected_allowed, (list, tuple)):
        raise InvalidInput("expected_allowed", expected_allowed, "must be the proof's expected_allowed list",
                           where=where)
    problems = _policy_problems(policies)
    dropped = {}
    other = 0
    for text in texts:
        for flow in parse_flows(text):
            if flow["verdict"] != "DROPPED" or flow["reply"]:
                continue
            if flow["drop_reason"] is not None and flow["drop_reason"] not in _POLICY_DROP_REASONS:
                continue
            declared = None
            for entry in expected_allowed:
                if (_matches_end(entry.get("from"), flow["from"]) and _matches_end(entry.get("to"), flow["to"])
                        and _matches_port(entry.get("ports") or [], flow)):
                    declared = entry.get("flow", "declared")
                    break
            if declared is None:
                other += 1
                continue
            key = (declared, flow["from"]["display"], flow["to"]["display"], flow["port"] or 0, flow["protocol"] or "")
            if key not in dropped:
                dropped[key] = {"flow": declared, "from": key[1], "to": key[2], "port": flow["port"],
                                "protocol": flow["protocol"], "count": 0}
            dropped[key]["count"] += 1
    drops = [dropped[key] for key in sorted(dropped)]
    for item in drops:
        problems.append("%s: %s -> %s on %s/%s was dropped %d time(s)" % (
            item["flow"], item["from"], item["to"], item["port"], item["protocol"], item["count"]))
    return {"ok": not problems, "problems": problems, "dropped": drops, "other_drops": other}
