#!/usr/bin/env bash
# Installs the system packages scratchnet and its tests use, if missing:
# iproute2 (ip), the TUN/TAP device, and the real clients the tests and
# benchmarks drive. Debian/Ubuntu (apt-get); needs root.
set -euo pipefail

packages=(iproute2 iputils-ping iputils-tracepath traceroute isc-dhcp-client iperf3 netcat-openbsd nftables nginx-light apache2-utils wrk curl dnsutils dnsperf unbound nsd haproxy openssl tcpdump graphviz ethtool procps python3 util-linux coreutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scratchnet needs these packages: ${missing[*]} (run this script as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -e /dev/net/tun ] && [ "$(id -u)" -eq 0 ]; then
  modprobe tun 2>/dev/null || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "scratchnet is built with Rust's cargo, which is not on PATH: install a Rust toolchain (rustup)" >&2
  exit 1
fi
