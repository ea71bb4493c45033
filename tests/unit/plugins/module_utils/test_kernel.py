# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/kernel.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.zerotrust.cilium.plugins.module_utils import kernel
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import (
    InvalidInput,
    InvalidInputs,
)

# --------------------------------------------------------------------------------------
# Release strings
# --------------------------------------------------------------------------------------

RELEASES = [
    ("6.18.44-fc-v669", [6, 18, 44], None),
    ("5.15.0-105-generic", [5, 15, 0], None),
    ("4.18.0-553.el8_10.x86_64", [4, 18, 0], {"major": 8, "minor": 10}),
    ("5.14.0-427.13.1.el9_4.x86_64", [5, 14, 0], {"major": 9, "minor": 4}),
    ("6.1.0-18-amd64", [6, 1, 0], None),
    ("5.10.0-28-cloud-amd64", [5, 10, 0], None),
    ("6.8.0-1008-aws", [6, 8, 0], None),
    ("4.19.112+", [4, 19, 112], None),
    ("6.8", [6, 8, 0], None),
    ("6.10.0-rc1", [6, 10, 0], None),
    # RHEL 8 GA kernels carry only ".el8"; the build number gives the minor release.
    ("4.18.0-372.9.1.el8.x86_64", [4, 18, 0], {"major": 8, "minor": 6}),
    ("4.18.0-305.el8.x86_64", [4, 18, 0], {"major": 8, "minor": 4}),
    ("4.18.0-477.10.1.el8_8.x86_64", [4, 18, 0], {"major": 8, "minor": 8}),
    ("5.14.0-70.13.1.el9_0.aarch64", [5, 14, 0], {"major": 9, "minor": 0}),
]


@pytest.mark.parametrize("release, version, rhel", RELEASES)
def test_parse_release(release, version, rhel):
    parsed = kernel.parse_release(release)
    assert parsed["version"] == version
    assert parsed["version_string"] == "%d.%d.%d" % tuple(version)
    assert parsed["rhel"] == rhel
    assert parsed["release"] == release


BAD_RELEASES = [
    ("", "kernel release: '' is not a kernel release string such as '6.1.0-18-amd64'"),
    (None, "kernel release: None is not a kernel release string such as '6.1.0-18-amd64'"),
    (5, "kernel release: 5 is not a kernel release string such as '6.1.0-18-amd64'"),
    ("linux", "kernel release: 'linux' does not start with <major>.<minor> (e.g. '5.15.0-105-generic')"),
    ("6", "kernel release: '6' does not start with <major>.<minor> (e.g. '5.15.0-105-generic')"),
]


@pytest.mark.parametrize("release, message", BAD_RELEASES)
def test_parse_release_rejects(release, message):
    with pytest.raises(InvalidInput) as caught:
        kernel.parse_release(release)
    assert str(caught.value) == message


_SUFFIXES = st.sampled_from(["", "-generic", "-105-generic", ".el8_10.x86_64", "-fc-v669", "+",
                             "-18-amd64", "-1008-aws", "-rc3", "-427.13.1.el9_4.x86_64"])
_TRIPLES = st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 999))


@given(_TRIPLES, _SUFFIXES, _TRIPLES, _SUFFIXES)
def test_version_order_follows_numbers_not_text(first, first_suffix, second, second_suffix):
    parsed_first = kernel.parse_release("%d.%d.%d%s" % (first + (first_suffix,)))
    parsed_second = kernel.parse_release("%d.%d.%d%s" % (second + (second_suffix,)))
    assert tuple(parsed_first["version"]) == first
    assert (tuple(parsed_first["version"]) < tuple(parsed_second["version"])) == (first < second)


def test_version_ordering_examples_that_string_sorting_gets_wrong():
    # As text "5.10.0" sorts before "5.9.16"; as versions it is newer.
    newer = kernel.parse_release("5.10.0-28-cloud-amd64")["version"]
    older = kernel.parse_release("5.9.16-generic")["version"]
    assert newer > older


# --------------------------------------------------------------------------------------
# Kernel config and mounts
# --------------------------------------------------------------------------------------

CONFIG_TEXT = """\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.0 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14) 12.2.0"
CONFIG_BPF=y
CONFIG_VXLAN=m
# CONFIG_GENEVE is not set
CONFIG_LOG_BUF_SHIFT=17
CONFIG_LOCALVERSION=""
   CONFIG_INDENTED=y

# end of General setup
"""


