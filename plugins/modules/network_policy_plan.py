#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: network_policy_plan
short_description: Generate a zero-trust policy set from declared flows and prove it before it is applied
version_added: 0.1.0
description:
  - Turns declared flows (from a workload or namespace to a workload or to DNS names, on ports, optionally
    with HTTP method and path rules) into the policy objects of a zero-trust rollout, for the namespaces
    under management.
  - Per managed namespace it generates a default deny for ingress and egress, DNS egress to kube-dns on
    UDP and TCP 53 (and to a NodeLocal DNS address when one is given), and API server egress
    (C(toEntities) C(kube-apiserver)) for the workloads that need it. With
    O(policy_enforcement_mode=always) it adds the health-check policy Cilium documents and the DNS
    servers' ingress allow.
  - Each flow becomes an egress allow on the source's side and an ingress allow on the destination's
    side. They are NetworkPolicy objects for plain L3/L4 flows. Flows with HTTP rules or DNS names become
    CiliumNetworkPolicy objects only, because a NetworkPolicy that opens the same port for the same pods
    would make the L7 rule ineffective.
  - Every object is validated against the Kubernetes schema of O(kubernetes_version) (NetworkPolicy,
    through kubernetes-validate) or against the CRD schema of CiliumNetworkPolicy and
    CiliumClusterwideNetworkPolicy shipped with the collection.
  - Proves the set with the collection's reachability engine (see M(zerotrust.cilium.policy_plan)), run on
    the generated objects plus the policies that are already there. The proof fails when a declared flow
    would be denied, when a pod of a managed namespace would lose DNS, when an L7 rule is shadowed by an
    L4 allow, or when anything undeclared would be allowed to or from a managed pod. Pairs that only
    O(extra_policies) allow are reported as opted in, not as violations.
  - Runs on the controller and talks to no cluster. In render mode the pods are made up from
    O(workloads). In apply mode the role passes the cluster's namespaces, pods and policies as
    O(cluster), as C(kubernetes.core.k8s_info) returned them.
  - The module never changes anything and always returns C(changed=false). A refused proof is returned
    as C(proof.ok=false) in RV(proof), not as a failure; bad input fails with a message that names the flow or policy
    and the field.
  - See C(docs/network-policy.md) in the collection for the flow format and a worked example.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  managed_namespaces:
    description:
      - Namespaces that get the default deny and the baseline allows. Flows must touch at least one of them.
    type: list
    elements: str
    required: true
  flows:
    description:
      - Declared flows. Each item has C(name) (a DNS label of at most 40 characters, used in object names),
        C(from), either C(to) or C(to_fqdns), C(ports), and optionally C(http) and C(description).
      - C(from) and C(to) are C(namespace/workload), C(namespace) (every pod of it), or a mapping with
        C(namespace) and either C(workload) or C(selector) (a Kubernetes label selector).
      - C(to_fqdns) lists DNS names (C(api.example.com)) or patterns (C(*.example.com)) outside the cluster.
      - C(ports) lists C(port) (a number or a port name the destination pods serve), C(protocol) (TCP, UDP or
        SCTP; default TCP) and C(endPort) (end of a range).
      - C(http) lists HTTP rules with C(method), C(path), C(host) (regular expressions) and C(headers).
    type: list
    elements: dict
    default: []
  workloads:
    description:
      - Workloads per namespace, namespace to a list of C(name), C(labels), C(ports) (C(name), C(port),
        C(protocol)), C(replicas) and C(service_account).
      - C(labels) is both the workloads' pod labels and the selector flows use for them.
      - In render mode the pods the proof reasons about are made up from them (C(replicas) pods each, named
        C(<name>-<n>)). In apply mode only C(labels) is used; the pods are the cluster's.
      - The DNS servers must be among them in render mode (for example C(kube-system) C(coredns) with the
        label C(k8s-app=kube-dns)).
    type: dict
    default: {}
  cluster:
    description:
      - Apply mode. The cluster's objects as C(kubernetes.core.k8s_info) returns them, C(namespaces),
        C(pods) and C(policies) (NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy).
      - Policies labelled C(app.kubernetes.io/managed-by=zerotrust.cilium) are the ones a previous run
        applied; the new set replaces them. The others stay and take part in the proof.
      - Without it the module works in render mode.
    type: dict
  existing_policies:
    description:
      - Render mode. Policies the cluster already has; they stay and take part in the proof.
    type: list
    elements: dict
    default: []
  dns:
    description:
      - Where DNS is served. C(namespace) (default C(kube-system)), C(selector) (a label selector, default
        C(matchLabels) C(k8s-app=kube-dns)) and C(nodelocal_ip) (the NodeLocal DNSCache address, for example
        C(169.254.20.10); empty for none).
    type: dict
    default: {}
  api_server_access:
    description:
      - Workloads (C(namespace/workload)) or whole managed namespaces (C(namespace)) whose pods talk to the
        Kubernetes API server.
    type: list
    elements: raw
    default: []
  api_server_port:
    description:
      - Port of the API server as pods reach it after service translation (the API server's own port).
    type: int
    default: 6443
  policy_enforcement_mode:
    description:
      - Cilium's C(policyEnforcementMode). With C(always) every endpoint is isolated, so the health endpoints
        and the DNS servers need allows too.
    type: str
    choices: [default, always]
    default: default
  extra_policies:
    description:
      - Policy manifests the user opts into. They are labelled as part of the set, validated, applied with it
        and proven with it; the pairs only they allow are listed in C(opted_in) of RV(proof).
      - NetworkPolicy and CiliumNetworkPolicy objects must be in a managed namespace.
    type: list
    elements: dict
    default: []
  kubernetes_version:
    description:
      - Kubernetes version (C(major.minor)) whose NetworkPolicy schema the objects are validated against.
    type: str
    default: '1.31'
  cluster_name:
    description:
      - Cilium cluster name, matched by the C(cluster) entity.
    type: str
    default: default
  allow_localhost:
    description:
      - Cilium's default C(allow-localhost) behaviour, where the node may always reach its own pods.
    type: bool
    default: true
requirements:
  - kubernetes-validate (on the controller)
  - jsonschema (on the controller)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: The module changes nothing; the role shows the diff of the files it writes.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - Run it on the controller (C(delegate_to) C(localhost)), where kubernetes-validate is installed.
seealso:
  - module: zerotrust.cilium.policy_plan
  - name: Cilium policy audit mode
    description: How to observe would-be drops before enforcing.
    link: https://docs.cilium.io/en/stable/security/policy-creation/
"""

EXAMPLES = r"""
- name: Generate and prove the production policies (render mode)
  zerotrust.cilium.network_policy_plan:
    managed_namespaces: [production, data]
    workloads:
      production:
        - {name: frontend, labels: {app: frontend}, replicas: 2, ports: [{name: http, port: 80}]}
        - {name: backend, labels: {app: backend}, replicas: 2, ports: [{name: api, port: 8080}]}
      data:
        - {name: database, labels: {app: database}, ports: [{name: postgres, port: 5432}]}
      kube-system:
        - name: coredns
          labels: {k8s-app: kube-dns}
          ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
    flows:
      - name: frontend-to-backend
        from: production/frontend
        to: production/backend
        ports: [{port: 8080, protocol: TCP}]
        http: [{method: GET, path: /api/v1/data}]
      - name: backend-to-database
        from: production/backend
        to: data/database
        ports: [{port: 5432}]
  delegate_to: localhost
  register: __network_policy_plan

- name: Refuse the set when the proof fails
  ansible.builtin.assert:
    that: __network_policy_plan.proof.ok
    fail_msg: "{{ __network_policy_plan.proof.violations }}"
"""

RETURN = r"""
objects:
  description:
    - The generated objects (and the extra policies), in a stable order. C(file) is the path under the
      render directory (C(<namespace>/<name>.yaml), C(_clusterwide/<name>.yaml) for clusterwide policies).
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the object; null for a clusterwide policy.
      type: str
    kind:
      description: NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy.
      type: str
    name:
      description: Object name.
      type: str
    purpose:
      description: default-deny, dns, dns-ingress, apiserver, health, flow or extra.
      type: str
    flow:
      description: The flow the object implements, for purpose C(flow).
      type: str
    description:
      description: What the object does, in one sentence.
      type: str
    file:
      description: Relative path of the rendered file.
      type: str
    manifest:
      description: The object itself.
      type: dict
proof:
  description:
    - The proof. C(ok) is true when there is no violation. C(violations) lists C(kind) (declared_denied,
      dns_lost, l7_shadowed or undeclared_allowed), C(from) and C(to) (workloads), C(port), C(protocol),
      C(pairs), an C(example) pod pair, C(flow) where one applies, and C(reason) or C(allowed_by).
    - C(matrix) has one table per port with C(columns), and C(rows) of C(from) and C(cells).
    - C(expected_allowed) lists the declared connections by selector, for the checks after enforcement.
  returned: always
  type: dict
  sample:
    ok: false
    violations:
      - kind: l7_shadowed
        flow: frontend-to-backend
        from: production/frontend
        to: production/backend
        port: 8080
        protocol: TCP
        pairs: 4
        example: [production/frontend-0, production/backend-0]
        allowed_by: ["NetworkPolicy production/allow-frontend-to-backend (ingress)"]
report:
  description: The proof as Markdown (verdict, objects, flows, violations and the reachability matrix).
  returned: always
  type: str
summary:
  description: Counts of objects, flows, pods and violations, the mode and the managed namespaces.
  returned: always
  type: dict
changes:
  description:
    - Apply mode. The objects to C(create), C(update) and C(delete) (set objects a previous run applied that
      are no longer generated), the C(unchanged) ones, and C(changed).
  returned: when O(cluster) is given
  type: dict
backup:
  description:
    - Apply mode. The policies of the managed namespaces (and the set's clusterwide policies) as they are
      now, C(file) and C(manifest), to restore them when a check after applying fails.
  returned: when O(cluster) is given
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_generate import plan_policies
from ansible_collections.zerotrust.cilium.plugins.module_utils.netpol_schema import ManifestValidator, MissingLibrary


def main():
    module = AnsibleModule(
        argument_spec=dict(
            managed_namespaces=dict(type="list", elements="str", required=True),
            flows=dict(type="list", elements="dict", default=[]),
            workloads=dict(type="dict", default={}),
            cluster=dict(type="dict"),
            existing_policies=dict(type="list", elements="dict", default=[]),
            dns=dict(type="dict", default={}),
            api_server_access=dict(type="list", elements="raw", default=[]),
            api_server_port=dict(type="int", default=6443),
            policy_enforcement_mode=dict(type="str", choices=["default", "always"], default="default"),
            extra_policies=dict(type="list", elements="dict", default=[]),
            kubernetes_version=dict(type="str", default="1.31"),
            cluster_name=dict(type="str", default="default"),
            allow_localhost=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        validator = ManifestValidator(params["kubernetes_version"])
        result = plan_policies(
            params["managed_namespaces"],
            params["flows"],
            workloads=params["workloads"],
            cluster=params["cluster"],
            existing_policies=params["existing_policies"],
            dns=params["dns"],
            api_server_access=params["api_server_access"],
            api_server_port=params["api_server_port"],
            policy_enforcement_mode=params["policy_enforcement_mode"],
            extra_policies=params["extra_policies"],
            cluster_name=params["cluster_name"],
            allow_localhost=params["allow_localhost"],
            validate_manifest=validator.validate,
        )
    except MissingLibrary as exc:
        module.fail_json(msg=missing_required_lib(exc.library, reason=exc.reason))
    except CollectionError as exc:
        module.fail_json(msg=str(exc))
    for warning in result["proof"]["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
