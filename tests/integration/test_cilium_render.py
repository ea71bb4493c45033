# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cilium role in render mode, through ansible-playbook, on a small inventory in tmp.

The files are checked by content against references outside the role: the chart's
values.schema.json and the CiliumLoadBalancerIPPool CRD as shipped unmodified in tools/, the
cluster spec of the inventory, and Helm itself (``helm template`` with a local chart made
here; the real chart cannot be downloaded on this machine).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

# helpers.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import ROOT, run_playbook  # noqa: E402
import reference_data  # noqa: E402  pylint: disable=wrong-import-order

PLAYBOOK = "playbooks/cilium.yml"
HELM = os.path.join(ROOT, ".build", "bin", "helm")

VALUES_SCHEMA = reference_data.chart_values_schema()
POOL_SCHEMA = reference_data.lb_ippool_schema()

CLUSTER_VARS = {
    "zerotrust_mode": "render",
    "zerotrust_api_server_host": "172.31.213.11",
    "zerotrust_api_server_port": 6443,
    "zerotrust_pod_cidr": "10.42.0.0/16",
    "zerotrust_service_cidr": "10.43.0.0/16",
    "zerotrust_node_cidrs": ["172.31.213.0/24"],
    "zerotrust_underlay_mtu": 1500,
    "cilium_version": "1.20.0",
    "cilium_lb_ip_pools": [{"name": "lab-services", "blocks": [{"cidr": "172.31.213.240/28"}]}],
    # No helm here unless a test says so: the README must say why there are no manifests.
    "cilium_helm_binary": "/nonexistent/helm",
}

# The source guide's four keys the chart does not have.
GUIDE_MISTAKES = {
    "lb": {"algorithm": "maglev"},
    "policyEnforceMode": "always",
    "conntrack": {"enabled": False},
    "lbExternalIPPool": {"cidr": "192.168.100.0/24"},
}


@pytest.fixture
def inventory(tmp_path):
    """An inventory of one control-plane node and two workers, all on the local connection."""
    def write(**changes):
        # Renders the values without the nodes phase, as a review before any node is touched.
        variables = dict(CLUSTER_VARS, zerotrust_output_dir=str(tmp_path / "output"), preconditions_assume_done=["nodes"])
        variables.update(changes)
        # The nodes' interpreter is the system Python, which has no jsonschema: the values module
        # must run with the controller's Python, as in the lab.
        hosts = {"all": {"vars": variables, "children": {"k8s_cluster": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"},
            "children": {
                "k8s_control_plane": {"hosts": {"zt-itest-cp1": {}}},
                "k8s_workers": {"hosts": {"zt-itest-w1": {}, "zt-itest-w2": {}}},
            }}}}}
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump(hosts))
        return str(path)
    return write


