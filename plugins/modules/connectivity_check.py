# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: connectivity_check
short_description: Probe flows and compare what the network does with what was planned
version_added: 0.1.0
description:
  - Runs TCP and UDP connects, HTTP requests (a method and path, for L7 flows), DNS lookups
    and ICMP echo requests, and compares each outcome with the plan's expectation, V(allowed)
    or V(denied). The result is a truth table in which every mismatch is named, such as
    C(expected allowed but blocked) or C(expected denied but open).
  - "O(mode=probe): this host sends every probe itself with sockets (and C(ping) for icmp),
    optionally from inside the network namespace O(netns). The namespace is entered in a
    forked child process; the module's own process never changes namespace. Up to 16 probes
    run at the same time, so a table of blocked probes does not take one timeout per probe."
  - "O(mode=commands): nothing runs. Each result carries C(command), the argv that runs the
    probe inside a pod of the source with the tools of the probe image
    C(registry.k8s.io/e2e-test-images/agnhost): C(/agnhost connect) for tcp and udp, C(curl)
    for http, C(dig) for dns, C(ping) for icmp. Run them, for example with
    C(kubernetes.core.k8s_exec), and pass their output back in O(mode=compare)."
  - "O(mode=compare): nothing runs. O(exec_results) holds the exit code and output of each
    probe's command; they are classified and compared."
  - "What a probe observes, in every mode: V(allowed) (tcp connected, udp got a reply, http
    got a response other than an L7 deny, dns got an answer that is not REFUSED, icmp got an
    echo reply); V(l7_denied) (HTTP 403 with Envoy's body C(Access denied), Cilium's L7 deny,
    or a DNS answer REFUSED, Cilium's DNS proxy deny; compared as denied); V(denied) (nothing
    came back before the timeout: Cilium drops silently); V(no_listener) (connection refused
    by a TCP reset or an ICMP port unreachable: the packet got through but nothing listens);
    V(error) (anything else, such as no route to the address or unexpected tool output)."
  - "How it is compared: V(allowed) matches an allowed expectation. V(denied) and
    V(l7_denied) match a denied expectation; with an allowed one the result's C(kind) is
    C(blocked). V(allowed) and V(no_listener) with a denied expectation are C(open): a refused
    connection proves the packet got through. V(no_listener) with an allowed expectation and
    every V(error) are C(probe_error): the probe workload does not listen, or the probe did
    not work, so the network path cannot be judged."
  - Every input problem is reported at once, before anything is sent.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  mode:
    description:
      - V(probe) sends the probes from this host, V(commands) returns the command of each
        probe for the probe pod, V(compare) reads the output of those commands.
    type: str
    choices: [probe, commands, compare]
    default: probe
  probes:
    description:
      - The probes. Names must be unique.
      - The C(zerotrust.cilium.connectivity_probes) filter builds this list for every ordered
        pair of endpoints and every service.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the probe, used in O(exec_results) and in the results.
          - Defaults to C(FROM -> TO PROTOCOL/PORT) followed by the method and path for http,
            the query for dns, e.g. C(production/frontend -> production/api http/8080 GET /api/v1/data).
        type: str
      from:
        description:
          - The source, a label such as C(production/frontend) or a node name. May not contain C(|).
          - In O(mode=commands) the command must run in a pod of this source.
        type: str
        required: true
      to:
        description: The destination, a label such as C(production/api) or a node name. May not contain C(|).
        type: str
        required: true
      address:
        description:
          - IPv4 or IPv6 address the probe goes to; for dns the address of the DNS server.
          - Host names are not accepted, so a probe never depends on name resolution.
        type: str
        required: true
      protocol:
        description: What the probe does.
        type: str
        choices: [tcp, udp, http, dns, icmp]
        required: true
      port:
        description:
          - Destination port, 1 to 65535.
          - Required for tcp, udp and http; 53 when not given for dns; not accepted for icmp.
        type: int
      method:
        description:
          - HTTP method, for http only. C(GET) when not given.
          - One of C(GET), C(POST), C(PUT), C(PATCH), C(DELETE), C(OPTIONS). C(HEAD) is not
            accepted, since a 403 without a body cannot be told apart from the application's own.
        type: str
      path:
        description:
          - HTTP path, for http only. C(/) when not given. Must start with C(/); no spaces,
            control characters or C(#). A query string (C(?a=b)) is sent as given.
        type: str
      query:
        description: Name to look up, for dns only. C(kubernetes.default.svc.cluster.local) when not given.
        type: str
      expected:
        description: What the plan expects.
        type: str
        choices: [allowed, denied]
        required: true
      flow:
        description: Name of the declared flow this probe proves; shown in the table.
        type: str
  netns:
    description:
      - Network namespace (a name listed by C(ip netns list), under C(/var/run/netns)) to send
        the probes from, in O(mode=probe) only. Omit it to probe from the host's own namespace.
    type: str
  timeout:
    description:
      - Seconds to wait for each probe, 0.1 to 30. Fractions are allowed.
      - C(dig +time) and busybox C(ping -W) take whole seconds, so dns commands and icmp probes
        wait the timeout rounded up to a whole second.
      - An http probe may wait twice as long, once to connect and once for the response.
    type: float
    default: 2.0
  exec_results:
    description:
      - In O(mode=compare) only, and required there. The result of each probe's command, one
        per probe.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the probe the command belongs to.
        type: str
        required: true
      rc:
        description: Exit code of the command.
        type: int
        required: true
      stdout:
        description: What the command wrote to standard output.
        type: str
      stderr:
        description: What the command wrote to standard error.
        type: str
  fail_on_mismatch:
    description:
      - Fail when any probe does not match its expectation, after every probe has been
        compared, with one message listing every mismatch. The results are returned either way.
      - Set it to V(false) to collect the results and decide in the playbook.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description:
      - Nothing is ever changed. In O(mode=probe) the probes are still sent in check mode,
        since they are read-only network traffic (connects, requests, lookups and pings).
        V(commands) and V(compare) send nothing at all.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
requirements:
  - In O(mode=probe), C(ping) on the host for icmp probes (package C(iputils-ping) on Debian
    and Ubuntu, C(iputils) on RHEL, Fedora and SUSE).
  - In O(mode=probe) with O(netns), root or the C(CAP_SYS_ADMIN) capability to enter the namespace.
  - "For O(mode=commands), a probe image with C(/agnhost), C(curl), C(dig) and C(ping), such as
    C(registry.k8s.io/e2e-test-images/agnhost) (its udp server, C(agnhost netexec --udp-port),
    answers the C(hostname) request the udp probe sends)."
notes:
  - "Commands per protocol, for address A, port P and timeout T: tcp C(/agnhost connect A:P --timeout=Ts);
    udp the same with C(--protocol=udp); http C(curl -sS -v --globoff --noproxy * -w '\\n%{http_code}
    %{time_connect}' --max-time T -X METHOD http://A:P/PATH); dns C(dig +time=T +tries=1 [-p P] @A QUERY);
    icmp C(ping -c 1 -W T A). IPv6 addresses are bracketed where a URL or host:port needs it."
  - curl writes the status code and the TCP connect time on the last line, so a timeout before the
    TCP handshake (denied) is told from a server that accepted the connection and never answered
    (an error); C(-v) tells a refused connection from an unreachable one, which curl both reports
    as exit 7.
  - Cilium's DNS proxy answers names the policy does not allow with REFUSED by default. When the
    agent runs with C(--tofqdns-dns-reject-response-code=nameError) the answer is NXDOMAIN, which
    cannot be told from a name that does not exist and is observed as V(allowed).
seealso:
  - plugin: zerotrust.cilium.connectivity_probes
    plugin_type: filter
    description: Builds the probe list for every ordered pair of endpoints and every service.
  - module: kubernetes.core.k8s_exec
    description: Runs the commands of O(mode=commands) in the probe pods.
"""

EXAMPLES = r"""
- name: Probe from the lab pod namespace and fail on any mismatch
  zerotrust.cilium.connectivity_check:
    netns: zt-pod
    timeout: 1
    probes:
      - from: lab/w1
        to: lab/w2
        address: 10.42.22.10
        protocol: tcp
        port: 8080
        expected: allowed
        flow: w1-to-w2
      - from: lab/w1
        to: lab/w2
        address: 10.42.22.10
        protocol: http
        port: 8080
        method: GET
        path: /admin
        expected: denied
      - from: lab/w1
        to: kube-system/coredns
        address: 10.96.0.10
        protocol: dns
        query: kubernetes.default.svc.cluster.local
        expected: allowed
  register: lab_connectivity

- name: Show the truth table
  ansible.builtin.debug:
    msg: "{{ lab_connectivity.table }}"

- name: Get the commands for the probe pods
  zerotrust.cilium.connectivity_check:
    mode: commands
    probes: "{{ verify_probes }}"
  register: probe_commands

- name: Run each probe in a pod of its source
  kubernetes.core.k8s_exec:
    namespace: "{{ item.from.split('/')[0] }}"
    pod: "{{ verify_probe_pods[item.from] }}"
    command: "{{ item.argv | map('quote') | join(' ') }}"
  loop: "{{ probe_commands.commands }}"
  loop_control:
    label: "{{ item.name }}"
  register: probe_runs
  changed_when: false
  failed_when: false

- name: Collect each probe's exit code and output
  ansible.builtin.set_fact:
    verify_exec_results: >-
      {{ verify_exec_results | default([]) + [{'name': item.item.name, 'rc': item.rc | default(1),
         'stdout': item.stdout | default(''), 'stderr': item.stderr | default('')}] }}
  loop: "{{ probe_runs.results }}"
  loop_control:
    label: "{{ item.item.name }}"

- name: Compare the pods' observations with the plan
  zerotrust.cilium.connectivity_check:
    mode: compare
    probes: "{{ verify_probes }}"
    exec_results: "{{ verify_exec_results }}"
    fail_on_mismatch: false
  register: verify_connectivity
"""

RETURN = r"""
mode:
  description: The O(mode) that ran.
  returned: always
  type: str
  sample: probe
results:
  description: One entry per probe, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the probe (the default name when none was given).
      type: str
      sample: production/frontend -> production/api tcp/8080
    from:
      description: The source.
      type: str
      sample: production/frontend
    to:
      description: The destination.
      type: str
      sample: production/api
    protocol:
      description: C(tcp), C(udp), C(http), C(dns) or C(icmp).
      type: str
      sample: tcp
    port:
      description: Destination port; null for icmp.
      type: int
      sample: 8080
    address:
      description: Address probed (normalised, e.g. C(fd00::10)).
      type: str
      sample: 10.42.22.10
    method:
      description: HTTP method; null unless http.
      type: str
      sample: null
    path:
      description: HTTP path; null unless http.
      type: str
      sample: null
    query:
      description: Name looked up; null unless dns.
      type: str
      sample: null
    flow:
      description: The declared flow the probe proves; null when none was given.
      type: str
      sample: frontend-to-api
    expected:
      description: C(allowed) or C(denied).
      type: str
      sample: allowed
    observed:
      description:
        - C(allowed), C(l7_denied), C(denied), C(no_listener) or C(error).
        - Null in O(mode=commands).
      type: str
      sample: denied
    match:
      description: Whether the observation matches the expectation. Null in O(mode=commands).
      type: bool
      sample: false
    kind:
      description:
        - C(ok); C(blocked), expected allowed but blocked; C(open), expected denied but open;
          C(probe_error), the network path cannot be judged.
        - Null in O(mode=commands).
      type: str
      sample: blocked
    detail:
      description: One sentence about what was observed and, for a mismatch, what it means.
      type: str
      sample: "expected allowed but blocked (denied: no answer within 2 s)"
    command:
      description: The argv to run in a pod of the source. Only in O(mode=commands).
      type: list
      elements: str
      sample: ["/agnhost", "connect", "10.42.22.10:8080", "--timeout=2s"]
mismatches:
  description: One line per mismatch naming the pair, protocol and port, the expectation and the observation.
  returned: always
  type: list
  elements: str
  sample:
    - "production/frontend -> production/db tcp/5432: expected denied but open (allowed: connected to 10.42.3.4:5432)"
summary:
  description: How many probes there were and how they compared.
  returned: always
  type: dict
  contains:
    probes:
      description: Number of probes.
      type: int
    matched:
      description: Probes that match the plan.
      type: int
    blocked:
      description: Expected allowed but blocked.
      type: int
    open:
      description: Expected denied but open.
      type: int
    errors:
      description: Probes whose network path cannot be judged.
      type: int
  sample: {probes: 12, matched: 11, blocked: 0, open: 1, errors: 0}
table:
  description:
    - The truth table as fixed-width lines, header first, columns FROM, TO, PROBE, EXPECTED,
      OBSERVED, RESULT (C(ok), C(BLOCKED), C(OPEN), C(ERROR), or C(not run) in O(mode=commands)) and FLOW.
  returned: always
  type: list
  elements: str
  sample:
    - "FROM                 TO              PROBE     EXPECTED  OBSERVED  RESULT  FLOW"
    - "production/frontend  production/api  tcp/8080  allowed   allowed   ok      frontend-to-api"
matrix:
  description: The results arranged for a report to draw a source by destination grid.
  returned: always
  type: dict
  contains:
    sources:
      description: Every source, sorted.
      type: list
      elements: str
    targets:
      description: Every destination, sorted.
      type: list
      elements: str
    cells:
      description:
        - Keyed C(SOURCE|DESTINATION); each value lists the probes of that pair with their
          C(protocol), C(port), C(method), C(path), C(query), C(expected), C(observed),
          C(match) and C(kind).
      type: dict
  sample:
    sources: [production/frontend]
    targets: [production/api]
    cells:
      "production/frontend|production/api":
        - {protocol: tcp, port: 8080, method: null, path: null, query: null, expected: allowed,
           observed: allowed, match: true, kind: ok}
commands:
  description: What to run for each probe, in the order given.
  returned: when O(mode=commands)
  type: list
  elements: dict
  contains:
    name:
      description: Name of the probe; give it back as C(name) in O(exec_results).
      type: str
    from:
      description: The source; run the command in a pod of it.
      type: str
    argv:
      description: The command.
      type: list
      elements: str
  sample:
    - {name: "production/frontend -> production/api tcp/8080", from: production/frontend,
       argv: ["/agnhost", "connect", "10.42.22.10:8080", "--timeout=2s"]}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.cilium.plugins.module_utils.connectivity import (
    DEFAULT_TIMEOUT,
    EXPECTATIONS,
    MODES,
    PROTOCOLS,
    connectivity_check,
    mismatch_message,
)
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError


# Method, path, query and port defaults depend on the protocol, so module_utils sets them.
PROBE_OPTIONS = {
    "name": dict(type="str"),
    "from": dict(type="str", required=True),
    "to": dict(type="str", required=True),
    "address": dict(type="str", required=True),
    "protocol": dict(type="str", choices=list(PROTOCOLS), required=True),
    "port": dict(type="int"),
    "method": dict(type="str"),
    "path": dict(type="str"),
    "query": dict(type="str"),
    "expected": dict(type="str", choices=list(EXPECTATIONS), required=True),
    "flow": dict(type="str"),
}


def main():
    argument_spec = dict(
        mode=dict(type="str", choices=list(MODES), default="probe"),
        probes=dict(type="list", elements="dict", required=True, options=PROBE_OPTIONS),
        netns=dict(type="str"),
        timeout=dict(type="float", default=DEFAULT_TIMEOUT),
        exec_results=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            rc=dict(type="int", required=True),
            stdout=dict(type="str"),
            stderr=dict(type="str"),
        )),
        fail_on_mismatch=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        report = connectivity_check(
            params["mode"], params["probes"], timeout=params["timeout"], netns=params["netns"],
            exec_results=params["exec_results"],
            ping_path=module.get_bin_path("ping") if params["mode"] == "probe" else None)
    except CollectionError as err:
        module.fail_json(msg=str(err))

    output = dict(changed=False, **report)
    if report["mismatches"] and params["fail_on_mismatch"]:
        module.fail_json(msg=mismatch_message(report), **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
