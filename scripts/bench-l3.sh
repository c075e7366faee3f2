#!/usr/bin/env bash
# L3 benchmark: scratchnet's router against a kernel router namespace
# (veth + ip_forward), in one run, on the same machine, side by side.
#   sudo scripts/bench-l3.sh [ROUNDS]
# Two hosts on different segments; prints single-stream TCP throughput
# (iperf3, MTU 1500) and the small-packet forwarding rate (UDP, 64-byte
# payloads) both ways, per round and as medians, with the ratios.
source "$(dirname "$0")/bench-lib.sh"

# The kernel peer: a router namespace forwarding between two veth links.
kernel_ns kr; kernel_ns kr-a; kernel_ns kr-b
ip netns exec kr sysctl -qw net.ipv4.ip_forward=1
for h in a b; do
  n=$([ "$h" = a ] && echo 1 || echo 2)
  ip -n kr link add "p-$h" type veth peer name eth0 netns "kr-$h"
  ip -n kr addr add "10.95.$n.1/24" dev "p-$h"
  ip -n kr link set "p-$h" up
  ip -n "kr-$h" addr add "10.95.$n.10/24" dev eth0
  ip -n "kr-$h" link set eth0 up
  ip -n "kr-$h" route add default via "10.95.$n.1"
done
ip netns exec kr-a ping -c 1 -W 2 10.95.2.10 >/dev/null

scratchnet_up <<TOML
name = "bench-l3"
[[switch]]
name = "lan1"
subnet = "10.94.1.0/24"
[[switch]]
name = "lan2"
subnet = "10.94.2.0/24"
[[host]]
name = "sr-a"
switch = "lan1"
address = "10.94.1.10/24"
gateway = "10.94.1.1"
[[host]]
name = "sr-b"
switch = "lan2"
address = "10.94.2.10/24"
gateway = "10.94.2.1"
[[router]]
name = "gw"
interfaces = [
  { switch = "lan1", address = "10.94.1.1/24" },
  { switch = "lan2", address = "10.94.2.1/24" },
]
TOML
ip netns exec sr-a ping -c 1 -W 2 10.94.2.10 >/dev/null

compare sr-a sr-b 10.94.2.10 kr-a kr-b 10.95.2.10
scratchnet_down
