# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/mtu_probe.py: ping output, the search, the classification.

The ping outputs marked "captured" were recorded on this project's lab nodes (Debian 12,
iputils 20221126) with the overlay of playbooks/tasks/lab_overlay.yml; the others are
written from the format strings in the iputils releases named on each case.  The search
runs against ``FakePath``, a network with a path MTU and a chosen behaviour above it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.zerotrust.cilium.plugins.module_utils import mtu_probe
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.mtu_probe import ProbeOutcome

# --------------------------------------------------------------------------------------
# ping output
# --------------------------------------------------------------------------------------

STATS_LOST = "\n--- 10.42.21.10 ping statistics ---\n1 packets transmitted, 0 received, 100% packet loss, time 0ms\n"
STATS_ERROR = ("\n--- 10.42.21.10 ping statistics ---\n"
               "1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms\n")

PING_CASES = [
    # captured: 1422-byte payload over the lab overlay with the computed MTU (1450).
    ("answer-iputils-20221126", 0,
     "PING 10.42.21.10 (10.42.21.10) 1422(1450) bytes of data.\n"
     "1430 bytes from 10.42.21.10: icmp_seq=1 ttl=62 time=0.658 ms\n\n"
     "--- 10.42.21.10 ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
     "rtt min/avg/max/mdev = 0.658/0.658/0.658/0.000 ms\n", "",
     ProbeOutcome("answer", detail="1430 bytes from 10.42.21.10: icmp_seq=1 ttl=62 time=0.658 ms")),
    # captured: one byte more than the pod's veth MTU; iputils writes the error to stderr.
    ("local-emsgsize-iputils-20221126", 1,
     "PING 10.42.22.10 (10.42.22.10) 1423(1451) bytes of data.\n" + STATS_ERROR,
     "ping: local error: message too long, mtu=1450\n",
     ProbeOutcome("refused", mtu=1450, source="local",
                  detail="ping: local error: message too long, mtu=1450")),
    # iputils 20180629 (RHEL 8) capitalises strerror's text.
    ("local-emsgsize-iputils-20180629", 1, "PING 10.0.0.2 (10.0.0.2) 1473(1501) bytes of data.\n" + STATS_ERROR,
     "ping: local error: Message too long, mtu=1500\n",
     ProbeOutcome("refused", mtu=1500, source="local", detail="ping: local error: Message too long, mtu=1500")),
    # captured (IPv6, ping6_common.c): "mtu: N" instead of "mtu=N".
    ("local-emsgsize-ipv6", 1, "PING ::1(::1) 70000 data bytes\n" + STATS_ERROR,
     "ping: local error: message too long, mtu: 65536\n",
     ProbeOutcome("refused", mtu=65536, source="local", detail="ping: local error: message too long, mtu: 65536")),
    # sendmsg() failing before anything is queued: no MTU in the message.
    ("sendmsg-emsgsize", 1, "PING 10.0.0.2 (10.0.0.2) 1473(1501) bytes of data.\n" + STATS_ERROR,
     "ping: sendmsg: Message too long\n",
     ProbeOutcome("refused", source="local", detail="ping: sendmsg: Message too long")),
    # captured: pod MTU 1500, VXLAN device 1450: the node answers "fragmentation needed".
    ("remote-frag-needed", 1,
     "PING 10.42.21.10 (10.42.21.10) 1472(1500) bytes of data.\n"
     "From 10.42.11.1 icmp_seq=1 Frag needed and DF set (mtu = 1450)\n" + STATS_ERROR, "",
     ProbeOutcome("refused", mtu=1450, source="10.42.11.1",
                  detail="From 10.42.11.1 icmp_seq=1 Frag needed and DF set (mtu = 1450)")),
    # without -n iputils prints the router's name and its address in brackets.
    ("remote-frag-needed-with-name", 1,
     "From gw.example.net (192.0.2.1) icmp_seq=1 Frag needed and DF set (mtu = 1400)\n" + STATS_ERROR, "",
     ProbeOutcome("refused", mtu=1400, source="192.0.2.1",
                  detail="From gw.example.net (192.0.2.1) icmp_seq=1 Frag needed and DF set (mtu = 1400)")),
    # ICMPv6 packet too big (iputils ping6_common.c print_icmp: "Packet too big: mtu=%u").
    ("remote-packet-too-big-ipv6", 1,
     "PING 2001:db8::2(2001:db8::2) 1452 data bytes\n"
     "From 2001:db8::1 icmp_seq=1 Packet too big: mtu=1400\n" + STATS_ERROR, "",
     ProbeOutcome("refused", mtu=1400, source="2001:db8::1",
                  detail="From 2001:db8::1 icmp_seq=1 Packet too big: mtu=1400")),
    # captured: pod MTU 1500 over the 1500 underlay with fragments dropped: nothing at all.
    ("timeout", 1, "PING 10.42.21.10 (10.42.21.10) 1472(1500) bytes of data.\n" + STATS_LOST, "",
     ProbeOutcome("timeout", detail="1 packets transmitted, 0 received, 100% packet loss, time 0ms")),
    ("timeout-no-output", 1, "", "", ProbeOutcome("timeout", detail="no reply")),
    ("host-unreachable", 1,
     "PING 10.0.0.9 (10.0.0.9) 56(84) bytes of data.\n"
     "From 10.0.0.1 icmp_seq=1 Destination Host Unreachable\n" + STATS_ERROR, "",
     ProbeOutcome("error", source="10.0.0.1", detail="From 10.0.0.1 icmp_seq=1 Destination Host Unreachable")),
    ("network-unreachable", 2, "", "ping: connect: Network is unreachable\n",
     ProbeOutcome("error", source="local", detail="ping: connect: Network is unreachable")),
    ("unexpected-exit", 2, "", "", ProbeOutcome("error", detail="exit status 2")),
]


