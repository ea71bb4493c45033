# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cilium Helm values that are correct by construction.

Pure Python: nothing here imports ``ansible``.  The ``zerotrust.cilium.cilium_values``
module is a thin wrapper over :func:`run`.

The values are built in three layers and then checked as a whole:

1. hardened defaults (kube-proxy replacement with an API address that works without
   kube-proxy, BPF masquerading, Maglev, Hubble with relay, UI, metrics and TLS,
   resource requests and limits, ...), driven by the ``cilium_*`` variables;
2. values computed from the network math the ``plan`` role uses (``mtu.py`` for the
   MTU, ``cidr.py`` for the IPAM pool, per-node mask and routing decision), so the
   cluster spec is the one source of these numbers;
3. the user's ``cilium_values_overrides``, deep-merged last with Helm's semantics
   (mappings merge, lists and scalars replace, ``null`` removes a chart default).

Then, before anything is written or applied, every problem is collected and reported
at once, each naming the key path, the value and the fix:

* types against the chart's ``values.schema.json`` (jsonschema, draft-07);
* unknown keys against an allowlist made from the chart's ``values.yaml`` plus the keys
  it documents only in comments (``cilium_chart_data.py``), with a suggestion for the
  closest real key, and the replacement for keys Cilium removed;
* rules the schema cannot express (kube-proxy replacement needs ``k8sServiceHost``,
  ``autoDirectNodeRoutes`` only with native routing, ...);
* overrides that would contradict the cluster spec other roles read.

LB IPAM pools become ``cilium.io/v2`` ``CiliumLoadBalancerIPPool`` objects checked
against the CRD's ``openAPIV3Schema`` and for overlaps.  The release decisions of the
apply path (install, upgrade, nothing; pre-flight; rollback target) and the arguments
for ``kubernetes.core.helm`` are pure functions here as well, so they are tested
without a cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import decimal
import difflib
import ipaddress
import re

from ansible_collections.zerotrust.cilium.plugins.module_utils import cidr as cidr_math
from ansible_collections.zerotrust.cilium.plugins.module_utils import cilium_chart_data as chart
from ansible_collections.zerotrust.cilium.plugins.module_utils import conntrack as conntrack_math
from ansible_collections.zerotrust.cilium.plugins.module_utils import mtu as mtu_math
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs

try:
    import jsonschema
except ImportError:  # reported by require_jsonschema() when validation is asked for
    jsonschema = None

WHERE = "cilium_values"
OVERRIDES = "cilium_values_overrides"
POOLS = "cilium_lb_ip_pools"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_QUANTITY_FACTORS = {
    None: 1, "n": decimal.Decimal("1e-9"), "u": decimal.Decimal("1e-6"), "m": decimal.Decimal("1e-3"),
    "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18,
    "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
}

# --------------------------------------------------------------------------------------
# Facts from Cilium the checks rely on (sources in docs/cilium-values.md).
# --------------------------------------------------------------------------------------

# Helm's kubeProxyReplacement took strict/partial/probe/disabled until 1.14; 1.15 removed
# them (cilium/cilium#27060).
KPR_REMOVED_VALUES = ("strict", "partial", "probe", "disabled")
ROUTING_MODES = ("native", "tunnel")
TUNNEL_PROTOCOLS = ("vxlan", "geneve")
ENCRYPTIONS = ("none", "ipsec", "wireguard")
ENCRYPTION_TYPES = ("ipsec", "wireguard", "ztunnel")
POLICY_ENFORCEMENT_MODES = ("default", "always", "never")
LB_ALGORITHMS = ("random", "maglev")
LB_MODES = ("snat", "dsr", "hybrid")
DSR_DISPATCH = ("opt", "ipip", "geneve")
IPAM_MODES = ("cluster-pool", "kubernetes")
DATAPATH_MODES = ("veth", "netkit", "netkit-l2")
HUBBLE_TLS_METHODS = ("helm", "cronJob", "certmanager")
UNDERLAY_PROTOCOLS = ("ipv4", "ipv6")
# Hubble metric handlers of Cilium 1.20 (pkg/hubble/metrics); others are only warned about.
HUBBLE_METRICS_KNOWN = ("dns", "drop", "flow", "flows-to-world", "http", "httpV2", "icmp", "kafka",
                        "policy", "port-distribution", "tcp")
# pkg/option/config.go: LimitTableMin and LimitTableMax bound every CT map size.
CT_MAP_MIN = 1 << 10
CT_MAP_MAX = 1 << 24
# values.yaml @default of bpf.ctTcpMax / bpf.ctAnyMax.
CT_TCP_DEFAULT = 524288
CT_ANY_DEFAULT = 262144
K8S_RESOURCE_KEYS = ("claims", "limits", "requests")
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
MANAGED_BY = "zerotrust.cilium"
DEFAULT_CHART_REPO = "https://helm.cilium.io/"

# Keys Cilium removed, with the replacement.  A key listed here is refused with this
# text instead of a generic "unknown key".
REMOVED_KEYS = {
    "tunnel": "was removed in Cilium 1.15 (deprecated in 1.14); set routingMode (native or tunnel) and "
              "tunnelProtocol (vxlan or geneve) instead",
    "enableCiliumEndpointSlice": "was removed in Cilium 1.19; use ciliumEndpointSlice.enabled",
    "ciliumEndpointSlice.sliceMode": "was removed in Cilium 1.19 and has no replacement; drop it",
    "l2NeighDiscovery.refreshPeriod": "was removed in Cilium 1.19 (neighbour entries follow the "
                                      "base_reachable_time_ms sysctl); drop it",
    "hostServices": "was renamed socketLB in Cilium 1.12 and removed in 1.13; use socketLB.enabled",
    "encryption.wireguard.userspaceFallback": "was removed in Cilium 1.17 (WireGuard needs kernel support); drop it",
    "bgp": "(the MetalLB-based BGP: bgp.enabled, bgp.announce) was removed in Cilium 1.17; use "
           "bgpControlPlane.enabled with CiliumBGP* resources",
    "nativeRoutingCIDR": "was removed; use ipv4NativeRoutingCIDR (and ipv6NativeRoutingCIDR)",
    "ipam.operator.clusterPoolIPv4PodCIDR": "was removed; use ipam.operator.clusterPoolIPv4PodCIDRList (a list)",
    "ipam.operator.clusterPoolIPv6PodCIDR": "was removed; use ipam.operator.clusterPoolIPv6PodCIDRList (a list)",
    "encryption.keyFile": "moved to encryption.ipsec.keyFile",
    "encryption.mountPath": "moved to encryption.ipsec.mountPath",
    "encryption.secretName": "moved to encryption.ipsec.secretName",
    "encryption.interface": "moved to encryption.ipsec.interface",
}

# Keys common guides set that Cilium never had and that no near key replaces.
NOT_CHART_KEYS = {
    "conntrack": "Cilium has no switch to turn connection tracking off: its BPF datapath always tracks "
                 "connections in its own maps; size them with bpf.ctTcpMax and bpf.ctAnyMax (or "
                 "bpf.mapDynamicSizeRatio), which this role computes from cilium_bpf_ct_expected_connections",
    "lbExternalIPPool": "LB IPAM pools are not Helm values: declare them in cilium_lb_ip_pools, which become "
                        "CiliumLoadBalancerIPPool (cilium.io/v2) objects",
}

# Value paths the cluster spec decides; an override may not contradict them because other
# roles (plan, kernel_preflight, node_tuning, the MTU probe) read the spec, not the values.
SPEC_DERIVED = {
    "MTU": "zerotrust_underlay_mtu",
    "routingMode": "cilium_routing_mode",
    "tunnelProtocol": "cilium_tunnel_protocol",
    "kubeProxyReplacement": "cilium_kube_proxy_replacement",
    "k8sServiceHost": "cilium_k8s_service_host (zerotrust_api_server_host)",
    "k8sServicePort": "cilium_k8s_service_port (zerotrust_api_server_port)",
    "bpf.masquerade": "cilium_bpf_masquerade",
    "bpf.datapathMode": "cilium_datapath_mode",
    "encryption.enabled": "cilium_encryption",
    "encryption.type": "cilium_encryption",
    "l7Proxy": "cilium_l7_proxy",
    "bandwidthManager.enabled": "cilium_bandwidth_manager",
    "bandwidthManager.bbr": "cilium_bbr",
    "enableIPv4BIGTCP": "cilium_enable_ipv4_big_tcp",
    "enableIPv6BIGTCP": "cilium_enable_ipv6_big_tcp",
    "ipv4.enabled": "cilium_pod_cidrs (zerotrust_pod_cidr)",
    "ipv6.enabled": "cilium_pod_cidrs (zerotrust_pod_cidr)",
    "ipam.operator.clusterPoolIPv4PodCIDRList": "cilium_pod_cidrs (zerotrust_pod_cidr)",
    "ipam.operator.clusterPoolIPv6PodCIDRList": "cilium_pod_cidrs (zerotrust_pod_cidr)",
}

DEFAULT_HUBBLE_METRICS = ["dns", "drop", "tcp", "flow", "port-distribution", "icmp", "httpV2"]
# The chart's documented example for the agent and the operator (values.yaml comments
# under ``resources`` and ``operator.resources``); relay gets hubble-ui's example.
DEFAULT_AGENT_RESOURCES = {"requests": {"cpu": "100m", "memory": "512Mi"},
                           "limits": {"cpu": "4000m", "memory": "4Gi"}}
