# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/cidr.py.

Expected numbers are worked out by hand from Cilium's IPAM rules:

* cidrset     cilium/cilium pkg/ipam/cidrset/cidr_set.go: a /c cluster CIDR split in /n
              blocks holds 2^(n-c) nodes; IPv6 refuses n - c > 16 (clusterSubnetMaxDiff)
* ipallocator cilium/cilium pkg/ipam/service/ipallocator/allocator.go: a node block gives
              RangeSize - 2 addresses (first and last never handed out); an IPv6 range is
              capped at 65536
* agent       one address for the router (cilium_host), one for the health endpoint
* chart       Cilium chart 1.20.0 values.yaml: clusterPoolIPv4MaskSize 24,
              clusterPoolIPv6MaskSize 120, clusterPoolIPv4PodCIDRList [10.0.0.0/8]
* guide       the project's source guide: /24 per node limits a node to ~254 pods;
              smaller blocks (/27) raise address utilisation
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.zerotrust.cilium.plugins.module_utils import cidr
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput


# ---------------------------------------------------------------------------
# pod_cidr_plan
# ---------------------------------------------------------------------------

def test_plan_for_one_hundred_nodes():
    # 110 pods + 2 reserved + 2 unallocatable = 114 addresses -> 128 (/25).
    # /16 holds 2^(25-16) = 512 blocks; 100 nodes * 1.25 = 125; 125 <= 128 = 2^7 -> /18.
    plan = cidr.pod_cidr_plan("10.0.0.0/16", nodes=100)
    assert plan["per_node_prefix"] == 25
    assert plan["addresses_per_node"] == 128
    assert plan["allocatable_per_node"] == 126
    assert plan["pod_capacity_per_node"] == 124
    assert plan["node_capacity"] == 512
    assert plan["required_nodes"] == 125
    assert plan["fits"] is True
    assert plan["smallest_fitting_prefix"] == 18
    assert plan["cluster_utilisation"] == round(125 / 512, 4)
    assert plan["block_utilisation"] == round(110 / 128, 4)
    assert plan["helm_values"]["ipam"]["operator"] == {
        "clusterPoolIPv4PodCIDRList": ["10.0.0.0/16"],
        "clusterPoolIPv4MaskSize": 25,
    }


def test_guide_pitfall_default_slash_24_caps_pods():
    # guide: a /24 per node limits a node to ~254 pods. With Cilium it is 256 - 2
    # unallocatable - router - health = 252 (ipallocator + agent).
    plan = cidr.pod_cidr_plan("10.0.0.0/8", nodes=1000, per_node_prefix=24)
    assert plan["pod_capacity_per_node"] == 252
    # chart default 10.0.0.0/8 with /24 blocks: 2^16 nodes.
    assert plan["node_capacity"] == 65536


def test_guide_pitfall_slash_27_raises_utilisation():
    # 28 pods + 2 + 2 = 32 -> /27; a /27 block is 28/32 used, a /24 only 28/256.
    dense = cidr.pod_cidr_plan("10.0.0.0/16", nodes=1500, max_pods_per_node=28)
    assert dense["per_node_prefix"] == 27
    assert dense["block_utilisation"] == 0.875
    # /16 in /27 blocks: 2^11 = 2048 >= 1875 nodes; the same /16 in /24 blocks holds 256.
    assert dense["node_capacity"] == 2048
    assert dense["fits"] is True
    sparse = cidr.pod_cidr_plan("10.0.0.0/16", nodes=1500, max_pods_per_node=28, per_node_prefix=24)
    assert sparse["block_utilisation"] == round(28 / 256, 4)
    assert sparse["node_capacity"] == 256
    assert sparse["fits"] is False


def test_plan_that_does_not_fit_names_the_smallest_prefix():
    # /20 in /25 blocks: 2^5 = 32 nodes. 5000 * 1.25 = 6250 <= 8192 = 2^13 -> /12.
    plan = cidr.pod_cidr_plan("10.0.0.0/20", nodes=5000)
    assert plan["fits"] is False
    assert plan["node_capacity"] == 32
    assert plan["required_nodes"] == 6250
    assert plan["smallest_fitting_prefix"] == 12
    assert plan["reason"] == ("10.0.0.0/20 holds only 32 /25 node blocks; 5000 nodes with 25% growth need 6250; "
                              "a /12 holds 8192")


