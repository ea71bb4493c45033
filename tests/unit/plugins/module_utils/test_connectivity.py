# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/connectivity.py and the connectivity_probes filter.

Bad input is refused with exact messages before anything is probed; commands are built per
protocol and address family; the probe pod tools' real output (agnhost connect, curl -v,
dig 9.16/9.18, busybox and iputils ping) is classified; observations are compared with
expectations into results, mismatch messages, the truth table and the matrix. The socket
probes run against real listeners on this machine's loopback, and the fork-and-setns path
is exercised by entering this process's own network namespace from a child.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zerotrust.cilium.plugins.filter import connectivity as connectivity_filters
from ansible_collections.zerotrust.cilium.plugins.module_utils import connectivity
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput, InvalidInputs

CC = "connectivity_check: "
ADDRESS_PROBLEM = "is not an IPv4 or IPv6 address such as 10.42.1.10 or fd00::10 (host names and zone ids are not accepted)"
ACCEPTED_KEYS = "name, from, to, address, protocol, port, method, path, query, expected, flow"


def tcp(**overrides):
    probe = {"from": "production/frontend", "to": "production/api", "address": "10.42.2.7", "protocol": "tcp",
             "port": 8080, "expected": "allowed"}
    probe.update(overrides)
    return probe


def normalised(**overrides):
    return connectivity.normalise_probes([tcp(**overrides)])[0]


class Prober:
    """Stands in for run_probes; records whether anything was probed."""

    def __init__(self, observations=None):
        self.calls = []
        self.observations = observations

    def __call__(self, probes, timeout, netns, ping_path):
        self.calls.append((probes, timeout, netns, ping_path))
        return self.observations or [{"observed": "allowed", "detail": "connected"} for _probe in probes]


# --------------------------------------------------------------------------------------
# Bad input: exact messages, nothing probed
# --------------------------------------------------------------------------------------

# (case id, keyword arguments of connectivity_check, exact message)
BAD_INPUTS = [
    ("probes-not-a-list", dict(probes="tcp"),
     CC + "probes: 'tcp' must be a non-empty list of probes ({from, to, address, protocol, expected} and port, method, "
          "path, query, flow, name as needed)"),
    ("probes-empty", dict(probes=[]),
     CC + "probes: [] must be a non-empty list of probes ({from, to, address, protocol, expected} and port, method, "
          "path, query, flow, name as needed)"),
    ("probe-not-a-mapping", dict(probes=["10.42.2.7:80"]),
     CC + "probes[0]: '10.42.2.7:80' is not a mapping with from, to, address, protocol and expected"),
    ("unknown-key", dict(probes=[tcp(expect="allowed")]),
     CC + "probes[0]: ['expect'] are unknown keys; accepted: " + ACCEPTED_KEYS),
    ("from-missing", dict(probes=[tcp(**{"from": None})]),
     CC + "probes[0].from: None is missing: give the source, e.g. production/frontend or a node name"),
    ("from-not-a-string", dict(probes=[tcp(**{"from": 7})]),
     CC + "probes[0].from: 7 is not a string: give the source, e.g. production/frontend or a node name"),
    ("to-with-separator", dict(probes=[tcp(to="production|api")]),
     CC + "probes[0].to: 'production|api' must not contain '|' or a line break"),
    ("address-missing", dict(probes=[tcp(address="")]),
     CC + "probes[0].address: '' is missing: give an IPv4 or IPv6 address such as 10.42.1.10 or fd00::10"),
    ("address-host-name", dict(probes=[tcp(address="api.production.svc")]),
     CC + "probes[0].address: 'api.production.svc' " + ADDRESS_PROBLEM),
    ("address-zone-id", dict(probes=[tcp(address="fe80::1%eth0")]),
     CC + "probes[0].address: 'fe80::1%eth0' " + ADDRESS_PROBLEM),
    ("address-cidr", dict(probes=[tcp(address="10.42.2.0/24")]),
     CC + "probes[0].address: '10.42.2.0/24' " + ADDRESS_PROBLEM),
    ("protocol-unknown", dict(probes=[tcp(protocol="sctp")]),
     CC + "probes[0].protocol: 'sctp' is not one of: tcp, udp, http, dns, icmp"),
    ("port-missing", dict(probes=[tcp(port=None)]),
     CC + "probes[0].port: None is missing: protocol tcp needs a port, 1 to 65535"),
    ("port-zero", dict(probes=[tcp(port=0)]),
     CC + "probes[0].port: 0 is below the minimum of 1"),
    ("port-too-high", dict(probes=[tcp(protocol="udp", port=65536)]),
     CC + "probes[0].port: 65536 is above the maximum of 65535"),
    ("port-boolean", dict(probes=[tcp(port=True)]),
     CC + "probes[0].port: True is not a whole number"),
    ("port-text", dict(probes=[tcp(port="http")]),
     CC + "probes[0].port: 'http' is not a whole number"),
    ("port-for-icmp", dict(probes=[tcp(protocol="icmp", port=8)]),
     CC + "probes[0].port: 8 is not accepted for protocol icmp (ICMP has no ports)"),
    ("method-for-tcp", dict(probes=[tcp(method="GET")]),
     CC + "probes[0].method: 'GET' is only accepted for protocol http (this probe is tcp)"),
    ("path-for-dns", dict(probes=[tcp(protocol="dns", port=None, path="/")]),
     CC + "probes[0].path: '/' is only accepted for protocol http (this probe is dns)"),
    ("query-for-http", dict(probes=[tcp(protocol="http", query="example.com")]),
     CC + "probes[0].query: 'example.com' is only accepted for protocol dns (this probe is http)"),
    ("method-lower-case", dict(probes=[tcp(protocol="http", method="get")]),
     CC + "probes[0].method: 'get' is not one of: GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    ("method-head", dict(probes=[tcp(protocol="http", method="HEAD")]),
     CC + "probes[0].method: 'HEAD' is not one of: GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    ("path-relative", dict(probes=[tcp(protocol="http", path="api/v1")]),
     CC + "probes[0].path: 'api/v1' is not a URL path: it must start with / and hold no spaces, control characters or #"),
    ("path-with-fragment", dict(probes=[tcp(protocol="http", path="/api#v1")]),
     CC + "probes[0].path: '/api#v1' is not a URL path: it must start with / and hold no spaces, control characters "
          "or #"),
    ("path-with-space", dict(probes=[tcp(protocol="http", path="/api v1")]),
     CC + "probes[0].path: '/api v1' is not a URL path: it must start with / and hold no spaces, control characters or #"),
    ("query-option-like", dict(probes=[tcp(protocol="dns", port=None, query="+short")]),
     CC + "probes[0].query: '+short' is not a DNS name such as kubernetes.default.svc.cluster.local"),
    ("query-with-space", dict(probes=[tcp(protocol="dns", port=None, query="kube dns")]),
     CC + "probes[0].query: 'kube dns' is not a DNS name such as kubernetes.default.svc.cluster.local"),
    ("expected-missing", dict(probes=[tcp(expected=None)]),
     CC + "probes[0].expected: None is not one of: allowed, denied"),
    ("expected-unknown", dict(probes=[tcp(expected="blocked")]),
     CC + "probes[0].expected: 'blocked' is not one of: allowed, denied"),
    ("flow-not-a-string", dict(probes=[tcp(flow=["a", "b"])]),
     CC + "probes[0].flow: ['a', 'b'] is not a string (the name of the flow this probe proves)"),
    ("name-not-a-string", dict(probes=[tcp(name=3)]),
     CC + "probes[0].name: 3 is not a string"),
    ("duplicate-default-names", dict(probes=[tcp(), tcp(address="fd00::7")]),
     CC + "probes: ['production/frontend -> production/api tcp/8080'] name more than one probe; give each probe a name "
          "of its own (the default name is FROM -> TO PROTOCOL/PORT with method and path, or query)"),
    ("duplicate-given-names", dict(probes=[tcp(name="api"), tcp(port=9090, name="api")]),
     CC + "probes: ['api'] name more than one probe; give each probe a name of its own (the default name is FROM -> TO "
          "PROTOCOL/PORT with method and path, or query)"),
    ("timeout-zero", dict(probes=[tcp()], timeout=0),
     CC + "timeout: 0 is out of range: give 0.1 to 30 seconds"),
    ("timeout-too-long", dict(probes=[tcp()], timeout=31),
     CC + "timeout: 31 is out of range: give 0.1 to 30 seconds"),
    ("timeout-text", dict(probes=[tcp()], timeout="fast"),
     CC + "timeout: 'fast' is not a number of seconds such as 2 or 0.5"),
    ("timeout-boolean", dict(probes=[tcp()], timeout=True),
     CC + "timeout: True is not a number of seconds such as 2 or 0.5"),
    ("mode-unknown", dict(mode="dry-run", probes=[tcp()]),
     CC + "mode: 'dry-run' is not one of: probe, commands, compare"),
    ("netns-outside-probe-mode", dict(mode="commands", probes=[tcp()], netns="zt-pod"),
     CC + "netns: 'zt-pod' is only used in mode probe (mode is commands)"),
    ("netns-path", dict(probes=[tcp()], netns="/var/run/netns/zt-pod"),
     CC + "netns: '/var/run/netns/zt-pod' is not a network namespace name (a name listed by ip netns list)"),
    ("netns-dot-dot", dict(probes=[tcp()], netns=".."),
     CC + "netns: '..' is not a network namespace name (a name listed by ip netns list)"),
    ("exec-results-in-probe-mode", dict(probes=[tcp()], exec_results=[]),
     CC + "exec_results: [] is only used in mode compare (mode is probe)"),
    ("compare-without-exec-results", dict(mode="compare", probes=[tcp()]),
     CC + "exec_results: None is missing: mode compare needs the {name, rc, stdout, stderr} of each probe's command"),
    ("exec-results-not-a-list", dict(mode="compare", probes=[tcp()], exec_results={"rc": 0}),
     CC + "exec_results: {'rc': 0} must be a list of {name, rc, stdout, stderr}, one per probe"),
    ("exec-result-unknown-probe", dict(mode="compare", probes=[tcp(name="api")], exec_results=[
        {"name": "api", "rc": 0}, {"name": "db", "rc": 1}]),
     CC + "exec_results[1].name: 'db' is not the name of a probe"),
    ("exec-result-twice", dict(mode="compare", probes=[tcp(name="api")], exec_results=[
        {"name": "api", "rc": 0}, {"name": "api", "rc": 1}]),
     CC + "exec_results[1].name: 'api' has more than one result"),
    ("exec-result-rc-missing", dict(mode="compare", probes=[tcp(name="api")], exec_results=[{"name": "api"}]),
     CC + "exec_results[0].rc: None is missing: a whole number is required"),
    ("exec-result-rc-text", dict(mode="compare", probes=[tcp(name="api")], exec_results=[
        {"name": "api", "rc": "failed"}]),
     CC + "exec_results[0].rc: 'failed' is not a whole number"),
    ("exec-result-unknown-key", dict(mode="compare", probes=[tcp(name="api")], exec_results=[
        {"name": "api", "rc": 0, "return_code": 0}]),
     CC + "exec_results[0]: ['return_code'] are unknown keys; accepted: name, rc, stdout, stderr"),
    ("exec-result-stdout-lines", dict(mode="compare", probes=[tcp(name="api")], exec_results=[
        {"name": "api", "rc": 0, "stdout": ["a", "b"]}]),
     CC + "exec_results[0].stdout: ['a', 'b'] is not a string"),
    ("exec-result-missing-for-a-probe", dict(mode="compare", probes=[tcp(name="api"), tcp(name="db", port=5432)],
                                             exec_results=[{"name": "api", "rc": 0}]),
     CC + "exec_results: ['db'] have no result: give one {name, rc, stdout, stderr} per probe"),
]


