# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/kube_proxy.py.

Node side: the rule sets in tests/integration/fixtures/kube_proxy/ (the same files the
integration tests load into real iptables) and their hand-written expected remainders.
Cluster side: mock Kubernetes objects and mock ``cilium-dbg`` output in
tests/integration/fixtures/kube_proxy/cluster/, written from the Kubernetes and Cilium
API shapes (not captured from a live cluster); each test changes one field and checks
that exactly the right gate fails with the right reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os

import pytest

from ansible_collections.zerotrust.cilium.plugins.module_utils import kube_proxy
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FIXTURES = os.path.join(ROOT, "tests", "integration", "fixtures", "kube_proxy")
GATE_NAMES = [gate[0] for gate in kube_proxy.GATES]


def fixture_text(name):
    with open(os.path.join(FIXTURES, name)) as stream:
        return stream.read()


def fixture_json(name):
    with open(os.path.join(FIXTURES, "cluster", name)) as stream:
        return json.load(stream)


def without_comments(text):
    return "".join(line + "\n" for line in text.splitlines() if line and not line.startswith("#"))


# ---------------------------------------------------------------- iptables-save parsing


@pytest.mark.parametrize("text, expected", [
    ('-A INPUT -j ACCEPT', ["-A", "INPUT", "-j", "ACCEPT"]),
    ('-A INPUT -m comment --comment "two words" -j DROP', ["-A", "INPUT", "-m", "comment", "--comment", "two words",
                                                           "-j", "DROP"]),
    ('-A INPUT -m comment --comment "say \\"hi\\" -j KUBE-SERVICES" -j ACCEPT',
     ["-A", "INPUT", "-m", "comment", "--comment", 'say "hi" -j KUBE-SERVICES', "-j", "ACCEPT"]),
    ('-A INPUT -m comment --comment "it\\\'s" -j ACCEPT', ["-A", "INPUT", "-m", "comment", "--comment", "it's",
                                                           "-j", "ACCEPT"]),
    ('-A INPUT -m comment --comment "back\\\\slash"', ["-A", "INPUT", "-m", "comment", "--comment", "back\\slash"]),
    ('-A INPUT -m comment --comment "tab\tinside"', ["-A", "INPUT", "-m", "comment", "--comment", "tab\tinside"]),
    ('-A INPUT -m comment --comment ""', ["-A", "INPUT", "-m", "comment", "--comment", ""]),
])
def test_split_arguments_follows_iptables_save_quoting(text, expected):
    assert kube_proxy.split_arguments(text) == expected


@pytest.mark.parametrize("text", ['-A INPUT --comment "open', '-A INPUT trailing\\'])
def test_split_arguments_rejects_unterminated_quotes(text):
    with pytest.raises(ValueError, match="unterminated"):
        kube_proxy.split_arguments(text)


@pytest.mark.parametrize("text, fragments", [
    ("-A INPUT -j ACCEPT\n", ["line 1: -A INPUT -j ACCEPT", "outside a table"]),
    ("*filter\n:INPUT ACCEPT [0:0]\n", ["'filter'", "no COMMIT line"]),
    ("*filter\n*nat\nCOMMIT\n", ["line 2: *nat", "before table 'filter' has its COMMIT line"]),
    ("*filter\n:INPUT\nCOMMIT\n", ["line 2: :INPUT", "is not a chain line"]),
    ("*filter\n-I INPUT -j ACCEPT\nCOMMIT\n", ["line 2: -I INPUT -j ACCEPT", "is not a rule line of iptables-save"]),
    ("*filter\n-A INPUT -m comment --comment \"open\nCOMMIT\n", ["line 2", "cannot be split into arguments"]),
    (None, ["iptables-save: None is not text"]),
])
def test_parse_iptables_save_names_the_bad_line(text, fragments):
    with pytest.raises(InvalidInput) as error:
        kube_proxy.parse_iptables_save(text)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_parse_iptables_save_reads_counters_targets_and_warnings():
    text = ("# Table `filter' contains incompatible base-chains, use 'nft' tool to list them.\n"
            "*filter\n:INPUT ACCEPT [5:300]\n:KUBE-X - [0:0]\n"
            "[7:420] -A INPUT -m comment --comment \"-j KUBE-X\" -g KUBE-X\n"
            "-A INPUT -j KUBE-X --log-prefix x -j ACCEPT\nCOMMIT\n")
    tables, warnings = kube_proxy.parse_iptables_save(text)
    assert warnings == {"filter": "Table `filter' contains incompatible base-chains, use 'nft' tool to list them."}
    rules = tables[0]["rules"]
    assert [rule["counters"] for rule in rules] == ["[7:420]", ""]
    assert rules[0]["target"] == "KUBE-X"          # -g, not the quoted comment
    assert rules[1]["target"] == "ACCEPT"          # the last jump wins, as in iptables
    assert tables[0]["chains"] == [{"name": "INPUT", "line": ":INPUT ACCEPT [5:300]"},
                                   {"name": "KUBE-X", "line": ":KUBE-X - [0:0]"}]


