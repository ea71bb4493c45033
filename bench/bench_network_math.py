# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark the network math: a 5,000-node cluster plan and overlaps among 1,000 CIDRs.

Run from the repository root with the project's Python::

    .venv/bin/python bench/bench_network_math.py

Each scenario runs through the public filter functions (what a playbook calls), is
repeated, and reported as median and minimum wall time in milliseconds.  Results and
machine information go to ``bench/results/network_math.json``; a short table is printed.
The target is well under 50 ms per scenario.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import ipaddress
import json
import os
import platform
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results", "network_math.json")
TARGET_MS = 50.0


sys.path.insert(0, os.path.join(ROOT, "tests"))
import collection_path  # noqa: E402  pylint: disable=wrong-import-position
collection_path.make_importable()

from ansible_collections.zerotrust.cilium.plugins.filter import network  # noqa: E402

FILTERS = network.FilterModule().filters()


def plan_five_thousand_nodes():
    """Everything the plan phase computes for a 5,000-node cluster."""
    plan = FILTERS["pod_cidr_plan"]("10.0.0.0/12", nodes=5000, max_pods_per_node=110, growth=0.25)
    routing = FILTERS["routing_mode"]("10.0.0.0/12", nodes=5000, node_subnets=["192.168.0.0/16"])
    mtu = FILTERS["cilium_mtu"](1500, tunnel="vxlan")
    conntrack = FILTERS["conntrack_max"](16000, expected_connections=400000)
    return plan["fits"], routing["mode"], mtu["route_mtu"], conntrack["nf_conntrack_max"]


def thousand_cidrs(seed=20261126):
    """1,000 named CIDRs: mostly disjoint /24s and /26s, some wider ranges, some IPv6."""
    generator = random.Random(seed)
    cidrs = {}
    for index in range(900):
        prefix = generator.choice([24, 24, 24, 26, 28])
        address = (10 << 24) | generator.randrange(0, 1 << 24)
        cidrs["subnet-%04d" % index] = str(ipaddress.IPv4Network((address, prefix), strict=False))
    for index in range(50):
        prefix = generator.choice([12, 16, 20])
        address = generator.choice([10 << 24, (172 << 24) | (16 << 16), (192 << 24) | (168 << 16)])
        address |= generator.randrange(0, 1 << (32 - prefix))
        cidrs["wide-%02d" % index] = str(ipaddress.IPv4Network((address, prefix), strict=False))
    for index in range(50):
        address = (0xfd00 << 112) | (generator.randrange(0, 1 << 16) << 64)
        cidrs["v6-%02d" % index] = str(ipaddress.IPv6Network((address, 64), strict=False))
    return cidrs


def time_it(function, repeats, warmup=3):
    for _warmup in range(warmup):
        function()
    samples = []
    for _repeat in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def machine_info():
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per scenario (default 50)")
    arguments = parser.parse_args()

    cidrs = thousand_cidrs()
    overlaps = FILTERS["cidr_overlaps"](cidrs)
    fits, mode, route_mtu, conntrack_max = plan_five_thousand_nodes()

    scenarios = {
        "plan_5000_nodes": {
            "description": "pod_cidr_plan + routing_mode + cilium_mtu + conntrack_max for 5,000 nodes",
            "samples": time_it(plan_five_thousand_nodes, arguments.repeats),
            "result": {"fits": fits, "mode": mode, "route_mtu": route_mtu, "nf_conntrack_max": conntrack_max},
        },
        "overlaps_1000_cidrs": {
            "description": "cidr_overlaps over 1,000 named CIDRs (950 IPv4, 50 IPv6)",
            "samples": time_it(lambda: FILTERS["cidr_overlaps"](cidrs), arguments.repeats),
            "result": {"cidrs": len(cidrs), "overlapping_pairs": len(overlaps)},
        },
    }

    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target_ms": TARGET_MS,
        "repeats": arguments.repeats,
        "machine": machine_info(),
        "scenarios": {},
    }
    print("%-22s %10s %10s %10s  %s" % ("scenario", "median ms", "min ms", "max ms", "target"))
    for name, scenario in scenarios.items():
        samples = scenario["samples"]
        median = statistics.median(samples)
        report["scenarios"][name] = {
            "description": scenario["description"],
            "median_ms": round(median, 3),
            "min_ms": round(min(samples), 3),
            "max_ms": round(max(samples), 3),
            "within_target": median < TARGET_MS,
            "result": scenario["result"],
        }
        verdict = "ok" if median < TARGET_MS else "OVER %.0f ms" % TARGET_MS
        print("%-22s %10.3f %10.3f %10.3f  %s" % (name, median, min(samples), max(samples), verdict))

    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    temporary = RESULTS + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, RESULTS)
    print("results written to %s" % os.path.relpath(RESULTS, ROOT))
    return 0 if all(item["within_target"] for item in report["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
