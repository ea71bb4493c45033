# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zerotrust.cilium.kube_proxy_cleanup against real iptables, ip6tables and nftables.

Each test creates network namespaces of its own (``zt-itest-kp-<pid>-<n>``; iptables and
nftables state is per namespace), loads a kube-proxy rule set from fixtures/kube_proxy/
into them with the real ``iptables-restore``/``nft``, runs the module through
``ansible-playbook`` inside the namespace with ``ip netns exec``, and compares what
``iptables-save -c`` prints afterwards with a second namespace loaded with the
hand-written expected remainder: byte for byte, counters included. Both iptables
backends of this machine are tested: nft (Debian's default ``iptables``) and legacy.

What this machine's kernel cannot do is said by the tests themselves, not skipped: it has
no IPVS (``CONFIG_IP_VS``), so no IPVS virtual service can exist and the module must report
IPVS as unavailable; without the ``ipset`` program no set can be created, so the IPVS-mode
rule set is loaded in the form that matches addresses instead of ipsets; and without
``CONFIG_DUMMY`` the ``kube-ipvs0`` interface is made a bridge (the module removes it by
name, as kube-proxy's own cleanup does, whatever its kind).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools
import json
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT, ansible_playbook_command, collections_path
from mock_api import mock_kube_api, read_state

FIXTURES = os.path.join(ROOT, "tests", "integration", "fixtures", "kube_proxy")
PLAYBOOK = os.path.join(FIXTURES, "cleanup.yml")
PREFIX = {"ipv4": "iptables", "ipv6": "ip6tables"}
BACKENDS = ("nft", "legacy")
_NAMES = itertools.count()

# (rule files per family, expected remainder per family, counts per family and table)
IPTABLES_MODE = (
    {"ipv4": "iptables-mode.v4.rules", "ipv6": "iptables-mode.v6.rules"},
    {"ipv4": "iptables-mode.v4.expected.rules", "ipv6": "iptables-mode.v6.expected.rules"},
    {"ipv4": {"mangle": {"chains": 3, "rules": 0}, "filter": {"chains": 8, "rules": 15},
              "nat": {"chains": 21, "rules": 48}},
     "ipv6": {"mangle": {"chains": 3, "rules": 0}, "filter": {"chains": 7, "rules": 12},
              "nat": {"chains": 12, "rules": 24}}},
)
IPVS_MODE = (
    {"ipv4": "ipvs-mode-noipset.v4.rules"},
    {"ipv4": "ipvs-mode-noipset.v4.expected.rules"},
    {"ipv4": {"filter": {"chains": 9, "rules": 19}, "nat": {"chains": 7, "rules": 14}}, "ipv6": {}},
)


def sh(*arguments, check=True, **options):
    return subprocess.run(list(arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=check, **options)


@pytest.fixture
def make_netns():
    """Create network namespaces on demand; every one is deleted again, even on failure."""
    created = []

    def make():
        name = "zt-itest-kp-%d-%d" % (os.getpid(), next(_NAMES))
        sh("ip", "netns", "add", name)
        created.append(name)
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    try:
        yield make
    finally:
        for name in created:
            sh("ip", "netns", "delete", name, check=False)


def in_netns(namespace, *arguments, **options):
    return sh("ip", "netns", "exec", namespace, *arguments, **options)


def load_rules(namespace, family, backend, fixture):
    with open(os.path.join(FIXTURES, fixture)) as stream:
        in_netns(namespace, "%s-%s-restore" % (PREFIX[family], backend), "-c", input=stream.read())


def save(namespace, family, backend):
    """``iptables-save -c`` of one family and backend, without its timestamped comment lines."""
    output = in_netns(namespace, "%s-%s-save" % (PREFIX[family], backend), "-c").stdout
    return "".join(line + "\n" for line in output.splitlines() if not line.startswith("#"))


def nft_ruleset(namespace):
    """``nft list ruleset`` as {table: its listing}; tables are independent, their order is not."""
    tables = {}
    current = None
    for line in in_netns(namespace, "nft", "list", "ruleset").stdout.splitlines():
        if line.startswith("table "):
            current = line
            tables[current] = []
        tables[current].append(line)
    return dict((table, "\n".join(lines)) for table, lines in tables.items())


def run_cleanup(namespace, tmp_path, check=False, diff=False, **extra_vars):
    """Run the module through ansible-playbook inside ``namespace``; return (process, result)."""
    result_file = str(tmp_path / ("result-%d.json" % next(_NAMES)))
    extra_vars["result_file"] = result_file
    command = ["ip", "netns", "exec", namespace, ansible_playbook_command(), PLAYBOOK,
               "--inventory", "localhost,", "--connection", "local", "--extra-vars", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0",
                       ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    process = subprocess.run(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=600, check=False)
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-2000:]
    with open(result_file) as stream:
        return process, json.load(stream)


def prepared(make_netns, backend, fixtures):
    namespace = make_netns()
    for family, fixture in fixtures.items():
        load_rules(namespace, family, backend, fixture)
    return namespace


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule_set", [IPTABLES_MODE, IPVS_MODE], ids=["iptables-mode", "ipvs-mode"])
def test_cleanup_removes_exactly_kube_proxys_state(make_netns, tmp_path, backend, rule_set):
    rules, expected, counts = rule_set
    node = prepared(make_netns, backend, rules)
    oracle = prepared(make_netns, backend, expected)
    before = dict((family, save(node, family, backend)) for family in rules)
    assert all("KUBE-SERVICES" in text for text in before.values())

    _process, result = run_cleanup(node, tmp_path, backends=[backend])

    assert result["changed"] is True
    assert result["counts"] == counts
    for family in rules:
        after = save(node, family, backend)
        # Everything but kube-proxy's state is byte for byte what the hand-written
        # remainder gives when loaded on its own, counters included.
        assert after == save(oracle, family, backend), family
        assert not re.search(r"(^:KUBE-|-[jg] KUBE-\S+$)", after, re.MULTILINE), after
    removed = [entry for entry in result["iptables"] if entry["backend"] == backend]
    assert {(entry["family"], entry["table"]) for entry in removed} == {
        (family, table) for family, tables in counts.items() for table in tables}

    _process, second = run_cleanup(node, tmp_path, backends=[backend])
    assert second["changed"] is False
    assert second["iptables"] == []
    assert all(save(node, family, backend) == save(oracle, family, backend) for family in rules)


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_mode_reports_everything_and_changes_nothing(make_netns, tmp_path, backend):
    rules, _expected, counts = IPTABLES_MODE
    node = prepared(make_netns, backend, rules)
    before = dict((family, save(node, family, backend)) for family in rules)

    process, result = run_cleanup(node, tmp_path, check=True, diff=True, backends=[backend])

    assert result["changed"] is True
    assert result["counts"] == counts
    assert dict((family, save(node, family, backend)) for family in rules) == before
    nat = [entry for entry in result["diff"] if entry["before_header"].endswith("(%s) table nat" % backend)]
    assert len(nat) == 2  # IPv4 and IPv6
    assert "-A KUBE-SVC-NPX46M4PTMTKRN6Y" in nat[0]["before"] and "KUBE-SVC" not in nat[0]["after"]
    assert "-A CILIUM_POST_nat" in nat[0]["after"]
    # --diff shows the removed rules to the person running the play.
    assert '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in process.stdout


def test_both_backends_are_cleaned_by_default(make_netns, tmp_path):
    node = make_netns()
    for backend in BACKENDS:
        load_rules(node, "ipv4", backend, "iptables-mode.v4.rules")
    _process, result = run_cleanup(node, tmp_path)
    assert result["counts"]["ipv4"] == {"mangle": {"chains": 6, "rules": 0}, "filter": {"chains": 16, "rules": 30},
                                        "nat": {"chains": 42, "rules": 96}}
    assert {(entry["backend"], entry["in_use"]) for entry in result["backends"] if entry["family"] == "ipv4"} == {
        ("nft", True), ("legacy", True)}
    with open(os.path.join(FIXTURES, "iptables-mode.v4.expected.rules")) as stream:
        expected_lines = [line for line in stream.read().splitlines() if not line.startswith("#")]
    for backend in BACKENDS:
        assert sorted(save(node, "ipv4", backend).splitlines()) == sorted(expected_lines), backend


def test_chains_kubelet_recreates_can_be_kept(make_netns, tmp_path):
    node = prepared(make_netns, "nft", {"ipv4": "iptables-mode.v4.rules"})
    oracle = prepared(make_netns, "nft", {"ipv4": "iptables-mode.v4.expected-kubelet-kept.rules"})
    keep = ["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY", "KUBE-FIREWALL"]
    _process, result = run_cleanup(node, tmp_path, families=["ipv4"], backends=["nft"], keep_chains=keep)
    assert result["changed"] is True
    assert save(node, "ipv4", "nft") == save(oracle, "ipv4", "nft")
    assert "-A INPUT -j KUBE-FIREWALL" in save(node, "ipv4", "nft")


def test_nftables_mode_tables_are_deleted_and_other_tables_kept(make_netns, tmp_path):
    node = prepared(make_netns, "nft", {"ipv4": "iptables-mode.v4.rules"})
    oracle = prepared(make_netns, "nft", {"ipv4": "iptables-mode.v4.expected.rules"})
    for namespace, files in ((node, ["nftables-mode.nft", "nftables-unrelated.nft"]),
                             (oracle, ["nftables-unrelated.nft"])):
        for name in files:
            in_netns(namespace, "nft", "-f", os.path.join(FIXTURES, name))
    assert "table ip6 kube-proxy" in in_netns(node, "nft", "list", "tables").stdout

    _process, result = run_cleanup(node, tmp_path, backends=["nft"])

    assert result["nftables"] == {"available": True, "removed": ["ip kube-proxy", "ip6 kube-proxy"]}
    # The whole nftables ruleset (iptables-nft's tables included) equals the oracle's, table by table.
    assert nft_ruleset(node) == nft_ruleset(oracle)
    assert "kube-proxy" not in in_netns(node, "nft", "list", "tables").stdout
    _process, second = run_cleanup(node, tmp_path, backends=["nft"])
    assert second["changed"] is False


def test_kube_ipvs0_is_removed_and_ipvs_reported_as_this_kernel_has_it(make_netns, tmp_path):
    node = prepared(make_netns, "nft", {"ipv4": "ipvs-mode-noipset.v4.rules"})
    dummy = in_netns(node, "ip", "link", "add", "kube-ipvs0", "type", "dummy", check=False)
    kind = "dummy"
    if dummy.returncode != 0:  # this kernel has no CONFIG_DUMMY: the same name on a bridge
        in_netns(node, "ip", "link", "add", "kube-ipvs0", "type", "bridge")
        kind = "bridge"
    for address in ("10.43.0.1/32", "10.43.0.10/32"):
        in_netns(node, "ip", "addr", "add", address, "dev", "kube-ipvs0")
    in_netns(node, "ip", "link", "add", "docker0", "type", "bridge")
    in_netns(node, "ip", "addr", "add", "172.17.0.1/16", "dev", "docker0")
    kernel_has_ipvs = in_netns(node, "test", "-e", "/proc/net/ip_vs", check=False).returncode == 0

    _process, checked = run_cleanup(node, tmp_path, check=True, backends=["nft"], service_cidrs=["10.43.0.0/16"])
    assert checked["interface"] == {"name": "kube-ipvs0", "present": True, "kind": kind,
                                    "addresses": ["10.43.0.1/32", "10.43.0.10/32"], "removed": True}
    assert in_netns(node, "ip", "link", "show", "kube-ipvs0", check=False).returncode == 0

    _process, result = run_cleanup(node, tmp_path, backends=["nft"], service_cidrs=["10.43.0.0/16"])

    assert result["interface"]["removed"] is True
    assert in_netns(node, "ip", "link", "show", "kube-ipvs0", check=False).returncode != 0
    assert "inet 172.17.0.1/16" in in_netns(node, "ip", "addr", "show", "docker0").stdout
    assert result["ipvs"]["available"] is kernel_has_ipvs
    if not kernel_has_ipvs:
        assert "/proc/net/ip_vs does not exist" in result["ipvs"]["reason"]
        assert result["ipvs"]["removed"] == []
    _process, second = run_cleanup(node, tmp_path, backends=["nft"], service_cidrs=["10.43.0.0/16"])
    assert second["changed"] is False
    assert second["interface"]["present"] is False


def test_a_table_iptables_cannot_represent_is_never_written(make_netns, tmp_path):
    node = prepared(make_netns, "nft", {"ipv4": "iptables-mode.v4.rules"})
    # A base chain added with nft at a priority iptables does not use makes iptables-nft-save
    # warn that it cannot show the nat table completely; restoring it would destroy that chain.
    in_netns(node, "nft", "add", "chain", "ip", "nat", "sidecar",
             "{ type nat hook prerouting priority -50; policy accept; }")
    before = save(node, "ipv4", "nft")
    ruleset_before = nft_ruleset(node)

    _process, result = run_cleanup(node, tmp_path, families=["ipv4"], backends=["nft"], expect_failure=True)

    assert result["failed"] is True
    assert "table 'nat' holds kube-proxy rules but cannot be rewritten with iptables" in result["msg"]
    assert "incompatible" in result["msg"]
    assert "Traceback" not in result["msg"]
    # The check comes before any table is written: the other tables were not touched either.
    assert save(node, "ipv4", "nft") == before
    assert nft_ruleset(node) == ruleset_before


# ------------------------------------------------- the role's node entry point, for real

NODE_PLAYBOOK = os.path.join(FIXTURES, "node.yml")
API_ADDRESS = "172.31.213.11"  # also the endpoint kube-proxy DNATs 10.43.0.1:443 to
LISTENER = """
import socket, sys, time
listeners = []
for port in sys.argv[1:]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", int(port)))
    listener.listen(64)
    listeners.append(listener)
print("listening", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def service_node(make_netns):
    """A namespace with kube-proxy's iptables-mode rules, the kubernetes ClusterIP and the API
    server address on lo, and a process listening on 443 and 6443: the API server, and what
    Cilium's socket load balancing answers on the ClusterIP once kube-proxy's DNAT is gone.
    Before the cleanup kube-proxy's rules DNAT 10.43.0.1:443 to the API server on 6443."""
    node = prepared(make_netns, "nft", {"ipv4": "iptables-mode.v4.rules", "ipv6": "iptables-mode.v6.rules"})
    for address in ("10.43.0.1/32", API_ADDRESS + "/32"):
        in_netns(node, "ip", "addr", "add", address, "dev", "lo")
    listener = subprocess.Popen(["ip", "netns", "exec", node, sys.executable, "-c", LISTENER, "443", "6443"],
                                stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert listener.stdout.readline().strip() == "listening"
        yield node, listener
    finally:
        listener.kill()
        listener.wait()


def run_node_role(namespace, tmp_path, check=False, **extra_vars):
    settings = {
        "kube_proxy_removal_enabled": True,
        "zerotrust_mode": "apply",
        "zerotrust_output_dir": str(tmp_path / "output"),
        "zerotrust_api_server_host": API_ADDRESS,
        "zerotrust_api_server_port": 6443,
        "zerotrust_service_cidr": "10.43.0.0/16",
        "kube_proxy_removal_probe_timeout": 2,
    }
    settings.update(extra_vars)
    command = ["ip", "netns", "exec", namespace, ansible_playbook_command(), NODE_PLAYBOOK,
               "--inventory", "localhost,", "--connection", "local", "--extra-vars", json.dumps(settings)]
    if check:
        command.append("--check")
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0",
                       ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    return subprocess.run(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600, check=False)


def recap_of(stdout):
    line = [line for line in stdout.splitlines() if line.startswith("localhost ")][-1]
    return dict((name, int(value)) for name, value in (pair.split("=") for pair in line.split(":", 1)[1].split()))


def without_counters(text):
    """The probes send packets, so counters move; the rules must not."""
    return re.sub(r"\[\d+:\d+\]", "[-]", text)


def test_node_entry_point_cleans_the_node_then_checks_services(service_node, tmp_path):
    node, _listener = service_node
    before = without_counters(save(node, "ipv4", "nft"))

    # Check mode changes no rule; the probes still run (kube-proxy's DNAT answers them).
    checked = run_node_role(node, tmp_path, check=True)
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert without_counters(save(node, "ipv4", "nft")) == before

    applied = run_node_role(node, tmp_path)
    assert applied.returncode == 0, applied.stdout[-4000:]
    assert recap_of(applied.stdout)["changed"] == 1
    after = save(node, "ipv4", "nft")
    assert "KUBE-SVC-" not in after and "KUBE-SERVICES" not in after.replace(
        'unrelated to KUBE-SERVICES', '').replace('-j KUBE-SERVICES" -j DROP', '')
    # The role keeps the chains kubelet re-creates.
    assert ":KUBE-FIREWALL - [0:0]" in after and "-A INPUT -j KUBE-FIREWALL" in after
    assert "kube_proxy_removal: localhost reaches kubernetes Service ClusterIP, API endpoint without kube-proxy" \
        in applied.stdout

    again = run_node_role(node, tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap_of(again.stdout)["changed"] == 0


def test_node_entry_point_stops_when_a_service_does_not_answer(service_node, tmp_path):
    node, listener = service_node
    listener.kill()
    listener.wait()
    extra_probe = {"name": "kube-dns", "host": "10.43.0.1", "port": 53}
    failed = run_node_role(node, tmp_path, kube_proxy_removal_extra_probes=[extra_probe])
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-4000:]
    for fragment in ("kube_proxy_removal: from localhost,",
                     "kubernetes Service ClusterIP 10.43.0.1:443 (Timeout when waiting for 10.43.0.1:443)",
                     "API endpoint without kube-proxy 172.31.213.11:6443", "kube-dns 10.43.0.1:53",
                     "ansible-playbook zerotrust.cilium.kube_proxy_restore -i localhost,"):
        assert fragment in output, (fragment, output[-4000:])
    assert "Traceback" not in output
    # The cleanup itself ran before the checks.
    assert "KUBE-SVC-" not in save(node, "ipv4", "nft")


# ------------------------- the whole removal and rollback, against a MOCK Kubernetes API
#
# No Kubernetes API can run here. fixtures/mock_kube_api.py is a mock API server
# (discovery, get/list/create/patch/delete, pod exec over WebSocket) holding the mock
# objects of fixtures/kube_proxy/cluster/; it runs inside the test's network namespace next
# to the node's real iptables rules, so playbooks/kube_proxy_removal.yml and
# playbooks/kube_proxy_restore.yml run unchanged: gates against the mock API, backups and
# deletions through kubernetes.core, the node cleanup on real iptables, the TCP checks
# against real listeners.

REMOVAL_PLAYBOOK = os.path.join(ROOT, "playbooks", "kube_proxy_removal.yml")
RESTORE_PLAYBOOK = os.path.join(ROOT, "playbooks", "kube_proxy_restore.yml")
AGENT_PODS = (("cilium-7xk2p", "zt-lab-cp1"), ("cilium-bq9ft", "zt-lab-w1"), ("cilium-zzr4m", "zt-lab-w2"))


def cluster_fixture(name):
    with open(os.path.join(FIXTURES, "cluster", name)) as stream:
        data = json.load(stream)
    if isinstance(data, dict):
        data.pop("_comment", None)
    return data


def mock_cluster_state():
    import yaml

    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": "cilium"}},
             "spec": {"nodeName": node}, "status": {"phase": "Running"}} for name, node in AGENT_PODS]
    pods += [{"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "kube-proxy-%s" % suffix, "namespace": "kube-system",
                           "labels": {"k8s-app": "kube-proxy"}},
              "spec": {"nodeName": node}, "status": {"phase": "Running"}}
             for suffix, (_name, node) in zip(("4hw2x", "9ltzq", "rk7pd"), AGENT_PODS)]
    cluster_configuration = cluster_fixture("kubeadm-cluster-configuration.json")["v1beta4"]
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "data": cluster_fixture("cilium-config.json")["data"],
         "metadata": {"name": "cilium-config", "namespace": "kube-system"}},
        cluster_fixture("cilium-daemonset.json"),
        cluster_fixture("kube-proxy-daemonset.json"),
        cluster_fixture("kube-proxy-configmap.json"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
         "data": {"ClusterConfiguration": yaml.safe_dump(cluster_configuration)}},
    ] + cluster_fixture("services.json")["items"] + pods
    status = json.dumps(cluster_fixture("agent-status-ok.json")["status"])
    services = json.dumps(cluster_fixture("agent-services.json"))
    answers = dict((name, {"cilium-dbg status -o json": status, "cilium-dbg service list -o json": services})
                   for name, _node in AGENT_PODS)
    return {"objects": objects, "exec": answers, "requests": []}


