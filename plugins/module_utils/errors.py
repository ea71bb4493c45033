# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exception types shared by every module_utils file of the collection.

Pure Python: nothing here imports ``ansible``.  Filters turn these errors into
``AnsibleFilterError``, modules into ``fail_json(msg=...)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class CollectionError(Exception):
    """Base class of every error the collection raises on purpose."""


class InvalidInput(CollectionError, ValueError):
    """An input value the collection cannot accept.

    The message always names the field, quotes the value and says what is accepted::

        tunnel: 'vxlann' is not one of: vxlan, geneve, disabled

    ``where`` (a filter, module or role name) is put in front when given.
    """

    def __init__(self, field, value, problem, where=None):
        self.field = field
        self.value = value
        self.problem = problem
        self.where = where
        message = "%s: %r %s" % (field, value, problem)
        if where:
            message = "%s: %s" % (where, message)
        super(InvalidInput, self).__init__(message)


class InvalidInputs(CollectionError, ValueError):
    """Several input problems reported at once (each an ``InvalidInput``)."""

    def __init__(self, problems, where=None):
        self.problems = list(problems)
        self.where = where
        lines = [str(problem) for problem in self.problems]
        header = "%d problem(s) found" % len(lines)
        if where:
            header = "%s: %s" % (where, header)
        super(InvalidInputs, self).__init__(header + ":\n- " + "\n- ".join(lines))


def raise_problems(problems, where=None):
    """Raise the input problems found, if any, as one error naming ``where`` once.

    One problem is raised as an ``InvalidInput`` (with ``where`` in front, else its own);
    several as an ``InvalidInputs`` listing each under one header.
    """
    if not problems:
        return
    bare = [InvalidInput(problem.field, problem.value, problem.problem) for problem in problems]
    if len(bare) == 1:
        raise InvalidInput(bare[0].field, bare[0].value, bare[0].problem, where=where or problems[0].where)
    raise InvalidInputs(bare, where=where)
