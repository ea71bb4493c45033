#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtu_probe
short_description: Prove the path MTU to other hosts with don't-fragment pings
version_added: 0.1.0
description:
  - For each target, finds the largest don't-fragment ICMP echo request that gets an answer,
    searching between the address family's minimum (68 bytes for IPv4, 1280 for IPv6) and
    O(expected_mtu), and classifies the path.
  - C(ok) means a packet of exactly O(expected_mtu) bytes gets an answer.
  - C(refused_locally) means larger packets are refused with a PMTU error, either by the
    local kernel (C(message too long, mtu=N)) or by an ICMP C(fragmentation needed) or
    C(packet too big) message from a router. The sender then knows the path MTU and
    nothing is lost silently.
  - C(black_hole) means packets from some size up leave and nothing comes back, neither an
    answer nor an error, while smaller packets get through. This is what an overlay MTU
    that is too large looks like when the network drops fragments or ICMP
    C(fragmentation needed).
  - C(unreachable) means even the smallest packet gets no answer, or the first size that
    fails gets an error that is not a PMTU error.
  - Sizes are IP packet sizes, the numbers an MTU limits. The ICMP payload that C(ping -s)
    takes is 28 bytes less for IPv4 and 48 bytes less for IPv6.
  - Runs optionally inside a named network namespace (C(ip netns exec)), to probe from a
    pod's point of view.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  targets:
    description:
      - Addresses to probe. Each item is an IP address or host name, or a mapping with
        C(address) and an optional C(name) used in the results.
      - Names must be unique.
    type: list
    elements: raw
    required: true
  expected_mtu:
    description:
      - MTU the sender uses toward the targets, in bytes. For pods this is the route MTU
        C(zerotrust.cilium.cilium_mtu) computes, for node-to-node paths the underlay MTU.
      - A packet of exactly this size is sent first. When it gets an answer, the path is
        C(ok) after one probe.
    type: int
    required: true
  netns:
    description:
      - Name of a network namespace (as listed by C(ip netns list)) to send the probes
        from. Omit it to probe from the host's own namespace.
    type: str
  family:
    description:
      - Address family of the probes. V(auto) takes it from each target's address, and
        resolves host names.
    type: str
    choices: [auto, ipv4, ipv6]
    default: auto
  timeout:
    description:
      - Seconds to wait for the answer to one probe (C(ping -W)). Fractions are allowed.
    type: float
    default: 1.0
  retries:
    description:
      - How many more times a probe that got neither an answer nor an error is sent before
        its size counts as lost. One lost packet then does not look like a black hole.
    type: int
    default: 1
  fail_on:
    description:
      - Statuses that make the task fail. The results are returned in either case.
      - Set it to V([]) to collect results and decide in the playbook.
    type: list
    elements: str
    choices: [ok, refused_locally, black_hole, unreachable]
    default: [black_hole, unreachable]
attributes:
  check_mode:
    support: full
    description: The module only sends probes and reads the answers, so it runs in check mode too.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
requirements:
  - iputils C(ping) on the host (package C(iputils-ping) on Debian and Ubuntu, C(iputils)
    on RHEL, Fedora and SUSE). busybox and GNU inetutils ping cannot set the don't-fragment
    bit and are refused with a message that says so.
  - iproute2 C(ip) when O(netns) is set.
  - Root, or the capabilities to enter a network namespace, when O(netns) is set.
notes:
  - Probes to different targets run in parallel, up to eight at a time; the sizes toward
    one target are probed one after another.
  - A path that loses packets above some size costs about (1 + O(retries)) x O(timeout)
    seconds for each lost size the search tries, usually four or five.
  - The local kernel remembers PMTU errors (PMTU exceptions, ten minutes by default);
    later probes to the same address are then refused locally with the learnt MTU.
seealso:
  - plugin: zerotrust.cilium.cilium_mtu
    plugin_type: filter
    description: The MTU Cilium gives pods, the usual O(expected_mtu).
"""

EXAMPLES = r"""
- name: Probe every other lab pod from this node's pod namespace
  zerotrust.cilium.mtu_probe:
    netns: zt-pod
    expected_mtu: "{{ (1500 | zerotrust.cilium.cilium_mtu(tunnel='vxlan')).route_mtu }}"
    targets:
      - name: zt-lab-w1
        address: 10.42.21.10
      - name: zt-lab-w2
        address: 10.42.22.10
  register: pod_mtu

