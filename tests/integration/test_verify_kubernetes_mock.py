# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verify role's kubernetes transport against a MOCK Kubernetes API.

No Kubernetes control plane can run where these tests run. fixtures/mock_kube_api.py stands in
for the API: it stores the probe pods the role creates, gives them the addresses a kubelet
would, and answers each probe command run through kubernetes.core.k8s_exec with the output the
probe image's tools print (agnhost connect, curl, dig), as the test decides. What this proves:
the role creates one probe pod per managed workload with the workload's labels, runs exactly
the probes the policy proof expects in the right source pods, names a probe that contradicts
the plan, writes the report, and removes the probe pods even when it fails. The pieces are
unit-tested on their own (tests/unit/plugins/module_utils/test_connectivity*.py); the lab test
(tests/integration/test_lab.py) runs real probes over real network namespaces.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import guide_scenario
import kubernetes_validate
import pytest

from helpers import ROOT, ansible_playbook_command, collections_path
from mock_api import mock_kube_api, read_state

from ansible_collections.zerotrust.cilium.plugins.module_utils import connectivity

PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "verify_apply.yml")
WORKLOADS = guide_scenario.WORKLOADS
FLOWS = guide_scenario.FLOWS
POD_IPS = {"production/frontend": "10.42.1.5", "production/backend": "10.42.2.7", "data/database": "10.42.3.9"}
DNS_IP = "10.43.0.10"
TIMEOUT = 2


