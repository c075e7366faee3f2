#!/usr/bin/env bash
# The compose integration tests: the reference lab in a container, tested
# from beside it (the `test` service) and from inside its hosts; then the
# lab split in two containers joined by VXLAN, alice's traffic crossing
# both. Installs Docker from Debian's packages if it is absent, starts
# dockerd if it is not running (and stops it again), builds the images
# (an offline base if no registry answers), and removes every container,
# network and image it made.
#   sudo scripts/test-docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  echo "installing Docker from Debian's packages (docker.io, docker-compose)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io docker-compose debootstrap >/dev/null
fi

started=""
forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '/^-P FORWARD/ {print $3}')
made_base=""
compose() { docker-compose -p scratchnet-test "$@"; }
finish() {
  compose --profile split --profile test down -v --remove-orphans >/dev/null 2>&1 || true
  docker image rm -f scratchnet:latest >/dev/null 2>&1 || true
  if [ -n "$made_base" ]; then docker image rm -f "$made_base" >/dev/null 2>&1 || true; fi
  if [ -n "$started" ]; then
    kill "$started" 2>/dev/null || true
    wait "$started" 2>/dev/null || true
    # dockerd set the FORWARD policy to DROP; give back what was there.
    [ -n "$forward_policy" ] && iptables -P FORWARD "$forward_policy" 2>/dev/null || true
    ip link delete docker0 2>/dev/null || true
  fi
}
trap finish EXIT

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  dockerd >/tmp/scratchnet-dockerd.log 2>&1 &
  started=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/scratchnet-dockerd.log; exit 1; }
fi

had_base=$(docker image inspect scratchnet-base:bookworm >/dev/null 2>&1 && echo yes || true)
base=$(scripts/docker-base.sh)
[ "$base" = scratchnet-base:bookworm ] && [ -z "$had_base" ] && made_base=$base
echo "base image: $base"
cargo build --release --locked --quiet -p scratchnet
export SCRATCHNET_BASE=$base
compose build -q lab

fail() { echo "test-docker: FAILED: $*" >&2; exit 1; }
wait_ready() {  # service
  for _ in $(seq 120); do
    compose exec -T "$1" scratchnet status --brief >/dev/null 2>&1 && return
    sleep 0.5
  done
  compose logs "$1" >&2
  fail "$1 never became ready"
}
in_host() {  # service host command...
  local service=$1 host=$2; shift 2
  compose exec -T "$service" ip netns exec "$host" "$@"
}

echo "== the reference lab in one container"
compose up -d lab
wait_ready lab
compose --profile test run --rm test || fail "the test service"
page=$(in_host lab alice curl -s -m 10 http://www.example.com/)
case "$page" in "server: web"*) ;; *) fail "alice's curl: $page" ;; esac
[ "$(in_host lab alice dig +short www.example.com)" = 203.0.113.10 ] || fail "alice's dig"
in_host lab bob ping -c 2 -W 2 203.0.113.1 >/dev/null || fail "bob's ping"
echo "alice's curl, dig and bob's ping inside the container: ok"
compose down -v >/dev/null 2>&1

echo "== the lab split in two containers, joined by VXLAN"
compose --profile split up -d lab-dc lab-home
wait_ready lab-dc
wait_ready lab-home
hops=$(in_host lab-home alice traceroute -n -q 1 -w 2 203.0.113.11 | awk 'NR > 1 {print $2}' | tr '\n' ' ')
[ "$hops" = "192.168.1.1 198.51.100.1 203.0.113.11 " ] || fail "alice's traceroute across both: $hops"
page=$(in_host lab-home alice curl -s -m 10 http://www.example.com/)
case "$page" in "server: web"*) ;; *) fail "alice's curl across both: $page" ;; esac
echo "alice's traceroute and curl across both containers: ok ($hops)"
echo "test-docker: all passed"