# ------------------------------------------------------------------ cleaning rule sets


@pytest.mark.parametrize("rules, expected", [
    ("iptables-mode.v4.rules", "iptables-mode.v4.expected.rules"),
    ("iptables-mode.v6.rules", "iptables-mode.v6.expected.rules"),
    ("ipvs-mode-noipset.v4.rules", "ipvs-mode-noipset.v4.expected.rules"),
])
def test_clean_leaves_exactly_the_hand_written_remainder(rules, expected):
    result = kube_proxy.clean_iptables_save(fixture_text(rules))
    restored = "".join(table["restore"] for table in result["tables"])
    assert restored == without_comments(fixture_text(expected))
    assert "KUBE-" not in "".join(line for line in result["text"].splitlines(True)
                                  if "--comment" not in line)


def test_clean_keeps_the_kubelet_chains_when_asked():
    result = kube_proxy.clean_iptables_save(fixture_text("iptables-mode.v4.rules"),
                                            keep_chains=list(kube_proxy.KUBELET_CHAINS))
    restored = "".join(table["restore"] for table in result["tables"])
    assert restored == without_comments(fixture_text("iptables-mode.v4.expected-kubelet-kept.rules"))


def test_clean_counts_per_table_and_lists_the_removed_rules():
    result = kube_proxy.clean_iptables_save(fixture_text("iptables-mode.v4.rules"))
    assert result["counts"] == {
        "raw": {"chains": 0, "rules": 0},
        "mangle": {"chains": 3, "rules": 0},
        "filter": {"chains": 8, "rules": 15},
        "nat": {"chains": 21, "rules": 48},
    }
    by_table = {table["table"]: table for table in result["tables"]}
    assert by_table["raw"]["changed"] is False
    assert by_table["raw"]["before"] == by_table["raw"]["after"]
    assert by_table["nat"]["removed_chains"][:3] == ["KUBE-EXT-LZ5BXJ5VJS2BRSFJ", "KUBE-KUBELET-CANARY",
                                                     "KUBE-MARK-MASQ"]
    assert ('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
            in by_table["nat"]["removed_rules"])
    assert "-A INPUT -j KUBE-FIREWALL" in by_table["filter"]["removed_rules"]
    # The administrator's rule mentions KUBE chains, even "-j KUBE-SERVICES", in its comment only.
    assert ('[7:420] -A INPUT -s 192.0.2.0/24 -m comment --comment "admin: KUBE-NODEPORTS are closed to this '
            'range -j KUBE-SERVICES" -j DROP') in by_table["filter"]["restore"]
    assert "-A INPUT -j KUBERNETES-AUDIT" in by_table["filter"]["after"]
    assert len(result["removed_rules"]) == 63
    # "before" and "after" are for --diff: the table without rule counters.
    assert "[" not in "".join(line.split(" ", 1)[0] for line in by_table["nat"]["after"].splitlines()
                              if line.startswith("-A"))


def test_clean_of_ipvs_mode_with_ipset_matches():
    result = kube_proxy.clean_iptables_save(fixture_text("ipvs-mode.v4.rules"))
    by_table = {table["table"]: table for table in result["tables"]}
    assert set(by_table["filter"]["removed_chains"]) == {
        "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER", "KUBE-KUBELET-CANARY",
        "KUBE-NODE-PORT", "KUBE-PROXY-CANARY", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL"}
    assert set(by_table["nat"]["removed_chains"]) == {
        "KUBE-KUBELET-CANARY", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ", "KUBE-NODE-PORT", "KUBE-POSTROUTING",
        "KUBE-PROXY-CANARY", "KUBE-SERVICES"}
    assert "--match-set" not in result["text"]
    assert '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "admin: ssh, KUBE-IPVS-FILTER does not ' \
           'cover it" -j ACCEPT' in by_table["filter"]["after"]
    assert "CILIUM_POST_nat ! -s 10.42.0.0/16" in by_table["nat"]["after"]


def test_clean_is_idempotent():
    first = kube_proxy.clean_iptables_save(fixture_text("iptables-mode.v4.rules"))
    second = kube_proxy.clean_iptables_save(first["text"])
    assert not any(table["changed"] for table in second["tables"])
    assert second["text"] == first["text"]
    assert second["removed_rules"] == []


def test_clean_removes_goto_and_rules_of_kept_chains_that_jump_to_removed_ones():
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-SERVICES - [0:0]\n:MINE - [0:0]\n"
            "-A INPUT -g KUBE-SERVICES\n-A INPUT -j KUBE-FIREWALL\n-A KUBE-FIREWALL -j KUBE-SERVICES\n"
            "-A KUBE-FIREWALL -j DROP\n-A MINE -j RETURN\nCOMMIT\n")
    result = kube_proxy.clean_iptables_save(text, keep_chains=["KUBE-FIREWALL"])
    table = result["tables"][0]
    assert table["removed_chains"] == ["KUBE-SERVICES"]
    assert table["removed_rules"] == ["-A INPUT -g KUBE-SERVICES", "-A KUBE-FIREWALL -j KUBE-SERVICES"]
    assert table["after"] == ("*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:MINE - [0:0]\n"
                              "-A INPUT -j KUBE-FIREWALL\n-A KUBE-FIREWALL -j DROP\n-A MINE -j RETURN\nCOMMIT\n")


