"""The AWX / Automation Controller definitions in extensions/awx/ fit the collection they run.

A survey answer reaches a playbook as an extra var, the strongest variable there is, and
only then meets the roles' argument specs. So every survey question is checked against the
playbook its job template runs, read from the YAML (roles, entry points, inline
validate_argument_spec tasks, play keywords, imported playbooks):

- the survey is valid AWX survey_spec (the rules AWX's API applies when it is saved);
- its variable is an option of a role entry point the playbook uses, an inline
  validate_argument_spec of the playbook, or a play keyword variable (serial, ...) of it;
- the question type fits the option type (text: str/path/raw, integer: int/raw,
  multiplechoice: str with choices among the option's, multiselect: list of str with
  choices among the option's). AWX has no boolean question: bool options are asked as
  multiplechoice "false"/"true", which arrive as strings, so every place the collection
  reads such a variable must pass it through ``| bool`` or hand it whole to a module option
  of type bool (checked on the Jinja of every role and playbook);
- a question with a default has the role's default (defaults/main.yml, else the spec's);
  one without a default is required, so AWX never sends an empty answer in its place;
- it does not override what the playbook sets itself, nor the cluster spec of the inventory;
- every required option of the used entry points is answered by the survey, set in the
  example inventory, or set by the playbook.

The verify role comes later: until roles/verify/meta/argument_specs.yml exists (and only
then), the verify template's questions are checked against the collection-wide definition
of their variable instead; once the role is there and playbooks/verify.yml uses it, the
normal rule applies by itself.

The credential types are rendered the way AWX renders injectors (sandboxed Jinja, empty
inputs left out, missing booleans false) and what they produce is fed to kubernetes.core's
own auth code and to the kubernetes client's kubeconfig loader.
"""

import ast
import importlib.util
import json
import os
import re
import sys
import types
import warnings

import jinja2
import jinja2.nodes
import jinja2.sandbox
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX_DIR = os.path.join(ROOT, "extensions", "awx")
PLAYBOOKS_DIR = os.path.join(ROOT, "playbooks")
ROLES_DIR = os.path.join(ROOT, "roles")
EXAMPLE_INVENTORY = os.path.join(ROOT, "inventories", "example")
COLLECTION_PREFIX = "zerotrust.cilium."

# The playbooks users run from AWX, one job template each.
EXPECTED_PLAYBOOKS = ("site", "preflight", "nodes", "cilium", "kube_proxy_removal", "policies", "verify",
                      "upgrade", "rollback")
# The one cluster-spec variable a survey carries: render or apply is decided per launch.
RUN_TIME_CLUSTER_SPEC = frozenset(["zerotrust_mode"])
BOOL_CHOICES = frozenset(["false", "true"])

SURVEY_TYPES = {
    "text": (str,), "textarea": (str,), "password": (str,), "multiplechoice": (str,), "multiselect": (str,),
    "integer": (int,), "float": (float, int),
}
VARIABLE_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
ROLE_KEYWORDS = frozenset(["role", "name", "vars", "tags", "when", "become", "become_user", "delegate_to",
                           "environment", "ignore_errors", "any_errors_fatal", "check_mode", "diff",
                           "collections", "module_defaults", "no_log"])
PLAY_NON_KEYWORDS = frozenset(["name", "hosts", "tasks", "pre_tasks", "post_tasks", "handlers", "roles", "vars",
                               "vars_files", "vars_prompt", "collections", "module_defaults", "tags"])
CONDITION_KEYS = frozenset(["when", "that", "failed_when", "changed_when", "until"])
ROLE_INCLUDES = frozenset(["import_role", "include_role", "ansible.builtin.import_role",
                           "ansible.builtin.include_role"])
TASK_INCLUDES = frozenset(["import_tasks", "include_tasks", "ansible.builtin.import_tasks",
                           "ansible.builtin.include_tasks"])
PLAYBOOK_IMPORTS = frozenset(["import_playbook", "ansible.builtin.import_playbook"])
SPEC_TASKS = frozenset(["validate_argument_spec", "ansible.builtin.validate_argument_spec"])
PAUSES = frozenset(["pause", "ansible.builtin.pause"])
BLOCK_KEYS = ("block", "rescue", "always")
NO_DEFAULT = object()


def load_yaml(path):
    with open(path) as stream:
        return yaml.safe_load(stream)


def load_json(path):
    with open(path) as stream:
        return json.load(stream)


def job_template_definitions():
    return load_yaml(os.path.join(AWX_DIR, "job_templates.yml"))


def templates_by_playbook():
    templates = job_template_definitions()["zerotrust_awx_job_templates"]
    return {os.path.splitext(os.path.basename(template["playbook"]))[0]: template for template in templates}


def survey_of(playbook_name):
    return load_json(os.path.join(AWX_DIR, "surveys", templates_by_playbook()[playbook_name]["survey"]))


# --- AWX survey_spec rules ---------------------------------------------------------------------

def choice_list(question):
    choices = question.get("choices", [])
    if isinstance(choices, str):
        choices = [choice for choice in choices.splitlines() if choice.strip()]
    return choices


def has_default(question):
    return question.get("default") not in (None, "")