DEFAULT_OPERATOR_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "1000m", "memory": "1Gi"}}
DEFAULT_RELAY_RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"},
                           "limits": {"cpu": "1000m", "memory": "1024M"}}

# The cluster spec as the module takes it: variable name -> (kind, default).  Kinds:
# str, int, bool, list, dict, or a tuple of choices.  None as a default means unset.
SPEC_FIELDS = {
    "zerotrust_api_server_host": ("str", None),
    "zerotrust_api_server_port": ("int", 6443),
    "zerotrust_pod_cidr": ("str", None),
    "zerotrust_service_cidr": ("str", None),
    "zerotrust_node_cidrs": ("list", []),
    "zerotrust_underlay_mtu": ("int", 1500),
    "cilium_version": ("str", chart.CHART_VERSION),
    "cilium_nodes": ("int", None),
    "cilium_control_plane_nodes": ("int", 0),
    "cilium_pod_cidrs": ("list", None),
    "cilium_routing_mode": (ROUTING_MODES, "tunnel"),
    "cilium_tunnel_protocol": (TUNNEL_PROTOCOLS, "vxlan"),
    "cilium_native_routing_cidrs": ("list", None),
    "cilium_auto_direct_node_routes": ("bool", None),
    "cilium_kube_proxy_replacement": ("bool", True),
    "cilium_k8s_service_host": ("str", None),
    "cilium_k8s_service_port": ("int", None),
    "cilium_bpf_masquerade": ("bool", True),
    "cilium_encryption": (ENCRYPTIONS, "none"),
    "cilium_l7_proxy": ("bool", True),
    "cilium_bandwidth_manager": ("bool", False),
    "cilium_bbr": ("bool", False),
    "cilium_datapath_mode": (DATAPATH_MODES, "veth"),
    "cilium_enable_ipv4_big_tcp": ("bool", False),
    "cilium_enable_ipv6_big_tcp": ("bool", False),
    "cilium_ipam_mode": (IPAM_MODES, "cluster-pool"),
    "cilium_max_pods_per_node": ("int", cidr_math.DEFAULT_MAX_PODS_PER_NODE),
    "cilium_policy_enforcement_mode": (POLICY_ENFORCEMENT_MODES, "default"),
    "cilium_policy_audit_mode": ("bool", False),
    "cilium_load_balancer_algorithm": (LB_ALGORITHMS, "maglev"),
    "cilium_load_balancer_mode": (LB_MODES, None),
    "cilium_operator_replicas": ("int", 2),
    "cilium_operator_on_control_plane": ("bool", True),
    "cilium_hubble_enabled": ("bool", True),
    "cilium_hubble_relay_replicas": ("int", 2),
    "cilium_hubble_ui_enabled": ("bool", True),
    "cilium_hubble_metrics": ("list", DEFAULT_HUBBLE_METRICS),
    "cilium_hubble_tls_method": (HUBBLE_TLS_METHODS, "cronJob"),
    "cilium_agent_resources": ("dict", DEFAULT_AGENT_RESOURCES),
    "cilium_operator_resources": ("dict", DEFAULT_OPERATOR_RESOURCES),
    "cilium_hubble_relay_resources": ("dict", DEFAULT_RELAY_RESOURCES),
    "cilium_bpf_ct_expected_connections": ("int", 0),
    "cilium_image_registry": ("str", None),
    "cilium_image_pull_secrets": ("list", []),
    "cilium_upgrade_compatibility": ("str", None),
}
REQUIRED_SPEC = ("zerotrust_api_server_host", "cilium_nodes")


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

def require_jsonschema():
    """Raise a clear error when the jsonschema library is missing on the controller."""
    if jsonschema is None:
        raise InvalidInput("python library", "jsonschema",
                           "is not installed for the Python that runs this module; install it on the controller "
                           "(pip install jsonschema, listed in the collection's requirements.txt)", where=WHERE)


def dotted(path):
    return ".".join(str(part) for part in path)


def deep_merge(base, override):
    """Helm's merge: mappings merge key by key, everything else (lists too) replaces."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def flatten(values, prefix=()):
    """``{(path...): value}`` for every leaf (a non-empty mapping is not a leaf)."""
    flat = {}
    for key, value in values.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


_MISSING = object()


def lookup(values, path, default=_MISSING):
    node = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def effective(values, path):
    """The value Helm renders with: the given value if the key is set, else the chart default."""
    value = lookup(values, path)
    if value is _MISSING:
        value = lookup(chart.DEFAULTS, path, None)
    return value


def truthy(value):
    """Helm-style booleans: true, "true" (any case) count as on."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return False


def chart_minor(version):
    match = _VERSION.match(version.strip())
    return "%s.%s" % (match.group(1), match.group(2))


def parse_quantity(value):
    """A Kubernetes resource quantity as a Decimal, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return decimal.Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match:
        return None
    number = decimal.Decimal(match.group("number"))
    suffix = match.group("suffix")
    if suffix and suffix[0] in "eE" and len(suffix) > 1:
        return number * (decimal.Decimal(10) ** int(suffix[1:]))
    return number * decimal.Decimal(_QUANTITY_FACTORS[suffix])


# --------------------------------------------------------------------------------------
# Key allowlist and suggestions
# --------------------------------------------------------------------------------------

def _camel_initials(name):
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)
    return "".join(word[0] for word in words).lower()


def _resolves(node, rest):
    for key in rest:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _all_paths(tree, prefix=()):
    for key, node in tree.items():
        path = prefix + (key,)
        yield path
        if isinstance(node, dict):
            yield from _all_paths(node, path)


def suggest_key(path, tree=None):
    """The closest allowlisted key path for an unknown ``path`` (a tuple), or None.

    Siblings of the first unknown segment are scored by spelling (difflib ratio), with
    camelCase initials counting as a near match (``lb`` for ``loadBalancer``) and a
    bonus when the rest of the path exists below the candidate.  Failing that, a key of
    the same name elsewhere in the chart is proposed (``masquerade`` -> ``bpf.masquerade``).
    """
    tree = chart.KEY_TREE if tree is None else tree
    node = tree
    index = 0
    while index < len(path) and isinstance(node, dict) and path[index] in node:
        node = node[path[index]]
        index += 1
    if index >= len(path) or not isinstance(node, dict):
        return None
    parent, unknown, rest = path[:index], str(path[index]), tuple(path[index + 1:])
    best = None
    for sibling, sub in node.items():
        score = difflib.SequenceMatcher(None, unknown.lower(), sibling.lower()).ratio()
        if len(unknown) >= 2 and unknown.lower() == _camel_initials(sibling):
            score = max(score, 0.9)
        if rest:
            score += 0.1 if _resolves(sub, rest) else -0.1
        if score >= 0.75 and (best is None or score > best[0]):
            best = (score, sibling, _resolves(sub, rest))
    if best is not None:
        return dotted(parent + (best[1],) + (rest if best[2] else ()))
    tail = (unknown,) + rest
    same_name = sorted(dotted(candidate) for candidate in _all_paths(tree)
                       if len(candidate) >= len(tail) and tuple(part.lower() for part in candidate[-len(tail):])
                       == tuple(part.lower() for part in tail))
    if 0 < len(same_name) <= 3:
        return " or ".join(same_name)
    return None


def _removed(path):
    for end in range(len(path), 0, -1):
        key = dotted(path[:end])
        if key in REMOVED_KEYS:
            return key, REMOVED_KEYS[key]
    return None


def _resources_problems(path, value, field_of):
    problems = []
    if not isinstance(value, dict):
        return problems
    for key in value:
        if key not in K8S_RESOURCE_KEYS:
            hint = difflib.get_close_matches(str(key), K8S_RESOURCE_KEYS, n=1)
            problems.append(InvalidInput(
                field_of(path + (key,)), value[key],
                "is not a field of Kubernetes resources (accepted: %s)%s" % (
                    ", ".join(K8S_RESOURCE_KEYS), "; did you mean %s?" % hint[0] if hint else "")))
    for kind in ("requests", "limits"):
        quantities = value.get(kind)
        if not isinstance(quantities, dict):
            continue
        for resource, quantity in quantities.items():
            if quantity is not None and parse_quantity(quantity) is None:
                problems.append(InvalidInput(
                    field_of(path + (kind, resource)), quantity,
                    "is not a Kubernetes quantity such as '500m', '2', '512Mi' or '1Gi'"))
    requests, limits = value.get("requests"), value.get("limits")
    if isinstance(requests, dict) and isinstance(limits, dict):
        for resource in sorted(set(requests) & set(limits)):
            request, limit = parse_quantity(requests[resource]), parse_quantity(limits[resource])
            if request is not None and limit is not None and request > limit:
                problems.append(InvalidInput(
                    field_of(path + ("requests", resource)), requests[resource],
                    "is larger than the limit %r; Kubernetes refuses such pods, so the rollout would hang: "
                    "lower the request or raise %s" % (limits[resource], dotted(path + ("limits", resource)))))
    return problems


def unknown_key_problems(values, field_of, tree=None):
    """Every key of ``values`` the chart does not have, as InvalidInput with the fix."""
    tree = chart.KEY_TREE if tree is None else tree
    problems = []

    def leaves(key_path, value):
        """The unknown key itself, or each leaf below it when it is a mapping."""
        if isinstance(value, dict) and value:
            return sorted(flatten(value, key_path).items(), key=lambda item: [str(part) for part in item[0]])
        return [(key_path, value)]

    def walk(node, given, path):
        for key, value in given.items():
            key_path = path + (key,)
            removed = _removed(key_path)
            if removed is not None:
                for leaf_path, leaf in leaves(key_path, value):
                    problems.append(InvalidInput(field_of(leaf_path), leaf, "is not a key of the %s chart %s: %s %s" % (
                        chart.CHART_NAME, chart.CHART_VERSION, removed[0], removed[1])))
                continue
            if not isinstance(node, dict) or key not in node:
                known = NOT_CHART_KEYS.get(key) if not path else None
                for leaf_path, leaf in leaves(key_path, value):
                    if known is not None:
                        why = known
                    else:
                        suggestion = suggest_key(leaf_path, tree)
                        why = "Helm would ignore it without a word; %s" % (
                            "did you mean %s?" % suggestion if suggestion else
                            "remove it or look up the right name in the chart's values.yaml")
                    problems.append(InvalidInput(field_of(leaf_path), leaf, "is not a key of the %s chart %s: %s" % (
                        chart.CHART_NAME, chart.CHART_VERSION, why)))
                continue
            sub = node[key]
            if sub == 1:
                if key in ("resources", "initResources"):
                    problems.extend(_resources_problems(key_path, value, field_of))
                continue
            if isinstance(sub, dict) and isinstance(value, dict):
                walk(sub, value, key_path)

    if isinstance(values, dict):
        walk(tree, values, ())
    return problems


# --------------------------------------------------------------------------------------
# Schema, cross-field rules
# --------------------------------------------------------------------------------------

def _schema_types(error):
    expected = error.validator_value
    if isinstance(expected, list):
        return ", ".join(expected)
    return str(expected)


def schema_problems(values, field_of, schema=None):
    """Type errors against the chart's values.schema.json (draft-07)."""
    require_jsonschema()
    schema = chart.VALUES_SCHEMA if schema is None else schema
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(values), key=lambda item: [str(part) for part in item.absolute_path]):
        path = tuple(error.absolute_path)
        if error.validator == "type":
            why = "has the wrong type for the chart's values.schema.json, which accepts: %s" % _schema_types(error)
        elif error.validator == "enum":
            why = "is not one of: %s (values.schema.json)" % ", ".join(str(item) for item in error.validator_value)
        else:
            why = "is refused by the chart's values.schema.json: %s" % error.message
        problems.append(InvalidInput(field_of(path) if path else "values", error.instance, why))
    return problems


