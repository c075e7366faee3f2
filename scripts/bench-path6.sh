#!/usr/bin/env bash
# Per-packet cost over IPv6 on the reference lab's alice -> carol path:
# alice (home, SLAAC) through home-gw's CPE firewall, across the isp
# switch, through office-gw's firewall and its pinhole to carol, routed
# without NAT; against the same path built from kernel namespaces (veth,
# a bridge for the isp segment, IPv6 forwarding, an nftables firewall
# with the same rules), alternating rounds in one run.
#   sudo scripts/bench-path6.sh [ROUNDS]
# Prints bulk TCP and 64-byte UDP both ways (iperf3 through pinholes for
# 5201 to carol), medians with ratios; bench-path.sh gives the IPv4 ones.
source "$(dirname "$0")/bench-lib.sh"

# The kernel path: k6-alice - k6-home (firewall) - k6-isp (bridge) -
# k6-office (firewall, pinhole) - k6-carol, with the reference lab's
# IPv6 addresses.
for ns in k6-alice k6-home k6-isp k6-office k6-carol; do kernel_ns "$ns"; done
veth() { # veth NS_A IF_A ADDR_A NS_B IF_B ADDR_B
  ip -n "$1" link add "$2" type veth peer name "$5" netns "$4"
  [ -n "$3" ] && ip -n "$1" -6 addr add "$3" dev "$2" nodad
  [ -n "$6" ] && ip -n "$4" -6 addr add "$6" dev "$5" nodad
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}
veth k6-alice eth0 2001:db8:1::10/64 k6-home lan 2001:db8:1::1/64
veth k6-carol eth0 2001:db8:2::10/64 k6-office lan 2001:db8:2::1/64
ip -n k6-isp link add br0 type bridge
ip -n k6-isp link set br0 up
veth k6-home wan 2001:db8:100::2/64 k6-isp home ""
veth k6-office wan 2001:db8:100::3/64 k6-isp office ""
ip -n k6-isp link set home master br0
ip -n k6-isp link set office master br0
ip -n k6-alice -6 route add default via 2001:db8:1::1
ip -n k6-carol -6 route add default via 2001:db8:2::1
ip -n k6-home -6 route add 2001:db8:2::/64 via 2001:db8:100::3
ip -n k6-office -6 route add 2001:db8:1::/64 via 2001:db8:100::2
for r in k6-home k6-office; do
  ip netns exec "$r" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
  pinhole=""
  [ "$r" = k6-office ] && pinhole='iifname "wan" ip6 daddr 2001:db8:2::10 meta l4proto { tcp, udp } th dport 5201 accept'
  ip netns exec "$r" nft -f - <<NFT
table inet cpe {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "wan" ct state established,related accept
    iifname "wan" icmpv6 type { packet-too-big, echo-request, destination-unreachable, time-exceeded } accept
    $pinhole
    iifname "wan" drop
  }
}
NFT
done
ip netns exec k6-alice ping -6 -c 1 -w 5 2001:db8:2::10 >/dev/null

# scratchnet: the reference lab, with office-gw's pinholes for iperf3
# (TCP and UDP 5201) beside its port 80, and the two CPE routers routing
# each other's /64 directly, as the kernel path does.
"$bin" example > "$work/reference.toml"
python3 - "$work/reference.toml" > "$work/path6.toml" <<'PY'
import re, sys
lab = open(sys.argv[1]).read().replace('name = "reference"', 'name = "bench-path6"', 1)
lab = lab.replace(
    'pinholes = [{ protocol = "tcp", port = 80, to = "2001:db8:2::10" }]',
    'pinholes = [{ protocol = "tcp", port = 80, to = "2001:db8:2::10" }, '
    '{ protocol = "tcp", port = 5201, to = "2001:db8:2::10" }, '
    '{ protocol = "udp", port = 5201, to = "2001:db8:2::10" }]')
default = '  { to = "::/0", via = "2001:db8:100::1" },\n'
for router, route in [("home-gw", '2001:db8:2::/64", via = "2001:db8:100::3'),
                      ("office-gw", '2001:db8:1::/64", via = "2001:db8:100::2')]:
    at = lab.index('name = "%s"' % router)
    end = lab.index(default, at) + len(default)
    lab = lab[:end] + '  { to = "%s" },\n' % route + lab[end:]
print(lab, end="")
PY
grep -q 'port = 5201' "$work/path6.toml" || { echo "the reference lab's pinholes changed: update bench-path6.sh"; exit 1; }
scratchnet_up < "$work/path6.toml"
ip netns exec alice ping -6 -c 1 -w 5 2001:db8:2::10 >/dev/null
echo "hops: $(ip netns exec alice traceroute -6 -I -n -q 1 -w 1 2001:db8:2::10 | awk 'NR > 1 {printf "%s ", $2}')"
echo

compare alice carol 2001:db8:2::10 k6-alice k6-carol 2001:db8:2::10
scratchnet_down