def awx_survey_problems(survey):
    """What AWX's API refuses in a survey_spec (and the few things it lets through that break a launch)."""
    problems = []
    for field, expected in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), expected):
            problems.append("survey field %r must be a %s" % (field, expected.__name__))
    if problems:
        return problems
    if not survey["spec"]:
        problems.append("survey has no questions")
    seen = set()
    for position, question in enumerate(survey["spec"]):
        label = "question %d (%s)" % (position, question.get("variable", "?"))
        for field in ("question_name", "question_description", "variable", "type"):
            if not isinstance(question.get(field), str) or not question.get(field):
                problems.append("%s: %s must be a non-empty string" % (label, field))
        if not isinstance(question.get("required"), bool):
            problems.append("%s: required must be true or false" % label)
        variable = question.get("variable", "")
        if isinstance(variable, str) and not VARIABLE_NAME.match(variable):
            problems.append("%s: %r is not a variable name" % (label, variable))
        if variable in seen:
            problems.append("%s: variable %r is asked twice" % (label, variable))
        seen.add(variable)
        question_type = question.get("type")
        if question_type not in SURVEY_TYPES:
            problems.append("%s: type %r is not one of %s" % (label, question_type, ", ".join(sorted(SURVEY_TYPES))))
            continue
        default = question.get("default")
        if has_default(question) and (isinstance(default, bool)
                                      or not isinstance(default, SURVEY_TYPES[question_type])):
            problems.append("%s: default %r does not fit type %s" % (label, default, question_type))
            continue
        for bound in ("min", "max"):
            if bound in question and question[bound] is not None and (
                    isinstance(question[bound], bool) or not isinstance(question[bound], int)):
                problems.append("%s: %s must be an integer" % (label, bound))
        if question_type in ("multiplechoice", "multiselect"):
            choices = choice_list(question)
            if not choices or len(set(choices)) != len(choices) or not all(isinstance(choice, str) for choice in choices):
                problems.append("%s: choices must be distinct strings" % label)
            defaults = default.splitlines() if isinstance(default, str) else []
            if question_type == "multiplechoice" and len(defaults) > 1:
                problems.append("%s: a multiplechoice question has one default" % label)
            if any(item not in choices for item in defaults):
                problems.append("%s: default %r is not among the choices %s" % (label, default, choices))
        if has_default(question) and question_type in ("text", "textarea", "integer", "float"):
            measure = len(default) if question_type in ("text", "textarea") else default
            lowest, highest = question.get("min"), question.get("max")
            if isinstance(lowest, int) and measure < lowest:
                problems.append("%s: default %r is below min %s" % (label, default, lowest))
            if isinstance(highest, int) and measure > highest:
                problems.append("%s: default %r is above max %s" % (label, default, highest))
        if not has_default(question) and not question.get("required"):
            problems.append("%s: a question without a default must be required (AWX would send %r)"
                            % (label, default if default is not None else ""))
    return problems


# --- what a playbook uses -----------------------------------------------------------------------

class PlaybookUsage:
    """Role entry points, inline argument specs, play keyword variables and variables a playbook sets."""

    def __init__(self):
        self.entry_points = set()
        self.inline_specs = []
        self.keyword_variables = {}
        self.set_variables = set()
        self.files = []
        self.missing = []


def role_of(reference):
    """``zerotrust.cilium.plan`` -> ``plan``; roles of other collections are not ours to check."""
    if not isinstance(reference, str):
        return None
    if reference.startswith(COLLECTION_PREFIX):
        return reference[len(COLLECTION_PREFIX):]
    return reference if "." not in reference else None


def playbook_path(reference, base_dir):
    if reference.startswith(COLLECTION_PREFIX):
        return os.path.join(PLAYBOOKS_DIR, reference[len(COLLECTION_PREFIX):] + ".yml")
    if "." in reference.split("/")[0] and not reference.endswith((".yml", ".yaml")):
        return None
    return os.path.join(base_dir, reference)


def template_names(text):
    """Every variable a Jinja string refers to, with the default() constant it is given, if any."""
    found = {}
    try:
        tree = parse_jinja(text)
    except jinja2.TemplateSyntaxError:
        return found
    for node in tree.find_all(jinja2.nodes.Name):
        found.setdefault(node.name, NO_DEFAULT)
    for node in tree.find_all(jinja2.nodes.Filter):
        if node.name == "default" and isinstance(node.node, jinja2.nodes.Name) and node.args \
                and isinstance(node.args[0], jinja2.nodes.Const):
            found[node.node.name] = node.args[0].value
    return found


def collect_play_keywords(play, usage):
    for key, value in play.items():
        if key in PLAY_NON_KEYWORDS:
            continue
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and "{{" in text:
                for name, default in template_names(text).items():
                    usage.keyword_variables[name] = (key, default)


def walk_tasks(tasks, base_dir, usage):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for block_key in BLOCK_KEYS:
            walk_tasks(task.get(block_key), base_dir, usage)
        usage.set_variables.update((task.get("vars") or {}).keys())
        for module in task:
            arguments = task[module]
            if module in ROLE_INCLUDES and isinstance(arguments, dict):
                role = role_of(arguments.get("name"))
                if role:
                    entry_point = os.path.splitext(arguments.get("tasks_from", "main"))[0]
                    usage.entry_points.add((role, entry_point))
            elif module in SPEC_TASKS and isinstance(arguments, dict):
                usage.inline_specs.append(arguments.get("argument_spec") or {})
            elif module in TASK_INCLUDES:
                included = arguments if isinstance(arguments, str) else (arguments or {}).get("file")
                if included and "{{" not in included:
                    path = os.path.join(base_dir, included)
                    if os.path.isfile(path):
                        walk_tasks(load_yaml(path), os.path.dirname(path), usage)


def read_playbook(path, usage=None):
    """What ``path`` (and every playbook it imports) uses; a missing file is recorded, not skipped."""
    usage = usage or PlaybookUsage()
    if path in usage.files:
        return usage
    usage.files.append(path)
    if not os.path.isfile(path):
        usage.missing.append(os.path.relpath(path, ROOT))
        return usage
    base_dir = os.path.dirname(path)
    for play in load_yaml(path) or []:
        imported = next((play[key] for key in PLAYBOOK_IMPORTS if key in play), None)
        if imported:
            target = playbook_path(imported, base_dir)
            if target:
                read_playbook(target, usage)
            continue
        collect_play_keywords(play, usage)
        usage.set_variables.update((play.get("vars") or {}).keys())
        for entry in play.get("roles") or []:
            entry = {"role": entry} if isinstance(entry, str) else entry
            role = role_of(entry.get("role", entry.get("name")))
            if role:
                usage.entry_points.add((role, "main"))
            usage.set_variables.update((entry.get("vars") or {}).keys())
            usage.set_variables.update(key for key in entry if key not in ROLE_KEYWORDS)
        for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            walk_tasks(play.get(section), base_dir, usage)
    return usage


def role_specs(role):
    path = os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")
    return (load_yaml(path) or {}).get("argument_specs", {}) if os.path.isfile(path) else {}


def role_defaults(role):
    path = os.path.join(ROLES_DIR, role, "defaults", "main.yml")
    return (load_yaml(path) or {}) if os.path.isfile(path) else {}


def option_default(role, name, option):
    defaults = role_defaults(role)
    if name in defaults:
        return defaults[name]
    return option.get("default")


