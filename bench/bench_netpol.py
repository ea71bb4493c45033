# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the policy reachability engine (plugins/module_utils/netpol.py).

Workload (deterministic, seeded): 10,000 pods in 200 namespaces, 2,000 policies (Kubernetes
NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy with selectors on pod and
namespace labels, named ports, port ranges, entities, CIDRs, toFQDNs, HTTP rules and deny rules),
and one probe per served port and protocol.

Measured:

* engine: ``plan_reachability(..., report_pairs=False)`` end to end (validation, identity
  grouping, evaluation of every probe, pair counts), best and median of ``--runs`` runs;
* naive baseline: ``PairEvaluator`` (walks every policy for one pair, no identity grouping, no
  selector caching) on ``--sample`` (source, destination, probe) triples drawn with the same
  seed.  Its time per pair times the number of pod pairs the engine answered gives the
  extrapolated naive time; the ratio is that divided by the engine's best time.  The sampled
  verdicts are also checked against the engine's.

Writes ``bench/results/netpol.json`` and prints a table.  Run from the collection root::

    .venv/bin/python bench/bench_netpol.py
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


sys.path.insert(0, os.path.join(ROOT, "tests"))
import collection_path  # noqa: E402  pylint: disable=wrong-import-position
collection_path.make_importable()

from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability  # noqa: E402
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_engine import (  # noqa: E402
    EndpointDirectory,
    IdentityEngine,
    PairEvaluator,
    iter_bits,
)
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_model import (  # noqa: E402
    parse_model,
    parse_probes,
    serves,
)

# app -> (served ports, number of label variants)
APPS = {
    "frontend": ([("http", 80, "TCP")], 2),
    "backend": ([("api", 8080, "TCP")], 2),
    "api": ([("https", 8443, "TCP")], 1),
    "db": ([("pg", 5432, "TCP")], 1),
    "cache": ([("redis", 6379, "TCP")], 1),
    "queue": ([("amqp", 5672, "TCP")], 1),
    "worker": ([], 3),
    "batch": ([], 1),
}
METRICS = ("metrics", 9090, "TCP")


def np(name, namespace, spec):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def cnp(name, namespace, spec):
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def ccnp(name, spec):
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def app(name):
    return {"matchLabels": {"app": name}}


