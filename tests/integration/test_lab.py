"""The lab on real podman nodes: creation, the plan phase, the verify phase and its report,
phase preconditions, idempotence, bad input, removal.

Runs playbooks/lab.yml and playbooks/lab_destroy.yml exactly as 'make lab' and
'make lab-destroy' do, on a copy of the lab inventory with its own names and subnet.
"""

import os
import shutil
from xml.etree import ElementTree

import pytest

from helpers import ROOT as REPO, run_playbook
from lab_fixture import LabCopy, parse_recap, podman

LAB_PLAYBOOK = os.path.join(REPO, "playbooks", "lab.yml")
DESTROY_PLAYBOOK = os.path.join(REPO, "playbooks", "lab_destroy.yml")
VERIFY_PLAYBOOK = os.path.join(REPO, "playbooks", "verify.yml")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab_copy = LabCopy(tmp_path_factory.mktemp("lab"), prefix="zt-itest", third_octet=214)
    lab_copy.remove()
    created = run_playbook(LAB_PLAYBOOK, inventory=lab_copy.inventory)
    lab_copy.first_run = created
    try:
        yield lab_copy
    finally:
        lab_copy.remove()


def test_lab_creates_booted_nodes_on_a_1500_mtu_underlay(lab):
    assert lab.first_run.returncode == 0, lab.first_run.stdout[-3000:]
    assert lab.running_nodes() == sorted(lab.nodes)
    for node, address in lab.nodes.items():
        state = podman("exec", node, "systemctl", "is-system-running", check=False).stdout.strip()
        assert state in ("running", "degraded"), (node, state)
        mtu = podman("exec", node, "cat", "/sys/class/net/eth0/mtu").stdout.strip()
        assert mtu == "1500", (node, mtu)
        addresses = podman("exec", node, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        assert " %s/24 " % address in addresses, (node, addresses)


def test_lab_nodes_reach_each_other_over_the_underlay(lab):
    nodes = sorted(lab.nodes)
    source, destination = nodes[0], nodes[-1]
    ping = podman("exec", source, "ping", "-c", "1", "-W", "2", lab.nodes[destination], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_plan_report_lists_every_node_with_its_real_kernel(lab):
    report_path = os.path.join(lab.output_dir, "plan.md")
    with open(report_path) as stream:
        report = stream.read()
    kernel = os.uname().release  # lab nodes are containers: they run this machine's kernel
    nodes_section = report.split("## Nodes", 1)[1].split("\n## ", 1)[0]
    for node, address in lab.nodes.items():
        row = [line for line in nodes_section.splitlines() if line.startswith("| %s |" % node)]
        assert len(row) == 1, report
        assert kernel in row[0] and address in row[0] and "| 1500 |" in row[0], row[0]
    assert "| service CIDR | 10.43.0.0/16 |" in report
    # The network plan for the lab spec: 1500 underlay with VXLAN leaves 1450 for pods
    # (Cilium's 50-byte VXLAN-over-IPv4 overhead), and a DF ping payload of
    # 1450 - 20 (IPv4) - 8 (ICMP) = 1422 fills it.
    assert "| route MTU pods get | 1450 |" in report
    assert "| DF ping payload filling the route MTU (IPv4) | 1422 |" in report
    # 110 pods + 2 reserved need 112 addresses: a /25 (128) per node.
    assert "| per-node prefix (`clusterPoolIPv4MaskSize`) | /25 |" in report


def test_verify_phase_probes_every_pod_pair_and_writes_the_report(lab):
    """The lab's open matrix, measured: every pod reaches every other pod on each flow's port."""
    output = lab.first_run.stdout
    assert "Rollout report: %s/report.html" % lab.output_dir in output
    for name in ("report.md", "report.html", "reachability.svg"):
        assert os.path.getsize(os.path.join(lab.output_dir, name)) > 0, name
    svg = ElementTree.parse(os.path.join(lab.output_dir, "reachability.svg")).getroot()
    assert svg.tag == SVG + "svg"
    with open(os.path.join(lab.output_dir, "report.md")) as stream:
        report = stream.read()
    kernel = os.uname().release
    for node in lab.nodes:
        assert node in report and kernel in report, node
    # 3 pods, 6 ordered pairs, 3 services (HTTP GET /api/v1/data on 8080, TCP 5432, ICMP).
    assert "| Connectivity | ok | 18 of 18 probes agree with the plan |" in report, report[:2000]
    assert "| MTU probes | ok | 6 of 6 paths ok |" in report


def test_verify_names_a_path_the_network_blocks(lab, tmp_path):
    """Drop one flow's port in one pod: the truth table names exactly that pair, the report marks it."""
    nodes = sorted(lab.nodes)
    blocked = nodes[-1]
    rule = ["ip", "netns", "exec", "zt-pod", "nft"]
    podman("exec", blocked, *rule, "add table inet zt_itest_block")
    try:
        podman("exec", blocked, *rule,
               "add chain inet zt_itest_block input { type filter hook input priority 0 ; tcp dport 5432 drop ; }")
        report_dir = str(tmp_path / "report")
        failed = run_playbook(VERIFY_PLAYBOOK, inventory=lab.inventory,
                              extra_vars={"verify_report_dir": report_dir, "verify_probe_timeout": 0.5})
    finally:
        podman("exec", blocked, *rule, "delete table inet zt_itest_block", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-3000:]
    mismatches = [line for line in output.splitlines() if "expected allowed but blocked" in line]
    assert mismatches, output[-3000:]
    for source in nodes[:-1]:
        assert any(source in line and blocked in line and "5432" in line for line in mismatches), mismatches
    assert not any("8080" in line for line in mismatches), mismatches
    assert "Traceback" not in output
    svg = ElementTree.parse(os.path.join(report_dir, "reachability.svg")).getroot()
    assert "5432" in ElementTree.tostring(svg, encoding="unicode")


def test_a_phase_alone_on_an_unprepared_node_stops_before_changing_anything(lab, tmp_path):
    """cilium needs the nodes phase: a node without the node_tuning drop-in stops it, by name."""
    node = sorted(lab.nodes)[-1]
    dropin = "/etc/sysctl.d/90-zerotrust-cilium.conf"
    podman("exec", node, "mv", dropin, "/root/dropin.conf")
    output_dir = str(tmp_path / "cilium-output")
    try:
        failed = run_playbook(os.path.join(REPO, "playbooks", "cilium.yml"), inventory=lab.inventory,
                              extra_vars={"zerotrust_output_dir": output_dir})
    finally:
        podman("exec", node, "mv", "/root/dropin.conf", dropin)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-3000:]
    assert "the cilium phase needs prepared nodes, and %s has no %s" % (node, dropin) in output
    assert "ansible-playbook zerotrust.cilium.nodes" in output
    assert not os.path.exists(output_dir)


def test_policies_alone_before_cilium_stops_naming_the_missing_phase(lab, tmp_path):
    output_dir = tmp_path / "policies-output"
    output_dir.mkdir()
    failed = run_playbook(os.path.join(REPO, "playbooks", "policies.yml"), inventory=lab.inventory,
                          extra_vars={"zerotrust_output_dir": str(output_dir)})
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-3000:]
    assert "the policies phase needs Cilium first" in output
    assert "ansible-playbook zerotrust.cilium.cilium" in output
    assert list(output_dir.iterdir()) == []
    # Once the cilium phase has rendered its values, the same run goes through.
    shutil.copytree(os.path.join(lab.output_dir, "cilium"), str(output_dir / "cilium"))
    passed = run_playbook(os.path.join(REPO, "playbooks", "policies.yml"), inventory=lab.inventory,
                          extra_vars={"zerotrust_output_dir": str(output_dir)})
    assert passed.returncode == 0, passed.stdout[-3000:]
    assert (output_dir / "policies" / "proof.json").is_file()


