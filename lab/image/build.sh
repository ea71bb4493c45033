#!/usr/bin/env bash
# Build the lab node image offline from Debian packages: debootstrap a minimal bookworm
# with systemd and the networking tools, then 'podman import' it. No container registry
# is needed. The tag is a hash of the recipe (this script + packages.txt), so the image is
# rebuilt only when the recipe changes; 'latest' always points at the current recipe.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
image_name=${LAB_IMAGE_NAME:-localhost/zerotrust-cilium-lab-node}
suite=${LAB_DEBIAN_SUITE:-bookworm}
export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/lab/containers.conf}"

mirror=${LAB_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # Use the mirror apt already uses on this machine, so the same registry is reached.
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | grep -v security | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

recipe_hash=$( (cat "$here/build.sh" "$here/packages.txt"; echo "$suite") | sha256sum | cut -c1-12)
tag="$image_name:$recipe_hash"

if podman image exists "$tag"; then
  podman tag "$tag" "$image_name:latest"
  echo "lab image $tag is up to date"
  exit 0
fi

packages=$(grep -vE '^\s*(#|$)' "$here/packages.txt" | paste -sd, -)
workdir=$(mktemp -d "${TMPDIR:-/tmp}/zerotrust-lab-image.XXXXXX")
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"

echo "lab: building $tag from $mirror ($suite: $packages)"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 20 "$workdir/debootstrap.log" >&2
  echo "lab: debootstrap of $suite from $mirror failed (log above); set LAB_DEBIAN_MIRROR to a reachable mirror." >&2
  exit 1
}

# A container boots faster and quieter without consoles and timers it does not use.
for unit in getty@tty1.service console-getty.service systemd-timesyncd.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  chroot "$rootfs" systemctl mask "$unit" >/dev/null 2>&1 || true
done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
: >"$rootfs/etc/machine-id"

tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --message "zerotrust.cilium lab node ($suite, recipe $recipe_hash)" \
  - "$tag" >/dev/null
podman tag "$tag" "$image_name:latest"
echo "lab image $tag built"