def generate(seed, pod_count=10000, namespace_count=200, policy_count=2000):
    """Return (namespaces, pods, policies) for the benchmark workload."""
    rng = random.Random(seed)
    namespaces = {
        "kube-system": {"team": "platform", "env": "prod"},
        "monitoring": {"team": "platform", "env": "prod"},
        "ingress-nginx": {"team": "platform", "env": "prod"},
    }
    app_namespaces = ["team%02d-%03d" % (index % 20, index) for index in range(namespace_count - len(namespaces))]
    for index, name in enumerate(app_namespaces):
        namespaces[name] = {"team": "team%02d" % (index % 20), "env": ("prod", "staging", "dev")[index % 3]}

    pods = []
    for index in range(2):
        pods.append(
            {
                "namespace": "kube-system",
                "name": "coredns-%d" % index,
                "labels": {"k8s-app": "kube-dns"},
                "ip": "10.96.0.%d" % (10 + index),
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    {"name": "metrics", "port": 9153, "protocol": "TCP"},
                ],
            }
        )
    for index in range(2):
        pods.append(
            {
                "namespace": "monitoring",
                "name": "prometheus-%d" % index,
                "labels": {"app": "prometheus"},
                "ip": "10.96.1.%d" % (10 + index),
                "ports": [{"name": "web", "port": 9090, "protocol": "TCP"}],
            }
        )
    for index in range(4):
        pods.append(
            {
                "namespace": "ingress-nginx",
                "name": "controller-%d" % index,
                "labels": {"app": "ingress-nginx"},
                "ip": "10.96.2.%d" % (10 + index),
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP"},
                    {"name": "https", "port": 443, "protocol": "TCP"},
                ],
            }
        )
    per_namespace = (pod_count - len(pods)) // len(app_namespaces)
    extra = (pod_count - len(pods)) - per_namespace * len(app_namespaces)
    apps = sorted(APPS)
    address = 0
    for ns_index, namespace in enumerate(app_namespaces):
        count = per_namespace + (1 if ns_index < extra else 0)
        for pod_index in range(count):
            name = apps[pod_index % len(apps)] if pod_index < len(apps) else rng.choice(apps)
            ports, variants = APPS[name]
            labels = {"app": name, "version": "v%d" % rng.randrange(variants)}
            if name in ("frontend", "backend", "api"):
                labels["tier"] = "web"
            address += 1
            pods.append(
                {
                    "namespace": namespace,
                    "name": "%s-%d" % (name, pod_index),
                    "labels": labels,
                    "ip": "10.%d.%d.%d" % (64 + address // 65536, (address // 256) % 256, address % 256),
                    "service_account": name,
                    "ports": [{"name": item[0], "port": item[1], "protocol": item[2]} for item in ports + [METRICS]],
                }
            )

    policies = []
    clusterwide = [
        ccnp(
            "allow-prometheus-scrape",
            {
                "endpointSelector": {},
                "enableDefaultDeny": {"ingress": False},
                "ingress": [
                    {
                        "fromEndpoints": [
                            {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring", "app": "prometheus"}}
                        ],
                        "toPorts": [{"ports": [{"port": "metrics", "protocol": "TCP"}]}],
                    }
                ],
            },
        ),
        ccnp("deny-world-to-db", {"endpointSelector": app("db"), "ingressDeny": [{"fromEntities": ["world"]}]}),
        ccnp(
            "dns-visibility",
            {
                "endpointSelector": {},
                "enableDefaultDeny": {"egress": False, "ingress": False},
                "egress": [
                    {
                        "toEndpoints": [
                            {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}
                        ],
                        "toPorts": [
                            {"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}
                        ],
                    }
                ],
            },
        ),
        ccnp(
            "kube-dns-ingress",
            {
                "endpointSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "ingress": [
                    {"fromEntities": ["cluster"], "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}]}]},
                    {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring"}}]},
                ],
            },
        ),
    ]
    for index in range(16):
        team = "team%02d" % index
        clusterwide.append(
            ccnp(
                "team-isolation-%s" % team,
                {
                    "endpointSelector": {"matchLabels": {"io.cilium.k8s.namespace.labels.team": team}},
                    "enableDefaultDeny": {"ingress": False, "egress": False},
                    "ingressDeny": [
                        {
                            "fromEndpoints": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "io.cilium.k8s.namespace.labels.env",
                                            "operator": "In",
                                            "values": ["dev"],
                                        },
                                        {
                                            "key": "io.cilium.k8s.namespace.labels.team",
                                            "operator": "NotIn",
                                            "values": [team, "platform"],
                                        },
                                    ]
                                }
                            ],
                            "toPorts": [{"ports": [{"port": "5432", "protocol": "TCP"}]}],
                        }
                    ],
                },
            )
        )
    policies.extend(clusterwide)

    templates = [
        lambda ns: np("default-deny-all", ns, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        lambda ns: np(
            "allow-dns",
            ns,
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        lambda ns: np(
            "allow-ingress-controller",
            ns,
            {
                "podSelector": app("frontend"),
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
                        ],
                        "ports": [{"port": "http"}],
                    }
                ],
            },
        ),
        lambda ns: np(
            "frontend-to-backend",
            ns,
            {
                "podSelector": {"matchLabels": {"tier": "web"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": app("frontend")}], "ports": [{"port": 8080}]}],
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": {"tier": "web"}}}],
                        "ports": [{"port": 8000, "endPort": 8999}],
                    }
                ],
            },
        ),
        lambda ns: cnp(
            "backend-to-db",
            ns,
            {
                "endpointSelector": app("db"),
                "ingress": [
                    {
                        "fromEndpoints": [app("backend"), app("worker")],
                        "toPorts": [{"ports": [{"port": "pg", "protocol": "TCP"}]}],
                    }
                ],
            },
        ),
        lambda ns: cnp(
            "egress-to-data",
            ns,
            {
                "endpointSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["backend", "worker", "batch"]}]
                },
                "egress": [
                    {
                        "toEndpoints": [
                            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "cache", "queue"]}]}
                        ],
                        "toPorts": [
                            {
                                "ports": [
                                    {"port": "5432", "protocol": "TCP"},
                                    {"port": "6379", "protocol": "TCP"},
                                    {"port": "5672", "protocol": "TCP"},
                                ]
                            }
                        ],
                    }
                ],
            },
        ),
        lambda ns: cnp(
            "api-l7",
            ns,
            {
                "endpointSelector": app("api"),
                "ingress": [
                    {
                        "fromEndpoints": [app("frontend")],
                        "toPorts": [
                            {
                                "ports": [{"port": "8443", "protocol": "TCP"}],
                                "rules": {
                                    "http": [
                                        {"method": "GET", "path": "/v1/.*"},
                                        {"method": "POST", "path": "/v1/orders"},
                                    ]
                                },
                            }
                        ],
                    }
                ],
            },
        ),
        lambda ns: cnp(
            "workers-egress",
            ns,
            {
                "endpointSelector": app("worker"),
                "egress": [
                    {
                        "toFQDNs": [{"matchPattern": "*.example.com"}],
                        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
                    },
                    {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]},
                    {"toCIDRSet": [{"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}]},
                ],
            },
        ),
        lambda ns: cnp(
            "cache-queue",
            ns,
            {
                "endpointSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["cache", "queue"]}]
                },
                "ingress": [{"fromEndpoints": [{"matchLabels": {"tier": "web"}}, app("worker"), app("batch")]}],
                "ingressDeny": [{"fromEndpoints": [app("frontend")]}],
            },
        ),
        lambda ns: np(
            "metrics-from-monitoring",
            ns,
            {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                                "podSelector": {"matchLabels": {"app": "prometheus"}},
                            }
                        ],
                        "ports": [{"port": "metrics"}],
                    }
                ],
            },
        ),
        lambda ns: np(
            "batch-egress-queue",
            ns,
            {
                "podSelector": app("batch"),
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"podSelector": app("queue")}, {"ipBlock": {"cidr": "198.51.100.0/24"}}],
                        "ports": [{"port": "amqp"}],
                    }
                ],
            },
        ),
    ]
    remaining = policy_count - len(policies)
    index = 0
    while remaining > 0:
        namespace = app_namespaces[index % len(app_namespaces)]
        template = templates[(index // len(app_namespaces)) % len(templates)]
        policies.append(template(namespace))
        remaining -= 1
        index += 1
    return namespaces, pods, policies


def naive_sample(namespaces, pods, policies, sample, seed):
    """Time the per-pair evaluator on sampled pairs; return timing and the sampled verdicts."""
    model = parse_model(namespaces, pods, policies)
    directory = EndpointDirectory(model)
    probes = parse_probes(None, model.pods)
    destinations = [
        [endpoint for endpoint in directory.pods if serves(endpoint.ports, probe.port, probe.protocol)]
        for probe in probes
    ]
    weights = [len(directory.pods) * len(items) for items in destinations]
    rng = random.Random(seed + 1)
    triples = []
    while len(triples) < sample:
        probe_index = rng.choices(range(len(probes)), weights=weights)[0]
        source = rng.choice(directory.pods)
        destination = rng.choice(destinations[probe_index])
        if source.ref != destination.ref:
            triples.append((source, destination, probe_index))
    evaluator = PairEvaluator(model)
    start = time.perf_counter()
    verdicts = [
        evaluator.evaluate(source, destination, probes[index].port, probes[index].protocol)[0]
        for source, destination, index in triples
    ]
    elapsed = time.perf_counter() - start
    engine = IdentityEngine(model, directory)
    results = engine.run(probes, [directory.pods] * len(probes), destinations)
    mismatches = 0
    for (source, destination, index), expected in zip(triples, verdicts):
        if engine_verdict(engine, results[index], source, destination) != expected:
            mismatches += 1
    # Uniform samples are mostly denied pairs; also check pairs the engine allows.
    checked_allowed = 0
    candidates = [(index, group) for index, result in enumerate(results) for group in result.groups if group[2]]
    for _pick in range(sample // 4 if candidates else 0):
        index, (identity_index, members, allowed, restricted) = rng.choice(candidates)
        source_identity = rng.choice(list(iter_bits(allowed)))
        source = rng.choice(engine.identities[source_identity].members)
        destination = rng.choice(members)
        if source.ref == destination.ref:
            continue
        expected = evaluator.evaluate(source, destination, probes[index].port, probes[index].protocol)[0]
        checked_allowed += 1
        if engine_verdict(engine, results[index], source, destination) != expected:
            mismatches += 1
    return elapsed, mismatches, sum(1 for verdict in verdicts if verdict != "denied"), checked_allowed


def engine_verdict(engine, result, source, destination):
    source_bit = 1 << engine.identity_of[source.ref]
    for _group, members, allowed, restricted in result.groups:
        if any(member.ref == destination.ref for member in members):
            if not allowed & source_bit:
                return "denied"
            return "restricted" if restricted & source_bit else "allowed"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261101)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--policies", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2000, help="pairs evaluated by the naive baseline")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "netpol.json"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    namespaces, pods, policies = generate(args.seed, args.pods, args.namespaces, args.policies)
    generate_seconds = time.perf_counter() - start

    timings = []
    result = None
    for _run in range(args.runs):
        start = time.perf_counter()
        result = plan_reachability(namespaces, pods, policies, report_pairs=False)
        timings.append(time.perf_counter() - start)
    engine_best = min(timings)
    pairs = result["summary"]["pairs"]
    total_pairs = pairs["allowed"] + pairs["denied"]

    naive_seconds, mismatches, sampled_allowed, checked_allowed = naive_sample(
        namespaces, pods, policies, args.sample, args.seed
    )
    per_pair = naive_seconds / args.sample
    naive_extrapolated = per_pair * total_pairs
    report = {
        "workload": {
            "seed": args.seed,
            "namespaces": result["summary"]["namespaces"],
            "pods": result["summary"]["pods"],
            "policies": result["summary"]["policies"],
            "policy_units": result["summary"]["policy_units"],
            "identities": result["identities"],
            "probes": [[entry["port"], entry["protocol"]] for entry in result["reachability"]],
            "pod_pairs": total_pairs,
            "allowed_pairs": pairs["allowed"],
            "restricted_pairs": pairs["restricted"],
            "isolated_pods": result["summary"]["isolated_pods"],
            "generate_seconds": round(generate_seconds, 3),
        },
        "engine": {
            "runs": [round(value, 3) for value in timings],
            "best_seconds": round(engine_best, 3),
            "median_seconds": round(statistics.median(timings), 3),
            "target_seconds": 5.0,
            "meets_target": engine_best < 5.0,
        },
        "naive": {
            "method": "PairEvaluator on %d sampled (source, destination, probe) triples, weighted by the pairs "
            "of each probe; "
            "seconds per pair x pod pairs answered by the engine" % args.sample,
            "sampled_pairs": args.sample,
            "sampled_allowed": sampled_allowed,
            "sample_seconds": round(naive_seconds, 3),
            "seconds_per_pair": per_pair,
            "extrapolated_seconds": round(naive_extrapolated, 1),
            "allowed_pairs_cross_checked": checked_allowed,
            "verdict_mismatches": mismatches,
        },
        "ratio_naive_to_engine": round(naive_extrapolated / engine_best, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
        handle.write("\n")

    rows = [
        (
            "namespaces / pods / identities",
            "%d / %d / %d"
            % (report["workload"]["namespaces"], report["workload"]["pods"], report["workload"]["identities"]),
        ),
        (
            "policies (NP / CNP / CCNP)",
            "%(NetworkPolicy)d / %(CiliumNetworkPolicy)d / %(CiliumClusterwideNetworkPolicy)d"
            % report["workload"]["policies"],
        ),
        ("probes", str(len(report["workload"]["probes"]))),
        ("pod pairs answered", "{:,}".format(total_pairs)),
        ("allowed / restricted at L7", "{:,} / {:,}".format(pairs["allowed"], pairs["restricted"])),
        ("engine best / median (s)", "%.3f / %.3f" % (engine_best, report["engine"]["median_seconds"])),
        ("target (s)", "< 5.0 (%s)" % ("met" if report["engine"]["meets_target"] else "missed")),
        ("naive per pair (us)", "%.1f" % (per_pair * 1e6)),
        ("naive extrapolated (s)", "{:,.0f}".format(naive_extrapolated)),
        ("naive / engine", "{:,.0f}x".format(report["ratio_naive_to_engine"])),
        ("verdicts cross-checked / mismatches", "%d / %d" % (args.sample + checked_allowed, mismatches)),
    ]
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        print("%s  %s" % (label.ljust(width), value))
    print("written: %s" % os.path.relpath(args.output, ROOT))
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
