# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/mtu_probe.py: main() with ansible-core's
``patch_module_args`` against a fake ping (iputils output for a path of a chosen MTU),
missing or unsuitable tools, a missing namespace, bad input, and one real ping over this
machine's loopback."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil
import subprocess

import pytest

from ansible.module_utils.basic import AnsibleModule

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.modules import mtu_probe

IPUTILS_VERSION = "ping from iputils 20221126\nlibcap: yes, IDN: yes, NLS: no, error.h: yes\n"
BUSYBOX_VERSION = "ping: invalid option -- 'V'\nBusyBox v1.36.1 (2023-06-02) multi-call binary.\n"


class FakeNetwork:
    """Answers ``ping`` like iputils would for paths with the given MTUs.

    ``paths`` maps an address to (path MTU, what happens above it: ``timeout`` or
    ``refused``); addresses not listed get no answer at all.  Every argv is recorded.
    """

    def __init__(self, paths, version_output=IPUTILS_VERSION):
        self.paths = paths
        self.version_output = version_output
        self.commands = []

    def run_command(self, args, **kwargs):
        self.commands.append(list(args))
        if args[-1] == "-V":
            return 0, self.version_output, ""
        address = args[-1]
        payload = int(args[args.index("-s") + 1])
        size = payload + (28 if "-4" in args else 48)
        header = "PING %s (%s) %d(%d) bytes of data.\n" % (address, address, payload, size)
        lost = "\n--- %s ping statistics ---\n1 packets transmitted, 0 received, 100%% packet loss, time 0ms\n" % address
        errors = ("\n--- %s ping statistics ---\n1 packets transmitted, 0 received, +1 errors, 100%% packet loss, "
                  "time 0ms\n" % address)
        if address not in self.paths:
            return 1, header + lost, ""
        path_mtu, above = self.paths[address]
        if size <= path_mtu:
            return 0, (header + "%d bytes from %s: icmp_seq=1 ttl=62 time=0.1 ms\n" % (size - 20, address)
                       + "\n--- %s ping statistics ---\n1 packets transmitted, 1 received, 0%% packet loss, "
                         "time 0ms\n" % address), ""
        if above == "refused":
            return 1, header + errors, "ping: local error: message too long, mtu=%d\n" % path_mtu
        return 1, header + lost, ""


@pytest.fixture
def fake_node(monkeypatch, tmp_path):
    """A node with iputils ping and ip, a network namespace 'zt-pod', and a fake network."""
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    (netns_dir / "zt-pod").write_text("")
    monkeypatch.setattr(mtu_probe, "NETNS_DIR", str(netns_dir))
    tools = {"ping": "/usr/bin/ping", "ip": "/usr/sbin/ip"}
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda module, name, *a, **k: tools.get(name))
    network = FakeNetwork({
        "10.42.21.10": (1450, "timeout"),
        "10.42.22.10": (1450, "refused"),
        "10.42.23.10": (9000, "timeout"),
    })
    monkeypatch.setattr(AnsibleModule, "run_command",
                        lambda module, args, **kwargs: network.run_command(args, **kwargs))
    network.tools = tools
    return network


def run_main(capsys, args):
    return run_module(mtu_probe, capsys, args)


def test_all_paths_ok_in_check_mode(fake_node, capsys):
    code, result = run_main(capsys, {
        "_ansible_check_mode": True, "netns": "zt-pod", "expected_mtu": 1450,
        "targets": [{"name": "w1", "address": "10.42.21.10"}, {"name": "w2", "address": "10.42.22.10"}],
    })
    assert code == 0, result
    assert result["changed"] is False
    assert (result["expected_mtu"], result["path_mtu"], result["netns"]) == (1450, 1450, "zt-pod")
    assert result["statuses"] == {"ok": 2, "refused_locally": 0, "black_hole": 0, "unreachable": 0}
    assert [(r["name"], r["status"], r["path_mtu"]) for r in result["results"]] == [
        ("w1", "ok", 1450), ("w2", "ok", 1450)]
    probes = [command for command in fake_node.commands if command[-1] != "-V"]
    assert sorted(probes) == sorted([
        ["ip", "netns", "exec", "zt-pod", "/usr/bin/ping", "-4", "-n", "-M", "do", "-c", "1", "-W", "1",
         "-s", "1422", address] for address in ("10.42.21.10", "10.42.22.10")])


def test_black_hole_fails_by_default_and_still_returns_the_results(fake_node, capsys):
    code, result = run_main(capsys, {
        "expected_mtu": 1500, "timeout": 0.2, "retries": 0,
        "targets": ["10.42.21.10", {"name": "w2", "address": "10.42.22.10"}],
    })
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == (
        "mtu_probe: black_hole 10.42.21.10 (10.42.21.10): DF packets from 1451 bytes are lost silently "
        "(black hole); 1450 gets through; an MTU of 1450 fixes it")
    by_name = {r["name"]: r for r in result["results"]}
    assert by_name["10.42.21.10"]["black_hole_from"] == 1451
    assert by_name["w2"]["status"] == "refused_locally"
    assert by_name["w2"]["refused_from"] == 1451
    assert result["path_mtu"] == 1450
    assert "-W" in fake_node.commands[-1] and "0.2" in fake_node.commands[-1]


def test_fail_on_empty_only_reports(fake_node, capsys):
    code, result = run_main(capsys, {
        "expected_mtu": 1500, "retries": 0, "fail_on": [],
        "targets": ["10.42.21.10", "10.42.99.10"],
    })
    assert code == 0
    assert [r["status"] for r in result["results"]] == ["black_hole", "unreachable"]
    assert result["results"][1]["path_mtu"] is None
    assert result["statuses"]["unreachable"] == 1