@pytest.mark.parametrize("arguments, message", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_refused_with_its_message_and_nothing_is_probed(arguments, message):
    prober = Prober()
    arguments = dict(arguments)
    arguments.setdefault("mode", "probe")
    with pytest.raises(InvalidInput) as raised:
        connectivity.connectivity_check(prober=prober, ping_path="/usr/bin/ping", **arguments)
    assert str(raised.value) == message
    assert prober.calls == []


def test_every_problem_is_reported_at_once_under_one_header():
    prober = Prober()
    with pytest.raises(InvalidInputs) as raised:
        connectivity.connectivity_check(
            "probe", [tcp(port=0, expected="maybe"), tcp(protocol="icmp", port=None, address="api")],
            timeout=60, prober=prober)
    assert str(raised.value) == (
        "connectivity_check: 4 problem(s) found:\n"
        "- timeout: 60 is out of range: give 0.1 to 30 seconds\n"
        "- probes[0].port: 0 is below the minimum of 1\n"
        "- probes[0].expected: 'maybe' is not one of: allowed, denied\n"
        "- probes[1].address: 'api' " + ADDRESS_PROBLEM)
    assert [problem.field for problem in raised.value.problems] == [
        "timeout", "probes[0].port", "probes[0].expected", "probes[1].address"]
    assert prober.calls == []


# --------------------------------------------------------------------------------------
# Normalised probes and defaults
# --------------------------------------------------------------------------------------

def test_defaults_per_protocol_and_default_names():
    probes = connectivity.normalise_probes([
        tcp(),
        tcp(protocol="http", port="80", flow=" frontend-to-api "),
        tcp(protocol="dns", port=None, address="10.96.0.10", to="kube-system/coredns"),
        tcp(protocol="dns", port=5353, address="10.96.0.10", to="kube-system/coredns", query="api.github.com."),
        tcp(protocol="icmp", port=None, address="FD00:0:0::7", expected="denied", name=" ping api "),
    ])
    assert probes == [
        {"name": "production/frontend -> production/api tcp/8080", "from": "production/frontend",
         "to": "production/api", "address": "10.42.2.7", "protocol": "tcp", "port": 8080, "method": None, "path": None,
         "query": None, "expected": "allowed", "flow": None},
        {"name": "production/frontend -> production/api http/80 GET /", "from": "production/frontend",
         "to": "production/api", "address": "10.42.2.7", "protocol": "http", "port": 80, "method": "GET", "path": "/",
         "query": None, "expected": "allowed", "flow": "frontend-to-api"},
        {"name": "production/frontend -> kube-system/coredns dns/53 kubernetes.default.svc.cluster.local",
         "from": "production/frontend", "to": "kube-system/coredns", "address": "10.96.0.10", "protocol": "dns",
         "port": 53, "method": None, "path": None, "query": "kubernetes.default.svc.cluster.local",
         "expected": "allowed", "flow": None},
        {"name": "production/frontend -> kube-system/coredns dns/5353 api.github.com.", "from": "production/frontend",
         "to": "kube-system/coredns", "address": "10.96.0.10", "protocol": "dns", "port": 5353, "method": None,
         "path": None, "query": "api.github.com.", "expected": "allowed", "flow": None},
        {"name": "ping api", "from": "production/frontend", "to": "production/api", "address": "fd00::7",
         "protocol": "icmp", "port": None, "method": None, "path": None, "query": None, "expected": "denied",
         "flow": None},
    ]


def test_unset_options_given_as_none_count_as_not_given():
    # Ansible fills every sub-option the user left out with None.
    probe = dict.fromkeys(connectivity.PROBE_KEYS)
    probe.update({"from": "a", "to": "b", "address": "10.0.0.2", "protocol": "dns", "expected": "denied"})
    assert connectivity.normalise_probes([probe])[0]["name"] == "a -> b dns/53 kubernetes.default.svc.cluster.local"


# --------------------------------------------------------------------------------------
# Commands for the probe pod
# --------------------------------------------------------------------------------------

COMMANDS = [
    ("tcp-ipv4", tcp(), 2, ["/agnhost", "connect", "10.42.2.7:8080", "--timeout=2s"]),
    ("tcp-ipv6-fraction", tcp(address="fd00::7"), 0.5, ["/agnhost", "connect", "[fd00::7]:8080", "--timeout=0.5s"]),
    ("udp", tcp(protocol="udp", port=5353), 1.5,
     ["/agnhost", "connect", "10.42.2.7:5353", "--timeout=1.5s", "--protocol=udp"]),
    ("udp-ipv6", tcp(protocol="udp", port=53, address="fd00::a"), 2,
     ["/agnhost", "connect", "[fd00::a]:53", "--timeout=2s", "--protocol=udp"]),
    ("http", tcp(protocol="http", path="/api/v1/data?limit=1"), 2,
     ["curl", "-sS", "-v", "--globoff", "--noproxy", "*", "-w", "\\n%{http_code} %{time_connect}", "--max-time", "2",
      "-X", "GET", "http://10.42.2.7:8080/api/v1/data?limit=1"]),
    ("http-ipv6-post", tcp(protocol="http", address="fd00::7", method="POST", path="/orders"), 0.25,
     ["curl", "-sS", "-v", "--globoff", "--noproxy", "*", "-w", "\\n%{http_code} %{time_connect}", "--max-time",
      "0.25", "-X", "POST", "http://[fd00::7]:8080/orders"]),
    ("dns-default", tcp(protocol="dns", port=None, address="10.96.0.10"), 2,
     ["dig", "+time=2", "+tries=1", "@10.96.0.10", "kubernetes.default.svc.cluster.local"]),
    ("dns-rounds-up-other-port-ipv6", tcp(protocol="dns", port=5353, address="fd00::a", query="api.github.com"), 0.5,
     ["dig", "+time=1", "+tries=1", "-p", "5353", "@fd00::a", "api.github.com"]),
    ("dns-rounds-up", tcp(protocol="dns", port=None, address="10.96.0.10"), 2.1,
     ["dig", "+time=3", "+tries=1", "@10.96.0.10", "kubernetes.default.svc.cluster.local"]),
    ("icmp", tcp(protocol="icmp", port=None), 0.5, ["ping", "-c", "1", "-W", "1", "10.42.2.7"]),
    ("icmp-ipv6", tcp(protocol="icmp", port=None, address="fd00::7"), 3, ["ping", "-c", "1", "-W", "3", "fd00::7"]),
]


@pytest.mark.parametrize("probe, timeout, argv", [case[1:] for case in COMMANDS], ids=[case[0] for case in COMMANDS])
def test_commands_per_protocol_and_family(probe, timeout, argv):
    assert connectivity.probe_command(connectivity.normalise_probes([probe])[0], timeout) == argv


def test_commands_mode_runs_nothing_and_returns_the_argv_of_each_probe():
    prober = Prober()
    report = connectivity.connectivity_check("commands", [tcp(flow="frontend-to-api"), tcp(protocol="icmp", port=None)],
                                             timeout=1, prober=prober)
    assert prober.calls == []
    assert report["commands"] == [
        {"name": "production/frontend -> production/api tcp/8080", "from": "production/frontend",
         "argv": ["/agnhost", "connect", "10.42.2.7:8080", "--timeout=1s"]},
        {"name": "production/frontend -> production/api icmp", "from": "production/frontend",
         "argv": ["ping", "-c", "1", "-W", "1", "10.42.2.7"]},
    ]
    assert [result["command"] for result in report["results"]] == [entry["argv"] for entry in report["commands"]]
    assert [(result["observed"], result["match"], result["kind"]) for result in report["results"]] == [
        (None, None, None), (None, None, None)]
    assert report["results"][0]["detail"] == (
        "not probed: run command in a pod of production/frontend and pass its rc, stdout and stderr as exec_results "
        "in mode compare")
    assert report["mismatches"] == []
    assert report["summary"] == {"probes": 2, "matched": 0, "blocked": 0, "open": 0, "errors": 0}
    assert report["table"] == [
        "FROM                 TO              PROBE     EXPECTED  OBSERVED  RESULT   FLOW",
        "production/frontend  production/api  tcp/8080  allowed   -         not run  frontend-to-api",
        "production/frontend  production/api  icmp      allowed   -         not run",
    ]


# --------------------------------------------------------------------------------------
# What the probe pod's tools print
# --------------------------------------------------------------------------------------

CURL_CONNECTED = (
    "*   Trying 10.42.2.7:8080...\n"
    "* Connected to 10.42.2.7 (10.42.2.7) port 8080 (#0)\n"
    "> GET /admin HTTP/1.1\n> Host: 10.42.2.7:8080\n> User-Agent: curl/8.5.0\n> Accept: */*\n>\n")
CURL_ENVOY_403 = CURL_CONNECTED + (
    "< HTTP/1.1 403 Forbidden\n< content-length: 15\n< content-type: text/plain\n"
    "< date: Wed, 26 Nov 2026 13:46:02 GMT\n< server: envoy\n<\n{ [15 bytes data]\n"
    "* Connection #0 to host 10.42.2.7 left intact\n")
CURL_APP_200 = CURL_CONNECTED + (
    "< HTTP/1.1 200 OK\n< Content-Type: application/json\n< Content-Length: 13\n<\n"
    "* Connection #0 to host 10.42.2.7 left intact\n")
CURL_CONNECT_TIMEOUT = (
    "*   Trying 10.42.2.7:8080...\n"
    "* Connection timed out after 2002 milliseconds\n* Closing connection\n"
    "curl: (28) Connection timed out after 2002 milliseconds\n")
CURL_RESPONSE_TIMEOUT = CURL_CONNECTED + (
    "* Operation timed out after 2001 milliseconds with 0 bytes received\n* Closing connection\n"
    "curl: (28) Operation timed out after 2001 milliseconds with 0 bytes received\n")
CURL_REFUSED = (
    "*   Trying 10.42.2.7:8080...\n"
    "* connect to 10.42.2.7 port 8080 from 10.42.1.7 port 45678 failed: Connection refused\n"
    "* Failed to connect to 10.42.2.7 port 8080 after 0 ms: Couldn't connect to server\n* Closing connection\n"
    "curl: (7) Failed to connect to 10.42.2.7 port 8080 after 0 ms: Couldn't connect to server\n")
CURL_NO_ROUTE = (
    "*   Trying 10.42.9.9:80...\n"
    "* connect to 10.42.9.9 port 80 from 10.42.1.7 port 45678 failed: No route to host\n"
    "* Failed to connect to 10.42.9.9 port 80 after 3071 ms: Couldn't connect to server\n* Closing connection\n"
    "curl: (7) Failed to connect to 10.42.9.9 port 80 after 3071 ms: Couldn't connect to server\n")
CURL_EMPTY_REPLY = CURL_CONNECTED + "* Empty reply from server\n* Closing connection\ncurl: (52) Empty reply from server\n"

DIG_HEAD = ("\n; <<>> DiG 9.18.27 <<>> +time=2 +tries=1 @10.96.0.10 %s\n; (1 server found)\n"
            ";; global options: +cmd\n")
DIG_NOERROR = DIG_HEAD % "kubernetes.default.svc.cluster.local" + (
    ";; Got answer:\n"
    ";; WARNING: .local is reserved for Multicast DNS\n"
    ";; You are currently testing what happens when an mDNS query is leaked to DNS\n"
    ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 24388\n"
    ";; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n"
    ";; WARNING: recursion requested but not available\n\n"
    ";; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 1232\n"
    ";; QUESTION SECTION:\n;kubernetes.default.svc.cluster.local. IN A\n\n"
    ";; ANSWER SECTION:\nkubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1\n\n"
    ";; Query time: 0 msec\n;; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)\n"
    ";; WHEN: Wed Nov 26 13:46:02 UTC 2026\n;; MSG SIZE  rcvd: 129\n")


def dig_status(status, name="api.github.com"):
    return DIG_HEAD % name + (
        ";; Got answer:\n;; ->>HEADER<<- opcode: QUERY, status: %s, id: 39211\n"
        ";; flags: qr rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0\n\n"
        ";; QUESTION SECTION:\n;%s.\t\t\tIN\tA\n\n;; Query time: 0 msec\n"
        ";; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)\n;; MSG SIZE  rcvd: 32\n" % (status, name))


DIG_918_TIMEOUT = (";; communications error to 10.96.0.10#53: timed out\n" + DIG_HEAD % "api.github.com"
                   + ";; no servers could be reached\n")
DIG_916_TIMEOUT = DIG_HEAD % "api.github.com" + ";; connection timed out; no servers could be reached\n"
DIG_REFUSED_PORT = (";; communications error to 10.42.2.7#53: connection refused\n" + DIG_HEAD % "api.github.com"
                    + ";; no servers could be reached\n")
DIG_UNREACHABLE = (";; communications error to 10.42.9.9#53: host unreachable\n" + DIG_HEAD % "api.github.com"
                   + ";; no servers could be reached\n")

BUSYBOX_REPLY = ("PING 10.42.2.7 (10.42.2.7): 56 data bytes\n64 bytes from 10.42.2.7: seq=0 ttl=63 time=0.093 ms\n\n"
                 "--- 10.42.2.7 ping statistics ---\n1 packets transmitted, 1 packets received, 0% packet loss\n"
                 "round-trip min/avg/max = 0.093/0.093/0.093 ms\n")
BUSYBOX_LOST = ("PING 10.42.2.7 (10.42.2.7): 56 data bytes\n\n--- 10.42.2.7 ping statistics ---\n"
                "1 packets transmitted, 0 packets received, 100% packet loss\n")
IPUTILS_UNREACHABLE = ("PING 10.42.9.9 (10.42.9.9) 56(84) bytes of data.\n"
                       "From 10.42.1.1 icmp_seq=1 Destination Host Unreachable\n\n--- 10.42.9.9 ping statistics ---\n"
                       "1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms\n")
OCI_NOT_FOUND = ('OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": '
                 'executable file not found in $PATH: unknown\n')

UDP = dict(protocol="udp", port=5353)
HTTP = dict(protocol="http", path="/admin")
DNS = dict(protocol="dns", port=None, address="10.96.0.10")
ICMP = dict(protocol="icmp", port=None)

# (case id, probe overrides, rc, stdout, stderr, observed, detail)
EXEC_OUTPUTS = [
    ("agnhost-tcp-connected", {}, 0, "", "", "allowed", "connected to 10.42.2.7:8080"),
    ("agnhost-tcp-timeout", {}, 1, "", "TIMEOUT\n", "denied", "no answer within 2 s (agnhost: TIMEOUT)"),
    ("agnhost-tcp-refused", {}, 1, "", "REFUSED\n", "no_listener",
     "connection refused: nothing listens on tcp port 8080 at 10.42.2.7 (agnhost: REFUSED)"),
    ("agnhost-tcp-no-route", {}, 1, "", "OTHER: dial tcp 10.42.2.7:8080: connect: no route to host\n", "error",
     "agnhost connect failed: OTHER: dial tcp 10.42.2.7:8080: connect: no route to host"),
    ("agnhost-tcp-dns", {}, 1, "", "DNS: lookup api: no such host\n", "error",
     "agnhost connect failed: DNS: lookup api: no such host"),
    ("agnhost-missing", {}, 126, "", OCI_NOT_FOUND % "/agnhost", "error",
     "/agnhost could not be run in the probe pod (exit 126: " + (OCI_NOT_FOUND % "/agnhost").strip() + ")"),
    ("agnhost-unexpected", {}, 2, "", "Error: unknown flag: --protocol\n", "error",
     "unexpected output from /agnhost connect (exit 2): Error: unknown flag: --protocol"),
    ("agnhost-udp-reply", UDP, 0, "", "", "allowed", "got a reply from 10.42.2.7:5353"),
    ("agnhost-udp-timeout", UDP, 1, "", "TIMEOUT: read udp 10.42.1.7:52130->10.42.2.7:5353: i/o timeout\n", "denied",
     "no answer within 2 s (agnhost: TIMEOUT: read udp 10.42.1.7:52130->10.42.2.7:5353: i/o timeout)"),
    ("agnhost-udp-refused", UDP, 1, "", "REFUSED: read udp 10.42.1.7:52130->10.42.2.7:5353: read: connection refused\n",
     "no_listener", "connection refused: nothing listens on udp port 5353 at 10.42.2.7 (agnhost: REFUSED: read udp "
                    "10.42.1.7:52130->10.42.2.7:5353: read: connection refused)"),
    ("agnhost-udp-empty-reply", UDP, 1, "",
     "OTHER: No data received from the server. Cannot guarantee the server received the request.\n",
     "allowed", "got an empty reply from 10.42.2.7:5353"),
    ("agnhost-udp-unknown", UDP, 1, "", "UNKNOWN: write udp 10.42.1.7:52130->10.42.2.7:5353: write: operation not "
                                        "permitted\n", "error",
     "agnhost connect failed: UNKNOWN: write udp 10.42.1.7:52130->10.42.2.7:5353: write: operation not permitted"),
    ("curl-200", HTTP, 0, '{"items": []}\n200 0.000412', CURL_APP_200, "allowed", "HTTP 200"),
    ("curl-envoy-403", HTTP, 0, "Access denied\r\n\n403 0.000311", CURL_ENVOY_403, "l7_denied",
     "HTTP 403 'Access denied' from Cilium's L7 proxy (Envoy)"),
    ("curl-application-403", HTTP, 0, "<h1>Forbidden</h1>\n403 0.000311", CURL_CONNECTED, "allowed", "HTTP 403"),
    ("curl-404-body-ends-with-newline", HTTP, 0, "404 page not found\n\n404 0.000102", CURL_CONNECTED, "allowed",
     "HTTP 404"),
    ("curl-trailing-newline-added-by-exec", HTTP, 0, "ok\n200 0.000102\n", CURL_CONNECTED, "allowed", "HTTP 200"),
    ("curl-connect-timeout", HTTP, 28, "\n000 0.000000", CURL_CONNECT_TIMEOUT, "denied",
     "no answer within 2 s (curl: (28) Connection timed out after 2002 milliseconds)"),
    ("curl-response-timeout", HTTP, 28, "\n000 0.000287", CURL_RESPONSE_TIMEOUT, "error",
     "connected, but no HTTP response within 2 s (curl: (28) Operation timed out after 2001 milliseconds with 0 bytes "
     "received)"),
    ("curl-refused", HTTP, 7, "\n000 0.000000", CURL_REFUSED, "no_listener",
     "connection refused: nothing listens on tcp port 8080 at 10.42.2.7 (curl: (7) Failed to connect to 10.42.2.7 "
     "port 8080 after 0 ms: Couldn't connect to server)"),
    ("curl-no-route", HTTP, 7, "\n000 0.000000", CURL_NO_ROUTE, "error",
     "could not connect: connect to 10.42.9.9 port 80 from 10.42.1.7 port 45678 failed: No route to host"),
    ("curl-empty-reply", HTTP, 52, "\n000 0.000201", CURL_EMPTY_REPLY, "error",
     "curl failed: curl: (52) Empty reply from server"),
    ("curl-garbage", HTTP, 0, "<html>", "", "error",
     "unexpected output from curl (exit 0): the last line of stdout is '<html>', not 'STATUS CONNECT_TIME'"),
    ("curl-missing", HTTP, 127, "", OCI_NOT_FOUND % "curl", "error",
     "curl could not be run in the probe pod (exit 127: " + (OCI_NOT_FOUND % "curl").strip() + ")"),
    ("dig-noerror", DNS, 0, DIG_NOERROR, "", "allowed", "DNS answer NOERROR for kubernetes.default.svc.cluster.local"),
    ("dig-nxdomain", DNS, 0, dig_status("NXDOMAIN", "kubernetes.default.svc.cluster.local"), "", "allowed",
     "DNS answer NXDOMAIN for kubernetes.default.svc.cluster.local"),
    ("dig-refused-by-cilium", dict(DNS, query="api.github.com"), 0, dig_status("REFUSED"), "", "l7_denied",
     "DNS answer REFUSED for api.github.com: Cilium's DNS proxy refuses names the policy does not allow"),
    ("dig-servfail", dict(DNS, query="api.github.com"), 0, dig_status("SERVFAIL"), "", "allowed",
     "DNS answer SERVFAIL for api.github.com: the server answered, so the path is open, but it did not resolve the "
     "name"),
    ("dig-918-timeout", DNS, 9, DIG_918_TIMEOUT, "", "denied",
     "no answer within 2 s (dig: communications error to 10.96.0.10#53: timed out; no servers could be reached)"),
    ("dig-916-timeout", DNS, 9, DIG_916_TIMEOUT, "", "denied",
     "no answer within 2 s (dig: connection timed out; no servers could be reached)"),
    ("dig-port-unreachable", DNS, 9, DIG_REFUSED_PORT, "", "no_listener",
     "connection refused: nothing listens on udp port 53 at 10.96.0.10 (dig: communications error to 10.42.2.7#53: "
     "connection refused; no servers could be reached)"),
    ("dig-host-unreachable", DNS, 9, DIG_UNREACHABLE, "", "error",
     "dig could not reach the server: communications error to 10.42.9.9#53: host unreachable; no servers could be "
     "reached"),
    ("dig-usage", DNS, 1, "", "Invalid option: +tries=x\nUsage:  dig [@global-server] [domain]\n", "error",
     "unexpected output from dig (exit 1): Invalid option: +tries=x | Usage:  dig [@global-server] [domain]"),
    ("busybox-ping-reply", ICMP, 0, BUSYBOX_REPLY, "", "allowed", "echo reply from 10.42.2.7"),
    ("busybox-ping-lost", ICMP, 1, BUSYBOX_LOST, "", "denied",
     "no answer within 2 s (ping: 1 packets transmitted, 0 packets received, 100% packet loss)"),
    ("busybox-ping-unreachable", ICMP, 1, "PING 10.42.9.9 (10.42.9.9): 56 data bytes\n",
     "ping: sendto: Network unreachable\n", "error", "ping failed: ping: sendto: Network unreachable"),
    ("busybox-ping-no-raw-socket", ICMP, 1, "", "ping: permission denied (are you root?)\n", "error",
     "ping failed: ping: permission denied (are you root?)"),
    ("iputils-ping-host-unreachable", ICMP, 1, IPUTILS_UNREACHABLE, "", "error",
     "ping failed: From 10.42.1.1 icmp_seq=1 Destination Host Unreachable"),
]


@pytest.mark.parametrize("overrides, rc, stdout, stderr, observed, detail", [case[1:] for case in EXEC_OUTPUTS],
                         ids=[case[0] for case in EXEC_OUTPUTS])
def test_tool_output_is_classified(overrides, rc, stdout, stderr, observed, detail):
    probe = normalised(**overrides)
    assert connectivity.classify_exec(probe, rc, stdout, stderr, timeout=2) == {"observed": observed, "detail": detail}


def test_ping_denied_names_the_whole_seconds_it_waited():
    probe = normalised(**ICMP)
    assert connectivity.classify_exec(probe, 1, BUSYBOX_LOST, "", timeout=0.5)["detail"] == (
        "no answer within 1 s (ping: 1 packets transmitted, 0 packets received, 100% packet loss)")


# --------------------------------------------------------------------------------------
# Comparison, mismatch messages, table, matrix
# --------------------------------------------------------------------------------------

# (observed, expected, match, kind, detail of the result)
COMPARISONS = [
    ("allowed", "allowed", True, "ok", "connected to 10.42.2.7:8080"),
    ("denied", "allowed", False, "blocked", "expected allowed but blocked (denied: what happened)"),
    ("l7_denied", "allowed", False, "blocked", "expected allowed but blocked (l7_denied: what happened)"),
    ("no_listener", "allowed", False, "probe_error",
     "probe error: the probe workload at 10.42.2.7 does not listen on tcp port 8080, so the network path cannot be "
     "judged"),
    ("error", "allowed", False, "probe_error",
     "probe error, the network path cannot be judged: what happened"),
    ("allowed", "denied", False, "open", "expected denied but open (allowed: connected to 10.42.2.7:8080)"),
    ("no_listener", "denied", False, "open",
     "expected denied but open (connection refused by the destination, so the packet got through)"),
    ("denied", "denied", True, "ok", "what happened"),
    ("l7_denied", "denied", True, "ok", "what happened"),
    ("error", "denied", False, "probe_error", "probe error, the network path cannot be judged: what happened"),
]


@pytest.mark.parametrize("observed, expected, match, kind, detail", COMPARISONS)
def test_every_observation_against_every_expectation(observed, expected, match, kind, detail):
    probe = normalised(expected=expected)
    said = "connected to 10.42.2.7:8080" if observed == "allowed" else "what happened"
    got_match, got_kind, got_detail, message = connectivity.compare(probe, {"observed": observed, "detail": said})
    assert (got_match, got_kind, got_detail) == (match, kind, detail)
    assert message == (None if match else "production/frontend -> production/api tcp/8080: " + detail)


def test_a_named_probe_is_named_in_front_of_its_pair():
    probe = normalised(name="db must stay closed", port=5432, expected="denied")
    message = connectivity.compare(probe, {"observed": "allowed", "detail": "connected to 10.42.2.7:5432"})[3]
    assert message == ("db must stay closed (production/frontend -> production/api tcp/5432): expected denied but open "
                       "(allowed: connected to 10.42.2.7:5432)")


def mixed_probes():
    return [
        tcp(flow="frontend-to-api"),
        tcp(protocol="http", path="/admin", expected="denied", flow="frontend-to-api"),
        tcp(protocol="udp", port=5353, to="production/cache", address="10.42.3.3"),
        tcp(port=5432, to="production/db", address="10.42.4.4", expected="denied"),
        tcp(**{"from": "production/api", "to": "production/db", "address": "10.42.4.4", "port": 5432,
               "flow": "api-to-db"}),
        tcp(protocol="dns", port=None, to="kube-system/coredns", address="10.96.0.10", query="api.github.com",
            expected="denied"),
        tcp(protocol="icmp", port=None, to="production/db", address="10.42.4.4", expected="denied"),
    ]


MIXED_OUTPUTS = [
    (0, "", ""),
    (0, "Access denied\r\n\n403 0.000311", CURL_ENVOY_403),
    (1, "", "TIMEOUT: read udp 10.42.1.7:52130->10.42.3.3:5353: i/o timeout\n"),
    (1, "", "REFUSED\n"),
    (1, "", "OTHER: dial tcp 10.42.4.4:5432: connect: no route to host\n"),
    (0, dig_status("REFUSED"), ""),
    (0, BUSYBOX_REPLY.replace("10.42.2.7", "10.42.4.4"), ""),
]


def test_compare_mode_reads_exec_results_into_results_mismatches_table_and_matrix():
    probes = mixed_probes()
    names = [probe["name"] for probe in connectivity.normalise_probes(probes)]
    exec_results = [{"name": name, "rc": rc, "stdout": stdout, "stderr": stderr}
                    for name, (rc, stdout, stderr) in zip(names, MIXED_OUTPUTS)]
    prober = Prober()
    report = connectivity.connectivity_check("compare", probes, exec_results=list(reversed(exec_results)), prober=prober)
    assert prober.calls == []
    assert report["mode"] == "compare"
    assert "commands" not in report
    assert [(result["observed"], result["kind"]) for result in report["results"]] == [
        ("allowed", "ok"), ("l7_denied", "ok"), ("denied", "blocked"), ("no_listener", "open"), ("error", "probe_error"),
        ("l7_denied", "ok"), ("allowed", "open")]
    assert report["mismatches"] == [
        "production/frontend -> production/cache udp/5353: expected allowed but blocked (denied: no answer within 2 s "
        "(agnhost: TIMEOUT: read udp 10.42.1.7:52130->10.42.3.3:5353: i/o timeout))",
        "production/frontend -> production/db tcp/5432: expected denied but open (connection refused by the "
        "destination, so the packet got through)",
        "production/api -> production/db tcp/5432: probe error, the network path cannot be judged: agnhost connect "
        "failed: OTHER: dial tcp 10.42.4.4:5432: connect: no route to host",
        "production/frontend -> production/db icmp: expected denied but open (allowed: echo reply from 10.42.4.4)",
    ]
    assert report["summary"] == {"probes": 7, "matched": 3, "blocked": 1, "open": 2, "errors": 1}
    assert report["table"] == [
        "FROM                 TO                   PROBE                  EXPECTED  OBSERVED     RESULT   FLOW",
        "production/frontend  production/api       tcp/8080               allowed   allowed      ok       frontend-to-api",
        "production/frontend  production/api       http/8080 GET /admin   denied    l7_denied    ok       frontend-to-api",
        "production/frontend  production/cache     udp/5353               allowed   denied       BLOCKED",
        "production/frontend  production/db        tcp/5432               denied    no_listener  OPEN",
        "production/api       production/db        tcp/5432               allowed   error        ERROR    api-to-db",
        "production/frontend  kube-system/coredns  dns/53 api.github.com  denied    l7_denied    ok",
        "production/frontend  production/db        icmp                   denied    allowed      OPEN",
    ]
    matrix = report["matrix"]
    assert matrix["sources"] == ["production/api", "production/frontend"]
    assert matrix["targets"] == ["kube-system/coredns", "production/api", "production/cache", "production/db"]
    assert sorted(matrix["cells"]) == [
        "production/api|production/db", "production/frontend|kube-system/coredns", "production/frontend|production/api",
        "production/frontend|production/cache", "production/frontend|production/db"]
    assert matrix["cells"]["production/frontend|production/api"] == [
        {"protocol": "tcp", "port": 8080, "method": None, "path": None, "query": None, "expected": "allowed",
         "observed": "allowed", "match": True, "kind": "ok"},
        {"protocol": "http", "port": 8080, "method": "GET", "path": "/admin", "query": None, "expected": "denied",
         "observed": "l7_denied", "match": True, "kind": "ok"},
    ]
    assert [cell["protocol"] for cell in matrix["cells"]["production/frontend|production/db"]] == ["tcp", "icmp"]
    assert connectivity.mismatch_message(report) == (
        "connectivity_check: 4 of 7 probes do not match the plan: " + "; ".join(report["mismatches"]))
    first = report["results"][0]
    assert first == {
        "name": "production/frontend -> production/api tcp/8080", "from": "production/frontend",
        "to": "production/api", "address": "10.42.2.7", "protocol": "tcp", "port": 8080, "method": None, "path": None,
        "query": None, "expected": "allowed", "flow": "frontend-to-api", "observed": "allowed", "match": True,
        "kind": "ok", "detail": "connected to 10.42.2.7:8080"}


def test_probe_mode_hands_the_checked_probes_to_the_prober():
    prober = Prober([{"observed": "denied", "detail": "no answer within 0.5 s"}])
    report = connectivity.connectivity_check("probe", [tcp(port="8080")], timeout="0.5", netns="zt-pod",
                                             ping_path="/usr/bin/ping", prober=prober)
    [(probes, timeout, netns, ping_path)] = prober.calls
    assert (probes[0]["port"], timeout, netns, ping_path) == (8080, 0.5, "zt-pod", "/usr/bin/ping")
    assert report["summary"] == {"probes": 1, "matched": 0, "blocked": 1, "open": 0, "errors": 0}


# --------------------------------------------------------------------------------------
# DNS wire format
# --------------------------------------------------------------------------------------

def test_dns_query_is_a_recursive_a_query():
    assert connectivity.dns_query("api.github.com.", 0x1234) == (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        b"\x03api\x06github\x03com\x00\x00\x01\x00\x01")


@pytest.mark.parametrize("response, rcode", [
    (struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0), "NOERROR"),
    (struct.pack("!HHHHHH", 0x1234, 0x8183, 1, 0, 0, 0), "NXDOMAIN"),
    (struct.pack("!HHHHHH", 0x1234, 0x8185, 1, 0, 0, 0), "REFUSED"),
    (struct.pack("!HHHHHH", 0x1234, 0x8182, 1, 0, 0, 0), "SERVFAIL"),
    (struct.pack("!HHHHHH", 0x1234, 0x8189, 1, 0, 0, 0), "RCODE9"),
    (struct.pack("!HHHHHH", 0x4321, 0x8180, 1, 1, 0, 0), None),  # another query's answer
    (struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0), None),  # a query, not a response
    (b"\x12\x34\x81", None),
])
def test_dns_rcode_of_a_response(response, rcode):
    assert connectivity.dns_rcode(response, 0x1234) == rcode


