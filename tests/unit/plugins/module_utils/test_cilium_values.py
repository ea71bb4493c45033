# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/cilium_values.py and its chart data.

Expected values come from outside the code under test: the reference chart files in
../shared/reference (values.yaml, values.schema.json, the CiliumLoadBalancerIPPool CRD,
their published SHA-256 sums), Cilium's documented rules (DESIGN.md facts: MTU is the
underlay MTU, IPv6 minimum 1280, 110 pods need a /25, ...) and plain arithmetic.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import importlib
import importlib.util
import ipaddress
import itertools
import os
import re

import jsonschema
import pytest
import reference_data
import yaml

from ansible_collections.zerotrust.cilium.plugins.module_utils import cilium_chart_data as chart
from ansible_collections.zerotrust.cilium.plugins.module_utils import cilium_values as cv
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs

ROOT = reference_data.ROOT
VALUES_TEXT = reference_data.chart_values_text()
REFERENCE_VALUES = yaml.safe_load(VALUES_TEXT)
REFERENCE_SCHEMA = reference_data.chart_values_schema()
REFERENCE_POOL_SCHEMA = reference_data.lb_ippool_schema()

# The source guide's "production" values, as published (four keys the chart does not have).
SOURCE_GUIDE_VALUES = yaml.safe_load("""
kubeProxyReplacement: true
k8sServiceHost: 192.0.2.10
k8sServicePort: 6443
bpf:
  masquerade: true
lb:
  algorithm: maglev
conntrack:
  enabled: false
policyEnforceMode: "always"
hubble:
  enabled: true
  relay:
    enabled: true
    replicas: 2
  ui:
    enabled: true
  metrics:
    enabled: [dns, drop, tcp, flow, port-distribution, icmp, http]
resources:
  limits: {cpu: "1", memory: "1Gi"}
  requests: {cpu: "200m", memory: "256Mi"}
ipam:
  mode: "kubernetes"
lbExternalIPPool:
  cidr: 192.168.100.0/24
""")

BASE_SPEC = {
    "zerotrust_api_server_host": "192.0.2.10",
    "zerotrust_api_server_port": 6443,
    "zerotrust_pod_cidr": "10.42.0.0/16",
    "zerotrust_service_cidr": "10.43.0.0/16",
    "zerotrust_node_cidrs": ["192.0.2.0/24"],
    "zerotrust_underlay_mtu": 1500,
    "cilium_version": "1.20.0",
    "cilium_nodes": 3,
    "cilium_control_plane_nodes": 3,
}


def spec(**changes):
    result = copy.deepcopy(BASE_SPEC)
    result.update(changes)
    return result


def reference_paths(tree, prefix=()):
    for key, value in tree.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from reference_paths(value, prefix + (key,))


def problems_of(values, **kwargs):
    return [str(problem) for problem in cv.validate_values(values, **kwargs)]


def longest_prefix_for(pods, bits):
    """Longest prefix whose block keeps ``pods`` + 2 (router, health) after first and last address."""
    for prefix in range(bits, -1, -1):
        if (1 << (bits - prefix)) - 2 >= pods + 2:
            return prefix
    raise AssertionError(pods)


# --------------------------------------------------------------------------------------
# The chart data shipped in the collection
# --------------------------------------------------------------------------------------

def load_generator():
    path = os.path.join(ROOT, "tools", "gen_cilium_chart_data.py")
    spec_ = importlib.util.spec_from_file_location("gen_cilium_chart_data", path)
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module


def published_sha256():
    """The checksums published with the shipped chart and CRD files."""
    sums = {}
    for readme in (os.path.join(reference_data.CHART_DIR, "README.md"),):
        with open(readme) as handle:
            for line in handle:
                match = re.search(r"`([\w.]+\.(?:yaml|json))`.*\|\s*([0-9a-f]{64})\s*\|", line)
                if match:
                    sums[match.group(1)] = match.group(2)
    return sums


def test_shipped_sources_are_the_published_chart_files():
    generator = load_generator()
    published = published_sha256()
    for name in ("values.yaml", "values.schema.json", "ciliumloadbalancerippools.yaml"):
        data = generator.read_source(name, generator.SOURCE_DIR)
        assert hashlib.sha256(data).hexdigest() == published[name], name


def test_regenerating_the_chart_data_gives_the_same_module():
    generator = load_generator()
    with open(os.path.join(ROOT, "plugins", "module_utils", "cilium_chart_data.py")) as handle:
        assert generator.render() == handle.read()
    assert generator.main(["--check"]) == 0


def test_generator_refuses_a_changed_source(tmp_path):
    generator = load_generator()
    for name in ("values.schema.json", "ciliumloadbalancerippools.yaml"):
        (tmp_path / name).write_bytes(generator.read_source(name, generator.SOURCE_DIR))
    (tmp_path / "values.yaml").write_text(VALUES_TEXT + "\n# a local edit\n")
    with pytest.raises(SystemExit) as raised:
        generator.render(str(tmp_path))
    assert "values.yaml: sha256" in str(raised.value)


def test_generator_refuses_an_unclassified_commented_key():
    generator = load_generator()
    text = VALUES_TEXT.replace("loadBalancer:\n", "loadBalancer:\n  # -- made up\n  # madeUpKey: true\n", 1)
    with pytest.raises(SystemExit) as raised:
        generator.classify(generator.commented_keys(text, REFERENCE_VALUES))
    assert "loadBalancer.madeUpKey" in str(raised.value)


def test_chart_data_equals_the_reference_files():
    assert chart.CHART_VERSION == "1.20.0"
    assert chart.DEFAULTS == REFERENCE_VALUES
    assert chart.VALUES_SCHEMA == REFERENCE_SCHEMA
    assert chart.LB_IP_POOL_CRD["versions"]["v2"]["schema"] == REFERENCE_POOL_SCHEMA
    assert chart.LB_IP_POOL_CRD["versions"]["v2alpha1"]["served"] is True


def test_every_key_of_the_chart_values_is_allowed():
    problems = problems_of(REFERENCE_VALUES)
    assert problems == []
    assert len(list(reference_paths(REFERENCE_VALUES))) > 1000


