# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probes a policy proof expects, and merging several hosts' truth tables.

The proof is made by the collection's own policy engine for the source guide's scenario
(tests/guide_scenario.py), so the probes are checked against what the engine decided, not
against a hand-written matrix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import guide_scenario
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.filter import connectivity as connectivity_filters
from ansible_collections.zerotrust.cilium.plugins.module_utils import connectivity
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

ADDRESSES = {"production/frontend": "10.0.1.5", "production/backend": "10.0.2.7", "data/database": "10.0.3.9"}


def lab_proof():
    return guide_scenario.policy_proof()


def by_key(probes):
    return {(probe["from"], probe["to"], probe["protocol"], probe.get("port"), probe.get("path")): probe["expected"]
            for probe in probes}


def test_every_probed_pair_is_expected_as_the_engine_decided():
    proof = lab_proof()
    probes = connectivity.expected_probes(proof, ADDRESSES, dns_server="10.43.0.10")
    found = by_key(probes)
    # The declared flows: L4 open to the database, L7 rule on the backend plus a path it refuses.
    assert found[("production/backend", "data/database", "tcp", 5432, None)] == "allowed"
    assert found[("production/frontend", "production/backend", "http", 8080, "/api/v1/data")] == "allowed"
    assert found[("production/frontend", "production/backend", "http", 8080, "/zerotrust-verify-denied")] == "denied"
    # Nothing else is open between the managed workloads.
    assert found[("production/frontend", "data/database", "tcp", 5432, None)] == "denied"
    assert found[("production/backend", "production/frontend", "tcp", 80, None)] == "denied"
    assert found[("data/database", "production/backend", "tcp", 8080, None)] == "denied"
    # Every managed workload resolves names through kube-dns.
    for source in ADDRESSES:
        assert found[(source, "kube-system/kube-dns", "dns", None, None)] == "allowed"
    # Each expectation agrees with the proof's own matrix cell.
    cells = {(row["from"], column, table["port"]): cell
             for table in proof["proof"]["matrix"] for row in table["rows"]
             for column, cell in zip(table["columns"], row["cells"])}
    for probe in probes:
        if probe["protocol"] == "tcp":
            assert cells[(probe["from"], probe["to"], probe["port"])] == probe["expected"], probe


def test_no_probe_for_a_workload_to_itself_unknown_workloads_or_world():
    probes = connectivity.expected_probes(lab_proof(), ADDRESSES)
    assert all(probe["from"] != probe["to"] for probe in probes)
    assert all(probe["from"] in ADDRESSES and probe["to"] in ADDRESSES for probe in probes)
    assert not any(probe["protocol"] == "dns" for probe in probes)


def test_the_probes_are_valid_input_for_the_module():
    probes = connectivity.expected_probes(lab_proof(), ADDRESSES, dns_server="10.43.0.10")
    normalised = connectivity.normalise_probes(probes)
    assert len(normalised) == len(probes)
    assert len({probe["name"] for probe in normalised}) == len(probes)


def test_a_proof_with_partly_allowed_cells_leaves_them_out():
    proof = lab_proof()
    table = proof["proof"]["matrix"][0]
    table["rows"] = [{"from": "production/frontend", "cells": ["partly" for _column in table["columns"]]}]
    table["columns"] = ["production/backend"]
    proof["proof"]["matrix"] = [table]
    assert connectivity.expected_probes(proof, ADDRESSES) == []


@pytest.mark.parametrize("proof, addresses, options, message", [
    (None, ADDRESSES, {}, "connectivity_expected: proof: None is not a policy proof (the content of policies/proof.json)"),
    ({"summary": {}}, ADDRESSES, {}, "connectivity_expected: proof: ['summary'] has no matrix: pass the content of "
     "the network_policy role's policies/proof.json"),
    ({"proof": {"matrix": []}}, {}, {}, "connectivity_expected: addresses: {} must map namespace/workload to the "
     "probe pod's address"),
    ({"proof": {"matrix": []}}, {"production/frontend": "frontend.example"}, {},
     "connectivity_expected: addresses[production/frontend]: 'frontend.example' is not"),
    ({"proof": {"matrix": []}}, ADDRESSES, {"dns_server": "kube-dns"}, "connectivity_expected: dns_server: 'kube-dns' is not"),
])
def test_bad_input_names_the_field(proof, addresses, options, message):
    with pytest.raises(InvalidInput) as raised:
        connectivity.expected_probes(proof, addresses, **options)
    assert str(raised.value).startswith(message), str(raised.value)


def report(results):
    return {"results": results, "mismatches": [result["detail"] for result in results if not result["match"]]}


def result(source, target, match):
    return {"name": "%s -> %s tcp/80" % (source, target), "from": source, "to": target, "protocol": "tcp", "port": 80,
            "address": "10.0.0.1", "method": None, "path": None, "query": None, "flow": None, "expected": "allowed",
            "observed": "allowed" if match else "denied", "match": match, "kind": "ok" if match else "blocked",
            "detail": "%s -> %s %s" % (source, target, "ok" if match else "blocked")}


def test_merge_keeps_every_host_s_results_and_recounts():
    merged = connectivity.merge_reports([report([result("a", "b", True), result("a", "c", False)]),
                                         report([result("b", "a", True)])])
    assert [item["name"] for item in merged["results"]] == ["a -> b tcp/80", "a -> c tcp/80", "b -> a tcp/80"]
    assert merged["mismatches"] == ["a -> c blocked"]
    assert merged["summary"] == {"probes": 3, "matched": 2, "blocked": 1, "open": 0, "errors": 0}
    assert merged["matrix"]["sources"] == ["a", "b"] and merged["matrix"]["targets"] == ["a", "b", "c"]
    assert len(merged["table"]) == 4  # header and one line per probe


def test_merge_of_nothing_is_an_empty_table_and_bad_input_is_refused():
    assert connectivity.merge_reports([])["summary"]["probes"] == 0
    with pytest.raises(InvalidInput, match=r"^connectivity_merge: reports: .* must be a list of "):
        connectivity.merge_reports([{"msg": "skipped"}])


def test_the_filters_wrap_the_functions_and_report_errors_as_filter_errors():
    probes = connectivity_filters.connectivity_expected(lab_proof(), addresses=ADDRESSES)
    assert probes == connectivity.expected_probes(lab_proof(), ADDRESSES)
    with pytest.raises(AnsibleFilterError, match=r"^connectivity_merge: reports: "):
        connectivity_filters.connectivity_merge("nope")