def test_parse_kernel_config():
    options = kernel.parse_kernel_config(CONFIG_TEXT)
    assert options == {
        "CONFIG_CC_VERSION_TEXT": "gcc (Debian 12.2.0-14) 12.2.0",
        "CONFIG_BPF": "y",
        "CONFIG_VXLAN": "m",
        "CONFIG_GENEVE": "n",
        "CONFIG_LOG_BUF_SHIFT": "17",
        "CONFIG_LOCALVERSION": "",
        "CONFIG_INDENTED": "y",
    }


def test_parse_mounts_unescapes_octal_spaces():
    text = ("bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0\n"
            "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"
            "/dev/sda1 /mnt/with\\040space ext4 rw 0 0\n"
            "broken line\n")
    mounts = kernel.parse_mounts(text)
    assert [m["target"] for m in mounts] == ["/sys/fs/bpf", "/sys/fs/cgroup", "/mnt/with space"]
    assert mounts[0]["fstype"] == "bpf"
    assert mounts[0]["options"][:2] == ["rw", "nosuid"]


# --------------------------------------------------------------------------------------
# Cilium versions and feature names
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, minor", [
    ("1.20", "1.20"), ("1.16", "1.16"), ("v1.18.3", "1.18"), ("1.19.0-rc.1", "1.19"), (" 1.17.4 ", "1.17"),
])
def test_cilium_minor(value, minor):
    assert kernel.cilium_minor(value) == minor


KNOWN = "1.16, 1.17, 1.18, 1.19, 1.20"
BAD_VERSIONS = [
    (1.2, "cilium_version: 1.2 must be a string such as '1.20' "
          "(an unquoted 1.20 in YAML is the number 1.2; quote it)"),
    (None, "cilium_version: None must be a string such as '1.20'"),
    (True, "cilium_version: True must be a string such as '1.20'"),
    ("latest", "cilium_version: 'latest' is not a Cilium version such as '1.20' or '1.20.2'"),
    ("1.15", "cilium_version: '1.15' has no kernel requirement data; known releases: " + KNOWN),
    ("1.21.0", "cilium_version: '1.21.0' has no kernel requirement data; known releases: " + KNOWN),
    ("1.2", "cilium_version: '1.2' has no kernel requirement data; known releases: " + KNOWN),
]


@pytest.mark.parametrize("value, message", BAD_VERSIONS)
def test_cilium_minor_rejects(value, message):
    with pytest.raises(InvalidInput) as caught:
        kernel.cilium_minor(value)
    assert str(caught.value) == message


def test_validate_features_names_every_unknown_entry():
    with pytest.raises(InvalidInputs) as caught:
        kernel.validate_features(["base", "vxlann", "l7_proxy", "ebpf_magic"])
    message = str(caught.value)
    assert message.startswith("2 problem(s) found:")
    assert "features[1]: 'vxlann' is not one of: base, vxlan, geneve" in message
    assert "features[3]: 'ebpf_magic' is not one of:" in message


def test_validate_features_single_problem_and_type():
    with pytest.raises(InvalidInput) as caught:
        kernel.validate_features(["tunnel"], field="kernel_preflight_features")
    assert str(caught.value).startswith("kernel_preflight_features[0]: 'tunnel' is not one of: base,")
    with pytest.raises(InvalidInput) as caught:
        kernel.validate_features("vxlan")
    assert str(caught.value).startswith("features: 'vxlan' must be a list of feature names")


# --------------------------------------------------------------------------------------
# Cluster spec -> features
# --------------------------------------------------------------------------------------

LAB_SPEC = {
    "cilium_version": "1.20",
    "cilium_routing_mode": "tunnel",
    "cilium_tunnel_protocol": "vxlan",
    "cilium_kube_proxy_replacement": True,
    "cilium_bpf_masquerade": True,
    "cilium_encryption": "none",
    "cilium_l7_proxy": True,
    "cilium_bandwidth_manager": False,
    "cilium_bbr": False,
    "cilium_datapath_mode": "veth",
    "cilium_enable_ipv4_big_tcp": False,
    "cilium_enable_ipv6_big_tcp": False,
}


def _spec(**changes):
    spec = dict(LAB_SPEC)
    spec.update(changes)
    return spec


