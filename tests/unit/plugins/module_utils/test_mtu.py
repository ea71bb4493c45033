# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/mtu.py.

Every expected number below is worked out by hand from Cilium's published constants and
rules, not taken from this module's output.  The comment on each case says where the
number comes from.  Abbreviations:

* mtu.go      cilium/cilium pkg/mtu/mtu.go (TunnelOverheadIPv4 = 50, TunnelOverheadIPv6 = 70,
              EncryptionIPsecOverhead = 77, EncryptionDefaultAuthKeyLength = 16,
              WireguardOverhead = 80, EthernetMTU = 1500, getRouteMTU branches)
* mtu_test.go cilium/cilium pkg/mtu/mtu_test.go (TestNewConfiguration, base MTU 1400)
* #16020      cilium/cilium PR 16020: "--mtu 1400" gives cilium_wg0 and route MTU 1320
* #45940      cilium/cilium PR 45940: WireguardOverhead 80 -> 95 (1500 - 95 = 1405)
* #45425      cilium/cilium PR 45425: cilium_wg0 clamped to 1280 when IPv6 is enabled
* #28413      cilium/cilium issue 28413: 9001 on every device, 8921 on cilium_wg0 (80)
* #37919      cilium/cilium issue 37919: cilium_wg0 8921 -> 8906 after the 95-byte change
* guide       the project's source guide: VXLAN on 1500 gives 1450; ping -M do -s 1472
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.zerotrust.cilium.plugins.module_utils import mtu
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

ALL_VERSIONS = ["1.16", "1.17", "1.18", "1.19", "1.20"]

