#!/usr/bin/env bash
# DNS against Unbound and NSD, one run, in one lab: a root, a com and an
# example.com server (scratchnet's dns-authoritative), scratchnet's
# resolver beside (b) Unbound in a namespace on the same switch with the
# same root hint, and example.com's server beside (d) NSD serving the
# same zone text. First the cold-cache time of www.example.com through
# each resolver; then alternating rounds of dnsperf (warm names: every
# name answered from the cache): queries/s, average and p99 latency, and
# the ratios (for latency, scratchnet's over the peer's: lower is better);
# each over IPv4 (A questions) and over IPv6 (AAAA questions, every
# server asked at its IPv6 address).
#
#   sudo scripts/bench-dns.sh [ROUNDS]     (BENCH_SECONDS per run, default 5)
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

example_zone='$TTL 3600
@      IN SOA  ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300
@      IN NS   ns1
@      IN A    10.95.0.10
www    IN A    10.95.0.10
www    IN AAAA 2001:db8:95::10
api    IN CNAME www
web1   IN A    10.95.0.11
web1   IN AAAA 2001:db8:95::11
web2   IN A    10.95.0.12
web2   IN AAAA 2001:db8:95::12
web3   IN A    10.95.0.13
web3   IN AAAA 2001:db8:95::13
mail   IN A    10.95.0.25
@      IN MX   10 mail
@      IN TXT  "v=spf1 mx -all"
ns1    IN A    10.95.0.55'

scratchnet_up <<TOML
name = "bench-dns"
[[switch]]
name = "dns"
subnet = "10.95.0.0/24"
subnet6 = "2001:db8:95::/64"
[[host]]
name = "bd-cl"
switch = "dns"
address = "10.95.0.1/24"
address6 = "2001:db8:95::1/64"
[[host]]
name = "bd-ub"
switch = "dns"
address = "10.95.0.2/24"
address6 = "2001:db8:95::2/64"
[[host]]
name = "bd-nsd"
switch = "dns"
address = "10.95.0.3/24"
address6 = "2001:db8:95::3/64"

[[service]]
name = "bd-res"
kind = "dns-resolver"
switch = "dns"
address = "10.95.0.60/24"
address6 = "2001:db8:95::60/64"
root_hints = ["10.95.0.53"]
queries_per_sec_per_client = 1000000

[[service]]
name = "bd-root"
kind = "dns-authoritative"
switch = "dns"
address = "10.95.0.53/24"
responses_per_sec = 0   # response rate limiting off, as NSD's below
[[service.zones]]
origin = "."
records = """
\$TTL 86400
@                    IN SOA a.root-servers.net. nstld.root-servers.net. 1 1800 900 604800 86400
@                    IN NS  a.root-servers.net.
a.root-servers.net.  IN A   10.95.0.53
com.                 IN NS  a.gtld-servers.net.
a.gtld-servers.net.  IN A   10.95.0.54
"""

[[service]]
name = "bd-com"
kind = "dns-authoritative"
switch = "dns"
address = "10.95.0.54/24"
responses_per_sec = 0   # response rate limiting off, as NSD's below
[[service.zones]]
origin = "com."
records = """
\$TTL 86400
@                  IN SOA a.gtld-servers.net. nstld.gtld-servers.net. 1 1800 900 604800 900
@                  IN NS  a.gtld-servers.net.
example.com.       IN NS  ns1.example.com.
ns1.example.com.   IN A   10.95.0.55
"""

[[service]]
name = "bd-example"
kind = "dns-authoritative"
switch = "dns"
address = "10.95.0.55/24"
address6 = "2001:db8:95::55/64"
responses_per_sec = 0   # response rate limiting off, as NSD's below
[[service.zones]]
origin = "example.com."
records = """
$example_zone
"""
TOML

# Unbound: iterating from the same root, no DNSSEC (the lab's zones are
# unsigned), as many threads as the machine has cores.
cat > "$work/root.hints" <<'HINTS'
.                    3600000 NS a.root-servers.net.
a.root-servers.net.  3600000 A  10.95.0.53
HINTS
cat > "$work/unbound.conf" <<CONF
server:
  interface: 10.95.0.2
  interface: 2001:db8:95::2
  access-control: 10.95.0.0/24 allow
  access-control: 2001:db8:95::/64 allow
  root-hints: "$work/root.hints"
  module-config: "iterator"
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  num-threads: $(nproc)
  so-reuseport: yes
  use-syslog: no
  verbosity: 0
remote-control:
  control-enable: no
CONF
ip netns exec bd-ub unbound -c "$work/unbound.conf"

# NSD: the same example.com zone text; its response rate limiting (on by
# default, 200/s per client network) off, as scratchnet has none.
printf '%s\n' "$example_zone" > "$work/example.com.zone"
cat > "$work/nsd.conf" <<CONF
server:
  ip-address: 10.95.0.3
  ip-address: 2001:db8:95::3
  username: ""
  chroot: ""
  zonesdir: "$work"
  pidfile: "$work/nsd.pid"
  database: ""
  xfrdfile: "$work/xfrd.state"
  zonelistfile: "$work/zone.list"
  logfile: "$work/nsd.log"
  server-count: $(nproc)
  rrl-ratelimit: 0
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: example.com.zone
CONF
ip netns exec bd-nsd nsd -c "$work/nsd.conf"
stop_peers() {
  for p in unbound nsd; do
    [ -e "$work/$p.pid" ] && kill "$(cat "$work/$p.pid")" 2>/dev/null || true
  done
}
trap 'stop_peers; cleanup' EXIT
sleep 1