def _hubble_metric_names(metrics):
    names = []
    if isinstance(metrics, list):
        for item in metrics:
            if isinstance(item, str):
                names.append(item.split(":", 1)[0].strip())
    return names


def _choice(problems, field_of, values, path, accepted, allow_empty=True):
    value = effective(values, path)
    if value is None or (allow_empty and value == ""):
        return value
    if value not in accepted:
        problems.append(InvalidInput(field_of(path), value, "is not one of: %s" % ", ".join(accepted)))
    return value


def _cidr_list(value):
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return value
    return []


def _service_host_problem(host, service_cidrs):
    if not isinstance(host, str) or not host or host == "auto":
        return None
    name = host.strip().lower().rstrip(".")
    if name == "kubernetes" or name.startswith("kubernetes.default"):
        return ("names the 'kubernetes' Service, whose ClusterIP only works while kube-proxy runs; use the API "
                "server address, a VIP or a load balancer in front of the API servers")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    for service_cidr in service_cidrs:
        network = ipaddress.ip_network(service_cidr, strict=False)
        if address.version == network.version and address in network:
            return ("lies in the service CIDR %s: a ClusterIP only works while kube-proxy runs; use the API server "
                    "address, a VIP or a load balancer in front of the API servers" % network)
    return None


def cross_field_problems(values, field_of, service_cidrs=()):
    """Rules between keys that the schema cannot express."""
    problems = []

    kpr = effective(values, ("kubeProxyReplacement",))
    if isinstance(kpr, str) and kpr.strip().lower() in KPR_REMOVED_VALUES:
        problems.append(InvalidInput(field_of(("kubeProxyReplacement",)), kpr,
                                     "was removed in Cilium 1.15 (strict, partial, probe, disabled); use true or false"))
    elif not isinstance(kpr, bool) and not (isinstance(kpr, str) and kpr.strip().lower() in ("true", "false")):
        problems.append(InvalidInput(field_of(("kubeProxyReplacement",)), kpr, "is not one of: true, false"))
    kpr_on = truthy(kpr)

    host = effective(values, ("k8sServiceHost",))
    host_ref = effective(values, ("k8sServiceHostRef", "name"))
    port = effective(values, ("k8sServicePort",))
    if kpr_on and not host and not host_ref:
        problems.append(InvalidInput(
            field_of(("k8sServiceHost",)), host,
            "is empty but kubeProxyReplacement is true: without kube-proxy the agent cannot reach the API through "
            "the 'kubernetes' ClusterIP; set it to the API server address, a VIP or a load balancer (or 'auto' on "
            "kubeadm clusters)"))
    if host and host_ref:
        problems.append(InvalidInput(field_of(("k8sServiceHostRef", "name")), host_ref,
                                     "and k8sServiceHost are both set; the chart accepts only one of them"))
    host_problem = _service_host_problem(host, service_cidrs)
    if host_problem:
        problems.append(InvalidInput(field_of(("k8sServiceHost",)), host, host_problem))
    if host and host != "auto":
        port_number = None
        if isinstance(port, int) and not isinstance(port, bool):
            port_number = port
        elif isinstance(port, str) and port.strip().isdigit():
            port_number = int(port)
        if port_number is None:
            problems.append(InvalidInput(field_of(("k8sServicePort",)), port,
                                         "must be the port of k8sServiceHost (1 to 65535, e.g. 6443)"))
        elif not 1 <= port_number <= 65535:
            problems.append(InvalidInput(field_of(("k8sServicePort",)), port, "is out of range: use 1 to 65535"))

    routing = _choice(problems, field_of, values, ("routingMode",), ROUTING_MODES) or "tunnel"
    tunnel_protocol = _choice(problems, field_of, values, ("tunnelProtocol",), TUNNEL_PROTOCOLS) or "vxlan"
    ipv4_on = truthy(effective(values, ("ipv4", "enabled")))
    ipv6_on = truthy(effective(values, ("ipv6", "enabled")))
    if not ipv4_on and not ipv6_on:
        problems.append(InvalidInput(field_of(("ipv4", "enabled")), effective(values, ("ipv4", "enabled")),
                                     "and ipv6.enabled are both off; enable at least one address family"))
    if truthy(effective(values, ("autoDirectNodeRoutes",))) and routing != "native":
        problems.append(InvalidInput(
            field_of(("autoDirectNodeRoutes",)), effective(values, ("autoDirectNodeRoutes",)),
            "only works with routingMode native (routingMode is %r): in tunnel mode pod traffic is encapsulated "
            "and needs no node routes; set it to false or switch to native routing" % routing))
    from_pool = truthy(effective(values, ("nativeRoutingCIDRFromClusterPool",))) and \
        effective(values, ("ipam", "mode")) == "cluster-pool"
    for family, on, masquerade_key, cidr_key in (
            (4, ipv4_on, "enableIPv4Masquerade", "ipv4NativeRoutingCIDR"),
            (6, ipv6_on, "enableIPv6Masquerade", "ipv6NativeRoutingCIDR")):
        native_cidr = effective(values, (cidr_key,))
        if native_cidr:
            try:
                network = ipaddress.ip_network(str(native_cidr), strict=True)
                if network.version != family:
                    problems.append(InvalidInput(field_of((cidr_key,)), native_cidr, "is not an IPv%d CIDR" % family))
            except ValueError:
                problems.append(InvalidInput(field_of((cidr_key,)), native_cidr,
                                             "is not a CIDR such as '10.0.0.0/8' (host bits must be zero)"))
        masquerade = effective(values, (masquerade_key,))
        if masquerade is None:
            # values.yaml: IPv4 masquerading is on "unless ipam eni mode is active".
            masquerade_on = effective(values, ("ipam", "mode")) != "eni"
        else:
            masquerade_on = truthy(masquerade)
        if routing == "native" and on and masquerade_on and not native_cidr and not from_pool:
            problems.append(InvalidInput(
                field_of((cidr_key,)), native_cidr,
                "is empty but routingMode is native with IPv%d masquerading: Cilium must know which destinations "
                "are routed without SNAT; set it to the pod CIDR (or a range containing it)" % family))

    if truthy(effective(values, ("bpf", "masquerade"))) and not kpr_on:
        problems.append(InvalidInput(
            field_of(("bpf", "masquerade")), effective(values, ("bpf", "masquerade")),
            "needs kubeProxyReplacement: true (BPF masquerading runs in the BPF NodePort datapath); enable kube-proxy "
            "replacement or set bpf.masquerade to false"))

    hubble_on = truthy(effective(values, ("hubble", "enabled")))
    metrics = effective(values, ("hubble", "metrics", "enabled"))
    metric_names = _hubble_metric_names(metrics)
    if "http" in metric_names and "httpV2" in metric_names:
        problems.append(InvalidInput(
            field_of(("hubble", "metrics", "enabled")), metrics,
            "lists both http and httpV2, which register the same Prometheus metrics and cannot be combined; keep "
            "httpV2"))
    if metric_names and not hubble_on:
        problems.append(InvalidInput(field_of(("hubble", "metrics", "enabled")), metrics,
                                     "needs hubble.enabled: true"))
    relay_on = truthy(effective(values, ("hubble", "relay", "enabled")))
    if relay_on and not hubble_on:
        problems.append(InvalidInput(field_of(("hubble", "relay", "enabled")), True, "needs hubble.enabled: true"))
    if truthy(effective(values, ("hubble", "ui", "enabled"))) and not relay_on:
        problems.append(InvalidInput(field_of(("hubble", "ui", "enabled")), True,
                                     "needs hubble.relay.enabled: true (the UI reads flows through Hubble Relay)"))

    mtu = effective(values, ("MTU",))
    if isinstance(mtu, int) and not isinstance(mtu, bool) and mtu != 0:
        minimum = mtu_math.IPV6_MIN_MTU if ipv6_on else mtu_math.IPV4_MIN_MTU
        if mtu < minimum:
            family = "IPv6" if ipv6_on else "IPv4"
            problems.append(InvalidInput(
                field_of(("MTU",)), mtu,
                "is below the %s minimum of %d; MTU is the underlay MTU (Cilium subtracts tunnel and encryption "
                "overhead itself): set the real underlay MTU or 0 to detect it" % (family, minimum)))
        elif mtu > mtu_math.MAX_MTU:
            problems.append(InvalidInput(field_of(("MTU",)), mtu, "is above the maximum of %d" % mtu_math.MAX_MTU))

    _choice(problems, field_of, values, ("policyEnforcementMode",), POLICY_ENFORCEMENT_MODES, allow_empty=False)
    _choice(problems, field_of, values, ("loadBalancer", "algorithm"), LB_ALGORITHMS)
    lb_mode = _choice(problems, field_of, values, ("loadBalancer", "mode"), LB_MODES)
    dispatch = _choice(problems, field_of, values, ("loadBalancer", "dsrDispatch"), DSR_DISPATCH)
    if lb_mode in ("dsr", "hybrid"):
        if not kpr_on:
            problems.append(InvalidInput(field_of(("loadBalancer", "mode")), lb_mode,
                                         "needs kubeProxyReplacement: true"))
        if routing == "tunnel" and dispatch != "geneve":
            problems.append(InvalidInput(
                field_of(("loadBalancer", "mode")), lb_mode,
                "with routingMode tunnel needs loadBalancer.dsrDispatch: geneve and tunnelProtocol: geneve (DSR "
                "does not work over VXLAN)"))
    if dispatch == "geneve" and tunnel_protocol != "geneve":
        problems.append(InvalidInput(field_of(("loadBalancer", "dsrDispatch")), dispatch,
                                     "needs tunnelProtocol: geneve (tunnelProtocol is %r)" % tunnel_protocol))

    for key in ("ctTcpMax", "ctAnyMax"):
        size = effective(values, ("bpf", key))
        if isinstance(size, int) and not isinstance(size, bool) and not CT_MAP_MIN <= size <= CT_MAP_MAX:
            problems.append(InvalidInput(field_of(("bpf", key)), size,
                                         "is out of range: Cilium accepts %d to %d entries" % (CT_MAP_MIN, CT_MAP_MAX)))

    if truthy(effective(values, ("bandwidthManager", "bbr"))) and \
            not truthy(effective(values, ("bandwidthManager", "enabled"))):
        problems.append(InvalidInput(field_of(("bandwidthManager", "bbr")), True,
                                     "needs bandwidthManager.enabled: true"))

    underlay = _choice(problems, field_of, values, ("underlayProtocol",), UNDERLAY_PROTOCOLS)
    if underlay == "ipv6" and not ipv6_on:
        problems.append(InvalidInput(field_of(("underlayProtocol",)), underlay,
                                     "needs ipv6.enabled: true (the tunnel endpoints are the nodes' IPv6 addresses)"))

    if truthy(effective(values, ("encryption", "enabled"))):
        _choice(problems, field_of, values, ("encryption", "type"), ENCRYPTION_TYPES, allow_empty=False)

    if effective(values, ("ipam", "mode")) == "cluster-pool":
        problems.extend(_cluster_pool_problems(values, field_of, ipv4_on, ipv6_on))
    return problems