- name: Probe the underlay between nodes and only collect the results
  zerotrust.cilium.mtu_probe:
    expected_mtu: 9000
    targets: "{{ groups['k8s_cluster'] | difference([inventory_hostname]) | map('extract', hostvars, 'ansible_host') | list }}"
    timeout: 0.5
    fail_on: []
  register: underlay_mtu

- name: Show where the path breaks
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.status }}, path MTU {{ item.path_mtu }}: {{ item.message }}"
  loop: "{{ underlay_mtu.results }}"
"""

RETURN = r"""
expected_mtu:
  description: The O(expected_mtu) the probes were measured against.
  returned: always
  type: int
  sample: 1450
path_mtu:
  description: Smallest path MTU observed over all targets; null when no target answered at all.
  returned: always
  type: int
  sample: 1450
netns:
  description: Network namespace the probes were sent from, null for the host's own.
  returned: always
  type: str
  sample: zt-pod
statuses:
  description: How many targets got each status.
  returned: always
  type: dict
  sample: {ok: 1, refused_locally: 0, black_hole: 1, unreachable: 0}
results:
  description: One entry per target, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Target name (the address when no name was given).
      type: str
      sample: zt-lab-w1
    address:
      description: Address as given.
      type: str
      sample: 10.42.21.10
    probed_address:
      description: IP address the probes went to (the resolved address for a host name).
      type: str
      sample: 10.42.21.10
    family:
      description: C(ipv4) or C(ipv6).
      type: str
      sample: ipv4
    status:
      description: C(ok), C(refused_locally), C(black_hole) or C(unreachable).
      type: str
      sample: black_hole
    expected_mtu:
      description: The expected MTU.
      type: int
      sample: 1500
    path_mtu:
      description: Largest packet size that got an answer; null when none did.
      type: int
      sample: 1450
    black_hole_from:
      description: For C(black_hole), the smallest size that is lost silently; else null.
      type: int
      sample: 1451
    refused_from:
      description: For C(refused_locally), the smallest size that is refused; else null.
      type: int
      sample: null
    reported_mtu:
      description: For C(refused_locally), the MTU the PMTU error named, when it named one.
      type: int
      sample: null
    refused_by:
      description: For C(refused_locally), C(local) or the address of the router that refused.
      type: str
      sample: null
    fix_mtu:
      description: When the status is not C(ok), the MTU that would make the path work
        (the largest size that got an answer); else null.
      type: int
      sample: 1450
    message:
      description: One sentence about the path.
      type: str
      sample: DF packets from 1451 bytes are lost silently (black hole); 1450 gets through; an MTU of 1450 fixes it
    probes:
      description: Every probe sent, in order, with its size, ping payload, outcome
        (C(answer), C(refused), C(timeout), C(error)), reported MTU, source of an error and
        the line of ping output it was read from.
      type: list
      elements: dict
      sample: [{size: 1500, payload: 1472, outcome: timeout, reported_mtu: null, source: null,
                detail: "1 packets transmitted, 0 received, 100% packet loss, time 0ms"}]
