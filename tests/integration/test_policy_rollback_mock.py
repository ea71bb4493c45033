# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rollback.yml for the policy set, against a MOCK Kubernetes API.

No Kubernetes control plane can run where these tests run: fixtures/mock_kube_api.py stands in
for the API server (objects of the policy kinds, get/list by label, create, delete). What this
proves: the rollback removes exactly the collection's policy objects from the managed
namespaces, puts the backed-up set back, and stops, changing nothing, without a backup.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest
import yaml

from helpers import ROOT, ansible_playbook_command, collections_path
from mock_api import mock_kube_api, read_state

PLAYBOOK = os.path.join(ROOT, "playbooks", "rollback.yml")
MANAGED = {"app.kubernetes.io/managed-by": "zerotrust.cilium"}


def policy(kind, namespace, name, labels=None):
    api_version = "networking.k8s.io/v1" if kind == "NetworkPolicy" else "cilium.io/v2"
    body = {"podSelector": {}, "policyTypes": ["Ingress"]} if kind == "NetworkPolicy" else {"endpointSelector": {}}
    metadata = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": body}


def cluster_state():
    return {"objects": [
        policy("NetworkPolicy", "production", "zerotrust-default-deny", MANAGED),
        policy("CiliumNetworkPolicy", "production", "zerotrust-flow-frontend-to-backend-ingress", MANAGED),
        policy("NetworkPolicy", "data", "zerotrust-default-deny", MANAGED),
        # Not the collection's: stays.
        policy("NetworkPolicy", "production", "team-allow-monitoring", {"team": "web"}),
        # In a namespace the collection does not manage: stays, label or not.
        policy("NetworkPolicy", "monitoring", "zerotrust-default-deny", MANAGED),
    ], "exec": {}, "requests": []}


def names(state):
    return sorted("%s %s/%s" % (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
                  for obj in state["objects"])


def run_rollback(tmp_path, kubeconfig, output_dir, check=False):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"k8s_cluster": {"children": {"k8s_control_plane": {
        "hosts": {"zt-itest-rollback": {"ansible_connection": "local",
                                        "ansible_python_interpreter": sys.executable}}}}}}}}))
    settings = {"zerotrust_rollback": ["policies"], "zerotrust_cluster_name": "mock", "zerotrust_mode": "apply",
                "zerotrust_output_dir": str(output_dir), "zerotrust_kubeconfig": kubeconfig,
                "network_policy_managed_namespaces": ["production", "data"]}
    command = [ansible_playbook_command(), PLAYBOOK, "--inventory", str(inventory), "--extra-vars", json.dumps(settings)]
    if check:
        command.append("--check")
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0")
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.fixture
def backed_up(tmp_path):
    """An output directory with the backup an earlier apply wrote: the team's old default deny."""
    output_dir = tmp_path / "output"
    backup = output_dir / "policies" / "backup" / "production"
    backup.mkdir(parents=True)
    old = policy("NetworkPolicy", "production", "old-default-deny", {"team": "web"})
    (backup / "networkpolicy-old-default-deny.yaml").write_text(yaml.safe_dump(old))
    return output_dir


def test_rollback_removes_the_collection_s_set_and_restores_the_backup(tmp_path, backed_up):
    with mock_kube_api(tmp_path, cluster_state()) as (state_file, kubeconfig):
        checked = run_rollback(tmp_path, kubeconfig, backed_up, check=True)
        assert checked.returncode == 0, (checked.stdout + checked.stderr)[-3000:]
        assert names(read_state(state_file)) == names(cluster_state())
        rolled_back = run_rollback(tmp_path, kubeconfig, backed_up)
        state = read_state(state_file)
    output = rolled_back.stdout + rolled_back.stderr
    assert rolled_back.returncode == 0, output[-3000:]
    assert names(state) == [
        "NetworkPolicy monitoring/zerotrust-default-deny",
        "NetworkPolicy production/old-default-deny",
        "NetworkPolicy production/team-allow-monitoring",
    ]
    assert "removed 3 object(s) of the collection's set from production, data and applied 1 backed-up object(s)" in output


def test_without_a_backup_the_rollback_stops_and_changes_nothing(tmp_path):
    output_dir = tmp_path / "never-applied"
    with mock_kube_api(tmp_path, cluster_state()) as (state_file, kubeconfig):
        failed = run_rollback(tmp_path, kubeconfig, output_dir)
        state = read_state(state_file)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "network_policy rollback: there is no backup directory %s/policies/backup" % output_dir in output
    assert names(state) == names(cluster_state())
    assert not [request for request in state["requests"] if request[0] in ("DELETE", "POST", "PATCH")]
