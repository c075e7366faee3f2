#!/usr/bin/env bash
# Scale: N namespace hosts on one switch (dual-stack, static addresses),
# for each N in SIZES (default "100 1000"). For scratchnet: the time to
# "ready", the resident memory and idle CPU once ready, the time from
# "ready" until PAIRS random host pairs (default 1000) all answer a ping
# over IPv4 and over IPv6, and the time to gone after SIGINT. Beside it,
# in the same run, the kernel's own plumbing of the same: N namespaces
# with a veth pair each on one Linux bridge, built with `ip -batch` (one
# `ip` for the namespaces and links, one per namespace for its addresses),
# timed the same way.
#
#
# Then SERVICES in-process web service hosts (default 10000; a multiple
# of 100): 100 switches behind 10 routers (scripts/services-lab.py), one
# namespace client on the routers' core switch. The time to "ready", the
# resident memory once ready and again once every host has answered, idle
# CPU, the time until every host answered an HTTP GET from the client (64
# at a time, scripts/get-all.py), and the time to gone.
#
# Then a thousand hosts in the simulator (crates/lab/examples/sim-scale.rs):
# the wall time of 10 s of virtual time in which each of 1,000 simulated
# namespace hosts GETs from a web service host, the GETs spread over the
# first second (SIM=0 skips it).
#
# Then forwarding on every core: the aggregate throughput of one iperf3
# pair, and of two at once, each pair on a switch of its own (bulk TCP,
# and 64-byte UDP datagrams), through scratchnet and through two Linux
# bridges in the same run: how each scales from one flow to two.
#
#   sudo SIZES="100 1000 5000" scripts/bench-scale.sh
#   sudo SIZES="" SERVICES="" scripts/bench-scale.sh   # two flows only
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
sizes=${SIZES-100 1000}
services=${SERVICES-10000}
pairs=${PAIRS:-1000}

now() { date +%s.%N; }
since() { python3 -c 'import sys,time; print("%.2f" % (time.time()-float(sys.argv[1])))' "$1"; }

# Host i's addresses in lab $1 (88: scratchnet, 89: the kernel's bridge).
addr4() { echo "10.$1.$(($2 / 250)).$(($2 % 250 + 1))"; }
addr6() { printf '2001:db8:%s::%x' "$1" $(($2 + 1)); }

# Pings PAIRS random pairs of hosts named $1N in lab $2 (N hosts: $3) over
# both families at once, from one process (scripts/ping-pairs.py), asking
# again every 200 ms; prints the seconds until all answered (or "timeout
# K": K pairs still silent after 30 s).
ping_pairs() {
  local prefix=$1 net=$2 n=$3 i a b
  : > "$work/pairs"
  for i in $(seq "$pairs"); do
    a=$(((RANDOM * 32768 + RANDOM) % n)); b=$(((a + 1 + (RANDOM * 32768 + RANDOM) % (n - 1)) % n))
    echo "$prefix$a $(addr4 "$net" "$b")" >> "$work/pairs"
    echo "$prefix$a $(addr6 "$net" "$b")" >> "$work/pairs"
  done
  python3 scripts/ping-pairs.py "$work/pairs" 30
}

# Percent of one core process $1 used over 5 s.
idle_cpu() {
  local a b
  a=$(awk '{print $14 + $15}' "/proc/$1/stat"); sleep 5; b=$(awk '{print $14 + $15}' "/proc/$1/stat")
  python3 -c 'import os,sys; print("%.1f" % ((int(sys.argv[2]) - int(sys.argv[1])) / os.sysconf("SC_CLK_TCK") / 5 * 100))' "$a" "$b"
}

# Starts `scratchnet up` on $work/lab.toml in the background (lab_pid)
# and sets ready_s to the seconds until its "ready" line.
up_timed() {
  local start
  start=$(now)
  "$bin" up "$work/lab.toml" > "$work/up.log" 2>&1 &
  lab_pid=$!
  until grep -q ready "$work/up.log"; do
    kill -0 "$lab_pid" 2>/dev/null || { cat "$work/up.log"; exit 1; }
    sleep 0.02
  done
  ready_s=$(since "$start")
}

# The lab process's resident memory, MiB.
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$lab_pid/status"; }

scratch() {
  local n=$1 i start ready ready_s rss cpu pinged gone
  {
    echo 'name = "bench-scale"'
    echo '[[switch]]'; echo 'name = "scale"'; echo 'subnet = "10.88.0.0/16"'; echo 'subnet6 = "2001:db8:88::/64"'
    for i in $(seq 0 $((n - 1))); do
      printf '[[host]]\nname = "s%d"\nswitch = "scale"\naddress = "%s/16"\naddress6 = "%s/64"\n' \
        "$i" "$(addr4 88 "$i")" "$(addr6 88 "$i")"
    done
  } > "$work/lab.toml"
  up_timed
  rss=$(rss_mib)
  pinged=$(ping_pairs s 88 "$n")
  cpu=$(idle_cpu "$lab_pid")
  start=$(now)
  kill -INT "$lab_pid"; wait "$lab_pid" 2>/dev/null || true; lab_pid=""
  gone=$(since "$start")
  echo "$ready_s $gone $rss $cpu $pinged"
}

