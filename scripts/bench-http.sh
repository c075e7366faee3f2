#!/usr/bin/env bash
# Service hosts against nginx, one run, in the same lab: a namespace client
# on one switch with (a) scratchnet's built-in http service and (b) nginx
# in a namespace host, both serving the same small body and a 1 GiB
# download, over IPv4 and over IPv6. Prints the medians over ROUNDS rounds
# of requests/s and p99 latency (wrk, keep-alive) and download Gbit/s
# (curl), with the ratios. Then the resident memory of the process: with
# the reference lab idle, and holding 10,000 idle keep-alive connections
# to one service host.
#
#   sudo scripts/bench-http.sh [ROUNDS]     (default 3; WRK_SECONDS, default 10)
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
wrk_secs=${WRK_SECONDS:-10}
body=64
download=$((1 << 30))
held=10000

scratchnet_up <<TOML
name = "bench-http"
[[switch]]
name = "web"
subnet = "10.94.0.0/24"
subnet6 = "2001:db8:94::/64"
[[host]]
name = "hb-cl"
switch = "web"
address = "10.94.0.1/24"
address6 = "2001:db8:94::1/64"
[[host]]
name = "hb-ng"
switch = "web"
address = "10.94.0.2/24"
address6 = "2001:db8:94::2/64"
[[service]]
name = "hb-web"
kind = "http"
switch = "web"
address = "10.94.0.10/24"
address6 = "2001:db8:94::10/64"
body_size = $body
# One client holds the 10,000 idle connections of the memory figure.
max_connections_per_client = 16384
TOML

# nginx: as many workers as scratchnet has threads, the same body size.
head -c "$download" /dev/zero > "$work/big.bin"
printf '%*s\n' $((body - 1)) '' | tr ' ' . > "$work/small.txt"
cat > "$work/nginx.conf" <<NGINX
user root;
worker_processes 2;
pid $work/nginx.pid;
error_log /dev/null;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server {
    listen 80 backlog=4096;
    listen [::]:80 backlog=4096;
    location = / { default_type text/plain; return 200 "$(cat "$work/small.txt")"; }
    location = /big { alias $work/big.bin; }
  }
}
NGINX
ip netns exec hb-ng nginx -c "$work/nginx.conf" -e /dev/null
sleep 0.5

wrk_run() {
  ip netns exec hb-cl wrk -t2 -c64 -d"${wrk_secs}s" --latency "$1" > "$work/wrk.txt"
  awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} END {print rps, p99}' "$work/wrk.txt"
}
to_ms() { python3 -c 'import re,sys; n,u=re.fullmatch(r"([0-9.]+)(us|ms|s)",sys.argv[1]).groups(); print("%.3f" % (float(n)*{"us":1e-3,"ms":1,"s":1e3}[u]))' "$1"; }
gbps() {
  ip netns exec hb-cl curl -s -o /dev/null -w '%{speed_download}' "$1" \
    | python3 -c 'import sys; print("%.2f" % (float(sys.stdin.read())*8/1e9))'
}

# Both servers, both families, ROUNDS times; medians.
declare -A all
for _ in $(seq "$rounds"); do
  for fam in 4 6; do
    if [ "$fam" = 4 ]; then s_at=10.94.0.10; n_at=10.94.0.2; else s_at='[2001:db8:94::10]'; n_at='[2001:db8:94::2]'; fi
    read -r rps p99 < <(wrk_run "http://$s_at/"); all[$fam.rps.s]+=" $rps"; all[$fam.p99.s]+=" $(to_ms "$p99")"
    read -r rps p99 < <(wrk_run "http://$n_at/"); all[$fam.rps.n]+=" $rps"; all[$fam.p99.n]+=" $(to_ms "$p99")"
    all[$fam.dl.s]+=" $(gbps "http://$s_at/bytes/$download")"
    all[$fam.dl.n]+=" $(gbps "http://$n_at/big")"
  done
done

echo "median over $rounds rounds (wrk -t2 -c64 ${wrk_secs} s, ${body} B bodies; curl of 1 GiB):"
printf '%-36s %12s %12s %7s\n' metric scratchnet nginx ratio
for fam in 4 6; do
  for m in "rps:requests/s" "p99:p99 latency ms" "dl:download 1 GiB Gbit/s"; do
    key=${m%%:*}
    sv=$(median ${all[$fam.$key.s]}); nv=$(median ${all[$fam.$key.n]})
    printf '%-36s %12s %12s %7s\n' "IPv$fam ${m#*:}" "$sv" "$nv" "$(ratio "$sv" "$nv")"
  done
done
kill "$(cat "$work/nginx.pid")" 2>/dev/null || true

rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$lab_pid/status"; }

# 10,000 idle keep-alive connections (one request each) to one host.
before=$(rss_mib)
coproc HOLD { ip netns exec hb-cl python3 tests/tools/svc_client.py hold 10.94.0.10 80 "$held"; }
read -r line <&"${HOLD[0]}"
sleep 1
during=$(rss_mib)
echo
echo "resident memory, bench lab: $before MiB; holding $line connections: $during MiB"
python3 -c 'import sys; b,d,n=map(float,sys.argv[1:]); print("per idle connection: %.1f KiB" % ((d-b)*1024/n))' "$before" "$during" "$held"
exec {HOLD[1]}>&-
wait "$HOLD_PID" 2>/dev/null || true
scratchnet_down

# The reference lab, idle.
"$bin" up > "$work/ref.log" 2>&1 &
lab_pid=$!
for _ in $(seq 200); do grep -q ready "$work/ref.log" && break; sleep 0.05; done
sleep 2
echo "resident memory, reference lab idle: $(rss_mib) MiB"
scratchnet_down