@pytest.mark.parametrize("text, reason", [
    ("# Table `nat' contains incompatible base-chains, use 'nft' tool to list them.\n"
     "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n", "incompatible base-chains"),
    ("*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -m foo [unsupported revision] -j ACCEPT\nCOMMIT\n",
     "cannot be restored by iptables"),
])
def test_clean_marks_tables_iptables_cannot_restore(text, reason):
    table = kube_proxy.clean_iptables_save(text)["tables"][0]
    assert table["changed"] is True
    assert reason in table["unsafe"]


def test_clean_of_empty_output_has_no_tables():
    assert kube_proxy.clean_iptables_save("") == {"tables": [], "text": "", "removed_rules": [], "counts": {}}


@pytest.mark.parametrize("keep, fragment", [
    ("KUBE-FIREWALL", "'KUBE-FIREWALL' is not a list of chain names"),
    (["KUBE FIREWALL"], "'KUBE FIREWALL' is not an iptables chain name"),
    (["-KUBE"], "'-KUBE' is not an iptables chain name"),
    (["K" * 29], "is not an iptables chain name (1 to 28 characters"),
    ([7], "keep_chains: 7 is not an iptables chain name"),
])
def test_clean_rejects_bad_keep_chains(keep, fragment):
    with pytest.raises(InvalidInput) as error:
        kube_proxy.clean_iptables_save("", keep_chains=keep)
    assert fragment in str(error.value)


# ------------------------------------------------------------- nftables, IPVS, ipsets


def test_nft_tables_of_kube_proxy_are_selected_per_family():
    listing = "table ip filter\ntable ip kube-proxy\ntable ip6 kube-proxy\ntable inet kube-proxy\ntable inet host\n"
    tables = kube_proxy.parse_nft_tables(listing)
    assert tables == [("ip", "filter"), ("ip", "kube-proxy"), ("ip6", "kube-proxy"), ("inet", "kube-proxy"),
                      ("inet", "host")]
    assert kube_proxy.select_nft_tables(tables) == [("ip", "kube-proxy"), ("ip6", "kube-proxy")]
    assert kube_proxy.select_nft_tables(tables, ["ipv6"]) == [("ip6", "kube-proxy")]
    with pytest.raises(InvalidInput, match="families: 'ipv5' is not one of: ipv4, ipv6"):
        kube_proxy.select_nft_tables(tables, ["ipv5"])


def test_ipvs_services_of_kube_proxy_are_selected():
    services = kube_proxy.parse_ipvsadm_save(fixture_text("ipvsadm.save"))
    assert len(services) == 12
    assert services[0] == {"protocol": "tcp", "option": "-t", "address": "10.43.0.1", "port": 443,
                           "spec": "10.43.0.1:443"}
    assert services[8]["protocol"] == "sctp"
    assert services[11] == {"protocol": "fwmark", "option": "-f", "address": None, "port": None, "spec": "7"}
    selected = kube_proxy.select_ipvs_services(
        services,
        interface_addresses=["10.43.0.1", "10.43.0.10", "10.43.88.20", "203.0.113.7", "198.51.100.10", "fd00:43::a"],
        service_cidrs=["10.43.0.0/16", "fd00:43::/108"],
        node_addresses=["172.31.213.21", "127.0.0.1"])
    assert [(service["option"], service["spec"]) for service in selected] == [
        ("-t", "10.43.0.1:443"), ("-t", "10.43.0.10:53"), ("-u", "10.43.0.10:53"), ("-t", "10.43.88.20:80"),
        ("-t", "172.31.213.21:30080"), ("-t", "203.0.113.7:80"), ("-t", "198.51.100.10:443"),
        ("-t", "[fd00:43::a]:53"), ("--sctp-service", "10.43.0.77:9999")]
    # Without kube-ipvs0 (already deleted) the service CIDR still finds the ClusterIPs.
    without_interface = kube_proxy.select_ipvs_services(services, service_cidrs=["10.43.0.0/16"])
    assert [service["spec"] for service in without_interface] == [
        "10.43.0.1:443", "10.43.0.10:53", "10.43.0.10:53", "10.43.88.20:80", "10.43.0.77:9999"]


