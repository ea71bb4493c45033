# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source guide's zero-trust scenario, as inventories/lab declares it, for tests.

Workloads and flows are those of inventories/lab/group_vars/all/network_policy.yml; the policy
proof is made by the collection's own policy engine (netpol_generate.plan_policies, as the
network_policy role's module calls it), so tests check against what the engine decided, not
against a hand-written matrix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_generate import plan_policies

MANAGED_NAMESPACES = ["production", "data"]
WORKLOADS = {
    "production": [
        {"name": "frontend", "labels": {"app": "frontend"}, "replicas": 2, "ports": [{"name": "http", "port": 80}]},
        {"name": "backend", "labels": {"app": "backend"}, "replicas": 2, "ports": [{"name": "api", "port": 8080}]},
    ],
    "data": [{"name": "database", "labels": {"app": "database"}, "ports": [{"name": "postgres", "port": 5432}]}],
    "kube-system": [{"name": "coredns", "labels": {"k8s-app": "kube-dns"}, "replicas": 2,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                               {"name": "metrics", "port": 9153}]}],
    "monitoring": [{"name": "prometheus", "labels": {"app": "prometheus"}, "ports": [{"name": "web", "port": 9090}]}],
}
FLOWS = [
    {"name": "frontend-to-backend", "from": "production/frontend", "to": "production/backend",
     "ports": [{"port": 8080, "protocol": "TCP"}], "http": [{"method": "GET", "path": "/api/v1/data"}]},
    {"name": "backend-to-database", "from": "production/backend", "to": "data/database",
     "ports": [{"port": 5432, "protocol": "TCP"}]},
]


def policy_proof(flows=None, workloads=None, **options):
    """proof.json as the network_policy role writes it: {summary, proof, files}."""
    planned = plan_policies(MANAGED_NAMESPACES, FLOWS if flows is None else flows,
                            workloads=WORKLOADS if workloads is None else workloads, **options)
    return json.loads(json.dumps({
        "summary": planned["summary"],
        "proof": planned["proof"],
        "files": [item["file"] for item in planned["objects"]],
    }))
