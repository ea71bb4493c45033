# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/report.py: the rollout report and its reachability picture.

The policy proof is produced here by the collection's own policy engine
(``netpol_generate.plan_policies``, as the network_policy_plan module calls it) from the
lab's workloads and flows (inventories/lab/group_vars/all/network_policy.yml), and the
network plan by the plan role's filters' functions, so the inputs have the shapes the
roles really pass.  Connectivity results follow connectivity_check's result format.
The SVG is parsed with xml.etree and checked cell by cell.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import re
from html.parser import HTMLParser
from xml.etree import ElementTree

import guide_scenario
import pytest

from ansible_collections.zerotrust.cilium.plugins.module_utils import cidr, mtu, report
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs

SVG = "{http://www.w3.org/2000/svg}"

# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

LAB_WORKLOADS = guide_scenario.WORKLOADS
LAB_FLOWS = guide_scenario.FLOWS
policy_proof = guide_scenario.policy_proof


LAB_PROOF = policy_proof()

NETWORK_PLAN = {
    "mtu": mtu.plan_mtu(1500, tunnel="vxlan"),
    "pod_cidr": cidr.pod_cidr_plan("10.42.0.0/16", nodes=3),
    "routing": cidr.routing_mode("10.42.0.0/16", nodes=3, node_subnets=["172.31.213.0/24"]),
}

NODES = [
    {"name": "zt-lab-w1", "kernel_release": "6.1.0-28-amd64", "kernel_verdict": "warning",
     "kernel_findings": [{"item": "CONFIG_BPF", "status": "ok", "detail": "y"},
                         {"item": "CONFIG_SCHEDSTATS", "status": "warning", "detail": "[base] not set"}],
     "sysctls": [{"key": "net.ipv4.ip_forward", "expected": "1", "running": "1", "status": "ok"},
                 {"key": "net.netfilter.nf_conntrack_max", "expected": "262144", "running": "65536",
                  "status": "differs"}]},
    {"name": "zt-lab-cp1", "kernel_release": "4.18.0-553.el8_10.x86_64", "kernel_verdict": "failed",
     "kernel_findings": [{"item": "CONFIG_NETKIT", "status": "missing", "detail": "[netkit] not set",
                          "feature": "netkit", "severity": "required"}],
     "sysctls": [{"key": "net.ipv4.ip_forward", "expected": "1", "running": "1", "status": "ok"}]},
]

MTU_PROBES = [
    {"source": "zt-lab-cp1", "target": "zt-lab-w1", "address": "10.42.21.10", "expected_mtu": 1450,
     "path_mtu": 1450, "status": "ok", "message": "DF packets of 1450 bytes get through"},
    {"source": "zt-lab-w1", "name": "zt-lab-w2", "address": "10.42.22.10", "expected_mtu": 1500, "path_mtu": 1450,
     "status": "black_hole", "message": "DF packets from 1451 bytes are lost silently (black hole)",
     "black_hole_from": 1451, "fix_mtu": 1450},
]

VALUES = {
    "MTU": 1500,                                       # chart default 0: changed
    "kubeProxyReplacement": True,                      # chart default "false" (a string): changed
    "loadBalancer": {"algorithm": "maglev"},           # not in the chart's values: added
    "policyEnforcementMode": "default",                # the chart default: left out
    "hubble": {"enabled": True, "relay": {"enabled": True}},   # enabled is the default, relay.enabled is not
    "operator": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}},
}


def probe(name, source, target, protocol, port, expected, observed, match, kind, method=None, path=None,
          flow=None, detail="", query=None):
    """One result as zerotrust.cilium.connectivity_check returns it."""
    return {"name": name, "from": source, "to": target, "protocol": protocol, "port": port, "address": "10.0.0.1",
            "method": method, "path": path, "query": query, "flow": flow, "expected": expected, "observed": observed,
            "match": match, "kind": kind, "detail": detail}


CONNECTIVITY = {
    "results": [
        probe("frontend-get", "production/frontend", "production/backend", "http", 8080, "allowed", "allowed", True,
              "ok", method="GET", path="/api/v1/data", flow="frontend-to-backend", detail="HTTP 200"),
        probe("frontend-post", "production/frontend", "production/backend", "http", 8080, "denied", "allowed", False,
              "open", method="POST", path="/api/v1/data", detail="expected denied but open (allowed: HTTP 200)"),
        probe("backend-database", "production/backend", "data/database", "tcp", 5432, "allowed", "allowed", True, "ok",
              flow="backend-to-database", detail="connected"),
        probe("database-frontend", "data/database", "production/frontend", "tcp", 80, "denied", "denied", True, "ok",
              detail="timed out after 2s"),
    ],
    "summary": {"probes": 4, "matched": 3, "blocked": 0, "open": 1, "errors": 0},
}


def full_options(**changes):
    options = dict(output_dir="/srv/report", cluster_name="lab", mode="apply", nodes=NODES,
                   network_plan=NETWORK_PLAN, mtu_probes=MTU_PROBES, cilium_values=VALUES, policy_proof=LAB_PROOF,
                   connectivity=CONNECTIVITY)
    options.update(changes)
    return copy.deepcopy(options)


# --------------------------------------------------------------------------------------
# Reading the picture
# --------------------------------------------------------------------------------------


def parse_svg(text):
    return ElementTree.fromstring(text.encode("utf-8"))


def svg_cells(text):
    """{(source, destination): the cell's <g>} read from the labels and cell ids."""
    root = parse_svg(text)
    rows = {}
    columns = {}
    for element in root.iter(SVG + "text"):
        match = re.match(r"^zt-(row|col)-(\d+)$", element.get("id") or "")
        if match:
            (rows if match.group(1) == "row" else columns)[int(match.group(2))] = element.text
    cells = {}
    for group in root.iter(SVG + "g"):
        match = re.match(r"^zt-cell-(\d+)-(\d+)$", group.get("id") or "")
        if match:
            cells[(rows[int(match.group(1))], columns[int(match.group(2))])] = group
    return cells


def fill_of(cell):
    return [rect for rect in cell.findall(SVG + "rect") if rect.get("class") == "zt-fill"][0].get("fill")


def flow_marks(cell):
    return [rect for rect in cell.findall(SVG + "rect") if rect.get("class") == "zt-flow"]