def tool_output(probe, observed):
    """What the probe image's tool prints for ``observed`` (as the unit tests' tool tables show)."""
    if probe["protocol"] == "tcp":
        return {"rc": 0, "stdout": "", "stderr": ""} if observed == "allowed" else \
            {"rc": 1, "stdout": "", "stderr": "TIMEOUT\n"}
    if probe["protocol"] == "http":
        connected = "* Connected to %s (%s) port %d\n" % (probe["address"], probe["address"], probe["port"])
        if observed == "allowed":
            return {"rc": 0, "stdout": "NOW: 2026-11-26 12:00:00\n200 0.000412", "stderr": connected}
        return {"rc": 0, "stdout": "Access denied\r\n\n403 0.000388", "stderr": connected}
    if probe["protocol"] == "dns":
        return {"rc": 0, "stdout": ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4711\n", "stderr": ""}
    raise AssertionError(probe)


def proof():
    return guide_scenario.policy_proof()


def expected_probes():
    return connectivity.normalise_probes(connectivity.expected_probes(proof(), POD_IPS, dns_server=DNS_IP))


def mock_state(wrong=()):
    """Objects (kube-dns), the probe pods' addresses, and one exec answer per expected probe.

    Each probe answers as the plan expects, except those named in ``wrong``, which answer the
    opposite.
    """
    answers = {}
    for probe in expected_probes():
        observed = probe["expected"] if probe["name"] not in wrong else (
            "denied" if probe["expected"] == "allowed" else "allowed")
        if probe["protocol"] == "http" and observed == "denied":
            observed = "l7_denied"
        pod = "zt-probe-%s" % probe["from"].split("/")[1]
        command = " ".join(connectivity.probe_command(probe, TIMEOUT))
        answers.setdefault(pod, {})[command] = tool_output(probe, observed)
    pod_status = {}
    for label, address in POD_IPS.items():
        namespace, workload = label.split("/")
        pod_status["%s/zt-probe-%s" % (namespace, workload)] = {"phase": "Running", "podIP": address}
    kube_dns = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system"},
                "spec": {"clusterIP": DNS_IP, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}
    return {"objects": [kube_dns], "exec": answers, "requests": [], "pod_status": pod_status}


@pytest.fixture
def mock_api(tmp_path):
    """A mock Kubernetes API on 127.0.0.1 and a kubeconfig for it; stopped even on failure."""
    with mock_kube_api(tmp_path, mock_state()) as (state_file, kubeconfig):
        output_dir = tmp_path / "output"
        (output_dir / "policies").mkdir(parents=True)
        (output_dir / "policies" / "proof.json").write_text(json.dumps(proof()))
        yield {"state_file": state_file, "kubeconfig": kubeconfig, "output_dir": str(output_dir),
               "tmp_path": tmp_path}


def run_verify(api, **extra_vars):
    inventory = api["tmp_path"] / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"k8s_cluster": {"hosts": {"zt-itest-verify": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
    settings = {
        "zerotrust_cluster_name": "mock",
        "zerotrust_mode": "apply",
        "zerotrust_output_dir": api["output_dir"],
        "zerotrust_kubeconfig": api["kubeconfig"],
        "network_policy_managed_namespaces": ["production", "data"],
        "network_policy_workloads": WORKLOADS,
        "network_policy_flows": FLOWS,
        "verify_mtu": False,
        "verify_probe_timeout": TIMEOUT,
        "verify_probe_wait_seconds": 6,
    }
    settings.update(extra_vars)
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0")
    return subprocess.run([ansible_playbook_command(), PLAYBOOK, "--inventory", str(inventory),
                           "--extra-vars", json.dumps(settings)],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900, check=False)


def state(api):
    return read_state(api["state_file"])


def test_probe_pods_carry_the_workload_labels_and_every_expected_probe_runs(mock_api):
    run = run_verify(mock_api)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    requests = state(mock_api)["requests"]
    created = sorted(request[2:] for request in requests if request[:2] == ["POST", "Pod"])
    assert created == [["data", "zt-probe-database"], ["production", "zt-probe-backend"],
                       ["production", "zt-probe-frontend"]]
    # Every probe the proof expects ran once, in its source workload's probe pod, and nothing else.
    expected = sorted(["zt-probe-%s" % probe["from"].split("/")[1], " ".join(connectivity.probe_command(probe, TIMEOUT))]
                      for probe in expected_probes())
    assert sorted(request[1:] for request in requests if request[0] == "EXEC") == expected
    # The probe pods are gone again.
    assert [obj for obj in state(mock_api)["objects"] if obj["kind"] == "Pod"] == []
    assert sorted(request[2:] for request in requests if request[:2] == ["DELETE", "Pod"]) == created
    with open(os.path.join(mock_api["output_dir"], "report.md")) as stream:
        report = stream.read()
    count = len(expected_probes())
    assert "| Connectivity | ok | %d of %d probes agree with the plan |" % (count, count) in report


def test_the_probe_pod_selects_like_the_workload_and_stays_out_of_services(tmp_path):
    render = subprocess.run(
        [ansible_playbook_command(), os.path.join(ROOT, "tests", "integration", "playbooks", "verify_probe_pod.yml"),
         "--extra-vars", json.dumps({"probe_pod_file": str(tmp_path / "pod.json"),
                                     "verify_probe_image": "mirror.example/agnhost:2.53",
                                     "verify_probe_image_pull_secrets": ["mirror-pull"]})],
        cwd=ROOT, env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1"),
        capture_output=True, text=True, timeout=300, check=False)
    assert render.returncode == 0, render.stdout[-3000:]
    manifest = json.loads((tmp_path / "pod.json").read_text())
    # A valid Pod by the Kubernetes API's own schema (offline), unknown fields refused.
    kubernetes_validate.validate(manifest, "1.31", strict=True)
    assert manifest["metadata"]["labels"] == {"app": "backend", "app.kubernetes.io/managed-by": "zerotrust.cilium",
                                              "zerotrust.cilium/probe": "true"}
    assert manifest["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    [container] = manifest["spec"]["containers"]
    assert container["image"] == "mirror.example/agnhost:2.53"
    assert container["args"] == ["netexec", "--http-port=8080", "--udp-port=-1"]
    assert container["readinessProbe"]["exec"]["command"] == ["/bin/false"]


def test_a_probe_that_contradicts_the_plan_is_named_and_the_probe_pods_are_removed(mock_api):
    wrong = [probe["name"] for probe in expected_probes()
             if probe["from"] == "production/frontend" and probe["to"] == "data/database"]
    assert len(wrong) == 1
    with open(mock_api["state_file"], "w") as stream:
        json.dump(mock_state(wrong=wrong), stream)
    run = run_verify(mock_api)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-4000:]
    assert "expected denied but open" in output and wrong[0] in output, output[-4000:]
    assert "Traceback" not in output
    assert [obj for obj in state(mock_api)["objects"] if obj["kind"] == "Pod"] == []
    with open(os.path.join(mock_api["output_dir"], "report.md")) as stream:
        report = stream.read()
    count = len(expected_probes())
    assert "| Connectivity | **1 mismatch(es)** | %d of %d probes agree with the plan |" % (count - 1, count) in report
