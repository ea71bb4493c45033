# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate plugins/module_utils/cilium_chart_data.py from the Cilium chart's own files.

The Helm values the ``cilium`` role builds are checked against data taken from the
chart: the key tree of ``values.yaml`` plus the keys the chart documents only in
comments (``# algorithm: random`` under ``loadBalancer``), the chart's
``values.schema.json``, and the ``openAPIV3Schema`` of the CiliumLoadBalancerIPPool CRD.
Modules cannot read data files next to them (Ansible ships only Python module_utils to
where a module runs), so the data becomes a Python module.

The sources live gzip-compressed and unmodified in ``tools/cilium_chart/<version>/``;
their SHA-256 sums below are the ones published with the reference copies (chart
``cilium-1.20.0.tgz`` from github.com/cilium/charts, CRD from cilium/cilium
``pkg/k8s/apis/cilium.io/client/crds/v2/``).  Run::

    python tools/gen_cilium_chart_data.py            # rewrite the module
    python tools/gen_cilium_chart_data.py --check    # exit 1 when it is out of date

Every commented ``# key: value`` line of values.yaml must be classified below, as a
documented key (``DOCUMENTED_COMMENTED_KEYS``) or as an example or prose
(``NOT_KEYS``), so a new chart version cannot add commented keys unnoticed.
"""

from __future__ import absolute_import, division, print_function

import io
import json
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generated_module  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART_VERSION = "1.20.0"
SOURCE_DIR = os.path.join(ROOT, "tools", "cilium_chart", CHART_VERSION)
OUTPUT = os.path.join(ROOT, "plugins", "module_utils", "cilium_chart_data.py")

SOURCES = {
    "values.yaml": "6d5723809e788b33ab4adc9f53e4522df1a6f6f5254b4444b585ea8cb2d71c38",
    "values.schema.json": "736bf1f53d6e86119aac2e872d92607c7414621e32cc9fdafb548c99f7255f56",
    "ciliumloadbalancerippools.yaml": "31dd3d26d987e46bc04d66ec2f9bdcf2aa2b13b7b368e515ca324961b55d65b1",
}

# Keys values.yaml documents only as a comment: "path": "leaf" or "map" (free-form
# mapping).  The key is the place the chart templates read it from, which is not always
# where the comment sits (maglev's keys are commented at the top level after
# ``maglev: {}``, ipMasqAgent's ``config`` after ``ipMasqAgent:``).
DOCUMENTED_COMMENTED_KEYS = {
    "azure.usePrimaryAddress": "leaf",
    "azure.resourceGroup": "leaf",
    "azure.subscriptionID": "leaf",
    "azure.tenantID": "leaf",
    "azure.clientID": "leaf",
    "azure.clientSecret": "leaf",
    "azure.userAssignedIdentityID": "leaf",
    "l2announcements.leaseDuration": "leaf",
    "l2announcements.leaseRenewDeadline": "leaf",
    "l2announcements.leaseRetryPeriod": "leaf",
    "cni.readCniConf": "leaf",
    "disableIptablesFeederRules": "leaf",
    "egressMasqueradeInterfaces": "leaf",
    "enableIdentityMark": "leaf",
    "fragmentTracking": "leaf",
    "socketLB.hostNamespaceOnly": "leaf",
    "socketLB.terminatePodConnections": "leaf",
    "socketLB.tracing": "leaf",
    "hubble.eventQueueSize": "leaf",
    "hubble.eventBufferCapacity": "leaf",
    "hubble.lostEventSendInterval": "leaf",
    "hubble.peerService.servicePort": "leaf",
    "hubble.relay.servicePort": "leaf",
    "hubble.relay.prometheus.serviceMonitor.namespace": "leaf",
    "ipMasqAgent.config": "map",
    "iptablesLockTimeout": "leaf",
    "labels": "leaf",
    "logOptions": "map",
    "maglev.tableSize": "leaf",
    "maglev.hashSeed": "leaf",
    "egressGateway.maxPolicyEntries": "leaf",
    "loadBalancer.algorithm": "leaf",
    "loadBalancer.mode": "leaf",
    "loadBalancer.dsrDispatch": "leaf",
    "loadBalancer.reflectorWaitTime": "leaf",
    "nodePort.range": "leaf",
    "policyAuditMode": "leaf",
    "prometheus.serviceMonitor.namespace": "leaf",
    "envoy.prometheus.serviceMonitor.namespace": "leaf",
    "nodeLabels": "leaf",
    "tls.caBundle.content": "leaf",
    "disableEnvoyVersionCheck": "leaf",
    "clustermesh.apiserver.metrics.serviceMonitor.namespace": "leaf",
    "dnsPolicyUnloadOnShutdown": "leaf",
    "dnsProxy.enableTransparentMode": "leaf",
}

# Where a commented key sits in values.yaml (by indentation) -> where the chart reads it.
RELOCATED = {
    "tableSize": "maglev.tableSize",
    "hashSeed": "maglev.hashSeed",
    "config": "ipMasqAgent.config",
}

# Commented ``key: value`` lines that are not chart keys, and why.
NOT_KEYS = {
    "securityContext.runAsUser": "example inside the agent's securityContext (a pass-through map)",
    "emptyDir": "example content of tmpVolume",
    "ciliumEndpointSlice.nodes": "prose describing the items of ciliumEndpointSlice.rateLimits",
    "ciliumEndpointSlice.limit": "prose describing the items of ciliumEndpointSlice.rateLimits",
    "ciliumEndpointSlice.burst": "prose describing the items of ciliumEndpointSlice.rateLimits",
    "hubble.ui.backend.securityContext.readOnlyRootFilesystem": "example inside a pass-through securityContext",
    "hubble.ui.frontend.securityContext.readOnlyRootFilesystem": "example inside a pass-through securityContext",
    "hubble.ui.emptyDir": "example content of hubble.ui.tmpVolume",
    "envoy.log.date": "example field of envoy.log.format_json",
    "envoy.log.thread_id": "example field of envoy.log.format_json",
    "envoy.log.source_line": "example field of envoy.log.format_json",
    "envoy.log.level": "example field of envoy.log.format_json",
    "envoy.log.logger": "example field of envoy.log.format_json",
    "envoy.log.message": "example field of envoy.log.format_json",
    "envoy.securityContext.runAsUser": "example inside a pass-through securityContext",
    "operator.runAsUser": "example for operator.securityContext",
}

# Mappings the chart hands to Kubernetes as they are (toYaml): any key is accepted below
# them.  Empty mappings of values.yaml ({}) are free-form as well unless a documented
# commented key says otherwise (maglev).
PASS_THROUGH_NAMES = frozenset([
    "affinity", "annotations", "extraConfig", "labels", "lifecycle", "matchLabels", "nodeSelector",
    "podAnnotations", "podLabels", "podSecurityContext", "resources", "securityContext", "updateStrategy",
])

COMMENT_KEY = re.compile(r"^(?P<indent>\s*)#(?P<gap> ?)(?P<key>[a-z][A-Za-z0-9_]*):(?:\s+(?P<value>.*))?$")
REAL_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s#\-][^:]*?):(?:\s|$)")
PROSE_WORDS = frozenset(["ref", "see", "example", "note", "deprecated", "warning", "type", "enum",
                         "minimum", "maximum", "oneof", "default"])
LEAF, OPEN = 0, 1
WIDTH = 150
STRING_CHUNK = 60
INDENT = "    "


def read_source(name, source_dir):
    """Bytes of a source file (plain or .gz), checked against its published SHA-256."""
    return generated_module.read_checked(name, SOURCES[name], source_dir, "chart file")


def commented_keys(text, values):
    """``{path: line_number}`` of every commented ``key: value`` that is not a real key."""
    found = {}
    stack = []
    in_schema = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("# @schema"):
            in_schema = not in_schema
            continue
        if in_schema or not stripped:
            continue
        real = REAL_KEY.match(line)
        if real and not stripped.startswith("#"):
            indent = len(real.group("indent"))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, real.group("key").strip().strip('"')))
            continue
        comment = COMMENT_KEY.match(line)
        if not comment or comment.group("key").lower() in PROSE_WORDS:
            continue
        value = (comment.group("value") or "").strip()
        if value.startswith("http") or (" " in value and value[:1] not in "\"'[{"):
            continue
        indent = len(comment.group("indent"))
        parents = [key for level, key in stack if level < indent]
        node = values
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        key = comment.group("key")
        if isinstance(node, dict) and key in node:
            continue
        found[".".join(parents + [key])] = number
    return found


def classify(found):
    """Map commented keys to documented paths; fail on any key not classified."""
    documented = {}
    unclassified = []
    for path, number in sorted(found.items(), key=lambda item: item[1]):
        target = RELOCATED.get(path, path)
        if target in DOCUMENTED_COMMENTED_KEYS:
            documented[target] = DOCUMENTED_COMMENTED_KEYS[target]
        elif path not in NOT_KEYS:
            unclassified.append("line %d: %s" % (number, path))
    missing = sorted(set(DOCUMENTED_COMMENTED_KEYS) - set(documented))
    if unclassified or missing:
        raise SystemExit("values.yaml commented keys need a decision: unclassified %s; documented but not found %s"
                         % (unclassified, missing))
    return documented


def schema_at(schema, path):
    node = schema
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get("properties", {}).get(key)
    return node


def is_object_without_properties(schema_node):
    if not isinstance(schema_node, dict) or "properties" in schema_node:
        return False
    types = schema_node.get("type")
    types = types if isinstance(types, list) else [types]
    return "object" in types


def key_tree(values, documented, schema):
    """Nested dict: key -> subtree (mapping), LEAF (0) or OPEN (1, any key below)."""
    documented_parents = set()
    for path in documented:
        parts = path.split(".")
        for end in range(1, len(parts)):
            documented_parents.add(".".join(parts[:end]))

    def build(node, path):
        tree = {}
        for key, value in node.items():
            child = path + [key]
            dotted = ".".join(child)
            if isinstance(value, dict):
                if key in PASS_THROUGH_NAMES or (not value and dotted not in documented_parents):
                    tree[key] = OPEN
                else:
                    tree[key] = build(value, child)
            elif value is None and is_object_without_properties(schema_at(schema, child)):
                tree[key] = OPEN
            else:
                tree[key] = LEAF
        return tree

    tree = build(values, [])
    for path, kind in sorted(documented.items()):
        parts = path.split(".")
        node = tree
        for key in parts[:-1]:
            if node.get(key) in (LEAF, OPEN, None):
                node[key] = {}
            node = node[key]
        node[parts[-1]] = OPEN if kind == "map" else LEAF
    return tree


def lb_pool_crd(crd):
    versions = {}
    for version in crd["spec"]["versions"]:
        entry = {"served": version.get("served", False), "storage": version.get("storage", False),
                 "deprecated": version.get("deprecated", False)}
        if version.get("storage"):
            entry["schema"] = version["schema"]["openAPIV3Schema"]
        versions[version["name"]] = entry
    return {
        "group": crd["spec"]["group"],
        "kind": crd["spec"]["names"]["kind"],
        "plural": crd["spec"]["names"]["plural"],
        "scope": crd["spec"]["scope"],
        "versions": versions,
    }


HEADER = '''# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Data below is derived from the Cilium Helm chart and CRDs (Apache-2.0, cilium/cilium).
"""Cilium chart {version} data for the Helm values checks of ``cilium_values.py``.

Generated by ``tools/gen_cilium_chart_data.py`` from the unmodified chart files in
``tools/cilium_chart/{version}/``; do not edit by hand, regenerate.  Sources (SHA-256):

{sources}

* ``KEY_TREE``: every key of the chart's values.yaml plus the keys it documents only in
  comments; a subtree is a mapping, ``0`` a leaf, ``1`` a mapping that takes any key
  (Kubernetes objects the chart passes through, free-form maps).
* ``DOCUMENTED_COMMENTED_KEYS``: the commented keys and whether they are maps.
* ``DEFAULTS``: the chart's values.yaml as data.
* ``VALUES_SCHEMA``: the chart's values.schema.json (draft-07, types only).
* ``LB_IP_POOL_CRD``: the CiliumLoadBalancerIPPool CRD, with the storage version's schema.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CHART_NAME = "cilium"
CHART_VERSION = {version!r}
'''


def _inline(value):
    """One-line Python literal with sorted keys, or None for a string too long for a line."""
    if isinstance(value, dict):
        parts = []
        for key in sorted(value):
            text = _inline(value[key])
            if text is None:
                return None
            parts.append("%r: %s" % (key, text))
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        parts = [_inline(item) for item in value]
        if any(part is None for part in parts):
            return None
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, str) and len(value) > STRING_CHUNK:
        return None
    return repr(value)


def literal(value, level=0, column=0):
    """Python literal of ``value`` in pep8's hanging-indent style.

    ``column`` is where the value starts on its line.  It stays on that line when it fits
    (with the trailing comma); otherwise a mapping or list puts one entry per line, four
    spaces deeper than ``level``, and a long string becomes adjacent literals aligned in
    parentheses.
    """
    text = _inline(value)
    if text is not None and column + len(text) + 1 <= WIDTH:
        return text
    indent = INDENT * (level + 1)
    if isinstance(value, dict):
        lines = ["{"]
        for key in sorted(value):
            prefix = "%s%r: " % (indent, key)
            lines.append("%s%s," % (prefix, literal(value[key], level + 1, len(prefix))))
        lines.append(INDENT * level + "}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = ["["]
        for item in value:
            lines.append("%s%s," % (indent, literal(item, level + 1, len(indent))))
        lines.append(INDENT * level + "]")
        return "\n".join(lines)
    chunks = [value[start:start + STRING_CHUNK] for start in range(0, len(value), STRING_CHUNK)]
    return "(" + ("\n" + " " * (column + 1)).join(repr(chunk) for chunk in chunks) + ")"


def render(source_dir=SOURCE_DIR):
    values_text = read_source("values.yaml", source_dir).decode("utf-8")
    values = yaml.safe_load(values_text)
    schema = json.loads(read_source("values.schema.json", source_dir).decode("utf-8"))
    crd = yaml.safe_load(read_source("ciliumloadbalancerippools.yaml", source_dir).decode("utf-8"))
    documented = classify(commented_keys(values_text, values))
    tree = key_tree(values, documented, schema)

    out = io.StringIO()
    sources = "\n".join("* ``%s``: %s" % (name, digest) for name, digest in sorted(SOURCES.items()))
    out.write(HEADER.format(version=CHART_VERSION, sources=sources))
    for name, value in (
        ("SOURCE_SHA256", dict(SOURCES)),
        ("DOCUMENTED_COMMENTED_KEYS", documented),
        ("KEY_TREE", tree),
        ("DEFAULTS", values),
        ("VALUES_SCHEMA", schema),
        ("LB_IP_POOL_CRD", lb_pool_crd(crd)),
    ):
        out.write("\n%s = %s\n" % (name, literal(value)))
    return out.getvalue()


def main(argv=None):
    return generated_module.main(argv, __doc__.splitlines()[0], render, SOURCE_DIR, OUTPUT,
                                 "chart files", "tools/gen_cilium_chart_data.py")


if __name__ == "__main__":
    sys.exit(main())
