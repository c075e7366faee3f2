#!/usr/bin/env bash
# The HTTP load balancer against HAProxy, one run, in one lab: a client
# namespace, (a) scratchnet's http-lb service and (b) HAProxy 2.6 in a
# namespace on the same switch, both round robin over the same three
# backends (scratchnet http services, 64-byte bodies), with health checks
# every second and X-Forwarded-For added. Alternating rounds of wrk
# (keep-alive, 64 connections): requests/s, p50 and p99 latency, ratios
# (for latency, scratchnet's over HAProxy's: lower is better).
#
#   sudo scripts/bench-lb.sh [ROUNDS]     (BENCH_SECONDS per run, default 5)
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

scratchnet_up <<TOML
name = "bench-lb"
[[switch]]
name = "lbb"
subnet = "10.96.0.0/24"
[[host]]
name = "lbb-cl"
switch = "lbb"
address = "10.96.0.1/24"
[[host]]
name = "lbb-hap"
switch = "lbb"
address = "10.96.0.2/24"
[[service]]
name = "lbb-lb"
kind = "http-lb"
switch = "lbb"
address = "10.96.0.10/24"
backends = ["lbb-w1", "lbb-w2", "lbb-w3"]
[[service]]
name = "lbb-w1"
kind = "http"
switch = "lbb"
address = "10.96.0.11/24"
body_size = 64
[[service]]
name = "lbb-w2"
kind = "http"
switch = "lbb"
address = "10.96.0.12/24"
body_size = 64
[[service]]
name = "lbb-w3"
kind = "http"
switch = "lbb"
address = "10.96.0.13/24"
body_size = 64
TOML

# HAProxy as an operator would set it up for the same job: as many
# threads as cores, round robin, checks every second, X-Forwarded-For,
# kept-alive connections to the backends shared between clients.
cat > "$work/haproxy.cfg" <<CFG
global
  nbthread $(nproc)
  maxconn 8000
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  option forwardfor
  http-reuse always
frontend web
  bind 10.96.0.2:80
  default_backend web
backend web
  balance roundrobin
  option httpchk GET /
  server w1 10.96.0.11:80 check inter 1s
  server w2 10.96.0.12:80 check inter 1s
  server w3 10.96.0.13:80 check inter 1s
CFG
ip netns exec lbb-hap haproxy -D -f "$work/haproxy.cfg"
trap 'kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true; cleanup' EXIT
sleep 1.5

to_ms() { python3 -c 'import re,sys; n,u=re.fullmatch(r"([0-9.]+)(us|ms|s)",sys.argv[1]).groups(); print("%.3f" % (float(n)*{"us":1e-3,"ms":1,"s":1e3}[u]))' "$1"; }
# wrk against $1: "requests/s p50_ms p99_ms errors".
wrk_run() {
  ip netns exec lbb-cl wrk -t2 -c64 -d"${secs}s" --latency "$1" > "$work/wrk.txt"
  read -r rps p50 p99 errs < <(awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /Non-2xx|Socket errors/ {e=1} END {print rps, p50, p99, e+0}' "$work/wrk.txt")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $errs"
}

declare -A all
metrics=(rps p50 p99)
names=([0]="requests/s" [1]="p50 ms" [2]="p99 ms")
printf '%-6s %-24s %12s %12s %7s\n' round metric scratchnet haproxy ratio
for r in $(seq "$rounds"); do
  read -r s_rps s_p50 s_p99 s_err < <(wrk_run http://10.96.0.10/)
  read -r h_rps h_p50 h_p99 h_err < <(wrk_run http://10.96.0.2/)
  [ "$s_err$h_err" = "00" ] || echo "warning: errors in round $r (scratchnet $s_err, haproxy $h_err)" >&2
  i=0
  for m in "${metrics[@]}"; do
    s=$(eval echo "\$s_$m"); h=$(eval echo "\$h_$m"); q=$(ratio "$s" "$h")
    all[$m.s]+="$s "; all[$m.h]+="$h "; all[$m.r]+="$q "
    printf '%-6s %-24s %12s %12s %7s\n' "$r" "${names[$i]}" "$s" "$h" "$q"
    i=$((i + 1))
  done
done
echo
echo "median over $rounds rounds (wrk -t2 -c64, ${secs} s each, 64-byte bodies):"
i=0
for m in "${metrics[@]}"; do
  # shellcheck disable=SC2086
  printf '       %-24s %12s %12s %7s\n' "${names[$i]}" "$(median ${all[$m.s]})" "$(median ${all[$m.h]})" "$(median ${all[$m.r]})"
  i=$((i + 1))
done
"$bin" lb --lab bench-lb
