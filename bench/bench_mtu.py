# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark pod-to-pod TCP throughput over the lab's VXLAN overlay for right and wrong MTUs.

Run from the repository root with the project's Python (``make bench`` does)::

    .venv/bin/python bench/bench_mtu.py

It creates its own copy of the lab (nodes ``zt-bench-mtu-*``, network
``zt-bench-mtu-underlay``, 172.31.216.0/24) with playbooks/lab.yml, and measures iperf3
(in the lab image) for 5 seconds per case, from the first node's pod to the second node's
pod, receiver-side figures:

* ``underlay``: node to node on the 1500-byte underlay, no overlay: the reference;
* ``node_vxlan``: node to node through the VXLAN devices (the nodes' own overlay
  addresses) at the computed MTU: the cost of encapsulation without the pods' extra hops;
* ``computed``: pods at the MTU zerotrust.cilium.cilium_mtu computes (1450);
* ``wrong_fragmented``: pods and VXLAN device at 1500: every full-size packet is fragmented;
* ``wrong_fragments_dropped``: the same, with the underlay dropping IPv4 fragments;
* the three overlay cases again with ``net.ipv4.tcp_mtu_probing=1`` in both pods;
* ``recovery``: the dropped-fragments case with ``tcp_mtu_probing=1`` for 12 seconds, to
  show when TCP's black-hole detection gives up on full-size segments;
* ``link_*``: underlay, computed and the two wrong cases again with each node's underlay
  link limited to 2 Gbit/s (a tbf qdisc on eth0). The lab's virtual wire is free and the
  CPU is the bottleneck, so without a limit every extra hop of the pod path (veth pair,
  forwarding, encapsulation) shows as lost throughput; on a rate-limited link, as on real
  networks, what the MTU costs is bytes on the wire.

The overlay is switched between cases by lab.yml's overlay play (``zerotrust_lab_pod_mtu``,
``zerotrust_lab_drop_fragments``), exactly as a user would. The lab copy is removed at the
end, also when a case fails. Results go to ``bench/results/mtu.json``; a table is printed.
Goal: the computed MTU reaches at least 90 % of the underlay figure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "integration")]

from helpers import run_playbook  # noqa: E402  pylint: disable=wrong-import-position
from lab_fixture import LabCopy, podman  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = os.path.join(ROOT, "bench", "results", "mtu.json")
LAB_PLAYBOOK = os.path.join(ROOT, "playbooks", "lab.yml")
PREFIX = "zt-bench-mtu"
THIRD_OCTET = 216
NETNS = "zt-pod"
PORT = 5201
GOAL_PERCENT = 90.0

SCENARIOS = {
    "computed": {"description": "pods at the computed MTU (cilium_mtu: 1500 - 50 = 1450)", "overlay": {}},
    "wrong_fragmented": {
        "description": "pods and VXLAN at 1500 on the 1500 underlay: full-size packets are fragmented",
        "overlay": {"zerotrust_lab_pod_mtu": 1500},
    },
    "wrong_fragments_dropped": {
        "description": "pods and VXLAN at 1500, underlay drops IPv4 fragments: a black hole",
        "overlay": {"zerotrust_lab_pod_mtu": 1500, "zerotrust_lab_drop_fragments": True},
    },
}


class BenchError(Exception):
    pass


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version()}


def set_overlay(lab, overlay_vars):
    run = run_playbook(LAB_PLAYBOOK, inventory=lab.inventory, extra_vars=overlay_vars or None,
                       env={"ANSIBLE_RUN_TAGS": "lab_overlay"})
    if run.returncode != 0:
        raise BenchError("lab overlay play failed:\n%s\n%s" % (run.stdout[-3000:], run.stderr[-2000:]))


def in_pod(netns, argv):
    return (["ip", "netns", "exec", netns] + argv) if netns else argv


def set_mtu_probing(node, netns, value):
    podman("exec", node, *in_pod(netns, ["sysctl", "-q", "-w", "net.ipv4.tcp_mtu_probing=%d" % value]))