# --------------------------------------------------------------------------------------
# Socket probes on this machine's loopback
# --------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/v1/data":
            status, body = 200, b'{"items": []}'
        elif self.path == "/forbidden":
            status, body = 403, b"<h1>Forbidden</h1>"
        else:
            status, body = 403, b"Access denied\r\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


class DnsHandler(socketserver.BaseRequestHandler):
    """Answers NOERROR, REFUSED for names under denied., never for names under silent."""

    def handle(self):
        data, reply_socket = self.request
        query_id = struct.unpack("!H", data[:2])[0]
        name = data[12:].split(b"\0")[0]
        if b"silent" in name:
            return
        rcode = 5 if b"denied" in name else 0
        reply_socket.sendto(struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, 0, 0, 0), self.client_address)


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, reply_socket = self.request
        reply_socket.sendto(data, self.client_address)


def serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def loopback():
    """Real listeners on 127.0.0.1 (and ::1 for http); closed ports found by binding and closing."""
    servers = [
        serve(HTTPServer(("127.0.0.1", 0), Handler)),
        serve(socketserver.UDPServer(("127.0.0.1", 0), EchoHandler)),
        serve(socketserver.UDPServer(("127.0.0.1", 0), DnsHandler)),
    ]

    class HTTPServer6(HTTPServer):
        address_family = socket.AF_INET6

    servers.append(serve(HTTPServer6(("::1", 0), Handler)))
    silent_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent_udp.bind(("127.0.0.1", 0))
    mute_tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute_tcp.bind(("127.0.0.1", 0))
    mute_tcp.listen(8)  # accepts connections (the kernel does) and never answers
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    ports = {"http": servers[0].server_address[1], "echo": servers[1].server_address[1],
             "dns": servers[2].server_address[1], "http6": servers[3].server_address[1],
             "silent_udp": silent_udp.getsockname()[1], "mute_tcp": mute_tcp.getsockname()[1], "closed": closed_port}
    try:
        yield ports
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        silent_udp.close()
        mute_tcp.close()