def marks(cell, css_class):
    return [group for group in cell.findall(SVG + "g") if group.get("class") == css_class]


def cell_lines(cell):
    return [element.text for element in cell.findall(SVG + "text")]


def expected_verdict(texts):
    """The grid verdict of a pair from its per-port proof cells, worked out independently."""
    if not texts:
        return "unevaluated"
    if any(text in ("allowed", "partly L7") for text in texts):
        return "allowed"
    if any(text.startswith("allowed (") for text in texts):
        return "restricted"
    if "partly" in texts:
        return "partly"
    if "denied" in texts:
        return "denied"
    if u"\u2013" in texts:
        return "self"
    return "unevaluated"


def proof_texts(proof):
    """{(source, destination): [cell text per port]} from the proof's matrix."""
    texts = {}
    for table in proof["proof"]["matrix"]:
        for row in table["rows"]:
            for column, text in zip(table["columns"], row["cells"]):
                texts.setdefault((row["from"], column), []).append(text)
    return texts


# --------------------------------------------------------------------------------------
# The picture from the policy proof
# --------------------------------------------------------------------------------------


def test_every_cell_has_the_colour_of_its_planned_verdict():
    svg = report.build_report(**full_options())["files"]["reachability.svg"]
    cells = svg_cells(svg)
    texts = proof_texts(LAB_PROOF)
    sources = set(source for source, _target in texts)
    targets = set(target for _source, target in texts)
    assert set(cells) == set((source, target) for source in sources for target in targets)
    for pair, cell in cells.items():
        verdict = expected_verdict(texts.get(pair, []))
        assert fill_of(cell) == report.VERDICT_FILLS[verdict], pair
        assert "zt-" + verdict in cell.get("class").split(), pair


def test_the_lab_cells_show_what_the_proof_means():
    cells = svg_cells(report.build_report(**full_options())["files"]["reachability.svg"])
    allowed, restricted, denied = (report.VERDICT_FILLS[name] for name in ("allowed", "restricted", "denied"))
    frontend_backend = cells[("production/frontend", "production/backend")]
    assert fill_of(frontend_backend) == restricted
    assert cell_lines(frontend_backend) == ["8080/TCP GET /api/v1/data"]
    backend_database = cells[("production/backend", "data/database")]
    assert fill_of(backend_database) == allowed
    assert cell_lines(backend_database) == ["5432/TCP"]
    # DNS on both protocols, merged into one cell
    assert cell_lines(cells[("data/database", "kube-system/coredns")]) == ["53/TCP", "53/UDP"]
    assert cells[("data/database", "kube-system/coredns")].find(SVG + "title").text == (
        "data/database \u2192 kube-system/coredns: allowed\n53/TCP\n53/UDP\n"
        "per port: 53/TCP allowed, 9153/TCP denied, 53/UDP allowed")
    # nothing undeclared gets in or out
    assert fill_of(cells[("monitoring/prometheus", "production/frontend")]) == denied
    assert fill_of(cells[("production/frontend", "world")]) == denied
    assert fill_of(cells[("production/backend", "kube-apiserver")]) == denied
    # a single-pod workload to itself, and a pair the proof did not evaluate
    assert fill_of(cells[("data/database", "data/database")]) == report.VERDICT_FILLS["self"]
    assert fill_of(cells[("kube-system/coredns", "kube-system/coredns")]) == report.VERDICT_FILLS["unevaluated"]


def test_declared_flow_cells_are_outlined_and_no_others():
    cells = svg_cells(report.build_report(**full_options())["files"]["reachability.svg"])
    outlined = sorted(pair for pair, cell in cells.items() if flow_marks(cell))
    assert outlined == [("production/backend", "data/database"), ("production/frontend", "production/backend")]
    title = flow_marks(cells[("production/frontend", "production/backend")])[0].find(SVG + "title").text
    assert title == "declared flow: frontend-to-backend"


def test_a_mismatch_is_marked_on_exactly_its_cell():
    cells = svg_cells(report.build_report(**full_options())["files"]["reachability.svg"])
    crossed = [pair for pair, cell in cells.items() if marks(cell, "zt-mismatch")]
    assert crossed == [("production/frontend", "production/backend")]
    tooltip = marks(cells[crossed[0]], "zt-mismatch")[0].find(SVG + "title").text
    assert "frontend-post: 8080/HTTP POST /api/v1/data expected denied, observed allowed" in tooltip
    assert "frontend-get" not in tooltip
    checked = sorted(pair for pair, cell in cells.items() if marks(cell, "zt-match"))
    assert checked == [("data/database", "production/frontend"), ("production/backend", "data/database")]


def test_without_connectivity_no_cell_carries_a_probe_mark():
    svg = report.build_report(**full_options(connectivity=None))["files"]["reachability.svg"]
    for cell in svg_cells(svg).values():
        assert not marks(cell, "zt-mismatch") and not marks(cell, "zt-match")
    legend = [group.get("class") for group in parse_svg(svg).iter(SVG + "g") if "zt-legend-item" in
              (group.get("class") or "")]
    assert not [css for css in legend if "match" in css]


def test_the_legend_names_every_colour_and_mark():
    root = parse_svg(report.build_report(**full_options())["files"]["reachability.svg"])
    legend = [group for group in root.iter(SVG + "g") if group.get("class") == "zt-legend"]
    assert len(legend) == 1
    items = dict((group.get("class").split()[1], group) for group in legend[0].iter(SVG + "g")
                 if "zt-legend-item" in group.get("class"))
    for verdict in report.VERDICTS:
        swatch = items["zt-legend-" + verdict].find(SVG + "rect")
        assert swatch.get("fill") == report.VERDICT_FILLS[verdict]
        assert items["zt-legend-" + verdict].find(SVG + "text").text == report.VERDICT_LABELS[verdict]
    assert items["zt-legend-flow"].find(SVG + "text").text == "declared flow"
    assert items["zt-legend-mismatch"].find(SVG + "text").text == "a probe disagrees with the plan"
    assert items["zt-legend-match"].find(SVG + "text").text == "probes agree with the plan"


