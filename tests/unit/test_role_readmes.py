"""Each role README's variable table says what the role's argument spec says.

The table is the one a user reads; the argument spec is what Ansible enforces. Rows look
like ``| `name` | type | default | description |``; the default column shows the spec's
default as YAML (``required`` for required options, ``—`` for optional ones without one).
"""

import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES_DIR = os.path.join(ROOT, "roles")
ROLES = sorted(
    name for name in os.listdir(ROLES_DIR)
    if os.path.isfile(os.path.join(ROLES_DIR, name, "meta", "argument_specs.yml"))
)
ROW = re.compile(r"^\|\s*`(?P<name>[a-z0-9_]+)`\s*\|\s*(?P<type>[^|]+?)\s*\|\s*(?P<default>[^|]*?)\s*\|")


def spec_options(role):
    with open(os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")) as stream:
        specs = yaml.safe_load(stream)["argument_specs"]
    options = {}
    for entry_point in specs.values():
        options.update(entry_point.get("options", {}))
    return options


def readme_rows(role):
    with open(os.path.join(ROLES_DIR, role, "README.md")) as stream:
        lines = stream.read().splitlines()
    return {match.group("name"): match for match in map(ROW.match, lines) if match}


def expected_type(option):
    if option.get("type") == "list" and "elements" in option:
        return "list of %s" % option["elements"]
    return option.get("type", "str")


def expected_default(option):
    if option.get("required"):
        return "required"
    if "default" not in option:
        return "—"
    return yaml.safe_dump(option["default"], default_flow_style=True).strip().replace("\n...", "")


def unquote(cell):
    return cell.strip().strip("`")


def test_every_role_has_an_argument_spec_and_a_readme():
    roles = sorted(name for name in os.listdir(ROLES_DIR) if os.path.isdir(os.path.join(ROLES_DIR, name)))
    assert roles == ROLES
    for role in roles:
        assert os.path.isfile(os.path.join(ROLES_DIR, role, "README.md")), role


@pytest.mark.parametrize("role", ROLES)
def test_readme_variable_table_matches_argument_spec(role):
    options = spec_options(role)
    rows = readme_rows(role)
    assert sorted(rows) == sorted(options), "README rows and argument_specs options differ"
    for name, option in options.items():
        row = rows[name]
        assert unquote(row.group("type")) == expected_type(option), name
        assert unquote(row.group("default")) == expected_default(option), name
        assert option.get("description"), "%s has no description in argument_specs" % name
