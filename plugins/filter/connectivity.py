# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connectivity filters: thin wrappers over ``plugins/module_utils/connectivity.py``.

``connectivity_probes`` (the open matrix between endpoints) and ``connectivity_expected`` (the
matrix of a policy proof) build the probe list that ``zerotrust.cilium.connectivity_check``
takes; ``connectivity_merge`` joins several hosts' results into one truth table. Documentation
lives in the sidecars next to this file, so ``ansible-doc -t filter`` shows them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.cilium.plugins.module_utils import connectivity as connectivity_logic
from ansible_collections.zerotrust.cilium.plugins.plugin_utils.filter_call import call_filter


def connectivity_probes(endpoints, *args, **options):
    """One probe per ordered pair of distinct endpoints per service."""
    return call_filter("connectivity_probes", connectivity_logic.connectivity_probes, endpoints, args, options)


def connectivity_expected(proof, *args, **options):
    """The probes that check a policy proof's matrix between probe pods."""
    return call_filter("connectivity_expected", connectivity_logic.expected_probes, proof, args, options)


def connectivity_merge(reports, *args, **options):
    """One truth table out of several hosts' connectivity_check results."""
    return call_filter("connectivity_merge", connectivity_logic.merge_reports, reports, args, options)


class FilterModule(object):
    """Connectivity filters of zerotrust.cilium."""

    def filters(self):
        return {
            "connectivity_probes": connectivity_probes,
            "connectivity_expected": connectivity_expected,
            "connectivity_merge": connectivity_merge,
        }
