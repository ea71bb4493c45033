# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout report: one Markdown file, one self-contained HTML file and one picture.

Pure Python: nothing here imports ``ansible``.  The ``zerotrust.cilium.rollout_report``
module validates its options with :func:`normalise_inputs`, builds the three files with
:func:`build_report` and writes the ones whose content differs.

What goes in (every part optional; a part without data is reported as "not collected" with
the reason):

* ``nodes``: per node the kernel verdict, the kernel requirement findings and the sysctls
  read back (the ``kernel_preflight`` and ``node_tuning`` roles);
* ``network_plan``: the ``cilium_mtu``, ``pod_cidr_plan`` and ``routing_mode`` filter results
  (the ``plan`` role's ``__plan_network`` fact);
* ``mtu_probes``: rows of the ``mtu_probe`` module with the node they were sent from;
* ``cilium_values``: the computed Helm values, shown as a diff against the chart defaults of
  ``cilium_chart_data.DEFAULTS``;
* ``policy_proof``: the content of ``proof.json`` the ``network_policy`` role writes;
* ``connectivity``: what ``zerotrust.cilium.connectivity_check`` returned.

The picture (:func:`render_svg`) is one grid: rows are sources, columns destinations,
every port of the policy proof merged into one cell per pair.  A cell takes the most open
planned verdict over its ports (:data:`VERDICTS`, best first), lists the ports that are
allowed, and carries a thick outline when a declared flow covers it.  Connectivity results
add a check mark to a cell whose probes all agree with the plan and a red cross (with a
tooltip naming the failed probes) to a cell where one does not.  Without a policy proof the
grid is drawn from the connectivity results alone: expected is the plan, observed the truth.

Nothing here reads the clock or the file system, so the same input gives byte-identical
files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import html
import json
import math
import re
import unicodedata

from ansible_collections.zerotrust.cilium.plugins.module_utils import checks
from ansible_collections.zerotrust.cilium.plugins.module_utils import cilium_chart_data as chart
from ansible_collections.zerotrust.cilium.plugins.module_utils import cilium_values
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, raise_problems

MODULE_NAME = "rollout_report"
DEFAULT_TITLE = "Cilium zero-trust rollout report"

MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
PICTURE_FILE = "reachability.svg"
FILE_NAMES = (MARKDOWN_FILE, HTML_FILE, PICTURE_FILE)

MODES = ("render", "apply")
KERNEL_VERDICTS = ("ok", "warning", "failed", "unknown")
FINDING_STATUSES = ("ok", "warning", "missing", "unknown", "waived")
# As the verify role writes them: "best effort" is a key the node may refuse (best_effort of
# node_tuning) that did not take, "differs" one that should have.
SYSCTL_STATUSES = ("ok", "differs", "best effort", "unknown")
MTU_STATUSES = ("ok", "refused_locally", "black_hole", "unreachable")
PROBE_EXPECTED = ("allowed", "denied")
PROBE_OBSERVED = ("allowed", "denied", "l7_denied", "no_listener", "error")
PROBE_KINDS = ("ok", "blocked", "open", "probe_error")
NETWORK_PLAN_PARTS = ("mtu", "pod_cidr", "routing")

NODE_KEYS = ("name", "kernel_release", "kernel_verdict", "kernel_findings", "sysctls")

# Planned verdict of one (source, destination) cell, most open first.  A cell merged over
# several ports takes the first of these that any port has.
ALLOWED = "allowed"
RESTRICTED = "restricted"
PARTLY = "partly"
DENIED = "denied"
SELF = "self"
UNEVALUATED = "unevaluated"
VERDICTS = (ALLOWED, RESTRICTED, PARTLY, DENIED, SELF, UNEVALUATED)
PAIR_VERDICTS = (ALLOWED, RESTRICTED, PARTLY, DENIED)

VERDICT_LABELS = {
    ALLOWED: "allowed",
    RESTRICTED: "allowed, restricted at L7",
    PARTLY: "allowed for some pod pairs only",
    DENIED: "denied",
    SELF: "same workload or endpoint, no pair",
    UNEVALUATED: "not evaluated",
}
# The fill of a cell for each verdict (the value of the rect's fill attribute).
VERDICT_FILLS = {
    ALLOWED: "#8fd19e",
    RESTRICTED: "#ffcf70",
    PARTLY: "url(#zt-partly)",
    DENIED: "#f2a7a7",
    SELF: "#ffffff",
    UNEVALUATED: "url(#zt-unevaluated)",
}
FLOW_STROKE = "#1f4fd1"
MISMATCH_STROKE = "#c00000"
MATCH_STROKE = "#137333"

SECTION_TITLES = (
    "Summary",
    "Nodes",
    "Network plan",
    "MTU probes",
    "Cilium values",
    "Policy set",
    "Reachability",
    "Connectivity truth table",
)

_INVALID_XML_CHARS = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_PORT_TEXT = re.compile(r"^(?:(?P<port>\d+)(?:-(?P<end>\d+))?|(?P<name>[A-Za-z0-9-]+))/(?P<protocol>[A-Za-z]+)$")
_MAX_LINE_CHARS = 44
_NOTHING_TO_DRAW = "Not collected: no policy proof and no connectivity results were given."
_EMPTY_MATRIX = "Nothing to draw: the policy proof has an empty reachability matrix."
_MAX_VALUE_CHARS = 160


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


class _Problems:
    """Collects input problems; :meth:`raise_any` raises them as one error."""

    def __init__(self):
        self.items = []

    def add(self, field, value, problem):
        self.items.append(InvalidInput(field, value, problem))

    def check(self, check, *args, **kwargs):
        """Call a ``checks`` function with ``where=None``; record its error, return None then."""
        try:
            return check(None, *args, **kwargs)
        except InvalidInput as err:
            self.items.append(err)
            return None

    def raise_any(self):
        raise_problems(self.items, where=MODULE_NAME)


def _type_name(value):
    return "null" if value is None else type(value).__name__


def _mapping(problems, field, value):
    """A mapping, or None (recorded) when it is something else; None and missing give {}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(field, value, "must be a mapping, got %s" % _type_name(value))
        return None
    return value


def _sequence(problems, field, value):
    """A list, or None (recorded) when it is something else; None and missing give []."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        problems.add(field, value, "must be a list, got %s" % _type_name(value))
        return None
    return list(value)


def _text(problems, field, value, required=False, what="a string"):
    """A non-empty string, or None when absent and not ``required``."""
    if value is None or value == "":
        if required:
            problems.add(field, value, "is missing: give %s" % what)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        problems.add(field, value, "is not %s" % what)
        return None
    return str(value)


def _optional_number(problems, field, value, minimum=None):
    if value is None or value == "":
        return None
    return problems.check(checks.whole_number, field, value, minimum=minimum)


def _choice(problems, field, value, accepted, default=None):
    if value is None and default is not None:
        return default
    return problems.check(checks.choice, field, value, accepted)


def _unknown_keys(problems, field, entry, known):
    for key in sorted(set(entry) - set(known), key=str):
        problems.add(field, key, "is not a known key (known: %s)" % ", ".join(known))


def _scalar_text(value):
    """A sysctl or plan value as text: numbers and strings as they are, null as 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _normalise_nodes(problems, value):
    nodes = _sequence(problems, "nodes", value)
    result = []
    seen = {}
    for index, entry in enumerate(nodes or []):
        field = "nodes[%d]" % index
        entry = _mapping(problems, field, entry)
        if entry is None:
            continue
        _unknown_keys(problems, field, entry, NODE_KEYS)
        name = _text(problems, field + ".name", entry.get("name"), required=True, what="the node name")
        if name is not None:
            if name in seen:
                problems.add(field + ".name", name, "is given twice (also nodes[%d].name)" % seen[name])
            seen.setdefault(name, index)
        node = {
            "name": name,
            "kernel_release": _text(problems, field + ".kernel_release", entry.get("kernel_release")),
            "kernel_verdict": _choice(problems, field + ".kernel_verdict", entry.get("kernel_verdict"),
                                      KERNEL_VERDICTS, default="unknown"),
            "kernel_findings": [],
            "sysctls": [],
        }
        for finding_index, finding in enumerate(_sequence(problems, field + ".kernel_findings",
                                                          entry.get("kernel_findings")) or []):
            finding_field = "%s.kernel_findings[%d]" % (field, finding_index)
            finding = _mapping(problems, finding_field, finding)
            if finding is None:
                continue
            node["kernel_findings"].append({
                "item": _text(problems, finding_field + ".item", finding.get("item"), required=True,
                              what="the requirement checked, such as CONFIG_BPF"),
                "status": _choice(problems, finding_field + ".status", finding.get("status"), FINDING_STATUSES),
                "detail": _text(problems, finding_field + ".detail", finding.get("detail")) or "",
            })
        for sysctl_index, sysctl in enumerate(_sequence(problems, field + ".sysctls", entry.get("sysctls")) or []):
            sysctl_field = "%s.sysctls[%d]" % (field, sysctl_index)
            sysctl = _mapping(problems, sysctl_field, sysctl)
            if sysctl is None:
                continue
            node["sysctls"].append({
                "key": _text(problems, sysctl_field + ".key", sysctl.get("key"), required=True,
                             what="the sysctl name, such as net.ipv4.ip_forward"),
                "expected": _scalar_text(sysctl.get("expected")),
                "running": _scalar_text(sysctl.get("running")),
                "status": _choice(problems, sysctl_field + ".status", sysctl.get("status"), SYSCTL_STATUSES),
            })
        result.append(node)
    return sorted(result, key=lambda node: node["name"] or "")


def _normalise_network_plan(problems, value):
    plan = _mapping(problems, "network_plan", value)
    if plan is None:
        return {}
    _unknown_keys(problems, "network_plan", plan, NETWORK_PLAN_PARTS)
    result = {}
    for part in NETWORK_PLAN_PARTS:
        content = _mapping(problems, "network_plan." + part, plan.get(part))
        if content:
            result[part] = content
    return result


def _normalise_mtu_probes(problems, value):
    rows = _sequence(problems, "mtu_probes", value)
    result = []
    for index, row in enumerate(rows or []):
        field = "mtu_probes[%d]" % index
        row = _mapping(problems, field, row)
        if row is None:
            continue
        target = row.get("target")
        if target in (None, ""):
            target = row.get("name")
        result.append({
            "source": _text(problems, field + ".source", row.get("source")) or "",
            "target": _text(problems, field + ".target", target, required=True,
                            what="the probed host (target, or name as mtu_probe returns it)"),
            "address": _text(problems, field + ".address", row.get("address")) or "",
            "expected_mtu": _optional_number(problems, field + ".expected_mtu", row.get("expected_mtu"), minimum=0),
            "path_mtu": _optional_number(problems, field + ".path_mtu", row.get("path_mtu"), minimum=0),
            "status": _choice(problems, field + ".status", row.get("status"), MTU_STATUSES),
            "message": _text(problems, field + ".message", row.get("message")) or "",
        })
    return sorted(result, key=lambda row: (row["status"] == "ok", row["source"], row["target"] or "",
                                           row["address"]))


def _probe_entry(problems, field, row, source=None, target=None):
    if source is None:
        source = _text(problems, field + ".from", row.get("from"), required=True, what="the probe's source")
    if target is None:
        target = _text(problems, field + ".to", row.get("to"), required=True, what="the probe's destination")
    probe = {
        "name": _text(problems, field + ".name", row.get("name")) or "",
        "from": source,
        "to": target,
        "protocol": _text(problems, field + ".protocol", row.get("protocol"), required=True,
                          what="the probe's protocol, such as tcp"),
        "port": _optional_number(problems, field + ".port", row.get("port"), minimum=0),
        "method": _text(problems, field + ".method", row.get("method")) or "",
        "path": _text(problems, field + ".path", row.get("path")) or "",
        "query": _text(problems, field + ".query", row.get("query")) or "",
        "flow": _text(problems, field + ".flow", row.get("flow")) or "",
        "expected": _choice(problems, field + ".expected", row.get("expected"), PROBE_EXPECTED),
        "observed": None,
        "match": None,
        "kind": None,
        "detail": _text(problems, field + ".detail", row.get("detail")) or "",
    }
    if row.get("observed") is None and row.get("match") is None and row.get("kind") is None:
        return probe  # listed but not run (connectivity_check in commands mode): no verdict
    probe["observed"] = _choice(problems, field + ".observed", row.get("observed"), PROBE_OBSERVED)
    probe["match"] = problems.check(checks.boolean, field + ".match", row.get("match"))
    if row.get("kind") is not None:
        probe["kind"] = _choice(problems, field + ".kind", row.get("kind"), PROBE_KINDS)
    elif probe["match"] is True:
        probe["kind"] = "ok"
    elif probe["match"] is False and probe["expected"] and probe["observed"]:
        probe["kind"] = _mismatch_kind(probe)
    return probe


def _mismatch_kind(probe):
    """The connectivity_check kind of a failed probe given without one (matrix cells)."""
    if probe["observed"] == "error" or (probe["observed"] == "no_listener" and probe["expected"] == "allowed"):
        return "probe_error"
    return "blocked" if probe["expected"] == "allowed" else "open"


def _split_matrix_key(key, sources, targets):
    for source in sorted(sources, key=lambda name: (-len(name), name)):
        if key.startswith(source + "|") and key[len(source) + 1:] in targets:
            return source, key[len(source) + 1:]
    if "|" in key:
        return tuple(key.split("|", 1))
    return None


def _normalise_connectivity(problems, value):
    connectivity = _mapping(problems, "connectivity", value)
    if not connectivity:
        return None
    results = _sequence(problems, "connectivity.results", connectivity.get("results"))
    probes = []
    for index, row in enumerate(results or []):
        field = "connectivity.results[%d]" % index
        row = _mapping(problems, field, row)
        if row is not None:
            probes.append(_probe_entry(problems, field, row))
    if not results:
        matrix = _mapping(problems, "connectivity.matrix", connectivity.get("matrix"))
        if matrix:
            sources = set(_sequence(problems, "connectivity.matrix.sources", matrix.get("sources")) or [])
            targets = set(_sequence(problems, "connectivity.matrix.targets", matrix.get("targets")) or [])
            cells = _mapping(problems, "connectivity.matrix.cells", matrix.get("cells")) or {}
            for key in sorted(cells, key=str):
                field = "connectivity.matrix.cells[%s]" % json.dumps(str(key), ensure_ascii=False)
                pair = _split_matrix_key(str(key), sources, targets)
                if pair is None:
                    problems.add(field, key, "is not a 'SOURCE|TARGET' key")
                    continue
                for index, row in enumerate(_sequence(problems, field, cells[key]) or []):
                    row_field = "%s[%d]" % (field, index)
                    row = _mapping(problems, row_field, row)
                    if row is not None:
                        probes.append(_probe_entry(problems, row_field, row, source=pair[0], target=pair[1]))
    if not probes:
        return None
    return {"probes": probes}


def _normalise_proof(problems, value):
    content = _mapping(problems, "policy_proof", value)
    if not content:
        return None
    files = _sequence(problems, "policy_proof.files", content.get("files")) or []
    for index, name in enumerate(files):
        _text(problems, "policy_proof.files[%d]" % index, name, required=True, what="a file name")
    summary = _mapping(problems, "policy_proof.summary", content.get("summary")) or {}
    proof = _mapping(problems, "policy_proof.proof", content.get("proof"))
    if proof is None:
        return None
    if not proof:
        problems.add("policy_proof.proof", proof, "is missing: give the proof of proof.json (with matrix and flows)")
        return None
    tables = []
    for index, table in enumerate(_sequence(problems, "policy_proof.proof.matrix", proof.get("matrix")) or []):
        field = "policy_proof.proof.matrix[%d]" % index
        table = _mapping(problems, field, table)
        if table is None:
            continue
        columns = _sequence(problems, field + ".columns", table.get("columns")) or []
        columns = [_text(problems, "%s.columns[%d]" % (field, column_index), column, required=True,
                         what="a destination name") for column_index, column in enumerate(columns)]
        port = problems.check(checks.whole_number, field + ".port", table.get("port"), minimum=0, maximum=65535)
        protocol = _text(problems, field + ".protocol", table.get("protocol"), required=True,
                         what="the protocol, such as TCP")
        rows = []
        for row_index, row in enumerate(_sequence(problems, field + ".rows", table.get("rows")) or []):
            row_field = "%s.rows[%d]" % (field, row_index)
            row = _mapping(problems, row_field, row)
            if row is None:
                continue
            source = _text(problems, row_field + ".from", row.get("from"), required=True, what="the source name")
            cells = _sequence(problems, row_field + ".cells", row.get("cells")) or []
            if len(cells) != len(columns):
                problems.add(row_field + ".cells", cells, "has %d entries but the table has %d columns"
                             % (len(cells), len(columns)))
                continue
            verdicts = []
            for cell_index, cell in enumerate(cells):
                cell_field = "%s.cells[%d]" % (row_field, cell_index)
                verdict = proof_cell_verdict(cell)
                if verdict is None:
                    problems.add(cell_field, cell, "is not a verdict of the policy proof (allowed, allowed (HTTP), "
                                 "allowed (DNS), allowed (FQDN), partly, partly L7, denied, – or ·)")
                verdicts.append(cell)
            rows.append({"from": source, "cells": verdicts})
        tables.append({"columns": columns, "port": port, "protocol": protocol, "rows": rows})
    flows = []
    for index, flow in enumerate(_sequence(problems, "policy_proof.proof.flows", proof.get("flows")) or []):
        field = "policy_proof.proof.flows[%d]" % index
        flow = _mapping(problems, field, flow)
        if flow is None:
            continue
        ports = _sequence(problems, field + ".ports", flow.get("ports")) or []
        for port_index, port in enumerate(ports):
            if not isinstance(port, str) or not _PORT_TEXT.match(port):
                problems.add("%s.ports[%d]" % (field, port_index), port,
                             "is not a port as the proof writes it (8080/TCP, 8000-8080/TCP or http/TCP)")
        http_rules = _sequence(problems, field + ".http", flow.get("http")) or []
        for rule_index, rule in enumerate(http_rules):
            _mapping(problems, "%s.http[%d]" % (field, rule_index), rule)
        fqdns = _sequence(problems, field + ".fqdns", flow.get("fqdns")) or []
        pairs = _mapping(problems, field + ".pairs", flow.get("pairs")) or {}
        flows.append({
            "name": _text(problems, field + ".name", flow.get("name"), required=True, what="the flow name"),
            "from": _text(problems, field + ".from", flow.get("from"), required=True, what="the flow's source"),
            "to": _text(problems, field + ".to", flow.get("to"), required=True, what="the flow's destination"),
            "ports": [port for port in ports if isinstance(port, str)],
            "l7": _text(problems, field + ".l7", flow.get("l7")) or "",
            "http": [rule for rule in http_rules if isinstance(rule, dict)],
            "fqdns": [str(name) for name in fqdns],
            "pairs": pairs,
            "verdict": _text(problems, field + ".verdict", flow.get("verdict")) or "",
        })
    ok = proof.get("ok")
    if ok is not None:
        ok = problems.check(checks.boolean, "policy_proof.proof.ok", ok)
    violations = _sequence(problems, "policy_proof.proof.violations", proof.get("violations")) or []
    opted_in = _sequence(problems, "policy_proof.proof.opted_in", proof.get("opted_in")) or []
    for name, entries in (("violations", violations), ("opted_in", opted_in)):
        for index, entry in enumerate(entries):
            _mapping(problems, "policy_proof.proof.%s[%d]" % (name, index), entry)
    warnings = _sequence(problems, "policy_proof.proof.warnings", proof.get("warnings")) or []
    return {
        "files": [str(name) for name in files if name not in (None, "")],
        "summary": summary,
        "matrix": tables,
        "flows": flows,
        "ok": ok,
        "violations": [entry for entry in violations if isinstance(entry, dict)],
        "opted_in": [entry for entry in opted_in if isinstance(entry, dict)],
        "warnings": [str(entry) for entry in warnings],
        "dns": proof.get("dns") if isinstance(proof.get("dns"), dict) else {},
        "api_server": proof.get("api_server") if isinstance(proof.get("api_server"), dict) else {},
    }


def normalise_inputs(output_dir=None, title=None, cluster_name=None, mode=None, generated_at=None, nodes=None,
                     network_plan=None, mtu_probes=None, cilium_values=None, policy_proof=None,
                     connectivity=None):
    """Check every option and return them normalised; raise ``InvalidInput(s)`` naming each problem.

    ``output_dir`` is only checked for being given; the module decides where files go.
    Lists come back sorted (nodes by name, MTU probes failures first) so the order the
    results arrived in does not change the report.
    """
    problems = _Problems()
    _text(problems, "output_dir", output_dir, required=True, what="the directory to write the report to")
    inputs = {
        "title": _text(problems, "title", title) or DEFAULT_TITLE,
        "cluster_name": _text(problems, "cluster_name", cluster_name),
        "mode": _choice(problems, "mode", mode, MODES) if mode is not None else None,
        "generated_at": _text(problems, "generated_at", generated_at),
        "nodes": _normalise_nodes(problems, nodes),
        "network_plan": _normalise_network_plan(problems, network_plan),
        "mtu_probes": _normalise_mtu_probes(problems, mtu_probes),
        "cilium_values": _mapping(problems, "cilium_values", cilium_values) or {},
        "policy_proof": _normalise_proof(problems, policy_proof),
        "connectivity": _normalise_connectivity(problems, connectivity),
    }
    problems.raise_any()
    return inputs


# --------------------------------------------------------------------------------------
# Cilium values against the chart defaults
# --------------------------------------------------------------------------------------

def values_key(path):
    """A key path as Helm's --set writes it: dots inside a key are escaped (``a.b\\.c``)."""
    return ".".join(str(part).replace(".", "\\.") for part in path)


def _canonical(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


_NOT_IN_CHART = object()


def values_diff(values, defaults=None):
    """The keys of ``values`` that differ from the chart defaults, sorted by key.

    Each entry is ``{key, default, value, change}`` with ``change`` ``changed`` or ``added``
    (a key the chart does not set).  Keys set to the chart default are left out, and so
    are chart keys the values do not set (Helm keeps their defaults).  Values compare by
    type as well (``true`` is not ``1``, ``"false"`` is not ``false``).
    """
    defaults = chart.DEFAULTS if defaults is None else defaults
    entries = []
    for path, value in cilium_values.flatten(values or {}).items():
        default = cilium_values.lookup(defaults, path, default=_NOT_IN_CHART)
        if default is _NOT_IN_CHART:
            entries.append({"key": values_key(path), "default": None, "value": value, "change": "added"})
        elif _canonical(default) != _canonical(value):
            entries.append({"key": values_key(path), "default": default, "value": value, "change": "changed"})
    return sorted(entries, key=lambda entry: entry["key"])


def value_text(value):
    """A Helm value as JSON (strings quoted), shortened to a readable length."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS - 1] + u"\u2026"
    return text


# --------------------------------------------------------------------------------------
# The reachability grid
# --------------------------------------------------------------------------------------


def proof_cell_verdict(cell):
    """The grid verdict of one cell of the policy proof's matrix, None when it is not one.

    ``allowed`` -> allowed; ``allowed (HTTP)``, ``(DNS)``, ``(FQDN)`` or combinations ->
    restricted; ``partly L7`` (every pair allowed, some without the L7 rules) -> allowed;
    ``partly`` (some pairs denied) -> partly; ``denied`` -> denied; ``–`` -> self; ``·`` ->
    unevaluated.
    """
    if not isinstance(cell, str):
        return None
    if cell == "allowed" or cell == "partly L7":
        return ALLOWED
    if cell.startswith("allowed (") and cell.endswith(")"):
        return RESTRICTED
    return {"partly": PARTLY, "denied": DENIED, u"\u2013": SELF, u"\u00b7": UNEVALUATED}.get(cell)


def _rank(verdict):
    return VERDICTS.index(verdict)


def _group_order(name):
    """Workloads (namespace/name) first, then entities and addresses, each alphabetical."""
    return ("/" not in name, name)


def _end_matches(end, group):
    """Whether a flow end as the proof writes it (``ns/workload``, ``ns/*``, ``ns/{sel}``) is ``group``.

    Returns ``exact`` for the same name, ``namespace`` when the end covers the group's
    namespace by wildcard or selector, else None.
    """
    if end == group:
        return "exact"
    if "/" in end and "/" in group:
        namespace, rest = end.split("/", 1)
        if group.split("/", 1)[0] == namespace and (rest == "*" or rest.startswith("{")):
            return "namespace"
    return None


def _flow_port_covers(port_text, port, protocol):
    match = _PORT_TEXT.match(port_text)
    if not match or match.group("protocol").upper() != str(protocol).upper():
        return False
    if match.group("name"):
        return True  # a named port: the proof resolved it, the grid cannot
    start = int(match.group("port"))
    end = int(match.group("end")) if match.group("end") else start
    return start <= port <= end


def _describe_http(rule):
    text = " ".join(str(rule[key]) for key in ("method", "path") if rule.get(key)) or "any request"
    if rule.get("host"):
        text += " host %s" % rule["host"]
    return text


def _port_line(port, protocol, cell_text, flows):
    """``8080/TCP GET /api/v1/data``: the port and what restricts it."""
    label = "%s/%s" % (port, protocol)
    verdict = proof_cell_verdict(cell_text)
    if verdict == RESTRICTED:
        details = []
        for flow in flows:
            details.extend(_describe_http(rule) for rule in flow["http"])
            if "FQDN" in cell_text:
                details.extend(flow["fqdns"])
        if details:
            return "%s %s" % (label, ", ".join(sorted(set(details))))
        return "%s %s" % (label, cell_text[len("allowed "):])
    if cell_text == "partly L7":
        return "%s (partly L7)" % label
    if verdict == PARTLY:
        return "%s (partly)" % label
    return label


class GridCell:
    """One (source, destination) cell of the picture."""

    def __init__(self, source, target):
        self.source = source
        self.target = target
        self.verdict = UNEVALUATED
        self.lines = []          # allowed ports, e.g. "8080/TCP GET /api/v1/data"
        self.ports = []          # (port label, proof cell text) for every port of the proof
        self.flows = []          # names of the declared flows covering the cell
        self.probes = []         # connectivity results for the pair
        self.planned_by = None   # "proof", "probes" or None

    @property
    def mismatches(self):
        return [probe for probe in self.probes if probe["match"] is False]

    @property
    def judged(self):
        """The probes that ran (a probe listed but not run has no ``match``)."""
        return [probe for probe in self.probes if probe["match"] is not None]


class Grid:
    """Rows (sources), columns (destinations) and the cells between them."""

    def __init__(self, sources, targets, cells, basis):
        self.sources = sources
        self.targets = targets
        self.cells = cells
        self.basis = basis

    def cell(self, source, target):
        return self.cells[(source, target)]

    def counts(self):
        counts = dict((verdict, 0) for verdict in VERDICTS)
        for cell in self.cells.values():
            counts[cell.verdict] += 1
        return counts


def probe_label(probe):
    """``8080/TCP GET /api/v1/data`` for a connectivity probe."""
    text = str(probe["protocol"]).upper()
    if probe["port"] is not None:
        text = "%s/%s" % (probe["port"], text)
    extra = " ".join(part for part in (probe["method"], probe["path"], probe["query"]) if part)
    return "%s %s" % (text, extra) if extra else text


def _verdict_from_probes(probes):
    """The planned verdict of a pair known only from connectivity results (their ``expected``)."""
    allowed = [probe for probe in probes if probe["expected"] == "allowed"]
    if not allowed:
        return DENIED, []
    allowed_ports = set((probe["protocol"], probe["port"]) for probe in allowed)
    restricted = any(probe["expected"] == "denied" and (probe["protocol"], probe["port"]) in allowed_ports
                     for probe in probes)
    lines = sorted(set(probe_label(probe) for probe in allowed))
    return (RESTRICTED if restricted else ALLOWED), lines


def reachability_grid(proof=None, connectivity=None):
    """Merge the policy proof's per-port tables (and the probes) into one grid.

    ``proof`` and ``connectivity`` are the normalised ``policy_proof`` and ``connectivity``
    of :func:`normalise_inputs`.  Returns a :class:`Grid`, or None when there is neither.
    """
    if not proof and not connectivity:
        return None
    cells = {}
    sources = set()
    targets = set()

    def cell_of(source, target):
        sources.add(source)
        targets.add(target)
        if (source, target) not in cells:
            cells[(source, target)] = GridCell(source, target)
        return cells[(source, target)]

    flows = proof["flows"] if proof else []
    for table in (proof["matrix"] if proof else []):
        for row in table["rows"]:
            for target, cell_text in zip(table["columns"], row["cells"]):
                cell = cell_of(row["from"], target)
                verdict = proof_cell_verdict(cell_text)
                cell.planned_by = "proof"
                cell.ports.append(("%s/%s" % (table["port"], table["protocol"]), cell_text))
                if _rank(verdict) < _rank(cell.verdict):
                    cell.verdict = verdict
                if verdict in (ALLOWED, RESTRICTED, PARTLY):
                    covering = [flow for flow in flows if _flow_covers(flow, cell, table["port"], table["protocol"])]
                    cell.lines.append(_port_line(table["port"], table["protocol"], cell_text, covering))
                    for flow in covering:
                        if flow["name"] not in cell.flows:
                            cell.flows.append(flow["name"])
    for flow in flows:
        for cell in cells.values():
            if flow["name"] not in cell.flows and _end_matches(flow["from"], cell.source) == "exact" \
                    and _end_matches(flow["to"], cell.target) == "exact":
                cell.flows.append(flow["name"])  # declared but not allowed: outlined so it shows
    for probe in (connectivity["probes"] if connectivity else []):
        cell_of(probe["from"], probe["to"]).probes.append(probe)
    for cell in cells.values():
        if cell.planned_by is None and cell.probes:
            cell.verdict, cell.lines = _verdict_from_probes(cell.probes)
            cell.planned_by = "probes"
            for probe in cell.probes:
                if probe["flow"] and probe["flow"] not in cell.flows and probe["expected"] == "allowed":
                    cell.flows.append(probe["flow"])
        cell.flows.sort()
    # The proof's rows and columns first, then names only probes have, so each stays a block.
    proof_sources = set(row["from"] for table in (proof["matrix"] if proof else []) for row in table["rows"])
    proof_targets = set(column for table in (proof["matrix"] if proof else []) for column in table["columns"])
    source_list = sorted(sources, key=lambda name: (name not in proof_sources,) + _group_order(name))
    target_list = sorted(targets, key=lambda name: (name not in proof_targets,) + _group_order(name))
    for source in source_list:
        for target in target_list:
            if (source, target) not in cells:
                cell = cell_of(source, target)
                if source == target and source not in proof_sources:
                    cell.verdict = SELF  # probes never go from an endpoint to itself
    basis = "policy proof" if proof else "connectivity results"
    return Grid(source_list, target_list, cells, basis)


def _flow_covers(flow, cell, port, protocol):
    """Whether a declared flow covers an allowed cell on this port."""
    if not any(_flow_port_covers(text, port, protocol) for text in flow["ports"]):
        return False
    if not _end_matches(flow["from"], cell.source):
        return False
    if flow["fqdns"]:
        return cell.target == "world"
    return bool(_end_matches(flow["to"], cell.target))


# --------------------------------------------------------------------------------------
# The picture
# --------------------------------------------------------------------------------------

FONT_SIZE = 12
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_CHAR_WIDTH_TENTHS = 73   # 0.61 em of a 12 px monospace font, in tenths of a pixel
_LINE_HEIGHT = 15
_PAD = 6
_MARK_SPACE = 22
_MARGIN = 16
_AXIS_NOTE = "rows: from (source), columns: to (destination); planned verdict merged over all ports"


def _clean(text):
    """Text without the characters XML 1.0 cannot carry (replaced by U+FFFD)."""
    return _INVALID_XML_CHARS.sub(u"\ufffd", u"%s" % (text,))


def xml_escape(text):
    """Escape text for XML content and double-quoted attributes."""
    return (_clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def text_width(text, font_size=FONT_SIZE):
    """Width in pixels of ``text`` in the picture's monospace font (wide characters count twice)."""
    units = 0
    for char in _clean(text):
        units += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return int(math.ceil(units * _CHAR_WIDTH_TENTHS * font_size / (10.0 * FONT_SIZE)))


def _shorten(text, limit=_MAX_LINE_CHARS):
    return text if len(text) <= limit else text[:limit - 1] + u"\u2026"


def _wrapped(line):
    """A long port line as ``(indent, text)`` lines: each further rule or name on a line of its
    own, indented (in characters) to start under the first one."""
    if len(line) <= _MAX_LINE_CHARS:
        return [(0, line)]
    pieces = line.split(", ")
    indent = len(pieces[0].split(" ", 1)[0]) + 1
    return [(0, _shorten(pieces[0]))] + [(indent, _shorten(piece, _MAX_LINE_CHARS - indent)) for piece in pieces[1:]]


def _cell_layout(cell):
    """``(indent, text)`` lines printed inside a cell."""
    if cell.verdict in (ALLOWED, RESTRICTED, PARTLY):
        return [item for line in cell.lines for item in _wrapped(line)] or [(0, VERDICT_LABELS[cell.verdict])]
    if cell.verdict == DENIED:
        return [(0, "denied")]
    if cell.verdict == SELF:
        return [(0, u"\u2013")]
    return []


def _cell_texts(cell):
    return [text for _indent, text in _cell_layout(cell)]


def _cell_tooltip(cell):
    lines = ["%s \u2192 %s: %s" % (cell.source, cell.target, VERDICT_LABELS[cell.verdict])]
    if cell.planned_by == "probes":
        lines[0] += " (planned verdict from the probes' expectations)"
    lines.extend(cell.lines)
    if cell.ports:
        lines.append("per port: " + ", ".join("%s %s" % (port, text) for port, text in cell.ports))
    for flow in cell.flows:
        lines.append("declared flow %s" % flow)
    if cell.judged:
        lines.append("probes: %d, disagreeing with the plan: %d" % (len(cell.judged), len(cell.mismatches)))
    return "\n".join(lines)


def _probe_sentence(probe):
    text = "%s expected %s, observed %s" % (probe_label(probe), probe["expected"], probe["observed"] or "nothing (not run)")
    if probe["name"]:
        text = "%s: %s" % (probe["name"], text)
    if probe["detail"]:
        text += " (%s)" % probe["detail"]
    return text


def _num(value):
    return ("%d" % value) if float(value).is_integer() else ("%.1f" % value)


def _svg_text(x, y, text, attributes=""):
    return '<text x="%s" y="%s"%s>%s</text>' % (_num(x), _num(y), attributes, xml_escape(text))


def _legend_items(grid):
    items = [("swatch", VERDICT_FILLS[verdict], VERDICT_LABELS[verdict], "zt-legend-" + verdict)
             for verdict in VERDICTS]
    items.append(("flow", None, "declared flow", "zt-legend-flow"))
    if any(cell.judged for cell in grid.cells.values()):
        items.append(("match", None, "probes agree with the plan", "zt-legend-match"))
        items.append(("mismatch", None, "a probe disagrees with the plan", "zt-legend-mismatch"))
    return items


def _mismatch_mark(x, y, tooltip):
    return ('<g class="zt-mismatch"><title>%s</title>'
            '<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"/>'
            '<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"/></g>'
            % (xml_escape(tooltip), _num(x), _num(y), _num(x + 10), _num(y + 10), MISMATCH_STROKE,
               _num(x), _num(y + 10), _num(x + 10), _num(y), MISMATCH_STROKE))


def _match_mark(x, y, tooltip):
    return ('<g class="zt-match"><title>%s</title><path d="M%s,%s l3.5,4.5 l6.5,-9" fill="none" stroke="%s" '
            'stroke-width="2.2"/></g>' % (xml_escape(tooltip), _num(x), _num(y + 5), MATCH_STROKE))


def render_svg(grid, title, subtitle=""):
    """The grid as an SVG 1.1 document (text), deterministic for the same grid."""
    lines = []
    rows = grid.sources
    columns = grid.targets
    row_label_width = max([text_width(name) for name in rows] + [text_width("from \\ to")]) + 2 * _PAD
    column_widths = []
    for target in columns:
        content = [text_width(" " * indent + text) for source in rows
                   for indent, text in _cell_layout(grid.cell(source, target))]
        column_widths.append(max(content + [text_width("denied"), 40]) + 2 * _PAD + _MARK_SPACE)
    # Column labels are written horizontally when that widens the grid by a quarter at most
    # (or there are only a few columns), else rotated to read upwards.
    widened = [max(width, text_width(name) + 2 * _PAD) for name, width in zip(columns, column_widths)]
    horizontal = len(columns) <= 3 or sum(widened) <= 1.25 * sum(column_widths)
    if horizontal:
        column_widths = widened
        header_height = _LINE_HEIGHT + 2 * _PAD
    else:
        header_height = max([text_width(name) for name in columns] + [0]) + 2 * _PAD
    row_heights = []
    for source in rows:
        count = max([len(_cell_texts(grid.cell(source, target))) for target in columns] + [1])
        row_heights.append(max(count * _LINE_HEIGHT + 2 * _PAD, 30))

    title_height = 26 + (18 if subtitle else 0)
    grid_top = _MARGIN + title_height + 18
    grid_left = _MARGIN
    grid_width = row_label_width + sum(column_widths)
    grid_height = header_height + sum(row_heights)

    legend = _legend_items(grid)
    legend_item_widths = [34 + text_width(label) + 18 for _kind, _fill, label, _css in legend]
    content_width = max(grid_width, text_width(title, 16) + 8, text_width(subtitle) + 8,
                        text_width(_AXIS_NOTE, 11) + 8, 420)
    legend_rows = []
    current = []
    used = 0
    for item, width in zip(legend, legend_item_widths):
        if current and used + width > content_width:
            legend_rows.append(current)
            current, used = [], 0
        current.append((item, used))
        used += width
    if current:
        legend_rows.append(current)
    legend_top = grid_top + grid_height + 24
    total_width = content_width + 2 * _MARGIN
    total_height = legend_top + 20 + len(legend_rows) * 24 + _MARGIN

    lines.append('<?xml version="1.0" encoding="UTF-8"?>')
    lines.append('<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" '
                 'font-family="%s" font-size="%d">' % (total_width, total_height, total_width, total_height,
                                                       xml_escape(FONT_FAMILY), FONT_SIZE))
    lines.append("<title>%s</title>" % xml_escape(title))
    lines.append("<desc>%s</desc>" % xml_escape(
        "Reachability matrix: rows are sources, columns destinations, the colour is the planned verdict over all "
        "ports (from the %s)." % grid.basis))
    lines.append("<defs>")
    lines.append('<pattern id="zt-unevaluated" patternUnits="userSpaceOnUse" width="8" height="8">'
                 '<rect width="8" height="8" fill="#f3f3f3"/>'
                 '<path d="M-2,2 L2,-2 M0,8 L8,0 M6,10 L10,6" stroke="#c8c8c8" stroke-width="1.2"/></pattern>')
    lines.append('<pattern id="zt-partly" patternUnits="userSpaceOnUse" width="10" height="10">'
                 '<rect width="10" height="10" fill="%s"/>'
                 '<path d="M-2.5,2.5 L2.5,-2.5 M0,10 L10,0 M7.5,12.5 L12.5,7.5" stroke="%s" stroke-width="3"/>'
                 '</pattern>' % (VERDICT_FILLS[ALLOWED], VERDICT_FILLS[DENIED]))
    lines.append("</defs>")
    lines.append('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (total_width, total_height))
    lines.append(_svg_text(_MARGIN, _MARGIN + 16, title, ' class="zt-title" font-size="16" font-weight="bold"'))
    if subtitle:
        lines.append(_svg_text(_MARGIN, _MARGIN + 36, subtitle, ' class="zt-subtitle" fill="#444444"'))
    lines.append(_svg_text(_MARGIN, grid_top - 6, _AXIS_NOTE, ' fill="#444444" font-size="11"'))

    lines.append('<g class="zt-grid">')
    lines.append('<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#999999"/>'
                 % (grid_left, grid_top, row_label_width, header_height))
    lines.append(_svg_text(grid_left + _PAD, grid_top + header_height - _PAD - 3, "from \\ to",
                           ' fill="#444444"'))
    x = grid_left + row_label_width
    for index, (target, width) in enumerate(zip(columns, column_widths)):
        lines.append('<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#999999"/>'
                     % (x, grid_top, width, header_height))
        if horizontal:
            lines.append(_svg_text(x + _PAD, grid_top + header_height - _PAD - 3, target,
                                   ' id="zt-col-%d" class="zt-col-label" font-weight="bold"' % index))
        else:
            anchor_x = x + width / 2.0 + 4
            anchor_y = grid_top + header_height - _PAD
            lines.append('<text id="zt-col-%d" class="zt-col-label" font-weight="bold" x="0" y="0" '
                         'transform="translate(%s,%s) rotate(-90)">%s</text>'
                         % (index, _num(anchor_x), _num(anchor_y), xml_escape(target)))
        x += width
    y = grid_top + header_height
    for row_index, (source, height) in enumerate(zip(rows, row_heights)):
        lines.append('<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#999999"/>'
                     % (grid_left, y, row_label_width, height))
        lines.append(_svg_text(grid_left + _PAD, y + _PAD + 11, source,
                               ' id="zt-row-%d" class="zt-row-label" font-weight="bold"' % row_index))
        x = grid_left + row_label_width
        for column_index, (target, width) in enumerate(zip(columns, column_widths)):
            cell = grid.cell(source, target)
            classes = ["zt-cell", "zt-" + cell.verdict]
            if cell.flows:
                classes.append("zt-declared")
            lines.append('<g id="zt-cell-%d-%d" class="%s"><title>%s</title>'
                         % (row_index, column_index, " ".join(classes), xml_escape(_cell_tooltip(cell))))
            lines.append('<rect class="zt-fill" x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#999999"/>'
                         % (x, y, width, height, VERDICT_FILLS[cell.verdict]))
            text_fill = "#7a1c1c" if cell.verdict == DENIED else "#1a1a1a"
            for line_index, (indent, text) in enumerate(_cell_layout(cell)):
                lines.append(_svg_text(x + _PAD + text_width(" " * indent), y + _PAD + 11 + line_index * _LINE_HEIGHT,
                                       text, ' fill="%s"' % text_fill))
            if cell.flows:
                lines.append('<rect class="zt-flow" x="%s" y="%s" width="%s" height="%s" fill="none" stroke="%s" '
                             'stroke-width="3"><title>%s</title></rect>'
                             % (_num(x + 2.5), _num(y + 2.5), _num(width - 5), _num(height - 5), FLOW_STROKE,
                                xml_escape("declared flow: " + ", ".join(cell.flows))))
            if cell.mismatches:
                lines.append(_mismatch_mark(x + width - 16, y + 5, "probes that disagree with the plan:\n"
                                            + "\n".join(_probe_sentence(probe) for probe in cell.mismatches)))
            elif cell.judged:
                lines.append(_match_mark(x + width - 16, y + 5, "%d probe(s) agree with the plan:\n%s" % (
                    len(cell.judged), "\n".join(_probe_sentence(probe) for probe in cell.judged))))
            lines.append("</g>")
            x += width
        y += height
    lines.append("</g>")

    lines.append('<g class="zt-legend">')
    lines.append(_svg_text(_MARGIN, legend_top, "Legend", ' font-weight="bold"'))
    for legend_row_index, legend_row in enumerate(legend_rows):
        item_y = legend_top + 10 + legend_row_index * 24
        for (kind, fill, label, css), offset in legend_row:
            item_x = _MARGIN + offset
            lines.append('<g class="zt-legend-item %s">' % css)
            if kind == "swatch":
                lines.append('<rect x="%d" y="%d" width="26" height="16" fill="%s" stroke="#999999"/>'
                             % (item_x, item_y, fill))
            elif kind == "flow":
                lines.append('<rect x="%d" y="%d" width="26" height="16" fill="#ffffff" stroke="%s" '
                             'stroke-width="3"/>' % (item_x + 1, item_y + 1, FLOW_STROKE))
            elif kind == "match":
                lines.append('<path d="M%d,%d l3.5,4.5 l6.5,-9" fill="none" stroke="%s" stroke-width="2.2"/>'
                             % (item_x + 8, item_y + 8, MATCH_STROKE))
            else:
                lines.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"/>'
                             '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"/>'
                             % (item_x + 8, item_y + 3, item_x + 18, item_y + 13, MISMATCH_STROKE,
                                item_x + 8, item_y + 13, item_x + 18, item_y + 3, MISMATCH_STROKE))
            lines.append(_svg_text(item_x + 34, item_y + 12, label))
            lines.append("</g>")
    lines.append("</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# The document: one model, rendered as Markdown and as HTML
# --------------------------------------------------------------------------------------
#
# Blocks: ("heading", level, text), ("paragraph", spans), ("list", [spans, ...]),
# ("table", [header...], [[cell...], ...]), ("picture", alt, file name).  Spans are a str
# (plain text) or a list of (style, text) with style "", "code" or "strong".


def code(text):
    return [("code", text)]


def strong(text):
    return [("strong", text)]


def spans(*parts):
    """Join strings (plain text) and span lists into one span list."""
    result = []
    for part in parts:
        if isinstance(part, list):
            result.extend(part)
        else:
            result.append(("", part))
    return result


def _as_spans(content):
    return content if isinstance(content, list) else [("", content)]


_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|&#~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def markdown_text(text):
    """Plain text for Markdown: characters Markdown would interpret are backslash-escaped.

    An underscore between two letters or digits (``black_hole``) cannot start emphasis
    and stays as it is.
    """
    return _MD_SPECIAL.sub(r"\\\1", _clean(text).replace("\r", " ").replace("\n", " "))


def markdown_code(text, in_table=False):
    text = _clean(text).replace("\r", " ").replace("\n", " ")
    longest = max([len(run) for run in re.findall("`+", text)] + [0])
    fence = "`" * (longest + 1)
    if in_table:
        text = text.replace("|", "\\|")
    if text.startswith("`") or text.endswith("`") or longest:
        text = " %s " % text
    return fence + text + fence


def _markdown_spans(content, in_table=False):
    parts = []
    for style, text in _as_spans(content):
        if style == "code":
            parts.append(markdown_code(text, in_table))
        elif style == "strong":
            parts.append("**%s**" % markdown_text(text))
        else:
            parts.append(markdown_text(text))
    return "".join(parts)


def render_markdown(blocks):
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            out.append("%s %s" % ("#" * block[1], markdown_text(block[2])))
        elif kind == "paragraph":
            out.append(_markdown_spans(block[1]))
        elif kind == "list":
            out.append("\n".join("- " + _markdown_spans(item) for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            table = ["| " + " | ".join(_markdown_spans(cell, True) for cell in header) + " |",
                     "|" + "|".join("---" for _column in header) + "|"]
            for row in rows:
                table.append("| " + " | ".join(_markdown_spans(cell, True) for cell in row) + " |")
            out.append("\n".join(table))
        elif kind == "picture":
            out.append("![%s](%s)" % (markdown_text(block[1]), block[2]))
    return "\n\n".join(out) + "\n"


def html_escape(text):
    return html.escape(_clean(text), quote=True)


def _html_spans(content):
    parts = []
    for style, text in _as_spans(content):
        if style == "code":
            parts.append("<code>%s</code>" % html_escape(text))
        elif style == "strong":
            parts.append("<strong>%s</strong>" % html_escape(text))
        else:
            parts.append(html_escape(text))
    return "".join(parts)


_HTML_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #1a1a1a; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; } h3 { margin-top: 1.2em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.picture { overflow-x: auto; margin: 0.8em 0; }
""".strip()


def render_html(blocks, title, svg):
    """The same document as HTML: self-contained, the picture inline, every text escaped."""
    out = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>%s</title>" % html_escape(title), "<style>", _HTML_STYLE, "</style>", "</head>", "<body>"]
    inline_svg = svg.split("\n", 1)[1] if svg.startswith("<?xml") else svg
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            out.append("<h%d>%s</h%d>" % (block[1], html_escape(block[2]), block[1]))
        elif kind == "paragraph":
            out.append("<p>%s</p>" % _html_spans(block[1]))
        elif kind == "list":
            out.append("<ul>\n%s\n</ul>" % "\n".join("<li>%s</li>" % _html_spans(item) for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            table = ["<table>", "<thead><tr>%s</tr></thead>" % "".join("<th>%s</th>" % _html_spans(cell)
                                                                       for cell in header), "<tbody>"]
            for row in rows:
                table.append("<tr>%s</tr>" % "".join("<td>%s</td>" % _html_spans(cell) for cell in row))
            table.append("</tbody>")
            table.append("</table>")
            out.append("\n".join(table))
        elif kind == "picture":
            out.append('<div class="picture" role="img" aria-label="%s">\n%s</div>'
                       % (html_escape(block[1]), inline_svg))
    out.extend(["</body>", "</html>"])
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------

_NOT_COLLECTED = {
    "nodes": "no node results were given (option nodes): the nodes phase (kernel_preflight, node_tuning) "
             "did not run or its results were not passed on",
    "network_plan": "no network plan was given (option network_plan): pass the plan role's MTU, pod CIDR and "
                    "routing results",
    "mtu_probes": "no MTU probe results were given (option mtu_probes): the verify phase's mtu_probe did not run "
                  "or its results were not passed on",
    "cilium_values": "no Helm values were given (option cilium_values): the cilium role did not run or its "
                     "values were not passed on",
    "policy_proof": "no policy proof was given (option policy_proof): the network_policy role did not run or "
                    "its proof.json was not passed on",
    "connectivity": "no connectivity results were given (option connectivity): the verify phase's "
                    "connectivity_check did not run or its results were not passed on",
}


def not_collected(part, mode=None):
    """The sentence a section without data shows."""
    reason = _NOT_COLLECTED[part]
    if part == "connectivity" and mode == "render":
        reason = "render mode has no cluster to probe, and no connectivity results were given (option connectivity)"
    return "Not collected: %s." % reason


def _counted(counts, order):
    return ", ".join("%d %s" % (counts[name], name) for name in order if counts.get(name))


def _count_by(items, key, order):
    counts = dict((name, 0) for name in order)
    for item in items:
        counts[item[key]] = counts.get(item[key], 0) + 1
    return counts


def _overall(counts, order):
    """The worst status present, by ``order`` (worst first)."""
    for name in order:
        if counts.get(name):
            return name
    return None


def _nodes_section(inputs, blocks):
    nodes = inputs["nodes"]
    blocks.append(("heading", 2, "Nodes"))
    if not nodes:
        blocks.append(("paragraph", not_collected("nodes")))
        return
    rows = []
    for node in nodes:
        findings = _count_by(node["kernel_findings"], "status", FINDING_STATUSES)
        sysctl_counts = _count_by(node["sysctls"], "status", SYSCTL_STATUSES)
        rows.append([
            code(node["name"]),
            code(node["kernel_release"]) if node["kernel_release"] else "not collected",
            strong(node["kernel_verdict"]) if node["kernel_verdict"] != "ok" else "ok",
            _counted(findings, ("missing", "warning", "unknown", "waived", "ok")) or "none given",
            ("%d of %d as wanted" % (sysctl_counts["ok"], len(node["sysctls"]))) if node["sysctls"] else "none given",
        ])
    blocks.append(("table", ["node", "kernel", "kernel verdict", "kernel findings", "sysctls"], rows))

    blocks.append(("heading", 3, "Kernel findings that need attention"))
    attention = [(node, finding) for node in nodes for finding in node["kernel_findings"] if finding["status"] != "ok"]
    if attention:
        blocks.append(("table", ["node", "item", "status", "detail"], [
            [code(node["name"]), code(finding["item"]), strong(finding["status"]), finding["detail"]]
            for node, finding in attention]))
    elif any(node["kernel_findings"] for node in nodes):
        blocks.append(("paragraph", "Every kernel requirement checked is met on every node."))
    else:
        blocks.append(("paragraph", "No kernel findings were given; the verdicts above are the whole result."))

    blocks.append(("heading", 3, "Sysctls"))
    grouped = {}
    for node in nodes:
        for sysctl in node["sysctls"]:
            grouped.setdefault((sysctl["key"], sysctl["expected"]), []).append((node["name"], sysctl))
    if not grouped:
        blocks.append(("paragraph", "No sysctls were read back (no node gave sysctls)."))
        return
    rows = []
    for (key, expected) in sorted(grouped):
        entries = grouped[(key, expected)]
        good = [name for name, sysctl in entries if sysctl["status"] == "ok"]
        differing = ["%s: %s (%s)" % (name, sysctl["running"], sysctl["status"])
                     for name, sysctl in entries if sysctl["status"] != "ok"]
        rows.append([code(key), code(expected), "%d of %d" % (len(good), len(entries)),
                     "; ".join(differing) or u"\u2013"])
    blocks.append(("table", ["key", "expected", "as wanted on", "differs on (running value, status)"], rows))


def _plan_rows(plan, fields):
    rows = []
    for label, getter in fields:
        value = getter(plan)
        if value is not None:
            rows.append([label, value])
    return rows


def _get(*path):
    def getter(plan):
        node = plan
        for key in path:
            if not isinstance(node, dict) or node.get(key) is None:
                return None
            node = node[key]
        return _scalar_text(node)
    return getter


def _network_section(inputs, blocks):
    plan = inputs["network_plan"]
    blocks.append(("heading", 2, "Network plan"))
    if not plan:
        blocks.append(("paragraph", not_collected("network_plan")))
        return
    blocks.append(("heading", 3, "MTU"))
    mtu = plan.get("mtu")
    if mtu:
        def underlay(value):
            configured = value.get("configured_mtu")
            if configured == 0:
                return "0 (auto-detect; planned as %s)" % _scalar_text(value.get("base_mtu"))
            return None if configured is None else _scalar_text(configured)

        def tunnel(value):
            if value.get("tunnel") is None and value.get("encryption") is None:
                return None
            return "%s / %s" % (_scalar_text(value.get("tunnel")), _scalar_text(value.get("encryption")))

        def payload(value):
            sizes = value.get("probe_payload")
            if not isinstance(sizes, dict):
                return None
            return ", ".join("%s %s" % (family, _scalar_text(sizes[family])) for family in sorted(sizes))

        rows = _plan_rows(mtu, [
            ("underlay MTU (Helm MTU)", underlay),
            ("tunnel / encryption", tunnel),
            ("overhead (tunnel + encryption)", _get("overhead")),
            ("route MTU pods get", _get("route_mtu")),
            ("device MTU", _get("device_mtu")),
            ("WireGuard device MTU", _get("wireguard_mtu")),
            ("DF ping payload filling the route MTU", payload),
            ("Cilium release the rules are from", _get("cilium_version")),
        ])
        blocks.append(("table", ["setting", "value"], rows))
        warnings = mtu.get("warnings") if isinstance(mtu.get("warnings"), list) else []
        if warnings:
            blocks.append(("list", [spans(strong("warning: "), str(warning)) for warning in warnings]))
    else:
        blocks.append(("paragraph", "Not collected: the network plan has no mtu part (the cilium_mtu result)."))

    blocks.append(("heading", 3, "Pod CIDR"))
    pod_cidr = plan.get("pod_cidr")
    if pod_cidr:
        def per_node(value):
            if value.get("per_node_prefix") is None:
                return None
            return "/%s (clusterPool mask size)" % _scalar_text(value["per_node_prefix"])

        def pods(value):
            if value.get("allocatable_per_node") is None:
                return None
            text = "%s allocatable" % _scalar_text(value["allocatable_per_node"])
            if value.get("max_pods_per_node") is not None:
                text += ", %s planned (max pods per node)" % _scalar_text(value["max_pods_per_node"])
            return text

        def nodes(value):
            if value.get("required_nodes") is None:
                return None
            text = "%s" % _scalar_text(value["required_nodes"])
            if value.get("nodes") is not None and value.get("growth") is not None:
                text += " (%s nodes with %s%% growth)" % (_scalar_text(value["nodes"]),
                                                          _percent(value["growth"]))
            return text

        rows = _plan_rows(pod_cidr, [
            ("cluster CIDR", _get("cluster_cidr")),
            ("per-node prefix", per_node),
            ("pod addresses per node", pods),
            ("node blocks in the cluster CIDR", _get("node_capacity")),
            ("nodes planned", nodes),
            ("fits", _get("fits")),
        ])
        blocks.append(("table", ["setting", "value"], rows))
        if pod_cidr.get("reason"):
            blocks.append(("paragraph", str(pod_cidr["reason"])))
    else:
        blocks.append(("paragraph", "Not collected: the network plan has no pod_cidr part (the pod_cidr_plan "
                                    "result)."))

    blocks.append(("heading", 3, "Routing"))
    routing = plan.get("routing")
    if routing:
        rows = _plan_rows(routing, [
            ("recommended mode", _get("mode")),
            ("tunnel protocol", _get("tunnel_protocol")),
            ("native-routing CIDR", _get("native_routing_cidr")),
            ("autoDirectNodeRoutes", _get("auto_direct_node_routes")),
        ])
        blocks.append(("table", ["setting", "value"], rows))
        if routing.get("reason"):
            blocks.append(("paragraph", str(routing["reason"])))
        chosen = inputs["cilium_values"].get("routingMode")
        if chosen and routing.get("mode") and chosen != routing.get("mode"):
            blocks.append(("paragraph", spans("The Helm values use ", code("routingMode: %s" % chosen),
                                              "; the network math recommends %s." % routing["mode"])))
    else:
        blocks.append(("paragraph", "Not collected: the network plan has no routing part (the routing_mode "
                                    "result)."))


def _percent(value):
    try:
        return checks.percent_text(value)
    except (ValueError, TypeError, ArithmeticError):  # shown as given when it is not a number
        return str(value)


def _mtu_section(inputs, blocks):
    probes = inputs["mtu_probes"]
    blocks.append(("heading", 2, "MTU probes"))
    if not probes:
        blocks.append(("paragraph", not_collected("mtu_probes")))
        return
    bad = [probe for probe in probes if probe["status"] != "ok"]
    blocks.append(("paragraph", "%d of %d paths carry the expected MTU%s." % (
        len(probes) - len(bad), len(probes), "; the failing paths come first" if bad else "")))
    blocks.append(("table", ["from", "to", "address", "expected MTU", "path MTU", "status", "message"], [
        [code(probe["source"]) if probe["source"] else u"\u2013", code(probe["target"]),
         probe["address"] or u"\u2013", _scalar_text(probe["expected_mtu"]) if probe["expected_mtu"] is not None
         else u"\u2013", _scalar_text(probe["path_mtu"]) if probe["path_mtu"] is not None else "none",
         strong(probe["status"]) if probe["status"] != "ok" else "ok", probe["message"]]
        for probe in probes]))


def _values_section(inputs, blocks, diff):
    blocks.append(("heading", 2, "Cilium values"))
    if not inputs["cilium_values"]:
        blocks.append(("paragraph", not_collected("cilium_values")))
        return
    changed = len([entry for entry in diff if entry["change"] == "changed"])
    blocks.append(("paragraph", "The computed Helm values against the defaults of chart %s %s: %d changed, %d "
                                "added (keys the chart does not set). Keys set to their default are left out; "
                                "dots inside a key are escaped as in helm --set." % (
                                    chart.CHART_NAME, chart.CHART_VERSION, changed, len(diff) - changed)))
    if diff:
        blocks.append(("table", ["key", "chart default", "value", "change"], [
            [code(entry["key"]), code(value_text(entry["default"])) if entry["change"] == "changed" else u"\u2013",
             code(value_text(entry["value"])), entry["change"]] for entry in diff]))


def _policy_section(inputs, blocks):
    proof = inputs["policy_proof"]
    blocks.append(("heading", 2, "Policy set"))
    if not proof:
        blocks.append(("paragraph", not_collected("policy_proof")))
        return
    if proof["ok"] is True:
        verdict = spans(strong("Proof: proven."), " Every declared flow is allowed and nothing undeclared is.")
    elif proof["ok"] is False:
        verdict = spans(strong("Proof: refused."), " %d violation(s), listed below." % len(proof["violations"]))
    else:
        verdict = spans(strong("Proof: no verdict given."))
    blocks.append(("paragraph", verdict))
    summary = proof["summary"]
    facts = []
    if summary.get("mode"):
        facts.append(spans("mode: %s" % summary["mode"]))
    if isinstance(summary.get("managed_namespaces"), list):
        facts.append(spans("managed namespaces: ", code(", ".join(str(name) for name in summary["managed_namespaces"]))))
    if isinstance(summary.get("kinds"), dict) and summary["kinds"]:
        facts.append(spans("objects: " + ", ".join("%s %s" % (summary["kinds"][kind], kind)
                                                   for kind in sorted(summary["kinds"]))))
    if summary.get("pods") is not None:
        facts.append(spans("pods in the proof: %s (%s in managed namespaces)"
                           % (summary["pods"], summary.get("managed_pods", "?"))))
    if summary.get("policy_enforcement_mode"):
        facts.append(spans("Cilium policyEnforcementMode: %s" % summary["policy_enforcement_mode"]))
    dns = proof["dns"]
    if isinstance(dns.get("pairs"), dict):
        facts.append(spans("DNS: %s pod-to-server pairs allowed, %s denied"
                           % (dns["pairs"].get("allowed", 0), dns["pairs"].get("denied", 0))))
    api = proof["api_server"]
    if api:
        access = ", ".join(str(name) for name in api.get("access") or []) or "none"
        facts.append(spans("API server access (%s/TCP): %s" % (api.get("port", "?"), access)))
    if facts:
        blocks.append(("list", facts))

    blocks.append(("heading", 3, "Files"))
    if proof["files"]:
        blocks.append(("list", [code(name) for name in proof["files"]]))
    else:
        blocks.append(("paragraph", "The proof names no files."))

    blocks.append(("heading", 3, "Declared flows"))
    if proof["flows"]:
        rows = []
        for flow in proof["flows"]:
            pairs = flow["pairs"]
            rows.append([code(flow["name"]), code(flow["from"]), code(flow["to"]), ", ".join(flow["ports"]),
                         flow["l7"] or u"\u2013",
                         "%s / %s / %s" % (pairs.get("allowed", "?"), pairs.get("restricted", "?"),
                                           pairs.get("denied", "?")) if pairs else u"\u2013",
                         strong(flow["verdict"]) if flow["verdict"] not in ("allowed", "allowed, restricted at L7",
                                                                            "allowed, restricted to the DNS names")
                         else flow["verdict"]])
        blocks.append(("table", ["flow", "from", "to", "ports", "L7 / DNS names",
                                 "pairs allowed / restricted / denied", "verdict"], rows))
    else:
        blocks.append(("paragraph", "No flows are declared: only the baseline (default deny, DNS) applies."))

    blocks.append(("heading", 3, "Violations"))
    if proof["violations"]:
        blocks.append(("table", ["kind", "flow", "from", "to", "port", "pairs", "why"], [
            _violation_row(entry) for entry in proof["violations"]]))
    else:
        blocks.append(("paragraph", "None."))
    if proof["opted_in"]:
        blocks.append(("heading", 3, "Opted in by extra policies"))
        blocks.append(("table", ["kind", "flow", "from", "to", "port", "pairs", "why"], [
            _violation_row(entry) for entry in proof["opted_in"]]))
    if proof["warnings"]:
        blocks.append(("heading", 3, "Warnings"))
        blocks.append(("list", [spans(warning) for warning in proof["warnings"]]))


def _violation_row(entry):
    why = entry.get("reason") or entry.get("allowed_by") or entry.get("detail") or ""
    if isinstance(why, list):
        why = "; ".join(str(item) for item in why)
    port = "%s/%s" % (entry.get("port", "?"), entry.get("protocol", "?"))
    return [strong(str(entry.get("kind", "?"))), str(entry.get("flow") or u"\u2013"),
            code(str(entry.get("from", "?"))), code(str(entry.get("to", "?"))), port,
            _scalar_text(entry.get("pairs")) if entry.get("pairs") is not None else u"\u2013", str(why)]


def _cell_summary(cell):
    """One line of the text matrix for a cell."""
    if cell.verdict in (ALLOWED, RESTRICTED, PARTLY):
        text = "%s: %s" % (VERDICT_LABELS[cell.verdict], "; ".join(cell.lines))
    elif cell.verdict == SELF:
        text = u"\u2013"
    elif cell.verdict == UNEVALUATED:
        text = u"\u00b7"
    else:
        text = "denied"
    if cell.flows:
        text += " [flow %s]" % ", ".join(cell.flows)
    if cell.mismatches:
        text += u" \u2717 %d of %d probes disagree" % (len(cell.mismatches), len(cell.judged))
    elif cell.judged:
        text += u" \u2713 %d probe(s) agree" % len(cell.judged)
    return text


def _reachability_section(inputs, blocks, grid):
    blocks.append(("heading", 2, "Reachability"))
    if grid is None:
        blocks.append(("paragraph", "Not collected: neither a policy proof (option policy_proof) nor connectivity "
                                    "results (option connectivity) were given, so there is nothing to draw."))
        return
    if grid.basis == "policy proof":
        basis = ("Planned verdicts from the policy proof, every port merged into one cell per pair (the most open "
                 "verdict wins; the allowed ports are listed).")
        if inputs["connectivity"]:
            basis += (" Connectivity probes mark each pair they tested: a check when all agree with the plan, "
                      "a red cross when one does not.")
    else:
        basis = ("No policy proof was given: the grid shows the connectivity results alone, the expected verdicts "
                 "as colours and a check or a red cross where the observed ones agree or not.")
    blocks.append(("paragraph", basis))
    blocks.append(("picture", "reachability", PICTURE_FILE))
    if not grid.sources:
        blocks.append(("paragraph", _EMPTY_MATRIX))
        return
    blocks.append(("paragraph", "The same matrix as text (rows: from, columns: to):"))
    header = ["from \\ to"] + [code(target) for target in grid.targets]
    rows = [[code(source)] + [_cell_summary(grid.cell(source, target)) for target in grid.targets]
            for source in grid.sources]
    blocks.append(("table", header, rows))


def _probe_order(probe):
    return (probe["from"], probe["to"], probe["protocol"], probe["port"] if probe["port"] is not None else -1,
            probe["method"], probe["path"], probe["name"])


def ordered_probes(probes):
    """Mismatches first (blocked, open, probe errors), then matches, then probes not run; each
    sorted by pair and probe."""
    order = {False: 0, True: 1, None: 2}
    return sorted(probes, key=lambda probe: (order[probe["match"]], PROBE_KINDS.index(probe["kind"])
                                             if probe["kind"] in PROBE_KINDS else 0) + _probe_order(probe))


def probe_counts(probes):
    counts = {"probes": len(probes), "matched": 0, "mismatched": 0, "blocked": 0, "open": 0, "errors": 0,
              "not_run": 0}
    for probe in probes:
        if probe["match"] is None:
            counts["not_run"] += 1
            continue
        if probe["match"]:
            counts["matched"] += 1
            continue
        counts["mismatched"] += 1
        counts[{"blocked": "blocked", "open": "open"}.get(probe["kind"], "errors")] += 1
    return counts


def _connectivity_section(inputs, blocks):
    blocks.append(("heading", 2, "Connectivity truth table"))
    connectivity = inputs["connectivity"]
    if not connectivity:
        blocks.append(("paragraph", not_collected("connectivity", inputs["mode"])))
        return
    probes = connectivity["probes"]
    counts = probe_counts(probes)
    sentence = "%d probes: %d agree with the plan, %d blocked (expected allowed), %d open (expected denied), %d " \
               "probe errors" % (counts["probes"], counts["matched"], counts["blocked"], counts["open"],
                                 counts["errors"])
    if counts["not_run"]:
        sentence += ", %d not run" % counts["not_run"]
    blocks.append(("paragraph", sentence + ". Mismatches come first."))
    rows = []
    for probe in ordered_probes(probes):
        if probe["match"] is None:
            result = "not run"
        elif probe["match"]:
            result = u"\u2713"
        else:
            result = spans(strong(u"\u2717 " + probe["kind"]))
        rows.append([result, probe["name"] or u"\u2013", code(probe["from"]), code(probe["to"]), probe_label(probe),
                     probe["flow"] or u"\u2013", probe["expected"], probe["observed"] or u"\u2013", probe["detail"]])
    blocks.append(("table", ["result", "probe", "from", "to", "what", "flow", "expected", "observed", "detail"],
                   rows))


def summarise(inputs, grid, diff):
    """Counts a playbook can print; also the verdicts of the report's summary table."""
    nodes = inputs["nodes"]
    node_counts = _count_by(nodes, "kernel_verdict", KERNEL_VERDICTS)
    sysctl_entries = [sysctl for node in nodes for sysctl in node["sysctls"]]
    mtu_probes = inputs["mtu_probes"]
    pair_counts = grid.counts() if grid else dict((verdict, 0) for verdict in VERDICTS)
    probes = inputs["connectivity"]["probes"] if inputs["connectivity"] else []
    proof = inputs["policy_proof"]
    collected = {
        "nodes": bool(nodes),
        "network_plan": bool(inputs["network_plan"]),
        "mtu_probes": bool(mtu_probes),
        "cilium_values": bool(inputs["cilium_values"]),
        "policy_proof": bool(proof),
        "connectivity": bool(probes),
    }
    return {
        "nodes": dict(node_counts, total=len(nodes)),
        "sysctls": {"total": len(sysctl_entries),
                    "ok": len([entry for entry in sysctl_entries if entry["status"] == "ok"]),
                    "not_ok": len([entry for entry in sysctl_entries if entry["status"] != "ok"])},
        "mtu_paths": {"total": len(mtu_probes),
                      "ok": len([probe for probe in mtu_probes if probe["status"] == "ok"]),
                      "bad": len([probe for probe in mtu_probes if probe["status"] != "ok"])},
        "values": {"changed": len([entry for entry in diff if entry["change"] == "changed"]),
                   "added": len([entry for entry in diff if entry["change"] == "added"])},
        "policy": {"proven": proof["ok"] if proof else None,
                   "flows": len(proof["flows"]) if proof else 0,
                   "violations": len(proof["violations"]) if proof else 0},
        "pairs": dict((verdict, pair_counts[verdict]) for verdict in PAIR_VERDICTS),
        "probes": probe_counts(probes),
        "not_collected": [part for part in ("nodes", "network_plan", "mtu_probes", "cilium_values", "policy_proof",
                                            "connectivity") if not collected[part]],
    }


def _summary_section(inputs, summary, blocks):
    blocks.append(("heading", 2, "Summary"))
    rows = []
    missing = u"not collected"
    nodes = summary["nodes"]
    if nodes["total"]:
        worst = _overall(nodes, ("failed", "warning", "unknown", "ok"))
        rows.append(["Nodes (kernel)", strong(worst) if worst != "ok" else "ok",
                     "%d node(s): %s" % (nodes["total"], _counted(nodes, KERNEL_VERDICTS))])
        sysctls = summary["sysctls"]
        if sysctls["total"]:
            rows.append(["Sysctls", strong("differ") if sysctls["not_ok"] else "ok",
                         "%d of %d read back as wanted" % (sysctls["ok"], sysctls["total"])])
    else:
        rows.append(["Nodes (kernel)", missing, "option nodes not given"])
    plan = inputs["network_plan"]
    mtu = plan.get("mtu")
    rows.append(["MTU plan", "planned" if mtu else missing,
                 "route MTU %s, device MTU %s (%s / %s)" % (
                     _scalar_text(mtu.get("route_mtu")), _scalar_text(mtu.get("device_mtu")),
                     _scalar_text(mtu.get("tunnel")), _scalar_text(mtu.get("encryption")))
                 if mtu else "network_plan.mtu not given"])
    pod_cidr = plan.get("pod_cidr")
    if pod_cidr:
        fits = pod_cidr.get("fits")
        rows.append(["Pod CIDR", "fits" if fits is True else strong("does not fit") if fits is False else "planned",
                     "%s, /%s per node" % (_scalar_text(pod_cidr.get("cluster_cidr")),
                                           _scalar_text(pod_cidr.get("per_node_prefix")))])
    else:
        rows.append(["Pod CIDR", missing, "network_plan.pod_cidr not given"])
    routing = plan.get("routing")
    rows.append(["Routing", _scalar_text(routing.get("mode")) if routing else missing,
                 "recommended by the network math" if routing else "network_plan.routing not given"])
    paths = summary["mtu_paths"]
    if paths["total"]:
        rows.append(["MTU probes", strong("failed") if paths["bad"] else "ok",
                     "%d of %d paths ok" % (paths["ok"], paths["total"])])
    else:
        rows.append(["MTU probes", missing, "option mtu_probes not given"])
    values = summary["values"]
    rows.append(["Cilium values", "computed" if inputs["cilium_values"] else missing,
                 "%d changed, %d added against chart %s" % (values["changed"], values["added"], chart.CHART_VERSION)
                 if inputs["cilium_values"] else "option cilium_values not given"])
    policy = summary["policy"]
    if inputs["policy_proof"]:
        verdict = {True: "proven", False: "refused", None: "no verdict"}[policy["proven"]]
        rows.append(["Policy proof", strong(verdict) if verdict != "proven" else verdict,
                     "%d declared flow(s), %d violation(s)" % (policy["flows"], policy["violations"])])
    else:
        rows.append(["Policy proof", missing, "option policy_proof not given"])
    pairs = summary["pairs"]
    if inputs["policy_proof"] or inputs["connectivity"]:
        rows.append(["Reachability", "drawn", "%d allowed, %d restricted at L7, %d partly, %d denied pair(s)" % (
            pairs[ALLOWED], pairs[RESTRICTED], pairs[PARTLY], pairs[DENIED])])
    else:
        rows.append(["Reachability", missing, "neither policy_proof nor connectivity given"])
    probes = summary["probes"]
    if probes["probes"]:
        rows.append(["Connectivity", strong("%d mismatch(es)" % probes["mismatched"]) if probes["mismatched"]
                     else "ok" if probes["matched"] else "not run",
                     "%d of %d probes agree with the plan" % (probes["matched"], probes["probes"])])
    else:
        rows.append(["Connectivity", missing, "render mode, nothing to probe" if inputs["mode"] == "render"
                     else "option connectivity not given"])
    blocks.append(("table", ["part", "result", "detail"], rows))


def report_blocks(inputs, grid, diff, summary):
    """The whole report as document blocks, sections in the order of :data:`SECTION_TITLES`."""
    blocks = [("heading", 1, inputs["title"])]
    facts = []
    if inputs["cluster_name"]:
        facts.append(spans("cluster: ", code(inputs["cluster_name"])))
    if inputs["mode"]:
        facts.append(spans("mode: %s" % inputs["mode"]))
    if inputs["generated_at"]:
        facts.append(spans("generated at: %s" % inputs["generated_at"]))
    if facts:
        blocks.append(("list", facts))
    _summary_section(inputs, summary, blocks)
    _nodes_section(inputs, blocks)
    _network_section(inputs, blocks)
    _mtu_section(inputs, blocks)
    _values_section(inputs, blocks, diff)
    _policy_section(inputs, blocks)
    _reachability_section(inputs, blocks, grid)
    _connectivity_section(inputs, blocks)
    return blocks


def _subtitle(inputs):
    parts = []
    if inputs["cluster_name"]:
        parts.append("cluster %s" % inputs["cluster_name"])
    if inputs["mode"]:
        parts.append("%s mode" % inputs["mode"])
    if inputs["generated_at"]:
        parts.append("generated at %s" % inputs["generated_at"])
    return ", ".join(parts)


def _empty_grid_svg(title, subtitle, message):
    """The picture when there is nothing to draw: says so, still a valid SVG."""
    width = max(text_width(title, 16), text_width(subtitle), text_width(message), 420) + 2 * _MARGIN
    height = 110
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" '
             'font-family="%s" font-size="%d">' % (width, height, width, height, xml_escape(FONT_FAMILY), FONT_SIZE),
             "<title>%s</title>" % xml_escape(title),
             '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (width, height),
             _svg_text(_MARGIN, _MARGIN + 16, title, ' class="zt-title" font-size="16" font-weight="bold"')]
    if subtitle:
        parts.append(_svg_text(_MARGIN, _MARGIN + 36, subtitle, ' class="zt-subtitle" fill="#444444"'))
    parts.append(_svg_text(_MARGIN, _MARGIN + 70, message, ' fill="#444444"'))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def build_report(**options):
    """Validate the options and build the report.

    Takes the module's options (``output_dir`` must be given, the other keys as documented
    in :func:`normalise_inputs`).  Returns ``{"files": {name: text}, "summary": {...},
    "grid": Grid or None}`` with the files in the order of :data:`FILE_NAMES`.
    """
    inputs = normalise_inputs(**options)
    grid = reachability_grid(inputs["policy_proof"], inputs["connectivity"])
    diff = values_diff(inputs["cilium_values"]) if inputs["cilium_values"] else []
    summary = summarise(inputs, grid, diff)
    subtitle = _subtitle(inputs)
    picture_title = "Reachability: %s" % inputs["title"]
    if grid is None:
        svg = _empty_grid_svg(picture_title, subtitle, _NOTHING_TO_DRAW)
    elif not grid.sources:
        svg = _empty_grid_svg(picture_title, subtitle, _EMPTY_MATRIX)
    else:
        svg = render_svg(grid, picture_title, subtitle)
    blocks = report_blocks(inputs, grid, diff, summary)
    return {
        "files": {
            MARKDOWN_FILE: render_markdown(blocks),
            HTML_FILE: render_html(blocks, inputs["title"], svg),
            PICTURE_FILE: svg,
        },
        "summary": summary,
        "grid": grid,
    }


def file_changes(contents, existing):
    """Which report files must be (re)written: those whose current content differs.

    ``contents`` maps file name to the new text, ``existing`` file name to the current
    text (None when the file does not exist).  Returns a list of ``{name, before, after}``
    in the order of :data:`FILE_NAMES`.
    """
    changes = []
    for name in FILE_NAMES:
        if name in contents and existing.get(name) != contents[name]:
            changes.append({"name": name, "before": existing.get(name), "after": contents[name]})
    return changes
