# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking kube-proxy out of a running cluster: the decisions, as pure functions.

Pure Python: nothing here imports ``ansible`` and nothing runs a program, so bare pytest
tests every function.  Two sides:

Node side (used by the ``kube_proxy_cleanup`` module on each node)
    ``clean_iptables_save`` takes the text ``iptables-save -c`` (or ``ip6tables-save``)
    prints and returns, per table, the chains and rules kube-proxy left behind and the
    text that restores the table without them (for ``iptables-restore -c -T <table>``,
    one atomic replacement per table).  Removed are every ``KUBE-*`` chain and every rule
    of another chain that jumps (``-j``/``-g``) to one; everything else is kept line for
    line, counters included.  ``parse_nft_tables``, ``parse_ipvsadm_save`` and the
    ``select_*`` helpers do the same for kube-proxy's nftables tables, IPVS virtual
    services and ipsets.

Cluster side (used by the ``kube_proxy_removal`` role through filters)
    ``removal_gates`` decides from the Cilium configuration, the agent DaemonSet, each
    agent's status and service list, the cluster's Services and the kube-proxy objects
    whether kube-proxy may be removed, and says which gate failed and why.
    ``kubeadm_patch`` sets (or undoes) ``proxy.disabled`` in a kubeadm
    ``ClusterConfiguration`` so that ``kubeadm upgrade`` does not reinstall kube-proxy.
    ``restorable_manifest`` turns a live object into a manifest that can be applied again;
    ``removal_plan`` lists what a removal run will do (gates, objects, node batches, probes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import math
import re

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

KUBE_CHAIN_PREFIX = "KUBE-"
# Chains kubelet (not kube-proxy) creates and re-creates within a minute of their removal
# (pkg/kubelet/kubelet_network_linux.go): the iptables-mode hint, the canary kubelet
# watches, and the firewall chain with the localnet martian-packet rule.
KUBELET_CHAINS = ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY", "KUBE-FIREWALL")
FAMILIES = ("ipv4", "ipv6")
NFT_FAMILY = {"ipv4": "ip", "ipv6": "ip6"}
KUBE_PROXY_NFT_TABLE = "kube-proxy"
DEFAULT_NODEPORT_RANGE = "30000-32767"
KUBE_IPVS_INTERFACE = "kube-ipvs0"

_CHAIN_NAME = re.compile(r"^[^\s!-][^\s]{0,27}$")
_RULE_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]\s+")
_INCOMPATIBLE = re.compile(r"^#\s*Table `([^']+)' (.*)$")
_JUMP_OPTIONS = ("-j", "--jump", "-g", "--goto")


# --------------------------------------------------------------------------- node side


def split_arguments(text):
    """Split one rule of iptables-save output into arguments, as iptables-restore does.

    Arguments are separated by spaces or tabs; a double-quoted part may hold them; a
    backslash takes the next character literally (iptables-save writes ``\\"``, ``\\'``
    and ``\\\\`` inside quotes).  Raises ValueError on an unterminated quote.
    """
    arguments = []
    current = []
    started = in_quotes = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = started = True
        elif in_quotes:
            if char == '"':
                in_quotes = False
            else:
                current.append(char)
        elif char == '"':
            in_quotes = started = True
        elif char in " \t":
            if started:
                arguments.append("".join(current))
                current = []
                started = False
        else:
            current.append(char)
            started = True
    if in_quotes or escaped:
        raise ValueError("unterminated quote or trailing backslash")
    if started:
        arguments.append("".join(current))
    return arguments


def _jump_target(arguments):
    """The chain a rule jumps or goes to (the last -j/-g wins, as in iptables), or None."""
    target = None
    for index, argument in enumerate(arguments[:-1]):
        if argument in _JUMP_OPTIONS:
            target = arguments[index + 1]
    return target


def validate_chain_names(names, field="keep_chains", where=None):
    """``names`` as a list of valid iptables chain names, or InvalidInput naming the bad one."""
    if names is None:
        return []
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple, set, frozenset)):
        raise InvalidInput(field, names, "is not a list of chain names", where=where)
    checked = []
    for name in names:
        if not isinstance(name, str) or not _CHAIN_NAME.match(name):
            raise InvalidInput(
                field, name,
                "is not an iptables chain name (1 to 28 characters, no whitespace, not starting "
                "with '-' or '!')", where=where)
        checked.append(name)
    return checked


def parse_iptables_save(text, where="iptables-save"):
    """Parse iptables-save output into tables.

    Returns ``(tables, warnings)``: ``tables`` is a list of
    ``{"name", "chains": [{"name", "line"}], "rules": [{"chain", "text", "counters",
    "target"}]}`` in the order of the input, ``warnings`` maps a table name to the
    warning iptables-nft-save printed for it (``# Table `filter' contains incompatible
    base-chains ...``): such a table holds things iptables cannot show or restore.
    """
    if not isinstance(text, str):
        raise InvalidInput(where, text, "is not text (the output of iptables-save)")
    tables = []
    warnings = {}
    current = None
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _INCOMPATIBLE.match(line)
            if match:
                warnings[match.group(1)] = line.lstrip("# ")
            continue
        if line.startswith("*"):
            if current is not None:
                raise InvalidInput(where, "line %d: %s" % (number, line),
                                   "starts a table before table %r has its COMMIT line" % current["name"])
            current = {"name": line[1:].strip(), "chains": [], "rules": []}
            continue
        if current is None:
            raise InvalidInput(where, "line %d: %s" % (number, line),
                               "is outside a table (no '*<table>' line before it)")
        if line == "COMMIT":
            tables.append(current)
            current = None
            continue
        if line.startswith(":"):
            fields = line[1:].split()
            if len(fields) < 2:
                raise InvalidInput(where, "line %d: %s" % (number, line),
                                   "is not a chain line (':<chain> <policy> [packets:bytes]')")
            current["chains"].append({"name": fields[0], "line": line})
            continue
        counters = ""
        body = line
        match = _RULE_COUNTERS.match(line)
        if match:
            counters = "[%s:%s]" % (match.group(1), match.group(2))
            body = line[match.end():]
        try:
            arguments = split_arguments(body)
        except ValueError as err:
            raise InvalidInput(where, "line %d: %s" % (number, line), "cannot be split into arguments: %s" % err)
        if len(arguments) < 2 or arguments[0] not in ("-A", "--append"):
            raise InvalidInput(where, "line %d: %s" % (number, line),
                               "is not a rule line of iptables-save ('-A <chain> ...')")
        current["rules"].append({
            "chain": arguments[1],
            "text": body,
            "counters": counters,
            "target": _jump_target(arguments),
        })
    if current is not None:
        raise InvalidInput(where, current["name"], "table has no COMMIT line (truncated output?)")
    return tables, warnings