def _cluster_pool_problems(values, field_of, ipv4_on, ipv6_on):
    problems = []
    for family, on, list_key, mask_key in (
            (4, ipv4_on, "clusterPoolIPv4PodCIDRList", "clusterPoolIPv4MaskSize"),
            (6, ipv6_on, "clusterPoolIPv6PodCIDRList", "clusterPoolIPv6MaskSize")):
        if not on:
            continue
        list_path = ("ipam", "operator", list_key)
        mask_path = ("ipam", "operator", mask_key)
        mask = effective(values, mask_path)
        bits = 32 if family == 4 else 128
        for entry in _cidr_list(effective(values, list_path)):
            try:
                network = ipaddress.ip_network(str(entry), strict=True)
            except ValueError:
                problems.append(InvalidInput(field_of(list_path), entry,
                                             "is not a CIDR such as '10.0.0.0/8' (host bits must be zero)"))
                continue
            if network.version != family:
                problems.append(InvalidInput(field_of(list_path), entry, "is not an IPv%d CIDR" % family))
                continue
            if isinstance(mask, int) and not isinstance(mask, bool):
                if not network.prefixlen <= mask <= bits:
                    problems.append(InvalidInput(
                        field_of(mask_path), mask,
                        "must be between the pool's prefix /%d and /%d" % (network.prefixlen, bits)))
                elif family == 6 and mask - network.prefixlen > cidr_math.IPV6_CLUSTER_SUBNET_MAX_DIFF:
                    problems.append(InvalidInput(
                        field_of(mask_path), mask,
                        "is more than 16 bits longer than %s; Cilium's operator refuses that (use /%d or shorter)" % (
                            network, network.prefixlen + cidr_math.IPV6_CLUSTER_SUBNET_MAX_DIFF)))
    return problems


def value_warnings(values):
    """Problems that do not stop the run but deserve a line in the output."""
    warnings = []
    names = _hubble_metric_names(effective(values, ("hubble", "metrics", "enabled")))
    if "http" in names and "httpV2" not in names:
        warnings.append("hubble.metrics.enabled lists the legacy 'http' metric; 'httpV2' is the maintained one "
                        "(they cannot be combined)")
    unknown = sorted(set(name for name in names if name not in HUBBLE_METRICS_KNOWN))
    if unknown:
        warnings.append("hubble.metrics.enabled lists %s, not among the Hubble metrics this collection knows (%s); "
                        "Cilium refuses unknown metrics at start-up" % (
                            ", ".join(unknown), ", ".join(HUBBLE_METRICS_KNOWN)))
    if effective(values, ("policyEnforcementMode",)) == "always":
        warnings.append("policyEnforcementMode 'always' isolates every endpoint, health checks, DNS and API server "
                        "access included: apply the network_policy role's baseline allows before this values file")
    if effective(values, ("k8sServiceHost",)) == "auto":
        warnings.append("k8sServiceHost 'auto' reads the kube-public/cluster-info ConfigMap when Helm installs "
                        "(kubeadm clusters only); rendered manifests (helm template) cannot resolve it")
    return warnings


def check_chart_version(version, field="cilium_version"):
    """Problems and warnings for the pinned chart version against the shipped chart data."""
    if not isinstance(version, str) or not _VERSION.match(version.strip()):
        return [InvalidInput(field, version, "is not a pinned chart version such as '1.20.0' (major.minor.patch)")], []
    if chart_minor(version) != chart_minor(chart.CHART_VERSION):
        return [InvalidInput(
            field, version,
            "has no chart data in this collection (it ships the %s chart %s); its values cannot be validated: use "
            "%s.x or add the chart with tools/gen_cilium_chart_data.py" % (
                chart.CHART_NAME, chart.CHART_VERSION, chart_minor(chart.CHART_VERSION)))], []
    if version.strip().lstrip("v") != chart.CHART_VERSION:
        return [], ["%s %s is validated with the %s chart data of this collection" % (
            field, version, chart.CHART_VERSION)]
    return [], []


def validate_values(values, overrides=None, source="values", service_cidrs=(), chart_version=None):
    """Every problem of ``values`` at once (list of InvalidInput); nothing is raised.

    Keys the user gave in ``overrides`` are reported under ``cilium_values_overrides.``
    so the message points at the variable to fix; other keys under ``source.``.
    """
    overrides = overrides or {}

    def field_of(path):
        prefix = OVERRIDES if overrides and lookup(overrides, path) is not _MISSING else source
        return "%s.%s" % (prefix, dotted(path)) if path else prefix

    if not isinstance(values, dict):
        return [InvalidInput(source, values, "must be a mapping of Helm values")]
    problems = []
    if chart_version is not None:
        problems.extend(check_chart_version(chart_version)[0])
    problems.extend(unknown_key_problems(values, field_of))
    problems.extend(schema_problems(values, field_of))
    problems.extend(cross_field_problems(values, field_of, service_cidrs))
    return problems


