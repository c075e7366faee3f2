#!/bin/sh
# The compose `test` service: from a container that shares the lab
# container's network namespace, the machine's view of the lab through its
# TUN uplink (isp-gw 198.18.0.1): ping, traceroute, DNS from the lab's
# resolver, HTTP from its balancer. Exits non-zero at the first failure.
set -eu
say() { echo "compose-test: $*"; }
for _ in $(seq 120); do
  ping -c 1 -W 1 203.0.113.1 >/dev/null 2>&1 && break
  sleep 0.5
done
ping -c 2 -W 2 203.0.113.1 >/dev/null
say "ping 203.0.113.1 (isp-gw): ok"
hops=$(traceroute -n -q 1 -w 2 203.0.113.11 | awk 'NR > 1 {print $2}' | tr '\n' ' ')
[ "$hops" = "198.18.0.1 203.0.113.11 " ] || { say "traceroute: $hops"; exit 1; }
say "traceroute to web1: $hops"
answer=$(dig +short @198.51.100.53 www.example.com)
[ "$answer" = "203.0.113.10" ] || { say "dig: $answer"; exit 1; }
say "dig www.example.com at isp-dns: $answer"
page=$(curl -s -m 10 http://203.0.113.10/)
case "$page" in "server: web"*) ;; *) say "curl: $page"; exit 1 ;; esac
say "curl www.example.com's balancer: $(echo "$page" | head -1)"
say "all passed"
