# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MTU proof on real packets: the lab overlay, zerotrust.cilium.mtu_probe and the verify phase.

A copy of the lab (nodes zt-itest-mtu-*, network zt-itest-mtu-underlay, 172.31.215.0/24)
is created with playbooks/lab.yml (its lab plays only), so each node has a pod namespace
routed over VXLAN (VNI 42, UDP 8472) on the 1500-byte underlay. Each test sets the overlay
to the scenario it needs through lab.yml's overlay play, probes from every pod to every
other pod, and asserts on the probe results and on what is really configured in the nodes.

The numbers: VXLAN over IPv4 adds 50 bytes (outer IPv4 20 + UDP 8 + VXLAN 8 + inner
Ethernet 14), so on a 1500-byte underlay an inner packet of N bytes goes on the wire as
N + 50 bytes and fits unfragmented exactly when N <= 1450, the route MTU cilium_mtu
computes. With pods at 1500 the node fragments every inner packet of 1451 bytes and more;
when fragments are dropped, 1451 is therefore the first size that vanishes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import ROOT as REPO, run_playbook  # noqa: E402
from lab_fixture import LabCopy, parse_recap, podman  # noqa: E402

from ansible_collections.zerotrust.cilium.plugins.module_utils.mtu import plan_mtu  # noqa: E402

LAB_PLAYBOOK = os.path.join(REPO, "playbooks", "lab.yml")
VERIFY_PLAYBOOK = os.path.join(REPO, "playbooks", "verify.yml")
SITE_PLAYBOOK = os.path.join(REPO, "playbooks", "site.yml")
DESTROY_PLAYBOOK = os.path.join(REPO, "playbooks", "lab_destroy.yml")
PROBE_PLAYBOOK = os.path.join(REPO, "tests", "integration", "playbooks", "mtu_probe_pods.yml")

UNDERLAY_MTU = 1500
ROUTE_MTU = plan_mtu(UNDERLAY_MTU, tunnel="vxlan")["route_mtu"]  # 1450
FIRST_LOST = UNDERLAY_MTU - 50 + 1  # 1451: the first inner size whose VXLAN packet exceeds 1500
FAST_PROBES = {"verify_mtu_timeout": 0.5}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab_copy = LabCopy(tmp_path_factory.mktemp("mtu-lab"), prefix="zt-itest-mtu", third_octet=215)
    lab_copy.remove()
    try:
        created = run_playbook(LAB_PLAYBOOK, inventory=lab_copy.inventory, env={"ANSIBLE_RUN_TAGS": "lab"})
        assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-2000:]
        lab_copy.scratch = str(tmp_path_factory.mktemp("mtu-probes"))
        yield lab_copy
    finally:
        lab_copy.remove()


def pod_address(lab, node):
    return "10.42.%s.10" % lab.nodes[node].rsplit(".", 1)[1]


def node_json(node, *command):
    return json.loads(podman("exec", node, *command).stdout)


