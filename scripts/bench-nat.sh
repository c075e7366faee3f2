#!/usr/bin/env bash
# NAT benchmark: scratchnet's NAT router against a kernel router namespace
# doing nftables masquerade, in one run, on the same machine, side by side.
#   sudo scripts/bench-nat.sh [ROUNDS]
# An inside host and an outside server; prints single-stream TCP and
# 64-byte UDP through each NAT, both ways, and the connection-setup rate:
# short TCP connections one after another from one client (latency-bound),
# and HTTP requests on new connections from 32 at once with ab against
# nginx (rate-bound); per round and as medians, with the ratios.
source "$(dirname "$0")/bench-lib.sh"
conns=${BENCH_CONNECTIONS:-3000}
peer=tests/tools/tcp_peer.py

# The kernel peer: inside kn-a -> router kn-r (masquerade out of p-2) -> kn-b.
kernel_router kn-r kn-a kn-b 93
ip netns exec kn-r nft -f - <<'NFT'
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat;
    oifname "p-2" masquerade
  }
}
NFT

scratchnet_up <<TOML
name = "bench-nat"
[[switch]]
name = "inside"
subnet = "10.92.1.0/24"
[[switch]]
name = "outside"
subnet = "10.92.2.0/24"
[[host]]
name = "sn-a"
switch = "inside"
address = "10.92.1.10/24"
gateway = "10.92.1.1"
[[host]]
name = "sn-b"
switch = "outside"
address = "10.92.2.10/24"
gateway = "10.92.2.1"
[[router]]
name = "gw"
interfaces = [
  { switch = "inside", address = "10.92.1.1/24" },
  { switch = "outside", address = "10.92.2.1/24" },
]
nat = { outside = "outside" }
TOML
ip netns exec sn-a ping -c 1 -W 2 10.92.2.10 >/dev/null

compare sn-a sn-b 10.92.2.10 kn-a kn-b 10.93.2.10

# Connection setup: $conns sequential connect/answer/close from one client.
ip netns exec sn-b python3 "$peer" serve 7001 & sp=$!
ip netns exec kn-b python3 "$peer" serve 7001 & kp=$!
sleep 1
rate() {
  local out
  out=$(ip netns exec "$1" python3 "$peer" sequential "$2" 7001 "$conns")
  python3 -c 'import sys; ok, el = sys.argv[1], sys.argv[2]; print("%.0f" % (int(ok) / float(el)))' \
    "$(sed -n 's/^ok //p' <<<"$out")" "$(sed -n 's/^elapsed //p' <<<"$out")"
}
echo
printf '%-6s %-22s %12s %12s %7s\n' round metric scratchnet kernel ratio
srates=(); krates=(); ratios=()
for r in $(seq "$rounds"); do
  s=$(rate sn-a 10.92.2.10); k=$(rate kn-a 10.93.2.10); q=$(ratio "$s" "$k")
  srates+=("$s"); krates+=("$k"); ratios+=("$q")
  printf '%-6s %-22s %12s %12s %7s\n' "$r" "TCP connections/s" "$s" "$k" "$q"
done
printf '%-6s %-22s %12s %12s %7s\n' median "TCP connections/s" "$(median "${srates[@]}")" "$(median "${krates[@]}")" "$(median "${ratios[@]}")"
kill "$sp" "$kp" 2>/dev/null || true

# Concurrent connection setup: ab (32 at a time, a new connection per
# request) against nginx serving a 2-byte answer, in each server namespace.
nginx_ok sn-b 8000
nginx_ok kn-b 8000
sleep 0.5
srates=(); krates=(); ratios=()
for r in $(seq "$rounds"); do
  s=$(ab_rate sn-a http://10.92.2.10:8000/ $((conns * 3)))
  k=$(ab_rate kn-a http://10.93.2.10:8000/ $((conns * 3)))
  q=$(ratio "$s" "$k")
  srates+=("$s"); krates+=("$k"); ratios+=("$q")
  printf '%-6s %-22s %12s %12s %7s\n' "$r" "ab -c 32 conn/s" "$s" "$k" "$q"
done
printf '%-6s %-22s %12s %12s %7s\n' median "ab -c 32 conn/s" "$(median "${srates[@]}")" "$(median "${krates[@]}")" "$(median "${ratios[@]}")"
nginx_stop
scratchnet_down
