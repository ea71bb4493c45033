# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests of module_utils/netpol.py on random clusters and policy sets.

* The identity engine (bitsets, one answer per identity) and the per-pair evaluator
  (walks every policy for every pair) give the same verdict for every pair and probe.
* Adding an allow never removes reachability: neither an allow rule added to a policy that
  already isolates the direction, nor a Cilium policy with default deny disabled.
* A default-deny policy and no allow for its namespace denies every pair of that namespace
  in that direction.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_engine import EndpointDirectory, PairEvaluator
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_model import parse_model, parse_probes

NAMESPACES = ("n1", "n2")
APPS = ("web", "db", "api")
SERVED = (
    {"name": "http", "port": 80, "protocol": "TCP"},
    {"name": "pg", "port": 5432, "protocol": "TCP"},
    {"name": "dns", "port": 53, "protocol": "UDP"},
)
EXTRA_PROBES = [
    {
        "port": 443,
        "from": ["n1/*", "n2/*"],
        "to": ["entity:world", "cidr:203.0.113.5", "cidr:198.51.100.9", "entity:kube-apiserver"],
    },
    {"port": 80, "from": ["entity:host", "entity:world", "cidr:203.0.113.5"]},
]
PROPERTY_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def clusters(draw):
    namespaces = {name: {"team": draw(st.sampled_from(("a", "b")))} for name in NAMESPACES}
    # one pod serves every named port, so named-port rules always resolve somewhere
    pods = [{"namespace": "n1", "name": "all-0", "labels": {"app": "web"}, "ip": "10.1.0.1", "ports": list(SERVED)}]
    count = draw(st.integers(min_value=2, max_value=6))
    for index in range(count):
        labels = {"app": draw(st.sampled_from(APPS))}
        if draw(st.booleans()):
            labels["tier"] = draw(st.sampled_from(("fe", "be")))
        ports = draw(st.lists(st.sampled_from(SERVED), max_size=3, unique_by=lambda item: item["name"]))
        pods.append(
            {
                "namespace": draw(st.sampled_from(NAMESPACES)),
                "name": "p-%d" % index,
                "labels": labels,
                "ip": "10.1.0.%d" % (index + 10),
                "ports": ports,
            }
        )
    return namespaces, pods


def app_selector(draw):
    return draw(
        st.sampled_from(
            (
                {},
                {"matchLabels": {"app": "web"}},
                {"matchLabels": {"app": "db"}},
                {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
                {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]},
            )
        )
    )


