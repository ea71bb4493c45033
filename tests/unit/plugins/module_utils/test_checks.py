"""The shared input checks: accepted forms and the exact messages for bad values."""

import decimal

import pytest

from ansible_collections.zerotrust.cilium.plugins.module_utils import checks
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput


@pytest.mark.parametrize("value, expected", [(5, 5), ("5000", 5000), (" 7 ", 7), (0, 0)])
def test_whole_number_accepts_ints_and_digit_strings(value, expected):
    assert checks.whole_number("f", "nodes", value, minimum=0) == expected


@pytest.mark.parametrize("value, bounds, message", [
    (None, {}, "f: nodes: None is missing: a whole number is required"),
    (True, {}, "f: nodes: True is not a whole number"),
    (2.5, {}, "f: nodes: 2.5 is not a whole number"),
    ("ten", {}, "f: nodes: 'ten' is not a whole number"),
    (-1, {"minimum": 0}, "f: nodes: -1 is below the minimum of 0"),
    (70000, {"maximum": 65535}, "f: nodes: 70000 is above the maximum of 65535"),
])
def test_whole_number_rejects(value, bounds, message):
    with pytest.raises(InvalidInput) as raised:
        checks.whole_number("f", "nodes", value, **bounds)
    assert str(raised.value) == message


@pytest.mark.parametrize("value, expected", [(0.25, "0.25"), ("0.5", "0.5"), (0, "0"), (1, "1")])
def test_fraction_accepts_numbers_and_numeric_strings(value, expected):
    assert checks.fraction("f", "growth", value, 1) == decimal.Decimal(expected)


@pytest.mark.parametrize("value, message", [
    (False, "f: growth: False is not a number such as 0.25"),
    ("lots", "f: growth: 'lots' is not a number such as 0.25"),
    (-0.1, "f: growth: -0.1 is out of range: use a fraction from 0 to 1 (0.25 = 25%)"),
    (float("nan"), "f: growth: nan is out of range: use a fraction from 0 to 1 (0.25 = 25%)"),
])
def test_fraction_rejects(value, message):
    with pytest.raises(InvalidInput) as raised:
        checks.fraction("f", "growth", value, 1)
    assert str(raised.value) == message


def test_boolean_and_choice():
    assert checks.boolean("f", "ipv6", True) is True
    assert checks.boolean("f", "same_l2", None, allow_none=True) is None
    with pytest.raises(InvalidInput, match=r"^f: ipv6: 'yes' is not a boolean \(true or false\)$"):
        checks.boolean("f", "ipv6", "yes")
    assert checks.choice("f", "tunnel", "vxlan", ("vxlan", "geneve")) == "vxlan"
    with pytest.raises(InvalidInput, match=r"^f: tunnel: 'vxlann' is not one of: vxlan, geneve$"):
        checks.choice("f", "tunnel", "vxlann", ("vxlan", "geneve"))


@pytest.mark.parametrize("share, text", [(0.008, "0.8"), (0.25, "25"), (1, "100"), ("0.3333", "33.3")])
def test_percent_text(share, text):
    assert checks.percent_text(share) == text
