# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Staged policy rollout decisions: thin wrappers over module_utils/netpol_rollout.py.

Documentation lives in the sidecar files next to this one
(``network_policy_audit_endpoints.yml``, ``network_policy_audit_verdict.yml``,
``network_policy_post_apply_verdict.yml``), so ``ansible-doc -t filter
zerotrust.cilium.<name>`` shows it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.module_utils import netpol_rollout
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError


def _call(filter_name, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except CollectionError as err:
        raise AnsibleFilterError(str(err))
    except (TypeError, ValueError) as err:
        raise AnsibleFilterError("%s: %s" % (filter_name, err))


def network_policy_audit_endpoints(outputs, namespaces, agents=None):
    """Endpoint IDs of the managed pods, per Cilium agent."""
    return _call("network_policy_audit_endpoints", netpol_rollout.audit_endpoints, outputs, namespaces, agents)


def network_policy_audit_verdict(outputs, namespaces):
    """Whether the audit saw no would-be drop to or from a managed pod."""
    return _call("network_policy_audit_verdict", netpol_rollout.audit_verdict, outputs, namespaces)


def network_policy_post_apply_verdict(outputs, expected_allowed, policies=None):
    """Whether the enforced set passed: Cilium accepted it and no declared connection was dropped."""
    return _call("network_policy_post_apply_verdict", netpol_rollout.post_apply_verdict, outputs,
                 expected_allowed, policies)


class FilterModule(object):
    """Staged policy rollout filters of zerotrust.cilium."""

    def filters(self):
        return {
            "network_policy_audit_endpoints": network_policy_audit_endpoints,
            "network_policy_audit_verdict": network_policy_audit_verdict,
            "network_policy_post_apply_verdict": network_policy_post_apply_verdict,
        }
