#!/usr/bin/env bash
# Installs the Debian packages scratchnet needs, if missing, for one use:
#   scripts/install-deps.sh lab     what a lab and its users need: iproute2
#                                   (ip), the DHCP client, and the clients
#                                   people run in hosts (ping, traceroute,
#                                   rdisc6, curl, dig, iperf3, tcpdump), and what
#                                   the tour and the examples use (python3's
#                                   web server, Graphviz for `graph --format
#                                   svg`)
#   scripts/install-deps.sh test    the lab's, and what the tests drive (promtool
#                                   from prometheus checks the metrics;
#                                   chromium, headless through
#                                   chromium-driver, drives the web page)
#   scripts/install-deps.sh bench   the tests', and the peers benchmarks
#                                   measure against (nginx, HAProxy,
#                                   Unbound, NSD, Varnish, nftables, load
#                                   generators)
# Checks for Rust's cargo first. Debian/Ubuntu (apt-get); needs root to
# install.
set -euo pipefail

use=${1:-test}
lab=(iproute2 iputils-ping iputils-tracepath traceroute ndisc6 isc-dhcp-client iperf3 curl dnsutils tcpdump procps util-linux coreutils python3 graphviz)
test=(netcat-openbsd wrk ethtool dnsviz zonemaster-cli prometheus chromium chromium-driver)
bench=(nftables nginx-light apache2-utils dnsperf unbound nsd haproxy openssl varnish)
case "$use" in
  lab) packages=("${lab[@]}") ;;
  test) packages=("${lab[@]}" "${test[@]}") ;;
  bench) packages=("${lab[@]}" "${test[@]}" "${bench[@]}") ;;
  *) echo "usage: $0 lab|test|bench" >&2; exit 2 ;;
esac

if ! command -v cargo >/dev/null 2>&1 && ! [ -x "${CARGO:-}" ]; then
  user_cargo=""
  [ -n "${SUDO_USER:-}" ] && user_cargo=$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin/cargo
  if [ -z "$user_cargo" ] || [ ! -x "$user_cargo" ]; then
    echo "scratchnet is built with Rust's cargo, which is not installed: install Rust (https://rustup.rs), then run this again" >&2
    exit 1
  fi
fi

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
