# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring one lab node's "pod" and VXLAN overlay to the state a spec describes.

Lab only: playbooks/tasks/lab_overlay.yml runs it on each lab node as
``python3 -c <this file> <spec JSON> check|apply``. It reads the live state with
``ip -j``, ``bridge -j`` and ``nft -j``, works out the commands that would bring the node
to the spec, prints them as JSON (``{"changed": bool, "commands": [...]}``) and, with
``apply``, runs them in order. ``check`` only reads, so it is what Ansible's check mode
runs. A second ``apply`` on a node in the desired state prints no commands.

What the spec describes (every name and number comes from the playbook):

* a network namespace (the pod) with a veth pair: ``host_veth`` on the node, ``eth0`` in
  the pod, both with ``pod_mtu``; the node end holds the pod subnet's first address (the
  pod's gateway), the pod end ``pod_address``;
* a VXLAN device (VNI ``vni``, UDP ``port``, source ``underlay_address``, no learning)
  with ``overlay_mtu``. Like Cilium's ``cilium_vxlan`` it has no lower device: the kernel
  caps a VXLAN device bound to ``eth0`` at eth0's MTU - 50, and the lab must be able to
  set the overlay MTU wrong on purpose. It gets a MAC made from the node's underlay IPv4 address
  (``02:00:<a>:<b>:<c>:<d>``) and the pod subnet's network address as a /32, as flannel
  does; for each peer a route to its pod subnet via its VTEP address (onlink), a permanent
  neighbour entry for that address and an FDB entry sending the peer's MAC to its underlay
  address (``peers``: ``[underlay address, pod address]`` pairs, or mappings with
  ``underlay_address`` and ``pod_address``); routes, neighbours and FDB entries of
  nodes that are no longer peers are removed;
* fault injection in an nftables table of the node's own network namespace
  (``table netdev zt_lab_faults``, plus ``table inet zt_lab_faults`` for ICMP the node
  sends or forwards itself): drop IPv4 fragments at the underlay interface's ingress, and
  drop ICMP "fragmentation needed". The rules are nftables and not iptables on purpose:
  conntrack reassembles fragments before any iptables chain sees them, and the sender
  fragments after POSTROUTING, so an iptables rule never matches a fragment; a netdev
  ingress hook sees the packets as they come off the wire.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import subprocess
import sys

FAULTS_TABLE = "zt_lab_faults"
FAULT_COMMENT_PREFIX = "zerotrust-lab:"


class OverlayError(Exception):
    """A command failed or the spec is unusable."""


def run(argv, check=True):
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    stdout, stderr = process.communicate()
    if check and process.returncode != 0:
        raise OverlayError("%s failed (rc=%d): %s" % (" ".join(argv), process.returncode, stderr.strip()))
    return process.returncode, stdout, stderr


def in_netns(netns, argv):
    return ["ip", "-n", netns] + argv[1:] if argv[0] == "ip" else ["ip", "netns", "exec", netns] + argv


def read_json(argv):
    """JSON output of ``argv``, or [] when the object it lists does not exist."""
    returncode, stdout, _stderr = run(argv, check=False)
    if returncode != 0 or not stdout.strip():
        return []
    return json.loads(stdout)


def vtep_mac(underlay_address):
    octets = ipaddress.IPv4Address(underlay_address).packed
    return "02:00:" + ":".join("%02x" % octet for octet in bytearray(octets))


def node_layout(pod_address, pod_prefix):
    """Pod subnet, gateway (first address) and VTEP address (network address) of a node."""
    interface = ipaddress.IPv4Interface(u"%s/%d" % (pod_address, pod_prefix))
    network = interface.network
    return {
        "subnet": str(network),
        "gateway": str(network.network_address + 1),
        "vtep": str(network.network_address),
        "prefix": pod_prefix,
    }