def sources_of(variable, usage):
    """(where, option, default) for every definition of ``variable`` the playbook brings along."""
    sources = []
    for role, entry_point in sorted(usage.entry_points):
        option = role_specs(role).get(entry_point, {}).get("options", {}).get(variable)
        if option is not None:
            sources.append(("role %s (%s)" % (role, entry_point), option, option_default(role, variable, option)))
    for spec in usage.inline_specs:
        if variable in spec:
            sources.append(("validate_argument_spec in the playbook", spec[variable], spec[variable].get("default")))
    if variable in usage.keyword_variables:
        keyword, default = usage.keyword_variables[variable]
        sources.append(("play keyword %s" % keyword, {"type": "raw"}, None if default is NO_DEFAULT else default))
    return sources


def collection_wide_sources(variable):
    sources = []
    for role in sorted(os.listdir(ROLES_DIR)):
        for entry_point, spec in sorted(role_specs(role).items()):
            option = (spec.get("options") or {}).get(variable)
            if option is not None:
                sources.append(("role %s (%s)" % (role, entry_point), option, option_default(role, variable, option)))
    return sources


def question_value(question):
    """The survey default as the playbook sees it (bool switches as booleans)."""
    default = question["default"]
    if question["type"] == "multiplechoice" and set(choice_list(question)) == BOOL_CHOICES:
        return default == "true"
    if question["type"] == "multiselect":
        return default.splitlines()
    return default


def type_problem(question, option):
    question_type = question["type"]
    option_type = option.get("type", "str")
    choices = choice_list(question)
    allowed = [str(choice) for choice in option.get("choices") or []]
    if option_type == "bool":
        if question_type != "multiplechoice" or set(choices) != BOOL_CHOICES:
            return "bool options are asked as multiplechoice with the choices false and true"
        return None
    if question_type in ("text", "textarea", "password"):
        fits = option_type in ("str", "path", "raw")
    elif question_type == "integer":
        fits = option_type in ("int", "raw")
    elif question_type == "float":
        fits = option_type in ("float", "raw")
    elif question_type == "multiplechoice":
        fits = option_type in ("str", "raw")
        if fits and allowed and not set(choices) <= set(allowed):
            return "choices %s are not among the option's choices %s" % (choices, allowed)
    elif question_type == "multiselect":
        fits = option_type == "list" and option.get("elements", "str") in ("str", "raw")
        if fits and allowed and not set(choices) <= set(allowed):
            return "choices %s are not among the option's choices %s" % (choices, allowed)
    else:
        fits = False
    if not fits:
        return "a %s question does not fit an option of type %s" % (question_type, option_type)
    return None


def verify_role_pending(playbook_name):
    return playbook_name == "verify" and not os.path.isfile(
        os.path.join(ROLES_DIR, "verify", "meta", "argument_specs.yml"))


def question_problems(playbook_name, question, usage):
    """Problems of one survey question against the playbook it feeds."""
    variable = question["variable"]
    sources = sources_of(variable, usage)
    if not sources and verify_role_pending(playbook_name):
        sources = collection_wide_sources(variable)
    if not sources:
        roles = ", ".join("%s (%s)" % pair for pair in sorted(usage.entry_points)) or "none"
        return ["%s: %s is no option of the roles playbooks/%s.yml uses (%s), no validate_argument_spec "
                "of it and no play keyword variable of it" % (playbook_name, variable, playbook_name, roles)]
    problems = []
    for where, option, default in sources:
        mismatch = type_problem(question, option)
        if mismatch:
            problems.append("%s: %s against %s: %s" % (playbook_name, variable, where, mismatch))
            continue
        if has_default(question):
            if isinstance(default, str) and "{{" in default:
                problems.append("%s: %s has a computed default in %s (%r); a survey default would replace it"
                                % (playbook_name, variable, where, default))
            elif question_value(question) != default:
                problems.append("%s: %s survey default %r is not the default %r of %s"
                                % (playbook_name, variable, question["default"], default, where))
    return problems


def example_inventory_variables():
    variables = {}
    for directory, dirnames, filenames in os.walk(os.path.join(EXAMPLE_INVENTORY, "group_vars")):
        dirnames.sort()
        for filename in sorted(filenames):
            if filename.endswith((".yml", ".yaml")):
                variables.update(load_yaml(os.path.join(directory, filename)) or {})

    def group_vars(group):
        variables.update(group.get("vars") or {})
        for child in (group.get("children") or {}).values():
            group_vars(child or {})

    for group in (load_yaml(os.path.join(EXAMPLE_INVENTORY, "hosts.yml")) or {}).values():
        group_vars(group or {})
    return variables


def required_options(usage):
    required = []
    for role, entry_point in sorted(usage.entry_points):
        for name, option in (role_specs(role).get(entry_point, {}).get("options") or {}).items():
            if option.get("required"):
                required.append((name, "role %s (%s)" % (role, entry_point)))
    for spec in usage.inline_specs:
        required.extend((name, "validate_argument_spec in the playbook")
                        for name, option in spec.items() if option.get("required"))
    return required


def unanswered_required(playbook_name, survey, usage, inventory_variables):
    asked = {question["variable"] for question in survey["spec"]}
    return ["%s: %s is required by %s and neither asked, nor set in inventories/example, nor set by the playbook"
            % (playbook_name, name, where) for name, where in required_options(usage)
            if name not in asked and name not in inventory_variables and name not in usage.set_variables]


# --- the tests on the real definitions ----------------------------------------------------------