@pytest.mark.parametrize("text, fragment", [
    ("-A -x 10.0.0.1:80 -s rr", "is not a virtual service line"),
    ("-A -t nothost:80 -s rr", "has no numeric address:port"),
])
def test_parse_ipvsadm_save_rejects_unknown_lines(text, fragment):
    with pytest.raises(InvalidInput) as error:
        kube_proxy.parse_ipvsadm_save(text)
    assert "ipvsadm -S -n: 'line 1: %s'" % text in str(error.value)
    assert fragment in str(error.value)


@pytest.mark.parametrize("value, fragment", [
    ("30000", None),
    ("30000-32767", None),
    (30080, None),
    ("32767-30000", "must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535"),
    ("0-10", "must be FIRST-LAST"),
    ("30000:32767", "is not a port range such as '30000-32767'"),
    (True, "is not a port range"),
    ("70000", "must be FIRST-LAST"),
])
def test_parse_port_range(value, fragment):
    if fragment is None:
        first, last = kube_proxy.parse_port_range(value)
        assert first <= last
    else:
        with pytest.raises(InvalidInput) as error:
            kube_proxy.parse_port_range(value)
        assert "nodeport_range: %r" % (value,) in str(error.value)
        assert fragment in str(error.value)


def test_select_ipvs_services_rejects_a_bad_service_cidr():
    with pytest.raises(InvalidInput, match="service_cidrs: '10.43.0.0/33' is not a CIDR"):
        kube_proxy.select_ipvs_services([], service_cidrs=["10.43.0.0/33"])


def test_ipsets_of_kube_proxy():
    names = ["KUBE-CLUSTER-IP", "KUBE-LOOP-BACK", "KUBE-NODE-PORT-TCP", "cilium_node_set_v4", "KUBEVIRT-X"]
    assert kube_proxy.select_ipsets(names) == ["KUBE-CLUSTER-IP", "KUBE-LOOP-BACK", "KUBE-NODE-PORT-TCP"]


# ------------------------------------------------------------------------------- gates


def healthy_cluster():
    """The mock objects of a cluster where every gate holds."""
    status = fixture_json("agent-status-ok.json")["status"]
    agent_services = fixture_json("agent-services.json")
    agents = [{"node": node, "pod": pod, "status": copy.deepcopy(status), "services": copy.deepcopy(agent_services)}
              for node, pod in (("zt-lab-cp1", "cilium-7xk2p"), ("zt-lab-w1", "cilium-bq9ft"),
                                ("zt-lab-w2", "cilium-zzr4m"))]
    # The role passes k8s_exec's stdout as it is: text that the gates parse.
    agents[2]["status"] = json.dumps(agents[2]["status"])
    agents[2]["services"] = json.dumps(agents[2]["services"])
    return {
        "cilium_config": fixture_json("cilium-config.json")["data"],
        "cilium_daemonset": fixture_json("cilium-daemonset.json"),
        "agent_statuses": agents,
        "services": fixture_json("services.json")["items"],
        "kube_proxy_objects": {"daemonset": fixture_json("kube-proxy-daemonset.json"),
                               "configmap": fixture_json("kube-proxy-configmap.json")},
        "service_cidr": "10.43.0.0/16,fd00:43::/108",
    }


def test_gates_hold_for_a_healthy_cluster():
    result = kube_proxy.removal_gates(**healthy_cluster())
    assert result["failed_gates"] == []
    assert result["ok"] is True
    assert [gate["gate"] for gate in result["gates"]] == GATE_NAMES
    assert all(gate["passed"] for gate in result["gates"])
    assert result["kube_proxy_present"] is True
    assert result["api_endpoint"] == {"host": "172.31.213.11", "port": "6443"}
    # kubernetes 1 + kube-dns 3 ports x 2 families + web 1; headless, ExternalName and the
    # other proxy's Service are not kube-proxy's.
    assert result["expected_frontends"] == 8


def agent_env(cluster):
    return cluster["cilium_daemonset"]["spec"]["template"]["spec"]["containers"][0]["env"]


def set_env(cluster, name, entry):
    env = agent_env(cluster)
    env[:] = [item for item in env if item["name"] != name] + ([dict(entry, name=name)] if entry else [])


def break_kpr_config(cluster):
    cluster["cilium_config"]["kube-proxy-replacement"] = "false"


def drop_cilium_config(cluster):
    cluster["cilium_config"] = None