# (case id, plan_mtu keyword arguments, expected device_mtu, expected route_mtu)
PLAN_CASES = [
    # guide + mtu.go: 1500 - TunnelOverheadIPv4 (50) = 1450.
    ("lab-vxlan-1500", dict(base_mtu=1500, tunnel="vxlan"), 1500, 1450),
    # mtu.go: Geneve uses the same TunnelOverhead constant as VXLAN.
    ("geneve-1500", dict(base_mtu=1500, tunnel="geneve"), 1500, 1450),
    # mtu.go: neither tunnel nor encryption -> route MTU = device MTU.
    ("native-1500", dict(base_mtu=1500, tunnel="disabled"), 1500, 1500),
    ("native-jumbo", dict(base_mtu=9001, tunnel="disabled"), 9001, 9001),
    # mtu.go getDeviceMTU: base 0 -> EthernetMTU 1500; manager.go falls back to 1500 too.
    ("auto-vxlan", dict(base_mtu=0, tunnel="vxlan"), 1500, 1450),
    ("auto-native", dict(base_mtu=0, tunnel="disabled"), 1500, 1500),
    # mtu_test.go "Add routes with tunnel": 1400 - TunnelOverheadIPv4 = 1350.
    ("mtu-test-tunnel", dict(base_mtu=1400, tunnel="vxlan"), 1400, 1350),
    # mtu_test.go "tunnel over IPv6": 1400 - TunnelOverheadIPv6 (70) = 1330.
    ("mtu-test-tunnel-ipv6-underlay",
     dict(base_mtu=1400, tunnel="vxlan", underlay="ipv6", ipv6=True, cilium_version="1.18"), 1400, 1330),
    # mtu_test.go IPsec without tunnel: 1400 - 77 = 1323; key 32: - (77 + 16) = 1307;
    # key 12: - (77 - 4) = 1327.
    ("mtu-test-ipsec-16", dict(base_mtu=1400, tunnel="disabled", encryption="ipsec"), 1400, 1323),
    ("mtu-test-ipsec-32",
     dict(base_mtu=1400, tunnel="disabled", encryption="ipsec", ipsec_key_length=32), 1400, 1307),
    ("mtu-test-ipsec-12",
     dict(base_mtu=1400, tunnel="disabled", encryption="ipsec", ipsec_key_length=12), 1400, 1327),
    # mtu_test.go IPsec with tunnel: 1400 - (50 + 77) = 1273; key 32: 1400 - (50 + 93) = 1257.
    ("mtu-test-ipsec-tunnel-16", dict(base_mtu=1400, tunnel="vxlan", encryption="ipsec"), 1400, 1273),
    ("mtu-test-ipsec-tunnel-32",
     dict(base_mtu=1400, tunnel="vxlan", encryption="ipsec", ipsec_key_length=32), 1400, 1257),
    # IPsec over an IPv6 underlay: 1500 - (70 + 77) = 1353.
    ("ipsec-tunnel-ipv6-underlay",
     dict(base_mtu=1500, tunnel="vxlan", encryption="ipsec", underlay="ipv6", ipv6=True), 1500, 1353),
    # #16020: WireGuard without tunnel, --mtu 1400 -> route MTU 1320 (80 bytes).
    ("pr16020-wireguard-native",
     dict(base_mtu=1400, tunnel="disabled", encryption="wireguard", cilium_version="1.19"), 1400, 1320),
    # mtu_test.go WireGuard with tunnel: 1400 - (WireguardOverhead + 50); 80 -> 1270.
    ("mtu-test-wireguard-tunnel-1.19",
     dict(base_mtu=1400, tunnel="vxlan", encryption="wireguard", cilium_version="1.19"), 1400, 1270),
    # #45940: from 1.20 the overhead is 95: 1500 - (95 + 50) = 1355, native 1500 - 95 = 1405.
    ("wireguard-tunnel-1.20", dict(base_mtu=1500, tunnel="vxlan", encryption="wireguard"), 1500, 1355),
    ("wireguard-native-1.20", dict(base_mtu=1500, tunnel="disabled", encryption="wireguard"), 1500, 1405),
    # WireGuard over an IPv6 underlay with a tunnel, 1.20: 9000 - (95 + 70) = 8835.
    ("wireguard-tunnel-ipv6-underlay",
     dict(base_mtu=9000, tunnel="vxlan", encryption="wireguard", underlay="ipv6", ipv6=True), 9000, 8835),
    # The largest MTU Cilium accepts (MaxMTU 65520) with VXLAN: 65470.
    ("max-mtu", dict(base_mtu=65520, tunnel="vxlan"), 65520, 65470),
    # The smallest IPv4 MTU the collection accepts: 576 - 50 = 526.
    ("min-ipv4", dict(base_mtu=576, tunnel="vxlan"), 576, 526),
]


@pytest.mark.parametrize("case_id, arguments, device_mtu, route_mtu", PLAN_CASES,
                         ids=[case[0] for case in PLAN_CASES])
def test_plan_mtu_matches_cilium(case_id, arguments, device_mtu, route_mtu):
    plan = mtu.plan_mtu(**arguments)
    assert plan["device_mtu"] == device_mtu
    assert plan["route_mtu"] == route_mtu
    assert plan["overhead"] == device_mtu - route_mtu


# WireGuard overhead per release: 80 up to 1.19 (mtu.go), 95 from 1.20 (#45940).
@pytest.mark.parametrize("version, overhead", [
    ("1.16", 80), ("1.17", 80), ("1.18", 80), ("1.19", 80), ("1.20", 95),
])
def test_wireguard_overhead_per_release(version, overhead):
    assert mtu.wireguard_overhead(version) == overhead
    plan = mtu.plan_mtu(1500, tunnel="vxlan", encryption="wireguard", cilium_version=version)
    assert plan["route_mtu"] == 1500 - 50 - overhead
    assert plan["wireguard_mtu"] == 1500 - overhead
    assert plan["encryption_overhead"] == overhead


# #28413 (80 bytes): 9001 -> cilium_wg0 8921; #37919 (95 bytes): 9001 -> 8906.
@pytest.mark.parametrize("version, wireguard_mtu", [("1.19", 8921), ("1.20", 8906)])
def test_wireguard_device_mtu_on_jumbo_frames(version, wireguard_mtu):
    plan = mtu.plan_mtu(9001, tunnel="disabled", encryption="wireguard", cilium_version=version)
    assert plan["wireguard_mtu"] == wireguard_mtu


