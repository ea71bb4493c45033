# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/sysctl.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.zerotrust.cilium.plugins.module_utils import sysctl
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import (
    InvalidInput,
    InvalidInputs,
)

# --------------------------------------------------------------------------------------
# Keys and values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, expected", [
    ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
    ("  net.ipv4.ip_forward ", "net.ipv4.ip_forward"),
    ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
    ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
    ("net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
    ("net.ipv4.conf.lxc*.rp_filter", "net.ipv4.conf.lxc*.rp_filter"),
])
def test_normalize_key(key, expected):
    assert sysctl.normalize_key(key) == expected


@pytest.mark.parametrize("key, message", [
    ("", "sysctl key: '' is not a sysctl name such as 'net.ipv4.ip_forward'"),
    (None, "sysctl key: None is not a sysctl name such as 'net.ipv4.ip_forward'"),
    ("ip_forward", "sysctl key: 'ip_forward' is not a dotted sysctl name such as 'net.ipv4.ip_forward'"),
    ("net..ipv4", "sysctl key: 'net..ipv4' is not a dotted sysctl name such as 'net.ipv4.ip_forward'"),
    ("net.ipv4 .ip_forward", "sysctl key: 'net.ipv4 .ip_forward' is not a dotted sysctl name such as "
                             "'net.ipv4.ip_forward'"),
    ("-net.ipv4.ip_forward", "sysctl key: '-net.ipv4.ip_forward' must not start with '-'; list keys that "
                             "may fail in node_tuning_sysctl_best_effort"),
])
def test_normalize_key_rejects(key, message):
    with pytest.raises(InvalidInput) as caught:
        sysctl.normalize_key(key)
    assert str(caught.value) == message