def test_growth_is_exact_decimal_arithmetic():
    # 100 * 1.1 is 110.00000000000001 in binary floating point; the plan needs 110 nodes.
    assert cidr.pod_cidr_plan("10.0.0.0/16", nodes=100, growth=0.1)["required_nodes"] == 110
    assert cidr.pod_cidr_plan("10.0.0.0/16", nodes=100, growth="0.1")["required_nodes"] == 110


def test_exact_fit_without_growth():
    # /24 in /25 blocks holds exactly 2 nodes.
    plan = cidr.pod_cidr_plan("10.0.0.0/24", nodes=2, growth=0)
    assert plan["node_capacity"] == 2
    assert plan["fits"] is True
    assert plan["cluster_utilisation"] == 1.0
    assert cidr.pod_cidr_plan("10.0.0.0/24", nodes=3, growth=0)["fits"] is False


def test_ipv6_chart_default():
    # chart: fd00::/104 with /120 blocks. 2^16 blocks of 256 addresses, 254 allocatable.
    plan = cidr.pod_cidr_plan("fd00::/104", nodes=100, per_node_prefix=120)
    assert plan["family"] == "ipv6"
    assert plan["node_capacity"] == 65536
    assert plan["allocatable_per_node"] == 254
    assert plan["helm_values"]["ipam"]["operator"]["clusterPoolIPv6MaskSize"] == 120


def test_ipv6_blocks_widen_to_respect_the_16_bit_rule():
    # tightest for 110 pods is /121 (128 addresses), but /121 - /104 = 17 > 16 (cidrset):
    # the plan takes /120, which is also the chart default.
    plan = cidr.pod_cidr_plan("fd00::/104", nodes=100)
    assert plan["per_node_prefix"] == 120
    assert "widened from /121 to /120" in plan["reason"]


def test_ipv6_range_cap():
    # fd00::/64 -> blocks of at most /80 (16 bits); a /80 has 2^48 addresses but the
    # allocator hands out at most 65536 - 2 = 65534 (ipallocator RangeSize cap).
    plan = cidr.pod_cidr_plan("fd00::/64", nodes=10)
    assert plan["per_node_prefix"] == 80
    assert plan["addresses_per_node"] == 2 ** 48
    assert plan["allocatable_per_node"] == 65534


def test_ipv6_cluster_that_no_prefix_can_fix():
    # 70000 * 1.25 = 87500 nodes need 17 bits of node index; IPv6 allows 16 (cidrset).
    plan = cidr.pod_cidr_plan("fd00::/104", nodes=70000)
    assert plan["fits"] is False
    assert plan["smallest_fitting_prefix"] is None
    assert "IPv6 allows at most 2^16 blocks" in plan["reason"]


def test_reserved_addresses_change_the_block():
    # 126 pods + 2 reserved + 2 = 130 > 128 -> /24; with 0 reserved 128 fits a /25.
    assert cidr.pod_cidr_plan("10.0.0.0/16", nodes=1, max_pods_per_node=126)["per_node_prefix"] == 24
    assert cidr.pod_cidr_plan("10.0.0.0/16", nodes=1, max_pods_per_node=126,
                              reserved_per_node=0)["per_node_prefix"] == 25


@pytest.mark.parametrize("host_bits, family, allocatable", [
    (8, 4, 254),        # /24: 256 - 2
    (1, 4, 0),          # /31: RangeSize 2 - 2
    (0, 4, 0),          # /32
    (8, 6, 254),        # /120
    (16, 6, 65534),     # /112: 65536 - 2
    (20, 6, 65534),     # /108: capped at 65536 before the - 2
])
def test_allocatable_addresses(host_bits, family, allocatable):
    assert cidr.allocatable_addresses(family, host_bits) == allocatable


