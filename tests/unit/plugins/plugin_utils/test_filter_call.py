"""call_filter: keyword options only, unknown options named, errors prefixed once."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput
from ansible_collections.zerotrust.cilium.plugins.plugin_utils.filter_call import call_filter


def double(value, factor=2):
    if isinstance(value, str):
        raise InvalidInput("value", value, "is not a number", where="double")
    if value < 0:
        raise ValueError("negative values cannot be doubled")
    return value * factor


def test_options_reach_the_function():
    assert call_filter("double", double, 4, (), {"factor": 3}) == 12


@pytest.mark.parametrize("value, args, options, message", [
    (4, (3,), {}, "double: takes keyword options only (e.g. factor=...), got positional [3]"),
    (4, (), {"factr": 3}, "double: options: 'factr' is not one of: factor"),
    ("four", (), {}, "double: value: 'four' is not a number"),
    (-1, (), {}, "double: negative values cannot be doubled"),
])
def test_bad_input_becomes_one_filter_error(value, args, options, message):
    with pytest.raises(AnsibleFilterError) as raised:
        call_filter("double", double, value, args, options)
    assert raised.value.message == message


def labelled(value, factor=2, where="labelled"):
    if value < 0:
        raise InvalidInput("value", value, "is negative", where=where)
    return value * factor


def test_the_error_label_of_module_utils_is_not_a_filter_option():
    with pytest.raises(AnsibleFilterError) as raised:
        call_filter("labelled", labelled, 4, (), {"where": "elsewhere"})
    assert raised.value.message == "labelled: options: 'where' is not one of: factor"
    with pytest.raises(AnsibleFilterError) as raised:
        call_filter("labelled", labelled, -1, (), {})
    assert raised.value.message == "labelled: value: -1 is negative"
