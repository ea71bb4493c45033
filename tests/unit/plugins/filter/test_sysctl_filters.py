# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/filter/sysctl.py: the node_tuning sysctl filters.

Every error must be an AnsibleFilterError whose message names the filter, the role variable
and the offending value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.filter import sysctl as sysctl_filters

FILTERS = sysctl_filters.FilterModule().filters()

LAB_SETTINGS = {
    "conntrack_max": 262144,
    "conntrack_buckets": 262144,
    "unprivileged_bpf_disabled": 2,
    "best_effort": ["net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"],
}


def test_filter_names():
    assert sorted(FILTERS) == ["sysctl_check_keys", "sysctl_compare", "sysctl_dropin", "sysctl_dropin_plan", "sysctl_plan"]


def test_plan_dropin_check_and_compare_on_a_lab_node():
    plan = FILTERS["sysctl_plan"](LAB_SETTINGS)
    text = FILTERS["sysctl_dropin"](plan)
    assert "-net.netfilter.nf_conntrack_max = 262144\n" in text
    assert "net.ipv4.tcp_mtu_probing = 1\n" in text
    existing = [key for key in plan["sysctls"] if "*" not in key and key != "net.netfilter.nf_conntrack_buckets"]
    assert FILTERS["sysctl_check_keys"](plan, existing=existing) == ["net.netfilter.nf_conntrack_buckets"]
    running = {key: plan["sysctls"][key] for key in existing}
    running["net.netfilter.nf_conntrack_max"] = "65536"
    result = FILTERS["sysctl_compare"](plan, running=running)
    assert result["mismatched"] == []
    assert [item["key"] for item in result["best_effort_unapplied"]] == [
        "net.netfilter.nf_conntrack_buckets", "net.netfilter.nf_conntrack_max"]
    assert result["message"] == ""


def test_compare_fails_a_key_that_is_not_best_effort():
    plan = FILTERS["sysctl_plan"]({"conntrack_max": 300000})
    running = {key: value for key, value in plan["sysctls"].items() if "*" not in key}
    running["net.netfilter.nf_conntrack_max"] = "262144"
    result = FILTERS["sysctl_compare"](plan, running=running)
    assert result["message"] == ("net.netfilter.nf_conntrack_max: wanted '300000', running '262144' "
                                 "(set by node_tuning_conntrack_max)")


PLAN = sysctl_filters.sysctl_plan({})

BAD_INPUTS = [
    ("plan-non-integer", "sysctl_plan", {"overrides": {"net.core.somaxconn": "lots"}}, {},
     "sysctl_plan: node_tuning_sysctl_overrides[net.core.somaxconn]: 'lots' is not an integer or "
     "space-separated integers"),
    ("plan-boolean-value", "sysctl_plan", {"overrides": {"net.ipv4.tcp_mtu_probing": True}}, {},
     "sysctl_plan: node_tuning_sysctl_overrides[net.ipv4.tcp_mtu_probing]: True is a boolean; sysctl values are "
     "integers (write 1 or 0)"),
    ("plan-boolean-number", "sysctl_plan", {"conntrack_max": True}, {},
     "sysctl_plan: node_tuning_conntrack_max: True must be a positive integer"),
    ("plan-bad-key", "sysctl_plan", {"overrides": {"net..ipv4": 1}}, {},
     "sysctl_plan: node_tuning_sysctl_overrides[net..ipv4]: 'net..ipv4' is not a dotted sysctl name such as "
     "'net.ipv4.ip_forward'"),
    ("plan-remove-unknown", "sysctl_plan", {"removals": ["vm.swappiness"]}, {},
     "sysctl_plan: node_tuning_sysctl_remove[0]: 'vm.swappiness' is not a key this role sets; it sets: "
     + ", ".join(sorted(PLAN["sysctls"]))),
    ("plan-best-effort-unplanned", "sysctl_plan", {"best_effort": ["vm.swappiness"]}, {},
     "sysctl_plan: node_tuning_sysctl_best_effort[0]: 'vm.swappiness' is not in the planned sysctls"),
    ("plan-not-a-mapping", "sysctl_plan", "ip_forward=1", {},
     "sysctl_plan: settings: 'ip_forward=1' must be a mapping with keys among: conntrack_max, conntrack_buckets, "
     "ipv6, inotify_max_user_instances, inotify_max_user_watches, unprivileged_bpf_disabled, relax_rp_filter, "
     "overrides, removals, best_effort"),
    ("check-key-absent", "sysctl_check_keys", sysctl_filters.sysctl_plan({"overrides": {"net.ipv4.no_such": 1}}),
     {"existing": [key for key in PLAN["sysctls"] if "*" not in key]},
     "sysctl_check_keys: node_tuning_sysctl_overrides[net.ipv4.no_such]: 'net.ipv4.no_such' does not exist on this "
     "node (/proc/sys/net/ipv4/no_such); remove it or list it in node_tuning_sysctl_best_effort"),
    ("check-existing-not-a-list", "sysctl_check_keys", PLAN, {"existing": "net.ipv4.ip_forward"},
     "sysctl_check_keys: existing: 'net.ipv4.ip_forward' must be a list of sysctl names"),
    ("dropin-not-a-plan", "sysctl_dropin", {"net.ipv4.ip_forward": "1"}, {},
     "sysctl_dropin: plan: {'net.ipv4.ip_forward': '1'} is not a plan from zerotrust.cilium.sysctl_plan"),
    ("compare-running-not-a-mapping", "sysctl_compare", PLAN, {"running": ["net.ipv4.ip_forward"]},
     "sysctl_compare: running: ['net.ipv4.ip_forward'] must be a mapping of sysctl name to value"),
]


@pytest.mark.parametrize("case, name, value, options, message", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_raises_a_filter_error_naming_the_variable(case, name, value, options, message):
    with pytest.raises(AnsibleFilterError) as caught:
        FILTERS[name](value, **options)
    assert caught.value.message == message


def test_sysctl_dropin_plan_reads_back_a_rendered_dropin_for_sysctl_compare():
    plan = FILTERS["sysctl_plan"]({"conntrack_max": 262144, "best_effort": ["net.netfilter.nf_conntrack_max"]})
    read = FILTERS["sysctl_dropin_plan"](FILTERS["sysctl_dropin"](plan), dropin="/etc/sysctl.d/90-x.conf")
    running = dict((key, value) for key, value in read["sysctls"].items() if "*" not in key)
    running["net.netfilter.nf_conntrack_max"] = "65536"
    comparison = FILTERS["sysctl_compare"](read, running=running)
    assert comparison["mismatched"] == []
    assert [item["key"] for item in comparison["best_effort_unapplied"]] == ["net.netfilter.nf_conntrack_max"]


def test_sysctl_dropin_plan_refuses_what_is_not_text():
    with pytest.raises(AnsibleFilterError, match=r"^sysctl_dropin_plan: dropin: 42 must be the text of a sysctl.d file"):
        FILTERS["sysctl_dropin_plan"](42)