def np_ports(draw):
    return draw(
        st.sampled_from(
            (
                None,
                [{"port": 80}],
                [{"port": "http"}],
                [{"protocol": "UDP"}],
                [{"port": 5000, "endPort": 5500}],
                [{"port": "pg", "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            )
        )
    )


def np_peers(draw):
    options = (
        None,
        [{"podSelector": app_selector(draw)}],
        [{"namespaceSelector": {"matchLabels": {"team": draw(st.sampled_from(("a", "b")))}}}],
        [{"namespaceSelector": {}, "podSelector": app_selector(draw)}],
        [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}}],
        [{"podSelector": {"matchLabels": {"app": "api"}}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}],
    )
    return draw(st.sampled_from(options))


def np_rule(draw, peer_key):
    rule = {}
    peers = np_peers(draw)
    if peers is not None:
        rule[peer_key] = peers
    ports = np_ports(draw)
    if ports is not None:
        rule["ports"] = ports
    return rule


@st.composite
def network_policies(draw, namespace=None, name="np"):
    namespace = namespace or draw(st.sampled_from(NAMESPACES))
    types = draw(st.sampled_from((["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    spec = {"podSelector": app_selector(draw), "policyTypes": types}
    if "Ingress" in types:
        spec["ingress"] = [np_rule(draw, "from") for _rule in range(draw(st.integers(0, 2)))]
    if "Egress" in types:
        spec["egress"] = [np_rule(draw, "to") for _rule in range(draw(st.integers(0, 2)))]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def cilium_peer(draw, direction):
    prefix = "from" if direction == "ingress" else "to"
    options = [
        {},
        {prefix + "Endpoints": [app_selector(draw)]},
        {
            prefix
            + "Endpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": draw(st.sampled_from(NAMESPACES))}}]
        },
        {prefix + "Entities": [draw(st.sampled_from(("world", "cluster", "host", "kube-apiserver", "all")))]},
        {prefix + "CIDRSet": [{"cidr": "203.0.113.0/24", "except": ["203.0.113.0/30"]}]},
        {prefix + "Endpoints": []},
    ]
    if direction == "egress":
        options.append({"toFQDNs": [{"matchPattern": "*.example.com"}]})
    return dict(draw(st.sampled_from(options)))


def cilium_rule(draw, direction, deny=False):
    rule = cilium_peer(draw, direction)
    if deny and "toFQDNs" in rule:
        rule = {}
    choice = draw(st.sampled_from(("none", "port", "named", "l7", "range")))
    if choice == "port":
        rule["toPorts"] = [{"ports": [{"port": "80", "protocol": "TCP"}, {"port": "53", "protocol": "UDP"}]}]
    elif choice == "named":
        rule["toPorts"] = [{"ports": [{"port": "pg"}]}]
    elif choice == "range":
        rule["toPorts"] = [{"ports": [{"port": "400", "endPort": 6000}]}]
    elif choice == "l7" and not deny:
        rule["toPorts"] = [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]
    return rule


@st.composite
def cilium_policies(draw, namespace=None, name="cnp", clusterwide=None, relaxed=False):
    if clusterwide is None:
        clusterwide = draw(st.booleans()) and namespace is None
    spec = {"endpointSelector": app_selector(draw)}
    for key, direction, deny in (
        ("ingress", "ingress", False),
        ("egress", "egress", False),
        ("ingressDeny", "ingress", True),
        ("egressDeny", "egress", True),
    ):
        if relaxed and deny:
            continue
        if draw(st.integers(0, 3)) == 0 or (key == "ingress" and relaxed):
            spec[key] = [cilium_rule(draw, direction, deny) for _rule in range(draw(st.integers(1, 2)))]
    if not any(key in spec for key in ("ingress", "egress", "ingressDeny", "egressDeny")):
        spec["ingress"] = [cilium_rule(draw, "ingress")]
    if relaxed:
        spec["enableDefaultDeny"] = {"ingress": False, "egress": False}
    elif draw(st.integers(0, 4)) == 0:
        spec["enableDefaultDeny"] = {"ingress": draw(st.booleans())}
    if clusterwide:
        return {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace or draw(st.sampled_from(NAMESPACES))},
        "spec": spec,
    }


@st.composite
def policy_sets(draw, namespace=None, allow_clusterwide=True):
    policies = []
    for index in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            policies.append(draw(network_policies(namespace=namespace, name="np-%d" % index)))
        else:
            policies.append(
                draw(
                    cilium_policies(
                        namespace=namespace,
                        name="cnp-%d" % index,
                        clusterwide=None if allow_clusterwide and namespace is None else False,
                    )
                )
            )
    return policies


def verdicts(result):
    """(port, protocol, from, to) -> allowed / restricted / denied."""
    table = {}
    for entry in result["reachability"]:
        restricted = {(item["from"], item["to"]) for item in entry["restricted"]}
        for src, dst in entry["allowed"]:
            table[(entry["port"], entry["protocol"], src, dst)] = (
                "restricted" if (src, dst) in restricted else "allowed"
            )
        for src, dst in entry["denied"]:
            table[(entry["port"], entry["protocol"], src, dst)] = "denied"
    return table


def allowed_set(result):
    return {key for key, value in verdicts(result).items() if value != "denied"}


def probes_for(pods):
    served = sorted({(port["port"], port["protocol"]) for pod in pods for port in pod["ports"]})
    return [{"port": port, "protocol": protocol} for port, protocol in served] + copy.deepcopy(EXTRA_PROBES)


@PROPERTY_SETTINGS
@given(
    cluster=clusters(),
    policies=policy_sets(),
    mode=st.sampled_from(("default", "default", "always", "never")),
    localhost=st.booleans(),
)
def test_identity_engine_agrees_with_per_pair_evaluation(cluster, policies, mode, localhost):
    namespaces, pods = cluster
    probes = probes_for(pods)
    result = plan_reachability(
        namespaces, pods, policies, probes=probes, policy_enforcement_mode=mode, allow_localhost=localhost
    )
    model = parse_model(namespaces, pods, policies)
    directory = EndpointDirectory(model)
    evaluator = PairEvaluator(model, mode, localhost)
    table = verdicts(result)
    for entry in result["reachability"]:
        assert entry["counts"] == {
            "allowed": len(entry["allowed"]),
            "denied": len(entry["denied"]),
            "restricted": len(entry["restricted"]),
        }
    checked = 0
    for probe in parse_probes(probes, model.pods):
        sources = (
            directory.pods
            if probe.sources is None
            else [endpoint for ref in probe.sources for endpoint in directory.resolve(ref, "p", "p")]
        )
        if probe.destinations is None:
            destinations = [
                endpoint
                for endpoint in directory.pods
                if any(port.port == probe.port and port.protocol == probe.protocol for port in endpoint.ports)
            ]
        else:
            destinations = [endpoint for ref in probe.destinations for endpoint in directory.resolve(ref, "p", "p")]
        for source in sources:
            for destination in destinations:
                if source.ref == destination.ref:
                    continue
                expected, _rule, _layer = evaluator.evaluate(source, destination, probe.port, probe.protocol)
                assert table[(probe.port, probe.protocol, source.ref, destination.ref)] == expected, (
                    source.ref,
                    destination.ref,
                    probe,
                )
                checked += 1
    assert checked == len(table)


@PROPERTY_SETTINGS
@given(cluster=clusters(), policies=policy_sets(), data=st.data())
def test_adding_an_allow_rule_never_removes_reachability(cluster, policies, data):
    namespaces, pods = cluster
    probes = probes_for(pods)
    before = allowed_set(plan_reachability(namespaces, pods, policies, probes=probes))
    changed = copy.deepcopy(policies)
    targets = [policy for policy in changed if policy["kind"] == "NetworkPolicy"]
    if targets and data.draw(st.booleans()):
        target = data.draw(st.sampled_from(targets))
        direction = data.draw(st.sampled_from(target["spec"]["policyTypes"]))
        key, peer_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        target["spec"].setdefault(key, []).append(np_rule(data.draw, peer_key))
    else:
        changed.append(data.draw(cilium_policies(name="extra-allow", relaxed=True)))
    after = allowed_set(plan_reachability(namespaces, pods, changed, probes=probes))
    assert before <= after, sorted(before - after)


@PROPERTY_SETTINGS
@given(
    cluster=clusters(),
    others=policy_sets(namespace="n2"),
    direction=st.sampled_from(("Ingress", "Egress")),
    selector_labels=st.sampled_from(({}, {"app": "web"})),
)
def test_default_deny_without_allows_denies_its_namespace(cluster, others, direction, selector_labels):
    namespaces, pods = cluster
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "n1"},
        "spec": {
            "podSelector": {"matchLabels": selector_labels} if selector_labels else {},
            "policyTypes": [direction],
        },
    }
    result = plan_reachability(namespaces, pods, others + [deny], probes=probes_for(pods)[:-2])
    isolated = {
        "%s/%s" % (pod["namespace"], pod["name"])
        for pod in pods
        if pod["namespace"] == "n1" and all(pod["labels"].get(key) == value for key, value in selector_labels.items())
    }
    assert isolated
    for entry in result["reachability"]:
        for src, dst in entry["allowed"]:
            assert (dst if direction == "Ingress" else src) not in isolated, (src, dst, entry["port"])
