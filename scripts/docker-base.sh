#!/usr/bin/env bash
# Makes sure a base image for docker/Dockerfile exists and prints its
# name: debian:bookworm-slim when a registry gives it, else a local image
# built from the machine's own Debian mirror (read from apt, never a
# fixed host) with debootstrap and `docker import`, with the clients the
# lab image needs already in it.
#   scripts/docker-base.sh        -> prints the image to pass as BASE
set -euo pipefail

if docker image inspect debian:bookworm-slim >/dev/null 2>&1 ||
   timeout 60 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
  echo debian:bookworm-slim
  exit 0
fi

image=scratchnet-base:bookworm
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

mirror=$(apt-cache policy 2>/dev/null | awk '/bookworm\/main/ && /Packages/ {print $2; exit}')
if [ -z "$mirror" ]; then
  echo "no registry gives debian:bookworm-slim and apt names no bookworm mirror to build one from" >&2
  exit 1
fi
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
packages=$(sed -n 's/^ARG PACKAGES="\(.*\)"$/\1/p' "$(dirname "$0")/../docker/Dockerfile" | tr ' ' ',')
echo "building $image from $mirror (debootstrap, about a minute)..." >&2
debootstrap --variant=minbase --include="$packages" bookworm "$dir" "$mirror" >/dev/null
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
tar -C "$dir" -c . | docker import - "$image" >/dev/null
echo "$image"
