# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/filter/kernel.py: the kernel preflight filters.

Every error must be an AnsibleFilterError whose message names the filter, the variable and
the offending value (never a bare exception, never a False result).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.filter import kernel as kernel_filters
from ansible_collections.zerotrust.cilium.plugins.module_utils import kernel as kernel_logic

FILTERS = kernel_filters.FilterModule().filters()
KNOWN = ", ".join(kernel_logic.CILIUM_VERSIONS)

LAB_SPEC = {
    "cilium_version": "1.20.0",
    "cilium_routing_mode": "tunnel",
    "cilium_tunnel_protocol": "vxlan",
    "cilium_kube_proxy_replacement": True,
    "cilium_bpf_masquerade": True,
    "cilium_encryption": "none",
    "cilium_l7_proxy": True,
    "cilium_bandwidth_manager": False,
    "cilium_datapath_mode": "veth",
}
LAB_FEATURES = ["base", "vxlan", "kube_proxy_replacement", "bpf_masquerade", "l7_proxy"]


def _facts(missing=()):
    options = {name: "y" for name in kernel_logic.known_config_options() if name not in missing}
    return {
        "release": "6.18.44-fc-v669",
        "config": {"source": "/proc/config.gz", "options": options},
        "modules_supported": True,
        "btf": {"present": True},
        "bpffs": {"mounted": True},
        "cgroup2": {"path": "/sys/fs/cgroup"},
        "sysctls": {"net.core.bpf_jit_enable": 1},
    }


def test_filter_names():
    assert sorted(FILTERS) == ["kernel_features", "kernel_summary_table", "kernel_verdict"]


def test_kernel_features_from_the_lab_spec():
    assert FILTERS["kernel_features"](LAB_SPEC) == LAB_FEATURES
    assert FILTERS["kernel_features"]({"cilium_version": "1.18", "cilium_routing_mode": None}) == [
        "base", "vxlan", "kube_proxy_replacement", "bpf_masquerade", "l7_proxy"]


def test_kernel_verdict_and_table():
    report = FILTERS["kernel_verdict"](_facts(missing=["CONFIG_SCHEDSTATS"]), features=LAB_FEATURES,
                                       cilium_version="1.20.0", waive=["CONFIG_SCHEDSTATS"],
                                       waive_field="kernel_preflight_waive")
    assert report["passed"] is True
    assert report["by_feature"]["base"]["waived"] == ["CONFIG_SCHEDSTATS"]
    assert report["feature_line"].startswith("features: base ok (1 waived), vxlan ok")
    table = FILTERS["kernel_summary_table"](report)
    assert table.splitlines()[0] == "Cilium 1.20 kernel preflight: PASSED (1 waived)"


def test_kernel_verdict_failure_message_names_every_missing_item():
    report = FILTERS["kernel_verdict"](_facts(missing=["CONFIG_SCHEDSTATS", "CONFIG_VXLAN"]),
                                       features=LAB_FEATURES, cilium_version="1.20")
    assert report["passed"] is False
    assert "2 required item(s) missing" in report["message"]
    assert "[base] CONFIG_SCHEDSTATS: not set" in report["message"]
    assert "[vxlan] CONFIG_VXLAN: not set" in report["message"]


BAD_INPUTS = [
    ("features-unknown-spec-value", "kernel_features", {"cilium_version": "1.20", "cilium_routing_mode": "natve"},
     {}, "kernel_features: cilium_routing_mode: 'natve' is not one of: native, tunnel"),
    ("features-boolean-as-text", "kernel_features", {"cilium_version": "1.20", "cilium_l7_proxy": "yes"},
     {}, "kernel_features: cilium_l7_proxy: 'yes' must be a boolean (true or false)"),
    ("features-version-without-data", "kernel_features", {"cilium_version": "1.15"}, {},
     "kernel_features: cilium_version: '1.15' has no kernel requirement data; known releases: " + KNOWN),
    ("features-not-a-mapping", "kernel_features", "tunnel", {},
     "kernel_features: cluster spec: 'tunnel' must be a mapping of cilium_* variables"),
    ("verdict-unknown-feature", "kernel_verdict", _facts(),
     dict(features=["base", "vxlann"], cilium_version="1.20", features_field="kernel_preflight_features"),
     "kernel_verdict: kernel_preflight_features[1]: 'vxlann' is not one of: " + ", ".join(kernel_logic.FEATURES)),
    ("verdict-version-without-data", "kernel_verdict", _facts(),
     dict(features=["base"], cilium_version="1.99", version_field="kernel_preflight_cilium_version"),
     "kernel_verdict: kernel_preflight_cilium_version: '1.99' has no kernel requirement data; known releases: "
     + KNOWN),
    ("verdict-waive-not-a-requirement", "kernel_verdict", _facts(),
     dict(features=["base"], cilium_version="1.20", waive=["CONFIG_WIREGUARD"], waive_field="kernel_preflight_waive"),
     "kernel_verdict: kernel_preflight_waive[0]: 'CONFIG_WIREGUARD' is not a requirement of the selected features "
     "and release"),
    ("verdict-facts-not-a-mapping", "kernel_verdict", "6.1.0", dict(features=["base"], cilium_version="1.20"),
     "kernel_verdict: facts: '6.1.0' must be the zerotrust_kernel facts mapping"),
    ("verdict-missing-features", "kernel_verdict", _facts(), dict(cilium_version="1.20"),
     "kernel_verdict: features: None must be a list of feature names (" + ", ".join(kernel_logic.FEATURES) + ")"),
    ("table-not-a-report", "kernel_summary_table", {"passed": True}, {},
     "kernel_summary_table: report: 'dict' is not a report from kernel_verdict ('missing')"),
]


@pytest.mark.parametrize("case, name, value, options, message", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_raises_a_filter_error_naming_the_variable(case, name, value, options, message):
    with pytest.raises(AnsibleFilterError) as caught:
        FILTERS[name](value, **options)
    assert caught.value.message == message