def test_the_picture_is_svg_1_1_with_size_and_view_box():
    svg = report.build_report(**full_options())["files"]["reachability.svg"]
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    root = parse_svg(svg)
    assert root.tag == SVG + "svg"
    assert root.get("version") == "1.1"
    width, height = int(root.get("width")), int(root.get("height"))
    assert root.get("viewBox") == "0 0 %d %d" % (width, height)
    assert root.find(SVG + "title").text == "Reachability: Cilium zero-trust rollout report"
    # every pattern a fill refers to is defined
    defined = set(pattern.get("id") for pattern in root.iter(SVG + "pattern"))
    used = set(re.findall(r"url\(#([^)]+)\)", svg))
    assert used and used <= defined
    # nothing lies outside the picture
    for rect in root.iter(SVG + "rect"):
        if rect.get("x") is not None:
            assert float(rect.get("x")) + float(rect.get("width")) <= width
            assert float(rect.get("y")) + float(rect.get("height")) <= height


def test_long_cell_lines_wrap_and_columns_are_wide_enough():
    proof = policy_proof(flows=LAB_FLOWS[:1] + [dict(LAB_FLOWS[0], name="frontend-to-backend-reports", http=[
        {"method": "GET", "path": "/api/v1/reports/monthly"}])])
    root = parse_svg(report.build_report(output_dir="/x", policy_proof=proof)["files"]["reachability.svg"])
    cells = svg_cells(report.build_report(output_dir="/x", policy_proof=proof)["files"]["reachability.svg"])
    cell = cells[("production/frontend", "production/backend")]
    # one HTTP rule a line, the next ones indented to start under the first
    assert cell_lines(cell) == ["8080/TCP GET /api/v1/data", "GET /api/v1/reports/monthly"]
    first, second = cell.findall(SVG + "text")
    assert float(second.get("x")) - float(first.get("x")) == report.text_width("8080/TCP ")
    assert float(second.get("y")) - float(first.get("y")) == 15
    rect = [item for item in cell.findall(SVG + "rect") if item.get("class") == "zt-fill"][0]
    right_edge = float(second.get("x")) + report.text_width(second.text)
    assert int(rect.get("x")) + int(rect.get("width")) >= right_edge + 6
    assert int(rect.get("y")) + int(rect.get("height")) >= float(second.get("y")) + 4
    assert root.find(SVG + "title") is not None


def test_long_column_labels_are_rotated_and_short_ones_are_not():
    rotated = parse_svg(report.build_report(**full_options())["files"]["reachability.svg"])
    labels = [element for element in rotated.iter(SVG + "text") if element.get("class") == "zt-col-label"]
    assert labels and all("rotate(-90)" in element.get("transform") for element in labels)
    connectivity = {"results": [probe("p", "a", "b", "tcp", 80, "allowed", "allowed", True, "ok")]}
    plain = parse_svg(report.build_report(output_dir="/x", connectivity=connectivity)["files"]["reachability.svg"])
    labels = [element for element in plain.iter(SVG + "text") if element.get("class") == "zt-col-label"]
    assert [element.text for element in labels] == ["b"]
    assert all(element.get("transform") is None for element in labels)


def test_flows_to_a_selector_a_namespace_and_dns_names_mark_their_cells():
    flows = LAB_FLOWS + [
        {"name": "scrape-frontend", "from": "monitoring/prometheus",
         "to": {"namespace": "production", "selector": {"matchLabels": {"app": "frontend"}}}, "ports": [{"port": 80}]},
        {"name": "backend-to-api", "from": "production/backend", "to_fqdns": ["api.example.com"],
         "ports": [{"port": 443}]},
        {"name": "data-to-metrics", "from": "data", "to": "kube-system/coredns", "ports": [{"port": 9153}]},
    ]
    proof = policy_proof(flows=flows)
    cells = svg_cells(report.build_report(output_dir="/x", policy_proof=proof)["files"]["reachability.svg"])
    outlined = dict((pair, flow_marks(cell)[0].find(SVG + "title").text) for pair, cell in cells.items()
                    if flow_marks(cell))
    assert outlined == {
        ("production/frontend", "production/backend"): "declared flow: frontend-to-backend",
        ("production/backend", "data/database"): "declared flow: backend-to-database",
        ("monitoring/prometheus", "production/frontend"): "declared flow: scrape-frontend",
        ("production/backend", "world"): "declared flow: backend-to-api",
        ("data/database", "kube-system/coredns"): "declared flow: data-to-metrics",
    }
    assert cell_lines(cells[("production/backend", "world")]) == ["443/TCP api.example.com"]
    assert fill_of(cells[("production/backend", "world")]) == report.VERDICT_FILLS["restricted"]
    assert cell_lines(cells[("data/database", "kube-system/coredns")]) == ["53/TCP", "9153/TCP", "53/UDP"]


def hand_proof(cells, flows=()):
    """A one-table proof (8080/TCP, columns b and c) with the given cells for row a."""
    return {"files": [], "summary": {}, "proof": {"ok": True, "flows": list(flows), "matrix": [
        {"port": 8080, "protocol": "TCP", "columns": ["ns/b", "ns/c"], "rows": [{"from": "ns/a", "cells": cells}]}]}}


@pytest.mark.parametrize("cell_text, verdict, line", [
    ("allowed", "allowed", "8080/TCP"),
    ("partly L7", "allowed", "8080/TCP (partly L7)"),
    ("allowed (HTTP)", "restricted", "8080/TCP (HTTP)"),
    ("allowed (DNS+HTTP)", "restricted", "8080/TCP (DNS+HTTP)"),
    ("partly", "partly", "8080/TCP (partly)"),
    ("denied", "denied", "denied"),
    (u"\u00b7", "unevaluated", None),
])
def test_each_proof_verdict_has_its_colour_and_text(cell_text, verdict, line):
    svg = report.build_report(output_dir="/x", policy_proof=hand_proof([cell_text, "denied"]))["files"][
        "reachability.svg"]
    cell = svg_cells(svg)[("ns/a", "ns/b")]
    assert fill_of(cell) == report.VERDICT_FILLS[verdict]
    assert cell_lines(cell) == ([line] if line else [])