@pytest.mark.parametrize("changes, features", [
    ({}, ["base", "vxlan", "kube_proxy_replacement", "bpf_masquerade", "l7_proxy"]),
    ({"cilium_routing_mode": "native"}, ["base", "kube_proxy_replacement", "bpf_masquerade", "l7_proxy"]),
    ({"cilium_tunnel_protocol": "geneve", "cilium_bpf_masquerade": False, "cilium_l7_proxy": False,
      "cilium_kube_proxy_replacement": False}, ["base", "geneve", "iptables_masquerade"]),
    ({"cilium_encryption": "ipsec"}, ["base", "vxlan", "kube_proxy_replacement", "bpf_masquerade",
                                      "l7_proxy", "ipsec"]),
    ({"cilium_encryption": "wireguard", "cilium_bandwidth_manager": True, "cilium_bbr": True,
      "cilium_datapath_mode": "netkit", "cilium_enable_ipv4_big_tcp": True,
      "cilium_enable_ipv6_big_tcp": True},
     ["base", "vxlan", "kube_proxy_replacement", "bpf_masquerade", "l7_proxy", "wireguard",
      "bandwidth_manager", "bbr", "netkit", "ipv4_big_tcp", "ipv6_big_tcp"]),
])
def test_features_from_spec(changes, features):
    derived = kernel.features_from_spec(_spec(**changes))
    assert derived == {"cilium_version": "1.20", "features": features}


def test_features_from_spec_uses_the_collection_defaults_for_missing_keys():
    derived = kernel.features_from_spec({"cilium_version": "1.18.2"})
    # The cilium role's hardened defaults: tunnel/vxlan, kube-proxy replacement, BPF
    # masquerading, L7 proxy on (roles/cilium/defaults/main.yml).
    assert derived == {"cilium_version": "1.18", "features": ["base", "vxlan", "kube_proxy_replacement",
                                                              "bpf_masquerade", "l7_proxy"]}
    without_kpr = kernel.features_from_spec({"cilium_version": "1.18", "cilium_kube_proxy_replacement": False,
                                             "cilium_bpf_masquerade": False})
    assert without_kpr["features"] == ["base", "vxlan", "iptables_masquerade", "l7_proxy"]


BAD_SPECS = [
    ({"cilium_routing_mode": "natve"}, "cilium_routing_mode: 'natve' is not one of: native, tunnel"),
    ({"cilium_tunnel_protocol": "gre"}, "cilium_tunnel_protocol: 'gre' is not one of: vxlan, geneve"),
    ({"cilium_encryption": "wg"}, "cilium_encryption: 'wg' is not one of: none, ipsec, wireguard"),
    ({"cilium_datapath_mode": "ipvlan"}, "cilium_datapath_mode: 'ipvlan' is not one of: veth, netkit, netkit-l2"),
    ({"cilium_kube_proxy_replacement": "yes"}, "cilium_kube_proxy_replacement: 'yes' must be a boolean (true or false)"),
    ({"cilium_l7_proxy": 1}, "cilium_l7_proxy: 1 must be a boolean (true or false)"),
    ({"cilium_bbr": True}, "cilium_bbr: True requires cilium_bandwidth_manager: true"),
    ({"cilium_version": 1.2}, "cilium_version: 1.2 must be a string such as '1.20' "
                              "(an unquoted 1.20 in YAML is the number 1.2; quote it)"),
    ({"cilium_version": "1.14"}, "cilium_version: '1.14' has no kernel requirement data; known releases: " + KNOWN),
]


@pytest.mark.parametrize("changes, message", BAD_SPECS)
def test_features_from_spec_rejects(changes, message):
    with pytest.raises(InvalidInput) as caught:
        kernel.features_from_spec(_spec(**changes))
    assert str(caught.value) == message


def test_features_from_spec_reports_all_problems_at_once():
    with pytest.raises(InvalidInputs) as caught:
        kernel.features_from_spec(_spec(cilium_routing_mode="natve", cilium_encryption="wg",
                                        cilium_version="1.99"))
    assert len(caught.value.problems) == 3
    fields = sorted(problem.field for problem in caught.value.problems)
    assert fields == ["cilium_encryption", "cilium_routing_mode", "cilium_version"]


def test_features_from_spec_rejects_non_mapping():
    with pytest.raises(InvalidInput) as caught:
        kernel.features_from_spec(["cilium_version"])
    assert str(caught.value) == "cluster spec: ['cilium_version'] must be a mapping of cilium_* variables"


# --------------------------------------------------------------------------------------
# The matrix itself
# --------------------------------------------------------------------------------------

def test_every_requirement_is_complete():
    kinds = {"config", "version", "btf", "bpffs", "cgroup2", "sysctl"}
    for requirement in kernel.REQUIREMENTS:
        label = requirement["item"]
        assert requirement["feature"] in kernel.FEATURES, label
        assert requirement["kind"] in kinds, label
        assert requirement["why"] and requirement["source"], label
        assert requirement["since"] in kernel.CILIUM_VERSIONS, label
        assert requirement["until"] in kernel.CILIUM_VERSIONS, label
        assert requirement["severity"] in ("required", "recommended"), label
        if requirement["kind"] == "config":
            assert label.startswith("CONFIG_"), label