@pytest.mark.parametrize("returncode, stdout, stderr, expected",
                         [case[1:] for case in PING_CASES], ids=[case[0] for case in PING_CASES])
def test_parse_ping(returncode, stdout, stderr, expected):
    assert mtu_probe.parse_ping(returncode, stdout, stderr) == expected


@pytest.mark.parametrize("version_output, flavour", [
    ("ping from iputils 20221126\nlibcap: yes, IDN: yes, NLS: no", "iputils"),   # Debian 12 (captured)
    ("ping utility, iputils-s20180629", "iputils"),                              # RHEL 8
    ("ping: invalid option -- 'V'\nBusyBox v1.36.1 (2023-06-02) multi-call binary.", "busybox"),
    ("ping (GNU inetutils) 2.4", "inetutils"),
    ("", "unknown"),
])
def test_ping_flavour(version_output, flavour):
    assert mtu_probe.ping_flavour(version_output) == flavour


def test_ping_command_sends_one_df_probe_of_the_ip_size():
    assert mtu_probe.ping_command("10.42.21.10", 1450, "ipv4", 1) == [
        "ping", "-4", "-n", "-M", "do", "-c", "1", "-W", "1", "-s", "1422", "10.42.21.10"]
    assert mtu_probe.ping_command("2001:db8::2", 1500, "ipv6", 0.5, netns="zt-pod") == [
        "ip", "netns", "exec", "zt-pod",
        "ping", "-6", "-n", "-M", "do", "-c", "1", "-W", "0.5", "-s", "1452", "2001:db8::2"]


def test_payload_sizes_match_the_guide():
    # Source guide: "Verify with ping -M do -s 1472" fills a 1500 MTU; 1450 needs 1422.
    assert mtu_probe.payload_size(1500, "ipv4") == 1472
    assert mtu_probe.payload_size(1450, "ipv4") == 1422
    assert mtu_probe.payload_size(1500, "ipv6") == 1452


# --------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------

class FakePath:
    """A network path: sizes up to ``path_mtu`` are answered, larger ones get ``above``.

    ``above`` is ``refused_local`` (EMSGSIZE with the local MTU), ``refused_router`` (ICMP
    frag needed from 10.0.0.1), ``timeout`` (a black hole) or ``error``.  ``local_mtu``
    refuses larger sizes locally before anything else.  ``lose`` lists sizes whose first
    probe is lost (a flaky path), ``dead`` makes every size time out.
    """

    def __init__(self, path_mtu, above="timeout", local_mtu=None, lose=(), dead=False):
        self.path_mtu = path_mtu
        self.above = above
        self.local_mtu = local_mtu
        self.lose = set(lose)
        self.dead = dead
        self.sent = []

    def __call__(self, size):
        self.sent.append(size)
        if self.local_mtu is not None and size > self.local_mtu:
            return ProbeOutcome("refused", mtu=self.local_mtu, source="local", detail="local error")
        if self.dead:
            return ProbeOutcome("timeout", detail="no reply")
        if size in self.lose:
            self.lose.discard(size)
            return ProbeOutcome("timeout", detail="lost once")
        if size <= self.path_mtu:
            return ProbeOutcome("answer", detail="%d bytes from" % (size - 20))
        if self.above == "refused_local":
            return ProbeOutcome("refused", mtu=self.path_mtu, source="local", detail="local error")
        if self.above == "refused_router":
            return ProbeOutcome("refused", mtu=self.path_mtu, source="10.0.0.1", detail="Frag needed")
        if self.above == "error":
            return ProbeOutcome("error", source="10.0.0.1", detail="Packet filtered")
        return ProbeOutcome("timeout", detail="no reply")