def test_socket_probes_on_loopback(loopback):
    local = {"from": "test", "to": "loopback", "address": "127.0.0.1"}
    probes = connectivity.normalise_probes([
        dict(local, protocol="tcp", port=loopback["http"], expected="allowed"),
        dict(local, protocol="tcp", port=loopback["closed"], expected="denied"),
        dict(local, protocol="udp", port=loopback["echo"], expected="allowed"),
        dict(local, protocol="udp", port=loopback["silent_udp"], expected="denied"),
        dict(local, protocol="udp", port=loopback["closed"], expected="denied"),
        dict(local, protocol="http", port=loopback["http"], path="/api/v1/data", expected="allowed"),
        dict(local, protocol="http", port=loopback["http"], path="/admin", expected="denied"),
        dict(local, protocol="http", port=loopback["http"], path="/forbidden", method="POST", expected="denied"),
        dict(local, protocol="http", port=loopback["mute_tcp"], expected="denied"),
        dict(local, protocol="http", port=loopback["http6"], address="::1", path="/api/v1/data", expected="allowed"),
        dict(local, protocol="dns", port=loopback["dns"], query="kubernetes.default.svc.cluster.local",
             expected="allowed"),
        dict(local, protocol="dns", port=loopback["dns"], query="denied.example.com", expected="denied"),
        dict(local, protocol="dns", port=loopback["dns"], query="silent.example.com", expected="denied"),
        dict(local, protocol="icmp", expected="allowed"),
    ])
    observations = connectivity.run_probes(probes, 0.3, ping_path="ping")
    assert observations == [
        {"observed": "allowed", "detail": "connected to 127.0.0.1:%d" % loopback["http"]},
        {"observed": "no_listener", "detail": "connection refused: nothing listens on tcp port %d at 127.0.0.1"
                                              % loopback["closed"]},
        {"observed": "allowed", "detail": "got a reply of 9 bytes from 127.0.0.1:%d" % loopback["echo"]},
        {"observed": "denied", "detail": "no answer within 0.3 s"},
        {"observed": "no_listener", "detail": "connection refused: nothing listens on udp port %d at 127.0.0.1"
                                              % loopback["closed"]},
        {"observed": "allowed", "detail": "HTTP 200"},
        {"observed": "l7_denied", "detail": "HTTP 403 'Access denied' from Cilium's L7 proxy (Envoy)"},
        {"observed": "allowed", "detail": "HTTP 403"},
        {"observed": "error", "detail": "connected, but no HTTP response within 0.3 s"},
        {"observed": "allowed", "detail": "HTTP 200"},
        {"observed": "allowed", "detail": "DNS answer NOERROR for kubernetes.default.svc.cluster.local"},
        {"observed": "l7_denied", "detail": "DNS answer REFUSED for denied.example.com: Cilium's DNS proxy refuses "
                                            "names the policy does not allow"},
        {"observed": "denied", "detail": "no answer within 0.3 s"},
        {"observed": "allowed", "detail": "echo reply from 127.0.0.1"},
    ]