def test_there_is_one_job_template_per_playbook():
    templates = job_template_definitions()["zerotrust_awx_job_templates"]
    assert sorted(templates_by_playbook()) == sorted(EXPECTED_PLAYBOOKS)
    assert len(templates) == len(EXPECTED_PLAYBOOKS)
    assert len({template["name"] for template in templates}) == len(templates)


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_job_template_runs_an_existing_playbook(playbook_name):
    template = templates_by_playbook()[playbook_name]
    assert template["playbook"] == "playbooks/%s.yml" % playbook_name
    usage = read_playbook(os.path.join(ROOT, template["playbook"]))
    assert usage.missing == []


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_survey_is_an_awx_survey_spec(playbook_name):
    assert awx_survey_problems(survey_of(playbook_name)) == []


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_survey_questions_are_options_of_what_the_playbook_runs(playbook_name):
    usage = read_playbook(os.path.join(PLAYBOOKS_DIR, playbook_name + ".yml"))
    problems = []
    for question in survey_of(playbook_name)["spec"]:
        problems.extend(question_problems(playbook_name, question, usage))
    assert problems == []


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_required_role_options_are_answered(playbook_name):
    usage = read_playbook(os.path.join(PLAYBOOKS_DIR, playbook_name + ".yml"))
    assert usage.entry_points or usage.inline_specs or playbook_name == "verify"
    assert unanswered_required(playbook_name, survey_of(playbook_name), usage, example_inventory_variables()) == []


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_survey_does_not_override_what_the_playbook_sets(playbook_name):
    usage = read_playbook(os.path.join(PLAYBOOKS_DIR, playbook_name + ".yml"))
    asked = {question["variable"] for question in survey_of(playbook_name)["spec"]}
    assert sorted(asked & usage.set_variables) == []


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_survey_leaves_the_cluster_spec_to_the_inventory(playbook_name):
    cluster_spec = set(load_yaml(os.path.join(EXAMPLE_INVENTORY, "group_vars", "all", "cluster.yml")))
    assert "zerotrust_pod_cidr" in cluster_spec
    asked = {question["variable"] for question in survey_of(playbook_name)["spec"]}
    assert sorted(asked & (cluster_spec - RUN_TIME_CLUSTER_SPEC)) == []


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_survey_defaults_agree_with_the_example_inventory(playbook_name):
    inventory_variables = example_inventory_variables()
    disagreeing = [(question["variable"], question["default"], inventory_variables[question["variable"]])
                   for question in survey_of(playbook_name)["spec"]
                   if has_default(question) and question["variable"] in inventory_variables
                   and question_value(question) != inventory_variables[question["variable"]]]
    assert disagreeing == []


def test_docs_list_every_survey_question():
    with open(os.path.join(ROOT, "docs", "awx.md")) as stream:
        rows = re.findall(r"^\| ([a-z_]+) \| `([a-z_]+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", stream.read(), re.MULTILINE)
    documented = [(template, variable, default.strip(), question.strip()) for template, variable, default, question in rows]
    expected = []
    for playbook_name in EXPECTED_PLAYBOOKS:
        for question in survey_of(playbook_name)["spec"]:
            default = "`%s`" % question["default"] if has_default(question) else "none, required"
            expected.append((playbook_name, question["variable"], default, question["question_name"]))
    assert documented == expected


def test_verify_survey_stays_minimal_until_the_verify_role_exists():
    asked = [question["variable"] for question in survey_of("verify")["spec"]]
    if verify_role_pending("verify"):
        assert asked == ["zerotrust_mode"]
    else:
        usage = read_playbook(os.path.join(PLAYBOOKS_DIR, "verify.yml"))
        assert "verify" in {role for role, entry_point in usage.entry_points}


def test_no_playbook_or_role_waits_for_an_answer():
    """AWX runs without a terminal: vars_prompt and pause without a duration would hang or fail the job."""
    prompting = []
    for directory in (PLAYBOOKS_DIR, ROLES_DIR):
        for path in yaml_files(directory):
            for item in walk_yaml(load_yaml(path)):
                if not isinstance(item, dict):
                    continue
                if "vars_prompt" in item:
                    prompting.append("%s: vars_prompt" % os.path.relpath(path, ROOT))
                for module in PAUSES & set(item):
                    arguments = item[module] or {}
                    if not isinstance(arguments, dict) or "prompt" in arguments or not (
                            {"seconds", "minutes"} & set(arguments)):
                        prompting.append("%s: %s %r waits for input" % (os.path.relpath(path, ROOT), module, arguments))
    assert prompting == []


def yaml_files(directory):
    for parent, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for filename in sorted(filenames):
            if filename.endswith((".yml", ".yaml")):
                yield os.path.join(parent, filename)


def walk_yaml(data):
    yield data
    if isinstance(data, dict):
        for value in data.values():
            yield from walk_yaml(value)
    elif isinstance(data, list):
        for value in data:
            yield from walk_yaml(value)


# --- bool switches arrive as the strings "true" / "false" ---------------------------------------

def jinja_environment():
    return jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])


