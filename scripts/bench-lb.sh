#!/usr/bin/env bash
# The load balancers against HAProxy, one run, in one lab: a client
# namespace, scratchnet's balancers and HAProxy 2.6 in a namespace on the
# same switch, all round robin over the same three backends (scratchnet
# http services, 64-byte bodies) with health checks every second. Three
# pairs, in alternating rounds of wrk (keep-alive, 64 connections):
#   http   http-lb (X-Forwarded-For, Via)   vs HAProxy mode http (forwardfor)
#   tcp    tcp-lb                            vs HAProxy mode tcp
#   https  http-lb TLS (lab CA, P-256)       vs HAProxy TLS (P-256, self-signed)
# Each pair again with the client over IPv6 (http6, tcp6, https6: the
# balancers' IPv6 addresses; the backends stay IPv4).
# Prints requests/s, p50 and p99 latency and the ratios (for latency,
# scratchnet's over HAProxy's: lower is better). Then HTTP at a fixed rate
# both carry (BENCH_RATE, default 8,000/s; crates/loadgen, latency from
# each request's scheduled time): p50, p99 and p99.9.
#
#   sudo scripts/bench-lb.sh [ROUNDS]     (BENCH_SECONDS per run, default 5)
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

scratchnet_up <<TOML
name = "bench-lb"
[[switch]]
name = "lbb"
subnet = "10.96.0.0/24"
subnet6 = "2001:db8:96::/64"
[[host]]
name = "lbb-cl"
switch = "lbb"
address = "10.96.0.1/24"
address6 = "2001:db8:96::1/64"
[[host]]
name = "lbb-hap"
switch = "lbb"
address = "10.96.0.2/24"
address6 = "2001:db8:96::2/64"
[[service]]
name = "lbb-lb"
kind = "http-lb"
switch = "lbb"
address = "10.96.0.10/24"
address6 = "2001:db8:96::10/64"
backends = ["lbb-w1", "lbb-w2", "lbb-w3"]
tls_port = 443
[[service]]
name = "lbb-tcp"
kind = "tcp-lb"
switch = "lbb"
address = "10.96.0.20/24"
address6 = "2001:db8:96::20/64"
port = 80
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
  bind [2001:db8:96::2]:80
  default_backend web
frontend webtls
  bind 10.96.0.2:443 ssl crt $work/haproxy.pem alpn http/1.1
  bind [2001:db8:96::2]:443 ssl crt $work/haproxy.pem alpn http/1.1
  default_backend web
frontend tcp
  mode tcp
  bind 10.96.0.2:81
  bind [2001:db8:96::2]:81
  default_backend tcp
backend tcp
  mode tcp
  balance roundrobin
  server w1 10.96.0.11:80 check inter 1s
  server w2 10.96.0.12:80 check inter 1s
  server w3 10.96.0.13:80 check inter 1s
backend web
  balance roundrobin
  option httpchk GET /
  server w1 10.96.0.11:80 check inter 1s
  server w2 10.96.0.12:80 check inter 1s
  server w3 10.96.0.13:80 check inter 1s
CFG
# HAProxy's certificate: the same kind of key as the lab CA gives lb
# (ECDSA P-256).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=lbb-hap -keyout "$work/haproxy.key" -out "$work/haproxy.crt" 2>/dev/null
cat "$work/haproxy.crt" "$work/haproxy.key" > "$work/haproxy.pem"
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
pairs=(http tcp https http6 tcp6 https6)
declare -A url_s=([http]=http://10.96.0.10/ [tcp]=http://10.96.0.20/ [https]=https://10.96.0.10/
  [http6]='http://[2001:db8:96::10]/' [tcp6]='http://[2001:db8:96::20]/' [https6]='https://[2001:db8:96::10]/')
declare -A url_h=([http]=http://10.96.0.2/ [tcp]=http://10.96.0.2:81/ [https]=https://10.96.0.2/
  [http6]='http://[2001:db8:96::2]/' [tcp6]='http://[2001:db8:96::2]:81/' [https6]='https://[2001:db8:96::2]/')
metrics=(rps p50 p99)
names=([0]="requests/s" [1]="p50 ms" [2]="p99 ms")
printf '%-6s %-24s %12s %12s %7s\n' round metric scratchnet haproxy ratio
for r in $(seq "$rounds"); do
  for p in "${pairs[@]}"; do
    read -r s_rps s_p50 s_p99 s_err < <(wrk_run "${url_s[$p]}")
    read -r h_rps h_p50 h_p99 h_err < <(wrk_run "${url_h[$p]}")
    [ "$s_err$h_err" = "00" ] || echo "warning: errors in round $r, $p (scratchnet $s_err, haproxy $h_err)" >&2
    i=0
    for m in "${metrics[@]}"; do
      s=$(eval echo "\$s_$m"); h=$(eval echo "\$h_$m"); q=$(ratio "$s" "$h")
      all[$p.$m.s]+="$s "; all[$p.$m.h]+="$h "; all[$p.$m.r]+="$q "
      printf '%-6s %-24s %12s %12s %7s\n' "$r" "$p ${names[$i]}" "$s" "$h" "$q"
      i=$((i + 1))
    done
  done
done
echo
echo "median over $rounds rounds (wrk -t2 -c64, ${secs} s each, 64-byte bodies):"
for p in "${pairs[@]}"; do
  i=0
  for m in "${metrics[@]}"; do
    # shellcheck disable=SC2086
    printf '       %-24s %12s %12s %7s\n' "$p ${names[$i]}" "$(median ${all[$p.$m.s]})" "$(median ${all[$p.$m.h]})" "$(median ${all[$p.$m.r]})"
    i=$((i + 1))
  done
done

# A fixed rate both can carry (loadgen: latency from each request's
# scheduled time, as wrk2 measures): the p99 the issue asks for.
rate=${BENCH_RATE:-8000}
fixed() {
  ip netns exec lbb-cl target/release/loadgen "$1" --rate "$rate" --seconds "$secs" --connections 64 \
    | python3 -c 'import sys; d=dict(kv.split("=") for kv in sys.stdin.read().split()); print(d["p50_ms"], d["p99_ms"], d["p999_ms"], d["errors"])'
}
declare -A fx
echo
printf '%-6s %-24s %12s %12s %7s\n' round "fixed $rate/s (http)" scratchnet haproxy ratio
for r in $(seq "$rounds"); do
  read -r s50 s99 s999 serr < <(fixed http://10.96.0.10/)
  read -r h50 h99 h999 herr < <(fixed http://10.96.0.2/)
  [ "$serr$herr" = "00" ] || echo "warning: errors at a fixed rate in round $r (scratchnet $serr, haproxy $herr)" >&2
  for m in 50 99 999; do
    s=$(eval echo "\$s$m"); h=$(eval echo "\$h$m"); q=$(ratio "$s" "$h")
    fx[$m.s]+="$s "; fx[$m.h]+="$h "; fx[$m.r]+="$q "
    printf '%-6s %-24s %12s %12s %7s\n' "$r" "p$m ms" "$s" "$h" "$q"
  done
done
echo "median over $rounds rounds ($rate requests/s, ${secs} s each, 64 connections):"
for m in 50 99 999; do
  # shellcheck disable=SC2086
  printf '       %-24s %12s %12s %7s\n' "p$m ms" "$(median ${fx[$m.s]})" "$(median ${fx[$m.h]})" "$(median ${fx[$m.r]})"
done
"$bin" lb --lab bench-lb