# --------------------------------------------------------------------------------------
# The cluster spec
# --------------------------------------------------------------------------------------

def _spec_value(problems, name, value):
    kind, _default = SPEC_FIELDS[name]
    if isinstance(kind, tuple):
        if value not in kind:
            problems.append(InvalidInput(name, value, "is not one of: %s" % ", ".join(kind)))
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            problems.append(InvalidInput(name, value, "is not a boolean (true or false)"))
        return value
    if kind == "int":
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(InvalidInput(name, value, "is not a whole number"))
        return value
    if kind == "str":
        if not isinstance(value, str):
            problems.append(InvalidInput(name, value, "is not a string"))
        return value
    if kind == "list":
        if not isinstance(value, list):
            problems.append(InvalidInput(name, value, "is not a list"))
        return value
    if not isinstance(value, dict):
        problems.append(InvalidInput(name, value, "is not a mapping"))
    return value


def normalise_spec(spec):
    """The cluster spec with defaults applied; every bad entry reported at once."""
    if not isinstance(spec, dict):
        raise InvalidInput("spec", spec, "must be a mapping of zerotrust_* and cilium_* variables", where=WHERE)
    problems = []
    result = {}
    for name, value in spec.items():
        if name not in SPEC_FIELDS:
            close = difflib.get_close_matches(str(name), list(SPEC_FIELDS), n=1, cutoff=0.75)
            problems.append(InvalidInput(name, value, "is not a cluster spec variable the cilium role reads%s" % (
                "; did you mean %s?" % close[0] if close else "")))
    for name, (kind, default) in SPEC_FIELDS.items():
        value = spec.get(name)
        if value is None:
            if name in REQUIRED_SPEC:
                problems.append(InvalidInput(name, value, "is required"))
            result[name] = copy.deepcopy(default)
            continue
        result[name] = _spec_value(problems, name, value)
    if problems:
        raise InvalidInputs(problems, where=WHERE)

    version_problems, _warnings = check_chart_version(result["cilium_version"])
    problems.extend(version_problems)
    if result["cilium_nodes"] < 1:
        problems.append(InvalidInput("cilium_nodes", result["cilium_nodes"], "must be at least 1"))
    for name in ("cilium_operator_replicas", "cilium_hubble_relay_replicas", "cilium_max_pods_per_node"):
        if result[name] < 1:
            problems.append(InvalidInput(name, result[name], "must be at least 1"))
    if result["cilium_bpf_ct_expected_connections"] < 0:
        problems.append(InvalidInput("cilium_bpf_ct_expected_connections", result["cilium_bpf_ct_expected_connections"],
                                     "must be 0 (Cilium sizes the maps from node memory) or more"))
    port = result["cilium_k8s_service_port"] or result["zerotrust_api_server_port"]
    if not 1 <= port <= 65535:
        problems.append(InvalidInput("zerotrust_api_server_port", port, "is out of range: use 1 to 65535"))
    if result["cilium_bbr"] and not result["cilium_bandwidth_manager"]:
        problems.append(InvalidInput("cilium_bbr", True, "requires cilium_bandwidth_manager: true"))
    if result["cilium_bpf_masquerade"] and not result["cilium_kube_proxy_replacement"]:
        problems.append(InvalidInput("cilium_bpf_masquerade", True,
                                     "requires cilium_kube_proxy_replacement: true (BPF masquerading runs in the "
                                     "BPF NodePort datapath)"))
    if result["cilium_load_balancer_mode"] in ("dsr", "hybrid") and not result["cilium_kube_proxy_replacement"]:
        problems.append(InvalidInput("cilium_load_balancer_mode", result["cilium_load_balancer_mode"],
                                     "requires cilium_kube_proxy_replacement: true"))
    if result["cilium_hubble_ui_enabled"] and not result["cilium_hubble_enabled"]:
        problems.append(InvalidInput("cilium_hubble_ui_enabled", True, "requires cilium_hubble_enabled: true"))
    if result["cilium_auto_direct_node_routes"] and result["cilium_routing_mode"] != "native":
        problems.append(InvalidInput("cilium_auto_direct_node_routes", True,
                                     "only works with cilium_routing_mode: native (it is %r)"
                                     % result["cilium_routing_mode"]))

    pod_cidrs = result["cilium_pod_cidrs"]
    pod_field = "cilium_pod_cidrs"
    if pod_cidrs is None:
        pod_field = "zerotrust_pod_cidr"
        pod_cidrs = [result["zerotrust_pod_cidr"]] if result["zerotrust_pod_cidr"] else []
    if not pod_cidrs:
        problems.append(InvalidInput("zerotrust_pod_cidr", None, "is required (or cilium_pod_cidrs)"))
    networks = []
    for entry in pod_cidrs:
        try:
            networks.append(cidr_math.parse_cidr(entry, pod_field, None))
        except InvalidInput as err:
            problems.append(err)
    families = [network.version for network in networks]
    if len(families) != len(set(families)) or len(families) > 2:
        problems.append(InvalidInput(pod_field, pod_cidrs,
                                     "must hold one IPv4 and/or one IPv6 CIDR (dual stack: one of each)"))
    result["pod_networks"] = sorted(networks, key=lambda network: network.version)

    node_networks = []
    for entry in result["zerotrust_node_cidrs"]:
        try:
            node_networks.append(cidr_math.parse_cidr(entry, "zerotrust_node_cidrs", None))
        except InvalidInput as err:
            problems.append(err)
    result["node_networks"] = node_networks

    result["service_networks"] = []
    if result["zerotrust_service_cidr"]:
        try:
            result["service_networks"] = [cidr_math.parse_cidr(result["zerotrust_service_cidr"],
                                                               "zerotrust_service_cidr", None)]
        except InvalidInput as err:
            problems.append(err)

    native = result["cilium_native_routing_cidrs"]
    result["native_networks"] = {}
    for entry in native or []:
        try:
            network = cidr_math.parse_cidr(entry, "cilium_native_routing_cidrs", None)
        except InvalidInput as err:
            problems.append(err)
            continue
        result["native_networks"][network.version] = network
        pods = [pod for pod in networks if pod.version == network.version]
        if pods and not pods[0].subnet_of(network):
            problems.append(InvalidInput("cilium_native_routing_cidrs", entry,
                                         "does not contain the pod CIDR %s" % pods[0]))

    mtu = result["zerotrust_underlay_mtu"]
    ipv6 = 6 in families
    minimum = mtu_math.IPV6_MIN_MTU if ipv6 else mtu_math.IPV4_MIN_MTU
    if mtu != 0 and not minimum <= mtu <= mtu_math.MAX_MTU:
        problems.append(InvalidInput(
            "zerotrust_underlay_mtu", mtu,
            "is out of range: the underlay MTU must be 0 (detect) or %d to %d%s" % (
                minimum, mtu_math.MAX_MTU, " with IPv6" if ipv6 else "")))
    host = result["cilium_k8s_service_host"] or result["zerotrust_api_server_host"]
    host_problem = _service_host_problem(host, [str(network) for network in result["service_networks"]])
    if host_problem:
        problems.append(InvalidInput("cilium_k8s_service_host" if result["cilium_k8s_service_host"]
                                     else "zerotrust_api_server_host", host, host_problem))
    for name in ("cilium_agent_resources", "cilium_operator_resources", "cilium_hubble_relay_resources"):
        problems.extend(_resources_problems((name,), result[name], dotted))
    if problems:
        raise InvalidInputs(problems, where=WHERE)
    return result


# --------------------------------------------------------------------------------------
# Building the values
# --------------------------------------------------------------------------------------

def _underlay_family(spec):
    nodes = spec["node_networks"]
    if nodes and all(network.version == 6 for network in nodes):
        return "ipv6"
    return "ipv4"


def network_plan(spec):
    """The MTU, pod CIDR and routing math for the spec (the plan role's filters' logic)."""
    problems = []
    families = [network.version for network in spec["pod_networks"]]
    tunnel = spec["cilium_tunnel_protocol"] if spec["cilium_routing_mode"] == "tunnel" else "disabled"
    underlay = _underlay_family(spec)
    plan = {"pod_cidr": {}, "routing": {}}
    try:
        plan["mtu"] = mtu_math.plan_mtu(base_mtu=spec["zerotrust_underlay_mtu"], tunnel=tunnel, underlay=underlay,
                                        encryption=spec["cilium_encryption"], ipv6=6 in families,
                                        cilium_version=spec["cilium_version"])
    except InvalidInput as err:
        problems.append(InvalidInput("zerotrust_underlay_mtu", spec["zerotrust_underlay_mtu"],
                                     "cannot be planned: %s" % err))
    for network in spec["pod_networks"]:
        family = "ipv%d" % network.version
        try:
            pod_plan = cidr_math.pod_cidr_plan(str(network), nodes=spec["cilium_nodes"],
                                               max_pods_per_node=spec["cilium_max_pods_per_node"])
        except InvalidInput as err:
            problems.append(InvalidInput("cilium_max_pods_per_node", spec["cilium_max_pods_per_node"],
                                         "cannot be planned in %s: %s" % (network, err)))
            continue
        if not pod_plan["fits"]:
            problems.append(InvalidInput("zerotrust_pod_cidr", str(network), pod_plan["reason"]))
        plan["pod_cidr"][family] = pod_plan
        native = spec["native_networks"].get(network.version)
        try:
            plan["routing"][family] = cidr_math.routing_mode(
                str(network), nodes=spec["cilium_nodes"], max_pods_per_node=spec["cilium_max_pods_per_node"],
                node_subnets=[str(item) for item in spec["node_networks"]],
                tunnel_protocol=spec["cilium_tunnel_protocol"],
                native_routing_cidr=str(native) if native else None)
        except InvalidInput as err:
            problems.append(InvalidInput("zerotrust_node_cidrs", [str(item) for item in spec["node_networks"]],
                                         "cannot be planned with %s: %s" % (network, err)))
    if problems:
        raise InvalidInputs(problems, where=WHERE)
    return plan