def parse_jinja(text):
    """Parse without the lexer's warnings about regex escapes inside Jinja string constants."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return jinja_environment().parse(text)


def expression_parents(tree, variables):
    """(variable, chain of parent nodes from the nearest up) for every reference to ``variables``."""
    found = []

    def visit(node, parents):
        if isinstance(node, jinja2.nodes.Name) and node.name in variables and node.ctx == "load":
            found.append((node.name, parents))
        for child in node.iter_child_nodes():
            visit(child, [node] + parents)

    visit(tree, [])
    return found


def module_option_type(module, option):
    """Type of ``option`` of one of this collection's modules, from its DOCUMENTATION."""
    if not module.startswith(COLLECTION_PREFIX):
        return None
    path = os.path.join(ROOT, "plugins", "modules", module[len(COLLECTION_PREFIX):] + ".py")
    if not os.path.isfile(path):
        return None
    with open(path) as stream:
        tree = ast.parse(stream.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DOCUMENTATION":
            return ((yaml.safe_load(node.value.value).get("options") or {}).get(option) or {}).get("type", "str")
    return None


def unsafe_bool_uses(text, variables, context):
    """Uses of ``variables`` in one Jinja text that would read the string "false" as true.

    ``context`` is ("condition",), ("module", module, option) for a whole module option value,
    or ("text",) for anything else (vars, messages, template files).
    """
    source = "{{ (%s) }}" % text if context[0] == "condition" else text
    try:
        tree = parse_jinja(source)
    except jinja2.TemplateSyntaxError as error:
        return ["cannot parse %r: %s" % (text, error)]
    problems = []
    whole_value = context[0] == "module" and re.match(r"^\{\{-?\s*[a-z_][a-z0-9_]*\s*-?\}\}$", text.strip())
    for name, parents in expression_parents(tree, variables):
        nearest = parents
        while nearest and isinstance(nearest[0], jinja2.nodes.Filter) and nearest[0].name == "default":
            nearest = nearest[1:]
        if nearest and isinstance(nearest[0], jinja2.nodes.Filter) and nearest[0].name == "bool":
            continue
        if whole_value:
            if module_option_type(context[1], context[2]) == "bool":
                continue
            problems.append("%s is passed whole to %s option %s, which is not a bool option of this collection"
                            % (name, context[1], context[2]))
            continue
        if context[0] != "condition" and nearest and isinstance(nearest[0], jinja2.nodes.Output) \
                and not re.match(r"^\s*\{\{-?\s*%s\s*-?\}\}\s*$" % name, text):
            continue
        problems.append("%s is used without | bool in %r" % (name, text.strip()))
    return problems


def task_contexts(data, path_is_task_list):
    """(text, context) for every Jinja string of a task file, play or vars file."""
    if isinstance(data, list):
        for item in data:
            yield from task_contexts(item, path_is_task_list)
        return
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if key in CONDITION_KEYS:
            for condition in value if isinstance(value, list) else [value]:
                if isinstance(condition, str):
                    yield condition, ("condition",)
        elif path_is_task_list and isinstance(value, dict) and "." in key and not key.startswith("__"):
            for option, argument in value.items():
                if isinstance(argument, str) and "{{" in argument:
                    yield argument, ("module", key, option)
                else:
                    yield from text_contexts(argument)
        elif isinstance(value, (dict, list)):
            yield from task_contexts(value, path_is_task_list)
        elif isinstance(value, str) and ("{{" in value or "{%" in value):
            yield value, ("text",)


def text_contexts(data):
    for item in walk_yaml(data):
        if isinstance(item, str) and ("{{" in item or "{%" in item):
            yield item, ("text",)


def bool_switch_variables():
    switches = set()
    for playbook_name in EXPECTED_PLAYBOOKS:
        for question in survey_of(playbook_name)["spec"]:
            if question["type"] == "multiplechoice" and set(choice_list(question)) == BOOL_CHOICES:
                switches.add(question["variable"])
    return switches


def test_bool_switches_are_read_through_bool_everywhere():
    switches = bool_switch_variables()
    assert {"network_policy_enforce", "kube_proxy_removal_enabled", "cilium_upgrade"} <= switches
    problems = []
    read_in = set()
    for directory in (PLAYBOOKS_DIR, ROLES_DIR):
        for path in yaml_files(directory):
            relative = os.path.relpath(path, ROOT)
            is_task_list = "/meta/" not in relative and "/defaults/" not in relative and "/vars/" not in relative
            for text, context in task_contexts(load_yaml(path), is_task_list):
                if expression_parents(parse_jinja("{{ (%s) }}" % text if context[0] == "condition" else text), switches):
                    read_in.add(relative)
                problems.extend("%s: %s" % (relative, problem) for problem in unsafe_bool_uses(text, switches, context))
    # The scan sees the places that read the switches (a condition and a module option at least).
    assert {"roles/kube_proxy_removal/tasks/main.yml", "roles/cilium/tasks/values.yml",
            "roles/network_policy/tasks/main.yml"} <= read_in
    for parent, dirnames, filenames in os.walk(ROLES_DIR):
        dirnames.sort()
        for filename in sorted(filenames):
            if filename.endswith(".j2"):
                path = os.path.join(parent, filename)
                with open(path) as stream:
                    text = stream.read()
                problems.extend("%s: %s" % (os.path.relpath(path, ROOT), problem)
                                for problem in unsafe_bool_uses(text, switches, ("text",)))
    assert problems == []


# --- job template definitions and configure.yml ------------------------------------------------

def awx_module_options(module):
    spec = importlib.util.find_spec("ansible_collections.awx.awx.plugins.modules.%s" % module)
    assert spec is not None, "awx.awx is not installed next to ansible-core (the ansible package brings it)"
    with open(spec.origin) as stream:
        tree = ast.parse(stream.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DOCUMENTATION":
            return yaml.safe_load(node.value.value)["options"]
    raise AssertionError("no DOCUMENTATION in %s" % spec.origin)


def configure_tasks():
    return load_yaml(os.path.join(AWX_DIR, "configure.yml"))[0]["tasks"]


def configure_task(module):
    tasks = [task for task in configure_tasks() if module in task]
    assert len(tasks) >= 1, module
    return tasks


def test_job_template_definitions_use_real_job_template_options():
    definitions = job_template_definitions()
    options = awx_module_options("job_template")
    used = set(definitions["zerotrust_awx_job_template_defaults"])
    for template in definitions["zerotrust_awx_job_templates"]:
        used.update(template)
    assert sorted(used - set(options) - {"survey"}) == []
    ask_options = {name for name in options if name.startswith("ask_") and name.endswith("_on_launch")}
    assert set(definitions["zerotrust_awx_job_template_defaults"]) >= ask_options
    assert not any(definitions["zerotrust_awx_job_template_defaults"][name] for name in ask_options)


@pytest.mark.parametrize("playbook_name", EXPECTED_PLAYBOOKS)
def test_job_template_keeps_launch_prompts_closed(playbook_name):
    template = templates_by_playbook()[playbook_name]
    assert os.path.isfile(os.path.join(AWX_DIR, "surveys", template["survey"]))
    # Extra vars only through the survey; inventory, credentials and EE are the template's own.
    for fixed in ("ask_variables_on_launch", "ask_inventory_on_launch", "ask_credential_on_launch",
                  "ask_execution_environment_on_launch", "ask_scm_branch_on_launch"):
        assert template.get(fixed, False) is False, fixed
    assert template["inventory"] == "{{ zerotrust_awx_inventory_name }}"
    assert template["credentials"] == ["{{ zerotrust_awx_machine_credential_name }}",
                                       "{{ zerotrust_awx_kube_credential_name }}"]


def test_configure_passes_every_definition_key_to_the_job_template_module():
    definitions = job_template_definitions()
    keys = set(definitions["zerotrust_awx_job_template_defaults"])
    for template in definitions["zerotrust_awx_job_templates"]:
        keys.update(template)
    (task,) = configure_task("awx.awx.job_template")
    arguments = task["awx.awx.job_template"]
    passed = {key for key, value in arguments.items() if "__awx_template.%s " % key in str(value) + " "}
    assert sorted(keys - {"survey"} - passed) == []
    assert "__awx_template.survey" in arguments["survey_spec"]
    play_vars = load_yaml(os.path.join(AWX_DIR, "configure.yml"))[0]["vars"]
    referenced = set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", json.dumps(definitions["zerotrust_awx_job_templates"])))
    assert sorted(referenced - set(play_vars)) == []


def test_configure_reads_the_controller_from_the_environment_only():
    text = open(os.path.join(AWX_DIR, "configure.yml")).read()
    for argument in ("controller_host", "controller_oauthtoken", "controller_username", "controller_password"):
        assert argument not in text
    assert "CONTROLLER_HOST" in text and "CONTROLLER_OAUTH_TOKEN" in text


# --- credential types, rendered as AWX renders them ------------------------------------------

def credential_type(name):
    return load_json(os.path.join(AWX_DIR, "credential_types", name + ".json"))


def awx_inject(definition, inputs, private_dir):
    """Render ``definition``'s injectors for ``inputs`` as AWX's CredentialType.inject_credential does.

    Empty string inputs are left out of the namespace, booleans stay booleans, boolean fields
    without an input are false, file templates are written first and their paths offered as
    ``tower.filename[.<label>]``. Returns (env, extra_vars, files by label).
    """
    namespace = {}
    for field, value in inputs.items():
        if isinstance(value, bool) or len(value):
            namespace[field] = value
    for field in definition["inputs"]["fields"]:
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False
    tower = types.SimpleNamespace()
    namespace["tower"] = tower
    sandbox = jinja2.sandbox.ImmutableSandboxedEnvironment()
    files = {}
    os.makedirs(os.path.join(private_dir, "env"), exist_ok=True)
    for label, template in definition["injectors"].get("file", {}).items():
        path = os.path.join(private_dir, "env", label.replace(".", "_"))
        with open(path, "w") as stream:
            stream.write(sandbox.from_string(template).render(**namespace))
        if "." in label:
            if not hasattr(tower, "filename"):
                tower.filename = types.SimpleNamespace()
            setattr(tower.filename, label.split(".", 1)[1], path)
        else:
            tower.filename = path
        files[label] = path
    env = {name: sandbox.from_string(template).render(**namespace)
           for name, template in definition["injectors"].get("env", {}).items()}
    extra_vars = {name: sandbox.from_string(template).render(**namespace)
                  for name, template in definition["injectors"].get("extra_vars", {}).items()}
    return env, extra_vars, files


def awx_injector_problems(definition):
    """AWX refuses injectors that name anything but the type's fields and its own file labels."""
    problems = []
    namespace = {field["id"]: (True if field.get("type") == "boolean" else "x") for field in definition["inputs"]["fields"]}
    labels = [label.split(".", 1)[1] for label in definition["injectors"].get("file", {}) if "." in label]
    namespace["tower"] = types.SimpleNamespace(filename=types.SimpleNamespace(**{label: "/f" for label in labels}))
    strict = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    for kind, injectors in definition["injectors"].items():
        for name, template in injectors.items():
            if kind == "env" and (name.startswith("ANSIBLE_") or name in ("PATH", "PYTHONPATH", "VIRTUAL_ENV")):
                problems.append("env %s may not be set by a credential" % name)
            try:
                strict.from_string(template).render(**namespace)
            except jinja2.exceptions.UndefinedError as error:
                problems.append("%s %s: %s" % (kind, name, error))
    secret_fields = {field["id"] for field in definition["inputs"]["fields"] if field.get("secret")}
    for name, template in definition["injectors"].get("extra_vars", {}).items():
        if set(template_names(template)) & secret_fields:
            problems.append("extra_vars %s carries a secret into the job's variables" % name)
    return problems


@pytest.mark.parametrize("name", ["kubeconfig", "bearer_token"])
def test_credential_type_is_accepted_by_awx(name):
    definition = credential_type(name)
    assert definition["kind"] == "cloud"
    assert awx_credential_type_options_match(definition)
    assert awx_injector_problems(definition) == []


def awx_credential_type_options_match(definition):
    options = awx_module_options("credential_type")
    return set(definition) <= set(options) and definition["kind"] in options["kind"]["choices"]


def kubernetes_core_auth(env, monkeypatch):
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import _create_auth_spec
    for name in list(os.environ):
        if name.startswith(("K8S_AUTH_", "HELM_KUBE")) or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {key: value for key, value in _create_auth_spec().items() if key != "proxy_headers"}


def loaded_kubeconfig(path):
    import kubernetes.client
    import kubernetes.config
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=path, client_configuration=configuration)
    return configuration


def write_kubeconfig(path, server, token):
    document = {
        "apiVersion": "v1", "kind": "Config", "current-context": "admin",
        "clusters": [{"name": "prod", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "admin", "context": {"cluster": "prod", "user": "admin"}}],
    }
    with open(path, "w") as stream:
        yaml.safe_dump(document, stream)
    with open(path) as stream:
        return stream.read()


def test_kubeconfig_credential_reaches_kubernetes_core_helm_and_the_roles(tmp_path, monkeypatch):
    kubeconfig_text = write_kubeconfig(str(tmp_path / "source.yaml"), "https://192.0.2.10:6443", "token-one")
    env, extra_vars, files = awx_inject(credential_type("kubeconfig"), {"kubeconfig": kubeconfig_text}, str(tmp_path))
    path = files["template.kubeconfig"]
    with open(path) as stream:
        assert stream.read() == kubeconfig_text
    assert env == {"K8S_AUTH_KUBECONFIG": path, "KUBECONFIG": path}
    assert extra_vars == {"zerotrust_kubeconfig": path}
    assert kubernetes_core_auth(env, monkeypatch) == {"kubeconfig": path}
    configuration = loaded_kubeconfig(path)
    assert configuration.host == "https://192.0.2.10:6443"
    assert list(configuration.api_key.values()) == ["Bearer token-one"]


@pytest.mark.parametrize("insecure, ca_text, verify_ssl, skip_tls_env", [
    (False, "-----BEGIN CERTIFICATE-----\nMIIBcluster\n-----END CERTIFICATE-----\n", True, "false"),
    (True, "", False, "true"),
    (None, "", True, "false"),
])
def test_bearer_token_credential_reaches_kubernetes_core_helm_and_the_roles(
        tmp_path, monkeypatch, insecure, ca_text, verify_ssl, skip_tls_env):
    inputs = {"host": "https://192.0.2.10:6443", "bearer_token": "eyJhbGciOi.token", "ssl_ca_cert": ca_text}
    if insecure is not None:
        inputs["insecure_skip_tls_verify"] = insecure
    env, extra_vars, files = awx_inject(credential_type("bearer_token"), inputs, str(tmp_path))
    ca_path = files["template.ca_cert"] if ca_text else ""
    expected_auth = {"host": "https://192.0.2.10:6443", "api_key": "eyJhbGciOi.token", "verify_ssl": verify_ssl,
                     "ssl_ca_cert": ca_path}
    assert kubernetes_core_auth(env, monkeypatch) == expected_auth
    assert {name: env[name] for name in env if name.startswith("HELM_")} == {
        "HELM_KUBEAPISERVER": "https://192.0.2.10:6443", "HELM_KUBETOKEN": "eyJhbGciOi.token",
        "HELM_KUBECAFILE": ca_path, "HELM_KUBEINSECURE_SKIP_TLS_VERIFY": skip_tls_env}
    assert env["KUBECONFIG"] == extra_vars["zerotrust_kubeconfig"] == files["template.kubeconfig"]
    if ca_text:
        with open(ca_path) as stream:
            assert stream.read() == ca_text
    configuration = loaded_kubeconfig(files["template.kubeconfig"])
    assert configuration.host == "https://192.0.2.10:6443"
    assert list(configuration.api_key.values()) == ["Bearer eyJhbGciOi.token"]
    assert configuration.verify_ssl is verify_ssl


def test_credential_env_names_are_the_ones_kubernetes_core_and_helm_read():
    from ansible_collections.kubernetes.core.plugins.module_utils import args_common, helm_args_common
    spec = importlib.util.find_spec("ansible_collections.kubernetes.core.plugins.module_utils.helm")
    with open(spec.origin) as stream:
        helm_names = set(re.findall(r'"(HELM_[A-Z_]+|KUBECONFIG)"', stream.read()))
    k8s_names = {"K8S_AUTH_%s" % name.upper() for name in list(args_common.AUTH_ARG_MAP) + list(args_common.AUTH_ARG_MAP.values())}
    helm_fallbacks = {name for option in helm_args_common.HELM_AUTH_ARG_SPEC.values()
                      for name in (option.get("fallback") or (None, []))[1]}
    for name in ("kubeconfig", "bearer_token"):
        env_names = set(credential_type(name)["injectors"]["env"])
        unknown = {env_name for env_name in env_names
                   if env_name not in k8s_names | helm_fallbacks | helm_names}
        assert unknown == set(), name
        assert {env_name for env_name in env_names if env_name.startswith("K8S_AUTH_")} <= helm_fallbacks


SECRET_SHAPES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT (service account token)
    re.compile(r"-data\s*:\s*['\"]?[A-Za-z0-9+/=]{40,}"),  # kubeconfig certificate or key data
    re.compile(r"^\s*[\"']?[a-z_]*(token|password)[\"']?\s*[:=]\s*['\"]?[A-Za-z0-9+/=_-]{20,}['\"]?,?\s*$", re.MULTILINE),
    re.compile(r"-----BEGIN [A-Z ]+-----"),
)


