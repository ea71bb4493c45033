# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""raise_problems: nothing, one problem, or all of them under one header."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs, raise_problems


def test_no_problem_raises_nothing():
    assert raise_problems([], where="somewhere") is None


def test_one_problem_is_raised_with_where_in_front_else_its_own():
    with pytest.raises(InvalidInput) as raised:
        raise_problems([InvalidInput("port", 0, "is not 1 to 65535", where="inner")], where="outer")
    assert str(raised.value) == "outer: port: 0 is not 1 to 65535"
    with pytest.raises(InvalidInput) as raised:
        raise_problems([InvalidInput("port", 0, "is not 1 to 65535", where="inner")])
    assert str(raised.value) == "inner: port: 0 is not 1 to 65535"


def test_several_problems_are_listed_under_one_header_naming_where_once():
    with pytest.raises(InvalidInputs) as raised:
        raise_problems([InvalidInput("port", 0, "is not 1 to 65535", where="outer"),
                        InvalidInput("mode", "x", "is not one of: a, b")], where="outer")
    assert str(raised.value) == ("outer: 2 problem(s) found:\n- port: 0 is not 1 to 65535\n"
                                 "- mode: 'x' is not one of: a, b")