kernel() {
  local n=$1 i start built pinged gone k old=()
  # The same neighbour table bounds as scratchnet gives a lab of N hosts
  # (the kernel's tables are one per machine: crates/scratchnet/src/neigh.rs).
  for k in ipv4 ipv6; do
    old+=("$(sysctl -n net.$k.neigh.default.gc_thresh2)" "$(sysctl -n net.$k.neigh.default.gc_thresh3)")
    sysctl -qw "net.$k.neigh.default.gc_thresh3=$((n * (n < 64 ? n : 64)))" \
      "net.$k.neigh.default.gc_thresh2=$((n * (n < 64 ? n : 64) / 2))"
  done
  ip link del scale-br 2>/dev/null || true  # left by a run cut short
  start=$(now)
  {
    # The bridge's frames skip the machine's iptables (Docker's FORWARD
    # rules would judge them otherwise).
    echo "link add scale-br type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0"
    echo "link set scale-br up"
    for i in $(seq 0 $((n - 1))); do
      echo "netns add k$i"
      echo "link add kv$i type veth peer name eth0 netns k$i"
      echo "link set kv$i master scale-br up"
    done
  } | ip -batch -
  for i in $(seq 0 $((n - 1))); do
    kernel_namespaces+=("k$i")
    printf 'link set lo up\nlink set eth0 up\naddr add %s/16 dev eth0\naddr add %s/64 dev eth0\n' \
      "$(addr4 89 "$i")" "$(addr6 89 "$i")" | ip -n "k$i" -batch -
  done
  # Ready as scratchnet's hosts are: every IPv6 address past DAD.
  for i in $(seq 0 $((n - 1))); do
    until ! ip -n "k$i" -6 addr show dev eth0 scope global | grep -q tentative; do sleep 0.02; done
  done
  built=$(since "$start")
  pinged=$(ping_pairs k 89 "$n")
  start=$(now)
  { for i in $(seq 0 $((n - 1))); do echo "netns delete k$i"; done; echo "link del scale-br"; } | ip -batch -
  kernel_namespaces=()
  gone=$(since "$start")
  sysctl -qw "net.ipv4.neigh.default.gc_thresh2=${old[0]}" "net.ipv4.neigh.default.gc_thresh3=${old[1]}" \
    "net.ipv6.neigh.default.gc_thresh2=${old[2]}" "net.ipv6.neigh.default.gc_thresh3=${old[3]}" 
  echo "$built $gone $pinged"
}

bridge_max_ports=1024
printf '%-7s %-34s %12s %12s %7s\n' hosts metric scratchnet kernel ratio
for n in $sizes; do
  read -r s_ready s_gone s_rss s_cpu s_ping <<< "$(scratch "$n")"
  if [ "$n" -le "$bridge_max_ports" ]; then
    read -r k_ready k_gone k_ping <<< "$(kernel "$n")"
  else
    k_ready=-; k_gone=-; k_ping=-
    echo "$n hosts: no kernel side: a Linux bridge holds at most $bridge_max_ports ports (BR_MAX_PORTS)" >&2
  fi
  printf '%-7s %-34s %12s %12s %7s\n' "$n" "time to ready, s" "$s_ready" "$k_ready" "$(ratio "$s_ready" "$k_ready")"
  printf '%-7s %-34s %12s %12s %7s\n' "$n" "ready to $pairs pairs pinging (v4+v6), s" "$s_ping" "$k_ping" "$(ratio "$s_ping" "$k_ping")"
  printf '%-7s %-34s %12s %12s %7s\n' "$n" "time to gone, s" "$s_gone" "$k_gone" "$(ratio "$s_gone" "$k_gone")"
  printf '%-7s %-34s %12s\n' "$n" "resident memory, MiB" "$s_rss"
  printf '%-7s %-34s %12s\n' "$n" "idle CPU, % of a core" "$s_cpu"
done

if [ -n "$services" ]; then
  per_switch=$((services / 100))
  python3 scripts/services-lab.py 10 10 "$per_switch" > "$work/lab.toml"
  python3 scripts/services-lab.py 10 10 "$per_switch" --list > "$work/services.list"
  up_timed
  rss=$(rss_mib)
  cpu=$(idle_cpu "$lab_pid")
  read -r answered failed <<< "$(ip netns exec sclient python3 scripts/get-all.py "$work/services.list")"
  rss_served=$(rss_mib)
  start=$(now)
  kill -INT "$lab_pid"; wait "$lab_pid" 2>/dev/null || true; lab_pid=""
  gone=$(since "$start")
  echo
  n=$((per_switch * 100))
  printf '%-7s %-34s %12s\n' "$n" "service hosts: time to ready, s" "$ready_s"
  printf '%-7s %-34s %12s\n' "$n" "resident memory, MiB" "$rss"
  printf '%-7s %-34s %12s\n' "$n" "idle CPU, % of a core" "$cpu"
  printf '%-7s %-34s %12s\n' "$n" "every host answered a GET, s" "$answered ($failed failed)"
  printf '%-7s %-34s %12s\n' "$n" "resident memory after, MiB" "$rss_served"
  printf '%-7s %-34s %12s\n' "$n" "time to gone, s" "$gone"
