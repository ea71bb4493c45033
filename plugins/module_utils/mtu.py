# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cilium's MTU arithmetic, reproduced rule for rule.

Pure Python: nothing here imports ``ansible``.  The public entry point is
``plan_mtu``; the ``zerotrust.cilium.cilium_mtu`` filter is a thin wrapper over it.

Where the rules come from (cilium/cilium, ``pkg/mtu``):

* ``pkg/mtu/mtu.go`` as of the v1.18 line (the revision that introduced
  ``TunnelOverheadIPv4``/``TunnelOverheadIPv6`` and the ``vxlanOverIPv6`` argument of
  ``NewConfiguration``) and the v1.16/v1.17 revision (single ``TunnelOverhead = 50``,
  ``Calculate(baseMTU)`` returning ``DeviceMTU``/``RouteMTU``).  The route MTU branches
  (WireGuard first, then "no tunnel and no IPsec", then IPsec without tunnel, then
  tunnel with optional IPsec) and their fallbacks for zero or negative results are the
  same in every revision from 1.16 to 1.20; only the constants changed.
* ``pkg/mtu/mtu_test.go`` (revision using ``fakeTypes.IPsecAgent``): route MTU is
  ``device - 50`` with a VXLAN tunnel, ``device - 70`` with a tunnel over IPv6,
  ``device - (77 + key - 16)`` with IPsec for key lengths 12, 16 and 32, and
  ``device - (WireguardOverhead + 50)`` with WireGuard in tunnel mode.
* ``pkg/mtu/cell.go``: the configured ``MTU`` (Helm ``MTU``, agent ``--mtu``) is the
  underlay MTU and goes through ``Calculate`` unchanged; ``0`` means detect it.
  ``pkg/mtu/manager.go``: auto-detection takes the smallest MTU of the selected devices
  and falls back to ``EthernetMTU`` (1500) when there is none.  The tunnel overhead is
  the IPv6 one only when tunnelling is on *and* the underlay protocol is IPv6.