def test_icmp_probes_without_ping_say_what_to_install():
    probes = connectivity.normalise_probes([tcp(protocol="icmp", port=None)])
    with pytest.raises(connectivity.ProbeSetupError) as raised:
        connectivity.run_probes(probes, 1, ping_path=None)
    assert str(raised.value).startswith("connectivity_check: icmp probes need ping, and there is no ping on ")
    assert str(raised.value).endswith("; install iputils-ping on Debian and Ubuntu, iputils on RHEL, Fedora and SUSE")


def test_probes_run_sixteen_at_a_time(monkeypatch):
    # Two rounds of 16 probes meet at a barrier of 16: a smaller pool would never fill it
    # (BrokenBarrierError), a larger one would have more than 16 inside at once.
    barrier = threading.Barrier(16, timeout=30)
    lock = threading.Lock()
    running = {"now": 0, "most": 0}

    def probe_once(probe, timeout, ping_path=None):
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        barrier.wait()
        with lock:
            running["now"] -= 1
        return {"observed": "allowed", "detail": probe["name"]}

    monkeypatch.setattr(connectivity, "probe_once", probe_once)
    probes = connectivity.normalise_probes([tcp(port=port) for port in range(1, 33)])
    observations = connectivity.probe_all(probes, 1)
    assert [observation["detail"] for observation in observations] == [probe["name"] for probe in probes]
    assert running["most"] == 16