def test_no_secret_is_written_into_the_definitions():
    for parent, dirnames, filenames in os.walk(AWX_DIR):
        dirnames.sort()
        for filename in sorted(filenames):
            with open(os.path.join(parent, filename)) as stream:
                text = stream.read()
            for secret in SECRET_SHAPES:
                assert not secret.search(text), (filename, secret.pattern)


# --- the checks themselves catch what they are for -------------------------------------------

GOOD_SWITCH = {"question_name": "Enforce", "question_description": "d", "variable": "network_policy_enforce",
               "type": "multiplechoice", "required": True, "default": "false", "choices": ["false", "true"]}


def with_changes(question, **changes):
    changed = dict(question)
    changed.update(changes)
    return changed


def survey(*questions):
    return {"name": "n", "description": "d", "spec": list(questions)}


@pytest.mark.parametrize("bad_survey, message", [
    ({"name": "n", "description": "d"}, "survey field 'spec' must be a list"),
    (survey(), "survey has no questions"),
    (survey(GOOD_SWITCH, GOOD_SWITCH), "question 1 (network_policy_enforce): variable 'network_policy_enforce' is asked twice"),
    (survey(with_changes(GOOD_SWITCH, type="boolean")),
     "question 0 (network_policy_enforce): type 'boolean' is not one of float, integer, multiplechoice, multiselect, "
     "password, text, textarea"),
    (survey(with_changes(GOOD_SWITCH, default="yes")),
     "question 0 (network_policy_enforce): default 'yes' is not among the choices ['false', 'true']"),
    (survey(with_changes(GOOD_SWITCH, default=False)),
     "question 0 (network_policy_enforce): default False does not fit type multiplechoice"),
    (survey(with_changes(GOOD_SWITCH, required="yes")), "question 0 (network_policy_enforce): required must be true or false"),
    (survey(with_changes(GOOD_SWITCH, variable="network-policy")),
     "question 0 (network-policy): 'network-policy' is not a variable name"),
    (survey(with_changes(GOOD_SWITCH, default="", required=False)),
     "question 0 (network_policy_enforce): a question without a default must be required (AWX would send '')"),
    (survey({"question_name": "Batch", "question_description": "d", "variable": "zerotrust_node_batch", "type": "integer",
             "required": True, "default": 0, "min": 1, "max": 10}),
     "question 0 (zerotrust_node_batch): default 0 is below min 1"),
    (survey({"question_name": "Batch", "question_description": "d", "variable": "zerotrust_node_batch", "type": "text",
             "required": True, "default": "100%", "min": 1, "max": "8"}),
     "question 0 (zerotrust_node_batch): max must be an integer"),
])
def test_awx_survey_rules_refuse_bad_surveys(bad_survey, message):
    assert message in awx_survey_problems(bad_survey)