def test_a_declared_flow_the_policies_deny_is_outlined_on_a_red_cell():
    flow = {"name": "a-to-b", "from": "ns/a", "to": "ns/b", "ports": ["8080/TCP"], "l7": "", "http": [],
            "fqdns": [], "pairs": {"allowed": 0, "restricted": 0, "denied": 1}, "verdict": "denied"}
    built = report.build_report(output_dir="/x", policy_proof=hand_proof(["denied", "denied"], [flow]))
    cell = svg_cells(built["files"]["reachability.svg"])[("ns/a", "ns/b")]
    assert fill_of(cell) == report.VERDICT_FILLS["denied"]
    assert len(flow_marks(cell)) == 1
    assert "| `a-to-b` | `ns/a` | `ns/b` | 8080/TCP | – | 0 / 0 / 1 | **denied** |" in built["files"]["report.md"]


def test_labels_and_texts_are_escaped_everywhere():
    proof = json.loads(json.dumps(LAB_PROOF).replace("monitoring/prometheus", "monitoring/a<b&c"))
    connectivity = {"results": [probe('x"<y>', "monitoring/a<b&c", "production/frontend", "tcp", 80, "denied",
                                      "allowed", False, "open", detail="A&B <script>alert(1)</script>")]}
    built = report.build_report(output_dir="/x", title="Report <&> \"lab\"", policy_proof=proof,
                                connectivity=connectivity, cluster_name="a<b&c")
    svg = built["files"]["reachability.svg"]
    assert "a<b&c" not in svg and "monitoring/a&lt;b&amp;c" in svg
    cells = svg_cells(svg)
    assert ("monitoring/a<b&c", "production/frontend") in cells
    cell = cells[("monitoring/a<b&c", "production/frontend")]
    assert fill_of(cell) == report.VERDICT_FILLS["denied"]
    assert "x\"<y>: 80/TCP expected denied, observed allowed (A&B <script>alert(1)</script>)" in \
        marks(cell, "zt-mismatch")[0].find(SVG + "title").text
    assert parse_svg(svg).find(SVG + "title").text == "Reachability: Report <&> \"lab\""
    page = built["files"]["report.html"]
    assert "<script>" not in page
    parsed = PageParser.parse(page)
    assert "monitoring/a<b&c" in parsed.text
    assert "A&B <script>alert(1)</script>" in parsed.text
    assert parsed.title == "Report <&> \"lab\""
    markdown = built["files"]["report.md"]
    assert "# Report \\<\\&\\> \"lab\"" in markdown
    assert "`monitoring/a<b&c`" in markdown  # a code span shows its text as it is
    assert "A\\&B \\<script\\>alert(1)\\</script\\>" in markdown


def test_characters_xml_cannot_carry_are_replaced():
    connectivity = {"results": [probe("bell\x07", "a", "b", "tcp", 80, "allowed", "allowed", True, "ok")]}
    built = report.build_report(output_dir="/x", connectivity=connectivity, title="t\x00")
    parse_svg(built["files"]["reachability.svg"])
    assert "\x07" not in built["files"]["report.html"] and "\x00" not in built["files"]["report.md"]
    assert u"bell\ufffd" in built["files"]["report.md"]


# --------------------------------------------------------------------------------------
# The picture from connectivity results alone (the lab's open matrix)
# --------------------------------------------------------------------------------------


def test_without_a_proof_the_grid_comes_from_the_probes():
    connectivity = {"results": [
        probe("w1-w2-http", "zt-lab-w1", "zt-lab-w2", "http", 8080, "allowed", "allowed", True, "ok", method="GET",
              path="/api/v1/data"),
        probe("w1-w2-post", "zt-lab-w1", "zt-lab-w2", "http", 8080, "denied", "l7_denied", True, "ok", method="POST",
              path="/api/v1/data"),
        probe("w2-w1-tcp", "zt-lab-w2", "zt-lab-w1", "tcp", 5432, "allowed", "denied", False, "blocked",
              detail="timed out after 2s", flow="backend-to-database"),
        probe("cp1-w1-tcp", "zt-lab-cp1", "zt-lab-w1", "tcp", 5432, "denied", "denied", True, "ok"),
    ]}
    built = report.build_report(output_dir="/x", connectivity=connectivity)
    cells = svg_cells(built["files"]["reachability.svg"])
    assert fill_of(cells[("zt-lab-w1", "zt-lab-w2")]) == report.VERDICT_FILLS["restricted"]
    assert cell_lines(cells[("zt-lab-w1", "zt-lab-w2")]) == ["8080/HTTP GET /api/v1/data"]
    assert fill_of(cells[("zt-lab-w2", "zt-lab-w1")]) == report.VERDICT_FILLS["allowed"]
    assert fill_of(cells[("zt-lab-cp1", "zt-lab-w1")]) == report.VERDICT_FILLS["denied"]
    assert fill_of(cells[("zt-lab-w1", "zt-lab-w1")]) == report.VERDICT_FILLS["self"]
    assert fill_of(cells[("zt-lab-cp1", "zt-lab-w2")]) == report.VERDICT_FILLS["unevaluated"]
    assert [pair for pair, cell in cells.items() if marks(cell, "zt-mismatch")] == [("zt-lab-w2", "zt-lab-w1")]
    assert sorted(pair for pair, cell in cells.items() if marks(cell, "zt-match")) == [
        ("zt-lab-cp1", "zt-lab-w1"), ("zt-lab-w1", "zt-lab-w2")]
    assert [pair for pair, cell in cells.items() if flow_marks(cell)] == [("zt-lab-w2", "zt-lab-w1")]
    assert "No policy proof was given: the grid shows the connectivity results alone" in built["files"]["report.md"]


def test_probes_between_endpoints_the_proof_does_not_know_get_their_own_block():
    hosts = ["zt-lab-cp1", "zt-lab-w1"]
    connectivity = {"results": [probe("cp1-w1", "zt-lab-cp1", "zt-lab-w1", "tcp", 8080, "allowed", "allowed", True,
                                      "ok"),
                                probe("w1-cp1", "zt-lab-w1", "zt-lab-cp1", "tcp", 8080, "allowed", "denied", False,
                                      "blocked"),
                                probe("fe-be", "production/frontend", "production/backend", "tcp", 8080, "allowed",
                                      "allowed", True, "ok")]}
    built = report.build_report(output_dir="/x", policy_proof=LAB_PROOF, connectivity=connectivity)
    grid = built["grid"]
    proof_rows = set(source for source, _target in proof_texts(LAB_PROOF))
    assert grid.sources[:len(proof_rows)] == sorted(proof_rows, key=lambda name: ("/" not in name, name))
    assert grid.sources[len(proof_rows):] == hosts
    assert grid.targets[-2:] == hosts
    cells = svg_cells(built["files"]["reachability.svg"])
    assert fill_of(cells[("zt-lab-cp1", "zt-lab-w1")]) == report.VERDICT_FILLS["allowed"]
    assert fill_of(cells[("zt-lab-w1", "zt-lab-w1")]) == report.VERDICT_FILLS["self"]
    assert fill_of(cells[("zt-lab-w1", "production/backend")]) == report.VERDICT_FILLS["unevaluated"]
    assert fill_of(cells[("production/frontend", "zt-lab-w1")]) == report.VERDICT_FILLS["unevaluated"]
    # a probe between workloads of the proof marks the proof's cell, whose colour stays the plan's
    assert fill_of(cells[("production/frontend", "production/backend")]) == report.VERDICT_FILLS["restricted"]
    assert marks(cells[("production/frontend", "production/backend")], "zt-match")


