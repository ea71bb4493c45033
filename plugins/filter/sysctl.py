# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sysctl filters of the node_tuning role: thin wrappers over ``plugins/module_utils/sysctl.py``.

Documentation lives in the sidecar files next to this one (``sysctl_plan.yml``,
``sysctl_dropin.yml``, ``sysctl_check_keys.yml``, ``sysctl_compare.yml``), so
``ansible-doc -t filter zerotrust.cilium.<name>`` shows it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.module_utils import sysctl as sysctl_logic
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError, InvalidInput


def _fail(filter_name, err):
    raise AnsibleFilterError("%s: %s" % (filter_name, err))


def _plan(filter_name, plan):
    if not isinstance(plan, dict) or not isinstance(plan.get("sysctls"), dict) \
            or not isinstance(plan.get("origins"), dict):
        _fail(filter_name, InvalidInput("plan", plan, "is not a plan from zerotrust.cilium.sysctl_plan"))
    return plan


def sysctl_plan(settings):
    """The sysctls a Cilium node needs, with the variable behind each and the best-effort keys."""
    try:
        return sysctl_logic.plan_from_settings(settings)
    except CollectionError as err:
        _fail("sysctl_plan", err)


def sysctl_dropin(plan):
    """The drop-in file text for a plan (best-effort and glob keys get systemd's '-' prefix)."""
    plan = _plan("sysctl_dropin", plan)
    return sysctl_logic.render_dropin(plan["sysctls"], plan.get("best_effort") or ())


def sysctl_check_keys(plan, existing=None):
    """Fail, naming the variable, for planned keys the node lacks; return absent best-effort keys."""
    plan = _plan("sysctl_check_keys", plan)
    if isinstance(existing, (str, bytes)) or not isinstance(existing, (list, tuple, set)):
        _fail("sysctl_check_keys", InvalidInput("existing", existing, "must be a list of sysctl names"))
    try:
        return sysctl_logic.check_keys_exist(plan, existing, plan.get("best_effort") or ())
    except CollectionError as err:
        _fail("sysctl_check_keys", err)


def sysctl_compare(plan, running=None):
    """Compare a plan with running values: matched, mismatched, best effort not applied, message."""
    plan = _plan("sysctl_compare", plan)
    if not isinstance(running, dict):
        _fail("sysctl_compare", InvalidInput("running", running, "must be a mapping of sysctl name to value"))
    return sysctl_logic.readback(plan, running)


def sysctl_dropin_plan(text, dropin="/etc/sysctl.d/90-zerotrust-cilium.conf"):
    """The plan a drop-in file written by the node_tuning role carries, for sysctl_compare."""
    try:
        return sysctl_logic.plan_from_dropin(text, dropin)
    except CollectionError as err:
        _fail("sysctl_dropin_plan", err)


class FilterModule(object):
    """Sysctl filters of zerotrust.cilium."""

    def filters(self):
        return {
            "sysctl_plan": sysctl_plan,
            "sysctl_dropin": sysctl_dropin,
            "sysctl_check_keys": sysctl_check_keys,
            "sysctl_compare": sysctl_compare,
            "sysctl_dropin_plan": sysctl_dropin_plan,
        }
