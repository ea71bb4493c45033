"""A throw-away copy of the lab for tests.

The copy has its own node names, podman network and subnet, so tests never touch a lab a
user is running with 'make lab'. It is built from inventories/lab (so it stays in step
with the real lab) and always removed again, even when a test fails.
"""

import json
import os
import shutil
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_INVENTORY = os.path.join(REPO, "inventories", "lab")
PODMAN_ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(REPO, "lab", "containers.conf"))


def podman(*arguments, check=True):
    return subprocess.run(["podman"] + list(arguments), env=PODMAN_ENV, capture_output=True,
                          text=True, check=check)


class LabCopy:
    """Inventory and clean-up for one test copy of the lab."""

    def __init__(self, directory, prefix, third_octet):
        self.directory = str(directory)
        self.prefix = prefix
        self.inventory = os.path.join(self.directory, "inventory")
        self.output_dir = os.path.join(self.directory, "output")
        self.network = "%s-underlay" % prefix
        self.subnet_prefix = "172.31.%d" % third_octet
        self.nodes = {}
        self._write_inventory()

    def _write_inventory(self):
        shutil.copytree(LAB_INVENTORY, self.inventory)
        hosts_path = os.path.join(self.inventory, "hosts.yml")
        with open(hosts_path) as stream:
            hosts = yaml.safe_load(stream)
        groups = hosts["all"]["children"]["k8s_cluster"]["children"]
        for group in groups.values():
            renamed = {}
            for name, host_vars in group["hosts"].items():
                new_name = name.replace("zt-lab", self.prefix)
                last_octet = host_vars["zerotrust_lab_underlay_ip"].rsplit(".", 1)[1]
                address = "%s.%s" % (self.subnet_prefix, last_octet)
                renamed[new_name] = dict(host_vars, zerotrust_lab_underlay_ip=address)
                self.nodes[new_name] = address
            group["hosts"] = renamed
        with open(hosts_path, "w") as stream:
            yaml.safe_dump(hosts, stream)

        lab_vars_path = os.path.join(self.inventory, "group_vars", "all", "lab.yml")
        with open(lab_vars_path) as stream:
            lab_vars = yaml.safe_load(stream)
        lab_vars.update(
            zerotrust_lab_network=self.network,
            zerotrust_lab_subnet="%s.0/24" % self.subnet_prefix,
            zerotrust_lab_gateway="%s.1" % self.subnet_prefix,
        )
        with open(lab_vars_path, "w") as stream:
            yaml.safe_dump(lab_vars, stream)

        cluster_vars_path = os.path.join(self.inventory, "group_vars", "all", "cluster.yml")
        with open(cluster_vars_path) as stream:
            cluster_vars = yaml.safe_load(stream)
        first_node = sorted(self.nodes)[0]
        cluster_vars.update(
            zerotrust_output_dir=self.output_dir,
            zerotrust_api_server_host=self.nodes[first_node],
            zerotrust_node_cidrs=["%s.0/24" % self.subnet_prefix],
        )
        with open(cluster_vars_path, "w") as stream:
            yaml.safe_dump(cluster_vars, stream)

    def remove(self):
        """Remove the copy's nodes and network whatever state they are in."""
        for node in self.nodes:
            podman("rm", "--force", "--time", "2", node, check=False)
        podman("network", "rm", "--force", self.network, check=False)

    def running_nodes(self):
        result = podman("ps", "--format", "json", "--filter", "name=^%s-" % self.prefix)
        return sorted(container["Names"][0] for container in json.loads(result.stdout or "[]"))

    def network_exists(self):
        return podman("network", "exists", self.network, check=False).returncode == 0


def parse_recap(stdout):
    """Return {host: {ok, changed, unreachable, failed, skipped, rescued, ignored}} from PLAY RECAP."""
    recap = {}
    in_recap = False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line and "=" in line:
            host, counters = line.split(":", 1)
            recap[host.strip()] = {
                name: int(value) for name, value in (pair.split("=") for pair in counters.split())
            }
    return recap
