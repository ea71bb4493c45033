# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel facts parsing and the Cilium kernel requirement matrix.

Pure Python: nothing here imports ``ansible``.  The ``kernel_facts`` module reads the
node and hands the raw text to the parsers here; the ``kernel_preflight`` role turns
the facts into a verdict with :func:`evaluate` and :func:`summary_table`.

Sources of the matrix (see ``docs/kernel-requirements.md`` for the full table):

- Cilium "System Requirements" page (``Documentation/operations/system_requirements.rst``)
  of each release 1.16 to 1.20, and the pull requests that changed it;
- the Bandwidth Manager page (BBR), the WireGuard page and the Tuning Guide (netkit).

Decisions recorded here so the code and the docs agree:

- ``=m`` satisfies an option only if the option is tristate *and* the kernel supports
  modules; ``=y`` always satisfies it.
- A kernel config that cannot be found is a state (``config_source: unknown``): config
  items are reported as ``unknown`` and are warnings, not failures, unless the caller
  asks for ``unknown_is_failure``.
- RHEL 8 kernels (4.18) count as the Cilium floor when the RHEL minor release is the one
  Cilium names: 8.6 for Cilium 1.16-1.17 (floor 5.4), 8.10 from 1.18 (floor 5.10).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import (
    InvalidInput,
    InvalidInputs,
)

# --------------------------------------------------------------------------------------
# Kernel release strings
# --------------------------------------------------------------------------------------

_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(.*)$")
_EL_RE = re.compile(r"\.el(\d+)(?:_(\d+))?(?=[.+~-]|$)")

# RHEL 8 kernels built for a GA minor release carry only ".el8" (updates add "_N"); the
# build number before it names the minor release.  Values from Red Hat's release notes.
_RHEL8_BUILD_TO_MINOR = (
    (553, 10),
    (513, 9),
    (477, 8),
    (425, 7),
    (372, 6),
    (348, 5),
    (305, 4),
    (240, 3),
    (193, 2),
    (147, 1),
    (80, 0),
)


def parse_release(release, field="kernel release"):
    """Parse a ``uname -r`` string into a comparable version.

    ``4.18.0-553.el8_10.x86_64`` gives ``{"version": [4, 18, 0], "rhel": {"major": 8,
    "minor": 10}, ...}``; a missing patch level counts as 0.
    """
    if not isinstance(release, str) or not release.strip():
        raise InvalidInput(field, release, "is not a kernel release string such as '6.1.0-18-amd64'")
    text = release.strip()
    match = _RELEASE_RE.match(text)
    if not match:
        raise InvalidInput(field, release, "does not start with <major>.<minor> (e.g. '5.15.0-105-generic')")
    major, minor = int(match.group(1)), int(match.group(2))
    patch = int(match.group(3)) if match.group(3) is not None else 0
    suffix = match.group(4)
    return {
        "release": text,
        "version": [major, minor, patch],
        "version_string": "%d.%d.%d" % (major, minor, patch),
        "local": suffix,
        "rhel": _rhel_from_release((major, minor, patch), suffix),
    }


def _rhel_from_release(version, suffix):
    match = _EL_RE.search(suffix)
    if not match:
        return None
    major = int(match.group(1))
    minor = int(match.group(2)) if match.group(2) is not None else None
    if minor is None and major == 8 and tuple(version[:2]) == (4, 18):
        build = re.match(r"^-(\d+)", suffix)
        if build:
            number = int(build.group(1))
            for first_build, rhel_minor in _RHEL8_BUILD_TO_MINOR:
                if number >= first_build:
                    minor = rhel_minor
                    break
    return {"major": major, "minor": minor}


def version_string(version):
    """``[5, 10, 0]`` -> ``"5.10"``; a non-zero patch level is kept."""
    if version[2]:
        return "%d.%d.%d" % tuple(version)
    return "%d.%d" % (version[0], version[1])


# --------------------------------------------------------------------------------------
# Kernel .config text
# --------------------------------------------------------------------------------------

_CONFIG_SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_CONFIG_UNSET_RE = re.compile(r"^#\s*(CONFIG_[A-Za-z0-9_]+) is not set\s*$")


def parse_kernel_config(text):
    """Parse kernel ``.config`` text into ``{"CONFIG_X": "y" | "m" | "n" | "<string>"}``.

    ``# CONFIG_X is not set`` becomes ``"n"``; quoted values lose their quotes.  Lines
    that are neither (section comments, blanks) are skipped.
    """
    options = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        unset = _CONFIG_UNSET_RE.match(line)
        if unset:
            options[unset.group(1)] = "n"
            continue
        assigned = _CONFIG_SET_RE.match(line)
        if assigned:
            value = assigned.group(2).strip()
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            options[assigned.group(1)] = value
    return options