@pytest.fixture(scope="module")
def helm_binary():
    """The helm binary 'make helm' puts in .build/bin (built on first use)."""
    if not os.access(HELM, os.X_OK):
        built = subprocess.run(["make", "--no-print-directory", "helm"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        assert built.returncode == 0, built.stdout
    version = subprocess.run([HELM, "version", "--short"], stdout=subprocess.PIPE, universal_newlines=True,
                             check=True)
    assert version.stdout.startswith("v3.")
    return HELM


def local_chart(tmp_path, version="1.20.0"):
    """A tiny chart named cilium whose one template shows the values it was given."""
    chart = tmp_path / "chart-cilium"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: cilium\nversion: %s\nappVersion: %s\n" % (version, version))
    (chart / "values.yaml").write_text("MTU: 0\nroutingMode: \"\"\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: cilium-config\n"
        "  namespace: {{ .Release.Namespace }}\n"
        "data:\n"
        "  mtu: {{ .Values.MTU | quote }}\n"
        "  routing-mode: {{ .Values.routingMode | quote }}\n"
        "  kube-proxy-replacement: {{ .Values.kubeProxyReplacement | quote }}\n"
        "  k8s-service-host: {{ .Values.k8sServiceHost | quote }}\n"
        "  relay-replicas: {{ .Values.hubble.relay.replicas | quote }}\n")
    return str(chart)


def recap(stdout, host="zt-itest-cp1"):
    match = re.search(host + r"\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert match, stdout
    return dict(zip(("ok", "changed", "unreachable", "failed"), (int(group) for group in match.groups())))


def read_values(path):
    with open(path) as handle:
        text = handle.read()
    assert text.startswith("# Helm values for Cilium 1.20.0 (chart cilium),")
    return yaml.safe_load(text)


def test_render_writes_the_values_the_pools_and_the_notes(tmp_path, inventory):
    completed = run_playbook(PLAYBOOK, inventory=inventory())
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    directory = tmp_path / "output" / "cilium"
    assert sorted(os.listdir(str(directory))) == ["README.md", "lb-ippools.yaml", "values.yaml"]

    values = read_values(str(directory / "values.yaml"))
    assert list(jsonschema.Draft7Validator(VALUES_SCHEMA).iter_errors(values)) == []
    # The cluster spec, as the inventory gives it.
    assert values["MTU"] == 1500
    assert values["k8sServiceHost"] == "172.31.213.11" and values["k8sServicePort"] == 6443
    assert values["kubeProxyReplacement"] is True and values["bpf"]["masquerade"] is True
    assert values["routingMode"] == "tunnel" and values["tunnelProtocol"] == "vxlan"
    assert values["ipam"]["operator"] == {"clusterPoolIPv4PodCIDRList": ["10.42.0.0/16"],
                                          "clusterPoolIPv4MaskSize": 25}
    # One control-plane node in the inventory: one operator replica, pinned there.
    assert values["operator"]["replicas"] == 1
    assert values["operator"]["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert values["hubble"]["relay"]["replicas"] == 2
    assert values["loadBalancer"] == {"algorithm": "maglev"}
    assert "lowered to 1" in output

    with open(str(directory / "lb-ippools.yaml")) as handle:
        pools = [document for document in yaml.safe_load_all(handle) if document]
    assert [pool["metadata"]["name"] for pool in pools] == ["lab-services"]
    assert pools[0]["apiVersion"] == "cilium.io/v2" and pools[0]["kind"] == "CiliumLoadBalancerIPPool"
    assert pools[0]["spec"] == {"blocks": [{"cidr": "172.31.213.240/28"}]}
    assert list(jsonschema.Draft7Validator(POOL_SCHEMA).iter_errors(pools[0])) == []

    readme = (directory / "README.md").read_text()
    assert "helm upgrade --install" in readme
    assert "--repo https://helm.cilium.io/" in readme and "--version 1.20.0" in readme
    assert "--values %s/values.yaml" % directory in readme
    assert "kubectl apply -f %s/lb-ippools.yaml" % directory in readme
    assert "`manifests.yaml` was not rendered: no helm binary '/nonexistent/helm' on the controller" in readme
    assert "pods get a route MTU of 1450" in readme


def test_a_second_run_changes_nothing(inventory):
    path = inventory()
    first = run_playbook(PLAYBOOK, inventory=path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first.stdout)["changed"] == 4
    second = run_playbook(PLAYBOOK, inventory=path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second.stdout)["changed"] == 0


def test_check_mode_writes_nothing(tmp_path, inventory):
    completed = run_playbook(PLAYBOOK, inventory=inventory(), check=True)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert recap(completed.stdout)["changed"] == 4
    assert not (tmp_path / "output").exists()


def test_bad_values_stop_the_play_with_every_violation_and_write_nothing(tmp_path, inventory):
    completed = run_playbook(PLAYBOOK, inventory=inventory(cilium_values_overrides=GUIDE_MISTAKES))
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    assert "Traceback" not in output
    assert "cilium_values: 4 problem(s) found" in output
    for expected in (
            "cilium_values_overrides.lb.algorithm: 'maglev' is not a key of the cilium chart 1.20.0: Helm would "
            "ignore it without a word; did you mean loadBalancer.algorithm?",
            "cilium_values_overrides.policyEnforceMode: 'always' is not a key of the cilium chart 1.20.0: Helm would "
            "ignore it without a word; did you mean policyEnforcementMode?",
            "cilium_values_overrides.conntrack.enabled: False is not a key of the cilium chart 1.20.0",
            "cilium_values_overrides.lbExternalIPPool.cidr: '192.168.100.0/24' is not a key of the cilium chart"):
        assert expected in output
    assert not (tmp_path / "output" / "cilium").exists()


def test_an_override_contradicting_the_spec_is_refused(tmp_path, inventory):
    completed = run_playbook(PLAYBOOK, inventory=inventory(cilium_values_overrides={"MTU": 1450}))
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    assert ("cilium_values_overrides.MTU: 1450 contradicts the cluster spec (zerotrust_underlay_mtu gives 1500)"
            in output)
    assert not (tmp_path / "output" / "cilium").exists()


def test_a_bad_spec_is_refused_by_the_argument_spec(tmp_path, inventory):
    completed = run_playbook(PLAYBOOK, inventory=inventory(cilium_routing_mode="natve"))
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    assert "cilium_routing_mode" in output and "natve" in output
    assert not (tmp_path / "output" / "cilium").exists()


def test_helm_template_renders_a_local_chart(tmp_path, inventory, helm_binary):
    chart = local_chart(tmp_path)
    path = inventory(cilium_chart_ref=chart, cilium_helm_binary=helm_binary,
                     cilium_values_overrides={"hubble": {"relay": {"replicas": 3}}})
    completed = run_playbook(PLAYBOOK, inventory=path)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    directory = tmp_path / "output" / "cilium"
    with open(str(directory / "manifests.yaml")) as handle:
        documents = [document for document in yaml.safe_load_all(handle) if document]
    assert documents == [{
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": "kube-system"},
        "data": {"mtu": "1500", "routing-mode": "tunnel", "kube-proxy-replacement": "true",
                 "k8s-service-host": "172.31.213.11", "relay-replicas": "3"},
    }]
    readme = (directory / "README.md").read_text()
    assert "`manifests.yaml` was rendered with helm template (helm v3." in readme
    assert "--version" not in readme  # a local chart carries its own version
    assert "helm upgrade --install \\\n  cilium \\\n  %s" % chart in readme

    again = run_playbook(PLAYBOOK, inventory=path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout)["changed"] == 0


def test_helm_template_in_check_mode_writes_nothing(tmp_path, inventory, helm_binary):
    path = inventory(cilium_chart_ref=local_chart(tmp_path), cilium_helm_binary=helm_binary)
    completed = run_playbook(PLAYBOOK, inventory=path, check=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not (tmp_path / "output").exists()


def test_a_local_chart_of_another_version_is_refused(tmp_path, inventory, helm_binary):
    chart = local_chart(tmp_path, version="1.19.4")
    completed = run_playbook(PLAYBOOK, inventory=inventory(cilium_chart_ref=chart, cilium_helm_binary=helm_binary))
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    assert ("cilium_chart_ref: '%s' is chart cilium 1.19.4, but cilium_version pins cilium 1.20.0" % chart) in output
    assert not (tmp_path / "output" / "cilium" / "manifests.yaml").exists()