def test_preflight_shows_sysctl_drift_and_changes_nothing(lab):
    """A node whose drop-in drifted: the preflight shows the diff, reports it, and leaves the file."""
    node = sorted(lab.nodes)[0]
    dropin = "/etc/sysctl.d/90-zerotrust-cilium.conf"
    before = podman("exec", node, "cat", dropin).stdout
    podman("exec", node, "sed", "-i", "s/^net.ipv4.tcp_mtu_probing = 1$/net.ipv4.tcp_mtu_probing = 0/", dropin)
    try:
        drifted = podman("exec", node, "cat", dropin).stdout
        assert drifted != before
        preflight = run_playbook(os.path.join(REPO, "playbooks", "preflight.yml"), inventory=lab.inventory,
                                 env={"ANSIBLE_DIFF_ALWAYS": "1"})
        after = podman("exec", node, "cat", dropin).stdout
    finally:
        podman("exec", node, "sed", "-i", "s/^net.ipv4.tcp_mtu_probing = 0$/net.ipv4.tcp_mtu_probing = 1/", dropin)
    output = preflight.stdout
    assert preflight.returncode == 0, output[-3000:]
    assert "-net.ipv4.tcp_mtu_probing = 0\n+net.ipv4.tcp_mtu_probing = 1" in output.replace("\r", "")
    recap = parse_recap(output)
    assert recap[node]["changed"] == 1 and all(recap[other]["changed"] == 0 for other in recap if other != node), recap
    assert after == drifted
    assert podman("exec", node, "ls", "/sys/fs/bpf").returncode == 0


