# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/filter/kube_proxy.py: the filters the kube_proxy_removal role
calls, their keyword options and the exact messages of their errors (always
AnsibleFilterError, naming the filter). The logic itself is tested in
tests/unit/plugins/module_utils/test_kube_proxy.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.filter import kube_proxy

FILTERS = kube_proxy.FilterModule().filters()

CLUSTER_CONFIGURATION = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                         "networking": {"serviceSubnet": "10.43.0.0/16"}}
DAEMONSET = {"apiVersion": "apps/v1", "kind": "DaemonSet",
             "metadata": {"name": "cilium", "namespace": "kube-system", "uid": "u-1", "resourceVersion": "9"},
             "spec": {"template": {"spec": {"containers": [
                 {"name": "cilium-agent", "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "192.0.2.10"},
                                                  {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"}]}]}}},
             "status": {"numberReady": 1}}


def test_the_filters_the_role_uses_are_all_there():
    assert sorted(FILTERS) == ["cilium_agent_endpoint", "kube_proxy_removal_gates", "kube_proxy_removal_plan",
                               "kube_proxy_restorable", "kubeadm_kube_proxy_patch"]


def test_each_filter_returns_what_its_pure_function_returns():
    assert FILTERS["kubeadm_kube_proxy_patch"](CLUSTER_CONFIGURATION)["cluster_configuration"]["proxy"] == {
        "disabled": True}
    assert FILTERS["kubeadm_kube_proxy_patch"](CLUSTER_CONFIGURATION, disabled=None)["changed"] is False
    assert FILTERS["cilium_agent_endpoint"](DAEMONSET)["host"]["value"] == "192.0.2.10"
    assert FILTERS["kube_proxy_restorable"](DAEMONSET)["metadata"] == {"name": "cilium", "namespace": "kube-system"}
    plan = FILTERS["kube_proxy_removal_plan"](["n1", "n2"], serial="50%", service_cidr="10.43.0.0/16",
                                              api_server_host="192.0.2.10")
    assert plan["batches"] == [["n1"], ["n2"]]
    gates = FILTERS["kube_proxy_removal_gates"]({"kube-proxy-replacement": "true"}, cilium_daemonset=DAEMONSET,
                                                agent_statuses=[], services=[], kube_proxy_objects={})
    assert gates["ok"] is False
    assert gates["failed_gates"][0]["gate"] == "cilium_daemonset_ready"


@pytest.mark.parametrize("name, value, args, options, message", [
    ("kubeadm_kube_proxy_patch", CLUSTER_CONFIGURATION, (), {"disabled": "yes"},
     "kubeadm_kube_proxy_patch: kubeadm_patch: disabled: 'yes' is not one of: true, false, null"),
    ("kubeadm_kube_proxy_patch", "ClusterConfiguration", (), {},
     "kubeadm_kube_proxy_patch: kubeadm_patch: cluster_configuration: 'ClusterConfiguration' is not a mapping "
     "(an object as the Kubernetes API returns it)"),
    ("kubeadm_kube_proxy_patch", CLUSTER_CONFIGURATION, (False,), {},
     "kubeadm_kube_proxy_patch: takes keyword options only (e.g. disabled=...), got positional [False]"),
    ("kube_proxy_removal_gates", None, (), {"cilium_daemonset": None, "agent_statuses": [], "services": [],
                                            "kube_proxy_objects": {}, "cidr": "10.43.0.0/16"},
     "kube_proxy_removal_gates: options: 'cidr' is not one of: cilium_daemonset, agent_statuses, services, "
     "kube_proxy_objects, config_maps, service_cidr, container"),
    ("kube_proxy_removal_gates", None, (), {"cilium_daemonset": None, "agent_statuses": "cilium-x",
                                            "services": [], "kube_proxy_objects": {}},
     "kube_proxy_removal_gates: removal_gates: agent_statuses: 'cilium-x' is not a list"),
    ("kube_proxy_removal_gates", None, (), {"cilium_daemonset": None},
     "kube_proxy_removal_gates: removal_gates() missing 3 required positional arguments: 'agent_statuses', "
     "'services', and 'kube_proxy_objects'"),
    ("kube_proxy_restorable", {"kind": "ConfigMap"}, (), {},
     "kube_proxy_restorable: restorable_manifest: object.apiVersion: None is missing; pass the object as the API "
     "returns it"),
    ("cilium_agent_endpoint", [], (), {"container": "agent"},
     "cilium_agent_endpoint: daemonset: [] is not a mapping (an object as the Kubernetes "
     "API returns it)"),
    ("kube_proxy_removal_plan", ["n1"], (), {"service_cidr": "10.43.0.0/16", "api_server_host": "api",
                                             "serial": "all"},
     "kube_proxy_removal_plan: node_batches: serial: 'all' is not a number or a percentage such as '25%'"),
])
def test_bad_input_names_the_filter_and_the_value(name, value, args, options, message):
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS[name](value, *args, **options)
    assert str(error.value) == message