def _image_overrides(registry):
    """Point every image of the chart at ``registry`` (host[/prefix]), keeping the repository path."""
    registry = registry.strip().rstrip("/")
    overrides = {}

    def walk(node, path):
        for key, value in node.items():
            if key == "image" and isinstance(value, dict) and isinstance(value.get("repository"), str) \
                    and value["repository"]:
                repository = value["repository"]
                first, _sep, rest = repository.partition("/")
                if rest and ("." in first or ":" in first or first == "localhost"):
                    repository = rest
                target = overrides
                for part in path + (key,):
                    target = target.setdefault(part, {})
                target["repository"] = "%s/%s" % (registry, repository)
            elif isinstance(value, dict):
                walk(value, path + (key,))

    walk(chart.DEFAULTS, ())
    return overrides


def hardened_values(spec, warnings):
    """The hardened defaults, from the role's cilium_* choices."""
    host = spec["cilium_k8s_service_host"] or spec["zerotrust_api_server_host"]
    port = spec["cilium_k8s_service_port"] or spec["zerotrust_api_server_port"]
    values = {
        "kubeProxyReplacement": spec["cilium_kube_proxy_replacement"],
        "k8sServiceHost": host,
        "bpf": {"masquerade": spec["cilium_bpf_masquerade"]},
        "loadBalancer": {"algorithm": spec["cilium_load_balancer_algorithm"]},
        "l7Proxy": spec["cilium_l7_proxy"],
        "policyEnforcementMode": spec["cilium_policy_enforcement_mode"],
        "policyAuditMode": spec["cilium_policy_audit_mode"],
        "rollOutCiliumPods": True,
        "resources": copy.deepcopy(spec["cilium_agent_resources"]),
        "ipam": {"mode": spec["cilium_ipam_mode"]},
    }
    if host != "auto":
        values["k8sServicePort"] = port
    if spec["cilium_load_balancer_mode"]:
        values["loadBalancer"]["mode"] = spec["cilium_load_balancer_mode"]
        if spec["cilium_load_balancer_mode"] in ("dsr", "hybrid") and spec["cilium_routing_mode"] == "tunnel":
            values["loadBalancer"]["dsrDispatch"] = "geneve"

    operator = {
        "replicas": spec["cilium_operator_replicas"],
        "rollOutPods": True,
        "resources": copy.deepcopy(spec["cilium_operator_resources"]),
        "podDisruptionBudget": {"enabled": True},
    }
    if spec["cilium_operator_on_control_plane"]:
        control_plane = spec["cilium_control_plane_nodes"]
        if control_plane < 1:
            warnings.append("cilium_operator_on_control_plane: no node is in k8s_control_plane (a managed control "
                            "plane?), so cilium-operator is not pinned to control-plane nodes")
        else:
            operator["nodeSelector"] = {CONTROL_PLANE_LABEL: ""}
            if operator["replicas"] > control_plane:
                warnings.append(
                    "cilium_operator_replicas %d lowered to %d: the operator runs on control-plane nodes only, one "
                    "replica per node, and k8s_control_plane has %d; add control-plane nodes or set "
                    "cilium_operator_on_control_plane: false" % (operator["replicas"], control_plane, control_plane))
                operator["replicas"] = control_plane
    values["operator"] = operator

    if spec["cilium_hubble_enabled"]:
        values["hubble"] = {
            "enabled": True,
            "metrics": {"enabled": list(spec["cilium_hubble_metrics"]) or None},
            "redact": {"enabled": True, "http": {"urlQuery": True, "userInfo": True}},
            "tls": {"enabled": True, "auto": {"enabled": True, "method": spec["cilium_hubble_tls_method"]}},
            "relay": {
                "enabled": True,
                "replicas": spec["cilium_hubble_relay_replicas"],
                "rollOutPods": True,
                "resources": copy.deepcopy(spec["cilium_hubble_relay_resources"]),
                "podDisruptionBudget": {"enabled": True},
            },
            "ui": {"enabled": spec["cilium_hubble_ui_enabled"], "rollOutPods": True},
        }
    else:
        values["hubble"] = {"enabled": False}

    if spec["cilium_encryption"] != "none":
        values["encryption"] = {"enabled": True, "type": spec["cilium_encryption"]}
    if spec["cilium_bandwidth_manager"]:
        values["bandwidthManager"] = {"enabled": True, "bbr": spec["cilium_bbr"]}
    if spec["cilium_datapath_mode"] != "veth":
        values["bpf"]["datapathMode"] = spec["cilium_datapath_mode"]
    if spec["cilium_enable_ipv4_big_tcp"]:
        values["enableIPv4BIGTCP"] = True
    if spec["cilium_enable_ipv6_big_tcp"]:
        values["enableIPv6BIGTCP"] = True
    if spec["cilium_image_pull_secrets"]:
        values["imagePullSecrets"] = [{"name": name} if isinstance(name, str) else name
                                      for name in spec["cilium_image_pull_secrets"]]
    if spec["cilium_image_registry"]:
        values = deep_merge(values, _image_overrides(spec["cilium_image_registry"]))
    if spec["cilium_upgrade_compatibility"]:
        values["upgradeCompatibility"] = spec["cilium_upgrade_compatibility"]
    return values