def test_a_probe_that_raises_becomes_an_error_observation(monkeypatch):
    def broken(probe, timeout):
        raise RuntimeError("socket table full")

    monkeypatch.setattr(connectivity, "probe_tcp", broken)
    assert connectivity.probe_once(normalised(), 1) == {
        "observed": "error", "detail": "probe failed: RuntimeError: socket table full"}


# --------------------------------------------------------------------------------------
# The forked child that enters the namespace
# --------------------------------------------------------------------------------------

def probe_namespace_and_pid(argument):
    return {"netns": os.readlink("/proc/self/ns/net"), "pid": os.getpid(), "argument": argument}


def test_the_child_enters_the_namespace_and_the_parent_never_does(monkeypatch):
    # /proc/<pid>/ns/net of this process is a namespace file like those under /var/run/netns.
    monkeypatch.setattr(connectivity, "NETNS_DIR", "/proc/%d/ns" % os.getpid())
    before = os.readlink("/proc/self/ns/net")
    result = connectivity.run_in_netns("net", probe_namespace_and_pid, ["a", 1])
    assert result["netns"] == before
    assert result["pid"] != os.getpid()
    assert result["argument"] == ["a", 1]
    assert os.readlink("/proc/self/ns/net") == before


def test_a_file_that_is_no_namespace_is_reported(monkeypatch, tmp_path):
    (tmp_path / "not-a-netns").write_text("")
    monkeypatch.setattr(connectivity, "NETNS_DIR", str(tmp_path))
    with pytest.raises(connectivity.ProbeSetupError) as raised:
        connectivity.run_in_netns("not-a-netns", probe_namespace_and_pid, None)
    assert str(raised.value) == (
        "connectivity_check: cannot enter network namespace not-a-netns (%s/not-a-netns): Invalid argument" % tmp_path)