def drop_service_host(cluster):
    set_env(cluster, "KUBERNETES_SERVICE_HOST", None)


def service_host_is_cluster_ip(cluster):
    set_env(cluster, "KUBERNETES_SERVICE_HOST", {"value": "10.43.0.1"})


def service_host_in_service_cidr(cluster):
    set_env(cluster, "KUBERNETES_SERVICE_HOST", {"value": "10.43.7.7"})


def service_host_is_a_service_name(cluster):
    set_env(cluster, "KUBERNETES_SERVICE_HOST", {"value": "kubernetes.default.svc.cluster.local"})


def service_port_missing(cluster):
    set_env(cluster, "KUBERNETES_SERVICE_PORT", None)


def service_host_from_missing_config_map(cluster):
    set_env(cluster, "KUBERNETES_SERVICE_HOST",
            {"valueFrom": {"configMapKeyRef": {"name": "cilium-api", "key": "host"}}})


def rollout_pending(cluster):
    cluster["cilium_daemonset"]["metadata"]["generation"] = 4
    cluster["cilium_daemonset"]["status"]["updatedNumberScheduled"] = 2
    cluster["cilium_daemonset"]["status"]["numberUnavailable"] = 1


def no_agents_scheduled(cluster):
    for field in ("desiredNumberScheduled", "currentNumberScheduled", "updatedNumberScheduled", "numberReady",
                  "numberAvailable"):
        cluster["cilium_daemonset"]["status"][field] = 0


def agent_missing(cluster):
    cluster["agent_statuses"].pop()


def agent_exec_failed(cluster):
    cluster["agent_statuses"][1] = {"node": "zt-lab-w1", "pod": "cilium-bq9ft",
                                    "error": "container cilium-agent is not running"}


def agent_output_not_json(cluster):
    cluster["agent_statuses"][2]["status"] = "Error: Get \"http://localhost/v1/healthz\": dial unix"


def agent_unhealthy(cluster):
    cluster["agent_statuses"][0]["status"]["kubernetes"] = {"state": "Failure", "msg": "timeout"}


def kpr_mode_false(cluster):
    cluster["agent_statuses"][1]["status"]["kube-proxy-replacement"]["mode"] = "False"


def nodeport_disabled(cluster):
    features = cluster["agent_statuses"][0]["status"]["kube-proxy-replacement"]["features"]
    features["nodePort"]["enabled"] = False


def frontend_missing(cluster):
    agent = cluster["agent_statuses"][0]
    agent["services"] = [entry for entry in agent["services"]
                         if entry["spec"]["frontend-address"]["ip"] != "fd00:43::a"]


def kube_proxy_reconciled(cluster):
    cluster["kube_proxy_objects"]["daemonset"]["metadata"]["labels"]["addonmanager.kubernetes.io/mode"] = "Reconcile"


def kube_proxy_owned(cluster):
    cluster["kube_proxy_objects"]["daemonset"]["metadata"]["ownerReferences"] = [
        {"kind": "KubeProxyAddon", "name": "cluster"}]