def test_fail_on_refused_locally(fake_node, capsys):
    code, result = run_main(capsys, {
        "expected_mtu": 1451, "fail_on": ["refused_locally"], "targets": ["10.42.22.10"],
    })
    assert code == 1
    assert result["msg"].startswith("mtu_probe: refused_locally 10.42.22.10 (10.42.22.10): DF packets from "
                                    "1451 bytes are refused by the local kernel (mtu=1450)")


def test_jumbo_path(fake_node, capsys):
    code, result = run_main(capsys, {"expected_mtu": 9000, "targets": ["10.42.23.10"]})
    assert code == 0
    assert result["results"][0]["probes"][0]["payload"] == 8972


def test_missing_ping_says_which_package(fake_node, capsys):
    del fake_node.tools["ping"]
    code, result = run_main(capsys, {"expected_mtu": 1500, "targets": ["10.42.21.10"]})
    assert code == 1
    assert "needs ping from iputils" in result["msg"]
    assert "iputils-ping on Debian and Ubuntu, iputils on RHEL, Fedora and SUSE" in result["msg"]


def test_busybox_ping_is_refused(fake_node, capsys):
    fake_node.version_output = BUSYBOX_VERSION
    code, result = run_main(capsys, {"expected_mtu": 1500, "targets": ["10.42.21.10"]})
    assert code == 1
    assert result["msg"] == (
        "mtu_probe: /usr/bin/ping is busybox ping, which cannot set the don't-fragment bit (-M do); install "
        "iputils-ping on Debian and Ubuntu, iputils on RHEL, Fedora and SUSE")


def test_unknown_ping_is_refused(fake_node, capsys):
    fake_node.version_output = "something else"
    code, result = run_main(capsys, {"expected_mtu": 1500, "targets": ["10.42.21.10"]})
    assert code == 1
    assert "is not iputils ping ('ping -V' said 'something else')" in result["msg"]


def test_missing_ip_with_netns(fake_node, capsys):
    del fake_node.tools["ip"]
    code, result = run_main(capsys, {"expected_mtu": 1500, "netns": "zt-pod", "targets": ["10.42.21.10"]})
    assert code == 1
    assert "netns 'zt-pod' needs the ip command from iproute2" in result["msg"]


def test_missing_netns_lists_the_existing_ones(fake_node, capsys):
    code, result = run_main(capsys, {"expected_mtu": 1500, "netns": "zt-pdo", "targets": ["10.42.21.10"]})
    assert code == 1
    assert result["msg"].startswith("mtu_probe: netns: 'zt-pdo' does not exist on ")
    assert result["msg"].endswith("(ip netns list: zt-pod)")


@pytest.mark.parametrize("args, message", [
    ({"expected_mtu": 1500, "targets": []}, "mtu_probe: targets: [] must be a non-empty list"),
    ({"expected_mtu": 40, "targets": ["10.42.21.10"]}, "mtu_probe: expected_mtu: 40 is out of range for ipv4"),
    ({"expected_mtu": 1500, "timeout": 0, "targets": ["10.42.21.10"]},
     "mtu_probe: timeout: 0.0 is out of range: give 0.1 to 60 seconds"),
    ({"expected_mtu": 1500, "retries": 11, "targets": ["10.42.21.10"]},
     "mtu_probe: retries: 11 is out of range: give 0 to 10"),
    ({"expected_mtu": 1500, "family": "ipv6", "targets": ["10.42.21.10"]},
     "mtu_probe: targets: '10.42.21.10' is an ipv4 address but family is ipv6"),
    ({"expected_mtu": 1500, "netns": "../x", "targets": ["10.42.21.10"]},
     "mtu_probe: netns: '../x' is not a network namespace name"),
    ({"expected_mtu": 1500, "targets": ["no-such-host.invalid"]},
     "mtu_probe: targets: 'no-such-host.invalid' cannot be resolved"),
])
def test_bad_input_fails_with_the_field_named(fake_node, capsys, args, message):
    code, result = run_main(capsys, args)
    assert code == 1
    assert result["msg"].startswith(message), result["msg"]
    assert "Traceback" not in result["msg"]


def test_fail_on_choices_are_checked(fake_node, capsys):
    code, result = run_main(capsys, {"expected_mtu": 1500, "targets": ["10.42.21.10"], "fail_on": ["blackhole"]})
    assert code == 1
    assert "fail_on" in result["msg"] and "blackhole" in result["msg"]


def _real_iputils_ping():
    ping = shutil.which("ping")
    if ping is None:
        return False
    version = subprocess.run([ping, "-V"], capture_output=True, text=True, check=False)
    return "iputils" in version.stdout + version.stderr


def test_real_ping_over_loopback(capsys):
    # bindep.txt and lab/ensure-host.sh install iputils-ping on the test machine: a missing
    # ping is a broken set-up, not a reason to skip.
    assert _real_iputils_ping(), "iputils ping is needed on the test machine (package iputils-ping)"
    code, result = run_main(capsys, {"expected_mtu": 1500, "timeout": 1,
                                     "targets": [{"name": "loopback", "address": "127.0.0.1"}, "localhost"]})
    assert code == 0, result
    assert [(r["name"], r["status"], r["path_mtu"]) for r in result["results"]] == [
        ("loopback", "ok", 1500), ("localhost", "ok", 1500)]
    assert result["results"][1]["probed_address"] in ("127.0.0.1", "::1")
    assert result["results"][0]["probes"][0]["detail"].startswith("1480 bytes from 127.0.0.1")