# --------------------------------------------------------------------------------------
# Mount table
# --------------------------------------------------------------------------------------

def _unescape_mount_field(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text):
    """Parse ``/proc/mounts`` text into ``[{"source", "target", "fstype", "options"}]``."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mounts.append({
            "source": _unescape_mount_field(fields[0]),
            "target": _unescape_mount_field(fields[1]),
            "fstype": fields[2],
            "options": fields[3].split(","),
        })
    return mounts


# --------------------------------------------------------------------------------------
# The requirement matrix
# --------------------------------------------------------------------------------------

CILIUM_VERSIONS = ("1.16", "1.17", "1.18", "1.19", "1.20")

FEATURES = (
    "base",
    "vxlan",
    "geneve",
    "kube_proxy_replacement",
    "bpf_masquerade",
    "iptables_masquerade",
    "l7_proxy",
    "ipsec",
    "wireguard",
    "bandwidth_manager",
    "bbr",
    "netkit",
    "ipv4_big_tcp",
    "ipv6_big_tcp",
)

# Floor per Cilium release: (upstream kernel, RHEL 8 minor release that counts as it).
_FLOORS = {
    "1.16": ((5, 4, 0), 6),
    "1.17": ((5, 4, 0), 6),
    "1.18": ((5, 10, 0), 10),
    "1.19": ((5, 10, 0), 10),
    "1.20": ((5, 10, 0), 10),
}

_DOC = "Cilium docs: operations/system_requirements"
_DOC_BWM = "Cilium docs: network/kubernetes/bandwidth-manager"
_DOC_WG = "Cilium docs: security/network/encryption-wireguard"
_DOC_TUNING = "Cilium docs: operations/performance/tuning"


def _cfg(feature, item, tristate, why, source=_DOC, since="1.16", until="1.20",
         severity="required", kernel_below=None):
    return {
        "feature": feature,
        "kind": "config",
        "item": item,
        "tristate": tristate,
        "why": why,
        "source": source,
        "since": since,
        "until": until,
        "severity": severity,
        "kernel_below": kernel_below,
    }


def _ver(feature, minimum, why, source=_DOC, since="1.16", until="1.20", severity="required"):
    return {
        "feature": feature,
        "kind": "version",
        "item": "kernel >= %s" % version_string(minimum),
        "minimum": list(minimum),
        "why": why,
        "source": source,
        "since": since,
        "until": until,
        "severity": severity,
    }


def _node(feature, kind, item, why, source=_DOC, since="1.16", until="1.20", severity="required", **extra):
    requirement = {
        "feature": feature,
        "kind": kind,
        "item": item,
        "why": why,
        "source": source,
        "since": since,
        "until": until,
        "severity": severity,
    }
    requirement.update(extra)
    return requirement


_IPSEC_WHY = "IPsec (GCM-128-AES) transparent encryption for cilium_encryption=ipsec"

REQUIREMENTS = (
    # ---- base datapath -------------------------------------------------------------
    _cfg("base", "CONFIG_BPF", False, "eBPF core: every Cilium program and map depends on it"),
    _cfg("base", "CONFIG_BPF_SYSCALL", False, "bpf() system call the agent uses to load programs and create maps"),
    _cfg("base", "CONFIG_NET_CLS_BPF", True, "tc BPF classifier that attaches the datapath programs to devices"),
    _cfg("base", "CONFIG_BPF_JIT", False, "JIT compiler for BPF programs; the datapath is not run interpreted"),
    _cfg("base", "CONFIG_NET_CLS_ACT", False, "tc actions (redirect, drop) used by the attached BPF programs"),
    _cfg("base", "CONFIG_NET_SCH_INGRESS", True, "ingress/clsact qdisc the tc BPF programs are attached to"),
    _cfg("base", "CONFIG_CRYPTO_SHA1", True, "SHA-1, listed by Cilium as a base requirement of the BPF subsystem"),
    _cfg("base", "CONFIG_CRYPTO_USER_API_HASH", True,
         "listed as a base requirement up to the 1.20 docs, but cilium/cilium#48594 removed it after "
         "finding no use in the agent; reported as a warning only",
         source=_DOC + "; cilium/cilium#48594", severity="recommended"),
    _cfg("base", "CONFIG_CGROUPS", False, "cgroup support, the anchor of the cgroup BPF hooks"),
    _cfg("base", "CONFIG_CGROUP_BPF", False,
         "cgroup BPF hooks for socket-level load balancing and host-reachable services"),
    _cfg("base", "CONFIG_PERF_EVENTS", False, "perf ring buffers that carry datapath events to the agent and Hubble"),
    _cfg("base", "CONFIG_SCHEDSTATS", False,
         "/proc/schedstat, read by the agent to derive jiffies for the BPF clock source",
         source=_DOC + "; cilium/cilium#26035"),
    _cfg("base", "CONFIG_FIB_RULES", False,
         "policy routing rules (proxy tables 2004/2005, IPsec table 200) the agent installs",
         source=_DOC + " (documented from 1.18, cilium/cilium#38173; needed earlier too, #36189)"),
    _ver("base", (5, 4, 0),
         "minimum kernel for Cilium 1.16-1.17 (RHEL 8.6+ 4.18 counts as equivalent)", until="1.17"),
    _ver("base", (5, 10, 0),
         "minimum kernel from Cilium 1.18 (RHEL 8.10 4.18 counts as equivalent)",
         source=_DOC + "; cilium/cilium#38308", since="1.18"),
    _node("base", "btf", "BTF /sys/kernel/btf/vmlinux",
          "kernel BTF (CONFIG_DEBUG_INFO_BTF) is required from Cilium 1.20; without it the socket-LB "
          "programs fail CO-RE relocation and pod networking stops",
          source=_DOC + "; cilium/cilium#46063, #48778", since="1.20"),
    _node("base", "bpffs", "bpffs mounted at /sys/fs/bpf",
          "pinned maps survive agent restarts only on a host bpffs; otherwise the agent mounts its own "
          "and a restart disrupts connectivity (kernel_preflight_bpffs_persistent mounts it)",
          severity="recommended", path="/sys/fs/bpf"),
    _node("base", "sysctl", "net.core.bpf_jit_enable = 1",
          "BPF JIT switched off at run time; programs would run in the interpreter or fail to load",
          source="kernel: Documentation/admin-guide/sysctl/net.rst", severity="recommended",
          key="net.core.bpf_jit_enable", expected=1),
    # ---- tunnels -------------------------------------------------------------------
    _cfg("vxlan", "CONFIG_VXLAN", True, "VXLAN tunnel device for routingMode=tunnel, tunnelProtocol=vxlan",
         source=_DOC + " (documented from 1.18, cilium/cilium#38173; needed earlier too, #36189)"),
    _cfg("geneve", "CONFIG_GENEVE", True, "Geneve tunnel device for routingMode=tunnel, tunnelProtocol=geneve",
         source=_DOC + " (documented from 1.18, cilium/cilium#38173)"),
    # ---- kube-proxy replacement ----------------------------------------------------
    _ver("kube_proxy_replacement", (5, 7, 0),
         "full session affinity and socket-LB bypass in the pod netns need >= 5.7 (implied by the "
         "floor from 1.18)", until="1.17", severity="recommended"),
    _node("kube_proxy_replacement", "cgroup2", "cgroup v2 mounted",
          "socket-level load balancing attaches to a cgroup v2 root; without a host cgroup2 mount the "
          "agent mounts its own at /run/cilium/cgroupv2 (cgroup.autoMount)",
          source="Cilium docs: network/kubernetes/kubeproxy-free", severity="recommended"),
    # ---- masquerading --------------------------------------------------------------
    _cfg("iptables_masquerade", "CONFIG_NETFILTER_XT_SET", True,
         "ipset match used by the iptables masquerade rules (bpf.masquerade=false)"),
    _cfg("iptables_masquerade", "CONFIG_IP_SET", True,
         "ipset that holds the non-masquerade destinations (bpf.masquerade=false)"),
    _cfg("iptables_masquerade", "CONFIG_IP_SET_HASH_IP", True,
         "hash:ip ipset type used by the iptables masquerade rules (bpf.masquerade=false)"),
    _cfg("iptables_masquerade", "CONFIG_NETFILTER_XT_MATCH_COMMENT", True,
         "comment match on every rule Cilium installs with iptables (bpf.masquerade=false)",
         source=_DOC + " (documented from 1.18, cilium/cilium#38173)"),
    # ---- L7 / FQDN proxy -----------------------------------------------------------
    _cfg("l7_proxy", "CONFIG_NETFILTER_XT_TARGET_TPROXY", True,
         "TPROXY target that redirects traffic to the L7/DNS proxy (l7Proxy=true)"),
    _cfg("l7_proxy", "CONFIG_NETFILTER_XT_TARGET_MARK", True,
         "MARK target used by the proxy redirection rules (l7Proxy=true)",
         source=_DOC + "; cilium/cilium#35669", since="1.17"),
    _cfg("l7_proxy", "CONFIG_NETFILTER_XT_TARGET_CT", True,
         "CT target that exempts proxy traffic from connection tracking (l7Proxy=true)"),
    _cfg("l7_proxy", "CONFIG_NETFILTER_XT_MATCH_MARK", True,
         "mark match that steers proxied packets (l7Proxy=true)"),
    _cfg("l7_proxy", "CONFIG_NETFILTER_XT_MATCH_SOCKET", True,
         "socket match for proxy return traffic; without it Cilium disables ip_early_demux in "
         "native routing as a fallback (l7Proxy=true)"),
    # ---- IPsec ---------------------------------------------------------------------
    _cfg("ipsec", "CONFIG_XFRM", False, "XFRM framework: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_XFRM_OFFLOAD", False, "XFRM offload hooks: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_XFRM_STATISTICS", False, "XFRM error counters Cilium reports: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_XFRM_ALGO", True, "XFRM algorithms: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_XFRM_USER", True, "netlink XFRM configuration the agent uses: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET_ESP", True, "IPv4 ESP: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET6_ESP", True, "IPv6 ESP: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET_IPCOMP", True, "IPv4 IPComp: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET6_IPCOMP", True, "IPv6 IPComp: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET_XFRM_TUNNEL", True, "IPv4 XFRM tunnel: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET6_XFRM_TUNNEL", True, "IPv6 XFRM tunnel: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET_TUNNEL", True, "IPv4 tunnel: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET6_TUNNEL", True, "IPv6 tunnel: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_INET_XFRM_MODE_TUNNEL", True,
         "tunnel mode (built in from kernel 5.2, so only checked below 5.2): " + _IPSEC_WHY,
         kernel_below=[5, 2, 0]),
    _cfg("ipsec", "CONFIG_CRYPTO_AEAD", True, "AEAD API: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_CRYPTO_AEAD2", True, "AEAD API: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_CRYPTO_GCM", True, "GCM mode: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_CRYPTO_SEQIV", True, "sequence-number IV generator: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_CRYPTO_CBC", True, "CBC mode: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_CRYPTO_HMAC", True, "HMAC: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_CRYPTO_SHA256", True, "SHA-256: " + _IPSEC_WHY),
    _cfg("ipsec", "CONFIG_CRYPTO_AES", True, "AES cipher: " + _IPSEC_WHY),
    # ---- WireGuard -----------------------------------------------------------------
    _ver("wireguard", (5, 6, 0), "in-kernel WireGuard for cilium_encryption=wireguard"),
    _cfg("wireguard", "CONFIG_WIREGUARD", True, "WireGuard device for cilium_encryption=wireguard",
         source=_DOC_WG),
    # ---- Bandwidth Manager and BBR -------------------------------------------------
    _cfg("bandwidth_manager", "CONFIG_NET_SCH_FQ", True,
         "fq qdisc that paces pod egress by EDT timestamps (bandwidthManager.enabled)"),
    _cfg("bbr", "CONFIG_TCP_CONG_BBR", True, "BBR congestion control for pods (bandwidthManager.bbr)",
         source=_DOC_BWM),
    _ver("bbr", (5, 18, 0), "BBR for pods keeps EDT timestamps across netns only from 5.18 "
         "(bandwidthManager.bbr)", source=_DOC_BWM),
    # ---- netkit --------------------------------------------------------------------
    _cfg("netkit", "CONFIG_NETKIT", False, "netkit devices for bpf.datapathMode=netkit"),
    _ver("netkit", (6, 8, 0), "netkit datapath mode (bpf.datapathMode=netkit)",
         source=_DOC_TUNING + " (system_requirements from 1.20, cilium/cilium#44207)"),
    # ---- BIG TCP -------------------------------------------------------------------
    _ver("ipv6_big_tcp", (5, 19, 0), "IPv6 BIG TCP (enableIPv6BIGTCP); the NIC driver must support it too"),
    _ver("ipv4_big_tcp", (6, 3, 0), "IPv4 BIG TCP (enableIPv4BIGTCP); the NIC driver must support it too"),
)


def _minor_tuple(minor):
    return tuple(int(part) for part in minor.split("."))


def requirements_for(features, cilium_minor):
    """The requirement entries that apply to ``features`` (plus ``base``) for a release."""
    wanted = set(features) | {"base"}
    current = _minor_tuple(cilium_minor)
    selected = []
    for requirement in REQUIREMENTS:
        if requirement["feature"] not in wanted:
            continue
        if not _minor_tuple(requirement["since"]) <= current <= _minor_tuple(requirement["until"]):
            continue
        selected.append(requirement)
    return selected


def known_config_options():
    """Every ``CONFIG_*`` name the matrix looks at, plus the ones the facts need."""
    names = {req["item"] for req in REQUIREMENTS if req["kind"] == "config"}
    names.update(("CONFIG_MODULES", "CONFIG_DEBUG_INFO_BTF", "CONFIG_BPF_JIT_ALWAYS_ON",
                  "CONFIG_BPF_UNPRIV_DEFAULT_OFF", "CONFIG_IP_MULTIPLE_TABLES"))
    return sorted(names)


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------

_CILIUM_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?$")


def cilium_minor(value, field="cilium_version"):
    """Normalise ``"1.20"``, ``"1.20.2"`` or ``"v1.20.2"`` to ``"1.20"`` and check data exists."""
    if isinstance(value, bool) or not isinstance(value, str):
        hint = ""
        if isinstance(value, float):
            hint = " (an unquoted 1.20 in YAML is the number 1.2; quote it)"
        raise InvalidInput(field, value, "must be a string such as '1.20'" + hint)
    match = _CILIUM_VERSION_RE.match(value.strip())
    if not match:
        raise InvalidInput(field, value, "is not a Cilium version such as '1.20' or '1.20.2'")
    minor = "%d.%d" % (int(match.group(1)), int(match.group(2)))
    if minor not in CILIUM_VERSIONS:
        raise InvalidInput(field, value, "has no kernel requirement data; known releases: %s"
                           % ", ".join(CILIUM_VERSIONS))
    return minor


def validate_features(features, field="features"):
    """Check a feature list; every unknown name is reported, each naming its index."""
    if isinstance(features, (str, bytes)) or not isinstance(features, (list, tuple, set, frozenset)):
        raise InvalidInput(field, features, "must be a list of feature names (%s)" % ", ".join(FEATURES))
    problems = []
    for index, name in enumerate(features):
        if name not in FEATURES:
            problems.append(InvalidInput("%s[%d]" % (field, index), name,
                                         "is not one of: %s" % ", ".join(FEATURES)))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidInputs(problems)
    return sorted(set(features), key=FEATURES.index)


# --------------------------------------------------------------------------------------
# Cluster spec -> features
# --------------------------------------------------------------------------------------

# Missing spec keys fall back to the collection's own defaults, the hardened ones the
# cilium role installs (roles/cilium/defaults/main.yml; a unit test keeps the two in step),
# so the preflight checks the kernel for what will really run.
SPEC_DEFAULTS = {
    "cilium_routing_mode": "tunnel",
    "cilium_tunnel_protocol": "vxlan",
    "cilium_kube_proxy_replacement": True,
    "cilium_bpf_masquerade": True,
    "cilium_encryption": "none",
    "cilium_l7_proxy": True,
    "cilium_bandwidth_manager": False,
    "cilium_bbr": False,
    "cilium_datapath_mode": "veth",
    "cilium_enable_ipv4_big_tcp": False,
    "cilium_enable_ipv6_big_tcp": False,
}

_SPEC_CHOICES = {
    "cilium_routing_mode": ("native", "tunnel"),
    "cilium_tunnel_protocol": ("vxlan", "geneve"),
    "cilium_encryption": ("none", "ipsec", "wireguard"),
    "cilium_datapath_mode": ("veth", "netkit", "netkit-l2"),
}


def features_from_spec(spec):
    """Derive the feature list from the collection's cluster spec variables.

    Returns ``{"cilium_version": "1.20", "features": [...]}`` so the role passes one
    object to :func:`evaluate`; every bad value is reported at once, naming its variable.
    """
    if not isinstance(spec, dict):
        raise InvalidInput("cluster spec", spec, "must be a mapping of cilium_* variables")
    problems = []
    values = dict(SPEC_DEFAULTS)
    for key in SPEC_DEFAULTS:
        if key in spec and spec[key] is not None:
            values[key] = spec[key]
    minor = None
    try:
        minor = cilium_minor(spec.get("cilium_version"))
    except InvalidInput as err:
        problems.append(err)
    for key, choices in _SPEC_CHOICES.items():
        if values[key] not in choices:
            problems.append(InvalidInput(key, values[key], "is not one of: %s" % ", ".join(choices)))
    for key, default in SPEC_DEFAULTS.items():
        if isinstance(default, bool) and not isinstance(values[key], bool):
            problems.append(InvalidInput(key, values[key], "must be a boolean (true or false)"))
    if values["cilium_bbr"] is True and values["cilium_bandwidth_manager"] is False:
        problems.append(InvalidInput("cilium_bbr", True, "requires cilium_bandwidth_manager: true"))
    if problems:
        if len(problems) == 1:
            raise problems[0]
        raise InvalidInputs(problems)

    features = ["base"]
    if values["cilium_routing_mode"] == "tunnel":
        features.append(values["cilium_tunnel_protocol"])
    if values["cilium_kube_proxy_replacement"]:
        features.append("kube_proxy_replacement")
    features.append("bpf_masquerade" if values["cilium_bpf_masquerade"] else "iptables_masquerade")
    if values["cilium_l7_proxy"]:
        features.append("l7_proxy")
    if values["cilium_encryption"] != "none":
        features.append(values["cilium_encryption"])
    if values["cilium_bandwidth_manager"]:
        features.append("bandwidth_manager")
    if values["cilium_bbr"]:
        features.append("bbr")
    if values["cilium_datapath_mode"] != "veth":
        features.append("netkit")
    if values["cilium_enable_ipv4_big_tcp"]:
        features.append("ipv4_big_tcp")
    if values["cilium_enable_ipv6_big_tcp"]:
        features.append("ipv6_big_tcp")
    return {"cilium_version": minor, "features": sorted(features, key=FEATURES.index)}


# --------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------

def _effective_version(parsed, minor):
    """Upstream version, or the floor when a RHEL 8 kernel counts as equivalent."""
    version = tuple(parsed["version"])
    floor, rhel8_minor = _FLOORS[minor]
    rhel = parsed["rhel"]
    if (version < floor and rhel and rhel["major"] == 8 and rhel["minor"] is not None
            and rhel["minor"] >= rhel8_minor):
        note = "RHEL %d.%d kernel %s counts as %s for Cilium %s" % (
            rhel["major"], rhel["minor"], parsed["version_string"], version_string(floor), minor)
        return floor, note
    return version, None


def _facts_field(facts, *path):
    value = facts
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _check_config(requirement, options, modules_supported, config_known):
    name = requirement["item"]
    if not config_known:
        return "unknown", "no kernel config file was found on the node"
    value = options.get(name)
    if value == "y":
        return "ok", "=y"
    if value == "m":
        if not requirement["tristate"]:
            return "missing", "=m but %s must be built in (=y)" % name
        if modules_supported is False:
            return "missing", "=m but the kernel has no module support (CONFIG_MODULES is off)"
        return "ok", "=m"
    if value is None or value == "n":
        return "missing", "not set"
    return "missing", "=%s (expected y%s)" % (value, " or m" if requirement["tristate"] else "")


def evaluate(facts, features, cilium_version, waive=(), unknown_is_failure=False,
             features_field="features", waive_field="waive"):
    """Turn ``zerotrust_kernel`` facts into a verdict for ``features`` on a Cilium release.

    Returns a JSON-friendly report::

        {"passed": bool, "cilium_version": "1.20", "features": [...],
         "kernel_release": ..., "kernel_version": "6.18.44", "effective_version": ...,
         "equivalence": str | None, "floor": "5.10", "config_source": ...,
         "missing": [{feature, item, kind, why, detail, source}],   # failures
         "warnings": [...],   # recommended items that are missing
         "unknown": [...],    # config items with no config to check
         "waived": [...],     # missing items the caller chose to accept
         "checked": [... every item with its status ...]}
    """
    minor = cilium_minor(cilium_version)
    wanted = validate_features(features, field=features_field)
    if not isinstance(facts, dict):
        raise InvalidInput("facts", facts, "must be the zerotrust_kernel facts mapping")
    parsed = parse_release(facts.get("release"), field="facts.release")

    selected = requirements_for(wanted, minor)
    waived_names = _validate_waive(waive, selected, waive_field)

    effective, equivalence = _effective_version(parsed, minor)
    floor = _FLOORS[minor][0]
    config = facts.get("config") if isinstance(facts.get("config"), dict) else {}
    config_source = config.get("source") or "unknown"
    options = config.get("options") or {}
    config_known = config_source != "unknown"
    modules_supported = facts.get("modules_supported")
    if config_known and options.get("CONFIG_MODULES") in ("y", "n"):
        modules_supported = options["CONFIG_MODULES"] == "y"

    checked = []
    for requirement in selected:
        kind = requirement["kind"]
        if kind == "config":
            below = requirement.get("kernel_below")
            if below and tuple(parsed["version"]) >= tuple(below):
                continue
            status, detail = _check_config(requirement, options, modules_supported, config_known)
        elif kind == "version":
            ok = effective >= tuple(requirement["minimum"])
            status = "ok" if ok else "missing"
            detail = "kernel %s%s" % (parsed["version_string"],
                                      " (counted as %s)" % version_string(effective)
                                      if equivalence else "")
        elif kind == "btf":
            present = _facts_field(facts, "btf", "present")
            status = "ok" if present else "missing"
            detail = "present" if present else "/sys/kernel/btf/vmlinux not found"
        elif kind == "bpffs":
            mounted = _facts_field(facts, "bpffs", "mounted")
            status = "ok" if mounted else "missing"
            detail = "mounted" if mounted else "no bpf filesystem at %s" % requirement["path"]
        elif kind == "cgroup2":
            path = _facts_field(facts, "cgroup2", "path")
            status = "ok" if path else "missing"
            detail = "at %s" % path if path else "no cgroup2 mount found"
        else:  # sysctl
            running = _facts_field(facts, "sysctls", requirement["key"])
            if running is None:
                status, detail = "unknown", "%s could not be read" % requirement["key"]
            else:
                status = "ok" if running == requirement["expected"] else "missing"
                detail = "running value %s" % running
        entry = {
            "feature": requirement["feature"],
            "item": requirement["item"],
            "kind": kind,
            "severity": requirement["severity"],
            "status": status,
            "detail": detail,
            "why": requirement["why"],
            "source": requirement["source"],
        }
        if status == "missing" and requirement["item"] in waived_names:
            entry["status"] = "waived"
        checked.append(entry)

    def _pick(predicate):
        return [dict(item) for item in checked if predicate(item)]

    missing = _pick(lambda item: item["status"] == "missing" and item["severity"] == "required")
    warnings = _pick(lambda item: item["status"] == "missing" and item["severity"] != "required")
    unknown = _pick(lambda item: item["status"] == "unknown")
    waived = _pick(lambda item: item["status"] == "waived")
    unknown_fails = unknown_is_failure and any(item["severity"] == "required" for item in unknown)
    return {
        "passed": not missing and not unknown_fails,
        "cilium_version": minor,
        "features": wanted,
        "kernel_release": parsed["release"],
        "kernel_version": parsed["version_string"],
        "effective_version": "%d.%d.%d" % tuple(effective),
        "equivalence": equivalence,
        "floor": version_string(floor),
        "config_source": config_source,
        "modules_supported": modules_supported,
        "unknown_is_failure": bool(unknown_is_failure),
        "missing": missing,
        "warnings": warnings,
        "unknown": unknown,
        "waived": waived,
        "checked": checked,
    }


def _validate_waive(waive, selected, field):
    if waive is None:
        return set()
    if isinstance(waive, (str, bytes)) or not isinstance(waive, (list, tuple, set, frozenset)):
        raise InvalidInput(field, waive, "must be a list of requirement items such as 'CONFIG_SCHEDSTATS'")
    names = {req["item"] for req in selected}
    problems = []
    for index, name in enumerate(waive):
        if name not in names:
            problems.append(InvalidInput("%s[%d]" % (field, index), name,
                                         "is not a requirement of the selected features and release"))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidInputs(problems)
    return set(waive)


# --------------------------------------------------------------------------------------
# Readable summary
# --------------------------------------------------------------------------------------

_STATUS_LABEL = {"ok": "ok", "missing": "MISSING", "unknown": "unknown", "waived": "waived"}


def summary_table(report):
    """A fixed-width text table of a report from :func:`evaluate`, one row per item."""
    verdict = "PASSED" if report["passed"] else "FAILED"
    counts = []
    for key, label in (("missing", "missing"), ("warnings", "warning(s)"),
                       ("unknown", "unknown"), ("waived", "waived")):
        if report[key]:
            counts.append("%d %s" % (len(report[key]), label))
    lines = [
        "Cilium %s kernel preflight: %s%s" % (report["cilium_version"], verdict,
                                              " (%s)" % ", ".join(counts) if counts else ""),
        "kernel %s (%s), floor %s, config %s" % (report["kernel_release"], report["kernel_version"],
                                                 report["floor"], report["config_source"]),
    ]
    if report["equivalence"]:
        lines.append(report["equivalence"])
    if report["config_source"] == "unknown":
        lines.append("no kernel config found: config items are unknown (%s)"
                     % ("failures" if report["unknown_is_failure"] else "warnings"))
    rows = [("FEATURE", "ITEM", "STATUS", "DETAIL", "WHY")]
    for item in report["checked"]:
        status = _STATUS_LABEL[item["status"]]
        if item["status"] == "missing" and item["severity"] != "required":
            status = "warning"
        rows.append((item["feature"], item["item"], status, item["detail"], item["why"]))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [row[column].ljust(widths[column]) for column in range(4)]
        lines.append("  ".join(cells + [row[4]]).rstrip())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Verdict for a role: validation that names the caller's variables, per-feature outcome,
# one failure message
# --------------------------------------------------------------------------------------

def feature_verdicts(report):
    """Per-feature outcome of a report from :func:`evaluate`, in ``FEATURES`` order.

    ``{"vxlan": {"passed": False, "missing": ["CONFIG_VXLAN"], "warnings": [], "unknown": [],
    "waived": []}, ...}``; a feature passes when none of its required items is missing
    (nor unknown, when the report treats unknown items as failures).
    """
    outcome = {}
    for feature in report["features"]:
        outcome[feature] = {"passed": True, "missing": [], "warnings": [], "unknown": [], "waived": []}
    for item in report["checked"]:
        entry = outcome.setdefault(item["feature"], {"passed": True, "missing": [], "warnings": [],
                                                     "unknown": [], "waived": []})
        if item["status"] == "missing":
            entry["missing" if item["severity"] == "required" else "warnings"].append(item["item"])
        elif item["status"] in ("unknown", "waived"):
            entry[item["status"]].append(item["item"])
    for item in report["checked"]:
        entry = outcome[item["feature"]]
        required_unknown = (report["unknown_is_failure"] and item["status"] == "unknown"
                            and item["severity"] == "required")
        if (item["status"] == "missing" and item["severity"] == "required") or required_unknown:
            entry["passed"] = False
    return dict(sorted(outcome.items(), key=lambda pair: FEATURES.index(pair[0])))


def feature_line(report, by_feature=None):
    """``"features: base ok (1 waived), vxlan FAILED (missing CONFIG_VXLAN), ..."``."""
    outcome = by_feature if by_feature is not None else feature_verdicts(report)
    parts = []
    for feature, entry in outcome.items():
        notes = []
        if entry["missing"]:
            notes.append("missing " + ", ".join(entry["missing"]))
        if entry["unknown"] and not entry["passed"]:
            notes.append("unknown " + ", ".join(entry["unknown"]))
        for key, label in (("warnings", "warning(s)"), ("waived", "waived")):
            if entry[key]:
                notes.append("%d %s" % (len(entry[key]), label))
        parts.append("%s %s%s" % (feature, "ok" if entry["passed"] else "FAILED",
                                  " (%s)" % "; ".join(notes) if notes else ""))
    return "features: " + ", ".join(parts)


def failure_message(report):
    """Every reason a report did not pass, in one line; empty when it passed."""
    if report["passed"]:
        return ""
    parts = []
    if report["missing"]:
        parts.append("%d required item(s) missing: %s" % (len(report["missing"]), "; ".join(
            "[%s] %s: %s (%s)" % (item["feature"], item["item"], item["detail"], item["why"])
            for item in report["missing"])))
    unknown = [item for item in report["unknown"] if item["severity"] == "required"]
    if report["unknown_is_failure"] and unknown:
        parts.append("%d required item(s) could not be checked and unknown items count as failures: %s" % (
            len(unknown), "; ".join("[%s] %s: %s" % (item["feature"], item["item"], item["detail"])
                                    for item in unknown)))
    return "kernel %s cannot run Cilium %s with %s: %s" % (
        report["kernel_release"], report["cilium_version"], ", ".join(report["features"]), "; ".join(parts))


def verdict(facts, features, cilium_version, waive=(), unknown_is_failure=False,
            features_field="features", waive_field="waive", version_field="cilium_version",
            unknown_field="unknown_is_failure"):
    """:func:`evaluate` for a role: bad input names the role's variables, all at once.

    Adds ``by_feature`` (:func:`feature_verdicts`), ``feature_line`` (:func:`feature_line`)
    and ``message`` (:func:`failure_message`) to the report.
    """
    problems = []
    try:
        cilium_minor(cilium_version, field=version_field)
    except InvalidInput as err:
        problems.append(err)
    try:
        validate_features(features, field=features_field)
    except (InvalidInput, InvalidInputs) as err:
        problems.extend(getattr(err, "problems", [err]))
    if not isinstance(unknown_is_failure, bool):
        problems.append(InvalidInput(unknown_field, unknown_is_failure, "must be a boolean (true or false)"))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidInputs(problems)
    report = evaluate(facts, features, cilium_version, waive=waive, unknown_is_failure=unknown_is_failure,
                      features_field=features_field, waive_field=waive_field)
    report["by_feature"] = feature_verdicts(report)
    report["feature_line"] = feature_line(report, report["by_feature"])
    report["message"] = failure_message(report)
    return report