@pytest.mark.parametrize("breakage, gate, fragments", [
    (break_kpr_config, "cilium_kube_proxy_replacement", ["kube-proxy-replacement 'false'",
                                                         "kubeProxyReplacement=true"]),
    (drop_cilium_config, "cilium_kube_proxy_replacement", ["cilium-config ConfigMap was not found"]),
    (drop_service_host, "cilium_api_endpoint", ["KUBERNETES_SERVICE_HOST is not set", "'kubernetes' ClusterIP",
                                                "k8sServiceHost"]),
    (service_host_is_cluster_ip, "cilium_api_endpoint", ["'10.43.0.1' is the 'kubernetes' ClusterIP"]),
    (service_host_in_service_cidr, "cilium_api_endpoint", ["'10.43.7.7' lies in the service CIDR 10.43.0.0/16"]),
    (service_host_is_a_service_name, "cilium_api_endpoint", ["'kubernetes.default.svc.cluster.local' is a name "
                                                             "of the 'kubernetes' Service"]),
    (service_port_missing, "cilium_api_endpoint", ["KUBERNETES_SERVICE_PORT is not set", "k8sServicePort"]),
    (service_host_from_missing_config_map, "cilium_api_endpoint", ["ConfigMap 'cilium-api', which was not "
                                                                   "provided"]),
    (rollout_pending, "cilium_daemonset_ready", ["updatedNumberScheduled is 2 of 3", "numberUnavailable is 1",
                                                 "observedGeneration 3 is behind generation 4"]),
    (no_agents_scheduled, ["cilium_daemonset_ready", "cilium_agents_reporting"],
     ["no agent pod is scheduled", "3 agent pod(s) asked, the DaemonSet schedules 0"]),
    (agent_missing, "cilium_agents_reporting", ["2 agent pod(s) asked, the DaemonSet schedules 3"]),
    (agent_exec_failed, "cilium_agents_reporting", ["zt-lab-w1 (pod cilium-bq9ft): container cilium-agent is "
                                                    "not running"]),
    (agent_output_not_json, "cilium_agents_reporting", ["zt-lab-w2 (pod cilium-zzr4m)", "is not JSON"]),
    (agent_unhealthy, "cilium_agents_healthy", ["zt-lab-cp1 (pod cilium-7xk2p): kubernetes is Failure (timeout)"]),
    (kpr_mode_false, "cilium_kube_proxy_replacement_active", ["zt-lab-w1 (pod cilium-bq9ft): mode is 'False'"]),
    (nodeport_disabled, "cilium_kube_proxy_replacement_active", ["NodePort handling is disabled"]),
    (frontend_missing, "cilium_services_programmed", ["zt-lab-cp1 (pod cilium-7xk2p) lacks 3 of 8 frontends",
                                                      "kube-system/kube-dns fd00:43::a:53/UDP"]),
    (kube_proxy_reconciled, "kube_proxy_not_reconciled", ["addonmanager.kubernetes.io/mode=Reconcile"]),
    (kube_proxy_owned, "kube_proxy_not_reconciled", ["owned by KubeProxyAddon/cluster"]),
])
def test_each_gate_fails_alone_with_its_reason(breakage, gate, fragments):
    cluster = healthy_cluster()
    breakage(cluster)
    result = kube_proxy.removal_gates(**cluster)
    assert result["ok"] is False
    gates = gate if isinstance(gate, list) else [gate]
    assert [failed["gate"] for failed in result["failed_gates"]] == gates
    reasons = " | ".join(failed["reason"] for failed in result["failed_gates"])
    for fragment in fragments:
        assert fragment in reasons


def test_gates_resolve_the_api_endpoint_from_a_config_map():
    cluster = healthy_cluster()
    service_host_from_missing_config_map(cluster)
    cluster["config_maps"] = {"cilium-api": {"host": "api.lab.example"}}
    result = kube_proxy.removal_gates(**cluster)
    assert result["ok"] is True, result["failed_gates"]
    assert result["api_endpoint"] == {"host": "api.lab.example", "port": "6443"}


def test_gates_with_nothing_collected_fail_everything_but_the_kube_proxy_gate():
    result = kube_proxy.removal_gates(None, None, [], [], {"daemonset": None, "configmap": None})
    assert [failed["gate"] for failed in result["failed_gates"]] == GATE_NAMES[:-1]
    assert result["kube_proxy_present"] is False


def test_gates_when_kube_proxy_is_already_gone():
    cluster = healthy_cluster()
    cluster["kube_proxy_objects"] = {"daemonset": None, "configmap": None}
    result = kube_proxy.removal_gates(**cluster)
    assert result["ok"] is True
    assert result["kube_proxy_present"] is False


@pytest.mark.parametrize("field, value, fragment", [
    ("cilium_config", "kube-proxy-replacement=true", "removal_gates: cilium_config: 'kube-proxy-replacement=true' "
                                                     "is not a mapping"),
    ("services", {"items": []}, "removal_gates: services: {'items': []} is not a list"),
    ("agent_statuses", ["cilium-7xk2p"], "removal_gates: agent_statuses[0]: 'cilium-7xk2p' is not a mapping"),
    ("kube_proxy_objects", [], "removal_gates: kube_proxy_objects: [] is not a mapping"),
    ("service_cidr", "10.43.0.0/40", "removal_gates: service_cidr: '10.43.0.0/40' is not a CIDR"),
])
def test_gates_reject_inputs_of_the_wrong_shape(field, value, fragment):
    cluster = healthy_cluster()
    cluster[field] = value
    with pytest.raises(InvalidInput) as error:
        kube_proxy.removal_gates(**cluster)
    assert fragment in str(error.value)


def test_cilium_agent_endpoint_reads_values_and_config_map_references():
    daemonset = fixture_json("cilium-daemonset.json")
    assert kube_proxy.cilium_agent_endpoint(daemonset) == {
        "container_found": True,
        "host": {"value": "172.31.213.11", "config_map": None, "key": None},
        "port": {"value": "6443", "config_map": None, "key": None},
    }
    assert kube_proxy.cilium_agent_endpoint(daemonset, container="agent") == {
        "container_found": False, "host": None, "port": None}
    with pytest.raises(InvalidInput, match="cilium_agent_endpoint: daemonset: None is not a mapping"):
        kube_proxy.cilium_agent_endpoint(None)


# ------------------------------------------------------------------------------ kubeadm


def cluster_configurations():
    return fixture_json("kubeadm-cluster-configuration.json")