# #45425: from 1.20, cilium_wg0 is never below 1280 with IPv6; 1.19 has no clamp.
@pytest.mark.parametrize("version, ipv6, wireguard_mtu", [
    ("1.20", True, 1280),    # 1300 - 95 = 1205, clamped to 1280
    ("1.20", False, 1205),   # no IPv6, no clamp
    ("1.19", True, 1220),    # 1300 - 80, no clamp before 1.20
])
def test_wireguard_ipv6_clamp(version, ipv6, wireguard_mtu):
    plan = mtu.plan_mtu(1300, tunnel="vxlan", encryption="wireguard", ipv6=ipv6, cilium_version=version)
    assert plan["wireguard_mtu"] == wireguard_mtu


def test_no_wireguard_mtu_without_wireguard():
    assert "wireguard_mtu" not in mtu.plan_mtu(1500, encryption="ipsec")


# getRouteMTU called directly, fallbacks included (mtu.go, every revision 1.16-1.20).
@pytest.mark.parametrize("base, tunnel, underlay_overhead, encryption, key, expected", [
    # tunnel, no encryption: 0 - 50 <= 0 -> EthernetMTU - TunnelOverhead = 1450
    (0, True, 50, "none", 16, 1450),
    # tunnel result exactly 0 -> fallback 1450
    (50, True, 50, "none", 16, 1450),
    # tunnel + IPsec: 100 - 127 < 0 -> 1500 - (50 + 77) = 1373
    (100, True, 50, "ipsec", 16, 1373),
    # the fallback ignores the key length: 1500 - (70 + 77) = 1353, not 1500 - (70 + 93)
    (100, True, 70, "ipsec", 32, 1353),
    # IPsec without tunnel, result exactly 0 -> 1500 - 77 = 1423
    (77, False, 50, "ipsec", 16, 1423),
    (93, False, 50, "ipsec", 32, 1423),
    # IPsec without tunnel, negative result: Cilium has no fallback for it (checks == 0)
    (50, False, 50, "ipsec", 16, -27),
    # WireGuard uses the device MTU, which is 1500 for base 0: 1500 - 80 = 1420
    (0, False, 50, "wireguard", 16, 1420),
    # no tunnel, no encryption, base 0 -> device MTU 1500
    (0, False, 50, "none", 16, 1500),
])
def test_route_mtu_fallbacks(base, tunnel, underlay_overhead, encryption, key, expected):
    assert mtu.route_mtu(base, tunnel, underlay_overhead, encryption, key, 80) == expected


def test_probe_payload_fills_route_mtu():
    # guide: "ping -M do -s 1472" checks a 1500 path (1472 + 8 ICMP + 20 IPv4);
    # the pod path of 1450 needs 1422; IPv6 headers are 40 bytes, so 1402.
    plan = mtu.plan_mtu(1500, tunnel="vxlan")
    assert plan["probe_payload"] == {"ipv4": 1422, "ipv6": 1402}
    assert plan["underlay_probe_payload"] == {"ipv4": 1472, "ipv6": 1452}


def test_auto_detect_reports_the_assumption():
    plan = mtu.plan_mtu(0)
    assert plan["auto_detect"] is True
    assert plan["configured_mtu"] == 0
    assert plan["base_mtu"] == 1500


@pytest.mark.parametrize("given_version, minor", [
    ("1.20", "1.20"), ("1.20.0", "1.20"), ("v1.19.3", "1.19"), ("1.18.0-rc.1", "1.18"), (" 1.16.7 ", "1.16"),
])
def test_cilium_version_is_normalised_to_minor(given_version, minor):
    assert mtu.normalise_cilium_version(given_version) == minor
    assert mtu.plan_mtu(1500, cilium_version=given_version)["cilium_version"] == minor


def test_digit_strings_are_accepted_as_numbers():
    # extra vars (-e mtu=1500) arrive as strings
    assert mtu.plan_mtu("1500")["route_mtu"] == 1450