def test_ok_path_needs_one_probe():
    path = FakePath(1450)
    result = mtu_probe.probe_path(path, 1450)
    assert result["status"] == "ok"
    assert result["path_mtu"] == 1450
    assert result["fix_mtu"] is None
    assert path.sent == [1450]
    assert [probe["payload"] for probe in result["probes"]] == [1422]


def test_one_byte_more_is_refused_locally_and_found_in_three_probes():
    # The lab with the computed MTU: the pod's veth has 1450, the probe expects 1451.
    path = FakePath(1450, local_mtu=1450)
    result = mtu_probe.probe_path(path, 1451)
    assert result["status"] == "refused_locally"
    assert (result["path_mtu"], result["refused_from"], result["reported_mtu"], result["refused_by"]) == (
        1450, 1451, 1450, "local")
    assert result["black_hole_from"] is None
    # expected size, family minimum, then the MTU the error named.
    assert path.sent == [1451, 68, 1450]


def test_router_frag_needed_counts_as_refused():
    path = FakePath(1400, above="refused_router")
    result = mtu_probe.probe_path(path, 1500)
    assert result["status"] == "refused_locally"
    assert (result["path_mtu"], result["refused_from"], result["refused_by"]) == (1400, 1401, "10.0.0.1")
    assert path.sent == [1500, 68, 1400, 1401]


def test_black_hole_names_the_first_lost_size():
    # Pod MTU 1500 over a 1500 underlay with VXLAN: 1450 + 50 fits, 1451 + 50 does not.
    path = FakePath(1450)
    result = mtu_probe.probe_path(path, 1500, retries=1)
    assert result["status"] == "black_hole"
    assert (result["path_mtu"], result["black_hole_from"], result["fix_mtu"]) == (1450, 1451, 1450)
    # Every lost size was tried twice (retries=1), every answered size once.
    lost = [size for size in path.sent if size > 1450]
    assert lost and all(lost.count(size) == 2 for size in lost)
    assert all(path.sent.count(size) == 1 for size in path.sent if size <= 1450)
    assert mtu_probe.describe(result) == (
        "DF packets from 1451 bytes are lost silently (black hole); 1450 gets through; an MTU of 1450 fixes it")


def test_a_single_lost_packet_is_not_a_black_hole():
    path = FakePath(1500, lose=[1500])
    result = mtu_probe.probe_path(path, 1500, retries=1)
    assert result["status"] == "ok"
    assert [probe["outcome"] for probe in result["probes"]] == ["timeout", "answer"]


def test_without_retries_a_lost_packet_is_taken_at_its_word():
    path = FakePath(1500, lose=[1500])
    result = mtu_probe.probe_path(path, 1500, retries=0)
    assert result["status"] == "black_hole"
    assert result["black_hole_from"] == 1500


def test_nothing_answers_is_unreachable():
    path = FakePath(1500, dead=True)
    result = mtu_probe.probe_path(path, 1450, retries=0)
    assert result["status"] == "unreachable"
    assert result["path_mtu"] is None
    assert path.sent == [1450, 68]
    assert mtu_probe.describe(result) == "no answer even to a 68-byte probe: no reply"


def test_other_errors_at_the_boundary_are_unreachable_with_the_reason():
    path = FakePath(1400, above="error")
    result = mtu_probe.probe_path(path, 1500)
    assert result["status"] == "unreachable"
    assert result["path_mtu"] == 1400
    assert mtu_probe.describe(result) == "DF packets from 1401 bytes fail: Packet filtered"


def test_ipv6_searches_from_1280():
    path = FakePath(1430)
    result = mtu_probe.probe_path(path, 1500, family="ipv6", retries=0)
    assert result["status"] == "black_hole"
    assert result["black_hole_from"] == 1431
    assert min(path.sent) == 1280
    assert result["probes"][0]["payload"] == 1452


def test_expected_at_the_minimum():
    path = FakePath(1280)
    assert mtu_probe.probe_path(path, 1280, family="ipv6")["status"] == "ok"


def test_send_must_return_an_outcome():
    with pytest.raises(TypeError, match="not a ProbeOutcome"):
        mtu_probe.probe_path(lambda size: "answer", 1500)


@settings(max_examples=300, deadline=None)
@given(expected=st.integers(min_value=69, max_value=9000), data=st.data(),
       above=st.sampled_from(["timeout", "refused_local", "refused_router", "error"]))
def test_search_finds_every_path_mtu(expected, data, above):
    path_mtu = data.draw(st.integers(min_value=68, max_value=expected - 1))
    path = FakePath(path_mtu, above=above)
    result = mtu_probe.probe_path(path, expected, retries=0)
    assert result["path_mtu"] == path_mtu
    status = {"timeout": "black_hole", "refused_local": "refused_locally",
              "refused_router": "refused_locally", "error": "unreachable"}[above]
    assert result["status"] == status
    if status == "black_hole":
        assert result["black_hole_from"] == path_mtu + 1
    # A bisection: expected, minimum, then at most ceil(log2(range)) sizes.
    assert len(path.sent) <= 2 + math.ceil(math.log2(expected - 68))
    if above.startswith("refused"):
        # The MTU in the error ends the search at once.
        assert len(path.sent) <= 4


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