def test_kubeadm_patch_sets_proxy_disabled_in_v1beta4_once():
    original = cluster_configurations()["v1beta4"]
    first = kube_proxy.kubeadm_patch(original)
    assert first["changed"] is True and first["supported"] is True
    assert first["cluster_configuration"]["proxy"] == {"disabled": True}
    assert first["reason"] == "proxy.disabled was unset, is true"
    assert original["proxy"] == {}, "the input must not be modified"
    again = kube_proxy.kubeadm_patch(first["cluster_configuration"])
    assert again["changed"] is False
    assert again["cluster_configuration"] == first["cluster_configuration"]
    # Everything else stays as it was.
    rest = dict(first["cluster_configuration"])
    rest.pop("proxy")
    expected = dict(original)
    expected.pop("proxy")
    assert rest == expected


def test_kubeadm_patch_undo_returns_to_the_original():
    original = cluster_configurations()["v1beta4"]
    original.pop("proxy")
    patched = kube_proxy.kubeadm_patch(original)["cluster_configuration"]
    undone = kube_proxy.kubeadm_patch(patched, disabled=None)
    assert undone["changed"] is True
    assert undone["cluster_configuration"] == original
    assert kube_proxy.kubeadm_patch(original, disabled=None)["changed"] is False
    explicit = kube_proxy.kubeadm_patch(patched, disabled=False)
    assert explicit["cluster_configuration"]["proxy"] == {"disabled": False}


def test_kubeadm_patch_leaves_v1beta3_alone_and_says_why():
    result = kube_proxy.kubeadm_patch(cluster_configurations()["v1beta3"])
    assert result["changed"] is False and result["supported"] is False
    assert "kubeadm.k8s.io/v1beta3 has no proxy.disabled field" in result["reason"]
    assert "kube-proxy ConfigMap is absent" in result["reason"]


@pytest.mark.parametrize("configuration, disabled, fragment", [
    ("apiVersion: kubeadm.k8s.io/v1beta4", True, "cluster_configuration: 'apiVersion: kubeadm.k8s.io/v1beta4' is "
                                                 "not a mapping"),
    ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration"}, True,
     "cluster_configuration.kind: 'InitConfiguration' is not 'ClusterConfiguration'"),
    ({"apiVersion": "v1", "kind": "ClusterConfiguration"}, True,
     "cluster_configuration.apiVersion: 'v1' is not a kubeadm API version"),
    ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration", "proxy": "off"}, True,
     "cluster_configuration.proxy: 'off' is not a mapping"),
    ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration"}, "yes",
     "disabled: 'yes' is not one of: true, false, null"),
])
def test_kubeadm_patch_rejects_bad_input(configuration, disabled, fragment):
    with pytest.raises(InvalidInput) as error:
        kube_proxy.kubeadm_patch(configuration, disabled=disabled)
    assert str(error.value).startswith("kubeadm_patch: ")
    assert fragment in str(error.value)


# ------------------------------------------------------------------ backups and the plan


def test_restorable_manifest_drops_what_the_server_sets():
    daemonset = fixture_json("kube-proxy-daemonset.json")
    daemonset.pop("_comment")
    manifest = kube_proxy.restorable_manifest(daemonset)
    assert "status" not in manifest
    assert manifest["metadata"] == {"name": "kube-proxy", "namespace": "kube-system",
                                    "labels": {"k8s-app": "kube-proxy"}}
    assert manifest["spec"] == daemonset["spec"]
    assert daemonset["metadata"]["uid"], "the input must not be modified"


@pytest.mark.parametrize("obj, fragment", [
    ([], "restorable_manifest: object: [] is not a mapping"),
    ({"kind": "ConfigMap", "metadata": {"name": "x"}}, "object.apiVersion: None is missing"),
])
def test_restorable_manifest_rejects_bad_input(obj, fragment):
    with pytest.raises(InvalidInput) as error:
        kube_proxy.restorable_manifest(obj)
    assert fragment in str(error.value)


NODES = ["cp1", "w1", "w2", "w3", "w4"]


@pytest.mark.parametrize("serial, expected", [
    (1, [["cp1"], ["w1"], ["w2"], ["w3"], ["w4"]]),
    ("2", [["cp1", "w1"], ["w2", "w3"], ["w4"]]),
    (0, [NODES]),
    ("40%", [["cp1", "w1"], ["w2", "w3"], ["w4"]]),
    ("10%", [["cp1"], ["w1"], ["w2"], ["w3"], ["w4"]]),
    ([1, "50%"], [["cp1"], ["w1", "w2"], ["w3", "w4"]]),
    ([1, 10], [["cp1"], ["w1", "w2", "w3", "w4"]]),
])
def test_node_batches_follow_ansible_serial(serial, expected):
    assert kube_proxy.node_batches(NODES, serial) == expected