def test_rollback_needs_a_decision_and_changes_nothing_in_render_mode(lab):
    playbook = os.path.join(REPO, "playbooks", "rollback.yml")
    undecided = run_playbook(playbook, inventory=lab.inventory)
    assert undecided.returncode != 0
    assert "missing required arguments: zerotrust_rollback" in undecided.stdout
    wrong = run_playbook(playbook, inventory=lab.inventory, extra_vars={"zerotrust_rollback": ["calico"]})
    assert wrong.returncode != 0
    assert "zerotrust_rollback" in wrong.stdout and "policies, kube_proxy, cilium" in wrong.stdout, wrong.stdout[-2000:]
    rendered = run_playbook(playbook, inventory=lab.inventory,
                            extra_vars={"zerotrust_rollback": ["policies", "kube_proxy", "cilium"]})
    assert rendered.returncode == 0, rendered.stdout[-3000:]
    for message in ("network_policy rollback: zerotrust_mode is render", "kube_proxy_removal: zerotrust_mode is render",
                    "cilium rollback: zerotrust_mode is render"):
        assert message in rendered.stdout, message
    assert all(counts["changed"] == 0 for counts in parse_recap(rendered.stdout).values())


def test_second_lab_run_changes_nothing(lab):
    second = run_playbook(LAB_PLAYBOOK, inventory=lab.inventory)
    assert second.returncode == 0, second.stdout[-3000:]
    recap = parse_recap(second.stdout)
    assert set(recap) == set(lab.nodes) | {"localhost"}
    assert {host: counts["changed"] for host, counts in recap.items()} == {host: 0 for host in recap}


def test_check_mode_run_writes_nothing(lab, tmp_path):
    output_dir = str(tmp_path / "check-output")
    checked = run_playbook(LAB_PLAYBOOK, inventory=lab.inventory, check=True,
                           extra_vars={"zerotrust_output_dir": output_dir})
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert not os.path.exists(output_dir)


@pytest.mark.parametrize("extra_vars, expected", [
    ({"zerotrust_mode": "aply"},
     ["zerotrust_mode", "aply", "apply, render"]),
    ({"zerotrust_underlay_mtu": 9000},
     ["zerotrust_underlay_mtu", "9000", "1500"]),
    ({"zerotrust_underlay_interface": "bond7"},
     ["zerotrust_underlay_interface", "bond7", "eth0"]),
    ({"zerotrust_api_server_port": "https"},
     ["zerotrust_api_server_port", "https"]),
    ({"zerotrust_service_cidr": "10.42.128.0/17"},
     ["overlap", "zerotrust_pod_cidr 10.42.0.0/16", "zerotrust_service_cidr 10.42.128.0/17"]),
    ({"zerotrust_api_server_host": "10.43.0.1"},
     ["zerotrust_api_server_host", "'10.43.0.1'", "ClusterIP", "kube-proxy"]),
    ({"zerotrust_pod_cidr": "10.42.0.1/16"},
     ["zerotrust_pod_cidr", "'10.42.0.1/16'", "host bits set"]),
    ({"zerotrust_pod_cidr": "10.42.0.0/30"},
     ["max_pods_per_node", "10.42.0.0/30"]),
])
def test_bad_cluster_spec_stops_with_a_message_naming_the_field(lab, tmp_path, extra_vars, expected):
    output_dir = str(tmp_path / "bad-input-output")
    failed = run_playbook(LAB_PLAYBOOK, inventory=lab.inventory,
                          extra_vars=dict(extra_vars, zerotrust_output_dir=output_dir))
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-3000:]
    for fragment in expected:
        assert fragment in output, (fragment, output[-3000:])
    assert "Traceback" not in output
    assert not os.path.exists(output_dir)


def test_lab_destroy_removes_nodes_and_network_and_is_repeatable(lab):
    for attempt in range(2):
        destroyed = run_playbook(DESTROY_PLAYBOOK, inventory=lab.inventory)
        assert destroyed.returncode == 0, (attempt, destroyed.stdout[-3000:])
        assert lab.running_nodes() == []
        assert podman("ps", "-a", "-q", "--filter", "name=^%s-" % lab.prefix).stdout.strip() == ""
        assert not lab.network_exists()
