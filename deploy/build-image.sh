#!/usr/bin/env bash
# Builds the pipe2-authd image on a machine with no registry and no Docker daemon:
# a Debian 12 base made with debootstrap from the apt mirror this machine uses, imported into
# podman's storage, then deploy/Dockerfile built with buildah (vfs storage, chroot isolation).
#
#   deploy/build-image.sh [image-name]        default localhost/pipe2-auth:latest
#
# Needs root and the Debian packages buildah, podman, debootstrap and runc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
image="${1:-localhost/pipe2-auth:latest}"
base="localhost/debian:bookworm"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot

if ! podman --storage-driver vfs image exists "$base"; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "==> debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
  podman --storage-driver vfs import "$work/rootfs.tar" "$base" >/dev/null
fi
echo "==> building $image"
buildah --storage-driver vfs bud --isolation chroot --layers --build-arg "BASE=$base" \
  -t "$image" -f "$root/deploy/Dockerfile" "$root"
podman --storage-driver vfs image inspect "$image" --format '{{.Size}}' \
  | awk '{printf "==> %s: %.1f MB\n", "'"$image"'", $1 / 1e6}'
