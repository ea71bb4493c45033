# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/filter/network.py: the public filter surface.

The bad-input table asserts the exact message of every error: it must name the filter,
the argument, the offending value and what is accepted, and it must be an
AnsibleFilterError (never a bare exception, never a False result).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.filter import network

FILTERS = network.FilterModule().filters()

MTU_OPTIONS = "tunnel, underlay, encryption, ipsec_key_length, ipv6, cilium_version"
VERSIONS = "1.16, 1.17, 1.18, 1.19, 1.20"

# (case id, filter name, input, keyword options, exact error message)
BAD_INPUTS = [
    # --- cilium_mtu -------------------------------------------------------------
    ("mtu-unknown-tunnel", "cilium_mtu", 1500, dict(tunnel="vxlann"),
     "cilium_mtu: tunnel: 'vxlann' is not one of: vxlan, geneve, disabled"),
    ("mtu-unknown-encryption", "cilium_mtu", 1500, dict(encryption="wg"),
     "cilium_mtu: encryption: 'wg' is not one of: none, ipsec, wireguard"),
    ("mtu-unknown-underlay", "cilium_mtu", 1500, dict(underlay="ip6"),
     "cilium_mtu: underlay: 'ip6' is not one of: ipv4, ipv6"),
    ("mtu-below-ipv4-minimum", "cilium_mtu", 500, {},
     "cilium_mtu: mtu: 500 is out of range: the MTU must be 0 (auto) or between 576 and 65520"),
    ("mtu-below-ipv6-minimum", "cilium_mtu", 1200, dict(ipv6=True),
     "cilium_mtu: mtu: 1200 is out of range: with IPv6 the MTU must be 0 (auto) or between 1280 and 65520"),
    ("mtu-above-maximum", "cilium_mtu", 70000, {},
     "cilium_mtu: mtu: 70000 is out of range: the MTU must be 0 (auto) or between 576 and 65520"),
    ("mtu-negative", "cilium_mtu", -1, {},
     "cilium_mtu: mtu: -1 is out of range: the MTU must be 0 (auto) or between 576 and 65520"),
    ("mtu-not-a-number", "cilium_mtu", "1500x", {},
     "cilium_mtu: mtu: '1500x' is not a whole number"),
    ("mtu-boolean", "cilium_mtu", True, {},
     "cilium_mtu: mtu: True is not a whole number"),
    ("mtu-old-cilium", "cilium_mtu", 1500, dict(cilium_version="1.15"),
     "cilium_mtu: cilium_version: '1.15' is not a supported Cilium release; accepted: " + VERSIONS),
    ("mtu-version-float", "cilium_mtu", 1500, dict(cilium_version=1.2),
     "cilium_mtu: cilium_version: 1.2 is a number; quote it (YAML reads 1.20 as 1.2); accepted: " + VERSIONS),
    ("mtu-version-garbage", "cilium_mtu", 1500, dict(cilium_version="latest"),
     "cilium_mtu: cilium_version: 'latest' is not a Cilium version like '1.20' or '1.20.0'; accepted: "
     + VERSIONS),
    ("mtu-ipv6-underlay-too-old", "cilium_mtu", 1500, dict(underlay="ipv6", ipv6=True, cilium_version="1.17"),
     "cilium_mtu: underlay: 'ipv6' needs Cilium 1.18 or later (underlayProtocol); cilium_version is 1.17"),
    ("mtu-ipv6-underlay-without-ipv6", "cilium_mtu", 1500, dict(underlay="ipv6"),
     "cilium_mtu: underlay: 'ipv6' needs ipv6: true (the tunnel endpoints are the nodes' IPv6 addresses)"),
    ("mtu-key-length-zero", "cilium_mtu", 1500, dict(encryption="ipsec", ipsec_key_length=0),
     "cilium_mtu: ipsec_key_length: 0 is out of range: give the key length in bytes, 1 to 64 (12, 16 or 32 "
     "for rfc4106 ICV lengths 96, 128 or 256 bits)"),
    ("mtu-key-length-word", "cilium_mtu", 1500, dict(ipsec_key_length="sixteen"),
     "cilium_mtu: ipsec_key_length: 'sixteen' is not a whole number"),
    ("mtu-ipv6-not-boolean", "cilium_mtu", 1500, dict(ipv6="yes"),
     "cilium_mtu: ipv6: 'yes' is not a boolean (true or false)"),
    ("mtu-unknown-option", "cilium_mtu", 1500, dict(tunel="vxlan"),
     "cilium_mtu: options: 'tunel' is not one of: " + MTU_OPTIONS),
    # --- pod_cidr_plan ----------------------------------------------------------
    ("plan-prefix-out-of-range", "pod_cidr_plan", "10.0.0.0/33", dict(nodes=3),
     "pod_cidr_plan: cluster_cidr: '10.0.0.0/33' is not a valid IPv4 or IPv6 CIDR"),
    ("plan-host-bits", "pod_cidr_plan", "10.0.0.1/16", dict(nodes=3),
     "pod_cidr_plan: cluster_cidr: '10.0.0.1/16' has host bits set; the network is '10.0.0.0/16'"),
    ("plan-no-prefix", "pod_cidr_plan", "10.0.0.0", dict(nodes=3),
     "pod_cidr_plan: cluster_cidr: '10.0.0.0' is not in CIDR notation (address/prefix, e.g. '10.0.0.0/16')"),
    ("plan-not-a-string", "pod_cidr_plan", 42, dict(nodes=3),
     "pod_cidr_plan: cluster_cidr: 42 is not a CIDR string such as '10.0.0.0/16'"),
    ("plan-negative-nodes", "pod_cidr_plan", "10.0.0.0/16", dict(nodes=-5),
     "pod_cidr_plan: nodes: -5 is below the minimum of 1"),
    ("plan-missing-nodes", "pod_cidr_plan", "10.0.0.0/16", {},
     "pod_cidr_plan: nodes: None is missing: a whole number is required"),
    ("plan-zero-pods", "pod_cidr_plan", "10.0.0.0/16", dict(nodes=3, max_pods_per_node=0),
     "pod_cidr_plan: max_pods_per_node: 0 is below the minimum of 1"),
    ("plan-block-too-small", "pod_cidr_plan", "10.0.0.0/16", dict(nodes=3, per_node_prefix=27),
     "pod_cidr_plan: per_node_prefix: 27 is too small for max_pods_per_node 110 plus 2 reserved: a /27 leaves "
     "30 allocatable addresses; use /25 or shorter"),
    ("plan-block-shorter-than-cluster", "pod_cidr_plan", "10.0.0.0/16", dict(nodes=3, per_node_prefix=12),
     "pod_cidr_plan: per_node_prefix: 12 is below the minimum of 16"),
    ("plan-ipv6-blocks-too-long", "pod_cidr_plan", "fd00::/96", dict(nodes=3, per_node_prefix=120),
     "pod_cidr_plan: per_node_prefix: 120 is more than 16 bits longer than the IPv6 cluster prefix /96; "
     "Cilium's operator refuses that (use /112 or shorter)"),
    ("plan-cluster-smaller-than-a-node", "pod_cidr_plan", "10.0.0.0/28", dict(nodes=1),
     "pod_cidr_plan: max_pods_per_node: 110 plus 2 reserved needs a /25 per node, larger than the cluster "
     "CIDR 10.0.0.0/28"),
    ("plan-negative-growth", "pod_cidr_plan", "10.0.0.0/16", dict(nodes=3, growth=-0.1),
     "pod_cidr_plan: growth: -0.1 is out of range: use a fraction from 0 to 10 (0.25 = 25%)"),
    ("plan-growth-word", "pod_cidr_plan", "10.0.0.0/16", dict(nodes=3, growth="lots"),
     "pod_cidr_plan: growth: 'lots' is not a number such as 0.25"),
    ("plan-negative-reserved", "pod_cidr_plan", "10.0.0.0/16", dict(nodes=3, reserved_per_node=-1),
     "pod_cidr_plan: reserved_per_node: -1 is below the minimum of 0"),
    ("plan-positional-nodes", "pod_cidr_plan", "10.0.0.0/16", None,
     "pod_cidr_plan: takes keyword options only (e.g. nodes=...), got positional [100]"),
    # --- cidr_overlaps ----------------------------------------------------------
    ("overlaps-not-a-mapping", "cidr_overlaps", ["10.0.0.0/8"], {},
     "cidr_overlaps: cidrs: ['10.0.0.0/8'] is not a mapping of name to CIDR (or list of CIDRs)"),
    ("overlaps-host-bits", "cidr_overlaps", {"services": "10.96.0.1/12"}, {},
     "cidr_overlaps: services: '10.96.0.1/12' has host bits set; the network is '10.96.0.0/12'"),
    ("overlaps-malformed", "cidr_overlaps", {"corporate": "300.1.0.0/16"}, {},
     "cidr_overlaps: corporate: '300.1.0.0/16' is not a valid IPv4 or IPv6 CIDR"),
    ("overlaps-empty-list", "cidr_overlaps", {"nodes": []}, {},
     "cidr_overlaps: nodes: [] is an empty list; give at least one CIDR"),
    ("overlaps-unknown-allowed-name", "cidr_overlaps", {"pods": "10.0.0.0/16"}, dict(allow=[["pods", "nodes"]]),
     "cidr_overlaps: allow: 'nodes' is not one of the names given: pods"),
    # --- routing_mode -----------------------------------------------------------
    ("routing-mixed-families", "routing_mode", "10.0.0.0/16", dict(nodes=3, native_routing_cidr="fd00::/64"),
     "routing_mode: native_routing_cidr: 'fd00::/64' is ipv6 but the pod CIDR 10.0.0.0/16 is ipv4; "
     "they must be the same family"),
    ("routing-cidr-not-containing-pods", "routing_mode", "10.0.0.0/16",
     dict(nodes=3, native_routing_cidr="10.1.0.0/16"),
     "routing_mode: native_routing_cidr: '10.1.0.0/16' does not contain the pod CIDR 10.0.0.0/16"),
    ("routing-unknown-tunnel", "routing_mode", "10.0.0.0/16", dict(nodes=3, tunnel_protocol="gre"),
     "routing_mode: tunnel_protocol: 'gre' is not one of: vxlan, geneve"),
    ("routing-missing-nodes", "routing_mode", "10.0.0.0/16", {},
     "routing_mode: nodes: None is missing: a whole number is required"),
    ("routing-negative-nodes", "routing_mode", "10.0.0.0/16", dict(nodes=-1),
     "routing_mode: nodes: -1 is below the minimum of 1"),
    ("routing-nodes-overlap-pods", "routing_mode", "10.0.0.0/16", dict(nodes=3, node_subnets=["10.0.1.0/24"]),
     "routing_mode: node_subnets: '10.0.1.0/24' overlaps the pod CIDR 10.0.0.0/16; pods and nodes need "
     "disjoint ranges"),
    ("routing-subnets-not-a-list", "routing_mode", "10.0.0.0/16", dict(nodes=3, node_subnets="192.168.0.0/24"),
     "routing_mode: node_subnets: '192.168.0.0/24' is not a list of CIDRs"),
    ("routing-negative-budget", "routing_mode", "10.0.0.0/16", dict(nodes=3, routable_ips=-5),
     "routing_mode: routable_ips: -5 is below the minimum of 0"),
    ("routing-same-l2-not-boolean", "routing_mode", "10.0.0.0/16", dict(nodes=3, same_l2="yes"),
     "routing_mode: same_l2: 'yes' is not a boolean (true or false)"),
    # --- conntrack_max ----------------------------------------------------------
    ("conntrack-zero-memory", "conntrack_max", 0, {},
     "conntrack_max: memory_mib: 0 is below the minimum of 1"),
    ("conntrack-negative-memory", "conntrack_max", -512, {},
     "conntrack_max: memory_mib: -512 is below the minimum of 1"),
    ("conntrack-memory-in-bytes", "conntrack_max", 8 * 1024 ** 4, {},
     "conntrack_max: memory_mib: 8796093022208 is above the maximum of 67108864"),
    ("conntrack-memory-word", "conntrack_max", "lots", {},
     "conntrack_max: memory_mib: 'lots' is not a whole number"),
    ("conntrack-negative-connections", "conntrack_max", 4096, dict(expected_connections=-1),
     "conntrack_max: expected_connections: -1 is below the minimum of 0"),
    ("conntrack-negative-headroom", "conntrack_max", 4096, dict(headroom=-1),
     "conntrack_max: headroom: -1 is out of range: use a fraction from 0 to 10 (0.25 = 25%)"),
    ("conntrack-old-kernel", "conntrack_max", 4096, dict(kernel_version="3.10.0"),
     "conntrack_max: kernel_version: '3.10.0' is older than 4.18, the oldest kernel the collection supports"),
    ("conntrack-kernel-word", "conntrack_max", 4096, dict(kernel_version="six"),
     "conntrack_max: kernel_version: 'six' is not a kernel release string such as '6.1' or "
     "'5.14.0-427.el9.x86_64'"),
    ("conntrack-odd-page-size", "conntrack_max", 4096, dict(page_size_kib=8),
     "conntrack_max: page_size_kib: 8 is not one of: 4, 16, 64"),
    ("conntrack-impossible-table", "conntrack_max", 4096, dict(expected_connections=10 ** 12),
     "conntrack_max: expected_connections: 1000000000000 with headroom needs 1250000000000 buckets, more than "
     "the kernel allocates (268434944)"),
]


