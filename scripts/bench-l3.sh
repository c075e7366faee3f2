#!/usr/bin/env bash
# L3 benchmark: scratchnet's router against a kernel router namespace
# (veth + ip_forward), in one run, on the same machine, side by side.
#   sudo scripts/bench-l3.sh [ROUNDS]
# Two hosts on different segments; prints single-stream TCP throughput
# (iperf3, MTU 1500) and the small-packet forwarding rate (UDP, 64-byte
# payloads) both ways, per round and as medians, with the ratios.
source "$(dirname "$0")/bench-lib.sh"

# The kernel peer: a router namespace forwarding between two veth links.
kernel_router kr kr-a kr-b 95

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