def _items(feature, minor):
    return [req["item"] for req in kernel.requirements_for([feature], minor) if req["feature"] == feature]


def test_matrix_differences_between_releases():
    # Floor 5.4 for 1.16-1.17, 5.10 from 1.18.
    assert "kernel >= 5.4" in _items("base", "1.17")
    assert "kernel >= 5.10" not in _items("base", "1.17")
    assert "kernel >= 5.10" in _items("base", "1.18")
    assert "kernel >= 5.4" not in _items("base", "1.18")
    # MARK target for the L7 proxy documented from 1.17 (cilium/cilium#35669).
    assert "CONFIG_NETFILTER_XT_TARGET_MARK" not in _items("l7_proxy", "1.16")
    assert "CONFIG_NETFILTER_XT_TARGET_MARK" in _items("l7_proxy", "1.17")
    # BTF required from 1.20.
    assert "BTF /sys/kernel/btf/vmlinux" not in _items("base", "1.19")
    assert "BTF /sys/kernel/btf/vmlinux" in _items("base", "1.20")
    # The 5.7 hint for kube-proxy replacement only matters below the 5.10 floor.
    assert "kernel >= 5.7" in _items("kube_proxy_replacement", "1.17")
    assert "kernel >= 5.7" not in _items("kube_proxy_replacement", "1.18")


def test_docs_page_lists_every_requirement():
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "docs", "kernel-requirements.md")
    with open(docs) as handle:
        rows = [line for line in handle if line.startswith("| ")]
    for requirement in kernel.REQUIREMENTS:
        cell = "| %s | `%s`" % (requirement["feature"], requirement["item"])
        matching = [row for row in rows if row.startswith(cell)]
        assert len(matching) == 1, cell
        releases = requirement["since"] + ("+" if requirement["until"] == "1.20" else "–" + requirement["until"])
        assert "| %s" % releases in matching[0], cell
        assert "| %s |" % requirement["severity"] in matching[0], cell


def test_known_config_options_cover_matrix_and_modules():
    names = kernel.known_config_options()
    assert "CONFIG_MODULES" in names
    assert "CONFIG_NETKIT" in names
    assert names == sorted(names)


# --------------------------------------------------------------------------------------
# evaluate()
# --------------------------------------------------------------------------------------

FULL_CONFIG = {name: "y" for name in [
    "CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_NET_CLS_BPF", "CONFIG_BPF_JIT", "CONFIG_NET_CLS_ACT",
    "CONFIG_NET_SCH_INGRESS", "CONFIG_CRYPTO_SHA1", "CONFIG_CRYPTO_USER_API_HASH", "CONFIG_CGROUPS",
    "CONFIG_CGROUP_BPF", "CONFIG_PERF_EVENTS", "CONFIG_SCHEDSTATS", "CONFIG_FIB_RULES", "CONFIG_VXLAN",
    "CONFIG_GENEVE", "CONFIG_NETFILTER_XT_TARGET_TPROXY", "CONFIG_NETFILTER_XT_TARGET_MARK",
    "CONFIG_NETFILTER_XT_TARGET_CT", "CONFIG_NETFILTER_XT_MATCH_MARK", "CONFIG_NETFILTER_XT_MATCH_SOCKET",
    "CONFIG_MODULES",
]}


def _facts(release="6.1.0-18-amd64", options=None, source="/boot/config-6.1.0-18-amd64", btf=True,
           bpffs=True, cgroup2="/sys/fs/cgroup", jit=1, modules=True):
    return {
        "release": release,
        "config": {"source": source, "options": dict(FULL_CONFIG if options is None else options)},
        "modules_supported": modules,
        "btf": {"present": btf},
        "bpffs": {"mounted": bpffs},
        "cgroup2": {"path": cgroup2},
        "sysctls": {"net.core.bpf_jit_enable": jit},
    }


LAB_FEATURES = ["base", "vxlan", "kube_proxy_replacement", "bpf_masquerade", "l7_proxy"]


def test_evaluate_passes_a_complete_node():
    report = kernel.evaluate(_facts(), LAB_FEATURES, "1.20")
    assert report["passed"] is True
    assert report["missing"] == [] and report["warnings"] == [] and report["unknown"] == []
    assert report["floor"] == "5.10"
    assert report["kernel_version"] == "6.1.0"
    assert report["config_source"] == "/boot/config-6.1.0-18-amd64"
    statuses = {item["item"]: item["status"] for item in report["checked"]}
    assert statuses["CONFIG_VXLAN"] == "ok"
    assert statuses["kernel >= 5.10"] == "ok"
    assert "CONFIG_GENEVE" not in statuses  # not a feature of this spec