def test_the_connectivity_matrix_is_read_when_there_are_no_results():
    matrix = {"sources": ["a|x", "b"], "targets": ["b", "c"], "cells": {
        "a|x|b": [{"protocol": "tcp", "port": 80, "method": None, "path": None, "query": None, "expected": "allowed",
                   "observed": "denied", "match": False, "kind": "blocked"}],
        "b|c": [{"protocol": "udp", "port": 53, "method": None, "path": None, "query": None, "expected": "denied",
                 "observed": "no_listener", "match": False}],
    }}
    built = report.build_report(output_dir="/x", connectivity={"matrix": matrix})
    cells = svg_cells(built["files"]["reachability.svg"])
    assert set(pair for pair, cell in cells.items() if marks(cell, "zt-mismatch")) == {("a|x", "b"), ("b", "c")}
    assert built["summary"]["probes"] == {"probes": 2, "matched": 0, "mismatched": 2, "blocked": 1, "open": 1,
                                          "errors": 0, "not_run": 0}


def test_probes_that_did_not_run_mark_nothing():
    connectivity = {"results": [dict(probe("listed", "a", "b", "tcp", 80, "allowed", None, None, None))]}
    built = report.build_report(output_dir="/x", connectivity=connectivity)
    cell = svg_cells(built["files"]["reachability.svg"])[("a", "b")]
    assert not marks(cell, "zt-mismatch") and not marks(cell, "zt-match")
    assert built["summary"]["probes"]["not_run"] == 1
    assert "| not run | listed | `a` | `b` | 80/TCP | – | allowed | – |  |\n" in built["files"]["report.md"]


# --------------------------------------------------------------------------------------
# Markdown and HTML
# --------------------------------------------------------------------------------------


class PageParser(HTMLParser):
    """Collects tags, headings and text of an HTML page."""

    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.tags = []
        self.headings = []
        self.text = ""
        self.title = ""
        self._open = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data):
        self.text += data
        if self._open and self._open[-1] in ("h1", "h2"):
            self.headings.append((self._open[-1], data))
        if self._open and self._open[-1] == "title" and "svg" not in self._open:
            self.title += data

    @classmethod
    def parse(cls, page):
        parser = cls()
        parser.feed(page)
        parser.close()
        return parser


def test_markdown_has_every_section_in_order():
    markdown = report.build_report(**full_options())["files"]["report.md"]
    headings = re.findall(r"^## (.+)$", markdown, re.M)
    assert headings == list(report.SECTION_TITLES)
    assert markdown.startswith("# Cilium zero-trust rollout report\n\n- cluster: `lab`\n- mode: apply\n")
    assert "\n![reachability](reachability.svg)\n" in markdown


def test_markdown_sections_carry_the_data():
    markdown = report.build_report(**full_options(generated_at="2026-11-26T12:00:00Z"))["files"]["report.md"]
    assert "- generated at: 2026-11-26T12:00:00Z" in markdown
    # summary verdicts
    assert "| Nodes (kernel) | **failed** | 2 node(s): 1 warning, 1 failed |" in markdown
    assert "| MTU probes | **failed** | 1 of 2 paths ok |" in markdown
    assert "| Connectivity | **1 mismatch(es)** | 3 of 4 probes agree with the plan |" in markdown
    assert "| Policy proof | proven | 2 declared flow(s), 0 violation(s) |" in markdown
    # nodes: sorted by name, findings that need attention, sysctls that differ
    assert markdown.index("| `zt-lab-cp1` |") < markdown.index("| `zt-lab-w1` |")
    assert "| `zt-lab-cp1` | `CONFIG_NETKIT` | **missing** | \\[netkit\\] not set |" in markdown
    assert "`CONFIG_BPF`" not in markdown
    assert "| `net.netfilter.nf_conntrack_max` | `262144` | 0 of 1 | zt-lab-w1: 65536 (differs) |" in markdown
    assert "| `net.ipv4.ip_forward` | `1` | 2 of 2 | – |" in markdown
    # network plan from the filters' results
    assert "| route MTU pods get | 1450 |" in markdown
    assert "| per-node prefix | /25 (clusterPool mask size) |" in markdown
    assert "| recommended mode | native |" in markdown
    # MTU probes: the failing path first, the mtu_probe name taken as target
    assert markdown.index("| `zt-lab-w1` | `zt-lab-w2` |") < markdown.index("| `zt-lab-cp1` | `zt-lab-w1` |")
    assert "| **black_hole** |" in markdown
    # policy set
    assert "- objects: 2 CiliumNetworkPolicy, 6 NetworkPolicy" in markdown
    assert "- `production/zerotrust-flow-frontend-to-backend-ingress.yaml`" in markdown
    assert ("| `frontend-to-backend` | `production/frontend` | `production/backend` | 8080/TCP | "
            "HTTP GET /api/v1/data | 0 / 4 / 0 | allowed, restricted at L7 |") in markdown
    # the text matrix
    assert ("| `production/frontend` | denied | allowed: 53/TCP; 53/UDP | denied | allowed, restricted at L7: "
            "8080/TCP GET /api/v1/data \\[flow frontend-to-backend\\] ✗ 1 of 2 probes disagree |") in markdown
    # the truth table, mismatch first
    table = markdown[markdown.index("## Connectivity truth table"):]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert rows[0].startswith("| **✗ open** | frontend-post |")
    assert len(rows) == 4