def raise_in_child(message):
    raise ValueError(message)


def test_an_error_in_the_child_comes_back_as_a_message(monkeypatch):
    monkeypatch.setattr(connectivity, "NETNS_DIR", "/proc/%d/ns" % os.getpid())
    with pytest.raises(connectivity.ProbeSetupError) as raised:
        connectivity.run_in_netns("net", raise_in_child, "no sockets left")
    assert str(raised.value) == "connectivity_check: no sockets left"


def test_a_missing_namespace_lists_the_existing_ones(monkeypatch, tmp_path):
    (tmp_path / "zt-pod").write_text("")
    monkeypatch.setattr(connectivity, "NETNS_DIR", str(tmp_path))
    with pytest.raises(InvalidInput) as raised:
        connectivity.run_probes(connectivity.normalise_probes([tcp()]), 1, netns="zt-pdo")
    assert str(raised.value).startswith("connectivity_check: netns: 'zt-pdo' does not exist on ")
    assert str(raised.value).endswith(" (ip netns list: zt-pod)")


# --------------------------------------------------------------------------------------
# The connectivity_probes filter
# --------------------------------------------------------------------------------------

FILTERS = connectivity_filters.FilterModule().filters()
ENDPOINTS = [{"name": "lab/w1", "address": "10.42.21.10", "node": "zt-lab-w1"},
             {"name": "lab/w2", "address": "10.42.22.10"},
             {"name": "lab/w3", "address": "FD00::23"}]


