# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run zerotrust.cilium.rollout_report through ansible-playbook on localhost.

The play proves the lab's policy set with zerotrust.cilium.network_policy_plan, computes
the network plan with the collection's filters and hands both to rollout_report, as the
verify role does.  The tests read the play's results through the json stdout callback and
the files the module wrote: a first run writes the report, a second changes nothing, check
mode writes nothing, --diff shows the change, and bad input fails with the module's message
and no file written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys
from xml.etree import ElementTree

import pytest
import yaml

# helpers.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import run_playbook  # noqa: E402

FILES = ("report.md", "report.html", "reachability.svg")
SVG = "{http://www.w3.org/2000/svg}"

PLAY = [{
    "name": "Prove the lab policies and write the rollout report",
    "hosts": "localhost",
    "gather_facts": False,
    "vars": {"report_title": "Lab rollout", "report_nodes": []},
    "tasks": [
        {
            "name": "Generate and prove the lab policy set",
            "zerotrust.cilium.network_policy_plan": {
                "managed_namespaces": ["production", "data"],
                "workloads": {
                    "production": [
                        {"name": "frontend", "labels": {"app": "frontend"}, "replicas": 2,
                         "ports": [{"name": "http", "port": 80}]},
                        {"name": "backend", "labels": {"app": "backend"}, "replicas": 2,
                         "ports": [{"name": "api", "port": 8080}]},
                    ],
                    "data": [{"name": "database", "labels": {"app": "database"},
                              "ports": [{"name": "postgres", "port": 5432}]}],
                    "kube-system": [{"name": "coredns", "labels": {"k8s-app": "kube-dns"}, "replicas": 2,
                                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}],
                },
                "flows": [
                    {"name": "frontend-to-backend", "from": "production/frontend", "to": "production/backend",
                     "ports": [{"port": 8080}], "http": [{"method": "GET", "path": "/api/v1/data"}]},
                    {"name": "backend-to-database", "from": "production/backend", "to": "data/database",
                     "ports": [{"port": 5432}]},
                ],
            },
            "register": "policy",
        },
        {
            "name": "Write the rollout report",
            "zerotrust.cilium.rollout_report": {
                "output_dir": "{{ report_dir }}",
                "title": "{{ report_title }}",
                "cluster_name": "lab",
                "mode": "render",
                "nodes": "{{ report_nodes }}",
                "network_plan": {
                    "mtu": "{{ 1500 | zerotrust.cilium.cilium_mtu(tunnel='vxlan') }}",
                    "pod_cidr": "{{ '10.42.0.0/16' | zerotrust.cilium.pod_cidr_plan(nodes=3) }}",
                    "routing": "{{ '10.42.0.0/16' | zerotrust.cilium.routing_mode(nodes=3) }}",
                },
                "policy_proof": {
                    "summary": "{{ policy.summary }}",
                    "proof": "{{ policy.proof }}",
                    "files": "{{ policy.objects | map(attribute='file') | list }}",
                },
            },
            "register": "report",
        },
    ],
}]


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    path = tmp_path_factory.mktemp("rollout-report-play") / "report.yml"
    path.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    return str(path)


def run(playbook, report_dir, check=False, diff=False, **extra_vars):
    extra_vars["report_dir"] = report_dir
    env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    if diff:
        env["ANSIBLE_DIFF_ALWAYS"] = "1"
    completed = run_playbook(playbook, extra_vars=extra_vars, check=check, env=env)
    assert "Traceback" not in completed.stdout + completed.stderr, completed.stderr
    output = json.loads(completed.stdout)
    tasks = dict((task["task"]["name"], task["hosts"]["localhost"]) for task in output["plays"][0]["tasks"])
    return completed, tasks.get("Write the rollout report"), output["stats"]["localhost"]


def contents(directory):
    return dict((name, open(os.path.join(directory, name), "rb").read()) for name in FILES
                if os.path.exists(os.path.join(directory, name)))