@pytest.mark.parametrize("case_id, filter_name, value, options, message", BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_raises_filter_error_with_message(case_id, filter_name, value, options, message):
    function = FILTERS[filter_name]
    with pytest.raises(AnsibleFilterError) as raised:
        if options is None:
            function(value, 100)
        else:
            function(value, **options)
    assert str(raised.value) == message
    assert "Traceback" not in str(raised.value)


def test_bad_input_table_is_large_enough():
    assert len(BAD_INPUTS) >= 30
    assert set(case[1] for case in BAD_INPUTS) == set(FILTERS)


def test_filter_module_exposes_the_five_public_names():
    assert sorted(FILTERS) == ["cidr_overlaps", "cilium_mtu", "conntrack_max", "pod_cidr_plan", "routing_mode"]


def test_filters_return_plain_json_values():
    results = [
        FILTERS["cilium_mtu"](1500, encryption="wireguard"),
        FILTERS["pod_cidr_plan"]("10.0.0.0/16", nodes=100),
        FILTERS["cidr_overlaps"]({"a": "10.0.0.0/8", "b": "10.1.0.0/16"}),
        FILTERS["routing_mode"]("10.0.0.0/16", nodes=3, same_l2=True),
        FILTERS["conntrack_max"](4096),
    ]
    for result in results:
        assert json.loads(json.dumps(result)) == result


def test_filters_pass_values_through():
    assert FILTERS["cilium_mtu"](1500)["route_mtu"] == 1450
    assert FILTERS["pod_cidr_plan"]("10.0.0.0/16", nodes=100)["per_node_prefix"] == 25
    assert FILTERS["cidr_overlaps"]({"a": "10.0.0.0/8", "b": "192.168.0.0/16"}) == []
    assert FILTERS["routing_mode"]("10.0.0.0/16", nodes=3)["mode"] == "tunnel"
    assert FILTERS["conntrack_max"](2048, kernel_version="6.1")["nf_conntrack_max"] == 65536
