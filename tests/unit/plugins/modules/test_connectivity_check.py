# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/connectivity_check.py: main() with ansible-core's
``patch_module_args`` in each mode, the one failure message listing every mismatch (with
the results still returned), input errors as messages, and probe mode really probing this
machine's loopback in check mode."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

import pytest

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.module_utils import connectivity
from ansible_collections.zerotrust.cilium.plugins.modules import connectivity_check

API = {"from": "production/frontend", "to": "production/api", "address": "10.42.2.7", "protocol": "tcp",
       "port": 8080, "expected": "allowed"}
DB = {"from": "production/frontend", "to": "production/db", "address": "10.42.4.4", "protocol": "tcp",
      "port": 5432, "expected": "denied", "name": "db stays closed"}


def run_main(capsys, args):
    return run_module(connectivity_check, capsys, args)


def test_commands_mode_returns_the_argv_per_probe(capsys):
    code, result = run_main(capsys, {"mode": "commands", "timeout": 1, "probes": [API, DB]})
    assert code == 0, result
    assert result["changed"] is False
    assert result["mode"] == "commands"
    assert result["commands"] == [
        {"name": "production/frontend -> production/api tcp/8080", "from": "production/frontend",
         "argv": ["/agnhost", "connect", "10.42.2.7:8080", "--timeout=1s"]},
        {"name": "db stays closed", "from": "production/frontend",
         "argv": ["/agnhost", "connect", "10.42.4.4:5432", "--timeout=1s"]},
    ]
    assert result["results"][1]["command"] == result["commands"][1]["argv"]
    assert "diff" not in result


def test_compare_mode_fails_once_listing_every_mismatch_and_returns_the_results(capsys):
    code, result = run_main(capsys, {"mode": "compare", "probes": [API, DB], "exec_results": [
        {"name": "production/frontend -> production/api tcp/8080", "rc": 1, "stdout": "", "stderr": "TIMEOUT\n"},
        {"name": "db stays closed", "rc": 0},
    ]})
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == (
        "connectivity_check: 2 of 2 probes do not match the plan: "
        "production/frontend -> production/api tcp/8080: expected allowed but blocked (denied: no answer within 2 s "
        "(agnhost: TIMEOUT)); "
        "db stays closed (production/frontend -> production/db tcp/5432): expected denied but open (allowed: connected "
        "to 10.42.4.4:5432)")
    assert [entry["kind"] for entry in result["results"]] == ["blocked", "open"]
    assert result["summary"] == {"probes": 2, "matched": 0, "blocked": 1, "open": 1, "errors": 0}
    assert result["changed"] is False


def test_compare_mode_without_fail_on_mismatch_only_reports(capsys):
    code, result = run_main(capsys, {"mode": "compare", "probes": [API], "fail_on_mismatch": False, "exec_results": [
        {"name": "production/frontend -> production/api tcp/8080", "rc": 1, "stderr": "REFUSED"}]})
    assert code == 0
    assert "failed" not in result or result["failed"] is False
    assert result["results"][0]["kind"] == "probe_error"
    assert result["mismatches"] == [
        "production/frontend -> production/api tcp/8080: probe error: the probe workload at 10.42.2.7 does not listen "
        "on tcp port 8080, so the network path cannot be judged"]


def test_compare_mode_all_matched(capsys):
    code, result = run_main(capsys, {"mode": "compare", "probes": [API, DB], "exec_results": [
        {"name": "production/frontend -> production/api tcp/8080", "rc": 0},
        {"name": "db stays closed", "rc": 1, "stderr": "TIMEOUT"}]})
    assert code == 0
    assert result["mismatches"] == []
    assert result["summary"] == {"probes": 2, "matched": 2, "blocked": 0, "open": 0, "errors": 0}
    assert result["table"][0].split() == ["FROM", "TO", "PROBE", "EXPECTED", "OBSERVED", "RESULT", "FLOW"]


@pytest.mark.parametrize("args, message", [
    ({"probes": [dict(API, protocol="icmp")]},
     "connectivity_check: probes[0].port: 8080 is not accepted for protocol icmp (ICMP has no ports)"),
    ({"probes": [dict(API, address="api.production.svc")]},
     "connectivity_check: probes[0].address: 'api.production.svc' is not an IPv4 or IPv6 address such as 10.42.1.10 "
     "or fd00::10 (host names and zone ids are not accepted)"),
    ({"probes": [API], "timeout": 0.01},
     "connectivity_check: timeout: 0.01 is out of range: give 0.1 to 30 seconds"),
    ({"mode": "commands", "probes": [API], "netns": "zt-pod"},
     "connectivity_check: netns: 'zt-pod' is only used in mode probe (mode is commands)"),
    ({"mode": "compare", "probes": [API]},
     "connectivity_check: exec_results: None is missing: mode compare needs the {name, rc, stdout, stderr} of each "
     "probe's command"),
    ({"mode": "compare", "probes": [API], "exec_results": [{"name": "other", "rc": 0}]},
     "connectivity_check: exec_results[0].name: 'other' is not the name of a probe"),
])
def test_bad_input_fails_with_one_message_and_nothing_is_probed(capsys, monkeypatch, args, message):
    probed = []
    monkeypatch.setattr(connectivity, "run_probes", lambda *arguments: probed.append(arguments))
    code, result = run_main(capsys, args)
    assert code == 1
    assert result["msg"] == message
    assert probed == []


def test_ansible_refuses_a_probe_without_a_required_key(capsys):
    probe = dict(API)
    del probe["expected"]
    code, result = run_main(capsys, {"probes": [probe]})
    assert code == 1
    assert "missing required arguments: expected" in result["msg"]
    assert "probes" in result["msg"]


def test_probe_mode_probes_the_loopback_even_in_check_mode(capsys):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        code, result = run_main(capsys, {"_ansible_check_mode": True, "timeout": 0.5, "probes": [
            {"from": "host", "to": "loopback", "address": "127.0.0.1", "protocol": "tcp",
             "port": listener.getsockname()[1], "expected": "allowed", "flow": "local"},
            {"from": "host", "to": "loopback", "address": "127.0.0.1", "protocol": "tcp", "port": closed_port,
             "expected": "allowed", "name": "closed port"},
        ]})
    finally:
        listener.close()
    assert code == 1
    assert [(entry["observed"], entry["kind"]) for entry in result["results"]] == [
        ("allowed", "ok"), ("no_listener", "probe_error")]
    assert result["msg"] == (
        "connectivity_check: 1 of 2 probes do not match the plan: closed port (host -> loopback tcp/%d): probe error: "
        "the probe workload at 127.0.0.1 does not listen on tcp port %d, so the network path cannot be judged"
        % (closed_port, closed_port))
    assert result["matrix"]["cells"]["host|loopback"][0]["kind"] == "ok"


def test_a_missing_namespace_is_a_message(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(connectivity, "NETNS_DIR", str(tmp_path))
    code, result = run_main(capsys, {"netns": "zt-itest-missing", "probes": [API]})
    assert code == 1
    assert result["msg"].startswith("connectivity_check: netns: 'zt-itest-missing' does not exist on ")
    assert result["msg"].endswith("(ip netns list: none)")