def _render_table(name, chains, rules, counters):
    lines = ["*%s" % name]
    lines.extend(chain["line"] for chain in chains)
    for rule in rules:
        if counters and rule["counters"]:
            lines.append("%s %s" % (rule["counters"], rule["text"]))
        else:
            lines.append(rule["text"])
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def clean_iptables_save(text, keep_chains=None, where="iptables-save"):
    """What kube-proxy left in iptables-save output, and the tables without it.

    ``keep_chains`` names ``KUBE-*`` chains to leave alone (with the rules that jump to
    them), e.g. :data:`KUBELET_CHAINS`.  Returns::

        {
          "tables": [{
              "table": "nat",
              "changed": True,             # something to remove
              "removed_chains": [...],     # chain names, in save order
              "removed_rules": [...],      # "-A <chain> ..." lines, without counters
              "before": "*nat\\n...COMMIT\\n",   # the table as read (rule counters dropped)
              "after": "*nat\\n...COMMIT\\n",    # the table without kube-proxy's state
              "restore": "*nat\\n...COMMIT\\n",  # "after" with rule counters, for iptables-restore -c
              "unsafe": None,              # why the table must not be restored, or None
          }, ...],
          "text": "...",                   # every table of "after", one after the other
          "removed_rules": [...],          # all tables
          "counts": {"nat": {"chains": 12, "rules": 40}, ...},
        }

    A table is ``unsafe`` when iptables-nft-save warned that it holds base chains or
    expressions iptables cannot represent: restoring it would destroy them.
    """
    keep = set(validate_chain_names(keep_chains, where=where))
    tables, warnings = parse_iptables_save(text, where=where)
    result_tables = []
    all_removed = []
    counts = {}
    for table in tables:
        removed_chains = [chain["name"] for chain in table["chains"]
                          if chain["name"].startswith(KUBE_CHAIN_PREFIX) and chain["name"] not in keep]
        removed = set(removed_chains)
        kept_chains = [chain for chain in table["chains"] if chain["name"] not in removed]
        kept_rules, removed_rules = [], []
        for rule in table["rules"]:
            if rule["chain"] in removed or rule["target"] in removed:
                removed_rules.append(rule["text"])
            else:
                kept_rules.append(rule)
        unsafe = warnings.get(table["name"])
        if unsafe is None:
            for rule in table["rules"]:
                if "[unsupported" in rule["text"] or "[INVALID" in rule["text"]:
                    unsafe = "rule %r cannot be restored by iptables" % rule["text"]
                    break
        result_tables.append({
            "table": table["name"],
            "changed": bool(removed_chains or removed_rules),
            "removed_chains": removed_chains,
            "removed_rules": removed_rules,
            "before": _render_table(table["name"], table["chains"], table["rules"], counters=False),
            "after": _render_table(table["name"], kept_chains, kept_rules, counters=False),
            "restore": _render_table(table["name"], kept_chains, kept_rules, counters=True),
            "unsafe": unsafe,
        })
        all_removed.extend(removed_rules)
        counts[table["name"]] = {"chains": len(removed_chains), "rules": len(removed_rules)}
    return {
        "tables": result_tables,
        "text": "".join(table["after"] for table in result_tables),
        "removed_rules": all_removed,
        "counts": counts,
    }


def iptables_backend_from_version(text):
    """``nft`` or ``legacy`` from ``iptables-save --version`` output.

    iptables 1.8 names the backend (``iptables-save v1.8.9 (nf_tables)``, ``(legacy)``);
    older releases only had the legacy backend and name none.
    """
    return "nft" if "nf_tables" in (text or "") else "legacy"


def parse_nft_tables(text):
    """``[(family, name), ...]`` from ``nft list tables`` output."""
    tables = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "table":
            tables.append((fields[1], fields[2]))
    return tables


def select_nft_tables(tables, families=FAMILIES):
    """The tables kube-proxy's nftables mode (Kubernetes 1.29+) creates: ``ip``/``ip6 kube-proxy``."""
    wanted = set(NFT_FAMILY[family] for family in validate_families(families))
    return [(family, name) for family, name in tables if name == KUBE_PROXY_NFT_TABLE and family in wanted]


def validate_families(families, where=None):
    if isinstance(families, (str, bytes)) or not isinstance(families, (list, tuple)):
        raise InvalidInput("families", families, "is not a list of: %s" % ", ".join(FAMILIES), where=where)
    for family in families:
        if family not in FAMILIES:
            raise InvalidInput("families", family, "is not one of: %s" % ", ".join(FAMILIES), where=where)
    return list(families)