class Planner:
    """Collects the commands that bring the node to the spec."""

    def __init__(self, spec):
        self.spec = spec
        self.commands = []
        self.mtu_changed = False

    def add(self, *argv):
        self.commands.append(list(argv))

    # --- reads -----------------------------------------------------------------------------

    def link(self, name, netns=None):
        argv = ["ip", "-j", "-d", "link", "show", "dev", name]
        links = read_json(in_netns(netns, argv) if netns else argv)
        return links[0] if links else None

    def ipv4_addresses(self, name, netns=None):
        argv = ["ip", "-j", "-4", "addr", "show", "dev", name]
        entries = read_json(in_netns(netns, argv) if netns else argv)
        found = set()
        for entry in entries:
            for info in entry.get("addr_info", []):
                if info.get("family") == "inet":
                    found.add("%s/%s" % (info["local"], info["prefixlen"]))
        return found

    # --- plan ----------------------------------------------------------------------------

    def plan(self):
        spec = self.spec
        netns = spec["netns"]
        with open("/proc/sys/net/ipv4/ip_forward") as stream:
            if stream.read().strip() != "1":
                self.add("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

        namespaces = [entry.get("name") for entry in read_json(["ip", "-j", "netns", "list"])]
        netns_exists = netns in namespaces and os.path.exists(os.path.join("/run/netns", netns))
        if not netns_exists:
            self.add("ip", "netns", "add", netns)
        self.plan_veth(netns, netns_exists)
        self.plan_vxlan()
        self.plan_faults()
        if self.mtu_changed:
            # Forget PMTU exceptions learnt with the old MTUs, on the node and in the pod.
            self.add("ip", "route", "flush", "cache")
            self.add("ip", "-n", netns, "route", "flush", "cache")
        return self.commands

    def plan_veth(self, netns, netns_exists):
        spec = self.spec
        host_veth, pod_interface, mtu = spec["host_veth"], spec["pod_interface"], spec["pod_mtu"]
        layout = node_layout(spec["pod_address"], spec["pod_prefix"])
        host_link = self.link(host_veth)
        pod_link = self.link(pod_interface, netns) if netns_exists else None
        host_is_veth = host_link is not None and host_link.get("linkinfo", {}).get("info_kind") == "veth"
        pod_is_veth = pod_link is not None and pod_link.get("linkinfo", {}).get("info_kind") == "veth"
        if not (host_is_veth and pod_is_veth):
            if host_link is not None:
                self.add("ip", "link", "del", "dev", host_veth)
            if pod_link is not None:
                self.add("ip", "-n", netns, "link", "del", "dev", pod_interface)
            self.add("ip", "link", "add", host_veth, "mtu", str(mtu), "type", "veth",
                     "peer", "name", pod_interface, "netns", netns, "mtu", str(mtu))
            host_link, pod_link = {}, {}
            self.mtu_changed = True
        if host_link and host_link.get("mtu") != mtu:
            self.add("ip", "link", "set", "dev", host_veth, "mtu", str(mtu))
            self.mtu_changed = True
        if pod_link and pod_link.get("mtu") != mtu:
            self.add("ip", "-n", netns, "link", "set", "dev", pod_interface, "mtu", str(mtu))
            self.mtu_changed = True

        self.plan_addresses(host_veth, None, "%s/%d" % (layout["gateway"], layout["prefix"]), bool(host_link))
        self.plan_addresses(pod_interface, netns, "%s/%d" % (spec["pod_address"], layout["prefix"]),
                            bool(pod_link))
        if "UP" not in (host_link or {}).get("flags", []):
            self.add("ip", "link", "set", "dev", host_veth, "up")
        if "UP" not in (pod_link or {}).get("flags", []):
            self.add("ip", "-n", netns, "link", "set", "dev", pod_interface, "up")
        loopback = self.link("lo", netns) if netns_exists else None
        if "UP" not in (loopback or {}).get("flags", []):
            self.add("ip", "-n", netns, "link", "set", "dev", "lo", "up")

        routes = read_json(["ip", "-n", netns, "-j", "-4", "route", "show", "default"]) if netns_exists else []
        wanted = [route for route in routes
                  if route.get("gateway") == layout["gateway"] and route.get("dev") == pod_interface]
        if len(routes) != 1 or not wanted:
            self.add("ip", "-n", netns, "route", "replace", "default", "via", layout["gateway"],
                     "dev", pod_interface)

    def plan_addresses(self, name, netns, address, exists):
        prefix = ["ip", "-n", netns] if netns else ["ip"]
        present = self.ipv4_addresses(name, netns) if exists else set()
        for stale in sorted(present - {address}):
            self.commands.append(prefix + ["addr", "del", stale, "dev", name])
        if address not in present:
            self.commands.append(prefix + ["addr", "add", address, "dev", name])

    def plan_vxlan(self):
        spec = self.spec
        name, mtu = spec["vxlan_name"], spec["overlay_mtu"]
        layout = node_layout(spec["pod_address"], spec["pod_prefix"])
        link = self.link(name)
        info = (link or {}).get("linkinfo", {})
        data = info.get("info_data", {})
        matches = (
            info.get("info_kind") == "vxlan"
            and data.get("id") == spec["vni"]
            and data.get("port") == spec["port"]
            and data.get("local") == spec["underlay_address"]
            and data.get("link") is None
            and data.get("learning") is False
        )
        if link is not None and not matches:
            self.add("ip", "link", "del", "dev", name)
        if not matches:
            self.add("ip", "link", "add", name, "type", "vxlan", "id", str(spec["vni"]),
                     "dstport", str(spec["port"]), "local", spec["underlay_address"], "nolearning")
            link = {}
        mac = vtep_mac(spec["underlay_address"])
        if link.get("address") != mac:
            self.add("ip", "link", "set", "dev", name, "address", mac)
        if link.get("mtu") != mtu:
            self.add("ip", "link", "set", "dev", name, "mtu", str(mtu))
            self.mtu_changed = True
        self.plan_addresses(name, None, "%s/32" % layout["vtep"], bool(link))
        if "UP" not in link.get("flags", []):
            self.add("ip", "link", "set", "dev", name, "up")

        peers = []
        for peer in spec["peers"]:
            peer_layout = node_layout(peer["pod_address"], spec["pod_prefix"])
            peers.append(dict(peer_layout, mac=vtep_mac(peer["underlay_address"]),
                              underlay=peer["underlay_address"]))

        fdb = read_json(["bridge", "-j", "fdb", "show", "dev", name]) if link else []
        present_fdb = {(entry.get("mac"), entry.get("dst")) for entry in fdb if entry.get("dst")}
        wanted_fdb = {(peer["mac"], peer["underlay"]) for peer in peers}
        for mac_address, destination in sorted(present_fdb - wanted_fdb):
            self.add("bridge", "fdb", "del", mac_address, "dev", name, "dst", destination, "self")
        for mac_address, destination in sorted(wanted_fdb - present_fdb):
            self.add("bridge", "fdb", "replace", mac_address, "dev", name, "dst", destination,
                     "self", "permanent")

        neighbours = read_json(["ip", "-j", "-4", "neigh", "show", "dev", name]) if link else []
        present_neigh = {(entry.get("dst"), entry.get("lladdr")) for entry in neighbours
                         if "PERMANENT" in entry.get("state", [])}
        wanted_neigh = {(peer["vtep"], peer["mac"]) for peer in peers}
        wanted_vteps = {vtep for vtep, _mac in wanted_neigh}
        for address, _mac in sorted(present_neigh - wanted_neigh):
            if address not in wanted_vteps:
                self.add("ip", "neigh", "del", address, "dev", name)
        for address, mac_address in sorted(wanted_neigh - present_neigh):
            self.add("ip", "neigh", "replace", address, "lladdr", mac_address, "dev", name,
                     "nud", "permanent")

        routes = read_json(["ip", "-j", "-4", "route", "show", "dev", name]) if link else []
        present_routes = {(route.get("dst"), route.get("gateway")) for route in routes
                          if route.get("protocol") != "kernel"}
        wanted_routes = {(peer["subnet"], peer["vtep"]) for peer in peers}
        wanted_subnets = {subnet for subnet, _gateway in wanted_routes}
        for destination, _gateway in sorted(present_routes - wanted_routes):
            if destination not in wanted_subnets:
                self.add("ip", "route", "del", destination, "dev", name)
        for destination, gateway in sorted(wanted_routes - present_routes):
            self.add("ip", "route", "replace", destination, "via", gateway, "dev", name, "onlink")

    def desired_fault_rules(self):
        """{family: [(chain, rule text, comment)]} for the switches that are on."""
        spec = self.spec
        device = spec["underlay_interface"]
        rules = {"netdev": [], "inet": []}
        if spec["drop_fragments"]:
            rules["netdev"].append(("underlay_ingress", "ip frag-off & 0x3fff != 0 counter drop",
                                    "drop-ipv4-fragments %s" % device))
        if spec["drop_frag_needed"]:
            frag_needed = "icmp type destination-unreachable icmp code frag-needed counter drop"
            rules["netdev"].append(("underlay_ingress", frag_needed, "drop-frag-needed-in %s" % device))
            rules["inet"].append(("forward", frag_needed, "drop-frag-needed-forwarded"))
            rules["inet"].append(("output", frag_needed, "drop-frag-needed-sent"))
        return rules

    def plan_faults(self):
        device = self.spec["underlay_interface"]
        chains = {
            "netdev": {"underlay_ingress": "type filter hook ingress device \"%s\" priority -500;" % device},
            "inet": {"forward": "type filter hook forward priority -500;",
                     "output": "type filter hook output priority -500;"},
        }
        for family, rules in sorted(self.desired_fault_rules().items()):
            present = read_json(["nft", "-j", "list", "table", family, FAULTS_TABLE])
            present_comments = sorted(
                item["rule"].get("comment", "") for item in (present or {}).get("nftables", [])
                if "rule" in item)
            # nft -j does not show a netdev chain's device (nftables 1.0.6): the rule comments
            # name it instead, so a changed underlay interface changes the comments.
            present_chains = sorted(
                item["chain"]["name"] for item in (present or {}).get("nftables", []) if "chain" in item)
            wanted_comments = sorted(FAULT_COMMENT_PREFIX + rule[2] for rule in rules)
            used_chains = sorted({rule[0] for rule in rules})
            wanted_chains = used_chains
            table_exists = bool(present)
            if not rules:
                if table_exists:
                    self.add("nft", "delete", "table", family, FAULTS_TABLE)
                    self.mtu_changed = True
                continue
            if table_exists and present_comments == wanted_comments and present_chains == wanted_chains:
                continue
            lines = ["table %s %s" % (family, FAULTS_TABLE), "delete table %s %s" % (family, FAULTS_TABLE),
                     "table %s %s {" % (family, FAULTS_TABLE)]
            for chain in used_chains:
                lines.append("  chain %s {" % chain)
                lines.append("    %s" % chains[family][chain])
                for rule_chain, rule, comment in rules:
                    if rule_chain == chain:
                        lines.append("    %s comment \"%s%s\"" % (rule, FAULT_COMMENT_PREFIX, comment))
                lines.append("  }")
            lines.append("}")
            self.add("nft", "-f", "-", "\n".join(lines) + "\n")
            self.mtu_changed = True


def apply(commands):
    for command in commands:
        if command[:3] == ["nft", "-f", "-"]:
            process = subprocess.Popen(command[:3], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, universal_newlines=True)
            stderr = process.communicate(command[3])[1]
            if process.returncode != 0:
                raise OverlayError("nft -f - failed (rc=%d): %s\n%s" % (process.returncode, stderr.strip(),
                                                                        command[3]))
        else:
            run(command)


def normalise(spec):
    """Numbers and switches as Python types, whatever templating made of them."""
    spec = dict(spec)
    for key in ("pod_prefix", "pod_mtu", "overlay_mtu", "vni", "port"):
        spec[key] = int(spec[key])
    spec["peers"] = [
        peer if isinstance(peer, dict) else {"underlay_address": peer[0], "pod_address": peer[1]}
        for peer in spec["peers"]
    ]
    for key in ("drop_fragments", "drop_frag_needed"):
        value = spec.get(key, False)
        if not isinstance(value, bool):
            value = str(value).strip().lower() in ("1", "true", "yes", "on")
        spec[key] = value
    return spec


def main(argv):
    if len(argv) != 3 or argv[2] not in ("check", "apply"):
        sys.stderr.write("usage: lab_overlay.py '<spec JSON>' check|apply\n")
        return 2
    try:
        spec = normalise(json.loads(argv[1]))
        commands = Planner(spec).plan()
        if argv[2] == "apply" and commands:
            apply(commands)
            remaining = Planner(spec).plan()
            if remaining:
                raise OverlayError("the node is still not in the planned state after applying; "
                                   "left to do: %s" % json.dumps(remaining))
    except (OverlayError, OSError, ValueError, KeyError) as err:
        sys.stderr.write("lab_overlay: %s\n" % err)
        print(json.dumps({"changed": False, "commands": [], "error": str(err)}))
        return 1
    print(json.dumps({"changed": bool(commands), "commands": commands}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