def test_normalise_targets():
    assert mtu_probe.normalise_targets(["10.42.21.10", {"name": "w2", "address": " 10.42.22.10 "},
                                        {"address": "node-3.example"}]) == [
        {"name": "10.42.21.10", "address": "10.42.21.10"},
        {"name": "w2", "address": "10.42.22.10"},
        {"name": "node-3.example", "address": "node-3.example"},
    ]


BAD_TARGETS = [
    ([], "mtu_probe: targets: [] must be a non-empty list"),
    ("10.0.0.1", "mtu_probe: targets: '10.0.0.1' must be a non-empty list"),
    ([{"name": "a"}], "mtu_probe: targets[0]: {'name': 'a'} has no address"),
    ([{"address": "10.0.0.1", "port": 1}], "mtu_probe: targets[0]: {'address': '10.0.0.1', 'port': 1} has "
                                           "unknown keys port; accepted: name, address"),
    (["10.0.0.1 10.0.0.2"], "mtu_probe: targets[0]: '10.0.0.1 10.0.0.2' is neither an IP address nor a host name"),
    ([{"name": "", "address": "10.0.0.1"}], "mtu_probe: targets[0]: {'name': '', 'address': '10.0.0.1'} has an "
                                            "empty name"),
    ([{"name": "a", "address": "10.0.0.1"}, {"name": "a", "address": "10.0.0.2"}],
     "mtu_probe: targets: ['a'] are named more than once"),
]


@pytest.mark.parametrize("targets, message", BAD_TARGETS)
def test_bad_targets(targets, message):
    with pytest.raises(InvalidInput) as error:
        mtu_probe.normalise_targets(targets)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("value, family, message", [
    (True, "ipv4", "mtu_probe: expected_mtu: True is not a whole number"),
    ("15OO", "ipv4", "mtu_probe: expected_mtu: '15OO' is not a whole number"),
    (67, "ipv4", "mtu_probe: expected_mtu: 67 is out of range for ipv4: give the MTU the sender uses, 68 to 65535"),
    (1279, "ipv6", "mtu_probe: expected_mtu: 1279 is out of range for ipv6: give the MTU the sender uses, "
                   "1280 to 65575"),
    (70000, "ipv4", "mtu_probe: expected_mtu: 70000 is out of range for ipv4"),
])
def test_bad_expected_mtu(value, family, message):
    with pytest.raises(InvalidInput) as error:
        mtu_probe.validate_expected_mtu(value, family)
    assert str(error.value).startswith(message)


def test_expected_mtu_accepts_digit_strings():
    assert mtu_probe.validate_expected_mtu("1450", "ipv4") == 1450


def test_bad_family_and_retries():
    with pytest.raises(InvalidInput, match=r"family: 'ipx' is not one of: ipv4, ipv6"):
        mtu_probe.probe_path(FakePath(1500), 1500, family="ipx")
    with pytest.raises(InvalidInput, match=r"retries: 'x' is not a whole number"):
        mtu_probe.probe_path(FakePath(1500), 1500, retries="x")


def test_address_family():
    assert mtu_probe.address_family("10.42.21.10") == "ipv4"
    assert mtu_probe.address_family("fd00::10") == "ipv6"
    assert mtu_probe.address_family("zt-lab-w1") is None


def test_summarise_counts_statuses_and_takes_the_smallest_path_mtu():
    results = [
        mtu_probe.probe_path(FakePath(1450), 1450),
        mtu_probe.probe_path(FakePath(1400), 1450, retries=0),
        mtu_probe.probe_path(FakePath(1500, dead=True), 1450, retries=0),
    ]
    counts, smallest = mtu_probe.summarise(results)
    assert counts == {"ok": 1, "refused_locally": 0, "black_hole": 1, "unreachable": 1}
    assert smallest == 1400
    assert mtu_probe.summarise([results[2]]) == (
        {"ok": 0, "refused_locally": 0, "black_hole": 0, "unreachable": 1}, None)


def test_describe_refused():
    result = mtu_probe.probe_path(FakePath(1450, local_mtu=1450), 1451)
    assert mtu_probe.describe(result) == (
        "DF packets from 1451 bytes are refused by the local kernel (mtu=1450); path MTU 1450 is known to the "
        "sender, nothing is lost silently")
    assert mtu_probe.describe(mtu_probe.probe_path(FakePath(1450), 1450)) == "1450-byte DF packets get an answer"


def test_unknown_outcome_kind_is_refused():
    with pytest.raises(ValueError, match="unknown probe outcome 'lost'"):
        ProbeOutcome("lost")