def test_key_to_path_swaps_separators():
    assert sysctl.key_to_path("net.ipv4.conf.eth0/100.rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"
    assert sysctl.key_to_path("net.netfilter.nf_conntrack_max") == "/proc/sys/net/netfilter/nf_conntrack_max"


@pytest.mark.parametrize("value, expected", [
    (1, "1"),
    (0, "0"),
    (-1, "-1"),
    ("262144", "262144"),
    ("32768   60999", "32768 60999"),
    ("\t4096\t87380  6291456\n", "4096 87380 6291456"),
    ([32768, 60999], "32768 60999"),
    ((1, 2), "1 2"),
    ("007", "7"),
])
def test_normalize_value(value, expected):
    assert sysctl.normalize_value(value) == expected


BAD_VALUES = [
    (True, "is a boolean; sysctl values are integers (write 1 or 0)"),
    (False, "is a boolean; sysctl values are integers (write 1 or 0)"),
    (1.5, "is a float; sysctl values are integers"),
    (None, "has no value; give an integer or space-separated integers (to drop a key use "
           "node_tuning_sysctl_remove)"),
    ({"a": 1}, "is a mapping; give an integer or space-separated integers"),
    ("bbr", "is not an integer or space-separated integers"),
    ("1.5", "is not an integer or space-separated integers"),
    ("", "is not an integer or space-separated integers"),
    ("1 two", "is not an integer or space-separated integers"),
    ([], "must be a non-empty list of integers"),
    ([1, True], "must be a non-empty list of integers"),
    ([1, "2"], "must be a non-empty list of integers"),
]


@pytest.mark.parametrize("value, problem", BAD_VALUES)
def test_normalize_value_rejects(value, problem):
    with pytest.raises(InvalidInput) as caught:
        sysctl.normalize_value(value, field="node_tuning_sysctl_overrides[net.ipv4.ip_forward]")
    assert str(caught.value) == "node_tuning_sysctl_overrides[net.ipv4.ip_forward]: %r %s" % (value, problem)


@given(st.lists(st.integers(-2 ** 31, 2 ** 31), min_size=1, max_size=4),
       st.lists(st.sampled_from([" ", "  ", "\t", " \t "]), min_size=5, max_size=5))
def test_normalize_value_whitespace_property(numbers, gaps):
    text = gaps[0] + "".join(str(n) + gap for n, gap in zip(numbers, gaps[1:] + [" "] * 5))
    assert sysctl.normalize_value(text) == " ".join(str(n) for n in numbers)
    assert sysctl.normalize_value(numbers) == " ".join(str(n) for n in numbers)


def test_validate_sysctls_reports_every_bad_entry():
    with pytest.raises(InvalidInputs) as caught:
        sysctl.validate_sysctls({
            "net.ipv4.ip_forward": True,
            "net.core.somaxconn": 4096,
            "vm.swappiness": 1.0,
            "badkey": 1,
        })
    lines = str(caught.value).splitlines()
    assert lines[0] == "3 problem(s) found:"
    assert "- node_tuning_sysctl_overrides[net.ipv4.ip_forward]: True is a boolean; sysctl values are " \
           "integers (write 1 or 0)" in lines
    assert "- node_tuning_sysctl_overrides[vm.swappiness]: 1.0 is a float; sysctl values are integers" in lines
    assert "- node_tuning_sysctl_overrides[badkey]: 'badkey' is not a dotted sysctl name such as " \
           "'net.ipv4.ip_forward'" in lines


def test_validate_sysctls_normalises_and_sorts():
    result = sysctl.validate_sysctls({"net/ipv4/ip_local_port_range": "1024\t65000", "kernel.pid_max": 4194304})
    assert list(result.items()) == [("kernel.pid_max", "4194304"),
                                    ("net.ipv4.ip_local_port_range", "1024 65000")]
    assert sysctl.validate_sysctls(None) == {}
    with pytest.raises(InvalidInput) as caught:
        sysctl.validate_sysctls(["net.ipv4.ip_forward=1"])
    assert str(caught.value) == ("node_tuning_sysctl_overrides: ['net.ipv4.ip_forward=1'] must be a mapping "
                                 "of sysctl name to integer value")


# --------------------------------------------------------------------------------------
# plan_sysctls()
# --------------------------------------------------------------------------------------

DEFAULT_PLAN = {
    "fs.inotify.max_user_instances": "8192",
    "fs.inotify.max_user_watches": "524288",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.cilium_*.rp_filter": "0",
    "net.ipv4.conf.lxc*.rp_filter": "0",
    "net.ipv4.ip_forward": "1",
    "net.ipv4.tcp_mtu_probing": "1",
    "net.ipv6.conf.all.forwarding": "1",
}


def test_plan_defaults():
    plan = sysctl.plan_sysctls()
    assert plan["sysctls"] == DEFAULT_PLAN
    assert list(plan["sysctls"]) == sorted(DEFAULT_PLAN)
    assert set(plan["origins"]) == set(DEFAULT_PLAN)
    assert plan["origins"]["net.ipv6.conf.all.forwarding"] == "node_tuning_ipv6"


def test_plan_with_conntrack_overrides_and_removals():
    plan = sysctl.plan_sysctls(conntrack_max=262144, conntrack_buckets=65536, ipv6=False,
                               relax_rp_filter=False, unprivileged_bpf_disabled=2,
                               overrides={"net.ipv4.ip_local_port_range": "32768  60999",
                                          "fs.inotify.max_user_watches": 1048576},
                               removals=["net.ipv4.tcp_mtu_probing"])
    assert plan["sysctls"] == {
        "fs.inotify.max_user_instances": "8192",
        "fs.inotify.max_user_watches": "1048576",
        "kernel.unprivileged_bpf_disabled": "2",
        "net.ipv4.ip_forward": "1",
        "net.ipv4.ip_local_port_range": "32768 60999",
        "net.netfilter.nf_conntrack_buckets": "65536",
        "net.netfilter.nf_conntrack_max": "262144",
    }
    assert plan["origins"]["fs.inotify.max_user_watches"] == \
        "node_tuning_sysctl_overrides[fs.inotify.max_user_watches]"
    assert plan["origins"]["net.netfilter.nf_conntrack_max"] == "node_tuning_conntrack_max"


BAD_PLANS = [
    ({"conntrack_max": True}, "node_tuning_conntrack_max: True must be a positive integer"),
    ({"conntrack_max": 0}, "node_tuning_conntrack_max: 0 must be a positive integer"),
    ({"conntrack_buckets": "65536"}, "node_tuning_conntrack_buckets: '65536' must be a positive integer"),
    ({"inotify_max_user_watches": None}, "node_tuning_inotify_max_user_watches: None must be a positive integer"),
    ({"ipv6": "yes"}, "node_tuning_ipv6: 'yes' must be a boolean (true or false)"),
    ({"relax_rp_filter": 0}, "node_tuning_relax_rp_filter: 0 must be a boolean (true or false)"),
    ({"unprivileged_bpf_disabled": 0}, "node_tuning_unprivileged_bpf_disabled: 0 is not one of: 1, 2 "
                                       "(1 cannot be undone without a reboot)"),
    ({"unprivileged_bpf_disabled": True}, "node_tuning_unprivileged_bpf_disabled: True is not one of: 1, 2 "
                                          "(1 cannot be undone without a reboot)"),
    ({"overrides": {"net.ipv4.tcp_mtu_probing": False}},
     "node_tuning_sysctl_overrides[net.ipv4.tcp_mtu_probing]: False is a boolean; sysctl values are integers "
     "(write 1 or 0)"),
    ({"removals": "net.ipv4.ip_forward"},
     "node_tuning_sysctl_remove: 'net.ipv4.ip_forward' must be a list of sysctl names"),
    ({"removals": ["vm.swappiness"]},
     "node_tuning_sysctl_remove[0]: 'vm.swappiness' is not a key this role sets; it sets: "
     + ", ".join(sorted(DEFAULT_PLAN))),
    ({"removals": ["vm.swappiness"], "overrides": {"vm.swappiness": 10}},
     "node_tuning_sysctl_remove[0]: 'vm.swappiness' is also set in node_tuning_sysctl_overrides; keep one of them"),
]


@pytest.mark.parametrize("kwargs, message", BAD_PLANS)
def test_plan_rejects(kwargs, message):
    with pytest.raises(InvalidInput) as caught:
        sysctl.plan_sysctls(**kwargs)
    assert str(caught.value) == message


def test_plan_collects_several_problems():
    with pytest.raises(InvalidInputs) as caught:
        sysctl.plan_sysctls(conntrack_max=1.5, ipv6=None, overrides={"vm.swappiness": None})
    assert [problem.field for problem in caught.value.problems] == [
        "node_tuning_conntrack_max", "node_tuning_ipv6", "node_tuning_sysctl_overrides[vm.swappiness]"]


def test_best_effort_validation_and_missing_keys():
    plan = sysctl.plan_sysctls(conntrack_max=131072, overrides={"net.core.somaxconn": 8192})
    best = sysctl.validate_best_effort(["net/netfilter/nf_conntrack_max"], plan["sysctls"])
    assert best == ["net.netfilter.nf_conntrack_max"]
    with pytest.raises(InvalidInput) as caught:
        sysctl.validate_best_effort(["vm.swappiness"], plan["sysctls"])
    assert str(caught.value) == "node_tuning_sysctl_best_effort[0]: 'vm.swappiness' is not in the planned sysctls"

    available = set(plan["sysctls"]) - {"net.netfilter.nf_conntrack_max", "net.core.somaxconn",
                                        "net.ipv6.conf.all.forwarding"}
    with pytest.raises(InvalidInputs) as caught:
        sysctl.check_keys_exist(plan, available, best_effort=best)
    messages = [str(problem) for problem in caught.value.problems]
    assert messages == [
        "node_tuning_sysctl_overrides[net.core.somaxconn]: 'net.core.somaxconn' does not exist on this node "
        "(/proc/sys/net/core/somaxconn); remove it or list it in node_tuning_sysctl_best_effort",
        "node_tuning_ipv6: 'net.ipv6.conf.all.forwarding' does not exist on this node "
        "(/proc/sys/net/ipv6/conf/all/forwarding); remove it or list it in node_tuning_sysctl_best_effort",
    ]
    absent = sysctl.check_keys_exist(plan, available | {"net.core.somaxconn", "net.ipv6.conf.all.forwarding"},
                                     best_effort=best)
    assert absent == ["net.netfilter.nf_conntrack_max"]


# --------------------------------------------------------------------------------------
# Drop-in rendering and parsing
# --------------------------------------------------------------------------------------

def test_render_dropin():
    text = sysctl.render_dropin({"net.ipv4.ip_forward": "1", "net.netfilter.nf_conntrack_max": "262144",
                                 "net.ipv4.conf.lxc*.rp_filter": "0", "fs.inotify.max_user_watches": "524288"},
                                best_effort=["net.netfilter.nf_conntrack_max"])
    assert text == (
        "# Managed by the zerotrust.cilium collection (node_tuning role).\n"
        "# Local edits are overwritten; change the role variables instead.\n"
        "fs.inotify.max_user_watches = 524288\n"
        "-net.ipv4.conf.lxc*.rp_filter = 0\n"
        "net.ipv4.ip_forward = 1\n"
        "-net.netfilter.nf_conntrack_max = 262144\n"
    )


def test_parse_sysctl_file():
    text = (
        "# comment\n"
        "; also a comment\n"
        "\n"
        "net.ipv4.ip_forward=0\n"
        "  net/ipv4/conf/eth0.100/rp_filter =  2 \n"
        "-net.ipv4.conf.all.rp_filter\n"
        "-kernel.unknown = 1\n"
        "not an assignment\n"
        "net.ipv4.ip_local_port_range = 1024\t65000\n"
    )
    assert sysctl.parse_sysctl_file(text) == [
        {"key": "net.ipv4.ip_forward", "value": "0", "line": 4, "ignore_failure": False},
        {"key": "net.ipv4.conf.eth0/100.rp_filter", "value": "2", "line": 5, "ignore_failure": False},
        {"key": "net.ipv4.conf.all.rp_filter", "value": None, "line": 6, "ignore_failure": True},
        {"key": "kernel.unknown", "value": "1", "line": 7, "ignore_failure": True},
        {"key": "net.ipv4.ip_local_port_range", "value": "1024 65000", "line": 9, "ignore_failure": False},
    ]


def test_render_then_parse_round_trip():
    plan = sysctl.plan_sysctls(conntrack_max=65536)["sysctls"]
    parsed = sysctl.parse_sysctl_file(sysctl.render_dropin(plan))
    assert {entry["key"]: entry["value"] for entry in parsed} == plan


# --------------------------------------------------------------------------------------
# Application order
# --------------------------------------------------------------------------------------

PATHS = [
    "/usr/lib/sysctl.d/50-default.conf",
    "/usr/lib/sysctl.d/99-protect-links.conf",
    "/etc/sysctl.d/99-protect-links.conf",
    "/run/sysctl.d/60-runtime.conf",
    "/usr/local/lib/sysctl.d/10-local.conf",
    "/lib/sysctl.d/50-pid-max.conf",
    "/usr/lib/sysctl.d/50-pid-max.conf",
    "/etc/sysctl.d/README.sysctl",
    "/etc/sysctl.d/99-sysctl.conf",
    "/etc/sysctl.conf",
    "/etc/sysctl.d/90-zerotrust-cilium.conf",
]


def test_application_order_systemd():
    assert sysctl.application_order(PATHS) == [
        "/usr/local/lib/sysctl.d/10-local.conf",
        "/usr/lib/sysctl.d/50-default.conf",
        "/usr/lib/sysctl.d/50-pid-max.conf",
        "/run/sysctl.d/60-runtime.conf",
        "/etc/sysctl.d/90-zerotrust-cilium.conf",
        "/etc/sysctl.d/99-protect-links.conf",
        "/etc/sysctl.d/99-sysctl.conf",
    ]


def test_application_order_procps_reads_sysctl_conf_last():
    order = sysctl.application_order(PATHS, applier="procps")
    assert order[-1] == "/etc/sysctl.conf"
    assert order[:-1] == sysctl.application_order(PATHS)
    with pytest.raises(InvalidInput) as caught:
        sysctl.application_order(PATHS, applier="sysvinit")
    assert str(caught.value) == "applier: 'sysvinit' is not one of: systemd, procps"


# --------------------------------------------------------------------------------------
# Conflicts
# --------------------------------------------------------------------------------------

DROPIN = "/etc/sysctl.d/90-zerotrust-cilium.conf"
DESIRED = sysctl.plan_sysctls()["sysctls"]

# systemd's own 50-default.conf as shipped by systemd 245+ (rp_filter part).
SYSTEMD_DEFAULT = (
    "# Source route verification\n"
    "net.ipv4.conf.default.rp_filter = 2\n"
    "net.ipv4.conf.*.rp_filter = 2\n"
    "-net.ipv4.conf.all.rp_filter\n"
)


def test_later_file_with_different_value_conflicts():
    files = {
        "/usr/lib/sysctl.d/50-default.conf": SYSTEMD_DEFAULT,
        "/etc/sysctl.d/10-early.conf": "net.ipv4.ip_forward = 0\n",
        "/etc/sysctl.d/99-sysctl.conf": "# local\nkernel.panic = 10\nnet.ipv4.ip_forward = 0\n",
        "/etc/sysctl.d/99-zzz-same.conf": "net.ipv4.tcp_mtu_probing = 1\n",
    }
    conflicts = sysctl.find_conflicts(files, DROPIN, DESIRED)
    assert conflicts == [{"key": "net.ipv4.ip_forward", "ours": "1", "theirs": "0",
                          "file": "/etc/sysctl.d/99-sysctl.conf", "line": 3,
                          "their_key": "net.ipv4.ip_forward"}]


def test_systemd_default_globs_do_not_beat_our_later_dropin():
    files = {"/usr/lib/sysctl.d/50-default.conf": SYSTEMD_DEFAULT}
    assert sysctl.find_conflicts(files, DROPIN, DESIRED) == []


def test_an_earlier_dropin_loses_to_systemd_globs_and_exclusion():
    files = {"/usr/lib/sysctl.d/50-default.conf": SYSTEMD_DEFAULT}
    conflicts = sysctl.find_conflicts(files, "/etc/sysctl.d/10-zerotrust-cilium.conf", DESIRED)
    found = {(item["key"], item["theirs"], item["line"]) for item in conflicts}
    assert found == {
        # The value-less exclusion replaces our explicit assignment: the key is not set at all.
        ("net.ipv4.conf.all.rp_filter", None, 4),
        # The later, overlapping glob wins for Cilium's devices.
        ("net.ipv4.conf.lxc*.rp_filter", "2", 3),
        ("net.ipv4.conf.cilium_*.rp_filter", "2", 3),
    }


def test_explicit_key_beats_our_glob_whatever_the_order():
    files = {"/etc/sysctl.d/05-pin.conf": "net.ipv4.conf.lxc12ab.rp_filter = 1\n"}
    conflicts = sysctl.find_conflicts(files, DROPIN, DESIRED,
                                      existing_keys=["net.ipv4.conf.lxc12ab.rp_filter",
                                                     "net.ipv4.conf.eth0.rp_filter"])
    assert conflicts == [{"key": "net.ipv4.conf.lxc*.rp_filter", "ours": "0", "theirs": "1",
                          "file": "/etc/sysctl.d/05-pin.conf", "line": 1,
                          "their_key": "net.ipv4.conf.lxc12ab.rp_filter"}]


def test_procps_lets_a_later_glob_beat_an_explicit_key():
    files = {"/etc/sysctl.conf": "net.ipv4.conf.*.rp_filter = 1\n"}
    assert sysctl.find_conflicts(files, DROPIN, {"net.ipv4.conf.all.rp_filter": "0"}) == []
    conflicts = sysctl.find_conflicts(files, DROPIN, {"net.ipv4.conf.all.rp_filter": "0"}, applier="procps")
    assert [(item["file"], item["theirs"]) for item in conflicts] == [("/etc/sysctl.conf", "1")]


def test_same_value_in_a_later_file_is_not_a_conflict():
    files = {"/etc/sysctl.d/99-k8s.conf": "net.ipv4.ip_forward=1\nfs.inotify.max_user_watches = 524288\n"}
    assert sysctl.find_conflicts(files, DROPIN, DESIRED) == []


def test_shadowed_vendor_file_is_not_a_conflict():
    files = {
        "/usr/lib/sysctl.d/99-vendor.conf": "net.ipv4.ip_forward = 0\n",
        "/etc/sysctl.d/99-vendor.conf": "",  # the admin masks the vendor file
    }
    assert sysctl.find_conflicts(files, DROPIN, DESIRED) == []


def test_conflicts_reject_a_dropin_outside_sysctl_d():
    with pytest.raises(InvalidInput) as caught:
        sysctl.find_conflicts({}, "/etc/zerotrust.conf", DESIRED)
    assert str(caught.value).startswith("dropin_path: '/etc/zerotrust.conf' is not a *.conf file in one of: "
                                        "/etc/sysctl.d, ")


# --------------------------------------------------------------------------------------
# Read-back
# --------------------------------------------------------------------------------------

def test_compare_running():
    desired = {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.ip_local_port_range": "32768 60999",
        "net.netfilter.nf_conntrack_max": "262144",
        "net.ipv6.conf.all.forwarding": "1",
        "net.ipv4.conf.lxc*.rp_filter": "0",
        "kernel.unprivileged_bpf_disabled": "2",
    }
    running = {
        "net.ipv4.ip_forward": "1\n",
        "net.ipv4.ip_local_port_range": "32768\t60999\n",
        "net.netfilter.nf_conntrack_max": "65536",  # read-only in a container netns
        "net.ipv6.conf.all.forwarding": None,
        "net.ipv4.conf.lxc1.rp_filter": "0",
        "net.ipv4.conf.lxc2.rp_filter": "2",
        "net.ipv4.conf.eth0.rp_filter": "2",
        "kernel.unprivileged_bpf_disabled": "1",  # stricter and cannot be relaxed
    }
    result = sysctl.compare_running(desired, running, best_effort=["net.netfilter.nf_conntrack_max"])
    assert result["mismatched"] == [
        {"key": "net.ipv4.conf.lxc2.rp_filter", "desired": "0", "running": "2"},
        {"key": "net.ipv6.conf.all.forwarding", "desired": "1", "running": None},
    ]
    assert result["best_effort_unapplied"] == [
        {"key": "net.netfilter.nf_conntrack_max", "desired": "262144", "running": "65536"}]
    assert sorted(item["key"] for item in result["matched"]) == [
        "kernel.unprivileged_bpf_disabled", "net.ipv4.conf.lxc1.rp_filter", "net.ipv4.ip_forward",
        "net.ipv4.ip_local_port_range"]
    assert sysctl.mismatch_message(result) == (
        "net.ipv4.conf.lxc2.rp_filter: wanted '0', running '2'; "
        "net.ipv6.conf.all.forwarding: wanted '1', running <not readable>")


def test_compare_running_does_not_accept_a_weaker_value():
    result = sysctl.compare_running({"kernel.unprivileged_bpf_disabled": "1"},
                                    {"kernel.unprivileged_bpf_disabled": "2"})
    assert [item["key"] for item in result["mismatched"]] == ["kernel.unprivileged_bpf_disabled"]


def test_compare_running_against_this_kernel():
    # Values read straight from /proc/sys must compare equal to themselves after normalisation.
    keys = ["net.ipv4.ip_local_port_range", "net.ipv4.ip_forward"]
    running = {}
    for key in keys:
        with open(sysctl.key_to_path(key)) as handle:
            running[key] = handle.read()
    desired = {key: " ".join(running[key].split()) for key in keys}
    assert " " in desired["net.ipv4.ip_local_port_range"]
    result = sysctl.compare_running(desired, running)
    assert result["mismatched"] == [] and len(result["matched"]) == 2


# --------------------------------------------------------------------------------------
# The role's view: settings -> plan, origins, read-back messages, conflict sentences
# --------------------------------------------------------------------------------------

def test_plan_from_settings_adds_best_effort():
    plan = sysctl.plan_from_settings({
        "conntrack_max": 262144, "conntrack_buckets": 262144, "unprivileged_bpf_disabled": 2,
        "overrides": {"net.core.somaxconn": 4096},
        "best_effort": ["net/netfilter/nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"],
    })
    assert plan["best_effort"] == ["net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"]
    assert plan["sysctls"]["net.core.somaxconn"] == "4096"
    assert plan["sysctls"]["kernel.unprivileged_bpf_disabled"] == "2"
    assert plan["origins"]["net.netfilter.nf_conntrack_buckets"] == "node_tuning_conntrack_buckets"
    assert sysctl.plan_from_settings({}) == dict(sysctl.plan_sysctls(), best_effort=[])


BAD_SETTINGS = [
    ("not-a-mapping", ["conntrack_max"],
     "settings: ['conntrack_max'] must be a mapping with keys among: " + ", ".join(sysctl.PLAN_SETTINGS)),
    ("unknown-setting", {"conntrack": 1, "ipv4": True},
     "settings: ['conntrack', 'ipv4'] are not among: " + ", ".join(sysctl.PLAN_SETTINGS)),
    ("boolean-number", {"inotify_max_user_instances": True},
     "node_tuning_inotify_max_user_instances: True must be a positive integer"),
    ("text-value", {"overrides": {"net.core.somaxconn": "lots"}},
     "node_tuning_sysctl_overrides[net.core.somaxconn]: 'lots' is not an integer or space-separated integers"),
    ("float-value", {"overrides": {"net.core.somaxconn": 4096.5}},
     "node_tuning_sysctl_overrides[net.core.somaxconn]: 4096.5 is a float; sysctl values are integers"),
    ("best-effort-not-planned", {"best_effort": ["vm.swappiness"]},
     "node_tuning_sysctl_best_effort[0]: 'vm.swappiness' is not in the planned sysctls"),
    ("best-effort-string", {"best_effort": "net.netfilter.nf_conntrack_max"},
     "node_tuning_sysctl_best_effort: 'net.netfilter.nf_conntrack_max' must be a list of sysctl names"),
]


@pytest.mark.parametrize("case, settings, message", BAD_SETTINGS, ids=[case[0] for case in BAD_SETTINGS])
def test_plan_from_settings_rejects(case, settings, message):
    with pytest.raises(InvalidInput) as caught:
        sysctl.plan_from_settings(settings)
    assert str(caught.value) == message


def test_origin_of_finds_exact_then_glob_entries():
    origins = sysctl.plan_sysctls(conntrack_max=65536)["origins"]
    assert sysctl.origin_of("net.netfilter.nf_conntrack_max", origins) == "node_tuning_conntrack_max"
    assert sysctl.origin_of("net.ipv4.conf.lxc9f.rp_filter", origins) == "node_tuning_relax_rp_filter"
    assert sysctl.origin_of("vm.swappiness", origins) is None


def test_readback_names_key_values_and_variable():
    plan = sysctl.plan_from_settings({"conntrack_max": 300000, "conntrack_buckets": 262144,
                                      "best_effort": ["net.netfilter.nf_conntrack_buckets"]})
    running = {key: value for key, value in plan["sysctls"].items() if not sysctl.is_glob(key)}
    running.update({
        # Read-only in a container network namespace: sysctl -w exits 0, the value stays.
        "net.netfilter.nf_conntrack_max": "262144",
        "net.netfilter.nf_conntrack_buckets": "65536",
        "net.ipv4.conf.lxc1.rp_filter": "2",
    })
    result = sysctl.readback(plan, running)
    assert result["message"] == (
        "net.ipv4.conf.lxc1.rp_filter: wanted '0', running '2' (set by node_tuning_relax_rp_filter); "
        "net.netfilter.nf_conntrack_max: wanted '300000', running '262144' (set by node_tuning_conntrack_max)")
    assert [item["key"] for item in result["best_effort_unapplied"]] == ["net.netfilter.nf_conntrack_buckets"]
    assert "net.ipv4.ip_forward = 1" in result["lines"]
    assert "net.netfilter.nf_conntrack_buckets = 65536 (best effort: wanted 262144, the node did not take it)" \
        in result["lines"]
    assert "net.netfilter.nf_conntrack_max = 262144 (wanted 300000)" in result["lines"]
    assert "net.ipv4.conf.cilium_*.rp_filter = 0 (no device matches yet)" in result["lines"]
    assert not any(line.startswith("net.ipv4.conf.lxc*") for line in result["lines"])
    assert result["lines"] == sorted(result["lines"])
    assert len(result["lines"]) == len(result["matched"]) + 4


def test_readback_lines_for_absent_and_unreadable_keys():
    plan = sysctl.plan_from_settings({"conntrack_max": 65536, "relax_rp_filter": False, "ipv6": False,
                                      "best_effort": ["net.netfilter.nf_conntrack_max"]})
    running = dict(plan["sysctls"])
    running["net.netfilter.nf_conntrack_max"] = None
    running["fs.inotify.max_user_watches"] = None
    result = sysctl.readback(plan, running)
    assert "net.netfilter.nf_conntrack_max: not on this node (best effort: wanted 65536)" in result["lines"]
    assert "fs.inotify.max_user_watches = <not readable> (wanted 524288)" in result["lines"]
    assert result["message"] == ("fs.inotify.max_user_watches: wanted '524288', running <not readable> "
                                 "(set by node_tuning_inotify_max_user_watches)")


def test_readback_of_a_matching_node_has_no_message():
    plan = sysctl.plan_from_settings({"relax_rp_filter": False})
    result = sysctl.readback(plan, dict(plan["sysctls"]))
    assert result["message"] == "" and result["mismatched"] == []


def test_describe_conflict_names_file_line_and_both_values():
    files = {"/etc/sysctl.d/99-hardening.conf": "# CIS\nkernel.randomize_va_space = 2\nnet.ipv4.ip_forward = 0\n"}
    conflicts = sysctl.find_conflicts(files, DROPIN, DESIRED)
    assert sysctl.describe_conflict(conflicts[0], DROPIN) == (
        "/etc/sysctl.d/99-hardening.conf line 3 sets net.ipv4.ip_forward = 0, which wins over "
        "net.ipv4.ip_forward = 1 from /etc/sysctl.d/90-zerotrust-cilium.conf")


def test_describe_conflict_for_an_exclusion():
    files = {"/usr/lib/sysctl.d/50-default.conf": SYSTEMD_DEFAULT}
    dropin = "/etc/sysctl.d/10-zerotrust-cilium.conf"
    conflicts = sysctl.find_conflicts(files, dropin, DESIRED)
    exclusion = [item for item in conflicts if item["theirs"] is None][0]
    assert sysctl.describe_conflict(exclusion, dropin) == (
        "/usr/lib/sysctl.d/50-default.conf line 4 excludes net.ipv4.conf.all.rp_filter "
        "('-net.ipv4.conf.all.rp_filter' without a value), so net.ipv4.conf.all.rp_filter = 0 from "
        "/etc/sysctl.d/10-zerotrust-cilium.conf is not applied")


def test_plan_from_dropin_reads_back_what_render_dropin_wrote():
    plan = sysctl.plan_from_settings({"conntrack_max": 262144, "conntrack_buckets": 65536,
                                      "best_effort": ["net.netfilter.nf_conntrack_max"]})
    text = sysctl.render_dropin(plan["sysctls"], plan["best_effort"])
    read = sysctl.plan_from_dropin(text, "/etc/sysctl.d/90-zerotrust-cilium.conf")
    assert read["sysctls"] == {key: " ".join(str(value).split()) for key, value in plan["sysctls"].items()}
    assert read["best_effort"] == ["net.netfilter.nf_conntrack_max"]
    assert read["origins"]["net.ipv4.ip_forward"].startswith("/etc/sysctl.d/90-zerotrust-cilium.conf line ")


def test_plan_from_dropin_leaves_out_exclusions_and_glob_prefixes():
    text = "# c\n-net.ipv4.conf.lxc*.rp_filter = 0\n-net.ipv4.conf.eth9.rp_filter\nnet.ipv4.ip_forward=1\n"
    read = sysctl.plan_from_dropin(text, "/x.conf")
    assert read == {"sysctls": {"net.ipv4.conf.lxc*.rp_filter": "0", "net.ipv4.ip_forward": "1"},
                    "origins": {"net.ipv4.conf.lxc*.rp_filter": "/x.conf line 2", "net.ipv4.ip_forward": "/x.conf line 4"},
                    "best_effort": []}


def test_plan_from_dropin_refuses_what_is_not_text():
    with pytest.raises(InvalidInput, match=r"^dropin: None must be the text of a sysctl.d file"):
        sysctl.plan_from_dropin(None, "/x.conf")