def usage_of(playbook_name):
    return read_playbook(os.path.join(PLAYBOOKS_DIR, playbook_name + ".yml"))


@pytest.mark.parametrize("playbook_name, question, message", [
    ("policies", with_changes(GOOD_SWITCH, variable="network_policy_enforce_now"),
     "policies: network_policy_enforce_now is no option of the roles playbooks/policies.yml uses"),
    ("policies", with_changes(GOOD_SWITCH, default="true"),
     "policies: network_policy_enforce survey default 'true' is not the default False of role network_policy (main)"),
    ("policies", with_changes(GOOD_SWITCH, type="text", default="false", choices=None),
     "policies: network_policy_enforce against role network_policy (main): bool options are asked as multiplechoice "
     "with the choices false and true"),
    ("cilium", with_changes(GOOD_SWITCH, variable="zerotrust_mode", default="", choices=["render", "apply", "dry-run"]),
     "cilium: zerotrust_mode against role cilium (main): choices ['render', 'apply', 'dry-run'] are not among the "
     "option's choices ['apply', 'render']"),
    ("rollback", with_changes(GOOD_SWITCH, variable="zerotrust_rollback", type="multiplechoice", default="",
                              choices=["policies"]),
     "rollback: zerotrust_rollback against validate_argument_spec in the playbook: a multiplechoice question does not "
     "fit an option of type list"),
    ("nodes", with_changes(GOOD_SWITCH, variable="zerotrust_node_batch", type="text", default="50%", choices=None),
     "nodes: zerotrust_node_batch survey default '50%' is not the default '100%' of play keyword serial"),
    ("verify", with_changes(GOOD_SWITCH, variable="verify_answer_timeout", type="integer", default=3, choices=None),
     "verify: verify_answer_timeout is no option of the roles playbooks/verify.yml uses"),
])
def test_question_check_refuses_questions_the_playbook_cannot_take(playbook_name, question, message):
    problems = question_problems(playbook_name, question, usage_of(playbook_name))
    assert any(problem.startswith(message) for problem in problems), problems