def parse_port_range(value, field="nodeport_range", where=None):
    """``'30000-32767'`` as ``(30000, 32767)``; a single port is a range of one."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(field, value, "is not a port range such as '30000-32767'", where=where)
    text = str(value).strip()
    match = re.match(r"^(\d{1,5})(?:-(\d{1,5}))?$", text)
    if not match:
        raise InvalidInput(field, value, "is not a port range such as '30000-32767'", where=where)
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 1 <= first <= last <= 65535:
        raise InvalidInput(field, value, "must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535", where=where)
    return first, last


def _parse_service_address(text):
    """``10.96.0.1:443`` or ``[fd00::1]:443`` as ``(ip_address, port)``; None when it is neither."""
    if text.startswith("["):
        host, port = text[1:].partition("]:")[::2]
    else:
        host, port = text.rpartition(":")[::2]
    try:
        return ipaddress.ip_address(host), int(port)
    except ValueError:
        return None


_IPVS_PROTOCOLS = {"-t": "tcp", "--tcp-service": "tcp", "-u": "udp", "--udp-service": "udp",
                   "--sctp-service": "sctp", "-f": "fwmark", "--fwmark-service": "fwmark"}


def parse_ipvsadm_save(text):
    """Virtual services from ``ipvsadm -S -n`` (``-A`` lines; real servers are ignored).

    Each is ``{"protocol", "option", "address", "port", "spec"}`` where ``spec`` is what
    ``ipvsadm -D`` takes after the protocol option (``10.96.0.1:443``, ``[fd00::1]:443`` or
    a firewall mark).  Unreadable lines raise InvalidInput.
    """
    services = []
    for number, raw_line in enumerate((text or "").splitlines(), 1):
        fields = raw_line.split()
        if not fields or fields[0] != "-A":
            continue
        if len(fields) < 3 or fields[1] not in _IPVS_PROTOCOLS:
            raise InvalidInput("ipvsadm -S -n", "line %d: %s" % (number, raw_line.strip()),
                               "is not a virtual service line ('-A -t|-u|--sctp-service|-f <address> ...')")
        protocol = _IPVS_PROTOCOLS[fields[1]]
        address, port = None, None
        if protocol != "fwmark":
            parsed = _parse_service_address(fields[2])
            if parsed is None:
                raise InvalidInput("ipvsadm -S -n", "line %d: %s" % (number, raw_line.strip()),
                                   "has no numeric address:port")
            address, port = str(parsed[0]), parsed[1]
        services.append({"protocol": protocol, "option": fields[1], "address": address, "port": port,
                         "spec": fields[2]})
    return services


def _networks(cidrs, field, where=None):
    networks = []
    for cidr in cidrs or []:
        try:
            networks.append(ipaddress.ip_network(str(cidr), strict=False))
        except ValueError:
            raise InvalidInput(field, cidr, "is not a CIDR", where=where)
    return networks


def select_ipvs_services(services, interface_addresses=(), service_cidrs=(), node_addresses=(),
                         nodeport_range=DEFAULT_NODEPORT_RANGE, where=None):
    """The IPVS virtual services kube-proxy created, from :func:`parse_ipvsadm_save` output.

    kube-proxy's IPVS mode puts every ClusterIP, external IP and load-balancer IP it serves
    on the ``kube-ipvs0`` dummy interface, and a NodePort service on each node address.
    A virtual service is kube-proxy's when its address is on ``kube-ipvs0``
    (``interface_addresses``) or inside the service CIDRs, or when its port lies in the
    NodePort range and its address is one of the node's own (``node_addresses``).  Firewall
    mark services and anything else (keepalived, a hand-made load balancer) are left alone.
    """
    first, last = parse_port_range(nodeport_range, where=where)
    service_networks = _networks(service_cidrs, "service_cidrs", where=where)
    on_interface = set(str(ipaddress.ip_address(address)) for address in interface_addresses or ())
    on_node = set(str(ipaddress.ip_address(address)) for address in node_addresses or ())
    selected = []
    for service in services:
        if service["address"] is None:
            continue
        address = ipaddress.ip_address(service["address"])
        in_service_cidr = any(address.version == network.version and address in network
                              for network in service_networks)
        nodeport = first <= service["port"] <= last and str(address) in on_node
        if str(address) in on_interface or in_service_cidr or nodeport:
            selected.append(service)
    return selected


def select_ipsets(names, prefix=KUBE_CHAIN_PREFIX):
    """The ipsets kube-proxy's IPVS mode created (``KUBE-CLUSTER-IP``, ``KUBE-NODE-PORT-TCP``, ...)."""
    return [name for name in names if name.startswith(prefix)]


# ------------------------------------------------------------------------ cluster side

GATES = (
    ("cilium_kube_proxy_replacement",
     "The cilium-config ConfigMap sets kube-proxy-replacement to true."),
    ("cilium_api_endpoint",
     "The Cilium agent reaches the API server without kube-proxy: KUBERNETES_SERVICE_HOST and "
     "KUBERNETES_SERVICE_PORT (Helm k8sServiceHost/k8sServicePort) are set in the agent container and "
     "the host is neither the 'kubernetes' ClusterIP, an address of the service CIDR, nor a name of the "
     "'kubernetes' Service."),
    ("cilium_daemonset_ready",
     "The Cilium agent DaemonSet is fully rolled out: every scheduled pod is updated, ready and available, "
     "and the controller has seen the latest generation."),
    ("cilium_agents_reporting",
     "Every agent pod of the DaemonSet answered 'cilium-dbg status' and 'cilium-dbg service list'."),
    ("cilium_agents_healthy",
     "Every agent reports Cilium and its Kubernetes connection as Ok."),
    ("cilium_kube_proxy_replacement_active",
     "Every agent reports kube-proxy replacement mode True, with NodePort and external IP handling enabled "
     "when the cluster has services that need them."),
    ("cilium_services_programmed",
     "Every agent has every ClusterIP:port of the cluster's Services as a frontend in its load-balancer map."),
    ("kube_proxy_not_reconciled",
     "Nothing would recreate kube-proxy after its deletion: the DaemonSet has no owner and no "
     "addonmanager.kubernetes.io/mode=Reconcile label."),
)