@pytest.mark.parametrize("path, line", [
    ("loadBalancer.algorithm", "  # algorithm: random"),
    ("loadBalancer.mode", "  # mode: snat"),
    ("loadBalancer.dsrDispatch", "  # dsrDispatch: opt"),
    ("policyAuditMode", "# policyAuditMode: false"),
    ("nodePort.range", '  # range: "30000,32767"'),
    ("egressGateway.maxPolicyEntries", "  # maxPolicyEntries: 16384"),
    ("maglev.tableSize", "# tableSize:"),
    ("l2announcements.leaseDuration", "  # leaseDuration: 15s"),
])
def test_documented_commented_keys_are_allowed(path, line):
    assert line in VALUES_TEXT.splitlines()
    values = {}
    node = values
    parts = path.split(".")
    for key in parts[:-1]:
        node = node.setdefault(key, {})
    node[parts[-1]] = 65521 if parts[-1] == "tableSize" else ("dsr" if parts[-1] == "mode" else "x")
    unknown = [problem for problem in problems_of(values) if "is not a key" in problem]
    assert unknown == []


@pytest.mark.parametrize("path", ["securityContext.runAsUser", "envoy.log.date", "ciliumEndpointSlice.nodes"])
def test_commented_examples_are_not_chart_keys(path):
    assert path not in chart.DOCUMENTED_COMMENTED_KEYS


def test_pass_through_maps_take_any_key_but_resources_are_checked():
    values = {"nodeSelector": {"example.com/pool": "infra"}, "podAnnotations": {"a": "b"},
              "operator": {"affinity": {"nodeAffinity": {}}}}
    assert problems_of(values) == []
    problems = problems_of({"resources": {"limit": {"cpu": "1"}}})
    assert problems == ["values.resources.limit: {'cpu': '1'} is not a field of Kubernetes resources "
                        "(accepted: claims, limits, requests); did you mean limits?"]


# --------------------------------------------------------------------------------------
# The source guide's mistakes
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, fragment", [
    ("values.lb.algorithm", "did you mean loadBalancer.algorithm?"),
    ("values.policyEnforceMode", "did you mean policyEnforcementMode?"),
    ("values.conntrack.enabled", "size them with bpf.ctTcpMax and bpf.ctAnyMax"),
    ("values.lbExternalIPPool.cidr", "CiliumLoadBalancerIPPool (cilium.io/v2) objects"),
])
def test_source_guide_mistakes_are_refused_with_the_fix(field, fragment):
    problems = problems_of(SOURCE_GUIDE_VALUES)
    matching = [problem for problem in problems if problem.startswith(field + ":")]
    assert len(matching) == 1, problems
    assert "is not a key of the cilium chart 1.20.0" in matching[0]
    assert fragment in matching[0]


def test_source_guide_values_fail_as_a_whole_with_every_mistake_listed():
    with pytest.raises(InvalidInputs) as raised:
        cv.run({"values": SOURCE_GUIDE_VALUES})
    message = str(raised.value)
    assert message.startswith("cilium_values: 4 problem(s) found:\n- ")
    for key in ("lb.algorithm", "policyEnforceMode", "conntrack.enabled", "lbExternalIPPool.cidr"):
        assert "values.%s:" % key in message


def test_source_guide_values_are_schema_valid_which_is_why_helm_accepts_them():
    assert list(jsonschema.Draft7Validator(REFERENCE_SCHEMA).iter_errors(SOURCE_GUIDE_VALUES)) == []


def test_source_guide_http_metric_is_a_warning_not_an_error():
    values = {"hubble": {"metrics": {"enabled": ["dns", "http"]}}}
    assert problems_of(values) == []
    assert any("legacy 'http' metric" in warning for warning in cv.value_warnings(values))


def test_source_guide_mistakes_in_overrides_name_the_variable():
    overrides = {key: SOURCE_GUIDE_VALUES[key] for key in ("lb", "conntrack", "policyEnforceMode", "lbExternalIPPool")}
    with pytest.raises(InvalidInputs) as raised:
        cv.build(spec(), overrides=overrides)
    fields = sorted(problem.field for problem in raised.value.problems)
    assert fields == ["cilium_values_overrides.conntrack.enabled", "cilium_values_overrides.lb.algorithm",
                      "cilium_values_overrides.lbExternalIPPool.cidr", "cilium_values_overrides.policyEnforceMode"]


# --------------------------------------------------------------------------------------
# Bad values: one problem each, message asserted
# --------------------------------------------------------------------------------------

KPR_ON = {"kubeProxyReplacement": True, "k8sServiceHost": "192.0.2.10", "k8sServicePort": 6443}

