#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: policy_plan
short_description: Compute which pods can still reach each other under a set of network policies
version_added: 0.1.0
description:
  - Evaluates Kubernetes C(networking.k8s.io/v1) NetworkPolicy and Cilium C(cilium.io/v2)
    CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy manifests together, the way Cilium
    enforces them, and returns the reachability matrix for a list of probes (port and
    protocol), before anything is applied to a cluster.
  - Runs on the controller and talks to no cluster. Pods with the same namespace, labels and
    service account share one identity and one answer, as in Cilium, so large inventories stay fast.
  - NetworkPolicy semantics follow Kubernetes (isolation per direction, union of allows,
    selectors, ipBlock, named ports, port ranges). Cilium semantics come on top, namely
    endpointSelector, fromEndpoints/toEndpoints namespace scoping, entities, CIDR rules, deny
    rules taking precedence, enableDefaultDeny and policyEnforcementMode. HTTP/DNS rules and
    toFQDNs are reported as allowed at L4 and restricted at L7, with the rules attached.
  - CIDR rules and ipBlock peers match addresses outside the cluster only (Cilium's behaviour);
    they never match pod IPs.
  - The module never changes anything; it always returns C(changed=false).
  - See C(docs/policy-engine.md) in the collection for the full list of what is and is not modelled.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  namespaces:
    description:
      - Namespaces of the cluster, name to labels. C(kubernetes.io/metadata.name) is added as the API server does.
    type: dict
    required: true
  pods:
    description:
      - Pods to evaluate.
      - Each item has C(namespace), C(name), C(labels) (dict), C(ip) (optional), C(ports)
        (list of C(name), C(port), C(protocol); protocol defaults to TCP) and C(service_account)
        (optional, default C(default)).
    type: list
    elements: dict
    required: true
  policies:
    description:
      - Policy manifests as dicts. Supported kinds are C(networking.k8s.io/v1) NetworkPolicy,
        C(cilium.io/v2) CiliumNetworkPolicy and C(cilium.io/v2) CiliumClusterwideNetworkPolicy.
      - Fields the engine does not model (for example C(toServices), C(nodeSelector), C(authentication))
        are refused with an error naming them, never ignored.
    type: list
    elements: dict
    default: []
  probes:
    description:
      - Connections to evaluate. Each item has C(port), C(protocol) (TCP, UDP or SCTP; default TCP),
        and optionally C(from) and C(to).
      - C(from)/C(to) take one reference or a list of them; a reference is C(namespace/pod),
        C(namespace/*), C(entity:<name>) (host, remote-node, kube-apiserver, health, ingress, init,
        unmanaged, world) or C(cidr:<address>).
      - Without C(from) every pod is a source; without C(to) every pod serving the port is a destination.
      - When omitted, one probe per port and protocol any pod serves.
    type: list
    elements: dict
  policy_enforcement_mode:
    description:
      - Cilium's C(policyEnforcementMode). C(default) isolates a pod per direction once a policy selects it;
        C(always) isolates every pod; C(never) enforces nothing.
    type: str
    choices: [default, always, never]
    default: default
  explain:
    description:
      - Pairs to explain. Each item is C([from, to]), C([from, to, port]), C([from, to, port, protocol])
        or a dict with those keys. Without a port, every probe's port is explained.
      - The explanation names the policies that select each side, the rules that allow or deny,
        or says that no rule allows the connection.
    type: list
    elements: raw
    default: []
  cluster_name:
    description:
      - Cilium cluster name, matched by the C(io.cilium.k8s.policy.cluster) label and the C(cluster) entity.
    type: str
    default: default
  allow_localhost:
    description:
      - Cilium's default C(allow-localhost) behaviour, where the node may always reach its own pods.
        Set to false when Cilium runs with C(--allow-localhost=policy).
    type: bool
    default: true
  report_pairs:
    description:
      - List every allowed and denied pair. When false, only the counts per probe are returned,
        which keeps the result small for large inventories.
    type: bool
    default: true
notes:
  - Supports check mode; the result is the same in check mode.
seealso:
  - name: Cilium network policy language
    description: How Cilium interprets CiliumNetworkPolicy and NetworkPolicy.
    link: https://docs.cilium.io/en/stable/security/policy/language/
  - name: Kubernetes network policies
    description: The NetworkPolicy semantics the engine follows.
    link: https://kubernetes.io/docs/concepts/services-networking/network-policies/
"""

EXAMPLES = r"""
- name: Compute the reachability matrix of the production policies
  zerotrust.cilium.policy_plan:
    namespaces:
      production: {}
      kube-system: {}
    pods:
      - {namespace: production, name: frontend-0, labels: {app: frontend}, ports: [{name: http, port: 80}]}
      - {namespace: production, name: backend-0, labels: {app: backend}, ports: [{name: api, port: 8080}]}
      - {namespace: kube-system, name: coredns-0, labels: {k8s-app: kube-dns}, ports: [{port: 53, protocol: UDP}]}
    policies: >-
      {{ lookup('ansible.builtin.file', 'files/production-policies.yaml')
         | ansible.builtin.from_yaml_all | list }}
    explain:
      - [production/frontend-0, production/backend-0, 8080]
  register: __network_policy_plan

- name: Check that the API server stays reachable from every pod
  zerotrust.cilium.policy_plan:
    namespaces: "{{ network_policy_namespaces }}"
    pods: "{{ network_policy_pods }}"
    policies: "{{ network_policy_manifests }}"
    policy_enforcement_mode: always
    probes:
      - {port: 6443, protocol: TCP, to: entity:kube-apiserver}
      - {port: 53, protocol: UDP, to: kube-system/*}
    report_pairs: true
  register: __network_policy_api_access

- name: Fail when a pod loses access to the API server
  ansible.builtin.assert:
    that:
      - __network_policy_api_access.reachability[0].denied | length == 0
    fail_msg: "{{ __network_policy_api_access.reachability[0].denied }}"
"""

RETURN = r"""
reachability:
  description:
    - One entry per probe. C(allowed) and C(denied) list C([from, to]) pairs (pods as C(namespace/name),
      self-pairs left out). C(restricted) lists the allowed pairs that only an L7 or toFQDNs rule lets
      through, with those rules. C(counts) gives the numbers.
    - C(allowed), C(denied) and C(restricted) are left out when O(report_pairs=false).
  returned: always
  type: list
  elements: dict
  sample:
    - port: 8080
      protocol: TCP
      counts: {allowed: 1, denied: 1, restricted: 1}
      allowed: [[production/frontend-0, production/backend-0]]
      denied: [[kube-system/coredns-0, production/backend-0]]
      restricted:
        - from: production/frontend-0
          to: production/backend-0
          rules:
            - policy: CiliumNetworkPolicy production/l7-frontend-policy
              rule: spec.ingress[0].toPorts[0]
              direction: ingress
              l7: {http: [{method: GET, path: /api/v1/data}]}
explain:
  description:
    - One entry per explained pair and port. C(verdict) is C(allowed), C(restricted) or C(denied);
      C(egress) (the source's side) and C(ingress) (the destination's side) say whether the side is
      enforced and isolated, which policies select it, and which rules allow or deny; C(reason) sums it up.
  returned: always
  type: list
  elements: dict
identities:
  description: Number of distinct pod identities (namespace, labels and service account), as Cilium counts them.
  returned: always
  type: int
  sample: 3
summary:
  description: Counts of namespaces, pods, policies by kind, identities, probes, isolated pods and pairs.
  returned: always
  type: dict
policy_warnings:
  description:
    - Policy content that Kubernetes or Cilium ignores or rewrites, for example NetworkPolicy
      egress rules when C(policyTypes) does not list Egress. Each one is also issued as a module warning.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol import plan_reachability


def main():
    module = AnsibleModule(
        argument_spec=dict(
            namespaces=dict(type="dict", required=True),
            pods=dict(type="list", elements="dict", required=True),
            policies=dict(type="list", elements="dict", default=[]),
            probes=dict(type="list", elements="dict"),
            policy_enforcement_mode=dict(type="str", choices=["default", "always", "never"], default="default"),
            explain=dict(type="list", elements="raw", default=[]),
            cluster_name=dict(type="str", default="default"),
            allow_localhost=dict(type="bool", default=True),
            report_pairs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = plan_reachability(
            params["namespaces"],
            params["pods"],
            params["policies"],
            probes=params["probes"],
            policy_enforcement_mode=params["policy_enforcement_mode"],
            explain=params["explain"],
            cluster_name=params["cluster_name"],
            allow_localhost=params["allow_localhost"],
            report_pairs=params["report_pairs"],
        )
    except CollectionError as exc:
        module.fail_json(msg=str(exc))
    policy_warnings = result.pop("warnings")
    for warning in policy_warnings:
        module.warn(warning)
    module.exit_json(changed=False, policy_warnings=policy_warnings, **result)


if __name__ == "__main__":
    main()
