# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kube-proxy removal filters: thin wrappers over ``plugins/module_utils/kube_proxy.py``.

The ``kube_proxy_removal`` role decides on the controller with these: whether the gates
hold, how to patch the kubeadm ClusterConfiguration, what a backup manifest looks like and
what the run will do. Documentation lives in the sidecar files next to this one
(``kube_proxy_removal_gates.yml``, ``cilium_agent_endpoint.yml``,
``kubeadm_kube_proxy_patch.yml``, ``kube_proxy_restorable.yml``,
``kube_proxy_removal_plan.yml``), so ``ansible-doc -t filter zerotrust.cilium.<name>``
shows it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.cilium.plugins.module_utils import kube_proxy as kube_proxy_logic
from ansible_collections.zerotrust.cilium.plugins.plugin_utils.filter_call import call_filter


def kube_proxy_removal_gates(cilium_config, *args, **options):
    """Whether kube-proxy may be removed, and which gate failed why."""
    return call_filter("kube_proxy_removal_gates", kube_proxy_logic.removal_gates, cilium_config, args, options)


def cilium_agent_endpoint(daemonset, *args, **options):
    """Where the Cilium agent finds the API server (env values or ConfigMap references)."""
    return call_filter("cilium_agent_endpoint", kube_proxy_logic.cilium_agent_endpoint, daemonset, args, options)


def kubeadm_kube_proxy_patch(cluster_configuration, *args, **options):
    """Set or undo proxy.disabled in a kubeadm ClusterConfiguration."""
    return call_filter("kubeadm_kube_proxy_patch", kube_proxy_logic.kubeadm_patch, cluster_configuration, args, options)


def kube_proxy_restorable(obj, *args, **options):
    """A live Kubernetes object as a manifest that can be created again."""
    return call_filter("kube_proxy_restorable", kube_proxy_logic.restorable_manifest, obj, args, options)


def kube_proxy_removal_plan(nodes, *args, **options):
    """Gates, backups, deletions, node batches and probes of a removal run."""
    return call_filter("kube_proxy_removal_plan", kube_proxy_logic.removal_plan, nodes, args, options)


class FilterModule(object):
    """kube-proxy removal filters of zerotrust.cilium."""

    def filters(self):
        return {
            "kube_proxy_removal_gates": kube_proxy_removal_gates,
            "cilium_agent_endpoint": cilium_agent_endpoint,
            "kubeadm_kube_proxy_patch": kubeadm_kube_proxy_patch,
            "kube_proxy_restorable": kube_proxy_restorable,
            "kube_proxy_removal_plan": kube_proxy_removal_plan,
        }