def test_evaluate_reports_missing_item_with_feature_and_why():
    options = dict(FULL_CONFIG)
    del options["CONFIG_VXLAN"]
    report = kernel.evaluate(_facts(options=options), LAB_FEATURES, "1.20")
    assert report["passed"] is False
    assert len(report["missing"]) == 1
    missing = report["missing"][0]
    assert (missing["feature"], missing["item"], missing["kind"], missing["detail"]) == (
        "vxlan", "CONFIG_VXLAN", "config", "not set")
    assert "VXLAN tunnel device for routingMode=tunnel" in missing["why"]


@pytest.mark.parametrize("value, modules, status, detail", [
    ("m", True, "ok", "=m"),
    ("m", False, "missing", "=m but the kernel has no module support (CONFIG_MODULES is off)"),
    ("y", False, "ok", "=y"),
    ("n", True, "missing", "not set"),
])
def test_evaluate_module_rules_for_tristate_option(value, modules, status, detail):
    options = dict(FULL_CONFIG, CONFIG_VXLAN=value, CONFIG_MODULES="y" if modules else "n")
    report = kernel.evaluate(_facts(options=options, modules=modules), ["vxlan"], "1.19")
    entry = [item for item in report["checked"] if item["item"] == "CONFIG_VXLAN"][0]
    assert (entry["status"], entry["detail"]) == (status, detail)


def test_evaluate_config_modules_line_beats_module_fact():
    options = dict(FULL_CONFIG, CONFIG_VXLAN="m", CONFIG_MODULES="n")
    report = kernel.evaluate(_facts(options=options, modules=True), ["vxlan"], "1.19")
    assert [item["item"] for item in report["missing"]] == ["CONFIG_VXLAN"]


def test_evaluate_bool_option_as_module_is_missing():
    options = dict(FULL_CONFIG, CONFIG_BPF="m")
    report = kernel.evaluate(_facts(options=options), ["base"], "1.19")
    assert report["missing"][0]["item"] == "CONFIG_BPF"
    assert report["missing"][0]["detail"] == "=m but CONFIG_BPF must be built in (=y)"


def test_evaluate_unknown_config_is_a_warning_by_default():
    report = kernel.evaluate(_facts(options={}, source="unknown"), LAB_FEATURES, "1.20")
    assert report["passed"] is True
    assert report["config_source"] == "unknown"
    assert report["missing"] == []
    unknown_items = {item["item"] for item in report["unknown"]}
    assert {"CONFIG_BPF", "CONFIG_VXLAN", "CONFIG_NETFILTER_XT_MATCH_SOCKET"} <= unknown_items
    assert all(item["detail"] == "no kernel config file was found on the node" for item in report["unknown"])
    strict = kernel.evaluate(_facts(options={}, source="unknown"), LAB_FEATURES, "1.20",
                             unknown_is_failure=True)
    assert strict["passed"] is False
    assert "config items are unknown (failures)" in kernel.summary_table(strict)


@pytest.mark.parametrize("release, minor, passed, equivalence", [
    ("4.18.0-553.el8_10.x86_64", "1.20", True, "RHEL 8.10 kernel 4.18.0 counts as 5.10 for Cilium 1.20"),
    ("4.18.0-372.9.1.el8.x86_64", "1.20", False, None),
    ("4.18.0-372.9.1.el8.x86_64", "1.17", True, "RHEL 8.6 kernel 4.18.0 counts as 5.4 for Cilium 1.17"),
    ("4.18.0-305.el8.x86_64", "1.16", False, None),
    ("4.19.112+", "1.16", False, None),
    ("5.4.0-150-generic", "1.17", True, None),
    ("5.4.0-150-generic", "1.18", False, None),
    ("5.10.0-28-cloud-amd64", "1.18", True, None),
])
def test_evaluate_kernel_floor(release, minor, passed, equivalence):
    report = kernel.evaluate(_facts(release=release), ["base"], minor)
    floor_items = [item for item in report["checked"] if item["kind"] == "version"]
    assert len(floor_items) == 1
    assert (floor_items[0]["status"] == "ok") is passed
    assert report["equivalence"] == equivalence


