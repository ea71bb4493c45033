"""The lab on real podman nodes: creation, the plan phase, idempotence, bad input, removal.

Runs playbooks/lab.yml and playbooks/lab_destroy.yml exactly as 'make lab' and
'make lab-destroy' do, on a copy of the lab inventory with its own names and subnet.
"""

import os

import pytest

from helpers import ROOT as REPO, run_playbook
from lab_fixture import LabCopy, parse_recap, podman

LAB_PLAYBOOK = os.path.join(REPO, "playbooks", "lab.yml")
DESTROY_PLAYBOOK = os.path.join(REPO, "playbooks", "lab_destroy.yml")


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