# The cold-cache time of www.example.com (ms) through the resolver at $1:
# one query, timed from a namespace; "failed" unless NOERROR with answers.
cold() {
  ip netns exec bd-cl python3 - "$1" <<'PY'
import socket, struct, sys, time
name = b''.join(bytes([len(l)]) + l for l in b'www.example.com'.split(b'.')) + b'\0'
query = struct.pack('>HHHHHH', 0x5eed, 0x0100, 1, 0, 0, 0) + name + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
t = time.perf_counter()
s.sendto(query, (sys.argv[1], 53))
answer = s.recv(4096)
took = time.perf_counter() - t
ok = answer[3] & 15 == 0 and struct.unpack('>H', answer[6:8])[0] > 0
print('%.2f' % (took * 1e3) if ok else 'failed')
PY
}
s_cold=$(cold 10.95.0.60)
u_cold=$(cold 10.95.0.2)

printf '%s A\n' www.example.com api.example.com web1.example.com web2.example.com \
  web3.example.com mail.example.com example.com > "$work/names.txt"
printf '%s MX\n%s TXT\n' example.com example.com >> "$work/names.txt"
printf '%s AAAA\n' www.example.com api.example.com web1.example.com web2.example.com \
  web3.example.com > "$work/names6.txt"

# dnsperf against $1 for $secs s: "queries/s avg_ms p99_ms" (p99 from each
# answer's latency, -v); the questions of names6.txt for an IPv6 address.
perf() {
  local names=names.txt
  case $1 in *:*) names=names6.txt ;; esac
  ip netns exec bd-cl dnsperf -s "$1" -d "$work/$names" -l "$secs" -c 4 -q 256 -v \
    > "$work/perf.txt" 2>&1
  python3 - "$work/perf.txt" <<'PY'
import re, sys
qps = avg = None
lat = []
for line in open(sys.argv[1]):
    if line.startswith('> ') and re.fullmatch(r'[0-9.]+', line.split()[-1]):
        lat.append(float(line.split()[-1]))  # timeouts ("> T ...") have none
    elif 'Queries per second' in line:
        qps = float(line.split()[-1])
    elif 'Average Latency' in line:
        avg = float(re.search(r'\(s\):\s+([0-9.]+)', line).group(1))
    elif 'Response codes' in line and not re.fullmatch(r'\s*Response codes:\s+NOERROR \d+ \(100\.00%\)\s*', line):
        print('warning: not every answer was NOERROR:' + line.split(':', 1)[1].rstrip(), file=sys.stderr)
lat.sort()
p99 = lat[int(len(lat) * 0.99)] if lat else 0
print("%.0f %.3f %.3f" % (qps or 0, (avg or 0) * 1e3, p99 * 1e3))
PY
}

# Warm both caches.
perf 10.95.0.60 >/dev/null
perf 10.95.0.2 >/dev/null
perf 2001:db8:95::60 >/dev/null
perf 2001:db8:95::2 >/dev/null

declare -A all
row() { printf '%-6s %-36s %12s %12s %7s\n' "$@"; }
run_pair() { # label scratch_addr peer_addr peer_name
  local r=$1 label=$2 s q p sq sa sp pq pa pp
  read -r sq sa sp < <(perf "$3")
  read -r pq pa pp < <(perf "$4")
  for m in qps avg p99; do
    case $m in
      qps) s=$sq; p=$pq; unit="$label queries/s" ;;
      avg) s=$sa; p=$pa; unit="$label avg ms" ;;
      p99) s=$sp; p=$pp; unit="$label p99 ms" ;;
    esac
    q=$(ratio "$s" "$p")
    all[$label.$m.s]+="$s "; all[$label.$m.p]+="$p "; all[$label.$m.r]+="$q "
    row "$r" "$unit" "$s" "$p" "$q"
  done
}

row round metric scratchnet peer ratio
for r in $(seq "$rounds"); do
  run_pair "$r" "resolver/Unbound" 10.95.0.60 10.95.0.2
  run_pair "$r" "authoritative/NSD" 10.95.0.55 10.95.0.3
  run_pair "$r" "IPv6 resolver/Unbound" 2001:db8:95::60 2001:db8:95::2
  run_pair "$r" "IPv6 authoritative/NSD" 2001:db8:95::55 2001:db8:95::3
done
echo
echo "median over $rounds rounds (${secs} s each, dnsperf -c 4 -q 256):"
for label in resolver/Unbound authoritative/NSD "IPv6 resolver/Unbound" "IPv6 authoritative/NSD"; do
  for m in qps avg p99; do
    case $m in qps) unit="$label queries/s" ;; avg) unit="$label avg ms" ;; p99) unit="$label p99 ms" ;; esac
    # shellcheck disable=SC2086
    row "" "$unit" "$(median ${all[$label.$m.s]})" "$(median ${all[$label.$m.p]})" "$(median ${all[$label.$m.r]})"
  done
done
echo
echo "cold cache, www.example.com: scratchnet ${s_cold} ms, Unbound ${u_cold} ms"
