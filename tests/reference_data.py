"""The Cilium 1.20.0 reference files the collection ships, for tests to check against.

tools/cilium_chart/1.20.0/ and tools/cilium_policy_crds/ hold the chart's values.yaml and
values.schema.json and the CRDs unmodified (gzipped, their SHA-256 checked by the generators
in tools/), so tests compare against the upstream files, not against the data the
collection derived from them, and need nothing outside the checkout.
"""

import gzip
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART_DIR = os.path.join(ROOT, "tools", "cilium_chart", "1.20.0")
POLICY_CRD_DIR = os.path.join(ROOT, "tools", "cilium_policy_crds")


def text(path):
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        return stream.read()


def chart_values_text():
    return text(os.path.join(CHART_DIR, "values.yaml.gz"))


def chart_values_schema():
    return yaml.safe_load(text(os.path.join(CHART_DIR, "values.schema.json.gz")))


def crd_schema(path, version="v2"):
    crd = yaml.safe_load(text(path))
    return [entry for entry in crd["spec"]["versions"] if entry["name"] == version][0]["schema"]["openAPIV3Schema"]


def lb_ippool_schema():
    return crd_schema(os.path.join(CHART_DIR, "ciliumloadbalancerippools.yaml.gz"))