* WireGuard overhead: 80 bytes (32 message header + 40 outer IP + 8 UDP) up to 1.19;
  95 bytes from 1.20 (cilium/cilium#45940, "wireguard:mtu: fix mtu calculation with
  potential padding": WireGuard pads the payload to 16 bytes, up to 15 more bytes).
* ``cilium_wg0`` MTU is ``DeviceMTU - WireguardOverhead`` (``pkg/wireguard/agent``,
  cilium/cilium#16020); from 1.20 it is clamped to 1280 when IPv6 is enabled
  (cilium/cilium#45425, merged on main for 1.20).
* IPv6 underlay (``underlayProtocol``) exists from 1.18 (cilium/cilium#38523, #36359).
* IPsec key length: ``ICVLen / 8`` for AEAD keys (ICV 96, 128 or 256 bits, so 12, 16 or
  32 bytes) or the length of the authentication key otherwise
  (``pkg/datapath/linux/ipsec``); 16 is the default the overhead of 77 assumes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.zerotrust.cilium.plugins.module_utils import checks
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

FILTER_NAME = "cilium_mtu"

SUPPORTED_CILIUM_VERSIONS = ("1.16", "1.17", "1.18", "1.19", "1.20")
TUNNELS = ("vxlan", "geneve", "disabled")
UNDERLAYS = ("ipv4", "ipv6")
ENCRYPTIONS = ("none", "ipsec", "wireguard")

# pkg/mtu/mtu.go constants.
ETHERNET_MTU = 1500
MAX_MTU = 65520
TUNNEL_OVERHEAD_IPV4 = 50
TUNNEL_OVERHEAD_IPV6 = 70
IPSEC_OVERHEAD = 77
IPSEC_DEFAULT_KEY_LENGTH = 16
WIREGUARD_OVERHEAD_UP_TO_1_19 = 80
WIREGUARD_OVERHEAD_FROM_1_20 = 95

# RFC 8200 section 5 (IPv6 minimum link MTU) and RFC 791 (every IPv4 host must accept
# 576-byte datagrams); below these the collection refuses an underlay MTU.
IPV6_MIN_MTU = 1280
IPV4_MIN_MTU = 576

IPV4_HEADER = 20
IPV6_HEADER = 40
ICMP_ECHO_HEADER = 8

# HMAC-SHA-512 keys are 64 bytes, the longest authentication key Cilium's IPsec secrets
# carry in practice; AEAD keys give 12, 16 or 32.
IPSEC_KEY_LENGTH_MAX = 64

_VERSION_PATTERN = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?$")


def _version_tuple(minor_version):
    major, minor = minor_version.split(".")
    return int(major), int(minor)


def normalise_cilium_version(value, where=FILTER_NAME):
    """Return ``"1.20"`` for ``"1.20"``, ``"1.20.3"``, ``"v1.20.0-rc.1"``.

    Only the minor release matters to the MTU rules.  A float (YAML reads an unquoted
    ``1.20`` as ``1.2``) is refused with a hint instead of being guessed.
    """
    accepted = ", ".join(SUPPORTED_CILIUM_VERSIONS)
    if isinstance(value, bool) or isinstance(value, (int, float)):
        raise InvalidInput(
            "cilium_version", value,
            "is a number; quote it (YAML reads 1.20 as 1.2); accepted: %s" % accepted,
            where=where)
    if not isinstance(value, str):
        raise InvalidInput("cilium_version", value, "is not a version string; accepted: %s" % accepted,
                           where=where)
    match = _VERSION_PATTERN.match(value.strip())
    if not match:
        raise InvalidInput("cilium_version", value,
                           "is not a Cilium version like '1.20' or '1.20.0'; accepted: %s" % accepted,
                           where=where)
    minor_version = "%d.%d" % (int(match.group(1)), int(match.group(2)))
    if minor_version not in SUPPORTED_CILIUM_VERSIONS:
        raise InvalidInput("cilium_version", value, "is not a supported Cilium release; accepted: %s" % accepted,
                           where=where)
    return minor_version


def wireguard_overhead(cilium_version):
    """Bytes Cilium reserves for WireGuard: 80 up to 1.19, 95 from 1.20 (cilium#45940)."""
    if _version_tuple(cilium_version) >= (1, 20):
        return WIREGUARD_OVERHEAD_FROM_1_20
    return WIREGUARD_OVERHEAD_UP_TO_1_19


def tunnel_overhead(underlay):
    """VXLAN and Geneve cost the same in Cilium: 50 bytes over IPv4, 70 over IPv6.

    Outer IP (20 or 40) + UDP 8 + VXLAN/Geneve base header 8 + inner Ethernet 14.
    """
    if underlay == "ipv6":
        return TUNNEL_OVERHEAD_IPV6
    return TUNNEL_OVERHEAD_IPV4


def ipsec_overhead(key_length):
    """77 bytes for a 16-byte key, plus the difference for other key lengths."""
    return IPSEC_OVERHEAD + (key_length - IPSEC_DEFAULT_KEY_LENGTH)


def device_mtu(base_mtu):
    """MTU of workload-facing devices: the base MTU, or 1500 when it is 0."""
    if base_mtu == 0:
        return ETHERNET_MTU
    return base_mtu


def route_mtu(base_mtu, tunnel_enabled, underlay_overhead, encryption, ipsec_key_length, wg_overhead):
    """Cilium's ``getRouteMTU`` for any integer base MTU, fallbacks included.

    ``underlay_overhead`` is the tunnel overhead for the underlay family (50 or 70) and
    only counts when ``tunnel_enabled``.  The order of the branches decides which
    overhead wins when several features are on: WireGuard is looked at first (and adds
    the tunnel overhead in tunnel mode); IPsec adds to the tunnel overhead.

    The fallbacks are Cilium's, quirks included: IPsec without a tunnel falls back to
    ``1500 - 77`` only when the result is exactly 0, the tunnel case falls back to
    ``1500 - tunnel [- 77]`` when the result is 0 or negative, and neither fallback adds
    the key-length difference.  WireGuard results are not corrected at all.
    """
    if encryption == "wireguard":
        if tunnel_enabled:
            return device_mtu(base_mtu) - (wg_overhead + underlay_overhead)
        return device_mtu(base_mtu) - wg_overhead

    ipsec_enabled = encryption == "ipsec"
    if not tunnel_enabled and not ipsec_enabled:
        return device_mtu(base_mtu)

    encryption_overhead = ipsec_overhead(ipsec_key_length) if ipsec_enabled else 0

    if ipsec_enabled and not tunnel_enabled:
        pre_encrypt_mtu = base_mtu - encryption_overhead
        if pre_encrypt_mtu == 0:
            return ETHERNET_MTU - IPSEC_OVERHEAD
        return pre_encrypt_mtu

    tunnel_mtu = base_mtu - (underlay_overhead + encryption_overhead)
    if tunnel_mtu <= 0:
        if ipsec_enabled:
            return ETHERNET_MTU - (underlay_overhead + IPSEC_OVERHEAD)
        return ETHERNET_MTU - underlay_overhead
    return tunnel_mtu


def wireguard_device_mtu(device, wg_overhead, ipv6_enabled, cilium_version):
    """MTU of ``cilium_wg0``: device MTU minus the WireGuard overhead.

    From 1.20 it never goes below 1280 when IPv6 is on (the kernel does not set up IPv6
    on a link below 1280 and silently drops IPv6 received on it; cilium#45423/#45425).
    """
    link_mtu = device - wg_overhead
    if ipv6_enabled and _version_tuple(cilium_version) >= (1, 20) and link_mtu < IPV6_MIN_MTU:
        return IPV6_MIN_MTU
    return link_mtu


def probe_payload(mtu):
    """ICMP echo payload sizes that exactly fill ``mtu`` with the DF bit set.

    ``ping -M do -s <ipv4> <pod>`` sends ``payload + 8 (ICMP) + 20 (IPv4)`` bytes,
    ``ping -6 -M do -s <ipv6>`` sends ``payload + 8 + 40``.
    """
    return {
        "ipv4": mtu - IPV4_HEADER - ICMP_ECHO_HEADER,
        "ipv6": mtu - IPV6_HEADER - ICMP_ECHO_HEADER,
    }


def _validate_base_mtu(value, needs_ipv6_minimum):
    base_mtu = checks.whole_number(FILTER_NAME, "mtu", value)
    if base_mtu == 0:
        return base_mtu
    minimum = IPV6_MIN_MTU if needs_ipv6_minimum else IPV4_MIN_MTU
    if base_mtu < minimum or base_mtu > MAX_MTU:
        if needs_ipv6_minimum:
            why = "is out of range: with IPv6 the MTU must be 0 (auto) or between %d and %d" % (
                IPV6_MIN_MTU, MAX_MTU)
        else:
            why = "is out of range: the MTU must be 0 (auto) or between %d and %d" % (IPV4_MIN_MTU, MAX_MTU)
        raise InvalidInput("mtu", value, why, where=FILTER_NAME)
    return base_mtu


def plan_mtu(base_mtu=0, tunnel="vxlan", underlay="ipv4", encryption="none",
             ipsec_key_length=IPSEC_DEFAULT_KEY_LENGTH, ipv6=False, cilium_version="1.20"):
    """Validate the inputs and return Cilium's MTUs for them as a plain dict.

    ``base_mtu`` is what Helm calls ``MTU``: the underlay MTU, 0 for auto-detection
    (planned as 1500, Cilium's own fallback).  See the module docstring for sources.
    """
    version = normalise_cilium_version(cilium_version)
    tunnel = checks.choice(FILTER_NAME, "tunnel", tunnel, TUNNELS)
    underlay = checks.choice(FILTER_NAME, "underlay", underlay, UNDERLAYS)
    encryption = checks.choice(FILTER_NAME, "encryption", encryption, ENCRYPTIONS)
    ipv6 = checks.boolean(FILTER_NAME, "ipv6", ipv6)
    key_length = checks.whole_number(FILTER_NAME, "ipsec_key_length", ipsec_key_length)
    if key_length < 1 or key_length > IPSEC_KEY_LENGTH_MAX:
        raise InvalidInput(
            "ipsec_key_length", ipsec_key_length,
            "is out of range: give the key length in bytes, 1 to %d (12, 16 or 32 for rfc4106 "
            "ICV lengths 96, 128 or 256 bits)" % IPSEC_KEY_LENGTH_MAX,
            where=FILTER_NAME)
    if underlay == "ipv6":
        if _version_tuple(version) < (1, 18):
            raise InvalidInput("underlay", underlay,
                               "needs Cilium 1.18 or later (underlayProtocol); cilium_version is %s" % version,
                               where=FILTER_NAME)
        if not ipv6:
            raise InvalidInput("underlay", underlay,
                               "needs ipv6: true (the tunnel endpoints are the nodes' IPv6 addresses)",
                               where=FILTER_NAME)
    configured_mtu = _validate_base_mtu(base_mtu, ipv6 or underlay == "ipv6")

    effective_base = configured_mtu or ETHERNET_MTU
    tunnel_enabled = tunnel != "disabled"
    underlay_overhead = tunnel_overhead(underlay)
    wg_overhead = wireguard_overhead(version)

    planned_device_mtu = device_mtu(effective_base)
    planned_route_mtu = route_mtu(effective_base, tunnel_enabled, underlay_overhead, encryption,
                                  key_length, wg_overhead)

    encryption_overhead = 0
    if encryption == "ipsec":
        encryption_overhead = ipsec_overhead(key_length)
    elif encryption == "wireguard":
        encryption_overhead = wg_overhead

    result = {
        "cilium_version": version,
        "configured_mtu": configured_mtu,
        "auto_detect": configured_mtu == 0,
        "base_mtu": effective_base,
        "device_mtu": planned_device_mtu,
        "route_mtu": planned_route_mtu,
        "overhead": planned_device_mtu - planned_route_mtu,
        "tunnel_overhead": underlay_overhead if tunnel_enabled else 0,
        "encryption_overhead": encryption_overhead,
        "tunnel": tunnel,
        "underlay": underlay,
        "encryption": encryption,
        "probe_payload": probe_payload(planned_route_mtu),
        "underlay_probe_payload": probe_payload(effective_base),
        "warnings": [],
    }
    if encryption == "wireguard":
        result["wireguard_mtu"] = wireguard_device_mtu(planned_device_mtu, wg_overhead, ipv6, version)
    if ipv6 and planned_route_mtu < IPV6_MIN_MTU:
        result["warnings"].append(
            "route_mtu %d is below the IPv6 minimum of %d: raise the underlay MTU to at least %d "
            "or IPv6 pod traffic will not fit" % (
                planned_route_mtu, IPV6_MIN_MTU, IPV6_MIN_MTU + result["overhead"]))
    if planned_route_mtu < IPV4_MIN_MTU:
        result["warnings"].append(
            "route_mtu %d is below %d, the datagram size every IPv4 host must accept" % (
                planned_route_mtu, IPV4_MIN_MTU))
    return result
