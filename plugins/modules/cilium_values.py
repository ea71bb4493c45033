#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cilium_values
short_description: Build and validate the Helm values of the Cilium chart
version_added: 0.1.0
description:
  - Builds the values the C(zerotrust.cilium.cilium) role installs Cilium with, in three layers. First hardened
    defaults (kube-proxy replacement with an API address that works without kube-proxy, BPF masquerading, Maglev,
    Hubble with relay, UI, metrics and TLS, resource requests and limits). Then values computed from the network
    math (C(MTU), routing mode, IPAM pool and per-node mask, conntrack map sizes). Last the user's overrides,
    deep-merged with Helm's semantics.
  - Validates the result before anything is written or applied. Types are checked against the chart's
    C(values.schema.json). Keys are checked against an allowlist built from the chart's C(values.yaml) and the keys it
    documents only in comments, with a suggestion for the closest real key and the replacement for removed keys.
    Rules the schema cannot express are checked as well, for example that kube-proxy replacement needs
    C(k8sServiceHost) and that C(autoDirectNodeRoutes) needs native routing. Every problem is reported at once, each
    naming the key path, the value and the fix.
  - Turns LB IPAM pools into C(cilium.io/v2) C(CiliumLoadBalancerIPPool) objects checked against the CRD schema and
    for overlaps with each other and with the pod and service CIDRs.
  - Returns the arguments for C(kubernetes.core.helm) and, given the current release, the release decision (install,
    upgrade or nothing, pre-flight, revision to roll back to).
  - With O(values) instead of O(spec) it only validates a values file.
  - Runs on the controller (delegated to C(localhost)) and talks to no cluster; the chart data it checks against
    (Cilium chart 1.20.0) is part of the collection. It never changes anything.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
requirements:
  - jsonschema (Python library, on the controller)
