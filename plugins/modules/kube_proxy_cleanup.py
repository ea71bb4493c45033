#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kube_proxy_cleanup
short_description: Remove what kube-proxy left on a node, and nothing else
version_added: 0.1.0
description:
  - Removes the state kube-proxy (iptables, IPVS or nftables mode) leaves on a node after its
    DaemonSet is gone, so that only Cilium's kube-proxy replacement handles services.
  - "iptables and ip6tables, for each backend in O(backends) that the node has: every C(KUBE-*)
    chain in every table, and every rule of another chain that jumps (C(-j)) or goes (C(-g)) to
    one. Every other chain and rule stays exactly as it was, with its counters: Cilium's
    C(CILIUM_*) chains, Docker's, the administrator's, and rules that only mention C(KUBE) in a
    comment."
  - Each table that changes is read with C(iptables-save -c) right before it is written, and
    written back without kube-proxy's state with one C(iptables-restore -c -T <table>), which
    replaces the table atomically (not a rule-by-rule deletion).
  - The nftables tables C(ip kube-proxy) and C(ip6 kube-proxy) (kube-proxy's nftables mode,
    Kubernetes 1.29 and later).
  - The IPVS virtual services kube-proxy created (addresses on O(ipvs_interface) or in
    O(service_cidrs), and NodePort services on the node's own addresses), the C(KUBE-*) ipsets of
    its IPVS mode, and the O(ipvs_interface) dummy interface.
  - Idempotent; in check mode it only reports what it would remove; with C(--diff) it shows each
    changed table before and after.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  families:
    description: IP families to clean (C(iptables) and the C(ip) nft table, C(ip6tables) and C(ip6)).
    type: list
    elements: str
    choices: [ipv4, ipv6]
    default: [ipv4, ipv6]
  backends:
    description:
      - iptables backends to clean. C(nft) uses C(iptables-nft-save)/C(-restore), C(legacy)
        C(iptables-legacy-save)/C(-restore); where only C(iptables-save) exists, its
        C(--version) says which backend it is.
      - A backend whose programs are missing is skipped and reported under RV(backends). The
        legacy backend is only read when the kernel has legacy tables (C(/proc/net/ip_tables_names)
        lists some), so reading never loads kernel modules.
    type: list
    elements: str
    choices: [nft, legacy]
    default: [nft, legacy]
  keep_chains:
    description:
      - C(KUBE-*) chains to leave in place, with the rules that jump to them.
      - kubelet, not kube-proxy, creates C(KUBE-IPTABLES-HINT), C(KUBE-KUBELET-CANARY) and
        C(KUBE-FIREWALL) and re-creates them within a minute; list them here on a node whose
        kubelet runs, so that a second run changes nothing.
    type: list
    elements: str
    default: []
  iptables:
    description: Clean iptables and ip6tables.
    type: bool
    default: true
  nftables:
    description: Delete the C(ip kube-proxy) and C(ip6 kube-proxy) nftables tables.
    type: bool
    default: true
  ipvs:
    description: Delete kube-proxy's IPVS virtual services (needs C(ipvsadm) where the kernel has IPVS).
    type: bool
    default: true
  ipsets:
    description: Destroy the C(KUBE-*) ipsets of kube-proxy's IPVS mode (when C(ipset) is installed).
    type: bool
    default: true
  ipvs_interface:
    description:
      - The dummy interface kube-proxy's IPVS mode puts service addresses on; deleted when present.
      - An empty string leaves interfaces alone.
    type: str
    default: kube-ipvs0
  service_cidrs:
    description: The cluster's service CIDRs; IPVS virtual services on these addresses are kube-proxy's.
    type: list
    elements: str
    default: []
  nodeport_range:
    description: The NodePort range; IPVS virtual services on a node address with such a port are kube-proxy's.
    type: str
    default: 30000-32767
  wait:
    description: Seconds C(iptables-legacy-restore) waits for the xtables lock held by another program.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: Reads everything and reports what would be removed, without removing it.
  diff_mode:
    support: full
    description: Shows each changed iptables table before and after, and every removed nftables table,
      IPVS service, ipset and interface.
  platform:
    support: full
    platforms: posix
    description: Linux nodes with iptables 1.4 or later (nft and legacy backends), nft, ipvsadm, ipset and iproute2 as present.
notes:
  - Run it only after kube-proxy's pods are gone; a running kube-proxy writes its rules back.
  - Rules another program adds to a table in the milliseconds between the read and the write of
    that table are lost; Cilium and kubelet add theirs back on their next sync.
  - A table that iptables-nft cannot represent completely (base chains or expressions added with
    C(nft)) is never written; the module fails and names it.
  - ip6tables-nft 1.8.9 (Debian 12) does not restore rule counters, so kept IPv6 rules on
    nft-backed nodes start counting from zero; rules and their order are unchanged.
seealso:
  - name: Cilium kube-proxy free
    description: Running Cilium without kube-proxy.
    link: https://docs.cilium.io/en/stable/network/kubernetes/kubeproxy-free/
  - module: zerotrust.cilium.kernel_facts
"""

EXAMPLES = r"""
- name: Remove kube-proxy's leftovers, keeping the chains kubelet re-creates
  zerotrust.cilium.kube_proxy_cleanup:
    keep_chains: [KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY, KUBE-FIREWALL]
    service_cidrs: [10.96.0.0/12]
  register: kube_proxy_leftovers

- name: Show what would be removed, without removing it
  zerotrust.cilium.kube_proxy_cleanup:
  check_mode: true
  register: kube_proxy_leftovers

- name: Report the removed rules per family and table
  ansible.builtin.debug:
    msg: "{{ kube_proxy_leftovers.counts }}"
"""

RETURN = r"""
iptables:
  description: Every iptables table that had (or, in check mode, has) kube-proxy's state.
  returned: always
  type: list
  elements: dict
  contains:
    family:
      description: C(ipv4) or C(ipv6).
      type: str
    backend:
      description: C(nft) or C(legacy).
      type: str
    table:
      description: Table name.
      type: str
    removed_chains:
      description: Chains removed.
      type: list
      elements: str
    removed_rules:
      description: Rules removed, as C(iptables-save) prints them (without counters).
      type: list
      elements: str
  sample:
    - family: ipv4
      backend: nft
      table: nat
      removed_chains: [KUBE-SERVICES, KUBE-SVC-NPX46M4PTMTKRN6Y]
      removed_rules: ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
counts:
  description: Chains and rules removed per family and table, both backends added up.
  returned: always
  type: dict
  sample: {ipv4: {nat: {chains: 21, rules: 48}, filter: {chains: 8, rules: 15}}, ipv6: {}}
backends:
  description: The iptables programs found per family and backend, and whether the backend had tables.
  returned: always
  type: list
  elements: dict
  sample:
    - {family: ipv4, backend: nft, available: true, in_use: true, save: /usr/sbin/iptables-nft-save}
    - {family: ipv4, backend: legacy, available: true, in_use: false, save: /usr/sbin/iptables-legacy-save}
nftables:
  description: kube-proxy's nftables tables.
  returned: always
  type: dict
  sample: {available: true, removed: [ip kube-proxy, ip6 kube-proxy]}
ipvs:
  description: kube-proxy's IPVS virtual services; C(available) is false when the kernel has no IPVS.
  returned: always
  type: dict
  sample: {available: false, reason: /proc/net/ip_vs does not exist (no IPVS in the kernel), removed: []}
ipsets:
  description: kube-proxy's ipsets.
  returned: always
  type: dict
  sample: {available: true, removed: [KUBE-CLUSTER-IP, KUBE-LOOP-BACK]}
interface:
  description: The O(ipvs_interface) dummy interface.
  returned: always
  type: dict
  sample: {name: kube-ipvs0, present: true, kind: dummy, addresses: [10.96.0.1/32], removed: true}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError
from ansible_collections.zerotrust.cilium.plugins.module_utils.kube_proxy import (
    DEFAULT_NODEPORT_RANGE,
    FAMILIES,
    KUBE_IPVS_INTERFACE,
    clean_iptables_save,
    iptables_backend_from_version,
    parse_ipvsadm_save,
    parse_nft_tables,
    parse_port_range,
    select_ipsets,
    select_ipvs_services,
    select_nft_tables,
    validate_chain_names,
)

SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"]
LEGACY_TABLE_NAMES = {"ipv4": "/proc/net/ip_tables_names", "ipv6": "/proc/net/ip6_tables_names"}
IPVS_PROC = "/proc/net/ip_vs"
COMMAND_PREFIX = {"ipv4": "iptables", "ipv6": "ip6tables"}


class CleanupFailed(CollectionError):
    """A program failed; the message names it, its exit code and what it printed."""


class Cleanup(object):
    """Reads (and, outside check mode, removes) kube-proxy's state on this node."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.changed = False
        self.diff = []
        self.result = {
            "iptables": [],
            "counts": dict((family, {}) for family in self.params["families"]),
            "backends": [],
            "nftables": {"available": False, "removed": []},
            "ipvs": {"available": False, "reason": "not checked", "removed": []},
            "ipsets": {"available": False, "removed": []},
            "interface": {"name": self.params["ipvs_interface"], "present": False, "kind": None, "addresses": [],
                          "removed": False},
        }

    def binary(self, name):
        return self.module.get_bin_path(name, opt_dirs=SBIN)

    def run(self, arguments, data=None, allowed_rc=(0,)):
        rc, out, err = self.module.run_command(arguments, data=data, binary_data=True)
        if rc not in allowed_rc:
            raise CleanupFailed("kube_proxy_cleanup: '%s' failed with exit code %d: %s"
                                % (" ".join(arguments), rc, (err or out).strip()))
        return rc, out, err

    # ----------------------------------------------------------------------- iptables

    def iptables_tools(self, family, backend):
        prefix = COMMAND_PREFIX[family]
        save = self.binary("%s-%s-save" % (prefix, backend))
        restore = self.binary("%s-%s-restore" % (prefix, backend))
        if save and restore:
            return save, restore
        save = self.binary("%s-save" % prefix)
        restore = self.binary("%s-restore" % prefix)
        if save and restore:
            rc, out, err = self.run([save, "--version"], allowed_rc=(0, 1, 2))
            if iptables_backend_from_version(out + err) == backend:
                return save, restore
        return None, None

    def legacy_in_use(self, family):
        try:
            with open(LEGACY_TABLE_NAMES[family]) as handle:
                return bool(handle.read().split())
        except (IOError, OSError):
            return False

    def clean_iptables(self, keep):
        for family in self.params["families"]:
            for backend in self.params["backends"]:
                save, restore = self.iptables_tools(family, backend)
                entry = {"family": family, "backend": backend, "available": bool(save), "in_use": False,
                         "save": save}
                self.result["backends"].append(entry)
                if not save:
                    continue
                if backend == "legacy" and not self.legacy_in_use(family):
                    continue
                self.clean_backend(family, backend, save, restore, keep, entry)

    def read_plan(self, save, keep, where):
        return clean_iptables_save(self.run([save, "-c"])[1], keep_chains=keep, where=where)

    def clean_backend(self, family, backend, save, restore, keep, entry):
        where = "%s (%s %s)" % (os.path.basename(save), family, backend)
        plan = self.read_plan(save, keep, where)
        entry["in_use"] = bool(plan["tables"])
        changed = [table for table in plan["tables"] if table["changed"]]
        for table in changed:
            if table["unsafe"]:
                raise CleanupFailed(
                    "kube_proxy_cleanup: %s table %r holds kube-proxy rules but cannot be rewritten with iptables: %s; "
                    "nothing was changed in this backend; remove the KUBE-* chains of that table by hand with 'nft'"
                    % (where, table["table"], table["unsafe"]))
        for table in changed:
            if not self.check_mode:
                table = self.write_table(save, restore, backend, keep, where, table["table"])
                if table is None:
                    continue
            self.record_table(family, backend, table)
        if changed and not self.check_mode:
            left = [table["table"] for table in self.read_plan(save, keep, where)["tables"] if table["changed"]]
            if left:
                raise CleanupFailed("kube_proxy_cleanup: %s: kube-proxy state is still present in table(s) %s after "
                                    "the restore; is kube-proxy still running?" % (where, ", ".join(left)))

    def write_table(self, save, restore, backend, keep, where, name):
        """Read the table again right before writing it, so that the newest rules are kept."""
        fresh = [table for table in self.read_plan(save, keep, where)["tables"] if table["table"] == name]
        if not fresh or not fresh[0]["changed"]:
            return None
        table = fresh[0]
        if table["unsafe"]:
            raise CleanupFailed("kube_proxy_cleanup: %s table %r cannot be rewritten with iptables: %s"
                                % (where, name, table["unsafe"]))
        arguments = [restore, "-c", "-T", name]
        if backend == "legacy":
            arguments += ["-w", str(self.params["wait"])]
        self.run(arguments, data=table["restore"])
        return table

    def record_table(self, family, backend, table):
        self.changed = True
        self.result["iptables"].append({
            "family": family, "backend": backend, "table": table["table"],
            "removed_chains": table["removed_chains"], "removed_rules": table["removed_rules"],
        })
        counts = self.result["counts"][family].setdefault(table["table"], {"chains": 0, "rules": 0})
        counts["chains"] += len(table["removed_chains"])
        counts["rules"] += len(table["removed_rules"])
        header = "%s %s (%s) table %s" % (COMMAND_PREFIX[family], family, backend, table["table"])
        self.diff.append({"before_header": header, "after_header": header,
                          "before": table["before"], "after": table["after"]})

    # --------------------------------------------------------------- nftables, ipsets

    def clean_nftables(self):
        nft = self.binary("nft")
        if not nft:
            return
        self.result["nftables"]["available"] = True
        tables = select_nft_tables(parse_nft_tables(self.run([nft, "list", "tables"])[1]), self.params["families"])
        for family, name in tables:
            listing = self.run([nft, "list", "table", family, name])[1]
            if not self.check_mode:
                self.run([nft, "delete", "table", family, name])
            self.changed = True
            self.result["nftables"]["removed"].append("%s %s" % (family, name))
            header = "nft table %s %s" % (family, name)
            self.diff.append({"before_header": header, "after_header": header, "before": listing, "after": ""})

    def clean_ipsets(self):
        ipset = self.binary("ipset")
        if not ipset:
            return
        self.result["ipsets"]["available"] = True
        names = select_ipsets(self.run([ipset, "list", "-n"])[1].split())
        for name in names:
            if not self.check_mode:
                self.run([ipset, "destroy", name])
            self.changed = True
            self.result["ipsets"]["removed"].append(name)
        if names:
            self.diff.append({"before_header": "ipsets", "after_header": "ipsets",
                              "before": "".join(name + "\n" for name in names), "after": ""})

    # --------------------------------------------------------------- IPVS, interface

    def addresses(self, ip, device=None):
        arguments = [ip, "-j", "addr", "show"] + (["dev", device] if device else [])
        rc, out, err = self.run(arguments, allowed_rc=(0, 1))
        if rc != 0:
            return None
        try:
            links = json.loads(out or "[]")
        except ValueError:
            raise CleanupFailed("kube_proxy_cleanup: '%s' did not print JSON; iproute2 4.14 or later is needed"
                                % " ".join(arguments))
        return links

    def interface_state(self, ip):
        name = self.params["ipvs_interface"]
        if not name or not ip:
            return None
        rc, out, err = self.run([ip, "-d", "-j", "link", "show", "dev", name], allowed_rc=(0, 1))
        if rc != 0:
            return None
        try:
            links = json.loads(out or "[]")
        except ValueError:
            raise CleanupFailed("kube_proxy_cleanup: 'ip -d -j link show dev %s' did not print JSON; iproute2 4.14 "
                                "or later is needed" % name)
        kind = ((links[0].get("linkinfo") or {}).get("info_kind")) if links else None
        addresses = []
        for link in self.addresses(ip, name) or []:
            for address in link.get("addr_info") or []:
                addresses.append("%s/%s" % (address.get("local"), address.get("prefixlen")))
        return {"kind": kind, "addresses": addresses}

    def clean_ipvs(self, ip, interface):
        ipvs = self.result["ipvs"]
        if not os.path.exists(IPVS_PROC):
            ipvs.update(available=False, reason="%s does not exist (no IPVS in the kernel, or ip_vs not loaded)"
                        % IPVS_PROC)
            return
        ipvs.update(available=True, reason=None)
        ipvsadm = self.binary("ipvsadm")
        if not ipvsadm:
            with open(IPVS_PROC) as handle:
                listed = [line for line in handle.read().splitlines()[3:] if line and not line.startswith(" ")]
            if listed:
                raise CleanupFailed("kube_proxy_cleanup: the kernel has %d IPVS virtual service(s) but ipvsadm is not "
                                    "installed; install ipvsadm or set ipvs: false" % len(listed))
            return
        services = parse_ipvsadm_save(self.run([ipvsadm, "-S", "-n"])[1])
        node_addresses = []
        for link in (self.addresses(ip) if ip else None) or []:
            node_addresses.extend(address.get("local") for address in link.get("addr_info") or []
                                  if address.get("local"))
        selected = select_ipvs_services(
            services,
            interface_addresses=[address.split("/")[0] for address in (interface or {}).get("addresses", [])],
            service_cidrs=self.params["service_cidrs"], node_addresses=node_addresses,
            nodeport_range=self.params["nodeport_range"], where="kube_proxy_cleanup")
        removed = []
        for service in selected:
            if not self.check_mode:
                self.run([ipvsadm, "-D", service["option"], service["spec"]])
            removed.append("%s %s" % (service["option"], service["spec"]))
        if removed:
            self.changed = True
            ipvs["removed"] = removed
            kept = ["%s %s" % (service["option"], service["spec"]) for service in services if service not in selected]
            self.diff.append({"before_header": "IPVS virtual services", "after_header": "IPVS virtual services",
                              "before": "".join(line + "\n" for line in removed + kept),
                              "after": "".join(line + "\n" for line in kept)})

    def clean_interface(self, ip, interface):
        state = self.result["interface"]
        if interface is None:
            return
        state.update(present=True, kind=interface["kind"], addresses=interface["addresses"])
        if not self.check_mode:
            self.run([ip, "link", "delete", "dev", state["name"]])
        state["removed"] = True
        self.changed = True
        header = "interface %s" % state["name"]
        self.diff.append({"before_header": header, "after_header": header,
                          "before": "%s (%s): %s\n" % (state["name"], interface["kind"] or "unknown kind",
                                                       ", ".join(interface["addresses"]) or "no addresses"),
                          "after": ""})

    def execute(self):
        keep = validate_chain_names(self.params["keep_chains"], where="kube_proxy_cleanup")
        parse_port_range(self.params["nodeport_range"], where="kube_proxy_cleanup")
        ip = self.binary("ip")
        interface = self.interface_state(ip)
        if self.params["ipvs"]:
            self.clean_ipvs(ip, interface)
        else:
            self.result["ipvs"].update(reason="not asked (ipvs: false)")
        if self.params["iptables"]:
            self.clean_iptables(keep)
        if self.params["ipsets"]:
            self.clean_ipsets()
        if self.params["nftables"]:
            self.clean_nftables()
        self.clean_interface(ip, interface)


def main():
    argument_spec = dict(
        families=dict(type="list", elements="str", choices=list(FAMILIES), default=list(FAMILIES)),
        backends=dict(type="list", elements="str", choices=["nft", "legacy"], default=["nft", "legacy"]),
        keep_chains=dict(type="list", elements="str", default=[]),
        iptables=dict(type="bool", default=True),
        nftables=dict(type="bool", default=True),
        ipvs=dict(type="bool", default=True),
        ipsets=dict(type="bool", default=True),
        ipvs_interface=dict(type="str", default=KUBE_IPVS_INTERFACE),
        service_cidrs=dict(type="list", elements="str", default=[]),
        nodeport_range=dict(type="str", default=DEFAULT_NODEPORT_RANGE),
        wait=dict(type="int", default=10),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    cleanup = Cleanup(module)
    try:
        cleanup.execute()
    except CollectionError as err:
        module.fail_json(msg=str(err), changed=cleanup.changed, **cleanup.result)
    result = dict(cleanup.result, changed=cleanup.changed)
    if module._diff:
        result["diff"] = cleanup.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
