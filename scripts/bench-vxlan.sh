#!/usr/bin/env bash
# VXLAN benchmark: two hosts on one switch that spans two scratchnet
# processes over a VXLAN tunnel (loopback underlay), against the same two
# hosts on a switch in one process, and against two kernel namespaces
# joined by Linux vxlan devices over a veth pair; in one run, side by side.
#   sudo scripts/bench-vxlan.sh [ROUNDS]
# Prints TCP (iperf3, inner MTU 1500) and 64-byte UDP both ways, per round
# and as medians, with the ratios against the kernel. The tunnel carries
# offload metadata (both ends are scratchnet); BENCH_OFFLOAD=false cuts
# frames to wire size, as toward a Linux peer.
source "$(dirname "$0")/bench-lib.sh"
second_pid=""
far_down() {
  if [ -n "$second_pid" ]; then kill "$second_pid" 2>/dev/null || true; wait "$second_pid" 2>/dev/null || true; fi
  if [ -e "$work/far.toml" ]; then "$bin" down "$work/far.toml" >/dev/null 2>&1 || true; fi
  cleanup
}
trap far_down EXIT

# The kernel peer: kv-a and kv-b, each with a vxlan device (VNI 9) over a
# veth underlay of MTU 1550, so that the inner MTU is 1500 as in the lab.
kernel_ns kv-a; kernel_ns kv-b
ip -n kv-a link add u0 type veth peer name u0 netns kv-b
for h in a b; do
  n=$([ "$h" = a ] && echo 1 || echo 2); o=$([ "$h" = a ] && echo 2 || echo 1)
  ip -n "kv-$h" link set u0 mtu 1550 up
  ip -n "kv-$h" addr add "172.30.9.$n/30" dev u0
  ip -n "kv-$h" link add eth0 type vxlan id 9 local "172.30.9.$n" remote "172.30.9.$o" dstport 4789 dev u0
  ip -n "kv-$h" link set eth0 mtu 1500 up
  ip -n "kv-$h" addr add "10.95.0.$n/24" dev eth0
done
ip netns exec kv-a ping -c 1 -W 2 10.95.0.2 >/dev/null

# One half of the spanning switch: lab NAME with host HOST at ADDR, its
# tunnel from LOCAL to REMOTE.
half() {
  cat <<TOML
name = "$1"
[[switch]]
name = "lan"
subnet = "10.96.0.0/24"
vxlan = [{ vni = 9, local = "$4", remote = "$5", offload = ${BENCH_OFFLOAD:-true} }]
[[host]]
name = "$2"
switch = "lan"
address = "$3/24"
TOML
}

# The far half in a second scratchnet process, the near one as the lab.
half bench-vx-far sv-b 10.96.0.2 127.0.0.2 127.0.0.1 > "$work/far.toml"
"$bin" up "$work/far.toml" > "$work/far.log" 2>&1 &
second_pid=$!
for _ in $(seq 200); do grep -q ready "$work/far.log" && break; sleep 0.05; done
grep -q ready "$work/far.log" || { cat "$work/far.log"; exit 1; }
scratchnet_up < <(half bench-vx-near sv-a 10.96.0.1 127.0.0.1 127.0.0.2)
ip netns exec sv-a ping -c 1 -W 2 10.96.0.2 >/dev/null

echo "== across VXLAN: two scratchnet processes vs two kernel vxlan devices"
compare sv-a sv-b 10.96.0.2 kv-a kv-b 10.95.0.2
scratchnet_down
kill "$second_pid"; wait "$second_pid" 2>/dev/null || true; second_pid=""

scratchnet_up <<TOML
name = "bench-vx-one"
[[switch]]
name = "lan"
subnet = "10.96.0.0/24"
[[host]]
name = "sv-a"
switch = "lan"
address = "10.96.0.1/24"
[[host]]
name = "sv-b"
switch = "lan"
address = "10.96.0.2/24"
TOML
ip netns exec sv-a ping -c 1 -W 2 10.96.0.2 >/dev/null
echo
echo "== one switch in one scratchnet process vs the same kernel vxlan pair"
compare sv-a sv-b 10.96.0.2 kv-a kv-b 10.95.0.2