def test_evaluate_rhel_equivalence_does_not_lift_newer_feature_versions():
    options = dict(FULL_CONFIG, CONFIG_WIREGUARD="m", CONFIG_TCP_CONG_BBR="m", CONFIG_NET_SCH_FQ="m")
    report = kernel.evaluate(_facts(release="4.18.0-553.el8_10.x86_64", options=options),
                             ["base", "wireguard", "bandwidth_manager", "bbr"], "1.20")
    versions = {item["item"]: item["status"] for item in report["checked"] if item["kind"] == "version"}
    assert versions == {"kernel >= 5.10": "ok", "kernel >= 5.6": "ok", "kernel >= 5.18": "missing"}
    assert [item["item"] for item in report["missing"]] == ["kernel >= 5.18"]
    assert report["missing"][0]["detail"] == "kernel 4.18.0 (counted as 5.10)"


def test_evaluate_xfrm_mode_tunnel_only_below_5_2():
    ipsec = ["CONFIG_XFRM", "CONFIG_XFRM_OFFLOAD", "CONFIG_XFRM_STATISTICS", "CONFIG_XFRM_ALGO",
             "CONFIG_XFRM_USER", "CONFIG_INET_ESP", "CONFIG_INET6_ESP", "CONFIG_INET_IPCOMP",
             "CONFIG_INET6_IPCOMP", "CONFIG_INET_XFRM_TUNNEL", "CONFIG_INET6_XFRM_TUNNEL",
             "CONFIG_INET_TUNNEL", "CONFIG_INET6_TUNNEL", "CONFIG_CRYPTO_AEAD", "CONFIG_CRYPTO_AEAD2",
             "CONFIG_CRYPTO_GCM", "CONFIG_CRYPTO_SEQIV", "CONFIG_CRYPTO_CBC", "CONFIG_CRYPTO_HMAC",
             "CONFIG_CRYPTO_SHA256", "CONFIG_CRYPTO_AES"]
    options = dict(FULL_CONFIG, **{name: "m" for name in ipsec})
    options.update(CONFIG_XFRM="y", CONFIG_XFRM_OFFLOAD="y", CONFIG_XFRM_STATISTICS="y")
    modern = kernel.evaluate(_facts(options=options), ["ipsec"], "1.20")
    assert modern["passed"] is True
    assert "CONFIG_INET_XFRM_MODE_TUNNEL" not in {item["item"] for item in modern["checked"]}
    rhel = kernel.evaluate(_facts(release="4.18.0-553.el8_10.x86_64", options=options), ["ipsec"], "1.20")
    assert [item["item"] for item in rhel["missing"]] == ["CONFIG_INET_XFRM_MODE_TUNNEL"]


@pytest.mark.parametrize("feature, release, option, item", [
    ("netkit", "6.6.30-generic", "CONFIG_NETKIT", "kernel >= 6.8"),
    ("ipv4_big_tcp", "6.1.0-18-amd64", None, "kernel >= 6.3"),
    ("ipv6_big_tcp", "5.15.0-105-generic", None, "kernel >= 5.19"),
    ("bbr", "5.15.0-105-generic", "CONFIG_TCP_CONG_BBR", "kernel >= 5.18"),
])
def test_evaluate_feature_kernel_versions(feature, release, option, item):
    options = dict(FULL_CONFIG)
    if option:
        options[option] = "y"
    report = kernel.evaluate(_facts(release=release, options=options), [feature], "1.20")
    assert [entry["item"] for entry in report["missing"]] == [item]
    assert report["missing"][0]["feature"] == feature


def test_evaluate_btf_bpffs_cgroup_and_jit():
    report = kernel.evaluate(_facts(btf=False, bpffs=False, cgroup2=None, jit=0), LAB_FEATURES, "1.20")
    assert [item["item"] for item in report["missing"]] == ["BTF /sys/kernel/btf/vmlinux"]
    assert report["missing"][0]["kind"] == "btf"
    assert sorted(item["kind"] for item in report["warnings"]) == ["bpffs", "cgroup2", "sysctl"]
    # Before 1.20 missing BTF is not a requirement.
    older = kernel.evaluate(_facts(btf=False), LAB_FEATURES, "1.19")
    assert older["passed"] is True


def test_evaluate_waive_accepts_named_items():
    options = dict(FULL_CONFIG)
    del options["CONFIG_SCHEDSTATS"]
    report = kernel.evaluate(_facts(options=options), ["base"], "1.20", waive=["CONFIG_SCHEDSTATS"])
    assert report["passed"] is True
    assert [item["item"] for item in report["waived"]] == ["CONFIG_SCHEDSTATS"]


def test_evaluate_rejects_waive_entries_that_are_not_requirements():
    with pytest.raises(InvalidInput) as caught:
        kernel.evaluate(_facts(), ["base"], "1.20", waive=["CONFIG_GENEVE"],
                        waive_field="kernel_preflight_waive")
    assert str(caught.value) == ("kernel_preflight_waive[0]: 'CONFIG_GENEVE' is not a requirement of the "
                                 "selected features and release")


