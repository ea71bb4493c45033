# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod CIDR planning, CIDR overlap detection and the routing-mode decision.

Pure Python on the standard library's ``ipaddress``: nothing here imports ``ansible``
and nodes need nothing extra.  The ``zerotrust.cilium.pod_cidr_plan``,
``cidr_overlaps`` and ``routing_mode`` filters are thin wrappers over the public
functions of the same names.

Where the IPAM rules come from (cilium/cilium):

* ``pkg/ipam/cidrset/cidr_set.go`` (the cluster-pool operator's allocator, derived from
  Kubernetes' node IPAM): a cluster CIDR ``/c`` split into ``/n`` blocks holds
  ``2^(n-c)`` nodes; for IPv6, ``n - c`` may not exceed 16 (``clusterSubnetMaxDiff``,
  ``ErrCIDRSetSubNetTooBig``); IPv4 has no such limit.
* ``pkg/ipam/service/ipallocator/allocator.go`` (``NewCIDRRange``, used by the agent's
  host-scope allocator for the node's block): the first and the last address of the
  block are never handed out (``RangeSize - 2``), and an IPv6 range is capped at 65536
  addresses (``RangeSize``).
* The agent takes one address of its block for the router (``cilium_host``) and one
  for the health endpoint, hence ``reserved_per_node`` defaults to 2.
* Defaults of chart 1.20.0 (``ipam.operator.clusterPoolIPv4MaskSize: 24``,
  ``clusterPoolIPv6MaskSize: 120``, ``clusterPoolIPv4PodCIDRList: [10.0.0.0/8]``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import decimal
import ipaddress

from ansible_collections.zerotrust.cilium.plugins.module_utils import checks
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

DEFAULT_MAX_PODS_PER_NODE = 110
DEFAULT_GROWTH = 0.25
# cilium_host (router) + cilium-health endpoint.
DEFAULT_RESERVED_PER_NODE = 2
# The first and last address of every node block (ipallocator.NewCIDRRange).
UNALLOCATABLE_PER_BLOCK = 2
# ipallocator.RangeSize caps an IPv6 range at 2^16 addresses.
IPV6_RANGE_CAP = 1 << 16
# cidrset.clusterSubnetMaxDiff, enforced for IPv6 cluster CIDRs only.
IPV6_CLUSTER_SUBNET_MAX_DIFF = 16
# Growth above 10x is a different cluster, not headroom.
MAX_GROWTH = 10
TUNNEL_PROTOCOLS = ("vxlan", "geneve")

_FAMILY_BITS = {4: 32, 6: 128}
_FAMILY_NAMES = {4: "ipv4", 6: "ipv6"}


# ---------------------------------------------------------------------------
# Input checks shared by the three filters of this file.
# ---------------------------------------------------------------------------

def parse_cidr(value, field, where):
    """Parse ``value`` as a network in CIDR notation, strictly.

    Refuses anything that is not a string, has no ``/prefix``, is malformed, or has host
    bits set (then the message names the network that was probably meant).
    """
    if not isinstance(value, str):
        raise InvalidInput(field, value, "is not a CIDR string such as '10.0.0.0/16'", where=where)
    text = value.strip()
    if "/" not in text:
        raise InvalidInput(field, value, "is not in CIDR notation (address/prefix, e.g. '10.0.0.0/16')",
                           where=where)
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(field, value, "is not a valid IPv4 or IPv6 CIDR", where=where)
    raise InvalidInput(field, value, "has host bits set; the network is '%s'" % network, where=where)


def _ceil_log2(number):
    """Smallest k with 2^k >= number (number >= 1)."""
    return (number - 1).bit_length()


def _required_nodes(nodes, growth):
    """``ceil(nodes * (1 + growth))`` in decimal arithmetic (100 * 1.1 is 110, not 111)."""
    return int((decimal.Decimal(nodes) * (1 + growth)).to_integral_value(rounding=decimal.ROUND_CEILING))


def allocatable_addresses(family, host_bits):
    """Addresses Cilium's host-scope allocator hands out from a block of ``host_bits``."""
    size = 1 << host_bits
    if family == 6:
        size = min(size, IPV6_RANGE_CAP)
    return max(0, size - UNALLOCATABLE_PER_BLOCK)


def smallest_block_host_bits(family, addresses_needed):
    """Fewest host bits whose block leaves ``addresses_needed`` allocatable, or None."""
    bits = _FAMILY_BITS[family]
    for host_bits in range(0, bits + 1):
        if allocatable_addresses(family, host_bits) >= addresses_needed:
            return host_bits
        if family == 6 and (1 << host_bits) >= IPV6_RANGE_CAP:
            return None
    return None


# ---------------------------------------------------------------------------
# pod_cidr_plan
# ---------------------------------------------------------------------------

def pod_cidr_plan(cluster_cidr, nodes=None, max_pods_per_node=DEFAULT_MAX_PODS_PER_NODE,
                  growth=DEFAULT_GROWTH, reserved_per_node=DEFAULT_RESERVED_PER_NODE,
                  per_node_prefix=None):
    """Plan Cilium cluster-pool IPAM for ``nodes`` nodes in ``cluster_cidr``.

    Picks the longest per-node prefix whose block still leaves ``max_pods_per_node``
    pod addresses after Cilium's unallocatable and reserved addresses (or checks the
    ``per_node_prefix`` given), then says how many nodes the cluster CIDR holds, whether
    ``nodes`` plus ``growth`` fit, and if not the smallest cluster prefix that would.
    """
    where = "pod_cidr_plan"
    network = parse_cidr(cluster_cidr, "cluster_cidr", where)
    node_count = checks.whole_number(where, "nodes", nodes, minimum=1)
    max_pods = checks.whole_number(where, "max_pods_per_node", max_pods_per_node, minimum=1)
    growth_fraction = checks.fraction(where, "growth", growth, MAX_GROWTH)
    reserved = checks.whole_number(where, "reserved_per_node", reserved_per_node, minimum=0)

    family = network.version
    bits = _FAMILY_BITS[family]
    cluster_prefix = network.prefixlen
    addresses_needed = max_pods + reserved
    tightest_host_bits = smallest_block_host_bits(family, addresses_needed)
    if tightest_host_bits is None:
        raise InvalidInput("max_pods_per_node", max_pods_per_node,
                           "plus %d reserved needs %d addresses per node, more than Cilium allocates from one "
                           "%s block" % (reserved, addresses_needed, _FAMILY_NAMES[network.version]),
                           where=where)
    tightest_prefix = bits - tightest_host_bits
    notes = []

    if per_node_prefix is None:
        if tightest_prefix < cluster_prefix:
            raise InvalidInput("max_pods_per_node", max_pods_per_node,
                               "plus %d reserved needs a /%d per node, larger than the cluster CIDR %s"
                               % (reserved, tightest_prefix, network), where=where)
        chosen_prefix = tightest_prefix
        if family == 6 and chosen_prefix - cluster_prefix > IPV6_CLUSTER_SUBNET_MAX_DIFF:
            chosen_prefix = cluster_prefix + IPV6_CLUSTER_SUBNET_MAX_DIFF
            notes.append("per-node blocks widened from /%d to /%d: Cilium's operator refuses IPv6 node "
                         "blocks more than 16 bits longer than the cluster prefix" % (tightest_prefix, chosen_prefix))
    else:
        chosen_prefix = checks.whole_number(where, "per_node_prefix", per_node_prefix,
                                            minimum=cluster_prefix, maximum=bits)
        if family == 6 and chosen_prefix - cluster_prefix > IPV6_CLUSTER_SUBNET_MAX_DIFF:
            raise InvalidInput("per_node_prefix", per_node_prefix,
                               "is more than 16 bits longer than the IPv6 cluster prefix /%d; Cilium's operator "
                               "refuses that (use /%d or shorter)" % (
                                   cluster_prefix, cluster_prefix + IPV6_CLUSTER_SUBNET_MAX_DIFF),
                               where=where)
        if allocatable_addresses(family, bits - chosen_prefix) < addresses_needed:
            raise InvalidInput(
                "per_node_prefix", per_node_prefix,
                "is too small for max_pods_per_node %d plus %d reserved: a /%d leaves %d allocatable "
                "addresses; use /%d or shorter" % (
                    max_pods, reserved, chosen_prefix, allocatable_addresses(family, bits - chosen_prefix),
                    tightest_prefix),
                where=where)

    host_bits = bits - chosen_prefix
    addresses_per_node = 1 << host_bits
    allocatable_per_node = allocatable_addresses(family, host_bits)
    node_capacity = 1 << (chosen_prefix - cluster_prefix)
    required_nodes = _required_nodes(node_count, growth_fraction)
    fits = required_nodes <= node_capacity

    prefix_bits_for_nodes = _ceil_log2(required_nodes)
    smallest_prefix = chosen_prefix - prefix_bits_for_nodes
    if smallest_prefix < 0 or (family == 6 and prefix_bits_for_nodes > IPV6_CLUSTER_SUBNET_MAX_DIFF):
        smallest_prefix = None

    growth_text = "%s%%" % checks.percent_text(growth_fraction)
    if fits:
        reason = ("%s holds %d /%d node blocks; %d nodes with %s growth need %d (%s%% of the blocks)" % (
            network, node_capacity, chosen_prefix, node_count, growth_text, required_nodes,
            checks.percent_text(decimal.Decimal(required_nodes) / node_capacity)))
    elif smallest_prefix is None:
        reason = ("%s holds %d /%d node blocks; %d nodes with %s growth need %d, more than any %s cluster "
                  "CIDR can hold with /%d blocks%s" % (
                      network, node_capacity, chosen_prefix, node_count, growth_text, required_nodes,
                      _FAMILY_NAMES[family], chosen_prefix,
                      " (IPv6 allows at most 2^16 blocks per cluster CIDR)" if family == 6 else ""))
    else:
        reason = ("%s holds only %d /%d node blocks; %d nodes with %s growth need %d; a /%d holds %d" % (
            network, node_capacity, chosen_prefix, node_count, growth_text, required_nodes, smallest_prefix,
            1 << prefix_bits_for_nodes))
    if notes:
        reason = "%s; %s" % (reason, "; ".join(notes))

    mask_key = "clusterPoolIPv4MaskSize" if family == 4 else "clusterPoolIPv6MaskSize"
    list_key = "clusterPoolIPv4PodCIDRList" if family == 4 else "clusterPoolIPv6PodCIDRList"
    return {
        "cluster_cidr": str(network),
        "family": _FAMILY_NAMES[family],
        "cluster_prefix": cluster_prefix,
        "per_node_prefix": chosen_prefix,
        "addresses_per_node": addresses_per_node,
        "allocatable_per_node": allocatable_per_node,
        "reserved_per_node": reserved,
        "pod_capacity_per_node": allocatable_per_node - reserved,
        "max_pods_per_node": max_pods,
        "node_capacity": node_capacity,
        "nodes": node_count,
        "growth": float(growth_fraction),
        "required_nodes": required_nodes,
        "fits": fits,
        "cluster_utilisation": _ratio(required_nodes, node_capacity),
        "block_utilisation": _ratio(max_pods, addresses_per_node),
        "smallest_fitting_prefix": smallest_prefix,
        "reason": reason,
        "helm_values": {"ipam": {"mode": "cluster-pool", "operator": {
            list_key: [str(network)],
            mask_key: chosen_prefix,
        }}},
    }


def _ratio(numerator, denominator):
    return round(float(decimal.Decimal(numerator) / decimal.Decimal(denominator)), 4)


# ---------------------------------------------------------------------------
# cidr_overlaps
# ---------------------------------------------------------------------------

def _named_networks(cidrs, where):
    if not isinstance(cidrs, dict):
        raise InvalidInput("cidrs", cidrs, "is not a mapping of name to CIDR (or list of CIDRs)", where=where)
    entries = []
    for name, value in cidrs.items():
        if not isinstance(name, str) or not name:
            raise InvalidInput("cidrs", name, "is not a usable name (give each CIDR a non-empty string name)",
                               where=where)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise InvalidInput(name, value, "is an empty list; give at least one CIDR", where=where)
        for item in values:
            entries.append((name, parse_cidr(item, name, where)))
    return entries


def cidr_overlaps(cidrs, allow=None):
    """Every pair of overlapping CIDRs in ``cidrs`` (name -> CIDR or list of CIDRs).

    Two CIDRs either are disjoint or one contains the other, so a sort by (first
    address, prefix length) plus a stack of the blocks still open finds every pair in
    O(n log n + pairs).  IPv4 and IPv6 never overlap.  ``allow`` lists name pairs that
    may overlap on purpose (e.g. a native-routing CIDR that contains the pod CIDR).
    Each result names both sides in input order and says how they relate.
    """
    where = "cidr_overlaps"
    entries = _named_networks(cidrs, where)
    allowed = _allowed_pairs(allow, cidrs, where)

    ordered = sorted(
        range(len(entries)),
        key=lambda index: (entries[index][1].version, int(entries[index][1].network_address),
                           entries[index][1].prefixlen, index))
    pairs = []
    open_blocks = []
    for index in ordered:
        network = entries[index][1]
        start = int(network.network_address)
        while open_blocks and (open_blocks[-1][0] != network.version or open_blocks[-1][1] < start):
            open_blocks.pop()
        for _version, _end, outer_index in open_blocks:
            first, second = sorted((outer_index, index))
            pairs.append((first, second))
        open_blocks.append((network.version, int(network.broadcast_address), index))

    pairs.sort()
    result = []
    for first, second in pairs:
        first_name, first_network = entries[first]
        second_name, second_network = entries[second]
        if frozenset((first_name, second_name)) in allowed:
            continue
        if first_network == second_network:
            relation = "identical"
        elif first_network.prefixlen < second_network.prefixlen:
            relation = "first_contains_second"
        else:
            relation = "second_contains_first"
        result.append({
            "first": first_name,
            "first_cidr": str(first_network),
            "second": second_name,
            "second_cidr": str(second_network),
            "relation": relation,
        })
    return result


def _allowed_pairs(allow, cidrs, where):
    if allow is None:
        return set()
    if not isinstance(allow, (list, tuple)):
        raise InvalidInput("allow", allow, "is not a list of [name, name] pairs", where=where)
    allowed = set()
    for pair in allow:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidInput("allow", pair, "is not a [name, name] pair", where=where)
        for name in pair:
            if name not in cidrs:
                raise InvalidInput("allow", name, "is not one of the names given: %s" % ", ".join(
                    str(key) for key in cidrs), where=where)
        allowed.add(frozenset(pair))
    return allowed


# ---------------------------------------------------------------------------
# routing_mode
# ---------------------------------------------------------------------------

def routing_mode(pod_cidr, nodes=None, max_pods_per_node=DEFAULT_MAX_PODS_PER_NODE, growth=DEFAULT_GROWTH,
                 node_subnets=None, same_l2=None, underlay_routes_pod_cidr=False, routable_ips=None,
                 tunnel_protocol="vxlan", native_routing_cidr=None):
    """Decide between Cilium native routing and tunnelling.

    Native routing needs an underlay that carries pod addresses: either all nodes share
    one L2 segment (Cilium then installs the routes itself, ``autoDirectNodeRoutes``) or
    the underlay routes the pod CIDR (BGP, cloud route tables).  It also needs enough
    routable addresses for the planned pods, ``ceil(nodes * (1 + growth)) *
    max_pods_per_node``; the budget is ``routable_ips`` when given (e.g. a cloud VPC's
    free addresses), else the size of the native-routing CIDR.  Otherwise the answer is
    a tunnel, VXLAN unless ``tunnel_protocol`` asks for Geneve.

    ``same_l2`` left unset is derived from ``node_subnets``: true when exactly one node
    subnet of the pod CIDR's family is given.
    """
    where = "routing_mode"
    pod_network = parse_cidr(pod_cidr, "pod_cidr", where)
    node_count = checks.whole_number(where, "nodes", nodes, minimum=1)
    max_pods = checks.whole_number(where, "max_pods_per_node", max_pods_per_node, minimum=1)
    growth_fraction = checks.fraction(where, "growth", growth, MAX_GROWTH)
    same_l2 = checks.boolean(where, "same_l2", same_l2, allow_none=True)
    underlay_routes_pod_cidr = checks.boolean(where, "underlay_routes_pod_cidr", underlay_routes_pod_cidr)
    if not isinstance(tunnel_protocol, str) or tunnel_protocol not in TUNNEL_PROTOCOLS:
        raise InvalidInput("tunnel_protocol", tunnel_protocol, "is not one of: %s" % ", ".join(TUNNEL_PROTOCOLS),
                           where=where)

    if node_subnets is None:
        node_subnets = []
    if isinstance(node_subnets, str) or not isinstance(node_subnets, (list, tuple)):
        raise InvalidInput("node_subnets", node_subnets, "is not a list of CIDRs", where=where)
    subnets = [parse_cidr(item, "node_subnets", where) for item in node_subnets]
    for subnet in subnets:
        if subnet.version == pod_network.version and subnet.overlaps(pod_network):
            raise InvalidInput("node_subnets", str(subnet),
                               "overlaps the pod CIDR %s; pods and nodes need disjoint ranges" % pod_network,
                               where=where)
    same_family_subnets = [subnet for subnet in subnets if subnet.version == pod_network.version]

    if native_routing_cidr is None:
        native_network = pod_network
    else:
        native_network = parse_cidr(native_routing_cidr, "native_routing_cidr", where)
        if native_network.version != pod_network.version:
            raise InvalidInput("native_routing_cidr", native_routing_cidr,
                               "is %s but the pod CIDR %s is %s; they must be the same family" % (
                                   _FAMILY_NAMES[native_network.version], pod_network,
                                   _FAMILY_NAMES[pod_network.version]), where=where)
        if not pod_network.subnet_of(native_network):
            raise InvalidInput("native_routing_cidr", native_routing_cidr,
                               "does not contain the pod CIDR %s" % pod_network, where=where)

    if routable_ips is None:
        budget = native_network.num_addresses
        budget_source = "the size of %s" % native_network
    else:
        budget = checks.whole_number(where, "routable_ips", routable_ips, minimum=0)
        budget_source = "routable_ips"

    if same_l2 is None:
        same_l2 = len(same_family_subnets) == 1
        l2_source = ("derived: %d %s node subnet(s)" % (len(same_family_subnets),
                                                        _FAMILY_NAMES[pod_network.version]))
    else:
        l2_source = "given"

    required_nodes = _required_nodes(node_count, growth_fraction)
    planned_pods = required_nodes * max_pods
    family_key = "ipv4NativeRoutingCIDR" if pod_network.version == 4 else "ipv6NativeRoutingCIDR"

    if underlay_routes_pod_cidr:
        carrier = "the underlay routes %s" % pod_network
    elif same_l2:
        carrier = "all nodes share one L2 segment (%s), so autoDirectNodeRoutes installs the pod routes" % l2_source
    else:
        carrier = None

    result = {
        "pod_cidr": str(pod_network),
        "required_nodes": required_nodes,
        "planned_pods": planned_pods,
        "routable_ip_budget": budget,
        "same_l2": same_l2,
        "underlay_routes_pod_cidr": underlay_routes_pod_cidr,
    }
    if carrier is None:
        reason = ("tunnel: the underlay cannot carry pod addresses (nodes are not on one L2 segment (%s) and the "
                  "underlay does not route %s)" % (l2_source, pod_network))
    elif budget < planned_pods:
        reason = ("tunnel: %s, but the routable IP budget (%d, %s) is smaller than the %d pods planned "
                  "(%d nodes with growth x %d pods)"
                  % (carrier, budget, budget_source, planned_pods, required_nodes, max_pods))
    else:
        auto_direct = not underlay_routes_pod_cidr
        result.update({
            "mode": "native",
            "tunnel_protocol": None,
            "native_routing_cidr": str(native_network),
            "auto_direct_node_routes": auto_direct,
            "reason": "native: %s, and the routable IP budget (%d, %s) covers the %d pods planned" % (
                carrier, budget, budget_source, planned_pods),
            "helm_values": {
                "routingMode": "native",
                "autoDirectNodeRoutes": auto_direct,
                family_key: str(native_network),
            },
        })
        return result

    result.update({
        "mode": "tunnel",
        "tunnel_protocol": tunnel_protocol,
        "native_routing_cidr": None,
        "auto_direct_node_routes": False,
        "reason": reason,
        "helm_values": {
            "routingMode": "tunnel",
            "tunnelProtocol": tunnel_protocol,
            "autoDirectNodeRoutes": False,
        },
    })
    return result
