# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network_policy role in render mode, through ansible-playbook (playbooks/policies.yml)
on localhost with an inventory in a temporary directory.

The scenario is the source guide's (default deny in ``production``, frontend -> backend on
TCP 8080 with the HTTP rule GET /api/v1/data) plus an L4 flow from the backend to a
database in ``data``.  The tests read the files the play writes and check them by content;
bad flows and a refused proof must fail the play with the reason and write nothing; check
mode writes nothing; a second run changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import sys

import pytest
import yaml

# helpers.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import run_playbook  # noqa: E402

PLAYBOOK = "playbooks/policies.yml"

WORKLOADS = {
    "production": [
        {"name": "frontend", "labels": {"app": "frontend"}, "replicas": 2, "ports": [{"name": "http", "port": 80}]},
        {"name": "backend", "labels": {"app": "backend"}, "replicas": 2, "ports": [{"name": "api", "port": 8080}]},
    ],
    "data": [{"name": "database", "labels": {"app": "database"}, "ports": [{"name": "postgres", "port": 5432}]}],
    "kube-system": [{"name": "coredns", "labels": {"k8s-app": "kube-dns"},
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}],
    "monitoring": [{"name": "prometheus", "labels": {"app": "prometheus"}, "ports": [{"name": "web", "port": 9090}]}],
}
GUIDE_FLOW = {"name": "frontend-to-backend", "from": "production/frontend", "to": "production/backend",
              "ports": [{"port": 8080, "protocol": "TCP"}], "http": [{"method": "GET", "path": "/api/v1/data"}]}
DATABASE_FLOW = {"name": "backend-to-database", "from": "production/backend", "to": "data/database",
                 "ports": [{"port": 5432, "protocol": "TCP"}]}
GUIDE_L4_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-frontend-to-backend", "namespace": "production"},
    "spec": {"podSelector": {"matchLabels": {"app": "backend"}}, "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                          "ports": [{"protocol": "TCP", "port": 8080}]}]},
}
EXPECTED_FILES = [
    "data/zerotrust-allow-dns.yaml",
    "data/zerotrust-default-deny.yaml",
    "data/zerotrust-flow-backend-to-database-ingress.yaml",
    "production/zerotrust-allow-dns.yaml",
    "production/zerotrust-default-deny.yaml",
    "production/zerotrust-flow-backend-to-database-egress.yaml",
    "production/zerotrust-flow-frontend-to-backend-egress.yaml",
    "production/zerotrust-flow-frontend-to-backend-ingress.yaml",
    "proof.json",
    "proof.md",
]
MANAGED = {"app.kubernetes.io/managed-by": "zerotrust.cilium"}


@pytest.fixture
def inventory(tmp_path):
    """An inventory with localhost as the control plane and the scenario in group_vars."""
    group_vars = tmp_path / "inventory" / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (tmp_path / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"k8s_cluster": {
        "children": {"k8s_control_plane": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}}}))
    (group_vars / "cluster.yml").write_text(yaml.safe_dump({
        "zerotrust_cluster_name": "itest",
        "zerotrust_mode": "render",
        # relative to the inventory, with '..', as the lab's spec has it
        "zerotrust_output_dir": "{{ inventory_dir }}/../output",
        # The policies are rendered on their own, without the cilium phase before them.
        "preconditions_assume_done": ["cilium"],
    }))
    (group_vars / "network_policy.yml").write_text(yaml.safe_dump({
        "network_policy_managed_namespaces": ["production", "data"],
        "network_policy_workloads": WORKLOADS,
        "network_policy_flows": [GUIDE_FLOW, DATABASE_FLOW],
    }))
    return tmp_path


def play(inventory_dir, check=False, **extra_vars):
    completed = run_playbook(PLAYBOOK, inventory=str(inventory_dir / "inventory"), check=check,
                             extra_vars=extra_vars or None, env={"ANSIBLE_DISPLAY_OK_HOSTS": "1"})
    return completed, completed.stdout + completed.stderr


def recap(stdout):
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert match, stdout
    return dict(zip(("ok", "changed", "unreachable", "failed"), (int(group) for group in match.groups())))


def written(tmp_path):
    root = tmp_path / "output" / "policies"
    if not root.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def read_manifest(tmp_path, name):
    text = (tmp_path / "output" / "policies" / name).read_text()
    return text, yaml.safe_load(text)