BAD_VALUES = [
    ("removed tunnel key", {"tunnel": "vxlan"},
     "values.tunnel: 'vxlan' is not a key of the cilium chart 1.20.0: tunnel was removed in Cilium 1.15 (deprecated in "
     "1.14); set routingMode (native or tunnel) and tunnelProtocol (vxlan or geneve) instead"),
    ("removed endpoint slice switch", {"enableCiliumEndpointSlice": True},
     "values.enableCiliumEndpointSlice: True is not a key of the cilium chart 1.20.0: enableCiliumEndpointSlice was "
     "removed in Cilium 1.19; use ciliumEndpointSlice.enabled"),
    ("removed metallb bgp", {"bgp": {"enabled": True}},
     "values.bgp.enabled: True is not a key of the cilium chart 1.20.0: bgp (the MetalLB-based BGP: bgp.enabled, "
     "bgp.announce) was removed in Cilium 1.17; use bgpControlPlane.enabled"),
    ("key at the wrong level", {"masquerade": True},
     "values.masquerade: True is not a key of the cilium chart 1.20.0: Helm would ignore it without a word; did you mean "
     "bpf.masquerade?"),
    ("misspelt nested key", {"hubble": {"relay": {"replica": 2}}},
     "values.hubble.relay.replica: 2 is not a key of the cilium chart 1.20.0: Helm would ignore it without a word; "
     "did you mean hubble.relay.replicas?"),
    ("removed kube-proxy replacement mode", dict(KPR_ON, kubeProxyReplacement="strict"),
     "values.kubeProxyReplacement: 'strict' was removed in Cilium 1.15 (strict, partial, probe, disabled); use true or "
     "false"),
    ("kube-proxy replacement without API address", {"kubeProxyReplacement": True},
     "values.k8sServiceHost: '' is empty but kubeProxyReplacement is true: without kube-proxy the agent cannot reach "
     "the API through the 'kubernetes' ClusterIP"),
    ("API address is the kubernetes service", dict(KPR_ON, k8sServiceHost="kubernetes.default.svc"),
     "values.k8sServiceHost: 'kubernetes.default.svc' names the 'kubernetes' Service, whose ClusterIP only works "
     "while kube-proxy runs"),
    ("host and host reference", dict(KPR_ON, k8sServiceHostRef={"name": "api", "key": "host"}),
     "values.k8sServiceHostRef.name: 'api' and k8sServiceHost are both set; the chart accepts only one of them"),
    ("port out of range", dict(KPR_ON, k8sServicePort=70000),
     "values.k8sServicePort: 70000 is out of range: use 1 to 65535"),
    ("port missing", {"k8sServiceHost": "192.0.2.10"},
     "values.k8sServicePort: '' must be the port of k8sServiceHost (1 to 65535, e.g. 6443)"),
    ("auto direct routes in tunnel mode", {"routingMode": "tunnel", "autoDirectNodeRoutes": True},
     "values.autoDirectNodeRoutes: True only works with routingMode native (routingMode is 'tunnel')"),
    ("native routing without native CIDR", {"routingMode": "native"},
     "values.ipv4NativeRoutingCIDR: '' is empty but routingMode is native with IPv4 masquerading"),
    ("native CIDR with host bits", {"routingMode": "native", "ipv4NativeRoutingCIDR": "10.42.0.1/16"},
     "values.ipv4NativeRoutingCIDR: '10.42.0.1/16' is not a CIDR such as '10.0.0.0/8' (host bits must be zero)"),
    ("BPF masquerade without kube-proxy replacement", {"bpf": {"masquerade": True}},
     "values.bpf.masquerade: True needs kubeProxyReplacement: true"),
    ("http and httpV2 together", {"hubble": {"metrics": {"enabled": ["http", "httpV2:exemplars=true"]}}},
     "values.hubble.metrics.enabled: ['http', 'httpV2:exemplars=true'] lists both http and httpV2, which register the "
     "same Prometheus metrics and cannot be combined; keep httpV2"),
    ("UI without relay", {"hubble": {"ui": {"enabled": True}}},
     "values.hubble.ui.enabled: True needs hubble.relay.enabled: true (the UI reads flows through Hubble Relay)"),
    ("MTU below the IPv4 minimum", {"MTU": 500},
     "values.MTU: 500 is below the IPv4 minimum of 576; MTU is the underlay MTU"),
    ("MTU below the IPv6 minimum", {"MTU": 1200, "ipv6": {"enabled": True}},
     "values.MTU: 1200 is below the IPv6 minimum of 1280"),
    ("MTU above the maximum", {"MTU": 70000}, "values.MTU: 70000 is above the maximum of 65520"),
    ("MTU as a string", {"MTU": "1500"},
     "values.MTU: '1500' has the wrong type for the chart's values.schema.json, which accepts: integer"),
    ("replicas as a string", {"operator": {"replicas": "2"}},
     "values.operator.replicas: '2' has the wrong type for the chart's values.schema.json, which accepts: integer"),
    ("policy mode misspelt value", {"policyEnforcementMode": "strict"},
     "values.policyEnforcementMode: 'strict' is not one of: default, always, never"),
    ("DSR over VXLAN", dict(KPR_ON, loadBalancer={"mode": "dsr"}),
     "values.loadBalancer.mode: 'dsr' with routingMode tunnel needs loadBalancer.dsrDispatch: geneve and "
     "tunnelProtocol: geneve (DSR does not work over VXLAN)"),
    ("Geneve dispatch over VXLAN", dict(KPR_ON, routingMode="native", ipv4NativeRoutingCIDR="10.0.0.0/8",
                                        loadBalancer={"mode": "dsr", "dsrDispatch": "geneve"}),
     "values.loadBalancer.dsrDispatch: 'geneve' needs tunnelProtocol: geneve (tunnelProtocol is 'vxlan')"),
    ("conntrack map too small", {"bpf": {"ctTcpMax": 100}},
     "values.bpf.ctTcpMax: 100 is out of range: Cilium accepts 1024 to 16777216 entries"),
    ("BBR without bandwidth manager", {"bandwidthManager": {"bbr": True}},
     "values.bandwidthManager.bbr: True needs bandwidthManager.enabled: true"),
    ("no address family", {"ipv4": {"enabled": False}},
     "values.ipv4.enabled: False and ipv6.enabled are both off; enable at least one address family"),
    ("IPv6 underlay without IPv6", {"underlayProtocol": "ipv6"},
     "values.underlayProtocol: 'ipv6' needs ipv6.enabled: true"),
    ("mask shorter than the pool", {"ipam": {"operator": {"clusterPoolIPv4PodCIDRList": ["10.42.0.0/16"],
                                                          "clusterPoolIPv4MaskSize": 8}}},
     "values.ipam.operator.clusterPoolIPv4MaskSize: 8 must be between the pool's prefix /16 and /32"),
    ("IPv6 mask too far from the pool", {"ipv6": {"enabled": True},
                                         "ipam": {"operator": {"clusterPoolIPv6PodCIDRList": ["fd00:10::/96"],
                                                               "clusterPoolIPv6MaskSize": 120}}},
     "values.ipam.operator.clusterPoolIPv6MaskSize: 120 is more than 16 bits longer than fd00:10::/96"),
    ("pool CIDR with host bits", {"ipam": {"operator": {"clusterPoolIPv4PodCIDRList": ["10.42.0.1/16"]}}},
     "values.ipam.operator.clusterPoolIPv4PodCIDRList: '10.42.0.1/16' is not a CIDR such as '10.0.0.0/8'"),
    ("request above limit", {"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}},
     "values.resources.requests.memory: '2Gi' is larger than the limit '1Gi'; Kubernetes refuses such pods"),
    ("quantity typo", {"operator": {"resources": {"limits": {"memory": "512MB"}}}},
     "values.operator.resources.limits.memory: '512MB' is not a Kubernetes quantity such as '500m', '2', '512Mi' or "
     "'1Gi'"),
    ("unknown encryption type", {"encryption": {"enabled": True, "type": "wg"}},
     "values.encryption.type: 'wg' is not one of: ipsec, wireguard, ztunnel"),
]


@pytest.mark.parametrize("values, expected", [(case[1], case[2]) for case in BAD_VALUES],
                         ids=[case[0] for case in BAD_VALUES])
def test_bad_values_are_refused_with_the_fix(values, expected):
    problems = problems_of(values)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_bad_value_table_is_large_enough():
    assert len(BAD_VALUES) >= 20


def test_every_problem_is_reported_at_once():
    values = {"tunnel": "vxlan", "MTU": 100, "autoDirectNodeRoutes": True, "kubeProxyReplacement": True,
              "hubble": {"ui": {"enabled": True}}}
    with pytest.raises(InvalidInputs) as raised:
        cv.run({"values": values})
    fields = [problem.field for problem in raised.value.problems]
    assert fields == ["values.tunnel", "values.k8sServiceHost", "values.autoDirectNodeRoutes", "values.hubble.ui.enabled",
                      "values.MTU"]
    assert str(raised.value).count("\n- ") == 5


def test_api_address_inside_the_service_cidr_is_refused():
    problems = problems_of(dict(KPR_ON, k8sServiceHost="10.96.0.1"), service_cidrs=["10.96.0.0/12"])
    assert problems == ["values.k8sServiceHost: '10.96.0.1' lies in the service CIDR 10.96.0.0/12: a ClusterIP only "
                        "works while kube-proxy runs; use the API server address, a VIP or a load balancer in front "
                        "of the API servers"]


def test_auto_api_address_needs_no_port_and_is_warned_about():
    values = {"kubeProxyReplacement": True, "k8sServiceHost": "auto"}
    assert problems_of(values) == []
    assert any("cluster-info" in warning for warning in cv.value_warnings(values))


def test_native_routing_cidr_may_come_from_the_cluster_pool():
    assert problems_of({"routingMode": "native", "nativeRoutingCIDRFromClusterPool": True}) == []


def test_native_routing_without_masquerading_needs_no_native_cidr():
    assert problems_of({"routingMode": "native", "enableIPv4Masquerade": False}) == []
    # values.yaml: IPv4 masquerading defaults to on "unless ipam eni mode is active".
    assert "@default -- `true` unless ipam eni mode is active" in VALUES_TEXT
    assert problems_of({"routingMode": "native", "ipam": {"mode": "eni"}}) == []


@pytest.mark.parametrize("version, expected", [
    ("1.19.4", "cilium_version: '1.19.4' has no chart data in this collection (it ships the cilium chart 1.20.0)"),
    ("1.20", "cilium_version: '1.20' is not a pinned chart version such as '1.20.0' (major.minor.patch)"),
    ("latest", "cilium_version: 'latest' is not a pinned chart version"),
])
def test_chart_versions_without_data_are_refused(version, expected):
    problems, _warnings = cv.check_chart_version(version)
    assert str(problems[0]).startswith(expected)


def test_a_later_patch_release_is_validated_with_a_warning():
    problems, warnings = cv.check_chart_version("1.20.3")
    assert problems == []
    assert warnings == ["cilium_version 1.20.3 is validated with the 1.20.0 chart data of this collection"]


# --------------------------------------------------------------------------------------
# The values builder over a matrix of cluster specs
# --------------------------------------------------------------------------------------

FAMILIES = {
    "ipv4": {"cilium_pod_cidrs": ["10.42.0.0/16"]},
    "ipv6": {"cilium_pod_cidrs": ["fd00:10::/104"], "zerotrust_service_cidr": "fd00:20::/112"},
    "dual": {"cilium_pod_cidrs": ["10.42.0.0/16", "fd00:10::/104"]},
}
MATRIX = list(itertools.product(["native", "tunnel"], sorted(FAMILIES), ["none", "ipsec", "wireguard"], [True, False]))


@pytest.mark.parametrize("routing, family, encryption, kpr", MATRIX,
                         ids=["-".join(str(part) for part in case) for case in MATRIX])
def test_values_for_the_spec_matrix(routing, family, encryption, kpr):
    cluster = spec(cilium_routing_mode=routing, cilium_encryption=encryption, cilium_kube_proxy_replacement=kpr,
                   cilium_bpf_masquerade=kpr, **FAMILIES[family])
    built = cv.build(cluster)
    values = built["values"]

    assert list(jsonschema.Draft7Validator(REFERENCE_SCHEMA).iter_errors(values)) == []
    assert cv.validate_values(values) == []
    for path in cv.flatten(values):
        assert cv.lookup(REFERENCE_VALUES, path[:1]) is not cv._MISSING or path[0] == "policyAuditMode", path

    assert values["MTU"] == 1500
    assert values["routingMode"] == routing
    assert values["kubeProxyReplacement"] is kpr
    assert values["bpf"]["masquerade"] is kpr
    assert values["k8sServiceHost"] == "192.0.2.10" and values["k8sServicePort"] == 6443
    has_v4 = family in ("ipv4", "dual")
    has_v6 = family in ("ipv6", "dual")
    assert values["ipv4"] == {"enabled": has_v4} and values["ipv6"] == {"enabled": has_v6}

    operator = values["ipam"]["operator"]
    if has_v4:
        assert operator["clusterPoolIPv4PodCIDRList"] == ["10.42.0.0/16"]
        assert operator["clusterPoolIPv4MaskSize"] == longest_prefix_for(110, 32) == 25
    if has_v6:
        assert operator["clusterPoolIPv6PodCIDRList"] == ["fd00:10::/104"]
        # 110 pods fit a /121, but Cilium refuses IPv6 node blocks more than 16 bits longer than the pool.
        assert operator["clusterPoolIPv6MaskSize"] == min(longest_prefix_for(110, 128), 104 + 16) == 120

    if routing == "tunnel":
        assert values["tunnelProtocol"] == "vxlan"
        assert values["underlayProtocol"] == "ipv4"
        assert values["autoDirectNodeRoutes"] is False
        assert "ipv4NativeRoutingCIDR" not in values
    else:
        assert "tunnelProtocol" not in values
        assert values.get("ipv4NativeRoutingCIDR") == ("10.42.0.0/16" if has_v4 else None)
        assert values.get("ipv6NativeRoutingCIDR") == ("fd00:10::/104" if has_v6 else None)
        # One node subnet: one L2 segment for the IPv4 pod CIDR; no IPv6 node subnet for IPv6-only.
        assert values["autoDirectNodeRoutes"] is has_v4

    if encryption == "none":
        assert "encryption" not in values
    else:
        assert values["encryption"] == {"enabled": True, "type": encryption}

    overhead = {"none": 0, "ipsec": 77, "wireguard": 95}[encryption] + (50 if routing == "tunnel" else 0)
    assert built["plan"]["mtu"]["route_mtu"] == 1500 - overhead


def test_hardened_defaults():
    values = cv.build(spec())["values"]
    assert values["loadBalancer"] == {"algorithm": "maglev"}
    assert values["policyEnforcementMode"] == "default"
    assert values["rollOutCiliumPods"] is True
    assert values["resources"] == {"requests": {"cpu": "100m", "memory": "512Mi"},
                                   "limits": {"cpu": "4000m", "memory": "4Gi"}}
    hubble = values["hubble"]
    assert hubble["enabled"] is True
    assert hubble["relay"]["enabled"] is True and hubble["relay"]["replicas"] == 2
    assert hubble["ui"]["enabled"] is True
    assert hubble["metrics"]["enabled"] == ["dns", "drop", "tcp", "flow", "port-distribution", "icmp", "httpV2"]
    assert hubble["tls"] == {"enabled": True, "auto": {"enabled": True, "method": "cronJob"}}
    assert values["operator"]["replicas"] == 2
    assert values["operator"]["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert values["ipam"]["mode"] == "cluster-pool"


def test_operator_replicas_follow_the_control_plane_nodes():
    built = cv.build(spec(cilium_control_plane_nodes=1))
    assert built["values"]["operator"]["replicas"] == 1
    assert any("lowered to 1" in warning for warning in built["warnings"])
    managed = cv.build(spec(cilium_control_plane_nodes=0))
    assert "nodeSelector" not in managed["values"]["operator"]
    assert managed["values"]["operator"]["replicas"] == 2
    assert any("managed control plane" in warning for warning in managed["warnings"])
    free = cv.build(spec(cilium_control_plane_nodes=1, cilium_operator_on_control_plane=False))
    assert free["values"]["operator"]["replicas"] == 2 and free["warnings"] == []


def test_native_routing_against_the_network_math_is_a_warning():
    built = cv.build(spec(cilium_routing_mode="native", zerotrust_node_cidrs=["192.0.2.0/24", "198.51.100.0/24"]))
    assert built["values"]["autoDirectNodeRoutes"] is False
    assert any("recommends a tunnel" in warning for warning in built["warnings"])


def test_native_routing_cidr_can_be_wider_than_the_pods():
    built = cv.build(spec(cilium_routing_mode="native", cilium_native_routing_cidrs=["10.0.0.0/8"]))
    assert built["values"]["ipv4NativeRoutingCIDR"] == "10.0.0.0/8"


def test_ipv6_only_nodes_tunnel_over_ipv6():
    built = cv.build(spec(cilium_pod_cidrs=["fd00:10::/104"], zerotrust_node_cidrs=["2001:db8::/64"],
                          zerotrust_service_cidr="fd00:20::/112"))
    assert built["values"]["underlayProtocol"] == "ipv6"
    assert built["plan"]["mtu"]["route_mtu"] == 1500 - 70


def test_kubernetes_ipam_leaves_the_pool_to_the_controller_manager():
    values = cv.build(spec(cilium_ipam_mode="kubernetes"))["values"]
    assert values["ipam"] == {"mode": "kubernetes"}


@pytest.mark.parametrize("expected, sizes", [
    (0, None),
    (100000, (524288, 262144)),
    (1000000, (1250000, 625000)),
])
def test_conntrack_map_sizes(expected, sizes):
    assert cv.bpf_ct_sizes(expected) == sizes
    values = cv.build(spec(cilium_bpf_ct_expected_connections=expected))["values"]
    if sizes is None:
        assert "ctTcpMax" not in values["bpf"]
    else:
        assert (values["bpf"]["ctTcpMax"], values["bpf"]["ctAnyMax"]) == sizes


def test_private_registry_rewrites_every_chart_image():
    values = cv.build(spec(cilium_image_registry="registry.example.com/mirror"))["values"]
    expected = {}

    def walk(node, path):
        for key, value in node.items():
            if key == "image" and isinstance(value, dict) and value.get("repository"):
                expected[path + (key,)] = value["repository"]
            elif isinstance(value, dict):
                walk(value, path + (key,))

    walk(REFERENCE_VALUES, ())
    assert len(expected) >= 10
    for path, repository in expected.items():
        rewritten = cv.lookup(values, path)["repository"]
        assert rewritten == "registry.example.com/mirror/" + repository.split("/", 1)[1], path
    assert cv.validate_values(values) == []


def test_overrides_merge_last_and_are_validated():
    built = cv.build(spec(), overrides={"hubble": {"relay": {"replicas": 3}}, "debug": {"enabled": True}})
    assert built["values"]["hubble"]["relay"]["replicas"] == 3
    assert built["values"]["hubble"]["relay"]["enabled"] is True
    assert built["values"]["debug"] == {"enabled": True}
    assert built["base"]["hubble"]["relay"]["replicas"] == 2


def test_overrides_replace_lists_as_helm_does():
    built = cv.build(spec(), overrides={"hubble": {"metrics": {"enabled": ["drop"]}}})
    assert built["values"]["hubble"]["metrics"]["enabled"] == ["drop"]


def test_deep_merge_keeps_its_inputs():
    base = {"a": {"b": 1, "c": [1]}}
    merged = cv.deep_merge(base, {"a": {"c": [2], "d": None}})
    assert merged == {"a": {"b": 1, "c": [2], "d": None}}
    assert base == {"a": {"b": 1, "c": [1]}}


@pytest.mark.parametrize("overrides, expected", [
    ({"MTU": 1450},
     "cilium_values_overrides.MTU: 1450 contradicts the cluster spec (zerotrust_underlay_mtu gives 1500), which the "
     "plan, kernel preflight and node roles read too; set zerotrust_underlay_mtu instead"),
    ({"routingMode": "native", "ipv4NativeRoutingCIDR": "10.42.0.0/16"},
     "cilium_values_overrides.routingMode: 'native' contradicts the cluster spec (cilium_routing_mode gives 'tunnel')"),
    ({"kubeProxyReplacement": "false", "bpf": {"masquerade": False}},
     "cilium_values_overrides.bpf.masquerade: False contradicts the cluster spec (cilium_bpf_masquerade gives True)"),
])
def test_overrides_may_not_contradict_the_cluster_spec(overrides, expected):
    with pytest.raises(InvalidInputs) as raised:
        cv.build(spec(), overrides=overrides)
    assert any(str(problem).startswith(expected) for problem in raised.value.problems), raised.value


def test_overrides_repeating_the_spec_are_fine():
    built = cv.build(spec(), overrides={"MTU": 1500, "kubeProxyReplacement": "true", "k8sServicePort": "6443"})
    assert built["values"]["MTU"] == 1500


# --------------------------------------------------------------------------------------
# Bad cluster specs
# --------------------------------------------------------------------------------------

BAD_SPECS = [
    ({"cilium_routing_mode": "natve"}, "cilium_routing_mode: 'natve' is not one of: native, tunnel"),
    ({"cilium_routing": "native"},
     "cilium_routing: 'native' is not a cluster spec variable the cilium role reads; did you mean cilium_routing_mode?"),
    ({"cilium_kube_proxy_replacement": "yes"}, "cilium_kube_proxy_replacement: 'yes' is not a boolean (true or false)"),
    ({"zerotrust_api_server_host": None}, "zerotrust_api_server_host: None is required"),
    ({"zerotrust_underlay_mtu": 100},
     "zerotrust_underlay_mtu: 100 is out of range: the underlay MTU must be 0 (detect) or 576 to 65520"),
    ({"zerotrust_pod_cidr": "10.42.0.1/16"}, "zerotrust_pod_cidr: '10.42.0.1/16' has host bits set; the network is "
                                             "'10.42.0.0/16'"),
    ({"cilium_pod_cidrs": ["10.42.0.0/16", "10.44.0.0/16"]},
     "cilium_pod_cidrs: ['10.42.0.0/16', '10.44.0.0/16'] must hold one IPv4 and/or one IPv6 CIDR"),
    ({"zerotrust_pod_cidr": "10.42.0.0/24", "cilium_nodes": 10}, "zerotrust_pod_cidr: '10.42.0.0/24' 10.42.0.0/24 "
                                                                 "holds only 2 /25 node blocks"),
    ({"zerotrust_api_server_host": "10.43.0.1"}, "zerotrust_api_server_host: '10.43.0.1' lies in the service CIDR "
                                                 "10.43.0.0/16"),
    ({"cilium_bpf_masquerade": True, "cilium_kube_proxy_replacement": False},
     "cilium_bpf_masquerade: True requires cilium_kube_proxy_replacement: true"),
    ({"cilium_auto_direct_node_routes": True}, "cilium_auto_direct_node_routes: True only works with "
                                               "cilium_routing_mode: native (it is 'tunnel')"),
    ({"cilium_native_routing_cidrs": ["10.0.0.0/24"]},
     "cilium_native_routing_cidrs: '10.0.0.0/24' does not contain the pod CIDR 10.42.0.0/16"),
    ({"cilium_version": "1.19.0"}, "cilium_version: '1.19.0' has no chart data in this collection"),
    ({"cilium_agent_resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
     "cilium_agent_resources.requests.cpu: '2' is larger than the limit '1'"),
    ({"cilium_nodes": 0}, "cilium_nodes: 0 must be at least 1"),
]


@pytest.mark.parametrize("changes, expected", BAD_SPECS, ids=[str(case[1])[:40] for case in BAD_SPECS])
def test_bad_specs_are_refused_naming_the_variable(changes, expected):
    with pytest.raises(InvalidInputs) as raised:
        cv.build(spec(**changes))
    messages = [str(problem) for problem in raised.value.problems]
    assert any(message.startswith(expected) for message in messages), messages
    assert str(raised.value).startswith("cilium_values: ")


def test_spec_must_be_a_mapping():
    with pytest.raises(InvalidInput) as raised:
        cv.build(["zerotrust_pod_cidr"])
    assert str(raised.value) == ("cilium_values: spec: ['zerotrust_pod_cidr'] must be a mapping of zerotrust_* and "
                                 "cilium_* variables")


# --------------------------------------------------------------------------------------
# LB IPAM pools
# --------------------------------------------------------------------------------------

RESERVED = {"zerotrust_pod_cidr": ["10.42.0.0/16"], "zerotrust_service_cidr": ["10.43.0.0/16"]}


def test_pools_become_crd_valid_objects():
    pools = [{"name": "public", "blocks": [{"cidr": "192.0.2.128/27"}, {"start": "192.0.2.200", "stop": "192.0.2.210"}],
              "serviceSelector": {"matchLabels": {"exposure": "public"}}, "allowFirstLastIPs": "No"}]
    manifests, problems = cv.lb_pool_manifests(pools, RESERVED)
    assert problems == []
    (manifest,) = manifests
    assert manifest["apiVersion"] == "cilium.io/v2" and manifest["kind"] == "CiliumLoadBalancerIPPool"
    assert manifest["metadata"] == {"name": "public", "labels": {"app.kubernetes.io/managed-by": "zerotrust.cilium"}}
    assert list(jsonschema.Draft7Validator(REFERENCE_POOL_SCHEMA).iter_errors(manifest)) == []
    assert manifest["spec"]["blocks"][1] == {"start": "192.0.2.200", "stop": "192.0.2.210"}


BAD_POOLS = [
    ([{"name": "Public_Pool", "blocks": [{"cidr": "192.0.2.0/28"}]}],
     "cilium_lb_ip_pools[0].name: 'Public_Pool' is not a Kubernetes object name"),
    ([{"name": "a", "cidrs": ["192.0.2.0/28"]}],
     "cilium_lb_ip_pools[a].cidrs: ['192.0.2.0/28'] is not a pool field (accepted: name, blocks, serviceSelector, "
     "allowFirstLastIPs, disabled, labels)"),
    ([{"name": "a", "blocks": []}], "cilium_lb_ip_pools[a].blocks: [] must be a non-empty list of cidr or start/stop"),
    ([{"name": "a", "blocks": [{"cidr": "192.0.2.1/28"}]}],
     "cilium_lb_ip_pools[a].blocks[0].cidr: '192.0.2.1/28' has host bits set"),
    ([{"name": "a", "blocks": [{"start": "192.0.2.20", "stop": "192.0.2.10"}]}],
     "cilium_lb_ip_pools[a].blocks[0]: {'start': '192.0.2.20', 'stop': '192.0.2.10'} start must not be after stop"),
    ([{"name": "a", "blocks": [{"cidr": "192.0.2.0/28"}]}, {"name": "b", "blocks": [{"cidr": "192.0.2.8/29"}]}],
     "cilium_lb_ip_pools[b]: '192.0.2.8/29' overlaps cilium_lb_ip_pools[a] 192.0.2.0/28; LB IPAM would hand out "
     "addresses twice"),
    ([{"name": "a", "blocks": [{"cidr": "10.42.128.0/24"}]}],
     "cilium_lb_ip_pools[a]: '10.42.128.0/24' overlaps zerotrust_pod_cidr 10.42.0.0/16"),
    ([{"name": "a", "blocks": [{"cidr": "192.0.2.0/28"}], "allowFirstLastIPs": False}],
     "cilium_lb_ip_pools[a].allowFirstLastIPs: False must be the string 'Yes' or 'No' (quote it"),
    ([{"name": "a", "blocks": [{"cidr": "192.0.2.0/28"}], "serviceSelector": {"matchLabel": {"a": "b"}}}],
     "cilium_lb_ip_pools[a].serviceSelector.matchLabel: {'a': 'b'} is not a field of CiliumLoadBalancerIPPool; "
     "the API server would drop it silently; did you mean matchLabels?"),
    ([{"name": "a", "blocks": [{"cidr": "192.0.2.0/28"}]}, {"name": "a", "blocks": [{"cidr": "198.51.100.0/28"}]}],
     "cilium_lb_ip_pools[1].name: 'a' is used by another pool"),
    ([{"name": "a", "blocks": [{"cidr": "192.0.2.0/28"}], "disabled": "no"}],
     "cilium_lb_ip_pools[a].disabled: 'no' is refused by the CiliumLoadBalancerIPPool CRD schema: 'no' is not of type "
     "'boolean'"),
]


@pytest.mark.parametrize("pools, expected", BAD_POOLS, ids=[case[1][:48] for case in BAD_POOLS])
def test_bad_pools_are_refused(pools, expected):
    _manifests, problems = cv.lb_pool_manifests(pools, RESERVED)
    messages = [str(problem) for problem in problems]
    assert any(message.startswith(expected) for message in messages), messages


def test_pool_ranges_are_checked_for_overlap_as_cidrs():
    pools = [{"name": "a", "blocks": [{"start": "192.0.2.10", "stop": "192.0.2.20"}]},
             {"name": "b", "blocks": [{"cidr": "192.0.2.16/30"}]}]
    _manifests, problems = cv.lb_pool_manifests(pools, RESERVED)
    assert len(problems) == 1 and "overlaps" in str(problems[0])
    covered = list(ipaddress.summarize_address_range(ipaddress.ip_address("192.0.2.10"),
                                                     ipaddress.ip_address("192.0.2.20")))
    assert [str(network) for network in covered] == ["192.0.2.10/31", "192.0.2.12/30", "192.0.2.16/30",
                                                     "192.0.2.20/32"]


def test_pool_problems_stop_the_build():
    with pytest.raises(InvalidInputs) as raised:
        cv.build(spec(), lb_pools=[{"name": "a", "blocks": [{"cidr": "10.43.0.0/24"}]}])
    assert [problem.field for problem in raised.value.problems] == ["cilium_lb_ip_pools[a]"]


# --------------------------------------------------------------------------------------
# Helm arguments and release decisions
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("chart_ref, repo, kind", [
    ("cilium", "https://helm.cilium.io/", "repo"),
    ("oci://quay.io/cilium/charts/cilium", None, "oci"),
    ("/srv/charts/cilium-1.20.0.tgz", None, "local"),
    ("/srv/charts/cilium", None, "local"),
])
def test_helm_arguments_for_each_chart_source(chart_ref, repo, kind):
    values = {"MTU": 1500}
    arguments = cv.helm_arguments(values, "1.20.0", chart_ref=chart_ref, chart_repo_url=repo,
                                  kubeconfig="/etc/kubernetes/admin.conf")
    assert cv.chart_source(chart_ref, repo)["kind"] == kind
    assert arguments["chart_ref"] == chart_ref
    assert arguments["release_values"] is values
    assert arguments["wait"] is True and arguments["atomic"] is True
    assert arguments["release_state"] == "present" and arguments["reset_values"] is True
    assert arguments["timeout"] == "15m0s" and arguments["history_max"] == 10
    assert arguments["kubeconfig"] == "/etc/kubernetes/admin.conf"
    assert ("chart_version" in arguments) is (kind != "local")
    assert ("chart_repo_url" in arguments) is (kind == "repo")
    assert "context" not in arguments and "binary_path" not in arguments


def test_helm_arguments_match_the_helm_module_options():
    helm_module = importlib.import_module("ansible_collections.kubernetes.core.plugins.modules.helm")
    fragments = importlib.import_module("ansible_collections.kubernetes.core.plugins.doc_fragments.helm_common_options")
    documented = yaml.safe_load(helm_module.DOCUMENTATION)["options"]
    fragment = yaml.safe_load(fragments.ModuleDocFragment.DOCUMENTATION)["options"]
    arguments = cv.helm_arguments({}, "1.20.0", chart_repo_url=cv.DEFAULT_CHART_REPO, kubeconfig="/k", context="c",
                                  binary_path="/usr/local/bin/helm")
    assert set(arguments) <= set(documented) | set(fragment)


def test_a_chart_name_needs_a_repository():
    with pytest.raises(InvalidInput) as raised:
        cv.chart_source("cilium", None)
    assert "cilium_chart_repo_url: None is required for the chart name 'cilium'" in str(raised.value)


def test_helm_command_applies_the_rendered_values():
    command = cv.helm_command("1.20.0", chart_repo_url="https://helm.cilium.io/")
    assert command.split() == ["helm", "upgrade", "--install", "\\", "cilium", "\\", "cilium", "\\", "--repo",
                               "https://helm.cilium.io/", "\\", "--version", "1.20.0", "\\", "--namespace",
                               "kube-system", "\\", "--values", "values.yaml", "\\", "--reset-values", "\\", "--wait",
                               "--atomic", "--timeout", "15m0s", "\\", "--history-max", "10"]
    local = cv.helm_command("1.20.0", chart_ref="/srv/cilium-1.20.0.tgz")
    assert "--version" not in local and "--repo" not in local


def test_preflight_values_follow_the_upgrade_guide():
    values = cv.build(spec(cilium_image_registry="registry.example.com"))["values"]
    preflight = cv.preflight_values(values)
    assert preflight["preflight"]["enabled"] is True
    assert preflight["agent"] is False
    assert preflight["operator"] == {"enabled": False}
    assert preflight["k8sServiceHost"] == "192.0.2.10" and preflight["k8sServicePort"] == 6443
    assert preflight["preflight"]["image"]["repository"] == "registry.example.com/cilium/cilium"
    assert cv.validate_values(preflight) == []


def release(version="1.20.0", values=None, status="deployed", revision="4"):
    return {"name": "cilium", "chart": "cilium-%s" % version, "status": status, "revision": revision,
            "values": values if values is not None else {"MTU": 1500}}


@pytest.mark.parametrize("current, allow, expected", [
    ({}, False, {"action": "install", "blocked": None, "preflight": False, "rollback_revision": None}),
    (release(), False, {"action": "none", "blocked": None, "preflight": False, "rollback_revision": None}),
    (release(values={"MTU": 9000}), True, {"action": "upgrade", "blocked": None, "preflight": False,
                                           "rollback_revision": 4, "changed_keys": ["MTU"]}),
    (release(version="1.19.3"), True, {"action": "upgrade", "blocked": None, "preflight": True,
                                       "rollback_revision": 4, "previous_version": "1.19.3"}),
    (release(version="1.20.0-rc.1"), True, {"action": "upgrade", "preflight": True, "blocked": None}),
])
def test_release_plan(current, allow, expected):
    plan = cv.release_plan(current, "1.20.0", {"MTU": 1500}, allow_upgrade=allow)
    for key, value in expected.items():
        assert plan[key] == value, key


@pytest.mark.parametrize("current, expected", [
    (release(version="1.19.3"), "upgrading a running CNI is opt-in: set cilium_upgrade: true"),
    (release(version="1.18.6"), "Cilium supports upgrades one minor release at a time; upgrade to 1.19 first"),
    (release(version="1.21.0"), "a downgrade is a rollback; use helm rollback to the recorded revision"),
    (release(status="failed", values={"MTU": 9000}), "is in state 'failed'; an upgrade needs a deployed release"),
    (release(status="pending-upgrade"), "is in state 'pending-upgrade' with the desired chart and values"),
    ({"chart": "something", "status": "deployed", "revision": "1", "values": {}}, "cannot read the chart version"),
])
def test_release_plan_blocks_unsafe_changes(current, expected):
    plan = cv.release_plan(current, "1.20.0", {"MTU": 1500}, allow_upgrade=current.get("chart") == "cilium-1.18.6")
    assert plan["blocked"] is not None and expected in plan["blocked"], plan["blocked"]


def test_release_plan_records_what_to_roll_back_to():
    previous = {"MTU": 1500, "hubble": {"enabled": False}}
    plan = cv.release_plan(release(version="1.19.3", values=previous), "1.20.0", {"MTU": 1500}, allow_upgrade=True)
    assert plan["previous_revision"] == 4 and plan["previous_values"] == previous
    assert plan["changed_keys"] == ["hubble.enabled"]
    no_preflight = cv.release_plan(release(version="1.19.3"), "1.20.0", {"MTU": 1500}, allow_upgrade=True,
                                   preflight=False)
    assert no_preflight["preflight"] is False


def test_run_returns_helm_arguments_and_the_release_plan():
    result = cv.run({"spec": spec(), "helm": {"chart_ref": "oci://quay.io/cilium/charts/cilium"}, "release": {}})
    assert result["chart"] == {"name": "cilium", "data_version": "1.20.0", "version": "1.20.0", "source": "oci",
                               "ref": "oci://quay.io/cilium/charts/cilium", "repo_url": None}
    assert result["helm"]["release_values"] == result["values"]
    assert result["helm"]["chart_version"] == "1.20.0"
    assert result["preflight_helm"]["release_name"] == "cilium-preflight"
    assert result["release"]["action"] == "install"
    assert result["diff"]["after"] == result["values"]