def iperf(client, server, address, netns, seconds):
    """Run one iperf3 test; return the receiver-side figures (server's own report)."""
    pidfile = "/run/zt-bench-iperf3.pid"
    logfile = "/run/zt-bench-iperf3.json"
    podman("exec", server, "rm", "-f", pidfile, logfile, check=False)
    podman("exec", server, *in_pod(netns, ["iperf3", "--server", "--one-off", "--daemon", "--json",
                                           "--port", str(PORT), "--pidfile", pidfile, "--logfile", logfile]))
    for _attempt in range(50):
        if podman("exec", server, "test", "-s", pidfile, check=False).returncode == 0:
            break
        time.sleep(0.1)
    time.sleep(0.3)
    started = time.monotonic()
    client_run = podman("exec", client, "timeout", str(seconds + 25),
                        *in_pod(netns, ["iperf3", "--client", address, "--port", str(PORT), "--time", str(seconds),
                                        "--json", "--connect-timeout", "3000"]), check=False)
    elapsed = time.monotonic() - started
    server_report = None
    for _attempt in range(30):
        text = podman("exec", server, "cat", logfile, check=False).stdout
        try:
            server_report = json.loads(text)
            break
        except ValueError:
            time.sleep(0.2)
    pid = podman("exec", server, "cat", pidfile, check=False).stdout.strip()
    if pid.isdigit():
        podman("exec", server, "kill", pid, check=False)
    client_report = None
    try:
        client_report = json.loads(client_run.stdout)
    except ValueError:
        pass
    if server_report is None and client_report is None:
        raise BenchError("iperf3 %s -> %s gave no report: %s" % (client, address, client_run.stderr[-500:]))
    intervals = []
    if server_report is not None:
        intervals = [round(interval["sum"]["bits_per_second"] / 1e9, 3) for interval in server_report["intervals"]]
    received = (server_report or client_report)["end"].get("sum_received", {})
    sent = (client_report or {}).get("end", {}).get("sum_sent", {})
    first_data = next((index for index, value in enumerate(intervals) if value > 0), None)
    return {
        "receiver_gbit_s": round(received.get("bits_per_second", 0.0) / 1e9, 3),
        "received_bytes": received.get("bytes", 0),
        "sender_retransmits": sent.get("retransmits"),
        "intervals_gbit_s": intervals,
        "first_second_with_data": first_data,
        "client_exit_status": client_run.returncode,
        "client_seconds": round(elapsed, 1),
    }


def measure(lab, seconds, repeats, link_rate, link_repeats):
    nodes = sorted(lab.nodes)
    client, server = nodes[0], nodes[1]
    server_pod = "10.42.%s.10" % lab.nodes[server].rsplit(".", 1)[1]
    # The server node's own VXLAN address (its pod subnet's network address, flannel style).
    server_vtep = "10.42.%s.0" % lab.nodes[server].rsplit(".", 1)[1]
    cases = {}

    def record(name, description, results, probing, duration, address):
        figures = [result["receiver_gbit_s"] for result in results]
        best = max(range(len(results)), key=lambda index: figures[index])
        case = dict(results[best], description=description, tcp_mtu_probing=probing, seconds=duration,
                    path="%s -> %s (%s)" % (client, server, address), runs_gbit_s=figures,
                    median_gbit_s=round(statistics.median(figures), 3))
        cases[name] = case
        runs_text = ", ".join("%.2f" % figure for figure in figures)
        print("%-38s median %7.3f  best %7.3f Gbit/s  (runs: %s)" % (
            name, case["median_gbit_s"], case["receiver_gbit_s"], runs_text), flush=True)

    def run_once(address, netns, probing, duration):
        set_mtu_probing(client, netns, probing)
        set_mtu_probing(server, netns, probing)
        try:
            return iperf(client, server, address, netns, duration)
        finally:
            set_mtu_probing(client, netns, 0)
            set_mtu_probing(server, netns, 0)

    # The reference, encapsulation alone and the goal case, alternating on the same lab
    # state so that they share the machine's load as evenly as possible.
    set_overlay(lab, SCENARIOS["computed"]["overlay"])
    alternating = [
        ("underlay", "node to node on the 1500-byte underlay (reference)", lab.nodes[server], None),
        ("node_vxlan", "node to node through the VXLAN device at the computed MTU (encapsulation alone, "
                       "no pod hops)", server_vtep, None),
        ("computed", SCENARIOS["computed"]["description"], server_pod, NETNS),
    ]
    runs = dict((name, []) for name, _description, _address, _netns in alternating)
    for _repeat in range(repeats):
        for name, _description, address, netns in alternating:
            runs[name].append(run_once(address, netns, 0, seconds))
    for name, description, address, netns in alternating:
        record(name, description, runs[name], 0, seconds, address)
    # Runs of one round are seconds apart, rounds are a minute apart: the ratio within a
    # round is the least disturbed by other load on the machine.
    for name in ("node_vxlan", "computed"):
        paired = [100.0 * mine["receiver_gbit_s"] / reference["receiver_gbit_s"]
                  for mine, reference in zip(runs[name], runs["underlay"]) if reference["receiver_gbit_s"]]
        cases[name]["percent_of_underlay_per_round"] = [round(value, 1) for value in paired]
        cases[name]["percent_of_underlay_paired_median"] = round(statistics.median(paired), 1) if paired else None

    for name, scenario in SCENARIOS.items():
        if name != "computed":
            set_overlay(lab, scenario["overlay"])
            record(name, scenario["description"], [run_once(server_pod, NETNS, 0, seconds)], 0, seconds,
                   server_pod)
        record(name + "+tcp_mtu_probing", scenario["description"] + "; tcp_mtu_probing=1",
               [run_once(server_pod, NETNS, 1, seconds)], 1, seconds, server_pod)
        if name == "wrong_fragments_dropped":
            record("recovery", "black hole with tcp_mtu_probing=1 over 12 s: when TCP gets out of it",
                   [run_once(server_pod, NETNS, 1, 12)], 1, 12, server_pod)
    measure_link_limited(lab, client, server, server_pod, seconds, link_rate, link_repeats, cases, record,
                         run_once)
    set_overlay(lab, {})
    return cases


