#!/usr/bin/env bash
# scratchnet's cache against Varnish 7 and nginx's proxy_cache, one run,
# in one lab: a client namespace, scratchnet's `cache` service, Varnish
# and nginx in namespaces on the same switch, all in front of the same
# origin (a scratchnet http service: 1 KiB objects, max-age an hour).
# wrk (keep-alive, 64 connections, BENCH_SECONDS each, default 5):
#   hot   one object, always a hit
#   mix   90% that object, 10% a URL never asked before (a miss each)
# Medians of ROUNDS rounds (default 3): requests/s, p50 and p99 latency,
# and the ratios (for latency, scratchnet's over the peer's: lower is
# better). Then memory per cached object: each cache is filled with
# 20,000 objects of 1 KiB and its process's RSS growth divided by them.
#
#   sudo scripts/bench-cache.sh [ROUNDS]
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

scratchnet_up <<TOML
name = "bench-cache"
[[switch]]
name = "cb"
subnet = "10.97.0.0/24"
[[host]]
name = "cb-cl"
switch = "cb"
address = "10.97.0.1/24"
[[host]]
name = "cb-var"
switch = "cb"
address = "10.97.0.2/24"
[[host]]
name = "cb-ngx"
switch = "cb"
address = "10.97.0.3/24"
[[service]]
name = "cb-edge"
kind = "cache"
switch = "cb"
address = "10.97.0.10/24"
origin = "cb-origin"
[[service]]
name = "cb-origin"
kind = "http"
switch = "cb"
address = "10.97.0.20/24"
[[service.paths]]
prefix = "/"
cache_control = "public, max-age=3600"
content_type = "application/octet-stream"
size = 1024
TOML

# Varnish as packaged: the built-in VCL, one malloc store, its default
# thread pools.
ip netns exec cb-var varnishd -n "$work/varnish" -a 10.97.0.2:80 -b 10.97.0.20:80 \
  -s malloc,512m -P "$work/varnish.pid"
# nginx as an operator would set it up for the same job: a worker a core,
# proxy_cache in a zone large enough, kept-alive connections upstream.
cat > "$work/nginx.conf" <<EOF
user root;
worker_processes $(nproc);
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    proxy_cache_path $work/nginx-cache levels=1:2 keys_zone=cache:64m max_size=1g inactive=600m;
    proxy_temp_path $work/nginx-tmp;
    upstream origin { server 10.97.0.20:80; keepalive 64; }
    server {
        listen 10.97.0.3:80;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache cache;
            proxy_cache_revalidate on;
        }
    }
}
EOF
ip netns exec cb-ngx nginx -c "$work/nginx.conf"
trap 'kill "$(cat "$work/varnish.pid")" "$(cat "$work/nginx.pid")" 2>/dev/null || true; cleanup' EXIT
sleep 1.5

cat > "$work/mix.lua" <<'EOF'
-- 90% the hot object, 10% a URL never asked before.
local n = 0
request = function()
  n = n + 1
  if math.random() < 0.1 then
    return wrk.format(nil, "/mix/" .. tostring(math.random(1, 1e9)) .. "-" .. n)
  end
  return wrk.format(nil, "/hot")
end
EOF

to_ms() { python3 -c 'import re,sys; n,u=re.fullmatch(r"([0-9.]+)(us|ms|s)",sys.argv[1]).groups(); print("%.3f" % (float(n)*{"us":1e-3,"ms":1,"s":1e3}[u]))' "$1"; }
# wrk against $1 (with script $2 if given): "requests/s p50_ms p99_ms errors".
wrk_run() {
  local script=()
  [ -n "${2:-}" ] && script=(-s "$2")
  ip netns exec cb-cl wrk -t2 -c64 -d"${secs}s" --latency "${script[@]}" "$1" > "$work/wrk.txt"
  read -r rps p50 p99 errs < <(awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /Non-2xx|Socket errors/ {e=1} END {print rps, p50, p99, e+0}' "$work/wrk.txt")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $errs"
}

declare -A base=([scratchnet]=http://10.97.0.10 [varnish]=http://10.97.0.2 [nginx]=http://10.97.0.3)
caches=(scratchnet varnish nginx)
# Warm each cache with the hot object.
for c in "${caches[@]}"; do
  ip netns exec cb-cl curl -s -o /dev/null "${base[$c]}/hot"
  ip netns exec cb-cl curl -s -o /dev/null "${base[$c]}/hot"
done

declare -A all
for r in $(seq "$rounds"); do
  for load in hot mix; do
    for c in "${caches[@]}"; do
      if [ "$load" = hot ]; then out=$(wrk_run "${base[$c]}/hot"); else out=$(wrk_run "${base[$c]}/" "$work/mix.lua"); fi
      read -r rps p50 p99 errs <<< "$out"
      if [ "$errs" != 0 ]; then echo "errors against $c ($load):"; cat "$work/wrk.txt"; fi
      all[$load,$c,rps]+="$rps "; all[$load,$c,p50]+="$p50 "; all[$load,$c,p99]+="$p99 "
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n%-5s %-11s %12s %12s %12s %9s %9s\n' load metric scratchnet varnish nginx "vs varn." "vs nginx"
for load in hot mix; do
  for m in rps p50 p99; do
    s=$(echo "${all[$load,scratchnet,$m]}" | median)
    v=$(echo "${all[$load,varnish,$m]}" | median)
    n=$(echo "${all[$load,nginx,$m]}" | median)
    printf '%-5s %-11s %12s %12s %12s %8.2fx %8.2fx\n' "$load" "$m" "$s" "$v" "$n" \
      "$(python3 -c "print($s/$v)")" "$(python3 -c "print($s/$n)")"
  done
done

# Memory per cached object: RSS growth over 20,000 new 1 KiB objects.
rss() { ps -o rss= -p "$1" | awk '{s+=$1} END {print s}'; }
fill() {
  ip netns exec cb-cl python3 - "$1" <<'EOF'
import http.client, sys
host = sys.argv[1]
c = http.client.HTTPConnection(host, 80, timeout=10)
for i in range(20000):
    c.request("GET", f"/fill/{i}")
    c.getresponse().read()
EOF
}
varnish_child=$(pgrep -f "varnishd -n $work/varnish" | tail -1)
nginx_workers=$(pgrep -f "nginx: worker" | tr '\n' ',' | sed 's/,$//')
printf '\n%-12s %14s\n' cache "bytes/object"
for c in scratchnet varnish nginx; do
  case $c in
    scratchnet) pid=$lab_pid ;;
    varnish) pid=$varnish_child ;;
    nginx) pid=$nginx_workers ;;
  esac
  before=$(rss "$pid")
  fill "${base[$c]#http://}"
  after=$(rss "$pid")
  printf '%-12s %14s\n' "$c" "$(( (after - before) * 1024 / 20000 ))"
done