def test_render_writes_the_policies_and_the_proof_by_content(inventory):
    completed, output = play(inventory)
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    assert written(inventory) == EXPECTED_FILES

    text, ingress = read_manifest(inventory, "production/zerotrust-flow-frontend-to-backend-ingress.yaml")
    assert text.startswith("# Flow frontend-to-backend, ingress side: production/frontend -> production/backend on "
                           "8080/TCP (HTTP GET /api/v1/data).\n")
    assert ingress == {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "zerotrust-flow-frontend-to-backend-ingress", "namespace": "production",
                     "labels": dict(MANAGED, **{"zerotrust.cilium/purpose": "flow",
                                                "zerotrust.cilium/flow": "frontend-to-backend"})},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": "backend"}},
            "ingress": [{
                "fromEndpoints": [{"matchLabels": {"app": "frontend",
                                                   "k8s:io.kubernetes.pod.namespace": "production"}}],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}],
                             "rules": {"http": [{"method": "GET", "path": "/api/v1/data"}]}}],
            }],
        },
    }
    deny = read_manifest(inventory, "production/zerotrust-default-deny.yaml")[1]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    database = read_manifest(inventory, "data/zerotrust-flow-backend-to-database-ingress.yaml")[1]
    assert database["kind"] == "NetworkPolicy"
    assert database["spec"]["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "production"}},
                  "podSelector": {"matchLabels": {"app": "backend"}}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }]
    # The L7 flow is never also opened at L4: no NetworkPolicy mentions port 8080.
    for name in EXPECTED_FILES[:-2]:
        manifest = read_manifest(inventory, name)[1]
        if manifest["kind"] == "NetworkPolicy":
            assert "8080" not in json.dumps(manifest), name

    proof = json.loads((inventory / "output" / "policies" / "proof.json").read_text())
    assert proof["proof"]["ok"] is True
    assert proof["files"] == [
        "data/zerotrust-default-deny.yaml",
        "data/zerotrust-allow-dns.yaml",
        "data/zerotrust-flow-backend-to-database-ingress.yaml",
        "production/zerotrust-default-deny.yaml",
        "production/zerotrust-allow-dns.yaml",
        "production/zerotrust-flow-backend-to-database-egress.yaml",
        "production/zerotrust-flow-frontend-to-backend-egress.yaml",
        "production/zerotrust-flow-frontend-to-backend-ingress.yaml",
    ]
    report = (inventory / "output" / "policies" / "proof.md").read_text()
    assert "**Verdict: proven.**" in report
    assert "| frontend-to-backend | production/frontend | production/backend | 8080/TCP | HTTP GET /api/v1/data " \
           "| 4 / 0 | allowed, restricted at L7 |" in report
    table_8080 = report.split("### 8080/TCP")[1].split("###")[0]
    assert "| production/frontend | allowed (HTTP) | denied |" in table_8080
    assert "| monitoring/prometheus | denied | · |" in table_8080
    table_5432 = report.split("### 5432/TCP")[1].split("###")[0]
    assert "| production/backend | allowed | denied |" in table_5432
    assert "| production/frontend | denied | denied |" in table_5432


def test_second_run_changes_nothing(inventory):
    first, output = play(inventory)
    assert first.returncode == 0, output
    assert recap(first.stdout)["changed"] > 0
    second, output = play(inventory)
    assert second.returncode == 0, output
    assert recap(second.stdout)["changed"] == 0, output


def test_check_mode_writes_nothing(inventory):
    completed, output = play(inventory, check=True)
    assert completed.returncode == 0, output
    assert recap(completed.stdout)["changed"] > 0
    assert written(inventory) == []
    assert not (inventory / "output").exists()


def test_unknown_namespace_in_a_flow_fails_before_anything_is_written(inventory):
    bad = dict(DATABASE_FLOW, to="datbase/database")
    completed, output = play(inventory, network_policy_flows=[GUIDE_FLOW, bad])
    assert completed.returncode == 2, output
    assert ("flow backend-to-database: flows[1].to.namespace: 'datbase' is not a known namespace; known: data, "
            "kube-system, monitoring, production") in output
    assert "Traceback" not in output
    assert written(inventory) == []


def test_bad_ports_fail_naming_the_flow_and_field(inventory):
    bad = dict(DATABASE_FLOW, ports=[{"endPort": 5433}])
    completed, output = play(inventory, network_policy_flows=[bad])
    assert completed.returncode == 2, output
    assert "flow backend-to-database: flows[0].ports[0].endPort: 5433 needs port to be set" in output
    assert written(inventory) == []


def test_refused_proof_shows_the_matrix_and_writes_nothing(inventory):
    completed, output = play(inventory, network_policy_existing_policies=[GUIDE_L4_POLICY])
    assert completed.returncode == 2, output
    assert "network_policy: the proof refuses the policy set, nothing was written or applied. 1 violation(s): " \
           "l7_shadowed (flow frontend-to-backend) production/frontend -> production/backend on 8080/TCP" in output
    assert "Verdict: refused, 1 violation(s)." in output
    assert "| production/frontend | allowed | denied |" in output  # the matrix of the refused set
    assert "Traceback" not in output
    assert written(inventory) == []


def test_files_of_a_removed_flow_are_deleted(inventory):
    first, output = play(inventory)
    assert first.returncode == 0, output
    backup = inventory / "output" / "policies" / "backup" / "production"
    backup.mkdir(parents=True)
    (backup / "networkpolicy-old.yaml").write_text("kind: NetworkPolicy\n")
    second, output = play(inventory, network_policy_flows=[GUIDE_FLOW])
    assert second.returncode == 0, output
    files = written(inventory)
    assert "production/zerotrust-flow-backend-to-database-egress.yaml" not in files
    assert "data/zerotrust-flow-backend-to-database-ingress.yaml" not in files
    assert "production/zerotrust-flow-frontend-to-backend-ingress.yaml" in files
    assert "backup/production/networkpolicy-old.yaml" in files  # backups are never pruned