def test_the_report_is_written_once_and_a_second_run_changes_nothing(playbook, tmp_path):
    report_dir = str(tmp_path / "report")
    completed, result, stats = run(playbook, report_dir)
    assert completed.returncode == 0, completed.stdout
    assert result["changed"] is True
    assert result["updated"] == [os.path.join(report_dir, name) for name in FILES]
    assert stats["changed"] == 1 and stats["failures"] == 0
    written = contents(report_dir)
    assert sorted(written) == sorted(FILES)
    for name in FILES:
        assert os.stat(os.path.join(report_dir, name)).st_mode & 0o777 == 0o644

    # what the policy engine proved is what the picture shows
    root = ElementTree.fromstring(written["reachability.svg"])
    assert root.get("version") == "1.1"
    labels = dict((element.get("id"), element.text) for element in root.iter(SVG + "text")
                  if (element.get("id") or "").startswith(("zt-row-", "zt-col-")))
    rows = dict((text, key[len("zt-row-"):]) for key, text in labels.items() if key.startswith("zt-row-"))
    columns = dict((text, key[len("zt-col-"):]) for key, text in labels.items() if key.startswith("zt-col-"))
    cells = dict((group.get("id"), group) for group in root.iter(SVG + "g") if group.get("id"))
    frontend_backend = cells["zt-cell-%s-%s" % (rows["production/frontend"], columns["production/backend"])]
    assert "zt-restricted" in frontend_backend.get("class").split()
    assert "zt-declared" in frontend_backend.get("class").split()
    backend_frontend = cells["zt-cell-%s-%s" % (rows["production/backend"], columns["production/frontend"])]
    assert "zt-denied" in backend_frontend.get("class").split()
    assert result["summary"]["policy"] == {"proven": True, "flows": 2, "violations": 0}
    assert result["summary"]["pairs"]["restricted"] == 1
    markdown = written["report.md"].decode("utf-8")
    assert markdown.startswith("# Lab rollout\n")
    assert "| route MTU pods get | 1450 |" in markdown
    assert "Not collected: render mode has no cluster to probe" in markdown

    completed, result, stats = run(playbook, report_dir)
    assert completed.returncode == 0, completed.stdout
    assert result["changed"] is False and result["updated"] == []
    assert stats["changed"] == 0
    assert contents(report_dir) == written


def test_check_mode_writes_nothing(playbook, tmp_path):
    report_dir = str(tmp_path / "report")
    completed, result, stats = run(playbook, report_dir, check=True)
    assert completed.returncode == 0, completed.stdout
    assert result["changed"] is True and len(result["updated"]) == 3
    assert stats["changed"] == 1
    assert not os.path.exists(report_dir)

    run(playbook, report_dir)
    written = contents(report_dir)
    completed, result, stats = run(playbook, report_dir, check=True, report_title="Another title")
    assert completed.returncode == 0
    assert result["changed"] is True
    assert result["updated"] == [os.path.join(report_dir, name) for name in FILES]
    assert contents(report_dir) == written


def test_diff_shows_what_changes(playbook, tmp_path):
    report_dir = str(tmp_path / "report")
    run(playbook, report_dir)
    completed, result, stats = run(playbook, report_dir, diff=True, report_title="Another title")
    assert completed.returncode == 0
    markdown = [entry for entry in result["diff"] if entry["after_header"].endswith("report.md")][0]
    assert markdown["before"].startswith("# Lab rollout\n")
    assert markdown["after"].startswith("# Another title\n")
    assert contents(report_dir)["report.md"].decode("utf-8") == markdown["after"]


def test_bad_input_fails_with_the_module_message_and_writes_nothing(playbook, tmp_path):
    report_dir = str(tmp_path / "report")
    completed, result, stats = run(playbook, report_dir,
                                   report_nodes=[{"name": "zt-lab-w1"}, {"name": "zt-lab-w2", "kernel_verdict": "meh"}])
    assert completed.returncode == 2, completed.stdout
    assert result["failed"] is True
    assert result["msg"] == ("rollout_report: nodes[1].kernel_verdict: 'meh' is not one of: ok, warning, failed, "
                             "unknown")
    assert stats["failures"] == 1
    assert not os.path.exists(report_dir)