@st.composite
def ipv4_plans(draw):
    cluster_prefix = draw(st.integers(min_value=8, max_value=24))
    address = draw(st.integers(min_value=0, max_value=2 ** 32 - 1))
    network = ipaddress.ip_network((address, cluster_prefix), strict=False)
    return dict(
        cluster_cidr=str(network),
        nodes=draw(st.integers(min_value=1, max_value=20000)),
        max_pods_per_node=draw(st.integers(min_value=1, max_value=250)),
        growth=draw(st.sampled_from([0, 0.1, 0.25, 0.5, 1, 2])),
        reserved_per_node=draw(st.integers(min_value=0, max_value=4)),
    )


@settings(max_examples=300, deadline=None)
@given(ipv4_plans())
def test_every_block_fits_its_pods(arguments):
    host_bits_needed = arguments["max_pods_per_node"] + arguments["reserved_per_node"] + 2
    assume((host_bits_needed - 1).bit_length() <= 32 - int(arguments["cluster_cidr"].split("/")[1]))
    plan = cidr.pod_cidr_plan(**arguments)
    assert plan["pod_capacity_per_node"] >= arguments["max_pods_per_node"]
    assert plan["addresses_per_node"] - 2 - arguments["reserved_per_node"] >= arguments["max_pods_per_node"]
    # the chosen block is the tightest: one prefix longer would not hold the pods
    if plan["per_node_prefix"] < 32:
        half = plan["addresses_per_node"] // 2
        assert half - 2 - arguments["reserved_per_node"] < arguments["max_pods_per_node"]


@settings(max_examples=300, deadline=None)
@given(ipv4_plans())
def test_a_plan_that_fits_never_exceeds_the_cidr(arguments):
    needed = arguments["max_pods_per_node"] + arguments["reserved_per_node"] + 2
    assume((needed - 1).bit_length() <= 32 - int(arguments["cluster_cidr"].split("/")[1]))
    plan = cidr.pod_cidr_plan(**arguments)
    cluster_size = ipaddress.ip_network(arguments["cluster_cidr"]).num_addresses
    assert plan["node_capacity"] * plan["addresses_per_node"] == cluster_size
    if plan["fits"]:
        assert plan["required_nodes"] * plan["addresses_per_node"] <= cluster_size
        assert plan["cluster_utilisation"] <= 1
    if plan["smallest_fitting_prefix"] is not None:
        blocks = 2 ** (plan["per_node_prefix"] - plan["smallest_fitting_prefix"])
        assert blocks >= plan["required_nodes"]
        assert blocks // 2 < plan["required_nodes"] or blocks == 1


# ---------------------------------------------------------------------------
# cidr_overlaps
# ---------------------------------------------------------------------------

def test_disjoint_ranges_have_no_overlaps():
    assert cidr.cidr_overlaps({
        "pods": "10.0.0.0/16",
        "services": "10.96.0.0/12",
        "nodes": ["192.168.10.0/24", "192.168.11.0/24"],
        "pods_v6": "fd00::/104",
    }) == []


def test_service_cidr_inside_an_external_network():
    # guide: the service CIDR must be disjoint from every external network.
    overlaps = cidr.cidr_overlaps({"services": "10.96.0.0/12", "corporate": "10.0.0.0/8"})
    assert overlaps == [{
        "first": "services", "first_cidr": "10.96.0.0/12",
        "second": "corporate", "second_cidr": "10.0.0.0/8",
        "relation": "second_contains_first",
    }]


def test_identical_and_listed_ranges():
    overlaps = cidr.cidr_overlaps({
        "pods": "10.0.0.0/16",
        "nodes": ["192.168.0.0/24", "10.0.5.0/24"],
        "lab": "10.0.0.0/16",
    })
    assert overlaps == [
        {"first": "pods", "first_cidr": "10.0.0.0/16", "second": "nodes", "second_cidr": "10.0.5.0/24",
         "relation": "first_contains_second"},
        {"first": "pods", "first_cidr": "10.0.0.0/16", "second": "lab", "second_cidr": "10.0.0.0/16",
         "relation": "identical"},
        {"first": "nodes", "first_cidr": "10.0.5.0/24", "second": "lab", "second_cidr": "10.0.0.0/16",
         "relation": "second_contains_first"},
    ]


