# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the collection's filters call their pure functions (controller side only).

A filter ``value | zerotrust.cilium.<name>(option=...)`` maps to ``function(value, **options)``
in module_utils. Positional options and unknown option names are refused by name, and every
input problem becomes an ``AnsibleFilterError`` whose message starts with the filter name,
so no Python traceback reaches a playbook.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import inspect

from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError, InvalidInput


def filter_error(filter_name, err):
    """An AnsibleFilterError for ``err``, its message prefixed with the filter name once."""
    message = str(err)
    if not message.startswith(filter_name + ":"):
        message = "%s: %s" % (filter_name, message)
    return AnsibleFilterError(message)


def call_filter(filter_name, function, value, args, options):
    """Run ``function(value, **options)`` for the filter ``filter_name``.

    The options are the function's parameters after the first, except ``where``: the label
    module_utils put in front of their errors is the filter's own name, not a user's option.
    """
    option_names = [name for name in list(inspect.signature(function).parameters)[1:] if name != "where"]
    if args:
        raise AnsibleFilterError(
            "%s: takes keyword options only (e.g. %s=...), got positional %r"
            % (filter_name, option_names[0], list(args)))
    for name in options:
        if name not in option_names:
            raise filter_error(filter_name, InvalidInput(
                "options", name, "is not one of: %s" % ", ".join(option_names), where=filter_name))
    try:
        return function(value, **options)
    except (CollectionError, TypeError, ValueError, AttributeError) as err:
        raise filter_error(filter_name, err)
