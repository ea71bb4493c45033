# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every network math filter through ansible-playbook by its public FQCN.

The playbook asserts the results itself; this test checks that the play really ran all
of its assertions, and that a bad input fails the play with the filter's own message
and no traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import sys

import yaml

# helpers.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import run_playbook  # noqa: E402

PLAYBOOK = "tests/integration/playbooks/network_filters.yml"
FILTERS = ("cilium_mtu", "pod_cidr_plan", "cidr_overlaps", "routing_mode", "conntrack_max")


def _playbook_tasks():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "network_filters.yml")
    with open(path) as handle:
        plays = yaml.safe_load(handle)
    tasks = []
    pending = list(plays[0]["tasks"])
    while pending:
        task = pending.pop(0)
        tasks.append(task)
        pending.extend(task.get("block", []) + task.get("rescue", []))
    return tasks


def _recap(stdout):
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                      r"\s+skipped=(\d+)\s+rescued=(\d+)", stdout)
    assert match, stdout
    keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued")
    return dict(zip(keys, (int(group) for group in match.groups())))


def test_every_filter_works_through_ansible_playbook():
    completed = run_playbook(PLAYBOOK)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    recap = _recap(completed.stdout)
    assert recap["failed"] == 0, output
    # the block/rescue negative case must have been rescued, not skipped
    assert recap["rescued"] == 1, output
    # the bad-input task is skipped unless asked for
    assert recap["skipped"] == 1, output
    # every assert task of the playbook ran and passed
    assert_tasks = [task for task in _playbook_tasks() if "ansible.builtin.assert" in task]
    assert len(assert_tasks) >= len(FILTERS)
    assert completed.stdout.count("All assertions passed") == len(assert_tasks), output
    assert "Traceback" not in output


def test_playbook_calls_every_filter_by_its_fqcn():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", "network_filters.yml")) as handle:
        text = handle.read()
    for filter_name in FILTERS:
        assert "zerotrust.cilium.%s" % filter_name in text


def test_bad_input_fails_the_play_with_the_filter_message():
    completed = run_playbook(PLAYBOOK, extra_vars={"network_filters_bad_tunnel": "vxlann"})
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    assert "cilium_mtu: tunnel: 'vxlann' is not one of: vxlan, geneve, disabled" in output
    assert _recap(completed.stdout)["failed"] == 1, output
    assert "Traceback" not in output
