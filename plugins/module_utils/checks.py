# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks shared by the collection's filters and modules.

Each check returns the normalised value or raises ``InvalidInput`` naming ``where`` (the
public filter or module), the field, the value and what is accepted. Numbers may arrive as
digit strings (``-e nodes=5000`` gives a string), booleans never count as numbers.
Pure Python, no ``ansible`` import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import decimal
import re

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

_WHOLE_NUMBER_TEXT = re.compile(r"^\s*-?\d+\s*$")


def whole_number(where, field, value, minimum=None, maximum=None):
    """An int (or a digit string), never a boolean, within the optional bounds."""
    if value is None:
        raise InvalidInput(field, value, "is missing: a whole number is required", where=where)
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _WHOLE_NUMBER_TEXT.match(value):
        number = int(value)
    if number is None:
        raise InvalidInput(field, value, "is not a whole number", where=where)
    if minimum is not None and number < minimum:
        raise InvalidInput(field, value, "is below the minimum of %d" % minimum, where=where)
    if maximum is not None and number > maximum:
        raise InvalidInput(field, value, "is above the maximum of %d" % maximum, where=where)
    return number


def fraction(where, field, value, maximum):
    """A number from 0 to ``maximum`` such as 0.25 (a numeric string too), as a Decimal."""
    if isinstance(value, bool):
        raise InvalidInput(field, value, "is not a number such as 0.25", where=where)
    try:
        if isinstance(value, (int, float)):
            number = decimal.Decimal(repr(value))
        elif isinstance(value, str):
            number = decimal.Decimal(value.strip())
        else:
            raise decimal.InvalidOperation()
    except (decimal.InvalidOperation, ValueError):
        raise InvalidInput(field, value, "is not a number such as 0.25", where=where)
    if not number.is_finite() or number < 0 or number > maximum:
        raise InvalidInput(field, value, "is out of range: use a fraction from 0 to %s (0.25 = 25%%)" % maximum,
                           where=where)
    return number


def boolean(where, field, value, allow_none=False):
    """A real boolean (``None`` too when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        raise InvalidInput(field, value, "is not a boolean (true or false)", where=where)
    return value


def choice(where, field, value, accepted):
    """One of the ``accepted`` strings."""
    if not isinstance(value, str) or value not in accepted:
        raise InvalidInput(field, value, "is not one of: %s" % ", ".join(accepted), where=where)
    return value


def percent_text(share):
    """A fraction as a percentage with at most one decimal: 0.008 -> '0.8', 0.25 -> '25'."""
    percent = (decimal.Decimal(share) * 100).quantize(decimal.Decimal("0.1"))
    text = format(percent, "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text
