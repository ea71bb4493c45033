# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every filter of the collection documents itself in a sidecar that matches what it takes.

``ansible-doc -t filter zerotrust.cilium.<name>`` reads ``plugins/filter/<name>.yml``; this
keeps each sidecar's options equal to the options the filter really accepts: the keyword
parameters of a plain filter function, or, for the filters built on
``plugin_utils/filter_call.call_filter``, the options it lists when given an unknown one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import importlib
import inspect
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

FILTER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))), "plugins", "filter")


def all_filters():
    found = {}
    for path in sorted(glob.glob(os.path.join(FILTER_DIR, "*.py"))):
        plugin = os.path.splitext(os.path.basename(path))[0]
        module = importlib.import_module("ansible_collections.zerotrust.cilium.plugins.filter." + plugin)
        found.update(module.FilterModule().filters())
    return found


FILTERS = all_filters()


def accepted_options(function):
    parameters = list(inspect.signature(function).parameters.values())[1:]
    if not any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters):
        return {parameter.name for parameter in parameters}
    # A call_filter wrapper names what it takes when it is given something else.
    with pytest.raises(AnsibleFilterError) as raised:
        function(None, zerotrust_no_such_option=1)
    message = str(raised.value)
    assert "options: 'zerotrust_no_such_option' is not one of:" in message, message
    listed = message.split("is not one of:", 1)[1].strip()
    return set(listed.split(", ")) if listed else set()


def test_every_filter_file_has_its_filters_and_every_sidecar_a_filter():
    sidecars = {os.path.splitext(os.path.basename(path))[0] for path in glob.glob(os.path.join(FILTER_DIR, "*.yml"))}
    assert sidecars == set(FILTERS)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_has_a_sidecar_whose_options_match_the_function(name):
    with open(os.path.join(FILTER_DIR, name + ".yml")) as stream:
        doc = yaml.safe_load(stream)
    assert doc["DOCUMENTATION"]["name"] == name
    documented = set(doc["DOCUMENTATION"].get("options") or {}) - {"_input"}
    assert documented == accepted_options(FILTERS[name])
    assert doc["EXAMPLES"].count("zerotrust.cilium." + name) >= 1
    assert "_value" in doc["RETURN"]
