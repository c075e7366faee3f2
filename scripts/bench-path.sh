#!/usr/bin/env bash
# Per-packet cost on the reference lab's alice -> carol path: alice (home,
# behind home-gw's NAT) across the isp switch to carol (office, behind
# office-gw's port forwards), against the same path built from kernel
# namespaces (veth, a bridge for the isp segment, ip_forward, nftables
# masquerade and DNAT), alternating rounds in one run.
#   sudo scripts/bench-path.sh [ROUNDS]
# Prints bulk TCP and 64-byte UDP both ways (iperf3 through forwards of
# 198.51.100.3:5201 to carol), ping's round trip to the far NAT (300 pings
# 5 ms apart), HTTP connections/s (ab -c 32, one request per connection,
# nginx on carol behind the 8080 forward), and the scratchnet process's
# CPU while no traffic flows; medians with ratios.
source "$(dirname "$0")/bench-lib.sh"
pings=${BENCH_PINGS:-300}
requests=${BENCH_REQUESTS:-20000}

# The kernel path: kp-alice - kp-home (masquerade) - kp-isp (bridge) -
# kp-office (masquerade, DNAT) - kp-carol, with the reference lab's
# addresses.
for ns in kp-alice kp-home kp-isp kp-office kp-carol; do kernel_ns "$ns"; done
veth() { # veth NS_A IF_A ADDR_A NS_B IF_B ADDR_B
  ip -n "$1" link add "$2" type veth peer name "$5" netns "$4"
  [ -n "$3" ] && ip -n "$1" addr add "$3" dev "$2"
  [ -n "$6" ] && ip -n "$4" addr add "$6" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}
veth kp-alice eth0 192.168.1.10/24 kp-home lan 192.168.1.1/24
veth kp-carol eth0 10.1.0.10/24 kp-office lan 10.1.0.1/24
ip -n kp-isp link add br0 type bridge
ip -n kp-isp link set br0 up
veth kp-home wan 198.51.100.2/24 kp-isp home ""
veth kp-office wan 198.51.100.3/24 kp-isp office ""
ip -n kp-isp link set home master br0
ip -n kp-isp link set office master br0
ip -n kp-alice route add default via 192.168.1.1
ip -n kp-carol route add default via 10.1.0.1
for r in kp-home kp-office; do
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$r" nft -f - <<'NFT'
table ip nat {
  chain prerouting {
    type nat hook prerouting priority dstnat;
    iifname "wan" tcp dport 8080 dnat to 10.1.0.10:80
    iifname "wan" tcp dport 5201 dnat to 10.1.0.10:5201
    iifname "wan" udp dport 5201 dnat to 10.1.0.10:5201
  }
  chain postrouting {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade
  }
}
NFT
done
ip netns exec kp-alice ping -c 1 -W 2 198.51.100.3 >/dev/null

# scratchnet: the reference lab, with office-gw forwarding iperf3's port
# (TCP and UDP) to carol beside the 8080 forward it has.
"$bin" example > "$work/reference.toml"
sed \
  -e 's/^name = "reference"/name = "bench-path"/' \
  -e 's|^forwards = \[{ protocol = "tcp", port = 8080, to = "10.1.0.10:80" }\]|forwards = [{ protocol = "tcp", port = 8080, to = "10.1.0.10:80" }, { protocol = "tcp", port = 5201, to = "10.1.0.10:5201" }, { protocol = "udp", port = 5201, to = "10.1.0.10:5201" }]|' \
  "$work/reference.toml" > "$work/path.toml"
grep -q 'port = 5201' "$work/path.toml" || { echo "the reference lab's forwards changed: update bench-path.sh"; exit 1; }
scratchnet_up < "$work/path.toml"
ip netns exec alice ping -c 1 -W 2 198.51.100.3 >/dev/null

# The process's CPU while the lab is idle, as a share of one core: the
# nanoseconds its threads ran (schedstat) over 10 s.
cpu_ns() { cat /proc/"$lab_pid"/task/*/schedstat | awk '{n += $1} END {print n}'; }
idle_cpu() {
  local t0 t1
  t0=$(cpu_ns); sleep 10; t1=$(cpu_ns)
  python3 -c 'import sys; print("%.3f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e9 / 10 * 100))' "$t0" "$t1"
}
sleep 2
echo "scratchnet idle CPU: $(idle_cpu)% of one core (10 s, the lab's own timers and health checks)"
echo

compare alice carol 198.51.100.3 kp-alice kp-carol 198.51.100.3

# ping's average round trip to the far NAT, in microseconds.
rtt_us() {
  ip netns exec "$1" ping -q -c "$pings" -i 0.005 198.51.100.3 \
    | awk -F'/' '/^rtt/ {printf "%.0f", $5 * 1000}'
}
nginx_ok carol 80
nginx_ok kp-carol 80
sleep 0.5
echo
printf '%-6s %-22s %12s %12s %7s\n' round metric scratchnet kernel ratio
declare -A all
for r in $(seq "$rounds"); do
  s=$(rtt_us alice); k=$(rtt_us kp-alice); q=$(ratio "$s" "$k")
  all[rtt.s]+="$s "; all[rtt.k]+="$k "; all[rtt.r]+="$q "
  printf '%-6s %-22s %12s %12s %7s\n' "$r" "ping RTT us" "$s" "$k" "$q"
  s=$(ab_rate alice http://198.51.100.3:8080/ "$requests")
  k=$(ab_rate kp-alice http://198.51.100.3:8080/ "$requests")
  q=$(ratio "$s" "$k")
  all[ab.s]+="$s "; all[ab.k]+="$k "; all[ab.r]+="$q "
  printf '%-6s %-22s %12s %12s %7s\n' "$r" "ab -c 32 conn/s" "$s" "$k" "$q"
done
echo
echo "median over $rounds rounds:"
# shellcheck disable=SC2086
printf '       %-22s %12s %12s %7s\n' "ping RTT us" "$(median ${all[rtt.s]})" "$(median ${all[rtt.k]})" "$(median ${all[rtt.r]})"
# shellcheck disable=SC2086
printf '       %-22s %12s %12s %7s\n' "ab -c 32 conn/s" "$(median ${all[ab.s]})" "$(median ${all[ab.k]})" "$(median ${all[ab.r]})"
nginx_stop
scratchnet_down