def test_last_address_of_a_block_overlaps_it():
    # a host route at the block's last address starts where the block ends
    overlaps = cidr.cidr_overlaps({"block": "10.0.0.0/24", "host": "10.0.0.255/32", "next": "10.0.1.0/24"})
    assert [(item["first"], item["second"], item["relation"]) for item in overlaps] == [
        ("block", "host", "first_contains_second")]


def test_ipv4_and_ipv6_never_overlap():
    assert cidr.cidr_overlaps({"v4": "0.0.0.0/0", "v6": "::/0"}) == []


def test_allowed_pairs_are_left_out():
    cidrs = {"pods": "10.0.0.0/16", "native_routing": "10.0.0.0/8", "services": "10.96.0.0/12"}
    overlaps = cidr.cidr_overlaps(cidrs, allow=[["pods", "native_routing"]])
    assert [(item["first"], item["second"]) for item in overlaps] == [("native_routing", "services")]


@st.composite
def any_cidr(draw):
    if draw(st.booleans()):
        address = draw(st.integers(min_value=0, max_value=2 ** 32 - 1))
        return str(ipaddress.IPv4Network((address, draw(st.integers(min_value=0, max_value=32))), strict=False))
    address = draw(st.integers(min_value=0, max_value=2 ** 128 - 1))
    return str(ipaddress.IPv6Network((address, draw(st.integers(min_value=0, max_value=128))), strict=False))


def _clustered_cidrs():
    # small address space so that overlaps are common
    return st.lists(
        st.builds(lambda third, prefix: str(ipaddress.ip_network(("10.0.%d.0" % third, prefix), strict=False)),
                  st.integers(min_value=0, max_value=255), st.integers(min_value=16, max_value=26)),
        min_size=1, max_size=25)


def _unordered(overlaps):
    return sorted(tuple(sorted([(item["first"], item["first_cidr"]), (item["second"], item["second_cidr"])]))
                  for item in overlaps)


@settings(max_examples=200, deadline=None)
@given(_clustered_cidrs())
def test_overlaps_match_brute_force_and_are_symmetric(networks):
    named = dict(("net%d" % index, value) for index, value in enumerate(networks))
    found = _unordered(cidr.cidr_overlaps(named))
    expected = []
    names = list(named)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if ipaddress.ip_network(named[first]).overlaps(ipaddress.ip_network(named[second])):
                expected.append(tuple(sorted([(first, named[first]), (second, named[second])])))
    assert found == sorted(expected)
    reversed_names = dict(reversed(list(named.items())))
    assert _unordered(cidr.cidr_overlaps(reversed_names)) == found


@settings(max_examples=100, deadline=None)
@given(any_cidr(), any_cidr())
def test_overlap_of_two_is_symmetric(first, second):
    forwards = cidr.cidr_overlaps({"a": first, "b": second})
    backwards = cidr.cidr_overlaps({"b": second, "a": first})
    assert _unordered(forwards) == _unordered(backwards)
    assert bool(forwards) == ipaddress.ip_network(first).overlaps(ipaddress.ip_network(second))


# ---------------------------------------------------------------------------
# routing_mode
# ---------------------------------------------------------------------------

def test_one_node_subnet_gives_native_routing_with_auto_direct_routes():
    decision = cidr.routing_mode("10.0.0.0/16", nodes=20, node_subnets=["192.168.10.0/24"])
    assert decision["mode"] == "native"
    assert decision["tunnel_protocol"] is None
    assert decision["native_routing_cidr"] == "10.0.0.0/16"
    assert decision["auto_direct_node_routes"] is True
    assert decision["helm_values"] == {
        "routingMode": "native", "autoDirectNodeRoutes": True, "ipv4NativeRoutingCIDR": "10.0.0.0/16"}


def test_several_subnets_without_pod_routes_give_vxlan():
    decision = cidr.routing_mode("10.0.0.0/16", nodes=20, node_subnets=["192.168.10.0/24", "192.168.20.0/24"])
    assert decision["mode"] == "tunnel"
    assert decision["tunnel_protocol"] == "vxlan"
    assert decision["native_routing_cidr"] is None
    assert decision["helm_values"] == {"routingMode": "tunnel", "tunnelProtocol": "vxlan",
                                       "autoDirectNodeRoutes": False}
    assert decision["reason"].startswith("tunnel: the underlay cannot carry pod addresses")