@pytest.mark.parametrize("facts, features, version, message", [
    (_facts(), ["base", "quic"], "1.20", "features[1]: 'quic' is not one of: base,"),
    (_facts(), ["base"], "1.13", "cilium_version: '1.13' has no kernel requirement data"),
    ("6.1.0", ["base"], "1.20", "facts: '6.1.0' must be the zerotrust_kernel facts mapping"),
    ({"config": {}}, ["base"], "1.20", "facts.release: None is not a kernel release string"),
])
def test_evaluate_rejects_bad_input(facts, features, version, message):
    with pytest.raises(InvalidInput) as caught:
        kernel.evaluate(facts, features, version)
    assert str(caught.value).startswith(message)


# --------------------------------------------------------------------------------------
# summary_table()
# --------------------------------------------------------------------------------------

def test_summary_table_is_fixed_width_and_states_verdict():
    options = dict(FULL_CONFIG)
    del options["CONFIG_SCHEDSTATS"]
    report = kernel.evaluate(_facts(options=options, bpffs=False), LAB_FEATURES, "1.20")
    table = kernel.summary_table(report)
    lines = table.splitlines()
    assert lines[0] == "Cilium 1.20 kernel preflight: FAILED (1 missing, 1 warning(s))"
    assert lines[1] == "kernel 6.1.0-18-amd64 (6.1.0), floor 5.10, config /boot/config-6.1.0-18-amd64"
    header = lines[2]
    assert header.split() == ["FEATURE", "ITEM", "STATUS", "DETAIL", "WHY"]
    rows = lines[3:]
    assert len(rows) == len(report["checked"])
    status_col = header.index("STATUS")
    why_col = header.index("WHY")
    for row, item in zip(rows, report["checked"]):
        assert row[status_col - 2:status_col] == "  "
        assert row[why_col:] == item["why"]
    schedstats = [row for row in rows if "CONFIG_SCHEDSTATS" in row][0]
    assert schedstats[status_col:].startswith("MISSING")
    bpffs = [row for row in rows if "bpffs mounted" in row][0]
    assert bpffs[status_col:].startswith("warning")


def test_summary_table_mentions_equivalence_and_unknown_config():
    report = kernel.evaluate(_facts(release="4.18.0-553.el8_10.x86_64", options={}, source="unknown"),
                             ["base"], "1.18")
    table = kernel.summary_table(report)
    assert "RHEL 8.10 kernel 4.18.0 counts as 5.10 for Cilium 1.18" in table
    assert "no kernel config found: config items are unknown (warnings)" in table
    assert table.splitlines()[0].startswith("Cilium 1.18 kernel preflight: PASSED (")


# --------------------------------------------------------------------------------------
# verdict(): the role's view (per-feature outcome, one failure message, named variables)
# --------------------------------------------------------------------------------------

ROLE_FIELDS = dict(features_field="kernel_preflight_features", waive_field="kernel_preflight_waive",
                   version_field="kernel_preflight_cilium_version",
                   unknown_field="kernel_preflight_unknown_is_failure")


def _without(*names):
    options = dict(FULL_CONFIG)
    for name in names:
        del options[name]
    return options


def test_verdict_on_the_lab_kernel_with_schedstats_waived():
    facts = _facts(release="6.18.44-fc-v669", options=_without("CONFIG_SCHEDSTATS", "CONFIG_CRYPTO_USER_API_HASH"),
                   source="/proc/config.gz", jit=None, modules=False)
    report = kernel.verdict(facts, LAB_FEATURES, "1.20.0", waive=["CONFIG_SCHEDSTATS"], **ROLE_FIELDS)
    assert report["passed"] is True
    assert report["message"] == ""
    assert report["by_feature"]["base"] == {"passed": True, "missing": [], "unknown": ["net.core.bpf_jit_enable = 1"],
                                            "warnings": ["CONFIG_CRYPTO_USER_API_HASH"],
                                            "waived": ["CONFIG_SCHEDSTATS"]}
    assert list(report["by_feature"]) == LAB_FEATURES
    # bpf_masquerade has no kernel items of its own: it passes with nothing listed.
    assert report["by_feature"]["bpf_masquerade"] == {"passed": True, "missing": [], "unknown": [],
                                                      "warnings": [], "waived": []}
    assert report["feature_line"] == (
        "features: base ok (1 warning(s); 1 waived), vxlan ok, kube_proxy_replacement ok, bpf_masquerade ok, "
        "l7_proxy ok")