@pytest.mark.parametrize("serial, fragment", [
    ("all", "serial: 'all' is not a number or a percentage"),
    (True, "serial: True is not a number"),
    (-1, "serial: -1 is negative"),
    ([], "serial: [] is an empty list"),
    ("x%", "serial: 'x%' is not a number or a percentage"),
])
def test_node_batches_reject_bad_serial(serial, fragment):
    with pytest.raises(InvalidInput) as error:
        kube_proxy.node_batches(NODES, serial)
    assert fragment in str(error.value)


@pytest.mark.parametrize("cidr, expected", [
    ("10.43.0.0/16", "10.43.0.1"),
    ("10.96.0.0/12", "10.96.0.1"),
    ("fd00:43::/108,10.43.0.0/16", "fd00:43::1"),
    (["10.43.0.0/16", "fd00:43::/108"], "10.43.0.1"),
])
def test_kubernetes_service_ip_is_the_first_address(cidr, expected):
    assert kube_proxy.kubernetes_service_ip(cidr) == expected


@pytest.mark.parametrize("cidr, fragment", [
    ("", "service_cidr: '' is empty"),
    ("10.43.0.0/99", "service_cidr: '10.43.0.0/99' is not a CIDR"),
])
def test_kubernetes_service_ip_rejects_bad_cidrs(cidr, fragment):
    with pytest.raises(InvalidInput) as error:
        kube_proxy.kubernetes_service_ip(cidr)
    assert fragment in str(error.value)


def test_removal_plan_lists_gates_objects_batches_and_probes():
    plan = kube_proxy.removal_plan(["zt-lab-cp1", "zt-lab-w1", "zt-lab-w2"], serial=2,
                                   service_cidr="10.43.0.0/16", api_server_host="172.31.213.11",
                                   api_server_port="6443", extra_probes=[{"host": "10.43.0.10", "port": 53}],
                                   backup_dir="/srv/out/kube-proxy-removal/backup")
    assert [gate["gate"] for gate in plan["gates"]] == GATE_NAMES
    assert plan["batches"] == [["zt-lab-cp1", "zt-lab-w1"], ["zt-lab-w2"]]
    assert plan["probes"] == [
        {"name": "kubernetes Service ClusterIP", "host": "10.43.0.1", "port": 443},
        {"name": "API endpoint without kube-proxy", "host": "172.31.213.11", "port": 6443},
        {"name": "10.43.0.10:53", "host": "10.43.0.10", "port": 53},
    ]
    assert [(item["kind"], item["name"], item["backup"]) for item in plan["objects"]] == [
        ("DaemonSet", "kube-proxy", "/srv/out/kube-proxy-removal/backup/daemonset-kube-proxy.yaml"),
        ("ConfigMap", "kube-proxy", "/srv/out/kube-proxy-removal/backup/configmap-kube-proxy.yaml"),
        ("ConfigMap", "kubeadm-config", "/srv/out/kube-proxy-removal/backup/kubeadm-config.yaml"),
    ]
    assert plan["keep_chains"] == list(kube_proxy.KUBELET_CHAINS)
    assert kube_proxy.removal_plan(["n1"], service_cidr="10.43.0.0/16", api_server_host="api",
                                   kubeadm=False)["objects"][-1]["name"] == "kube-proxy"


@pytest.mark.parametrize("options, fragment", [
    ({"api_server_host": ""}, "removal_plan: api_server_host: '' is empty"),
    ({"api_server_port": "https"}, "api_server_port: 'https' is not a port number"),
    ({"api_server_port": 70000}, "api_server_port: 70000 is not in 1..65535"),
    ({"extra_probes": [{"host": "10.43.0.10"}]}, "extra_probes[0]: {'host': '10.43.0.10'} needs 'host' and 'port'"),
    ({"extra_probes": [{"host": "a", "port": "dns"}]}, "extra_probes[0].port: 'dns' is not a port number"),
    ({"keep_chains": ["KUBE FIREWALL"]}, "keep_chains: 'KUBE FIREWALL' is not an iptables chain name"),
    ({"families": ["inet"]}, "families: 'inet' is not one of: ipv4, ipv6"),
    ({"nodeport_range": "high"}, "nodeport_range: 'high' is not a port range"),
    ({"service_cidr": None}, "service_cidr: None is empty"),
])
def test_removal_plan_rejects_bad_input(options, fragment):
    arguments = dict(nodes=["n1"], service_cidr="10.43.0.0/16", api_server_host="172.31.213.11")
    arguments.update(options)
    with pytest.raises(InvalidInput) as error:
        kube_proxy.removal_plan(**arguments)
    assert fragment in str(error.value)