"""

import os
import socket
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError, InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.mtu_probe import (
    FAMILIES,
    MODULE_NAME,
    STATUSES,
    address_family,
    describe,
    normalise_targets,
    parse_ping,
    ping_command,
    ping_flavour,
    probe_path,
    summarise,
    validate_expected_mtu,
)

PING_PACKAGES = "iputils-ping on Debian and Ubuntu, iputils on RHEL, Fedora and SUSE"
MAX_PARALLEL = 8
NETNS_DIR = "/run/netns"


class ProbeSetupError(CollectionError):
    """A tool is missing or the host cannot run the probes."""


def find_ping(module):
    ping = module.get_bin_path("ping")
    if ping is None:
        raise ProbeSetupError(
            "%s: needs ping from iputils, and there is no ping on %s; install %s"
            % (MODULE_NAME, socket.gethostname(), PING_PACKAGES))
    rc, stdout, stderr = module.run_command([ping, "-V"], environ_update={"LC_ALL": "C"})
    flavour = ping_flavour(stdout + stderr)
    if flavour in ("busybox", "inetutils"):
        raise ProbeSetupError(
            "%s: %s is %s ping, which cannot set the don't-fragment bit (-M do); install %s"
            % (MODULE_NAME, ping, flavour, PING_PACKAGES))
    if flavour != "iputils":
        raise ProbeSetupError(
            "%s: %s is not iputils ping ('ping -V' said %r); install %s"
            % (MODULE_NAME, ping, (stdout + stderr).strip()[:120], PING_PACKAGES))
    return ping


def check_netns(module, netns):
    if not netns:
        return None
    ip = module.get_bin_path("ip")
    if ip is None:
        raise ProbeSetupError(
            "%s: netns %r needs the ip command from iproute2 (package iproute2 on Debian, Ubuntu "
            "and RHEL); it is not installed" % (MODULE_NAME, netns))
    if "/" in netns or netns in (".", ".."):
        raise InvalidInput("netns", netns, "is not a network namespace name", where=MODULE_NAME)
    if not os.path.exists(os.path.join(NETNS_DIR, netns)):
        existing = sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []
        raise InvalidInput("netns", netns, "does not exist on %s (ip netns list: %s)"
                           % (socket.gethostname(), ", ".join(existing) or "none"), where=MODULE_NAME)
    return ip


def resolve(target, family):
    """(probed address, family) for a target; host names are resolved here."""
    literal_family = address_family(target["address"])
    if literal_family is not None:
        if family != "auto" and family != literal_family:
            raise InvalidInput("targets", target["address"],
                               "is an %s address but family is %s" % (literal_family, family),
                               where=MODULE_NAME)
        return target["address"], literal_family
    wanted = {"auto": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[family]
    try:
        infos = socket.getaddrinfo(target["address"], None, wanted, socket.SOCK_RAW)
    except socket.gaierror as err:
        raise InvalidInput("targets", target["address"], "cannot be resolved: %s" % err, where=MODULE_NAME)
    address = infos[0][4][0]
    return address, address_family(address)


def run_probes(module, ping, netns, targets, expected_mtu, timeout, retries):
    def probe_one(target):
        address, family = resolve(target, module.params["family"])
        validate_expected_mtu(expected_mtu, family)

        def send(size):
            argv = ping_command(address, size, family, timeout, netns=netns)
            argv[argv.index("ping")] = ping
            rc, stdout, stderr = module.run_command(argv, environ_update={"LC_ALL": "C"})
            return parse_ping(rc, stdout, stderr)

        result = probe_path(send, expected_mtu, family=family, retries=retries)
        result.update(name=target["name"], address=target["address"], probed_address=address)
        result["message"] = describe(result)
        result.pop("failed_outcome", None)
        return result

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(targets))) as pool:
        return list(pool.map(probe_one, targets))


def main():
    argument_spec = dict(
        targets=dict(type="list", elements="raw", required=True),
        expected_mtu=dict(type="int", required=True),
        netns=dict(type="str"),
        family=dict(type="str", choices=["auto"] + list(FAMILIES), default="auto"),
        timeout=dict(type="float", default=1.0),
        retries=dict(type="int", default=1),
        fail_on=dict(type="list", elements="str", choices=list(STATUSES),
                     default=["black_hole", "unreachable"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        targets = normalise_targets(params["targets"])
        if not 0 < params["timeout"] <= 60:
            raise InvalidInput("timeout", params["timeout"], "is out of range: give 0.1 to 60 seconds",
                               where=MODULE_NAME)
        if not 0 <= params["retries"] <= 10:
            raise InvalidInput("retries", params["retries"], "is out of range: give 0 to 10", where=MODULE_NAME)
        if params["family"] != "auto":
            validate_expected_mtu(params["expected_mtu"], params["family"])
        ping = find_ping(module)
        check_netns(module, params["netns"])
        timeout = params["timeout"]
        if float(timeout).is_integer():
            timeout = int(timeout)
        results = run_probes(module, ping, params["netns"], targets, params["expected_mtu"], timeout,
                             params["retries"])
    except CollectionError as err:
        module.fail_json(msg=str(err))

    counts, path_mtu = summarise(results)
    output = dict(changed=False, expected_mtu=params["expected_mtu"], path_mtu=path_mtu,
                  netns=params["netns"], statuses=counts, results=results)
    failing = [result for result in results if result["status"] in params["fail_on"]]
    if failing:
        module.fail_json(
            msg="%s: %s" % (MODULE_NAME, "; ".join(
                "%s %s (%s): %s" % (result["status"], result["name"], result["probed_address"], result["message"])
                for result in failing)),
            **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