def test_verdict_names_every_missing_item_with_feature_and_why_at_once():
    facts = _facts(options=_without("CONFIG_SCHEDSTATS", "CONFIG_VXLAN"))
    report = kernel.verdict(facts, LAB_FEATURES, "1.20", **ROLE_FIELDS)
    assert report["passed"] is False
    assert report["by_feature"]["base"]["passed"] is False
    assert report["by_feature"]["vxlan"] == {"passed": False, "missing": ["CONFIG_VXLAN"], "unknown": [],
                                             "warnings": [], "waived": []}
    assert report["by_feature"]["l7_proxy"]["passed"] is True
    assert report["message"] == (
        "kernel 6.1.0-18-amd64 cannot run Cilium 1.20 with base, vxlan, kube_proxy_replacement, bpf_masquerade, "
        "l7_proxy: 2 required item(s) missing: "
        "[base] CONFIG_SCHEDSTATS: not set (/proc/schedstat, read by the agent to derive jiffies for the BPF "
        "clock source); "
        "[vxlan] CONFIG_VXLAN: not set (VXLAN tunnel device for routingMode=tunnel, tunnelProtocol=vxlan)")
    assert report["feature_line"].startswith(
        "features: base FAILED (missing CONFIG_SCHEDSTATS), vxlan FAILED (missing CONFIG_VXLAN), ")


def test_verdict_unknown_items_fail_only_when_asked():
    facts = _facts(options={}, source="unknown")
    lenient = kernel.verdict(facts, ["base"], "1.19", **ROLE_FIELDS)
    assert lenient["passed"] is True and lenient["by_feature"]["base"]["passed"] is True
    strict = kernel.verdict(facts, ["base"], "1.19", unknown_is_failure=True, **ROLE_FIELDS)
    assert strict["passed"] is False
    assert strict["by_feature"]["base"]["passed"] is False
    assert "required item(s) could not be checked and unknown items count as failures: [base] CONFIG_BPF: " \
           "no kernel config file was found on the node" in strict["message"]
    assert "required item(s) missing" not in strict["message"]
    assert strict["feature_line"].startswith("features: base FAILED (unknown CONFIG_BPF, ")


def test_failure_message_is_empty_for_a_passing_report():
    assert kernel.failure_message(kernel.evaluate(_facts(), ["base"], "1.20")) == ""


BAD_VERDICT_INPUTS = [
    (dict(features=["base", "vxlann"]),
     "kernel_preflight_features[1]: 'vxlann' is not one of: " + ", ".join(kernel.FEATURES)),
    (dict(features="vxlan"),
     "kernel_preflight_features: 'vxlan' must be a list of feature names (" + ", ".join(kernel.FEATURES) + ")"),
    (dict(cilium_version="1.15"),
     "kernel_preflight_cilium_version: '1.15' has no kernel requirement data; known releases: " + KNOWN),
    (dict(cilium_version=1.2),
     "kernel_preflight_cilium_version: 1.2 must be a string such as '1.20' (an unquoted 1.20 in YAML is the "
     "number 1.2; quote it)"),
    (dict(waive=["CONFIG_GENEVE"]),
     "kernel_preflight_waive[0]: 'CONFIG_GENEVE' is not a requirement of the selected features and release"),
    (dict(waive="CONFIG_SCHEDSTATS"),
     "kernel_preflight_waive: 'CONFIG_SCHEDSTATS' must be a list of requirement items such as 'CONFIG_SCHEDSTATS'"),
    (dict(unknown_is_failure="yes"),
     "kernel_preflight_unknown_is_failure: 'yes' must be a boolean (true or false)"),
]


@pytest.mark.parametrize("changes, message", BAD_VERDICT_INPUTS)
def test_verdict_rejects_bad_input_naming_the_role_variable(changes, message):
    arguments = dict(features=LAB_FEATURES, cilium_version="1.20", waive=[], unknown_is_failure=False)
    arguments.update(changes)
    arguments.update(ROLE_FIELDS)
    with pytest.raises(InvalidInput) as caught:
        kernel.verdict(_facts(), **arguments)
    assert str(caught.value) == message


def test_verdict_reports_version_and_feature_problems_together():
    with pytest.raises(InvalidInputs) as caught:
        kernel.verdict(_facts(), ["quic", "base", "tcp"], "2.0", **ROLE_FIELDS)
    assert [problem.field for problem in caught.value.problems] == [
        "kernel_preflight_cilium_version", "kernel_preflight_features[0]", "kernel_preflight_features[2]"]