class MockCluster(object):
    def __init__(self, state_file):
        self.state_file = state_file

    def read(self):
        return read_state(self.state_file)

    def find(self, kind, name):
        return [obj for obj in self.read()["objects"] if obj["kind"] == kind and obj["metadata"]["name"] == name]


@pytest.fixture
def mock_cluster(service_node, tmp_path):
    """The service node's namespace with a mock Kubernetes API listening inside it."""
    node, _listener = service_node
    with mock_kube_api(tmp_path, mock_cluster_state(), netns=node) as (state_file, kubeconfig):
        cluster = MockCluster(state_file)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"children": {"k8s_cluster": {"hosts": {"zt-itest-kp-node": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
        cluster.node = node
        cluster.kubeconfig = kubeconfig
        cluster.inventory = str(inventory)
        cluster.output_dir = str(tmp_path / "output")
        yield cluster


def run_against_mock(cluster, playbook, check=False, **extra_vars):
    settings = {
        "kube_proxy_removal_enabled": True,
        "zerotrust_mode": "apply",
        "zerotrust_output_dir": cluster.output_dir,
        "zerotrust_kubeconfig": cluster.kubeconfig,
        "zerotrust_api_server_host": API_ADDRESS,
        "zerotrust_api_server_port": 6443,
        "zerotrust_service_cidr": "10.43.0.0/16,fd00:43::/108",
        "kube_proxy_removal_probe_timeout": 2,
        "kube_proxy_removal_wait_timeout": 10,
    }
    settings.update(extra_vars)
    command = ["ip", "netns", "exec", cluster.node, ansible_playbook_command(), playbook,
               "--inventory", cluster.inventory, "--extra-vars", json.dumps(settings)]
    if check:
        command.append("--check")
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0",
                       ANSIBLE_PYTHON_INTERPRETER=sys.executable, K8S_AUTH_KUBECONFIG=cluster.kubeconfig)
    return subprocess.run(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=900, check=False)


def recap_changes(stdout):
    changes = {}
    for line in stdout.split("PLAY RECAP", 1)[-1].splitlines():
        if ":" in line and "changed=" in line:
            host, counters = line.split(":", 1)
            changes[host.strip()] = int(counters.split("changed=")[1].split()[0])
    return changes


def test_removal_and_rollback_against_a_mock_api(mock_cluster):
    import yaml

    backup_dir = os.path.join(mock_cluster.output_dir, "kube-proxy-removal", "backup")
    kube_proxy_ds = cluster_fixture("kube-proxy-daemonset.json")

    checked = run_against_mock(mock_cluster, REMOVAL_PLAYBOOK, check=True)
    assert checked.returncode == 0, checked.stdout[-6000:]
    assert mock_cluster.find("DaemonSet", "kube-proxy") and mock_cluster.find("ConfigMap", "kube-proxy")
    assert not [request for request in mock_cluster.read()["requests"] if request[0] != "EXEC"]
    assert "KUBE-SVC-" in save(mock_cluster.node, "ipv4", "nft")

    removed = run_against_mock(mock_cluster, REMOVAL_PLAYBOOK)
    assert removed.returncode == 0, removed.stdout[-6000:]
    assert "kube_proxy_removal: every gate holds" in removed.stdout
    # Every agent was asked, through the mock API's exec.
    asked = [request for request in mock_cluster.read()["requests"] if request[0] == "EXEC"]
    assert {request[1] for request in asked} == {name for name, _node in AGENT_PODS}
    # Backed up, then deleted, in that order, and the backup can be applied again.
    with open(os.path.join(backup_dir, "daemonset-kube-proxy.yaml")) as stream:
        backup = yaml.safe_load(stream)
    assert backup["spec"] == kube_proxy_ds["spec"]
    assert "status" not in backup and "uid" not in backup["metadata"]
    assert os.path.exists(os.path.join(backup_dir, "configmap-kube-proxy.yaml"))
    assert mock_cluster.find("DaemonSet", "kube-proxy") == [] and mock_cluster.find("ConfigMap", "kube-proxy") == []
    assert [pod for pod in mock_cluster.read()["objects"] if pod["metadata"]["name"].startswith("kube-proxy-")] == []
    writes = [request[:2] + request[3:] for request in mock_cluster.read()["requests"] if request[0] != "EXEC"]
    assert writes == [["DELETE", "DaemonSet", "kube-proxy"], ["DELETE", "ConfigMap", "kube-proxy"],
                      ["PATCH", "ConfigMap", "kubeadm-config"]]
    kubeadm = yaml.safe_load(mock_cluster.find("ConfigMap", "kubeadm-config")[0]["data"]["ClusterConfiguration"])
    assert kubeadm["proxy"] == {"disabled": True}
    with open(os.path.join(backup_dir, "kubeadm-config.yaml")) as stream:
        original = yaml.safe_load(yaml.safe_load(stream)["data"]["ClusterConfiguration"])
    assert original["proxy"] == {}
    # The node was cleaned, then checked.
    assert "KUBE-SVC-" not in save(mock_cluster.node, "ipv4", "nft")
    assert "kube_proxy_removal: zt-itest-kp-node reaches" in removed.stdout

    again = run_against_mock(mock_cluster, REMOVAL_PLAYBOOK)
    assert again.returncode == 0, again.stdout[-6000:]
    assert recap_changes(again.stdout) == {"zt-itest-kp-node": 0}
    with open(os.path.join(backup_dir, "daemonset-kube-proxy.yaml")) as stream:
        assert yaml.safe_load(stream) == backup, "a later run must not overwrite the backup"

    restored = run_against_mock(mock_cluster, RESTORE_PLAYBOOK)
    assert restored.returncode == 0, restored.stdout[-6000:]
    daemonset = mock_cluster.find("DaemonSet", "kube-proxy")
    assert len(daemonset) == 1 and daemonset[0]["spec"] == kube_proxy_ds["spec"]
    assert mock_cluster.find("ConfigMap", "kube-proxy")[0]["data"] == cluster_fixture(
        "kube-proxy-configmap.json")["data"]
    kubeadm = yaml.safe_load(mock_cluster.find("ConfigMap", "kubeadm-config")[0]["data"]["ClusterConfiguration"])
    assert "disabled" not in kubeadm.get("proxy", {})
    restored_again = run_against_mock(mock_cluster, RESTORE_PLAYBOOK)
    assert restored_again.returncode == 0, restored_again.stdout[-6000:]
    assert recap_changes(restored_again.stdout) == {"zt-itest-kp-node": 0}


def test_failed_gates_change_nothing_anywhere(mock_cluster):
    state = mock_cluster.read()
    for obj in state["objects"]:
        if obj["kind"] == "DaemonSet" and obj["metadata"]["name"] == "cilium":
            for entry in obj["spec"]["template"]["spec"]["containers"][0]["env"]:
                if entry["name"] == "KUBERNETES_SERVICE_HOST":
                    entry["value"] = "10.43.0.1"
    del state["exec"]["cilium-zzr4m"]  # this agent's cilium-dbg fails
    with open(mock_cluster.state_file, "w") as stream:
        json.dump(state, stream)
    rules_before = without_counters(save(mock_cluster.node, "ipv4", "nft"))

    failed = run_against_mock(mock_cluster, REMOVAL_PLAYBOOK)

    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-6000:]
    assert ("kube_proxy_removal: nothing was changed, because gate cilium_api_endpoint failed: "
            "KUBERNETES_SERVICE_HOST '10.43.0.1' is the 'kubernetes' ClusterIP; gate cilium_agents_reporting "
            "failed: zt-lab-w2 (pod cilium-zzr4m): mock: no answer for 'cilium-dbg status -o json'") in output
    assert mock_cluster.find("DaemonSet", "kube-proxy") and mock_cluster.find("ConfigMap", "kube-proxy")
    assert [request for request in mock_cluster.read()["requests"] if request[0] != "EXEC"] == []
    assert not os.path.exists(os.path.join(mock_cluster.output_dir, "kube-proxy-removal", "backup",
                                           "daemonset-kube-proxy.yaml"))
    # The API traffic moves counters; no rule may change.
    assert without_counters(save(mock_cluster.node, "ipv4", "nft")) == rules_before
