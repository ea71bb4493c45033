"""One cluster spec, one set of defaults.

The cilium role installs what its defaults say; the kernel preflight checks the kernel for
the features those same settings need (module_utils/kernel.py SPEC_DEFAULTS), and the plan
role reports on them. If the three disagreed, a node could pass the preflight for a data
path it will not run.
"""

import os

import yaml

from ansible_collections.zerotrust.cilium.plugins.module_utils.kernel import SPEC_DEFAULTS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(*path):
    with open(os.path.join(ROOT, *path)) as stream:
        return yaml.safe_load(stream)


def test_kernel_preflight_defaults_are_the_cilium_role_defaults():
    cilium_defaults = load("roles", "cilium", "defaults", "main.yml")
    assert {key: cilium_defaults[key] for key in SPEC_DEFAULTS} == SPEC_DEFAULTS


def test_plan_role_documents_the_same_defaults():
    options = load("roles", "plan", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    for key in ("cilium_routing_mode", "cilium_tunnel_protocol", "cilium_encryption"):
        assert options[key]["default"] == SPEC_DEFAULTS[key], key
    cilium_defaults = load("roles", "cilium", "defaults", "main.yml")
    assert str(options["cilium_version"]["default"]) == str(cilium_defaults["cilium_version"])