def test_html_is_one_self_contained_page_with_the_svg_inline():
    page = report.build_report(**full_options())["files"]["report.html"]
    parsed = PageParser.parse(page)
    tags = [tag for tag, _attrs in parsed.tags]
    assert tags.count("svg") == 1
    assert [text for level, text in parsed.headings if level == "h2"] == list(report.SECTION_TITLES)
    assert "script" not in tags and "link" not in tags and "img" not in tags
    for _tag, attrs in parsed.tags:
        for name, value in attrs.items():
            if name in ("src", "href"):
                pytest.fail("external reference %s=%s" % (name, value))
    assert "<?xml" not in page
    # the inline picture is the same as the file, and still well-formed XML
    svg = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    assert svg + "\n" == report.build_report(**full_options())["files"]["reachability.svg"].split("\n", 1)[1]
    parse_svg(svg)


def test_sections_without_data_say_not_collected_and_why():
    built = report.build_report(output_dir="/x", mode="render")
    markdown = built["files"]["report.md"]
    assert re.findall(r"^## (.+)$", markdown, re.M) == list(report.SECTION_TITLES)
    assert markdown.count("Not collected: ") == 7
    assert "Not collected: no node results were given (option nodes)" in markdown
    assert ("Not collected: render mode has no cluster to probe, and no connectivity results were given "
            "(option connectivity).") in markdown
    assert built["summary"]["not_collected"] == ["nodes", "network_plan", "mtu_probes", "cilium_values",
                                                 "policy_proof", "connectivity"]
    root = parse_svg(built["files"]["reachability.svg"])
    assert root.get("version") == "1.1"
    assert "Not collected" in "".join(root.itertext())


def test_a_proof_with_an_empty_matrix_says_there_is_nothing_to_draw():
    built = report.build_report(output_dir="/x", policy_proof={"proof": {"ok": True, "matrix": [], "flows": []}})
    assert "Nothing to draw: the policy proof has an empty reachability matrix." in built["files"]["report.md"]
    root = parse_svg(built["files"]["reachability.svg"])
    assert "Nothing to draw" in "".join(root.itertext())
    assert not svg_cells(built["files"]["reachability.svg"])


def test_a_missing_part_of_the_network_plan_says_so():
    markdown = report.build_report(output_dir="/x", network_plan={"mtu": NETWORK_PLAN["mtu"]})["files"]["report.md"]
    assert "| route MTU pods get | 1450 |" in markdown
    assert "Not collected: the network plan has no pod_cidr part (the pod_cidr_plan result)." in markdown
    assert "Not collected: the network plan has no routing part (the routing_mode result)." in markdown