_KUBERNETES_SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc")
_RECONCILE_LABEL = "addonmanager.kubernetes.io/mode"
_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
_MISSING_SHOWN = 5


def _require_mapping(value, field, where, allow_none=True):
    if value is None and allow_none:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(field, value, "is not a mapping (an object as the Kubernetes API returns it)",
                           where=where)
    return value


def _require_list(value, field, where):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(field, value, "is not a list", where=where)
    return list(value)


def _env_source(container, variable):
    for entry in container.get("env") or []:
        if entry.get("name") != variable:
            continue
        if "value" in entry:
            return {"value": entry.get("value") or "", "config_map": None, "key": None}
        reference = (entry.get("valueFrom") or {}).get("configMapKeyRef") or {}
        if reference:
            return {"value": None, "config_map": reference.get("name"), "key": reference.get("key")}
        return {"value": None, "config_map": None, "key": None}
    return None


def cilium_agent_endpoint(daemonset, container="cilium-agent", where="cilium_agent_endpoint"):
    """Where the Cilium agent finds the API server, from its DaemonSet.

    Returns ``{"container_found", "host", "port"}``; ``host`` and ``port`` are None when
    the variable is not set in the container (the kubelet then injects the ``kubernetes``
    ClusterIP), else ``{"value", "config_map", "key"}`` (a ConfigMap reference, as Helm's
    ``k8sServiceHostRef`` writes it, has ``value`` None).
    """
    _require_mapping(daemonset, "daemonset", where, allow_none=False)
    spec = (((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {})
    for candidate in spec.get("containers") or []:
        if candidate.get("name") == container:
            return {
                "container_found": True,
                "host": _env_source(candidate, "KUBERNETES_SERVICE_HOST"),
                "port": _env_source(candidate, "KUBERNETES_SERVICE_PORT"),
            }
    return {"container_found": False, "host": None, "port": None}


def _resolve(source, config_maps):
    if source is None:
        return None, "not set"
    if source["value"] is not None:
        return (source["value"], None) if source["value"] else (None, "set to an empty value")
    if source["config_map"]:
        data = (config_maps or {}).get(source["config_map"])
        if data is None:
            return None, "taken from ConfigMap %r, which was not provided" % source["config_map"]
        value = data.get(source["key"])
        if not value:
            return None, "taken from ConfigMap %r key %r, which is missing or empty" % (
                source["config_map"], source["key"])
        return str(value), None
    return None, "set from a source other than a value or a ConfigMap key"


def _cluster_ips(service):
    spec = service.get("spec") or {}
    addresses = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [address for address in addresses if address and address != "None"]


def _service_name(service):
    metadata = service.get("metadata") or {}
    return "%s/%s" % (metadata.get("namespace", "?"), metadata.get("name", "?"))


def expected_frontends(services, where="removal_gates"):
    """Every (ClusterIP, port, protocol) kube-proxy serves today, with the Service it belongs to.

    Headless and ExternalName Services have no ClusterIP; Services labelled
    ``service.kubernetes.io/service-proxy-name`` belong to another proxy and are skipped,
    as kube-proxy and Cilium skip them.
    """
    frontends = []
    for service in _require_list(services, "services", where):
        _require_mapping(service, "services[]", where, allow_none=False)
        labels = (service.get("metadata") or {}).get("labels") or {}
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName" or _PROXY_NAME_LABEL in labels:
            continue
        for address in _cluster_ips(service):
            for port in spec.get("ports") or []:
                frontends.append({
                    "service": _service_name(service),
                    "ip": str(ipaddress.ip_address(address)),
                    "port": int(port.get("port")),
                    "protocol": str(port.get("protocol") or "TCP").upper(),
                })
    return frontends


def _kubernetes_service_ips(services):
    for service in services:
        metadata = service.get("metadata") or {}
        if metadata.get("namespace") == "default" and metadata.get("name") == "kubernetes":
            return _cluster_ips(service)
    return []


def _is_kubernetes_service_name(host):
    name = host.rstrip(".").lower()
    return name in _KUBERNETES_SERVICE_NAMES or name.startswith("kubernetes.default.svc.")


def _load_json(value, what):
    if isinstance(value, (dict, list)):
        return value, None
    if value is None or value == "":
        return None, "%s is missing" % what
    try:
        return json.loads(value), None
    except (TypeError, ValueError) as err:
        return None, "%s is not JSON (%s)" % (what, err)


def _agent_frontends(service_list):
    frontends = set()
    for entry in service_list or []:
        spec = (entry or {}).get("spec") or {}
        address = spec.get("frontend-address") or {}
        if not address.get("ip") or address.get("port") is None:
            continue
        try:
            ip = str(ipaddress.ip_address(address["ip"]))
        except ValueError:
            continue
        frontends.add((ip, int(address["port"]), str(address.get("protocol") or "ANY").upper()))
    return frontends


def _programmed(frontend, agent_frontends):
    for ip, port, protocol in agent_frontends:
        if ip == frontend["ip"] and port == frontend["port"] and protocol in ("ANY", "NONE", frontend["protocol"]):
            return True
    return False


def _feature_enabled(status, feature):
    features = ((status.get("kube-proxy-replacement") or {}).get("features") or {})
    return bool((features.get(feature) or {}).get("enabled"))


def removal_gates(cilium_config, cilium_daemonset, agent_statuses, services, kube_proxy_objects,
                  config_maps=None, service_cidr=None, container="cilium-agent"):
    """Decide whether kube-proxy may be removed, from what the API and the agents report.

    - ``cilium_config``: the ``data`` of the ``cilium-config`` ConfigMap (None when missing).
    - ``cilium_daemonset``: the Cilium agent DaemonSet as the API returns it (None when missing).
    - ``agent_statuses``: one entry per agent pod, ``{"node", "pod", "status", "services"}``
      with ``status`` the output of ``cilium-dbg status -o json`` and ``services`` that of
      ``cilium-dbg service list -o json`` (parsed or as text); ``error`` says why an agent
      could not be asked.
    - ``services``: every Service of the cluster.
    - ``kube_proxy_objects``: ``{"daemonset": obj or None, "configmap": obj or None}``.
    - ``config_maps``: ``{name: data}`` of ConfigMaps the agent's API endpoint refers to.
    - ``service_cidr``: the cluster's service CIDR(s), comma-separated or a list.

    Returns ``{"ok", "failed_gates": [{"gate", "reason"}], "gates": [{"gate", "description",
    "passed", "detail"}], "kube_proxy_present", "api_endpoint", "expected_frontends"}``.
    Gates are all evaluated, so one run names every problem.
    """
    where = "removal_gates"
    _require_mapping(cilium_config, "cilium_config", where)
    _require_mapping(cilium_daemonset, "cilium_daemonset", where)
    statuses = _require_list(agent_statuses, "agent_statuses", where)
    service_objects = _require_list(services, "services", where)
    objects = _require_mapping(kube_proxy_objects, "kube_proxy_objects", where) or {}
    _require_mapping(config_maps, "config_maps", where)
    if isinstance(service_cidr, str):
        service_cidr = [part.strip() for part in service_cidr.split(",") if part.strip()]
    service_networks = _networks(service_cidr, "service_cidr", where=where)
    for index, entry in enumerate(statuses):
        _require_mapping(entry, "agent_statuses[%d]" % index, where, allow_none=False)
    frontends = expected_frontends(service_objects, where=where)

    results = {}

    # 1. kube-proxy replacement configured.
    if cilium_config is None:
        results["cilium_kube_proxy_replacement"] = (False, "the cilium-config ConfigMap was not found; "
                                                           "is Cilium installed?")
    else:
        setting = str(cilium_config.get("kube-proxy-replacement", "")).strip()
        if setting.lower() == "true":
            results["cilium_kube_proxy_replacement"] = (True, "kube-proxy-replacement: true")
        else:
            results["cilium_kube_proxy_replacement"] = (
                False, "cilium-config has kube-proxy-replacement %r; install or upgrade Cilium with Helm value "
                       "kubeProxyReplacement=true first" % (setting or "(unset)"))

    # 2. API endpoint that works without kube-proxy.
    api_endpoint = {"host": None, "port": None}
    if cilium_daemonset is None:
        results["cilium_api_endpoint"] = (False, "the Cilium agent DaemonSet was not found")
    else:
        endpoint = cilium_agent_endpoint(cilium_daemonset, container=container, where=where)
        if not endpoint["container_found"]:
            results["cilium_api_endpoint"] = (False, "the DaemonSet has no container named %r" % container)
        else:
            host, host_problem = _resolve(endpoint["host"], config_maps)
            port, port_problem = _resolve(endpoint["port"], config_maps)
            api_endpoint = {"host": host, "port": port}
            kubernetes_ips = _kubernetes_service_ips(service_objects)
            problem = None
            if host_problem:
                problem = ("KUBERNETES_SERVICE_HOST is %s in container %r, so the agent talks to the API through "
                           "the 'kubernetes' ClusterIP, which needs kube-proxy; set Helm value k8sServiceHost to "
                           "the API server address, a VIP or a load balancer" % (host_problem, container))
            elif port_problem:
                problem = ("KUBERNETES_SERVICE_PORT is %s in container %r; set Helm value k8sServicePort"
                           % (port_problem, container))
            elif _is_kubernetes_service_name(host):
                problem = ("KUBERNETES_SERVICE_HOST %r is a name of the 'kubernetes' Service, which resolves to "
                           "its ClusterIP" % host)
            else:
                try:
                    host_ip = ipaddress.ip_address(host)
                except ValueError:
                    host_ip = None
                if host_ip is not None and str(host_ip) in [str(ipaddress.ip_address(ip)) for ip in kubernetes_ips]:
                    problem = "KUBERNETES_SERVICE_HOST %r is the 'kubernetes' ClusterIP" % host
                elif host_ip is not None and any(host_ip.version == network.version and host_ip in network
                                                 for network in service_networks):
                    problem = "KUBERNETES_SERVICE_HOST %r lies in the service CIDR %s" % (
                        host, ", ".join(str(network) for network in service_networks))
            if problem:
                results["cilium_api_endpoint"] = (False, problem)
            else:
                results["cilium_api_endpoint"] = (True, "agents use %s:%s" % (host, port))

    # 3. DaemonSet rolled out.
    desired = None
    if cilium_daemonset is None:
        results["cilium_daemonset_ready"] = (False, "the Cilium agent DaemonSet was not found")
    else:
        status = cilium_daemonset.get("status") or {}
        generation = (cilium_daemonset.get("metadata") or {}).get("generation")
        desired = int(status.get("desiredNumberScheduled") or 0)
        counts = dict((name, int(status.get(name) or 0)) for name in (
            "currentNumberScheduled", "updatedNumberScheduled", "numberReady", "numberAvailable",
            "numberUnavailable", "numberMisscheduled"))
        problems = []
        if desired == 0:
            problems.append("no agent pod is scheduled (desiredNumberScheduled is 0)")
        for name in ("currentNumberScheduled", "updatedNumberScheduled", "numberReady", "numberAvailable"):
            if desired and counts[name] != desired:
                problems.append("%s is %d of %d" % (name, counts[name], desired))
        if counts["numberUnavailable"]:
            problems.append("numberUnavailable is %d" % counts["numberUnavailable"])
        if counts["numberMisscheduled"]:
            problems.append("numberMisscheduled is %d" % counts["numberMisscheduled"])
        observed = status.get("observedGeneration")
        if generation is not None and (observed is None or int(observed) < int(generation)):
            problems.append("observedGeneration %s is behind generation %s (a rollout is pending)"
                            % (observed, generation))
        if problems:
            results["cilium_daemonset_ready"] = (False, "; ".join(problems))
        else:
            results["cilium_daemonset_ready"] = (True, "%d of %d agents ready and up to date" % (desired, desired))

    # 4-7. Per agent.
    parsed_agents = []
    unreachable = []
    for entry in statuses:
        label = "%s (pod %s)" % (entry.get("node") or "?", entry.get("pod") or "?")
        if entry.get("error"):
            unreachable.append("%s: %s" % (label, entry["error"]))
            continue
        status, status_problem = _load_json(entry.get("status"), "'cilium-dbg status -o json' output")
        service_list, list_problem = _load_json(entry.get("services"), "'cilium-dbg service list -o json' output")
        if status_problem or list_problem or not isinstance(status, dict) or not isinstance(service_list, list):
            unreachable.append("%s: %s" % (label, status_problem or list_problem or "unexpected output shape"))
            continue
        parsed_agents.append((label, status, service_list))
    reporting_problems = list(unreachable)
    if desired is not None and len(statuses) != desired:
        reporting_problems.insert(0, "%d agent pod(s) asked, the DaemonSet schedules %d" % (len(statuses), desired))
    if not statuses:
        reporting_problems.insert(0, "no agent status was collected")
    if reporting_problems:
        results["cilium_agents_reporting"] = (False, "; ".join(reporting_problems))
    else:
        results["cilium_agents_reporting"] = (True, "%d agents answered" % len(statuses))

    unhealthy = []
    inactive = []
    unprogrammed = []
    needs_nodeport = any((service.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer")
                         for service in service_objects)
    needs_external_ips = any((service.get("spec") or {}).get("externalIPs") for service in service_objects)
    for label, status, service_list in parsed_agents:
        states = []
        for component in ("cilium", "kubernetes"):
            state = (status.get(component) or {}).get("state")
            if state != "Ok":
                message = (status.get(component) or {}).get("msg")
                states.append("%s is %s%s" % (component, state or "unknown",
                                              (" (%s)" % message) if message else ""))
        if states:
            unhealthy.append("%s: %s" % (label, ", ".join(states)))
        replacement = status.get("kube-proxy-replacement") or {}
        mode = replacement.get("mode")
        missing_features = []
        if mode != "True":
            missing_features.append("mode is %r" % (mode or "unknown"))
        if needs_nodeport and not _feature_enabled(status, "nodePort"):
            missing_features.append("NodePort handling is disabled but the cluster has NodePort/LoadBalancer "
                                    "Services")
        if needs_external_ips and not _feature_enabled(status, "externalIPs"):
            missing_features.append("external IP handling is disabled but Services use externalIPs")
        if missing_features:
            inactive.append("%s: %s" % (label, "; ".join(missing_features)))
        agent_frontends = _agent_frontends(service_list)
        missing = [frontend for frontend in frontends if not _programmed(frontend, agent_frontends)]
        if missing:
            shown = ", ".join("%s %s:%d/%s" % (item["service"], item["ip"], item["port"], item["protocol"])
                              for item in missing[:_MISSING_SHOWN])
            more = " and %d more" % (len(missing) - _MISSING_SHOWN) if len(missing) > _MISSING_SHOWN else ""
            unprogrammed.append("%s lacks %d of %d frontends: %s%s" % (label, len(missing), len(frontends),
                                                                       shown, more))
    if not parsed_agents:
        no_data = "no agent answered, so nothing could be checked"
        results["cilium_agents_healthy"] = (False, no_data)
        results["cilium_kube_proxy_replacement_active"] = (False, no_data)
        results["cilium_services_programmed"] = (False, no_data)
    else:
        results["cilium_agents_healthy"] = ((False, "; ".join(unhealthy)) if unhealthy
                                            else (True, "%d agents Ok" % len(parsed_agents)))
        results["cilium_kube_proxy_replacement_active"] = (
            (False, "; ".join(inactive)) if inactive
            else (True, "kube-proxy replacement active on %d agents" % len(parsed_agents)))
        results["cilium_services_programmed"] = (
            (False, "; ".join(unprogrammed)) if unprogrammed
            else (True, "%d frontends programmed on %d agents" % (len(frontends), len(parsed_agents))))

    # 8. Nothing recreates kube-proxy.
    kube_proxy_daemonset = _require_mapping(objects.get("daemonset"), "kube_proxy_objects.daemonset", where)
    _require_mapping(objects.get("configmap"), "kube_proxy_objects.configmap", where)
    if kube_proxy_daemonset is None:
        results["kube_proxy_not_reconciled"] = (True, "no kube-proxy DaemonSet")
    else:
        metadata = kube_proxy_daemonset.get("metadata") or {}
        owners = ["%s/%s" % (owner.get("kind"), owner.get("name")) for owner in metadata.get("ownerReferences") or []]
        mode = (metadata.get("labels") or {}).get(_RECONCILE_LABEL)
        if owners:
            results["kube_proxy_not_reconciled"] = (
                False, "the kube-proxy DaemonSet is owned by %s, which would recreate it" % ", ".join(owners))
        elif mode == "Reconcile":
            results["kube_proxy_not_reconciled"] = (
                False, "the kube-proxy DaemonSet has label %s=Reconcile: the addon manager would recreate it; "
                       "disable kube-proxy in the platform's addon configuration instead" % _RECONCILE_LABEL)
        else:
            results["kube_proxy_not_reconciled"] = (True, "not owned, not reconciled by an addon manager")

    gates = []
    failed = []
    for name, description in GATES:
        passed, detail = results[name]
        gates.append({"gate": name, "description": description, "passed": passed, "detail": detail})
        if not passed:
            failed.append({"gate": name, "reason": detail})
    return {
        "ok": not failed,
        "failed_gates": failed,
        "gates": gates,
        "kube_proxy_present": bool(objects.get("daemonset") or objects.get("configmap")),
        "api_endpoint": api_endpoint,
        "expected_frontends": len(frontends),
    }


_KUBEADM_GROUP = "kubeadm.k8s.io/"


def _kubeadm_version(api_version):
    match = re.match(r"^kubeadm\.k8s\.io/v(\d+)(?:beta(\d+))?$", api_version or "")
    if not match:
        return None
    major = int(match.group(1))
    beta = match.group(2)
    # v1beta4 < v1 (GA): order betas before the release they lead to.
    return (major, int(beta) if beta is not None else 1000)


def kubeadm_patch(cluster_configuration, disabled=True):
    """Set (or undo) ``proxy.disabled`` in a kubeadm ``ClusterConfiguration``.

    ``cluster_configuration`` is the parsed value of key ``ClusterConfiguration`` of the
    ``kube-system/kubeadm-config`` ConfigMap.  ``disabled`` True sets ``proxy.disabled:
    true`` (kubeadm upgrade then skips the kube-proxy addon); False sets it false; None
    removes the field again (and ``proxy`` when it becomes empty), which is how rollback
    returns to a configuration that never had it.

    The field exists from ``kubeadm.k8s.io/v1beta4`` (kubeadm 1.31) on.  For older API
    versions nothing is changed and ``supported`` is False: those kubeadm releases skip the
    kube-proxy addon on upgrade as long as the ``kube-proxy`` ConfigMap does not exist.

    Returns ``{"changed", "supported", "api_version", "cluster_configuration", "reason"}``
    with a copy of the input (changed or not) under ``cluster_configuration``.
    """
    where = "kubeadm_patch"
    _require_mapping(cluster_configuration, "cluster_configuration", where, allow_none=False)
    if disabled not in (True, False, None):
        raise InvalidInput("disabled", disabled, "is not one of: true, false, null", where=where)
    kind = cluster_configuration.get("kind")
    if kind != "ClusterConfiguration":
        raise InvalidInput("cluster_configuration.kind", kind, "is not 'ClusterConfiguration'", where=where)
    api_version = cluster_configuration.get("apiVersion")
    version = _kubeadm_version(api_version)
    if version is None:
        raise InvalidInput("cluster_configuration.apiVersion", api_version,
                           "is not a kubeadm API version (kubeadm.k8s.io/v1betaN)", where=where)
    patched = json.loads(json.dumps(cluster_configuration))
    if version < (1, 4):
        return {
            "changed": False,
            "supported": False,
            "api_version": api_version,
            "cluster_configuration": patched,
            "reason": ("%s has no proxy.disabled field (it came with kubeadm.k8s.io/v1beta4, kubeadm 1.31); "
                       "kubeadm releases that store this version skip the kube-proxy addon on upgrade while the "
                       "kube-proxy ConfigMap is absent" % api_version),
        }
    proxy = patched.get("proxy")
    if proxy is not None and not isinstance(proxy, dict):
        raise InvalidInput("cluster_configuration.proxy", proxy, "is not a mapping", where=where)
    current = (proxy or {}).get("disabled")
    if disabled is None:
        if proxy is None or "disabled" not in proxy:
            changed = False
        else:
            del proxy["disabled"]
            if not proxy:
                del patched["proxy"]
            changed = True
    else:
        changed = current is not disabled
        if changed:
            if proxy is None:
                proxy = patched["proxy"] = {}
            proxy["disabled"] = disabled
    return {
        "changed": changed,
        "supported": True,
        "api_version": api_version,
        "cluster_configuration": patched,
        "reason": "proxy.disabled was %s, is %s" % (
            "unset" if current is None else str(current).lower(),
            "unset" if disabled is None else str(disabled).lower()),
    }


_SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                    "deletionTimestamp", "deletionGracePeriodSeconds")
_SERVER_ANNOTATIONS = ("deprecated.daemonset.template.generation",)


def restorable_manifest(obj):
    """A live object as a manifest that can be created again: no status, no server-set metadata."""
    where = "restorable_manifest"
    _require_mapping(obj, "object", where, allow_none=False)
    for field in ("apiVersion", "kind", "metadata"):
        if not obj.get(field):
            raise InvalidInput("object.%s" % field, obj.get(field), "is missing; pass the object as the API returns it",
                               where=where)
    manifest = json.loads(json.dumps(obj))
    manifest.pop("status", None)
    metadata = manifest["metadata"]
    for field in _SERVER_METADATA:
        metadata.pop(field, None)
    annotations = metadata.get("annotations") or {}
    for annotation in _SERVER_ANNOTATIONS:
        annotations.pop(annotation, None)
    if "annotations" in metadata and not annotations:
        del metadata["annotations"]
    return manifest


def node_batches(nodes, serial=1):
    """The batches Ansible's ``serial`` makes of ``nodes`` (an int, ``'N%'`` or a list of them)."""
    where = "node_batches"
    nodes = _require_list(nodes, "nodes", where)
    sizes = serial if isinstance(serial, (list, tuple)) else [serial]
    if not sizes:
        raise InvalidInput("serial", serial, "is an empty list", where=where)
    parsed = []
    for size in sizes:
        if isinstance(size, bool):
            raise InvalidInput("serial", size, "is not a number or a percentage such as '25%'", where=where)
        text = str(size).strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                raise InvalidInput("serial", size, "is not a number or a percentage such as '25%'", where=where)
            count = max(1, int(math.floor(percent / 100.0 * len(nodes)))) if nodes else 1
        else:
            try:
                count = int(text)
            except ValueError:
                raise InvalidInput("serial", size, "is not a number or a percentage such as '25%'", where=where)
            if count == 0:
                count = len(nodes) or 1  # serial 0 means all hosts at once
        if count < 0:
            raise InvalidInput("serial", size, "is negative", where=where)
        parsed.append(count)
    batches = []
    index = 0
    position = 0
    while position < len(nodes):
        count = parsed[min(index, len(parsed) - 1)]
        batches.append(list(nodes[position:position + count]))
        position += count
        index += 1
    return batches


def kubernetes_service_ip(service_cidr):
    """The ClusterIP of the ``kubernetes`` Service: the first address of the (first) service CIDR."""
    where = "kubernetes_service_ip"
    cidrs = service_cidr if isinstance(service_cidr, (list, tuple)) else str(service_cidr or "").split(",")
    cidrs = [str(cidr).strip() for cidr in cidrs if str(cidr).strip()]
    if not cidrs:
        raise InvalidInput("service_cidr", service_cidr, "is empty", where=where)
    network = _networks(cidrs[:1], "service_cidr", where=where)[0]
    return str(network.network_address + 1)


def removal_plan(nodes, serial=1, service_cidr=None, api_server_host=None, api_server_port=6443,
                 extra_probes=None, namespace="kube-system", daemonset="kube-proxy", configmap="kube-proxy",
                 backup_dir=None, kubeadm=True, keep_chains=KUBELET_CHAINS, families=FAMILIES,
                 nodeport_range=DEFAULT_NODEPORT_RANGE):
    """What a removal run does, in order: gates, backups, deletions, node batches, probes.

    The render mode writes it to ``plan.md``; the apply mode takes the probes from it, so
    the plan and the run cannot disagree.
    """
    where = "removal_plan"
    if not api_server_host:
        raise InvalidInput("api_server_host", api_server_host, "is empty", where=where)
    try:
        port = int(api_server_port)
    except (TypeError, ValueError):
        raise InvalidInput("api_server_port", api_server_port, "is not a port number", where=where)
    if not 1 <= port <= 65535:
        raise InvalidInput("api_server_port", api_server_port, "is not in 1..65535", where=where)
    probes = [
        {"name": "kubernetes Service ClusterIP", "host": kubernetes_service_ip(service_cidr), "port": 443},
        {"name": "API endpoint without kube-proxy", "host": str(api_server_host), "port": port},
    ]
    for index, probe in enumerate(_require_list(extra_probes, "extra_probes", where)):
        if not isinstance(probe, dict) or not probe.get("host") or not probe.get("port"):
            raise InvalidInput("extra_probes[%d]" % index, probe, "needs 'host' and 'port'", where=where)
        try:
            probe_port = int(probe["port"])
        except (TypeError, ValueError):
            raise InvalidInput("extra_probes[%d].port" % index, probe["port"], "is not a port number", where=where)
        probes.append({"name": str(probe.get("name") or "%s:%s" % (probe["host"], probe_port)),
                       "host": str(probe["host"]), "port": probe_port})
    backup_dir = backup_dir or "kube-proxy-removal/backup"
    objects = [
        {"kind": "DaemonSet", "namespace": namespace, "name": daemonset,
         "backup": "%s/daemonset-%s.yaml" % (backup_dir, daemonset), "action": "delete"},
        {"kind": "ConfigMap", "namespace": namespace, "name": configmap,
         "backup": "%s/configmap-%s.yaml" % (backup_dir, configmap), "action": "delete"},
    ]
    if kubeadm:
        objects.append({"kind": "ConfigMap", "namespace": "kube-system", "name": "kubeadm-config",
                        "backup": "%s/kubeadm-config.yaml" % backup_dir,
                        "action": "patch ClusterConfiguration: proxy.disabled: true (kubeadm.k8s.io/v1beta4 and later)"})
    first, last = parse_port_range(nodeport_range, where=where)
    return {
        "gates": [{"gate": name, "description": description} for name, description in GATES],
        "objects": objects,
        "batches": node_batches(nodes, serial),
        "probes": probes,
        "keep_chains": validate_chain_names(keep_chains, where=where),
        "families": validate_families(families, where=where),
        "nodeport_range": "%d-%d" % (first, last),
        "backup_dir": backup_dir,
    }