fi

if [ "${SIM:-1}" = 1 ]; then
  echo
  echo "1,000 hosts in the simulator:"
  cargo run --locked --release -q -p lab --example sim-scale | sed 's/^/  /'
fi

# Runs iperf3 from $1c to $1s (at 10.$2.$3.2) for each pair number in
# $3.. at once; extra iperf3 arguments after `--`. Prints the sum of what
# the receivers got, in Gbit/s for TCP and thousands of datagrams a
# second with -u.
flows() {
  local prefix=$1 net=$2; shift 2
  local ids=() i
  while [ "$1" != -- ]; do ids+=("$1"); shift; done; shift
  for i in "${ids[@]}"; do
    ip netns exec "${prefix}${i}s" iperf3 -s -1 -D -I "$work/iperf$i.pid" >/dev/null
  done
  sleep 0.3
  for i in "${ids[@]}"; do
    ip netns exec "${prefix}${i}c" iperf3 -J -c "10.$net.$i.2" -t "$secs" "$@" > "$work/flow$i.json" &
  done
  wait
  sleep 0.2
  local udp=0
  case " $* " in *" -u "*) udp=1 ;; esac
  python3 - "$work" "$udp" "${ids[@]}" <<'PY'
import json, sys
work, udp, ids = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
total = 0.0
for i in ids:
    s = json.load(open(f"{work}/flow{i}.json"))["end"]["sum_received"]
    total += s["bytes"] / 64 / s["seconds"] / 1e3 if udp else s["bits_per_second"] / 1e9
print("%.0f" % total if udp else "%.2f" % total)
PY
}

# One figure for 1 flow and for 2: "$one $two" for TCP, then UDP.
flow_figures() {
  local prefix=$1 net=$2
  echo "$(flows "$prefix" "$net" 1 --) $(flows "$prefix" "$net" 1 2 --) \
$(flows "$prefix" "$net" 1 -- -u -l 64 -b 0) $(flows "$prefix" "$net" 1 2 -- -u -l 64 -b 0)"
}

if [ "${FLOWS:-1}" = 1 ]; then
  {
    echo 'name = "bench-flows"'
    for i in 1 2; do
      printf '[[switch]]\nname = "seg%d"\nsubnet = "10.92.%d.0/24"\n' "$i" "$i"
      printf '[[host]]\nname = "f%dc"\nswitch = "seg%d"\naddress = "10.92.%d.1/24"\n' "$i" "$i" "$i"
      printf '[[host]]\nname = "f%ds"\nswitch = "seg%d"\naddress = "10.92.%d.2/24"\n' "$i" "$i" "$i"
    done
  } > "$work/flows.toml"
  scratchnet_up < "$work/flows.toml"
  read -r s_tcp1 s_tcp2 s_udp1 s_udp2 <<< "$(flow_figures f 92)"
  scratchnet_down
  for i in 1 2; do
    ip link add "flows-br$i" type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0
    ip link set "flows-br$i" up
    for end in c s; do
      ns="k${i}${end}"; kernel_namespaces+=("$ns"); ip netns add "$ns"
      ip link add "kf$i$end" type veth peer name eth0 netns "$ns"
      ip link set "kf$i$end" master "flows-br$i" up
      ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up
      ip -n "$ns" addr add "10.93.$i.$([ $end = c ] && echo 1 || echo 2)/24" dev eth0
    done
  done
  read -r k_tcp1 k_tcp2 k_udp1 k_udp2 <<< "$(flow_figures k 93)"
  ip link del flows-br1; ip link del flows-br2
  echo
  printf '%-40s %12s %12s %12s %12s\n' "forwarding on every core" "scratchnet" "kernel" "s 2/1" "kernel 2/1"
  printf '%-40s %12s %12s %12s %12s\n' "1 TCP flow, Gbit/s" "$s_tcp1" "$k_tcp1" "" ""
  printf '%-40s %12s %12s %12s %12s\n' "2 TCP flows, Gbit/s" "$s_tcp2" "$k_tcp2" "$(ratio "$s_tcp2" "$s_tcp1")" "$(ratio "$k_tcp2" "$k_tcp1")"
  printf '%-40s %12s %12s %12s %12s\n' "1 UDP flow (64 B), kpps" "$s_udp1" "$k_udp1" "" ""
  printf '%-40s %12s %12s %12s %12s\n' "2 UDP flows (64 B), kpps" "$s_udp2" "$k_udp2" "$(ratio "$s_udp2" "$s_udp1")" "$(ratio "$k_udp2" "$k_udp1")"
fi
