#!/usr/bin/env bash
# L2 benchmark: scratchnet's switch against a kernel Linux bridge, in one
# run, on the same machine, side by side.
#   sudo scripts/bench-l2.sh [ROUNDS]
# Prints, per round and as medians: single-stream TCP throughput (iperf3,
# MTU 1500) both ways, the small-frame rate (UDP, 64-byte payloads) both
# ways, the ratios scratchnet/kernel, and the time from `scratchnet up` to
# `ready` for the reference lab. Everything it creates is removed on exit.
source "$(dirname "$0")/bench-lib.sh"

# The kernel peer: a bridge in a namespace of its own, two hosts on veth
# pairs; nothing touches the root namespace or its firewall.
kernel_ns kb-br; kernel_ns kb-a; kernel_ns kb-b
ip -n kb-br link add br0 type bridge
ip -n kb-br link set br0 up
for h in a b; do
  ip -n kb-br link add "p-$h" type veth peer name eth0 netns "kb-$h"
  ip -n kb-br link set "p-$h" master br0 up
  ip -n "kb-$h" link set eth0 up
done
ip -n kb-a addr add 10.99.0.1/24 dev eth0
ip -n kb-b addr add 10.99.0.2/24 dev eth0
ip netns exec kb-a ping -c 1 -W 2 10.99.0.2 >/dev/null

scratchnet_up <<TOML
name = "bench-l2"
[[switch]]
name = "lan"
subnet = "10.98.0.0/24"
[[host]]
name = "sb-a"
switch = "lan"
address = "10.98.0.1/24"
[[host]]
name = "sb-b"
switch = "lan"
address = "10.98.0.2/24"
TOML
ip netns exec sb-a ping -c 1 -W 2 10.98.0.2 >/dev/null

compare sb-a sb-b 10.98.0.2 kb-a kb-b 10.99.0.2
scratchnet_down

# Time from `scratchnet up` to `ready` for the reference lab.
if ip netns list | grep -qwE 'alice|bob|carol'; then
  echo "reference lab start-up: skipped (alice, bob or carol already exist)"
  exit 0
fi
times=()
for _ in $(seq "$rounds"); do
  start=$(date +%s.%N)
  "$bin" up > "$work/ref.log" 2>&1 &
  lab_pid=$!
  for _ in $(seq 2000); do grep -q ready "$work/ref.log" && break; sleep 0.005; done
  end=$(date +%s.%N)
  grep -q ready "$work/ref.log" || { cat "$work/ref.log"; exit 1; }
  times+=("$(python3 -c "print('%.3f' % ($end - $start))")")
  scratchnet_down
done
echo "reference lab: up -> ready in seconds: ${times[*]} (median $(median "${times[@]}"))"
