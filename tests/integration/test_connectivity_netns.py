# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zerotrust.cilium.connectivity_check in probe mode between two real network namespaces.

``zt-itest-cc-a`` and ``zt-itest-cc-b`` are joined by a veth pair (10.255.77.1/24 and
.2, fd00:77::1/64 and ::2). In ``-b`` real listeners run (one Python process started with
``ip netns exec``): TCP on 7001 and 7003, UDP echo on 7002 and 7004, HTTP on 8080 (both
families) answering 200 on /api/v1/data and Envoy's 403 "Access denied" on every other
path, and a DNS responder on 5353 that answers an A record for api.zt.test and REFUSED for
denied.zt.test. An nftables table in ``-b`` drops TCP 7003 and UDP 7004 with counters, as
Cilium drops a denied flow. Nothing listens on 7009.

The module runs through ansible-playbook on localhost with ``netns: zt-itest-cc-a``; the
tests assert what each probe observed, the counters of the drop rules, and that wrong
expectations fail the task with one message naming every mismatch. Everything created here
is removed in the fixture's teardown, also when a test fails.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import select
import subprocess
import sys

import pytest

from helpers import collections_path, run_playbook

from ansible_collections.zerotrust.cilium.plugins.module_utils import connectivity

SOURCE = "zt-itest-cc-a"
DESTINATION = "zt-itest-cc-b"
SOURCE_ADDRESS, DESTINATION_ADDRESS = "10.255.77.1", "10.255.77.2"
SOURCE_ADDRESS6, DESTINATION_ADDRESS6 = "fd00:77::1", "fd00:77::2"
NFT_TABLE = "zt_itest_cc"
TIMEOUT = 0.5

SERVERS = r'''
import socket, socketserver, struct, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Http(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/v1/data":
            status, body = 200, b'{"items": []}'
        else:  # what Cilium's Envoy sends when an L7 rule denies the request
            status, body = 403, b"Access denied\r\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server", "envoy")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Http6(ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Accept(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.close()


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        data, reply = self.request
        reply.sendto(data, self.client_address)


class Dns(socketserver.BaseRequestHandler):
    def handle(self):
        data, reply = self.request
        query_id, = struct.unpack("!H", data[:2])
        end = data.index(b"\0", 12) + 5
        question = data[12:end]
        labels, offset = [], 0
        while question[offset]:
            labels.append(question[offset + 1:offset + 1 + question[offset]].decode())
            offset += 1 + question[offset]
        name = ".".join(labels)
        if name == "api.zt.test":
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton("10.255.77.2")
            reply.sendto(struct.pack("!HHHHHH", query_id, 0x8580, 1, 1, 0, 0) + question + answer, self.client_address)
        else:
            rcode = 5 if name == "denied.zt.test" else 3
            reply.sendto(struct.pack("!HHHHHH", query_id, 0x8580 | rcode, 1, 0, 0, 0) + question, self.client_address)


socketserver.TCPServer.allow_reuse_address = True
servers = [Http6(("::", 8080), Http), socketserver.ThreadingTCPServer(("0.0.0.0", 7001), Accept),
           socketserver.ThreadingTCPServer(("0.0.0.0", 7003), Accept), socketserver.UDPServer(("0.0.0.0", 7002), Echo),
           socketserver.UDPServer(("0.0.0.0", 7004), Echo), socketserver.UDPServer(("0.0.0.0", 5353), Dns)]
for server in servers:
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
'''

PLAYBOOK = """\
- name: Probe from a network namespace
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check connectivity from the source namespace
      zerotrust.cilium.connectivity_check:
        netns: "{{ probe_netns }}"
        timeout: "{{ probe_timeout }}"
        probes: "{{ probe_list }}"
      register: probe_outcome
      ignore_errors: true

    - name: Write the module's result for the test
      ansible.builtin.copy:
        content: "{{ probe_outcome | to_json }}"
        dest: "{{ probe_output }}"
        mode: "0644"
      check_mode: false
"""