def set_link_rate(nodes, rate):
    """Give each node's underlay interface a token bucket of ``rate`` (None removes it)."""
    for node in nodes:
        if rate:
            podman("exec", node, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate,
                   "burst", "512kb", "latency", "20ms")
        else:
            podman("exec", node, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)


def measure_link_limited(lab, client, server, server_pod, seconds, link_rate, repeats, cases, record, run_once):
    """The same paths on an underlay whose links carry ``link_rate``, as real links do.

    On the lab's unlimited virtual wire every extra hop costs CPU and the CPU is the
    bottleneck; with a rate-limited link the wire is, and what an MTU costs is bytes on it.
    tbf counts the bytes of every segment of a GSO packet, headers included.
    """
    set_overlay(lab, SCENARIOS["computed"]["overlay"])
    set_link_rate([client, server], link_rate)
    try:
        alternating = [("underlay", lab.nodes[server], None), ("computed", server_pod, NETNS)]
        runs = dict((name, []) for name, _address, _netns in alternating)
        for _repeat in range(repeats):
            for name, address, netns in alternating:
                runs[name].append(run_once(address, netns, 0, seconds))
        for name, address, netns in alternating:
            record("link_%s@%s" % (name, link_rate), "%s; underlay links limited to %s"
                   % (cases[name]["description"], link_rate), runs[name], 0, seconds, address)
        paired = [100.0 * mine["receiver_gbit_s"] / reference["receiver_gbit_s"]
                  for mine, reference in zip(runs["computed"], runs["underlay"]) if reference["receiver_gbit_s"]]
        cases["link_computed@%s" % link_rate]["percent_of_underlay_per_round"] = [round(v, 1) for v in paired]
        cases["link_computed@%s" % link_rate]["percent_of_underlay_paired_median"] = (
            round(statistics.median(paired), 1) if paired else None)
        for name in ("wrong_fragmented", "wrong_fragments_dropped"):
            set_overlay(lab, SCENARIOS[name]["overlay"])
            record("link_%s@%s" % (name, link_rate), "%s; underlay links limited to %s"
                   % (SCENARIOS[name]["description"], link_rate),
                   [run_once(server_pod, NETNS, 0, seconds)], 0, seconds, server_pod)
    finally:
        set_link_rate([client, server], None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="iperf3 duration per case")
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternating runs of the underlay, node_vxlan and computed cases")
    parser.add_argument("--link-rate", default="2gbit", help="tc rate of the link-limited underlay")
    parser.add_argument("--link-repeats", type=int, default=3,
                        help="alternating runs of underlay and computed on the link-limited underlay")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)

    scratch = tempfile.mkdtemp(prefix="zt-bench-mtu-")
    lab = LabCopy(os.path.join(scratch, "lab"), prefix=PREFIX, third_octet=THIRD_OCTET)
    lab.remove()
    started = time.monotonic()
    try:
        created = run_playbook(LAB_PLAYBOOK, inventory=lab.inventory, env={"ANSIBLE_RUN_TAGS": "lab"})
        if created.returncode != 0:
            raise BenchError("lab creation failed:\n%s\n%s" % (created.stdout[-3000:], created.stderr[-2000:]))
        cases = measure(lab, args.seconds, args.repeats, args.link_rate, args.link_repeats)
    finally:
        lab.remove()
        shutil.rmtree(scratch, ignore_errors=True)

    def percent_of_underlay(name, figure):
        reference = cases["underlay"][figure]
        return round(100.0 * cases[name][figure] / reference, 1) if reference else None

    percent = cases["computed"]["percent_of_underlay_paired_median"]
    link_percent = cases["link_computed@%s" % args.link_rate]["percent_of_underlay_paired_median"]
    report = {
        "generated": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "method": ("iperf3 %d s per case (12 s for recovery), one TCP stream, receiver-side Gbit/s from the "
                   "server's report; underlay, node_vxlan and computed: %d rounds of one run each, alternating "
                   "(median and best reported; the goal percentage is the median of the per-round ratios), the "
                   "other cases one run; link_* cases: the same with a tbf of --link-rate on both nodes' eth0, "
                   "%d rounds" % (args.seconds, args.repeats, args.link_repeats)),
        "lab": {"underlay_mtu": 1500, "computed_pod_mtu": 1450, "wrong_pod_mtu": 1500, "vxlan_vni": 42,
                "vxlan_port": 8472},
        "cases": cases,
        "goal": {
            "computed_vs_underlay_percent": percent,
            "computed_vs_underlay_percent_of_medians": percent_of_underlay("computed", "median_gbit_s"),
            "computed_vs_underlay_percent_best_runs": percent_of_underlay("computed", "receiver_gbit_s"),
            "node_vxlan_vs_underlay_percent": cases["node_vxlan"]["percent_of_underlay_paired_median"],
            "computed_vs_node_vxlan_percent": (
                round(100.0 * cases["computed"]["median_gbit_s"] / cases["node_vxlan"]["median_gbit_s"], 1)
                if cases["node_vxlan"]["median_gbit_s"] else None),
            "target_percent": GOAL_PERCENT,
            "met": percent is not None and percent >= GOAL_PERCENT,
            "link_limited_rate": args.link_rate,
            "link_limited_computed_vs_underlay_percent": link_percent,
            "link_limited_met": link_percent is not None and link_percent >= GOAL_PERCENT,
            "wire_arithmetic_percent": round(100.0 * (1450 - 52) / (1500 - 52), 1),
        },
        "total_seconds": round(time.monotonic() - started, 1),
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as stream:
        json.dump(report, stream, indent=2, sort_keys=True)
        stream.write("\n")
    print("computed MTU: %.1f %% of the underlay, median of paired runs (goal %.0f %%): %s; best runs %.1f %%; "
          "VXLAN alone (node to node): %.1f %%" % (
              percent or 0.0, GOAL_PERCENT, "met" if report["goal"]["met"] else "NOT met",
              report["goal"]["computed_vs_underlay_percent_best_runs"] or 0.0,
              report["goal"]["node_vxlan_vs_underlay_percent"] or 0.0))
    print("computed MTU on links limited to %s: %.1f %% of the underlay (goal %.0f %%): %s; wire arithmetic "
          "(1450 - 52) / (1500 - 52): %.1f %%" % (
              args.link_rate, link_percent or 0.0, GOAL_PERCENT, "met" if report["goal"]["link_limited_met"]
              else "NOT met", report["goal"]["wire_arithmetic_percent"]))
    recovery = cases["recovery"]
    print("black hole with tcp_mtu_probing=1: first data in second %s; per second: %s" % (
        recovery["first_second_with_data"], recovery["intervals_gbit_s"]))
    print("results: %s" % os.path.relpath(args.output, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