def test_ipv6_route_below_minimum_is_warned():
    # 1280 - 50 = 1230 < 1280: IPv6 pods cannot use it; 1280 + 50 = 1330 would be needed.
    plan = mtu.plan_mtu(1280, tunnel="vxlan", ipv6=True)
    assert plan["route_mtu"] == 1230
    assert plan["warnings"] == [
        "route_mtu 1230 is below the IPv6 minimum of 1280: raise the underlay MTU to at least 1330 "
        "or IPv6 pod traffic will not fit"]


def test_no_warning_for_the_lab():
    assert mtu.plan_mtu(1500)["warnings"] == []


@pytest.mark.parametrize("arguments, message", [
    (dict(base_mtu=1500, tunnel="vxlann"), "cilium_mtu: tunnel: 'vxlann' is not one of: vxlan, geneve, disabled"),
    (dict(base_mtu=1200, ipv6=True),
     "cilium_mtu: mtu: 1200 is out of range: with IPv6 the MTU must be 0 (auto) or between 1280 and 65520"),
    (dict(base_mtu=1500, underlay="ipv6", ipv6=True, cilium_version="1.17"),
     "cilium_mtu: underlay: 'ipv6' needs Cilium 1.18 or later (underlayProtocol); cilium_version is 1.17"),
    (dict(base_mtu=1500, cilium_version="1.21"),
     "cilium_mtu: cilium_version: '1.21' is not a supported Cilium release; accepted: 1.16, 1.17, 1.18, 1.19, 1.20"),
])
def test_invalid_input_raises_with_message(arguments, message):
    with pytest.raises(InvalidInput) as raised:
        mtu.plan_mtu(**arguments)
    assert str(raised.value) == message


valid_versions = st.sampled_from(ALL_VERSIONS)


@st.composite
def valid_plans(draw):
    version = draw(valid_versions)
    ipv6 = draw(st.booleans())
    underlays = ["ipv4", "ipv6"] if ipv6 and version not in ("1.16", "1.17") else ["ipv4"]
    underlay = draw(st.sampled_from(underlays))
    minimum = 1280 if ipv6 else 576
    base = draw(st.one_of(st.just(0), st.integers(min_value=minimum, max_value=65520)))
    return dict(
        base_mtu=base,
        tunnel=draw(st.sampled_from(mtu.TUNNELS)),
        underlay=underlay,
        encryption=draw(st.sampled_from(mtu.ENCRYPTIONS)),
        ipsec_key_length=draw(st.sampled_from([12, 16, 20, 32, 64])),
        ipv6=ipv6,
        cilium_version=version,
    )


@settings(max_examples=300, deadline=None)
@given(valid_plans())
def test_overhead_is_the_sum_of_its_parts(arguments):
    plan = mtu.plan_mtu(**arguments)
    # with an accepted MTU no fallback fires, so the overhead is exactly tunnel + encryption
    assert plan["overhead"] == plan["tunnel_overhead"] + plan["encryption_overhead"]
    assert plan["route_mtu"] <= plan["device_mtu"]
    assert plan["device_mtu"] == (arguments["base_mtu"] or 1500)
    assert plan["probe_payload"]["ipv4"] + 28 == plan["route_mtu"]
    assert plan["probe_payload"]["ipv6"] + 48 == plan["route_mtu"]


@settings(max_examples=200, deadline=None)
@given(valid_plans(), st.integers(min_value=1, max_value=500))
def test_route_mtu_grows_with_the_underlay(arguments, increase):
    if arguments["base_mtu"] == 0 or arguments["base_mtu"] + increase > 65520:
        arguments["base_mtu"] = 1500
        increase = min(increase, 65520 - 1500)
    smaller = mtu.plan_mtu(**arguments)
    arguments["base_mtu"] += increase
    larger = mtu.plan_mtu(**arguments)
    assert larger["route_mtu"] - smaller["route_mtu"] == increase