def test_filter_makes_one_probe_per_ordered_pair_and_service():
    probes = FILTERS["connectivity_probes"](ENDPOINTS, services=[
        {"protocol": "tcp", "port": 8080, "flow": "lab-open"},
        {"protocol": "http", "port": "8080", "path": "/healthz"},
        {"protocol": "dns"},
        {"protocol": "icmp"},
    ], expected="allowed")
    assert len(probes) == 3 * 2 * 4
    assert probes[:4] == [
        {"from": "lab/w1", "to": "lab/w2", "address": "10.42.22.10", "protocol": "tcp", "port": 8080,
         "flow": "lab-open", "expected": "allowed"},
        {"from": "lab/w1", "to": "lab/w2", "address": "10.42.22.10", "protocol": "http", "port": 8080, "method": "GET",
         "path": "/healthz", "expected": "allowed"},
        {"from": "lab/w1", "to": "lab/w2", "address": "10.42.22.10", "protocol": "dns", "port": 53,
         "query": "kubernetes.default.svc.cluster.local", "expected": "allowed"},
        {"from": "lab/w1", "to": "lab/w2", "address": "10.42.22.10", "protocol": "icmp", "expected": "allowed"},
    ]
    assert [(probe["from"], probe["to"], probe["address"]) for probe in probes[::4]] == [
        ("lab/w1", "lab/w2", "10.42.22.10"), ("lab/w1", "lab/w3", "fd00::23"),
        ("lab/w2", "lab/w1", "10.42.21.10"), ("lab/w2", "lab/w3", "fd00::23"),
        ("lab/w3", "lab/w1", "10.42.21.10"), ("lab/w3", "lab/w2", "10.42.22.10")]
    # What the filter makes, the module takes: names are unique and nothing is refused.
    report = connectivity.connectivity_check("commands", probes)
    assert len(set(result["name"] for result in report["results"])) == 24


def test_filter_with_denied_expectation():
    probes = FILTERS["connectivity_probes"](ENDPOINTS[:2], services=[{"protocol": "tcp", "port": 5432}],
                                            expected="denied")
    assert probes == [
        {"from": "lab/w1", "to": "lab/w2", "address": "10.42.22.10", "protocol": "tcp", "port": 5432,
         "expected": "denied"},
        {"from": "lab/w2", "to": "lab/w1", "address": "10.42.21.10", "protocol": "tcp", "port": 5432,
         "expected": "denied"},
    ]


CP = "connectivity_probes: "
TCP_80 = [{"protocol": "tcp", "port": 80}]

# (case id, input, keyword options, exact message)
FILTER_BAD_INPUTS = [
    ("endpoints-not-a-list", "lab/w1", dict(services=TCP_80, expected="allowed"),
     CP + "endpoints: 'lab/w1' must be a list of at least two {name, address} (one probe goes from each endpoint to "
          "each other one)"),
    ("one-endpoint", ENDPOINTS[:1], dict(services=TCP_80, expected="allowed"),
     CP + "endpoints: [{'name': 'lab/w1', 'address': '10.42.21.10', 'node': 'zt-lab-w1'}] must be a list of at least "
          "two {name, address} (one probe goes from each endpoint to each other one)"),
    ("endpoint-not-a-mapping", [ENDPOINTS[0], "10.42.22.10"], dict(services=TCP_80, expected="allowed"),
     CP + "endpoints[1]: '10.42.22.10' is not a mapping {name, address}"),
    ("endpoint-without-name", [ENDPOINTS[0], {"address": "10.42.22.10"}], dict(services=TCP_80, expected="allowed"),
     CP + "endpoints[1].name: None is missing: give the endpoint's name, e.g. production/api"),
    ("endpoint-host-name", [ENDPOINTS[0], {"name": "w2", "address": "w2.lab"}],
     dict(services=TCP_80, expected="allowed"),
     CP + "endpoints[1].address: 'w2.lab' " + ADDRESS_PROBLEM),
    ("endpoint-names-twice", [ENDPOINTS[0], dict(ENDPOINTS[1], name="lab/w1")],
     dict(services=TCP_80, expected="allowed"),
     CP + "endpoints: ['lab/w1'] name more than one endpoint; give each its own name"),
    ("services-missing", ENDPOINTS, dict(expected="allowed"),
     CP + "services: None must be a non-empty list of {protocol, port, method, path, query, flow}"),
    ("service-not-a-mapping", ENDPOINTS, dict(services=["tcp/80"], expected="allowed"),
     CP + "services[0]: 'tcp/80' is not a mapping {protocol, port, method, path, query, flow}"),
    ("service-unknown-key", ENDPOINTS, dict(services=[{"protocol": "tcp", "port": 80, "expected": "denied"}],
                                            expected="allowed"),
     CP + "services[0]: ['expected'] are unknown keys; accepted: protocol, port, method, path, query, flow"),
    ("service-without-port", ENDPOINTS, dict(services=[{"protocol": "udp"}], expected="allowed"),
     CP + "services[0].port: None is missing: protocol udp needs a port, 1 to 65535"),
    ("service-path-for-tcp", ENDPOINTS, dict(services=[{"protocol": "tcp", "port": 80, "path": "/"}],
                                             expected="allowed"),
     CP + "services[0].path: '/' is only accepted for protocol http (this probe is tcp)"),
    ("service-twice", ENDPOINTS, dict(services=[{"protocol": "http", "port": 80},
                                                {"protocol": "http", "port": 80, "method": "GET", "path": "/"}],
                                      expected="allowed"),
     CP + "services[1]: {'protocol': 'http', 'port': 80, 'method': 'GET', 'path': '/'} probes the same as services[0]"),
    ("expected-missing", ENDPOINTS, dict(services=TCP_80),
     CP + "expected: None is not one of: allowed, denied"),
    ("expected-unknown", ENDPOINTS, dict(services=TCP_80, expected="open"),
     CP + "expected: 'open' is not one of: allowed, denied"),
    ("unknown-option", ENDPOINTS, dict(services=TCP_80, expected="allowed", timeout=1),
     CP + "options: 'timeout' is not one of: services, expected"),
]


@pytest.mark.parametrize("value, options, message", [case[1:] for case in FILTER_BAD_INPUTS],
                         ids=[case[0] for case in FILTER_BAD_INPUTS])
def test_filter_bad_input(value, options, message):
    with pytest.raises(AnsibleFilterError) as raised:
        FILTERS["connectivity_probes"](value, **options)
    assert str(raised.value) == message


def test_filter_reports_every_problem_at_once():
    with pytest.raises(AnsibleFilterError) as raised:
        FILTERS["connectivity_probes"]([ENDPOINTS[0], {"name": "w2"}], services=[{"protocol": "icmp", "port": 1}],
                                       expected="maybe")
    assert str(raised.value) == (
        "connectivity_probes: 3 problem(s) found:\n"
        "- endpoints[1].address: None is missing: give an IPv4 or IPv6 address such as 10.42.1.10 or fd00::10\n"
        "- services[0].port: 1 is not accepted for protocol icmp (ICMP has no ports)\n"
        "- expected: 'maybe' is not one of: allowed, denied")


def test_filter_takes_keyword_options_only():
    with pytest.raises(AnsibleFilterError) as raised:
        FILTERS["connectivity_probes"](ENDPOINTS, TCP_80, "allowed")
    assert str(raised.value) == (
        "connectivity_probes: takes keyword options only (e.g. services=...), got positional "
        "[[{'protocol': 'tcp', 'port': 80}], 'allowed']")