def test_a_refused_proof_lists_its_violations():
    shadowing = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "allow-frontend-to-backend", "namespace": "production"},
                 "spec": {"podSelector": {"matchLabels": {"app": "backend"}}, "policyTypes": ["Ingress"],
                          "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                                       "ports": [{"protocol": "TCP", "port": 8080}]}]}}
    proof = policy_proof(existing_policies=[shadowing])
    assert proof["proof"]["ok"] is False
    built = report.build_report(output_dir="/x", policy_proof=proof)
    markdown = built["files"]["report.md"]
    assert "**Proof: refused.** 1 violation(s), listed below." in markdown
    assert "| **l7_shadowed** | frontend-to-backend | `production/frontend` | `production/backend` | 8080/TCP |" \
        in markdown
    assert "| Policy proof | **refused** | 2 declared flow(s), 1 violation(s) |" in markdown
    assert built["summary"]["policy"] == {"proven": False, "flows": 2, "violations": 1}


@pytest.mark.parametrize("cell_text, verdict", [
    ("allowed", "allowed"), ("partly L7", "allowed"), ("allowed (HTTP)", "restricted"),
    ("allowed (FQDN)", "restricted"), ("partly", "partly"), ("denied", "denied"), (u"\u2013", "self"),
    (u"\u00b7", "unevaluated"), ("-", None), ("allowed (HTTP", None), (None, None), (1, None),
])
def test_proof_cell_verdict(cell_text, verdict):
    assert report.proof_cell_verdict(cell_text) == verdict


def test_document_blocks_render_the_same_content_as_markdown_and_html():
    blocks = [("heading", 1, "T<1>"), ("paragraph", report.spans("a ", report.code("b|c"), " ", report.strong("d"))),
              ("list", [report.spans("x_"), report.code("y")]), ("table", ["k", "v"], [[report.code("a|b"), "1"]]),
              ("picture", "reachability", "reachability.svg")]
    assert report.render_markdown(blocks) == (
        "# T\\<1\\>\n\na `b|c` **d**\n\n- x\\_\n- `y`\n\n| k | v |\n|---|---|\n| `a\\|b` | 1 |\n\n"
        "![reachability](reachability.svg)\n")
    page = report.render_html(blocks, "T<1>", '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n')
    body = page[page.index("<body>") + len("<body>"):page.index("</body>")]
    assert body == (
        "\n<h1>T&lt;1&gt;</h1>\n<p>a <code>b|c</code> <strong>d</strong></p>\n<ul>\n<li>x_</li>\n<li><code>y</code></li>"
        "\n</ul>\n<table>\n<thead><tr><th>k</th><th>v</th></tr></thead>\n<tbody>\n<tr><td><code>a|b</code></td>"
        "<td>1</td></tr>\n</tbody>\n</table>\n<div class=\"picture\" role=\"img\" aria-label=\"reachability\">\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n</div>\n")
    assert "<title>T&lt;1&gt;</title>" in page


def test_value_text_is_json_and_shortened():
    assert report.value_text("false") == '"false"'
    assert report.value_text(False) == "false"
    assert report.value_text(None) == "null"
    assert report.value_text({"b": 1, "a": [1]}) == '{"a": [1], "b": 1}'
    long_text = report.value_text(["x" * 50] * 5)
    assert len(long_text) == 160 and long_text.endswith(u"\u2026")


def test_probe_labels_and_order():
    normalised = report.normalise_inputs(output_dir="/x", connectivity={"results": [
        probe("dns", "a", "b", "dns", 53, "allowed", "allowed", True, "ok", query="kubernetes.default"),
        probe("ping", "a", "b", "icmp", None, "denied", "allowed", False, "open"),
        probe("web", "a", "b", "http", 80, "allowed", "error", False, "probe_error", method="GET", path="/"),
        probe("db", "a", "b", "tcp", 5432, "allowed", "denied", False, "blocked"),
        probe("listed", "a", "b", "tcp", 22, "denied", None, None, None),
    ]})["connectivity"]["probes"]
    assert [report.probe_label(item) for item in normalised] == [
        "53/DNS kubernetes.default", "ICMP", "80/HTTP GET /", "5432/TCP", "22/TCP"]
    assert [item["name"] for item in report.ordered_probes(normalised)] == ["db", "ping", "web", "dns", "listed"]
    assert report.probe_counts(normalised) == {"probes": 5, "matched": 1, "mismatched": 3, "blocked": 1, "open": 1,
                                               "errors": 1, "not_run": 1}


def test_markdown_escaping():
    assert report.markdown_text("black_hole _x_ a*b a<b&c | [x] #1 `c` \\") == \
        "black_hole \\_x\\_ a\\*b a\\<b\\&c \\| \\[x\\] \\#1 \\`c\\` \\\\"
    assert report.markdown_code("a|b") == "`a|b`"
    assert report.markdown_code("a|b", in_table=True) == "`a\\|b`"
    assert report.markdown_code("a`b") == "`` a`b ``"
    assert report.markdown_text("two\nlines") == "two lines"


def test_xml_escape_and_text_width():
    assert report.xml_escape('a<b&c>"d"') == "a&lt;b&amp;c&gt;&quot;d&quot;"
    assert report.xml_escape("bell\x07") == u"bell\ufffd"
    assert report.text_width("") == 0
    assert report.text_width("abcd") == 30  # 4 x 7.3 px, rounded up
    assert report.text_width(u"\u8def") == report.text_width("ab")  # wide characters count twice
    assert report.text_width("abcd", font_size=24) == 59


# --------------------------------------------------------------------------------------
# Values diff
# --------------------------------------------------------------------------------------


def test_values_diff_lists_changed_and_added_keys_only():
    diff = report.values_diff(VALUES)
    by_key = dict((entry["key"], entry) for entry in diff)
    assert by_key["MTU"] == {"key": "MTU", "default": 0, "value": 1500, "change": "changed"}
    assert by_key["kubeProxyReplacement"] == {"key": "kubeProxyReplacement", "default": "false", "value": True,
                                              "change": "changed"}
    assert by_key["loadBalancer.algorithm"] == {"key": "loadBalancer.algorithm", "default": None,
                                                "value": "maglev", "change": "added"}
    assert by_key["hubble.relay.enabled"]["change"] == "changed"
    assert "policyEnforcementMode" not in by_key
    assert "hubble.enabled" not in by_key
    # a key with dots is escaped as helm --set writes it
    assert by_key["operator.nodeSelector.node-role\\.kubernetes\\.io/control-plane"]["change"] == "added"
    assert [entry["key"] for entry in diff] == sorted(by_key)


def test_values_diff_compares_types_and_shows_null():
    defaults = {"a": 1, "b": {"c": True}, "d": "x", "e": [1, 2]}
    assert report.values_diff({"a": True, "b": {"c": 1}, "d": None, "e": [1, 2]}, defaults) == [
        {"key": "a", "default": 1, "value": True, "change": "changed"},
        {"key": "b.c", "default": True, "value": 1, "change": "changed"},
        {"key": "d", "default": "x", "value": None, "change": "changed"},
    ]
    assert report.values_diff({}, defaults) == []


def test_values_section_in_markdown():
    markdown = report.build_report(output_dir="/x", cilium_values=VALUES)["files"]["report.md"]
    assert "| `kubeProxyReplacement` | `\"false\"` | `true` | changed |" in markdown
    assert "| `loadBalancer.algorithm` | – | `\"maglev\"` | added |" in markdown
    assert "`policyEnforcementMode`" not in markdown
    assert "chart cilium 1.20.0: 3 changed, 2 added" in markdown


# --------------------------------------------------------------------------------------
# Summary, determinism, file changes
# --------------------------------------------------------------------------------------


def test_summary_counts():
    summary = report.build_report(**full_options())["summary"]
    assert summary["nodes"] == {"ok": 0, "warning": 1, "failed": 1, "unknown": 0, "total": 2}
    assert summary["sysctls"] == {"total": 3, "ok": 2, "not_ok": 1}
    assert summary["mtu_paths"] == {"total": 2, "ok": 1, "bad": 1}
    assert summary["probes"] == {"probes": 4, "matched": 3, "mismatched": 1, "blocked": 0, "open": 1, "errors": 0,
                                 "not_run": 0}
    assert summary["policy"] == {"proven": True, "flows": 2, "violations": 0}
    assert summary["values"] == {"changed": 3, "added": 2}
    texts = proof_texts(LAB_PROOF)
    for verdict in report.PAIR_VERDICTS:
        assert summary["pairs"][verdict] == len([pair for pair in texts if expected_verdict(texts[pair]) == verdict])
    assert summary["pairs"]["restricted"] == 1
    assert summary["not_collected"] == []


def test_same_input_gives_identical_bytes_whatever_the_order():
    first = report.build_report(**full_options())["files"]
    again = report.build_report(**full_options())["files"]
    assert first == again
    shuffled = full_options(nodes=list(reversed(NODES)), mtu_probes=list(reversed(MTU_PROBES)),
                            connectivity={"results": list(reversed(CONNECTIVITY["results"]))})
    assert report.build_report(**shuffled)["files"] == first


def test_file_changes():
    contents = {"report.md": "new", "report.html": "same", "reachability.svg": "<svg/>"}
    assert report.file_changes(contents, {"report.md": "old", "report.html": "same", "reachability.svg": None}) == [
        {"name": "report.md", "before": "old", "after": "new"},
        {"name": "reachability.svg", "before": None, "after": "<svg/>"},
    ]
    assert report.file_changes(contents, dict(contents)) == []


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

BAD_INPUTS = [
    (dict(nodes=[{"name": "a"}, {"name": "b", "kernel_verdict": "meh"}]),
     "rollout_report: nodes[1].kernel_verdict: 'meh' is not one of: ok, warning, failed, unknown"),
    (dict(nodes=[{"kernel_verdict": "ok"}]),
     "rollout_report: nodes[0].name: None is missing: give the node name"),
    (dict(nodes=[{"name": "a"}, {"name": "a"}]),
     "rollout_report: nodes[1].name: 'a' is given twice (also nodes[0].name)"),
    (dict(nodes=[{"name": "a", "kernel_verict": "ok"}]),
     "rollout_report: nodes[0]: 'kernel_verict' is not a known key (known: name, kernel_release, kernel_verdict, "
     "kernel_findings, sysctls)"),
    (dict(nodes=["zt-lab-w1"]),
     "rollout_report: nodes[0]: 'zt-lab-w1' must be a mapping, got str"),
    (dict(nodes=[{"name": "a", "kernel_findings": [{"item": "CONFIG_BPF", "status": "bad"}]}]),
     "rollout_report: nodes[0].kernel_findings[0].status: 'bad' is not one of: ok, warning, missing, unknown, waived"),
    (dict(nodes=[{"name": "a", "sysctls": [{"key": "x", "expected": 1, "running": 0, "status": "mismatched"}]}]),
     "rollout_report: nodes[0].sysctls[0].status: 'mismatched' is not one of: ok, differs, best effort, unknown"),
    (dict(nodes=[{"name": "a", "sysctls": {"x": 1}}]),
     "rollout_report: nodes[0].sysctls: {'x': 1} must be a list, got dict"),
    (dict(network_plan={"mtus": {}}),
     "rollout_report: network_plan: 'mtus' is not a known key (known: mtu, pod_cidr, routing)"),
    (dict(network_plan={"mtu": 1450}),
     "rollout_report: network_plan.mtu: 1450 must be a mapping, got int"),
    (dict(mtu_probes=[{"source": "a", "target": "b", "status": "fine"}]),
     "rollout_report: mtu_probes[0].status: 'fine' is not one of: ok, refused_locally, black_hole, unreachable"),
    (dict(mtu_probes=[{"source": "a", "target": "b", "status": "ok", "path_mtu": "big"}]),
     "rollout_report: mtu_probes[0].path_mtu: 'big' is not a whole number"),
    (dict(mtu_probes=[{"source": "a", "status": "ok"}]),
     "rollout_report: mtu_probes[0].target: None is missing: give the probed host (target, or name as mtu_probe "
     "returns it)"),
    (dict(mode="dry-run"),
     "rollout_report: mode: 'dry-run' is not one of: render, apply"),
    (dict(output_dir=""),
     "rollout_report: output_dir: '' is missing: give the directory to write the report to"),
    (dict(connectivity={"results": [dict(CONNECTIVITY["results"][0], expected="maybe")]}),
     "rollout_report: connectivity.results[0].expected: 'maybe' is not one of: allowed, denied"),
    (dict(connectivity={"results": [dict(CONNECTIVITY["results"][0], observed="refused")]}),
     "rollout_report: connectivity.results[0].observed: 'refused' is not one of: allowed, denied, l7_denied, "
     "no_listener, error"),
    (dict(connectivity={"results": [dict(CONNECTIVITY["results"][0], match="yes")]}),
     "rollout_report: connectivity.results[0].match: 'yes' is not a boolean (true or false)"),
    (dict(connectivity={"results": [dict(CONNECTIVITY["results"][0], kind="closed")]}),
     "rollout_report: connectivity.results[0].kind: 'closed' is not one of: ok, blocked, open, probe_error"),
    (dict(connectivity={"results": [dict(CONNECTIVITY["results"][0], port=-1)]}),
     "rollout_report: connectivity.results[0].port: -1 is below the minimum of 0"),
    (dict(connectivity={"matrix": {"sources": [], "targets": [], "cells": {"ab": []}}}),
     "rollout_report: connectivity.matrix.cells[\"ab\"]: 'ab' is not a 'SOURCE|TARGET' key"),
    (dict(policy_proof={"files": []}),
     "rollout_report: policy_proof.proof: {} is missing: give the proof of proof.json (with matrix and flows)"),
    (dict(policy_proof=hand_proof(["maybe", "denied"])),
     "rollout_report: policy_proof.proof.matrix[0].rows[0].cells[0]: 'maybe' is not a verdict of the policy proof "
     "(allowed, allowed (HTTP), allowed (DNS), allowed (FQDN), partly, partly L7, denied, – or ·)"),
    (dict(policy_proof=hand_proof(["denied"])),
     "rollout_report: policy_proof.proof.matrix[0].rows[0].cells: ['denied'] has 1 entries but the table has 2 "
     "columns"),
    (dict(policy_proof=hand_proof(["denied", "denied"], [{"name": "f", "from": "a", "to": "b", "ports": ["8080"]}])),
     "rollout_report: policy_proof.proof.flows[0].ports[0]: '8080' is not a port as the proof writes it (8080/TCP, "
     "8000-8080/TCP or http/TCP)"),
    (dict(cilium_values=["MTU=1500"]),
     "rollout_report: cilium_values: ['MTU=1500'] must be a mapping, got list"),
]


@pytest.mark.parametrize("changes, message", BAD_INPUTS)
def test_bad_input_names_the_field_the_value_and_what_is_accepted(changes, message):
    options = dict(output_dir="/x")
    options.update(changes)
    with pytest.raises(InvalidInput) as error:
        report.build_report(**options)
    assert str(error.value) == message


def test_several_problems_are_reported_at_once():
    with pytest.raises(InvalidInputs) as error:
        report.build_report(output_dir="/x", mode="dry-run", nodes=[{"name": "a", "kernel_verdict": "meh"}])
    assert str(error.value) == (
        "rollout_report: 2 problem(s) found:\n"
        "- mode: 'dry-run' is not one of: render, apply\n"
        "- nodes[0].kernel_verdict: 'meh' is not one of: ok, warning, failed, unknown")


def test_the_real_proof_validates_and_extra_keys_of_passed_results_are_ignored():
    inputs = report.normalise_inputs(**full_options())
    assert [node["name"] for node in inputs["nodes"]] == ["zt-lab-cp1", "zt-lab-w1"]
    assert inputs["mtu_probes"][0]["target"] == "zt-lab-w2"  # from name, as mtu_probe returns it
    assert inputs["policy_proof"]["flows"][0]["name"] == "frontend-to-backend"
    assert inputs["title"] == report.DEFAULT_TITLE