def test_verify_fallback_covers_only_variables_the_collection_defines(monkeypatch):
    """While the verify role was missing, its survey was checked against the collection-wide definitions."""
    monkeypatch.setattr(sys.modules[__name__], "verify_role_pending", lambda playbook_name: playbook_name == "verify")
    bare = PlaybookUsage()
    mode = with_changes(GOOD_SWITCH, variable="zerotrust_mode", default="", choices=["render", "apply"])
    assert question_problems("verify", mode, bare) == []
    assert question_problems("verify", with_changes(mode, default="render"), bare)[0].startswith(
        "verify: zerotrust_mode survey default 'render' is not the default 'apply' of role ")
    unknown = with_changes(GOOD_SWITCH, variable="verify_answer_timeout", type="integer", default=3, choices=None)
    assert question_problems("verify", unknown, bare) == [
        "verify: verify_answer_timeout is no option of the roles playbooks/verify.yml uses (none), no "
        "validate_argument_spec of it and no play keyword variable of it"]
    assert question_problems("policies", mode, bare)[0].startswith("policies: zerotrust_mode is no option")


def test_required_option_check_names_what_is_missing():
    usage = usage_of("cilium")
    problems = unanswered_required("cilium", survey(GOOD_SWITCH), usage, {})
    assert "cilium: zerotrust_output_dir is required by role cilium (main) and neither asked, nor set in " \
           "inventories/example, nor set by the playbook" in problems
    assert not any(problem.startswith("cilium: preconditions_phase ") for problem in problems)


def test_playbook_reader_follows_imports_and_records_missing_playbooks(tmp_path):
    site = usage_of("site")
    assert {("plan", "main"), ("kernel_preflight", "main"), ("node_tuning", "main"), ("cilium", "main"),
            ("kube_proxy_removal", "main"), ("kube_proxy_removal", "node"), ("network_policy", "main")} <= site.entry_points
    assert site.keyword_variables["zerotrust_node_batch"] == ("serial", "100%")
    playbook = tmp_path / "broken.yml"
    playbook.write_text("- name: Import a playbook that is not there\n  ansible.builtin.import_playbook: zerotrust.cilium.nowhere\n")
    assert read_playbook(str(playbook)).missing == ["playbooks/nowhere.yml"]


@pytest.mark.parametrize("text, context, message", [
    ("network_policy_enforce", ("condition",), "network_policy_enforce is used without | bool in 'network_policy_enforce'"),
    ("{% if cilium_upgrade %}x{% endif %}", ("text",), "cilium_upgrade is used without | bool in"),
    ("{{ cilium_upgrade }}", ("text",), "cilium_upgrade is used without | bool in '{{ cilium_upgrade }}'"),
    ("{{ cilium_upgrade }}", ("module", "kubernetes.core.helm", "atomic"),
     "cilium_upgrade is passed whole to kubernetes.core.helm option atomic, which is not a bool option of this collection"),
    ("{{ cilium_upgrade }}", ("module", "zerotrust.cilium.cilium_values", "values"),
     "cilium_upgrade is passed whole to zerotrust.cilium.cilium_values option values"),
])
def test_bool_use_check_refuses_string_truthiness(text, context, message):
    problems = unsafe_bool_uses(text, {"cilium_upgrade", "network_policy_enforce"}, context)
    assert any(problem.startswith(message) for problem in problems), problems


@pytest.mark.parametrize("text, context", [
    ("network_policy_enforce | bool and zerotrust_mode == 'apply'", ("condition",)),
    ("kube_proxy_removal_enabled | default(false) | bool", ("condition",)),
    ("{{ cilium_upgrade }}", ("module", "zerotrust.cilium.cilium_values", "allow_upgrade")),
    ("cilium_upgrade is {{ cilium_upgrade }} here", ("text",)),
])
def test_bool_use_check_accepts_safe_uses(text, context):
    assert unsafe_bool_uses(text, {"cilium_upgrade", "network_policy_enforce", "kube_proxy_removal_enabled"},
                            context) == []


def test_injector_check_refuses_unknown_names_and_secrets_in_extra_vars():
    definition = credential_type("bearer_token")
    definition["injectors"]["env"]["K8S_AUTH_HOST"] = "{{ api_url }}"
    definition["injectors"]["env"]["ANSIBLE_CONFIG"] = "{{ tower.filename.kubeconfig }}"
    definition["injectors"]["extra_vars"]["zerotrust_token"] = "{{ bearer_token }}"
    assert awx_injector_problems(definition) == [
        "env K8S_AUTH_HOST: 'api_url' is undefined",
        "env ANSIBLE_CONFIG may not be set by a credential",
        "extra_vars zerotrust_token carries a secret into the job's variables",
    ]
