# Shared by the benchmark scripts: build, the scratchnet lab lifecycle,
# iperf3 measurements and the side-by-side report. Source it, then call
# `compare SCRATCH_CLIENT SCRATCH_SERVER SCRATCH_ADDR KERNEL_CLIENT
# KERNEL_SERVER KERNEL_ADDR`. With BENCH_TRACE=1 a `scratchnet trace
# --json` of every frame on every port runs while scratchnet is measured
# (what a trace of everything costs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
secs=${BENCH_SECONDS:-5}
scripts/install-deps.sh bench
cargo build --release --locked --quiet
# SCRATCHNET_BIN: another build to measure (an earlier commit, say).
bin=${SCRATCHNET_BIN:-target/release/scratchnet}
work=$(mktemp -d)
lab_pid=""
trace_pid=""
kernel_namespaces=()
nginx_pids=()

cleanup() {
  nginx_stop
  if [ -n "$trace_pid" ]; then kill "$trace_pid" 2>/dev/null || true; fi
  if [ -n "$lab_pid" ]; then kill "$lab_pid" 2>/dev/null || true; wait "$lab_pid" 2>/dev/null || true; fi
  for ns in "${kernel_namespaces[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  [ -e "$work/lab.toml" ] && "$bin" down "$work/lab.toml" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# Starts `scratchnet up` on the topology on stdin and waits for `ready`.
scratchnet_up() {
  cat > "$work/lab.toml"
  "$bin" up "$work/lab.toml" > "$work/up.log" 2>&1 &
  lab_pid=$!
  for _ in $(seq 200); do
    if grep -q ready "$work/up.log"; then
      if [ -n "${BENCH_TRACE:-}" ]; then
        "$bin" trace --json > /dev/null 2>&1 &
        trace_pid=$!
      fi
      return
    fi
    sleep 0.05
  done
  cat "$work/up.log"; exit 1
}

scratchnet_down() {
  if [ -n "$trace_pid" ]; then kill "$trace_pid" 2>/dev/null || true; trace_pid=""; fi
  kill "$lab_pid"; wait "$lab_pid" 2>/dev/null || true; lab_pid=""
}

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

# a/b to two places; "-" when either is not a number (a timeout, say).
ratio() { python3 -c '
import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
    print("%.2f" % (a / b if b else 0))
except ValueError:
    print("-")' "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Alternates scratchnet and the kernel over $rounds rounds: TCP and 64-byte
# UDP, both directions; prints every round and the medians.
compare() {
  local sc=$1 ss=$2 sa=$3 kc=$4 ks=$5 ka=$6
  declare -A all
  local metrics=(tcp_fwd tcp_rev udp_fwd udp_rev) s k q unit m r
  printf '%-6s %-22s %12s %12s %7s\n' round metric scratchnet kernel ratio
  for r in $(seq "$rounds"); do
    for m in "${metrics[@]}"; do
      case $m in
        tcp_fwd) s=$(tcp_gbps "$sc" "$ss" "$sa");    k=$(tcp_gbps "$kc" "$ks" "$ka");    unit="TCP a->b Gbit/s" ;;
        tcp_rev) s=$(tcp_gbps "$sc" "$ss" "$sa" -R); k=$(tcp_gbps "$kc" "$ks" "$ka" -R); unit="TCP b->a Gbit/s" ;;
        udp_fwd) s=$(udp_kpps "$sc" "$ss" "$sa");    k=$(udp_kpps "$kc" "$ks" "$ka");    unit="UDP64 a->b kpps" ;;
        udp_rev) s=$(udp_kpps "$sc" "$ss" "$sa" -R); k=$(udp_kpps "$kc" "$ks" "$ka" -R); unit="UDP64 b->a kpps" ;;
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
}

# Starts nginx in namespace $1, listening on port $2 and answering every
# request with a 2-byte body (one worker); stopped on exit.
nginx_ok() {
  local ns=$1 port=$2
  cat > "$work/nginx-$ns.conf" <<NGINX
worker_processes 1;
pid $work/nginx-$ns.pid;
error_log /dev/null;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen $port backlog=4096; location / { return 200 "ok"; } }
}
NGINX
  ip netns exec "$ns" nginx -c "$work/nginx-$ns.conf" -e /dev/null
  nginx_pids+=("$work/nginx-$ns.pid")
}

# Stops every nginx nginx_ok started.
nginx_stop() {
  local p
  for p in "${nginx_pids[@]}"; do
    if [ -f "$p" ]; then kill "$(cat "$p")" 2>/dev/null || true; fi
  done
  nginx_pids=()
}

# Requests/s of `ab -c 32` from namespace $1 to URL $2, $3 requests, each
# on a new connection; a failed request is reported on stderr.
ab_rate() {
  ip netns exec "$1" ab -q -n "$3" -c 32 "$2" 2>/dev/null \
    | awk '/Requests per second/ {printf "%.0f", $4} /Failed requests/ && $3 != 0 {print "FAILED " $3 > "/dev/stderr"}'
}

# Creates a namespace for a kernel peer (removed on exit).
kernel_ns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  kernel_namespaces+=("$1")
}

# The kernel peer for routed benchmarks: router namespace $1 forwarding
# between veth links to hosts $2 (10.$4.1.10) and $3 (10.$4.2.10).
kernel_router() {
  local r=$1 a=$2 b=$3 net=$4 h n
  kernel_ns "$r"; kernel_ns "$a"; kernel_ns "$b"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  for h in "$a" "$b"; do
    n=$([ "$h" = "$a" ] && echo 1 || echo 2)
    ip -n "$r" link add "p-$n" type veth peer name eth0 netns "$h"
    ip -n "$r" addr add "10.$net.$n.1/24" dev "p-$n"
    ip -n "$r" link set "p-$n" up
    ip -n "$h" addr add "10.$net.$n.10/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" route add default via "10.$net.$n.1"
  done
  ip netns exec "$a" ping -c 1 -W 2 "10.$net.2.10" >/dev/null
}
