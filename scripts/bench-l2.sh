#!/usr/bin/env bash
# L2 benchmark: scratchnet's switch against a kernel Linux bridge, in one
# run, on the same machine, side by side.
#   sudo scripts/bench-l2.sh [ROUNDS]
# Prints, per round and as medians: single-stream TCP throughput (iperf3,
# MTU 1500) both ways, the small-frame rate (UDP, 64-byte payloads) both
# ways, the ratios scratchnet/kernel, and the time from `scratchnet up` to
# `ready` for the reference lab. Everything it creates is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${BENCH_SECONDS:-5}
scripts/install-deps.sh
cargo build --release --locked --quiet
bin=target/release/scratchnet
work=$(mktemp -d)
lab_pid=""

cleanup() {
  [ -n "$lab_pid" ] && kill "$lab_pid" 2>/dev/null && wait "$lab_pid" 2>/dev/null
  for ns in kb-a kb-b kb-br; do ip netns delete "$ns" 2>/dev/null || true; done
  "$bin" down "$work/bench.toml" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- peers -----------------------------------------------------------------
kernel_up() {
  # A bridge in a namespace of its own, two hosts on veth pairs: nothing
  # touches the root namespace or its firewall.
  ip netns add kb-br; ip netns add kb-a; ip netns add kb-b
  ip -n kb-br link add br0 type bridge
  ip -n kb-br link set br0 up
  for h in a b; do
    ip -n kb-br link add "p-$h" type veth peer name eth0 netns "kb-$h"
    ip -n kb-br link set "p-$h" master br0 up
    ip -n "kb-$h" link set lo up
    ip -n "kb-$h" link set eth0 up
  done
  ip -n kb-a addr add 10.99.0.1/24 dev eth0
  ip -n kb-b addr add 10.99.0.2/24 dev eth0
  ip netns exec kb-a ping -c 1 -W 2 10.99.0.2 >/dev/null
}

scratchnet_up() {
  cat > "$work/bench.toml" <<TOML
name = "bench-l2"
[[switch]]
name = "lan"
subnet = "10.98.0.0/24"
[[host]]
name = "sb-a"
switch = "lan"
address = "10.98.0.1/24"
[[host]]
name = "sb-b"
switch = "lan"
address = "10.98.0.2/24"
TOML
  "$bin" up "$work/bench.toml" > "$work/up.log" 2>&1 &
  lab_pid=$!
  for _ in $(seq 100); do grep -q ready "$work/up.log" && break; sleep 0.05; done
  grep -q ready "$work/up.log" || { cat "$work/up.log"; exit 1; }
  ip netns exec sb-a ping -c 1 -W 2 10.98.0.2 >/dev/null
}

# --- measurements ----------------------------------------------------------
# iperf3 between client namespace $1 and server $2 at $3; extra args after.
iperf() {
  local client=$1 server=$2 addr=$3; shift 3
  ip netns exec "$server" iperf3 -s -1 -D -I "$work/iperf.pid" >/dev/null
  sleep 0.3
  ip netns exec "$client" iperf3 -J -c "$addr" -t "$secs" "$@" > "$work/iperf.json"
  sleep 0.2
}

tcp_gbps() {
  iperf "$@"
  python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$work/iperf.json"
}

# Delivered UDP datagrams per second with 64-byte payloads, unlimited
# rate: what the receiver got (with -R, end.sum mixes in sender counts).
udp_kpps() {
  iperf "$@" -u -l 64 -b 0
  python3 -c '
import json,sys
s = json.load(open(sys.argv[1]))["end"]["sum_received"]
print("%.0f" % (s["bytes"] / 64 / s["seconds"] / 1e3))' "$work/iperf.json"
}

ratio() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print("%.2f" % (a/b if b else 0))' "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

kernel_up
scratchnet_up

declare -A all
metrics=(tcp_fwd tcp_rev udp_fwd udp_rev)
printf '%-6s %-22s %12s %12s %7s\n' round metric scratchnet kernel ratio
for r in $(seq "$rounds"); do
  for m in "${metrics[@]}"; do
    case $m in
      tcp_fwd) s=$(tcp_gbps sb-a sb-b 10.98.0.2);    k=$(tcp_gbps kb-a kb-b 10.99.0.2);    unit="TCP a->b Gbit/s" ;;
      tcp_rev) s=$(tcp_gbps sb-a sb-b 10.98.0.2 -R); k=$(tcp_gbps kb-a kb-b 10.99.0.2 -R); unit="TCP b->a Gbit/s" ;;
      udp_fwd) s=$(udp_kpps sb-a sb-b 10.98.0.2);    k=$(udp_kpps kb-a kb-b 10.99.0.2);    unit="UDP64 a->b kpps" ;;
      udp_rev) s=$(udp_kpps sb-a sb-b 10.98.0.2 -R); k=$(udp_kpps kb-a kb-b 10.99.0.2 -R); unit="UDP64 b->a kpps" ;;
    esac
    q=$(ratio "$s" "$k")
    all[$m.s]+="$s "; all[$m.k]+="$k "; all[$m.r]+="$q "; all[$m.u]=$unit
    printf '%-6s %-22s %12s %12s %7s\n' "$r" "$unit" "$s" "$k" "$q"
  done
done
echo
echo "median over $rounds rounds (${secs} s each):"
for m in "${metrics[@]}"; do
  # shellcheck disable=SC2086
  printf '       %-22s %12s %12s %7s\n' "${all[$m.u]}" "$(median ${all[$m.s]})" "$(median ${all[$m.k]})" "$(median ${all[$m.r]})"
done

kill "$lab_pid"; wait "$lab_pid" 2>/dev/null || true; lab_pid=""

# Time from `scratchnet up` to `ready` for the reference lab.
if ip netns list | grep -qwE 'alice|bob|carol'; then
  echo "reference lab start-up: skipped (alice, bob or carol already exist)"
else
  times=()
  for _ in $(seq "$rounds"); do
    start=$(date +%s.%N)
    "$bin" up > "$work/ref.log" 2>&1 &
    lab_pid=$!
    for _ in $(seq 400); do grep -q ready "$work/ref.log" && break; sleep 0.005; done
    end=$(date +%s.%N)
    grep -q ready "$work/ref.log" || { cat "$work/ref.log"; exit 1; }
    times+=("$(python3 -c "print('%.3f' % ($end - $start))")")
    kill "$lab_pid"; wait "$lab_pid" 2>/dev/null || true; lab_pid=""
  done
  echo "reference lab: up -> ready in seconds: ${times[*]} (median $(median "${times[@]}"))"
fi