def test_geneve_only_on_request():
    decision = cidr.routing_mode("10.0.0.0/16", nodes=20, tunnel_protocol="geneve")
    assert (decision["mode"], decision["tunnel_protocol"]) == ("tunnel", "geneve")


def test_routed_underlay_gives_native_without_auto_direct_routes():
    decision = cidr.routing_mode("10.0.0.0/16", nodes=20, node_subnets=["192.168.10.0/24", "192.168.20.0/24"],
                                 underlay_routes_pod_cidr=True)
    assert decision["mode"] == "native"
    assert decision["auto_direct_node_routes"] is False


def test_small_routable_budget_forces_a_tunnel():
    # 100 nodes * 1.25 = 125 nodes * 110 pods = 13750 routable addresses needed.
    decision = cidr.routing_mode("10.0.0.0/16", nodes=100, underlay_routes_pod_cidr=True, routable_ips=13749)
    assert decision["mode"] == "tunnel"
    assert decision["planned_pods"] == 13750
    enough = cidr.routing_mode("10.0.0.0/16", nodes=100, underlay_routes_pod_cidr=True, routable_ips=13750)
    assert enough["mode"] == "native"


def test_pod_cidr_too_small_for_the_plan_forces_a_tunnel():
    # budget defaults to the native-routing CIDR: a /20 has 4096 addresses < 13750 pods.
    decision = cidr.routing_mode("10.0.0.0/20", nodes=100, node_subnets=["192.168.10.0/24"])
    assert decision["mode"] == "tunnel"
    assert decision["routable_ip_budget"] == 4096


def test_explicit_same_l2_overrides_the_subnets():
    assert cidr.routing_mode("10.0.0.0/16", nodes=5, node_subnets=["192.168.10.0/24"],
                             same_l2=False)["mode"] == "tunnel"
    assert cidr.routing_mode("10.0.0.0/16", nodes=5, same_l2=True)["mode"] == "native"


def test_ipv6_pods_on_an_ipv4_only_underlay_need_a_tunnel():
    decision = cidr.routing_mode("fd00:10::/104", nodes=5, node_subnets=["192.168.10.0/24"])
    assert decision["mode"] == "tunnel"
    assert decision["same_l2"] is False


def test_ipv6_native_uses_the_ipv6_helm_key():
    decision = cidr.routing_mode("fd00:10::/104", nodes=5, node_subnets=["fd00:1::/64"])
    assert decision["helm_values"]["ipv6NativeRoutingCIDR"] == "fd00:10::/104"


def test_wider_native_routing_cidr():
    decision = cidr.routing_mode("10.0.0.0/16", nodes=5, same_l2=True, native_routing_cidr="10.0.0.0/8")
    assert decision["native_routing_cidr"] == "10.0.0.0/8"
    assert decision["routable_ip_budget"] == 2 ** 24


@pytest.mark.parametrize("function, arguments, message", [
    (cidr.pod_cidr_plan, dict(cluster_cidr="10.0.0.1/16", nodes=3),
     "pod_cidr_plan: cluster_cidr: '10.0.0.1/16' has host bits set; the network is '10.0.0.0/16'"),
    (cidr.routing_mode, dict(pod_cidr="10.0.0.0/16", nodes=3, native_routing_cidr="fd00::/64"),
     "routing_mode: native_routing_cidr: 'fd00::/64' is ipv6 but the pod CIDR 10.0.0.0/16 is ipv4; "
     "they must be the same family"),
    (cidr.cidr_overlaps, dict(cidrs=["10.0.0.0/8"]),
     "cidr_overlaps: cidrs: ['10.0.0.0/8'] is not a mapping of name to CIDR (or list of CIDRs)"),
])
def test_invalid_input_raises_with_message(function, arguments, message):
    with pytest.raises(InvalidInput) as raised:
        function(**arguments)
    assert str(raised.value) == message