def sh(*arguments, check=True, **options):
    return subprocess.run(list(arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=check, **options)


def wait_for_ping(namespace, address, attempts=10):
    """Return once ``address`` answers a ping from ``namespace``; fail after ``attempts`` tries."""
    completed = None
    for _attempt in range(attempts):
        completed = sh("ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "1", address, check=False)
        if completed.returncode == 0:
            return
    raise AssertionError("%s does not answer from %s: %s" % (address, namespace, completed.stdout))


def remove_everything():
    sh("ip", "netns", "exec", DESTINATION, "nft", "delete", "table", "inet", NFT_TABLE, check=False)
    for namespace in (SOURCE, DESTINATION):
        sh("ip", "netns", "delete", namespace, check=False)


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory):
    """Both namespaces, the veth pair, the listeners and the drop rules; all removed afterwards."""
    remove_everything()  # a run killed before its teardown may have left them
    server = None
    try:
        for namespace in (SOURCE, DESTINATION):
            sh("ip", "netns", "add", namespace)
            sh("ip", "-n", namespace, "link", "set", "lo", "up")
        sh("ip", "link", "add", "zt-itest-cca", "netns", SOURCE, "type", "veth", "peer", "name", "zt-itest-ccb",
           "netns", DESTINATION)
        for namespace, device, address, address6 in ((SOURCE, "zt-itest-cca", SOURCE_ADDRESS, SOURCE_ADDRESS6),
                                                     (DESTINATION, "zt-itest-ccb", DESTINATION_ADDRESS,
                                                      DESTINATION_ADDRESS6)):
            sh("ip", "-n", namespace, "address", "add", address + "/24", "dev", device)
            sh("ip", "-n", namespace, "address", "add", address6 + "/64", "dev", device, "nodad")
            sh("ip", "-n", namespace, "link", "set", device, "up")
        sh("ip", "netns", "exec", DESTINATION, "nft", "-f", "-", input=(
            "table inet %s {\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            "    tcp dport 7003 counter drop comment \"zt-itest tcp 7003\"\n"
            "    udp dport 7004 counter drop comment \"zt-itest udp 7004\"\n"
            "  }\n"
            "}\n" % NFT_TABLE))
        # IPv6 on a fresh veth drops the first packets while the link settles: wait until
        # both families carry a ping before anything is measured.
        for address in (DESTINATION_ADDRESS, DESTINATION_ADDRESS6):
            wait_for_ping(SOURCE, address)
        script = tmp_path_factory.mktemp("cc-servers") / "servers.py"
        script.write_text(SERVERS)
        server = subprocess.Popen(["ip", "netns", "exec", DESTINATION, sys.executable, str(script)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True)
        ready, _unused, _unused = select.select([server.stdout], [], [], 30)
        line = server.stdout.readline() if ready else ""
        errors = server.stderr.read() if server.poll() is not None else ""
        assert line == "ready\n", "listeners in %s did not start: %r %s" % (DESTINATION, line, errors)
        yield tmp_path_factory.mktemp("cc-runs")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        remove_everything()


def drop_counters():
    """{comment: packets} of the drop rules in the destination namespace."""
    ruleset = sh("ip", "netns", "exec", DESTINATION, "nft", "list", "table", "inet", NFT_TABLE).stdout
    return {match.group(2): int(match.group(1))
            for match in re.finditer(r'counter packets (\d+) bytes \d+ drop comment "([^"]+)"', ruleset)}


def run_module(scratch, probes, check=False, label="run"):
    playbook = scratch / "probe.yml"
    playbook.write_text(PLAYBOOK)
    output = scratch / ("%s.json" % label)
    completed = run_playbook(str(playbook), check=check, extra_vars={
        "probe_netns": SOURCE, "probe_timeout": TIMEOUT, "probe_list": probes, "probe_output": str(output)})
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    with open(str(output)) as stream:
        return json.load(stream), completed.stdout


def probe(protocol, port=None, expected="allowed", address=DESTINATION_ADDRESS, **extra):
    entry = {"from": SOURCE, "to": DESTINATION, "address": address, "protocol": protocol, "expected": expected}
    if port is not None:
        entry["port"] = port
    entry.update(extra)
    return entry


AS_PLANNED = [
    (probe("tcp", 7001), "allowed", "connected to 10.255.77.2:7001"),
    (probe("tcp", 7003, "denied"), "denied", "no answer within 0.5 s"),
    (probe("udp", 7002), "allowed", "got a reply of 9 bytes from 10.255.77.2:7002"),
    (probe("udp", 7004, "denied"), "denied", "no answer within 0.5 s"),
    (probe("http", 8080, path="/api/v1/data", flow="api-read"), "allowed", "HTTP 200"),
    (probe("http", 8080, "denied", path="/admin", flow="api-read"), "l7_denied",
     "HTTP 403 'Access denied' from Cilium's L7 proxy (Envoy)"),
    (probe("http", 8080, address=DESTINATION_ADDRESS6, path="/api/v1/data", name="api over ipv6"), "allowed",
     "HTTP 200"),
    (probe("dns", 5353, query="api.zt.test"), "allowed", "DNS answer NOERROR for api.zt.test"),
    (probe("dns", 5353, "denied", query="denied.zt.test"), "l7_denied",
     "DNS answer REFUSED for denied.zt.test: Cilium's DNS proxy refuses names the policy does not allow"),
    (probe("dns", 5353, query="missing.zt.test"), "allowed", "DNS answer NXDOMAIN for missing.zt.test"),
    (probe("icmp"), "allowed", "echo reply from 10.255.77.2"),
    (probe("icmp", address=DESTINATION_ADDRESS6, name="ping over ipv6"), "allowed", "echo reply from fd00:77::2"),
]


def test_probes_observe_what_the_namespaces_do_even_in_check_mode(namespaces):
    before = drop_counters()
    result, stdout = run_module(namespaces, [entry for entry, _observed, _detail in AS_PLANNED], check=True,
                                label="as-planned")
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False
    assert [(entry["observed"], entry["detail"]) for entry in result["results"]] == [
        (observed, detail) for _entry, observed, detail in AS_PLANNED]
    assert all(entry["kind"] == "ok" for entry in result["results"])
    assert result["summary"] == {"probes": 12, "matched": 12, "blocked": 0, "open": 0, "errors": 0}
    assert result["mismatches"] == []
    assert result["table"][0].split() == ["FROM", "TO", "PROBE", "EXPECTED", "OBSERVED", "RESULT", "FLOW"]
    assert result["table"][6].split() == [SOURCE, DESTINATION, "http/8080", "GET", "/admin", "denied", "l7_denied",
                                          "ok", "api-read"]
    assert result["matrix"]["sources"] == [SOURCE] and result["matrix"]["targets"] == [DESTINATION]
    assert len(result["matrix"]["cells"]["%s|%s" % (SOURCE, DESTINATION)]) == 12
    # The denied probes were really dropped by the rules (check mode still sends them).
    after = drop_counters()
    assert after["zt-itest tcp 7003"] > before["zt-itest tcp 7003"]
    assert after["zt-itest udp 7004"] > before["zt-itest udp 7004"]
    assert re.search(r"localhost\s+: ok=2 .*failed=0 .*ignored=0", stdout), stdout[-1500:]


def test_wrong_expectations_fail_the_task_naming_every_mismatch(namespaces):
    probes = [
        probe("tcp", 7001, "denied"),
        probe("tcp", 7003),
        probe("tcp", 7009, "denied", name="closed port, denied"),
        probe("tcp", 7009, name="closed port, allowed"),
        probe("http", 8080, path="/admin"),
        probe("udp", 7009, "denied"),
        probe("tcp", 80, "denied", address="10.99.0.1", to="outside"),
        probe("tcp", 7001, name="as planned"),
    ]
    result, stdout = run_module(namespaces, probes, label="wrong")
    assert result["failed"] is True
    assert [(entry["observed"], entry["kind"]) for entry in result["results"]] == [
        ("allowed", "open"), ("denied", "blocked"), ("no_listener", "open"), ("no_listener", "probe_error"),
        ("l7_denied", "blocked"), ("no_listener", "open"), ("error", "probe_error"), ("allowed", "ok")]
    pair = "%s -> %s" % (SOURCE, DESTINATION)
    assert result["msg"] == (
        "connectivity_check: 7 of 8 probes do not match the plan: "
        "%(pair)s tcp/7001: expected denied but open (allowed: connected to 10.255.77.2:7001); "
        "%(pair)s tcp/7003: expected allowed but blocked (denied: no answer within 0.5 s); "
        "closed port, denied (%(pair)s tcp/7009): expected denied but open (connection refused by the destination, so "
        "the packet got through); "
        "closed port, allowed (%(pair)s tcp/7009): probe error: the probe workload at 10.255.77.2 does not listen on "
        "tcp port 7009, so the network path cannot be judged; "
        "%(pair)s http/8080 GET /admin: expected allowed but blocked (l7_denied: HTTP 403 'Access denied' from "
        "Cilium's L7 proxy (Envoy)); "
        "%(pair)s udp/7009: expected denied but open (connection refused by the destination, so the packet got "
        "through); "
        "%(source)s -> outside tcp/80: probe error, the network path cannot be judged: connect to 10.99.0.1:80: "
        "Network is unreachable" % {"pair": pair, "source": SOURCE})
    assert result["summary"] == {"probes": 8, "matched": 1, "blocked": 2, "open": 3, "errors": 2}
    assert len(result["mismatches"]) == 7
    assert re.search(r"localhost\s+: ok=2 .*failed=0 .*ignored=1", stdout), stdout[-1500:]


def test_the_probes_run_in_the_namespace_and_this_process_stays_in_its_own(namespaces):
    own = os.stat("/proc/self/ns/net").st_ino
    assert own != os.stat(os.path.join(connectivity.NETNS_DIR, SOURCE)).st_ino
    probes = connectivity.normalise_probes([probe("tcp", 7001), probe("tcp", 7003, "denied")])
    observations = connectivity.run_probes(probes, TIMEOUT, netns=SOURCE)
    # 10.255.77.2 exists only behind the veth of the source namespace.
    assert [observation["observed"] for observation in observations] == ["allowed", "denied"]
    assert os.stat("/proc/self/ns/net").st_ino == own


@pytest.mark.parametrize("plugin_type, name, options", [
    ("module", "zerotrust.cilium.connectivity_check",
     ["exec_results", "fail_on_mismatch", "mode", "netns", "probes", "timeout"]),
    ("filter", "zerotrust.cilium.connectivity_probes", ["_input", "expected", "services"]),
])
def test_ansible_doc_renders(plugin_type, name, options):
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1")
    as_json = sh(ansible_doc, "--json", "-t", plugin_type, name, env=environment)
    doc = json.loads(as_json.stdout)[name]
    assert sorted(doc["doc"]["options"]) == options
    assert doc["examples"].strip()
    assert doc["return"]
    if plugin_type == "module":
        assert sorted(doc["doc"]["options"]["probes"]["suboptions"]) == sorted(connectivity.PROBE_KEYS)
        assert sorted(doc["return"]) == ["commands", "matrix", "mismatches", "mode", "results", "summary", "table"]
    text = sh(ansible_doc, "-t", plugin_type, name, env=environment)
    assert text.stderr == ""
    assert name in text.stdout