def set_overlay(lab, check=False, **overlay_vars):
    """Run lab.yml's overlay play with ``overlay_vars``; return the completed run."""
    # Only the overlay play; the roles' argument checks (tagged always) are not what is
    # tested here and cost seconds per run.
    run = run_playbook(LAB_PLAYBOOK, inventory=lab.inventory, extra_vars=overlay_vars or None, check=check,
                       env={"ANSIBLE_RUN_TAGS": "lab_overlay", "ANSIBLE_SKIP_TAGS": "always"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def probe_pods(lab, expected_mtu):
    """{(source, target): result} of mtu_probe from every pod to every other pod."""
    output = os.path.join(lab.scratch, "probe-%d.json" % expected_mtu)
    run = run_playbook(PROBE_PLAYBOOK, inventory=lab.inventory,
                       extra_vars={"mtu_probe_expected": expected_mtu, "mtu_probe_output": output})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    with open(output) as stream:
        per_node = json.load(stream)
    results = {}
    for source, registered in per_node.items():
        assert registered["expected_mtu"] == expected_mtu
        assert registered["netns"] == "zt-pod"
        for result in registered["results"]:
            results[(source, result["name"])] = result
    pairs = {(source, target) for source in lab.nodes for target in lab.nodes if source != target}
    assert set(results) == pairs
    for (source, target), result in results.items():
        assert result["probed_address"] == pod_address(lab, target)
    return results


def test_overlay_is_built_with_the_computed_mtu(lab):
    # As lab.yml left it: no overlay variables given.
    for node, underlay in lab.nodes.items():
        vxlan = node_json(node, "ip", "-j", "-d", "link", "show", "dev", "zt-vxlan0")[0]
        data = vxlan["linkinfo"]["info_data"]
        assert (vxlan["linkinfo"]["info_kind"], data["id"], data["port"], data["local"]) == (
            "vxlan", 42, 8472, underlay)
        assert vxlan["mtu"] == ROUTE_MTU == 1450
        host_veth = node_json(node, "ip", "-j", "link", "show", "dev", "zt-pod0")[0]
        pod_eth0 = node_json(node, "ip", "-n", "zt-pod", "-j", "-4", "addr", "show", "dev", "eth0")[0]
        assert host_veth["mtu"] == pod_eth0["mtu"] == ROUTE_MTU
        assert [a["local"] for a in pod_eth0["addr_info"]] == [pod_address(lab, node)]
        routes = {route["dst"]: route for route in node_json(node, "ip", "-j", "-4", "route", "show",
                                                             "dev", "zt-vxlan0")}
        fdb = {entry["dst"] for entry in node_json(node, "bridge", "-j", "fdb", "show", "dev", "zt-vxlan0")
               if entry.get("dst")}
        peers = [peer for peer in lab.nodes if peer != node]
        assert sorted(routes) == sorted("10.42.%s.0/24" % lab.nodes[peer].rsplit(".", 1)[1] for peer in peers)
        assert fdb == {lab.nodes[peer] for peer in peers}
        # No fault injection unless asked for.
        tables = node_json(node, "nft", "-j", "list", "tables")["nftables"]
        assert [t for t in tables if t.get("table", {}).get("name") == "zt_lab_faults"] == []


def test_second_overlay_run_changes_nothing_and_check_mode_only_reports(lab):
    again = set_overlay(lab)
    assert {host: counts["changed"] for host, counts in parse_recap(again.stdout).items()} == {
        node: 0 for node in lab.nodes}
    checked = set_overlay(lab, check=True, zerotrust_lab_pod_mtu=1500, zerotrust_lab_drop_fragments=True)
    assert all(parse_recap(checked.stdout)[node]["changed"] == 1 for node in lab.nodes), checked.stdout[-2000:]
    for node in lab.nodes:
        assert node_json(node, "ip", "-j", "link", "show", "dev", "zt-vxlan0")[0]["mtu"] == ROUTE_MTU
        assert podman("exec", node, "nft", "list", "table", "netdev", "zt_lab_faults", check=False).returncode != 0


def test_computed_mtu_every_pod_path_is_ok_at_exactly_1450(lab):
    # The check-mode run before changed nothing: the overlay still has the computed MTU.
    results = probe_pods(lab, ROUTE_MTU)
    for pair, result in results.items():
        assert (result["status"], result["path_mtu"], result["expected_mtu"]) == ("ok", 1450, 1450), pair
        # One probe, of exactly 1450 bytes (ping -s 1422), answered.
        assert [(p["size"], p["payload"], p["outcome"]) for p in result["probes"]] == [(1450, 1422, "answer")]


def test_computed_mtu_one_byte_more_is_refused_locally_not_lost(lab):
    results = probe_pods(lab, ROUTE_MTU + 1)
    for pair, result in results.items():
        assert result["status"] == "refused_locally", (pair, result["message"])
        assert (result["path_mtu"], result["refused_from"], result["reported_mtu"], result["refused_by"]) == (
            1450, 1451, 1450, "local"), pair
        assert result["black_hole_from"] is None
        assert all(p["outcome"] != "timeout" for p in result["probes"]), result["probes"]


def test_site_verify_phase_prints_the_result_table(lab):
    run = run_playbook(SITE_PLAYBOOK, inventory=lab.inventory, extra_vars=FAST_PROBES,
                       env={"ANSIBLE_RUN_TAGS": "verify"})
    assert run.returncode == 0, run.stdout[-3000:]
    assert "PLAY [Verify the network against the plan and write the rollout report]" in run.stdout
    table = run.stdout.split("Print the MTU result table", 1)[1].split("TASK [", 1)[0]
    rows = [line for line in table.splitlines() if line.strip().startswith('"zt-itest-mtu-')]
    assert len(rows) == 6, run.stdout[-3000:]
    for row in rows:
        fields = row.strip().strip('",').split()
        assert fields[3:6] == ["1450", "1450", "ok"], row


def test_pod_mtu_1500_without_drops_fragments_and_gets_through(lab):
    # The control for the next test: the same wrong MTU works (slowly) while the underlay
    # carries fragments, so the black hole below is the drop rule's doing.
    set_overlay(lab, zerotrust_lab_pod_mtu=1500)
    results = probe_pods(lab, UNDERLAY_MTU)
    assert {pair: (r["status"], r["path_mtu"]) for pair, r in results.items()} == {
        pair: ("ok", 1500) for pair in results}


def test_pod_mtu_1500_with_fragments_dropped_is_a_black_hole_from_1451(lab):
    set_overlay(lab, zerotrust_lab_pod_mtu=1500, zerotrust_lab_drop_fragments=True)
    results = probe_pods(lab, UNDERLAY_MTU)
    for pair, result in results.items():
        assert result["status"] == "black_hole", (pair, result["message"])
        assert (result["black_hole_from"], result["path_mtu"], result["fix_mtu"]) == (FIRST_LOST, 1450, 1450), pair
        assert FIRST_LOST == ROUTE_MTU + 1
    # The fragments were dropped by the rule in the receiving node's own namespace.
    for node in lab.nodes:
        table = node_json(node, "nft", "-j", "list", "table", "netdev", "zt_lab_faults")["nftables"]
        counters = [expr["counter"]["packets"] for item in table if "rule" in item
                    for expr in item["rule"]["expr"] if "counter" in expr]
        assert counters and counters[0] > 0, (node, table)


def test_verify_playbook_fails_on_the_black_hole_naming_pair_size_and_fix(lab):
    wrong = dict(FAST_PROBES, zerotrust_lab_pod_mtu=1500, zerotrust_lab_drop_fragments=True)
    run = run_playbook(VERIFY_PLAYBOOK, inventory=lab.inventory, extra_vars=wrong)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    for source in lab.nodes:
        for target in lab.nodes:
            if source == target:
                continue
            expected = ("MTU black hole: %s -> %s (%s, from netns zt-pod): packets of 1451 bytes and more are "
                        "lost without an error while 1450 bytes get through (expected MTU 1500). An MTU of 1450 "
                        "fixes it." % (source, target, pod_address(lab, target)))
            assert expected in output, (expected, output[-4000:])
    assert "Traceback" not in output


def test_pod_mtu_above_the_overlay_with_frag_needed_dropped(lab):
    # Pods at 1500, VXLAN device at 1450: the node answers "fragmentation needed" ...
    set_overlay(lab, zerotrust_lab_pod_mtu=1500, zerotrust_lab_overlay_mtu=1450)
    refused = probe_pods(lab, UNDERLAY_MTU)
    for (source, target), result in refused.items():
        gateway = "10.42.%s.1" % lab.nodes[source].rsplit(".", 1)[1]
        assert (result["status"], result["path_mtu"], result["reported_mtu"]) == ("refused_locally", 1450, 1450)
        # ... from the sending pod's own gateway, or the kernel already learnt the PMTU from it.
        assert result["refused_by"] in (gateway, "local"), result
    # ... and when that ICMP is dropped as well, the same path becomes a black hole.
    set_overlay(lab, zerotrust_lab_pod_mtu=1500, zerotrust_lab_overlay_mtu=1450, zerotrust_lab_drop_frag_needed=True)
    lost = probe_pods(lab, UNDERLAY_MTU)
    assert {pair: (r["status"], r["black_hole_from"]) for pair, r in lost.items()} == {
        pair: ("black_hole", FIRST_LOST) for pair in lost}


def test_back_to_the_computed_mtu_removes_the_faults(lab):
    set_overlay(lab)
    for node in lab.nodes:
        for family in ("netdev", "inet"):
            listed = podman("exec", node, "nft", "list", "table", family, "zt_lab_faults", check=False)
            assert listed.returncode != 0, (node, family, listed.stdout)
    results = probe_pods(lab, ROUTE_MTU)
    assert {r["status"] for r in results.values()} == {"ok"}


def test_lab_destroy_leaves_nothing_behind(lab):
    destroyed = run_playbook(DESTROY_PLAYBOOK, inventory=lab.inventory)
    assert destroyed.returncode == 0, destroyed.stdout[-3000:]
    assert lab.running_nodes() == []
    assert not lab.network_exists()