def bpf_ct_sizes(expected_connections, headroom=conntrack_math.DEFAULT_HEADROOM):
    """``(ctTcpMax, ctAnyMax)`` for a peak of concurrent connections per node, or None.

    0 leaves Cilium's own sizing (bpf.mapDynamicSizeRatio, from each node's memory).
    Otherwise the TCP table holds the connections plus the headroom the node tuning role
    gives netfilter's table, never below Cilium's defaults; the non-TCP table keeps
    Cilium's default ratio (half the TCP table).
    """
    if expected_connections <= 0:
        return None
    needed = int((decimal.Decimal(expected_connections) * (1 + decimal.Decimal(repr(headroom))))
                 .to_integral_value(rounding=decimal.ROUND_CEILING))
    tcp = max(CT_TCP_DEFAULT, needed)
    return tcp, max(CT_ANY_DEFAULT, -(-tcp // 2))


def computed_values(spec, plan, warnings):
    """Values from the network math: MTU, routing, IPAM pool and mask, CT map sizes."""
    families = [network.version for network in spec["pod_networks"]]
    values = {
        "MTU": spec["zerotrust_underlay_mtu"],
        "routingMode": spec["cilium_routing_mode"],
        "ipv4": {"enabled": 4 in families},
        "ipv6": {"enabled": 6 in families},
    }
    if spec["cilium_routing_mode"] == "tunnel":
        values["tunnelProtocol"] = spec["cilium_tunnel_protocol"]
        values["underlayProtocol"] = _underlay_family(spec)
        values["autoDirectNodeRoutes"] = False
    else:
        auto_direct = spec["cilium_auto_direct_node_routes"]
        for network in spec["pod_networks"]:
            family = "ipv%d" % network.version
            routing = plan["routing"][family]
            native = spec["native_networks"].get(network.version) or network
            values["%sNativeRoutingCIDR" % family] = str(native)
            if routing["mode"] != "native":
                warnings.append(
                    "cilium_routing_mode native for %s: the network math recommends a tunnel (%s); native routing "
                    "works only if the underlay routes %s (BGP, cloud routes)" % (network, routing["reason"], network))
            if auto_direct is None:
                auto_direct = bool(routing["same_l2"])
        values["autoDirectNodeRoutes"] = bool(auto_direct)
    if spec["cilium_ipam_mode"] == "cluster-pool":
        operator = {}
        for family, pod_plan in plan["pod_cidr"].items():
            helm = pod_plan["helm_values"]["ipam"]["operator"]
            operator.update(helm)
        values["ipam"] = {"operator": operator}
    sizes = bpf_ct_sizes(spec["cilium_bpf_ct_expected_connections"])
    if sizes is not None:
        values["bpf"] = {"ctTcpMax": sizes[0], "ctAnyMax": sizes[1]}
    return values


def spec_conflicts(base, overrides):
    """Overrides that change a value the cluster spec decides."""
    problems = []
    for key, variable in sorted(SPEC_DERIVED.items()):
        path = tuple(key.split("."))
        given = lookup(overrides, path)
        if given is _MISSING:
            continue
        decided = effective(base, path)
        if _comparable(given) != _comparable(decided):
            problems.append(InvalidInput(
                "%s.%s" % (OVERRIDES, key), given,
                "contradicts the cluster spec (%s gives %r), which the plan, kernel preflight and node roles read "
                "too; set %s instead" % (variable, decided, variable.split(" ")[0])))
    return problems


def _comparable(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip().lower() if value.strip().lower() in ("true", "false") else value.strip()
    return value


# --------------------------------------------------------------------------------------
# LB IPAM pools
# --------------------------------------------------------------------------------------

POOL_FIELDS = ("name", "blocks", "serviceSelector", "allowFirstLastIPs", "disabled", "labels")


def _pool_ranges(pool_field, blocks, problems):
    """ipaddress networks covering each block (a range becomes its minimal CIDRs)."""
    networks = []
    for index, block in enumerate(blocks):
        field = "%s.blocks[%d]" % (pool_field, index)
        if not isinstance(block, dict):
            problems.append(InvalidInput(field, block, "must be a mapping with cidr, or start and stop"))
            continue
        if "cidr" in block and ("start" in block or "stop" in block):
            problems.append(InvalidInput(field, block, "sets cidr and start/stop; a block is one or the other"))
            continue
        if "cidr" in block:
            try:
                networks.append(cidr_math.parse_cidr(block["cidr"], field + ".cidr", None))
            except InvalidInput as err:
                problems.append(err)
            continue
        if "start" not in block:
            problems.append(InvalidInput(field, block, "needs cidr, or start (and stop for a range)"))
            continue
        try:
            start = ipaddress.ip_address(str(block["start"]))
            stop = ipaddress.ip_address(str(block.get("stop", block["start"])))
        except ValueError:
            problems.append(InvalidInput(field, block, "start and stop must be IP addresses"))
            continue
        if start.version != stop.version or start > stop:
            problems.append(InvalidInput(field, block,
                                         "start must not be after stop, and both must be of one address family"))
            continue
        networks.extend(ipaddress.summarize_address_range(start, stop))
    return networks


def crd_unknown_fields(manifest, schema, field_prefix):
    """Fields the CRD schema does not define; the API server would prune them silently."""
    problems = []

    def walk(node, given, path):
        if not isinstance(node, dict) or not isinstance(given, dict):
            return
        properties = node.get("properties")
        if properties is None:
            return
        for key, value in given.items():
            if key in properties:
                sub = properties[key]
                if sub.get("type") == "array" and isinstance(value, list):
                    for index, item in enumerate(value):
                        walk(sub.get("items", {}), item, path + ["%s[%d]" % (key, index)])
                else:
                    walk(sub, value, path + [key])
            elif "additionalProperties" not in node:
                hint = difflib.get_close_matches(str(key), list(properties), n=1, cutoff=0.6)
                problems.append(InvalidInput(
                    "%s.%s" % (field_prefix, ".".join(path + [str(key)])), value,
                    "is not a field of CiliumLoadBalancerIPPool; the API server would drop it silently%s" % (
                        "; did you mean %s?" % hint[0] if hint else "")))

    walk(schema, manifest, [])
    return problems


def lb_pool_manifests(pools, reserved=None):
    """``(manifests, problems)`` for the pools of ``cilium_lb_ip_pools``.

    ``reserved`` maps a name (``zerotrust_pod_cidr``) to CIDRs the pools must not overlap.
    """
    problems = []
    manifests = []
    if not isinstance(pools, list):
        return [], [InvalidInput(POOLS, pools, "must be a list of pools (name, blocks)")]
    crd = chart.LB_IP_POOL_CRD
    storage = [name for name, version in crd["versions"].items() if version["storage"]][0]
    schema = crd["versions"][storage]["schema"]
    named = {}
    names = set()
    for index, pool in enumerate(pools):
        field = "%s[%d]" % (POOLS, index)
        if not isinstance(pool, dict):
            problems.append(InvalidInput(field, pool, "must be a mapping with name and blocks"))
            continue
        name = pool.get("name")
        if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            problems.append(InvalidInput(field + ".name", name,
                                         "is not a Kubernetes object name (lower case letters, digits, '-' and '.')"))
        elif name in names:
            problems.append(InvalidInput(field + ".name", name, "is used by another pool"))
        else:
            names.add(name)
            field = "%s[%s]" % (POOLS, name)
        for key in pool:
            if key not in POOL_FIELDS:
                hint = difflib.get_close_matches(str(key), POOL_FIELDS, n=1, cutoff=0.6)
                problems.append(InvalidInput("%s.%s" % (field, key), pool[key], "is not a pool field (accepted: %s)%s" % (
                    ", ".join(POOL_FIELDS), "; did you mean %s?" % hint[0] if hint else "")))
        blocks = pool.get("blocks")
        if not isinstance(blocks, list) or not blocks:
            problems.append(InvalidInput(field + ".blocks", blocks, "must be a non-empty list of cidr or start/stop"))
            blocks = []
        first_last = pool.get("allowFirstLastIPs")
        if isinstance(first_last, bool):
            problems.append(InvalidInput(field + ".allowFirstLastIPs", first_last,
                                         "must be the string 'Yes' or 'No' (quote it: YAML reads Yes/No as booleans)"))
        spec = {"blocks": [dict(block) if isinstance(block, dict) else block for block in blocks]}
        for key in ("serviceSelector", "allowFirstLastIPs", "disabled"):
            if key in pool:
                spec[key] = pool[key]
        labels = {"app.kubernetes.io/managed-by": MANAGED_BY}
        if isinstance(pool.get("labels"), dict):
            labels.update(pool["labels"])
        manifest = {
            "apiVersion": "%s/%s" % (crd["group"], storage),
            "kind": crd["kind"],
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }
        problems.extend(crd_unknown_fields(spec, schema["properties"]["spec"], field))
        if jsonschema is not None and not isinstance(first_last, bool):
            for error in jsonschema.Draft7Validator(schema).iter_errors(manifest):
                path = [str(part) for part in error.absolute_path]
                if path[:1] == ["spec"]:
                    path = path[1:]
                problems.append(InvalidInput(".".join([field] + path), error.instance,
                                             "is refused by the CiliumLoadBalancerIPPool CRD schema: %s" % error.message))
        named[field] = _pool_ranges(field, blocks, problems)
        manifests.append(manifest)
    if jsonschema is None and pools:
        require_jsonschema()
    entries = {name: [str(network) for network in networks] for name, networks in named.items() if networks}
    for name, cidrs in (reserved or {}).items():
        if cidrs:
            entries[name] = [str(item) for item in cidrs]
    if len(entries) > 1:
        for overlap in cidr_math.cidr_overlaps(entries):
            first, first_cidr = overlap["first"], overlap["first_cidr"]
            second, second_cidr = overlap["second"], overlap["second_cidr"]
            if first == second or not (first.startswith(POOLS) or second.startswith(POOLS)):
                continue
            if not second.startswith(POOLS):
                first, first_cidr, second, second_cidr = second, second_cidr, first, first_cidr
            problems.append(InvalidInput(
                second, second_cidr, "overlaps %s %s; LB IPAM would hand out addresses %s" % (
                    first, first_cidr,
                    "twice" if first.startswith(POOLS) else "that already belong to the cluster")))
    return manifests, problems


# --------------------------------------------------------------------------------------
# Helm arguments and release decisions (the apply path)
# --------------------------------------------------------------------------------------

def chart_source(chart_ref, chart_repo_url=None):
    """``repo``, ``oci`` or ``local`` for a chart reference, with a readable reference."""
    if not isinstance(chart_ref, str) or not chart_ref.strip():
        raise InvalidInput("cilium_chart_ref", chart_ref, "must name the chart: 'cilium' with a repository URL, an "
                           "oci:// reference or a local chart directory or .tgz", where=WHERE)
    chart_ref = chart_ref.strip()
    if chart_ref.startswith("oci://"):
        return {"kind": "oci", "ref": chart_ref, "repo_url": None}
    if chart_ref.startswith("/") or chart_ref.startswith("./") or chart_ref.startswith("~") or \
            chart_ref.endswith(".tgz"):
        return {"kind": "local", "ref": chart_ref, "repo_url": None}
    if not chart_repo_url:
        raise InvalidInput("cilium_chart_repo_url", chart_repo_url,
                           "is required for the chart name %r (e.g. https://helm.cilium.io/), or give an oci:// "
                           "reference or a local path in cilium_chart_ref" % chart_ref, where=WHERE)
    return {"kind": "repo", "ref": chart_ref, "repo_url": chart_repo_url}


def helm_arguments(values, chart_version, release_name="cilium", namespace="kube-system", chart_ref="cilium",
                   chart_repo_url=None, timeout="15m0s", history_max=10, kubeconfig=None, context=None,
                   binary_path=None):
    """Arguments for ``kubernetes.core.helm`` installing or upgrading the release.

    Pinned version (except for a local chart, whose own version the role checks),
    ``wait`` and ``atomic`` (a failed upgrade rolls back by itself), ``reset_values`` so
    the release has exactly these values, and a bounded history to roll back to.
    """
    source = chart_source(chart_ref, chart_repo_url)
    arguments = {
        "release_name": release_name,
        "release_namespace": namespace,
        "chart_ref": source["ref"],
        "release_values": values,
        "release_state": "present",
        "wait": True,
        "atomic": True,
        "timeout": timeout,
        "reset_values": True,
        "history_max": history_max,
    }
    if source["kind"] != "local":
        arguments["chart_version"] = chart_version
    if source["kind"] == "repo":
        arguments["chart_repo_url"] = source["repo_url"]
    for key, value in (("kubeconfig", kubeconfig), ("context", context), ("binary_path", binary_path)):
        if value:
            arguments[key] = value
    return arguments


def helm_command(chart_version, release_name="cilium", namespace="kube-system", chart_ref="cilium",
                 chart_repo_url=None, timeout="15m0s", values_file="values.yaml", history_max=10):
    """The ``helm upgrade --install`` command line that applies the rendered values."""
    source = chart_source(chart_ref, chart_repo_url)
    parts = ["helm upgrade --install", release_name, source["ref"]]
    if source["kind"] == "repo":
        parts.append("--repo %s" % source["repo_url"])
    if source["kind"] != "local":
        parts.append("--version %s" % chart_version)
    parts += ["--namespace %s" % namespace, "--values %s" % values_file, "--reset-values",
              "--wait --atomic --timeout %s" % timeout, "--history-max %d" % history_max]
    return " \\\n  ".join(parts)


def preflight_values(values):
    """Values of the pre-flight release of Cilium's upgrade guide (image pre-pull).

    ``preflight.enabled=true``, ``agent=false``, ``operator.enabled=false``; with
    kube-proxy replacement the API address as well; private registry and pull secrets
    carried over so the pre-pull tests the images the upgrade will use.
    """
    result = {"preflight": {"enabled": True}, "agent": False, "operator": {"enabled": False}}
    for key in ("k8sServiceHost", "k8sServicePort", "imagePullSecrets"):
        if key in values:
            result[key] = copy.deepcopy(values[key])
    for key in ("image", "envoy"):
        image = lookup(values, ("preflight", key) if key == "image" else ("preflight", "envoy", "image"))
        if image is not _MISSING:
            target = result["preflight"] if key == "image" else result["preflight"].setdefault("envoy", {})
            target["image"] = copy.deepcopy(image)
    return result


def _release_version(status):
    """``1.19.3`` (or ``1.20.0-rc.1``) from helm's ``chart`` field ``cilium-1.19.3``."""
    match = re.match(r"^.+?-v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)$", str(status.get("chart", "")))
    return match.group(1) if match else None


def _version_triple(version):
    return tuple(int(part) for part in re.match(r"^(\d+)\.(\d+)\.(\d+)", version).groups())


def values_diff(current, desired):
    """Sorted dotted paths whose value differs between two value trees."""
    current_flat, desired_flat = flatten(current or {}), flatten(desired or {})
    return sorted(dotted(path) for path in set(current_flat) | set(desired_flat)
                  if current_flat.get(path, _MISSING) != desired_flat.get(path, _MISSING))


def release_plan(current, chart_version, values, allow_upgrade=False, preflight=True, release_name="cilium"):
    """What the apply path does with the release, decided before anything changes.

    ``current`` is ``kubernetes.core.helm_info``'s ``status`` (empty when there is no
    release).  Returns ``action`` (install, upgrade, none), ``blocked`` (why the role must
    stop, or None), ``preflight`` (run the upgrade guide's image pre-pull first),
    ``previous_revision``/``previous_version``/``previous_values`` (what to record and
    roll back to) and ``changed_keys``.
    """
    plan = {"action": "none", "blocked": None, "preflight": False, "previous_revision": None,
            "previous_version": None, "previous_values": None, "rollback_revision": None, "changed_keys": []}
    if not current:
        plan["action"] = "install"
        return plan
    state = str(current.get("status", "")).lower()
    revision = current.get("revision")
    plan["previous_revision"] = int(revision) if str(revision).isdigit() else None
    plan["previous_version"] = _release_version(current)
    plan["previous_values"] = current.get("values") or {}
    plan["changed_keys"] = values_diff(plan["previous_values"], values)
    version_changed = plan["previous_version"] != chart_version
    if not version_changed and not plan["changed_keys"]:
        if state != "deployed":
            plan["blocked"] = ("release %s is in state %r with the desired chart and values; repair it with helm "
                               "rollback or helm history before running this role" % (release_name, state))
        return plan
    plan["action"] = "upgrade"
    plan["rollback_revision"] = plan["previous_revision"]
    plan["preflight"] = bool(preflight and version_changed)
    if state != "deployed":
        plan["blocked"] = ("release %s is in state %r; an upgrade needs a deployed release to fall back to: repair "
                           "it with helm rollback first" % (release_name, state))
        return plan
    if plan["previous_version"] is None:
        plan["blocked"] = "cannot read the chart version of release %s from %r" % (release_name, current.get("chart"))
        return plan
    old = _version_triple(plan["previous_version"])
    new = _version_triple(chart_version)
    if new < old:
        plan["blocked"] = ("release %s runs chart %s, newer than %s: a downgrade is a rollback; use helm rollback to "
                           "the recorded revision" % (release_name, plan["previous_version"], chart_version))
    elif new[0] != old[0] or new[1] - old[1] > 1:
        plan["blocked"] = ("release %s runs chart %s: Cilium supports upgrades one minor release at a time; upgrade "
                           "to %d.%d first" % (release_name, plan["previous_version"], old[0], old[1] + 1))
    elif not allow_upgrade:
        what = ("chart %s -> %s" % (plan["previous_version"], chart_version)) if version_changed else "values"
        plan["blocked"] = ("release %s exists and would change (%s; keys: %s); upgrading a running CNI is opt-in: set "
                           "cilium_upgrade: true" % (release_name, what, ", ".join(plan["changed_keys"][:12]) or "-"))
    return plan


# --------------------------------------------------------------------------------------
# The module's entry point
# --------------------------------------------------------------------------------------

def build(spec, overrides=None, lb_pools=None):
    """Hardened + computed + overrides, validated; raises InvalidInputs listing every problem."""
    normalised = normalise_spec(spec)
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise InvalidInput(OVERRIDES, overrides, "must be a mapping of Helm values", where=WHERE)
    warnings = []
    plan = network_plan(normalised)
    hardened = hardened_values(normalised, warnings)
    computed = computed_values(normalised, plan, warnings)
    base = deep_merge(hardened, computed)
    values = deep_merge(base, overrides)

    service_cidrs = [str(network) for network in normalised["service_networks"]]
    problems = spec_conflicts(base, overrides)
    problems.extend(validate_values(values, overrides=overrides, source="values", service_cidrs=service_cidrs))
    reserved = {"zerotrust_pod_cidr": [str(network) for network in normalised["pod_networks"]],
                "zerotrust_service_cidr": service_cidrs}
    manifests, pool_problems = lb_pool_manifests(lb_pools or [], reserved)
    problems.extend(pool_problems)
    if problems:
        raise InvalidInputs(problems, where=WHERE)
    warnings.extend(check_chart_version(normalised["cilium_version"])[1])
    warnings.extend(value_warnings(values))
    return {
        "values": values,
        "base": base,
        "lb_ip_pools": manifests,
        "chart_version": normalised["cilium_version"].strip().lstrip("v"),
        "warnings": warnings,
        "plan": {
            "mtu": plan["mtu"],
            "pod_cidr": plan["pod_cidr"],
            "routing": plan["routing"],
        },
    }


def run(params):
    """Everything the module returns, from its parameters (see the module's RETURN)."""
    result = {"changed": False, "chart": {"name": chart.CHART_NAME, "data_version": chart.CHART_VERSION}}
    if params.get("values") is not None:
        given = params["values"]
        version = params.get("chart_version") or chart.CHART_VERSION
        problems = validate_values(given, source="values", chart_version=version)
        if problems:
            raise InvalidInputs(problems, where=WHERE)
        result.update({"values": given, "lb_ip_pools": [], "warnings": value_warnings(given), "plan": {}})
        result["chart"]["version"] = version
        return result

    built = build(params.get("spec"), params.get("overrides"), params.get("lb_ip_pools"))
    result.update({"values": built["values"], "lb_ip_pools": built["lb_ip_pools"], "warnings": built["warnings"],
                   "plan": built["plan"]})
    result["chart"]["version"] = built["chart_version"]
    result["diff"] = {"before": built["base"], "after": built["values"],
                      "before_header": "hardened + computed values", "after_header": "with cilium_values_overrides"}
    helm = params.get("helm") or {}
    common = dict(release_name=helm.get("release_name") or "cilium", namespace=helm.get("namespace") or "kube-system",
                  chart_ref=helm.get("chart_ref") or "cilium",
                  chart_repo_url=helm.get("chart_repo_url", DEFAULT_CHART_REPO),
                  timeout=helm.get("timeout") or "15m0s", history_max=helm.get("history_max") or 10)
    source = chart_source(common["chart_ref"], common["chart_repo_url"])
    result["chart"].update({"source": source["kind"], "ref": source["ref"], "repo_url": source["repo_url"]})
    result["helm_command"] = helm_command(built["chart_version"], **common)
    connection = dict(kubeconfig=helm.get("kubeconfig"), context=helm.get("context"),
                      binary_path=helm.get("binary_path"))
    arguments = dict(common)
    arguments.update(connection)
    result["helm"] = helm_arguments(built["values"], built["chart_version"], **arguments)
    preflight = dict(arguments)
    preflight["release_name"] = "%s-preflight" % common["release_name"]
    result["preflight_helm"] = helm_arguments(preflight_values(built["values"]), built["chart_version"], **preflight)
    if params.get("release") is not None:
        result["release"] = release_plan(params["release"], built["chart_version"], built["values"],
                                         allow_upgrade=bool(params.get("allow_upgrade")),
                                         preflight=params.get("preflight", True) is not False,
                                         release_name=common["release_name"])
    return result
