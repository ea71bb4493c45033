# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel preflight filters: thin wrappers over ``plugins/module_utils/kernel.py``.

Documentation lives in the sidecar files next to this one (``kernel_features.yml``,
``kernel_verdict.yml``, ``kernel_summary_table.yml``), so
``ansible-doc -t filter zerotrust.cilium.<name>`` shows it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.module_utils import kernel as kernel_logic
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError


def _fail(filter_name, err):
    raise AnsibleFilterError("%s: %s" % (filter_name, err))


def kernel_features(spec):
    """The Cilium features a cluster spec (the ``cilium_*`` variables) uses."""
    try:
        return kernel_logic.features_from_spec(spec)["features"]
    except CollectionError as err:
        _fail("kernel_features", err)


def kernel_verdict(facts, features=None, cilium_version=None, waive=None, unknown_is_failure=False,
                   features_field="features", waive_field="waive", version_field="cilium_version",
                   unknown_field="unknown_is_failure"):
    """Verdict for ``zerotrust_kernel`` facts: passed, missing items with feature and why."""
    try:
        return kernel_logic.verdict(facts, features, cilium_version, waive=waive,
                                    unknown_is_failure=unknown_is_failure, features_field=features_field,
                                    waive_field=waive_field, version_field=version_field,
                                    unknown_field=unknown_field)
    except CollectionError as err:
        _fail("kernel_verdict", err)


def kernel_summary_table(report):
    """A fixed-width table of a verdict, one row per checked item."""
    try:
        return kernel_logic.summary_table(report)
    except (KeyError, TypeError) as err:
        raise AnsibleFilterError("kernel_summary_table: report: %r is not a report from kernel_verdict (%s)"
                                 % (type(report).__name__, err))


class FilterModule(object):
    """Kernel preflight filters of zerotrust.cilium."""

    def filters(self):
        return {
            "kernel_features": kernel_features,
            "kernel_verdict": kernel_verdict,
            "kernel_summary_table": kernel_summary_table,
        }