options:
  spec:
    description:
      - The cluster spec, keyed by the inventory variable names, so every error names the variable to fix.
      - Accepted keys are C(zerotrust_api_server_host) (required), C(zerotrust_api_server_port), C(zerotrust_pod_cidr),
        C(zerotrust_service_cidr), C(zerotrust_node_cidrs), C(zerotrust_underlay_mtu), C(cilium_version),
        C(cilium_nodes) (required, the number of nodes), C(cilium_control_plane_nodes), and the C(cilium_*) variables
        of the C(zerotrust.cilium.cilium) role that shape the values (routing, kube-proxy replacement, encryption,
        Hubble, operator, resources, IPAM, images).
      - Unset keys take the role's defaults. See C(docs/cilium-values.md) for the full list.
    type: dict
  overrides:
    description:
      - Helm values merged last (the role's C(cilium_values_overrides)). Mappings merge key by key; lists and scalars
        replace; C(null) removes a chart default.
      - An override may not contradict a value the cluster spec decides (for example C(MTU) or C(routingMode)).
    type: dict
    default: {}
  lb_ip_pools:
    description:
      - LB IPAM pools. Each item has C(name), C(blocks) (a list of C(cidr), or C(start) and C(stop)), and optionally
        C(serviceSelector), C(allowFirstLastIPs) (C(Yes) or C(No), quoted), C(disabled) and C(labels).
    type: list
    elements: dict
    default: []
  values:
    description:
      - Helm values to validate as they are, instead of building them from O(spec).
    type: dict
  chart_version:
    description:
      - Chart version O(values) are meant for; only used with O(values). The collection carries data for C(1.20.x).
    type: str
    default: 1.20.0
  helm:
    description:
      - How the release is installed; used to build the returned C(helm), C(preflight_helm) and C(helm_command).
    type: dict
    default: {}
    suboptions:
      release_name:
        description: Helm release name.
        type: str
        default: cilium
      namespace:
        description: Namespace of the release.
        type: str
        default: kube-system
      chart_ref:
        description:
          - The chart. C(cilium) with O(helm.chart_repo_url), an C(oci://) reference, or the absolute path of a local
            chart directory or C(.tgz) (air-gapped sites).
        type: str
        default: cilium
      chart_repo_url:
        description: Chart repository URL, used when O(helm.chart_ref) is a chart name.
        type: str
        default: https://helm.cilium.io/
      timeout:
        description: Helm timeout (a Go duration).
        type: str
        default: 15m0s
      history_max:
        description: Revisions Helm keeps for the release (what can be rolled back to).
        type: int
        default: 10
      kubeconfig:
        description: Kubeconfig for Helm.
        type: path
      context:
        description: Kubeconfig context for Helm.
        type: str
      binary_path:
        description: Path of the helm binary.
        type: path
  release:
    description:
      - The current release as C(kubernetes.core.helm_info) returns it under C(status); C({}) when there is none.
      - When given, the result has C(release), the decision for the apply path.
    type: dict
  allow_upgrade:
    description: Whether an existing release may be upgraded (the role's C(cilium_upgrade)).
    type: bool
    default: false
  preflight:
    description: Whether a chart version change runs the upgrade guide's pre-flight check (image pre-pull) first.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only computes; check mode returns the same result.
  diff_mode:
    support: full
    description: Shows the hardened and computed values before and after O(overrides).
  platform:
    support: full
    platforms: posix
    description: Runs on the controller; it needs no cluster and no node.
notes:
  - Validation needs the C(jsonschema) library for the Python that runs the module. The role runs it on the controller
    with the Python that runs Ansible.
seealso:
  - name: Cilium Helm reference
    description: The chart's values.
    link: https://docs.cilium.io/en/stable/helm-reference/
  - name: Cilium upgrade guide
    description: Pre-flight check and upgrade steps the role follows.
    link: https://docs.cilium.io/en/stable/operations/upgrade/
"""

EXAMPLES = r"""
- name: Build the Helm values for the cluster
  zerotrust.cilium.cilium_values:
    spec:
      zerotrust_api_server_host: 192.0.2.10
      zerotrust_pod_cidr: 10.244.0.0/16
      zerotrust_service_cidr: 10.96.0.0/12
      zerotrust_node_cidrs: [192.0.2.0/24]
      zerotrust_underlay_mtu: 9000
      cilium_nodes: 5
      cilium_control_plane_nodes: 3
      cilium_routing_mode: native
    overrides:
      hubble:
        relay:
          replicas: 3
    lb_ip_pools:
      - name: public
        blocks:
          - cidr: 192.0.2.128/27
  delegate_to: localhost
  run_once: true
  register: cilium_values_result

- name: Check a values file written by hand
  zerotrust.cilium.cilium_values:
    values: "{{ lookup('ansible.builtin.file', 'cilium-values.yaml') | from_yaml }}"
  delegate_to: localhost
"""

RETURN = r"""
values:
  description: The Helm values, validated (exactly what apply mode installs and render mode writes).
  returned: always
  type: dict
  sample: {MTU: 1500, routingMode: tunnel, tunnelProtocol: vxlan, kubeProxyReplacement: true}
lb_ip_pools:
  description: CiliumLoadBalancerIPPool manifests (cilium.io/v2).
  returned: always
  type: list
  elements: dict
value_warnings:
  description: Findings that do not stop the run (also emitted as Ansible warnings).
  returned: always
  type: list
  elements: str
plan:
  description: The network math behind the computed values (C(mtu), C(pod_cidr) and C(routing) per family).
  returned: always
  type: dict
chart:
  description: The chart the values are for (C(name), C(version), C(data_version), C(source), C(ref), C(repo_url)).
  returned: always
  type: dict
  sample: {name: cilium, version: 1.20.0, data_version: 1.20.0, source: repo, ref: cilium}
helm:
  description: Arguments for C(kubernetes.core.helm) that install or upgrade the release with these values.
  returned: when O(spec) is given
  type: dict
preflight_helm:
  description: Arguments for C(kubernetes.core.helm) that install the upgrade guide's pre-flight release.
  returned: when O(spec) is given
  type: dict
helm_command:
  description: The C(helm upgrade --install) command line that applies a rendered C(values.yaml).
  returned: when O(spec) is given
  type: str
release:
  description:
    - The release decision. C(action) is install, upgrade or none. C(blocked) is why the role must stop, or null.
      C(preflight) says whether to run the pre-flight check first.
    - C(previous_revision), C(previous_version) and C(previous_values) are what to record before upgrading, and
      C(rollback_revision) is where to roll back to on failure. C(changed_keys) lists the value paths that change.
  returned: when O(release) is given
  type: dict
diff:
  description: Hardened and computed values before and after the overrides.
  returned: when diff mode is on and O(spec) is given
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.cilium.plugins.module_utils.cilium_values import DEFAULT_CHART_REPO, run
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            spec=dict(type="dict"),
            overrides=dict(type="dict", default={}),
            lb_ip_pools=dict(type="list", elements="dict", default=[]),
            values=dict(type="dict"),
            chart_version=dict(type="str", default="1.20.0"),
            helm=dict(type="dict", default={}, options=dict(
                release_name=dict(type="str", default="cilium"),
                namespace=dict(type="str", default="kube-system"),
                chart_ref=dict(type="str", default="cilium"),
                chart_repo_url=dict(type="str", default=DEFAULT_CHART_REPO),
                timeout=dict(type="str", default="15m0s"),
                history_max=dict(type="int", default=10),
                kubeconfig=dict(type="path"),
                context=dict(type="str"),
                binary_path=dict(type="path"),
            )),
            release=dict(type="dict"),
            allow_upgrade=dict(type="bool", default=False),
            preflight=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("spec", "values")],
        required_one_of=[("spec", "values")],
        supports_check_mode=True,
    )
    try:
        result = run(module.params)
    except CollectionError as err:
        module.fail_json(msg=str(err))
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = diff
    result["value_warnings"] = result.pop("warnings")
    for warning in result["value_warnings"]:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
