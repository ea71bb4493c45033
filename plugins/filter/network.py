# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network math filters: thin wrappers over the collection's module_utils.

Documentation lives in the sidecar files next to this one (``cilium_mtu.yml``,
``pod_cidr_plan.yml``, ``cidr_overlaps.yml``, ``routing_mode.yml``,
``conntrack_max.yml``), so ``ansible-doc -t filter zerotrust.cilium.<name>`` shows it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.cilium.plugins.module_utils import cidr as cidr_math
from ansible_collections.zerotrust.cilium.plugins.module_utils import conntrack as conntrack_math
from ansible_collections.zerotrust.cilium.plugins.module_utils import mtu as mtu_math
from ansible_collections.zerotrust.cilium.plugins.plugin_utils.filter_call import call_filter


def cilium_mtu(base_mtu, *args, **options):
    """Cilium's device, route and WireGuard MTUs for an underlay MTU."""
    return call_filter("cilium_mtu", mtu_math.plan_mtu, base_mtu, args, options)


def pod_cidr_plan(cluster_cidr, *args, **options):
    """Per-node prefix and capacity of a Cilium cluster-pool pod CIDR."""
    return call_filter("pod_cidr_plan", cidr_math.pod_cidr_plan, cluster_cidr, args, options)


def cidr_overlaps(cidrs, *args, **options):
    """Overlapping pairs among named CIDRs."""
    return call_filter("cidr_overlaps", cidr_math.cidr_overlaps, cidrs, args, options)


def routing_mode(pod_cidr, *args, **options):
    """Native routing or tunnel, with the reason."""
    return call_filter("routing_mode", cidr_math.routing_mode, pod_cidr, args, options)


def conntrack_max(memory_mib, *args, **options):
    """nf_conntrack_max and nf_conntrack_buckets for a node's memory."""
    return call_filter("conntrack_max", conntrack_math.conntrack_max, memory_mib, args, options)


class FilterModule(object):
    """Network math filters of zerotrust.cilium."""

    def filters(self):
        return {
            "cilium_mtu": cilium_mtu,
            "pod_cidr_plan": pod_cidr_plan,
            "cidr_overlaps": cidr_overlaps,
            "routing_mode": routing_mode,
            "conntrack_max": conntrack_max,
        }
