#!/usr/bin/env python3
"""Hostile frames with valid checksums, sent raw from inside a namespace,
for scratchnet's hardening tests (tests/hardening.rs). Every frame passes
the IPv4, UDP, TCP and ICMP checksums, so it reaches the parser behind
them. Prints "sent N" when done.

  hostile.py IFACE GW_MAC KIND [ARGS...]

  dhcp-hlen                 DHCP DISCOVERs with every htype and hlen
  dhcp-starve N             N DISCOVERs, each from a new source MAC
  dhcp-spoof IP MAC         DECLINE and RELEASE of IP in MAC's name (chaddr
                            MAC) from this host
  ip-options SRC DST N      N UDP packets with options of every shape
  ihl-lies SRC DST N        N packets whose header length lies
  icmp-quotes SRC DST N     N ICMP errors quoting headers of every IHL
  frag-storm SRC DST N      N first fragments of packets that never end
  arp-spray N               ARP requests from N off-subnet senders
  sweep SRC NET             one UDP packet to every address of NET (/24)
  spray SRC SPORT DST SECONDS garbage UDP datagrams from SRC:SPORT to every
                            port of DST from 1024 up, round after round,
                            about 10,000 a second
  udp-from SRC SPORT DST DPORT N
                            N DNS queries for lab.test from SRC:SPORT (0.0.0.0,
                            port 0: sources no reply can reach; SPORT `seq`:
                            10000, 10001, ... a new flow each)

IPv6 (addresses in SRC are the host's own; ICMPv6 and UDP checksums valid):

  ra6 PREFIX                a rogue router advertisement for PREFIX/64 to
                            all nodes, plain and behind destination options
  na6 SRC TARGET            an unsolicited override advertisement claiming
                            TARGET at this host's MAC, to all nodes
  ext-chain6 SRC DST N      UDP behind N destination-options headers
  tiny-frag6 SRC DST        a first fragment whose header chain stops
                            before the UDP header (RFC 7112)
"""
import random
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_bytes(a):
    return socket.inet_aton(a)


def ipv4(src, dst, proto, payload, ident=1, frag=0, options=b"", ihl=None, total=None):
    hlen = 20 + len(options)
    ihl = hlen // 4 if ihl is None else ihl
    total = hlen + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | (ihl & 0x0F), 0, total & 0xFFFF, ident, frag,
                    64, proto, 0, ip_bytes(src), ip_bytes(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def pseudo(src, dst, proto, length):
    return ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, proto, length)


def udp(src, dst, sport, dport, body):
    u = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
    c = csum(pseudo(src, dst, 17, len(u)) + u) or 0xFFFF
    return u[:6] + struct.pack("!H", c) + u[8:]


def icmp(kind, code, rest, body):
    m = struct.pack("!BBH", kind, code, 0) + rest + body
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def ip6_bytes(a):
    return socket.inet_pton(socket.AF_INET6, a)


def ipv6(src, dst, nh, payload, hop=64):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hop,
                       ip6_bytes(src), ip6_bytes(dst)) + payload


def l4_6(src, dst, proto, l4, at):
    """Fills in the checksum (at offset `at`) of an upper-layer message."""
    ph = ip6_bytes(src) + ip6_bytes(dst) + struct.pack("!IxxxB", len(l4), proto)
    c = csum(ph + l4[:at] + b"\0\0" + l4[at + 2:]) or 0xFFFF
    return l4[:at] + struct.pack("!H", c) + l4[at + 2:]


def udp6(src, dst, sport, dport, body):
    u = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
    return l4_6(src, dst, 17, u, 6)


def icmp6(src, dst, kind, code, body):
    return l4_6(src, dst, 58, struct.pack("!BBH", kind, code, 0) + body, 2)


def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


class Wire:
    def __init__(self, iface, gw):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.s.bind((iface, 0))
        with open("/sys/class/net/%s/address" % iface) as f:
            self.mac = mac_bytes(f.read().strip())
        self.gw = mac_bytes(gw)
        self.sent = 0

    def frame(self, dst, src, ethertype, payload):
        try:
            self.s.send(dst + src + struct.pack("!H", ethertype) + payload)
        except OSError:
            pass  # a full queue: the test is about what arrives
        self.sent += 1

    def ip(self, packet, dst=None, src=None):
        self.frame(dst or self.gw, src or self.mac, 0x0800, packet)

    def ip6(self, packet, dst=None):
        self.frame(dst or self.gw, self.mac, 0x86DD, packet)


def dhcp_message(chaddr, kind, htype=1, hlen=6, ciaddr="0.0.0.0", options=b""):
    m = struct.pack("!BBBBIHH4s4s4s4s", 1, htype, hlen, 0, random.getrandbits(32), 0, 0,
                    ip_bytes(ciaddr), b"\0" * 4, b"\0" * 4, b"\0" * 4)
    m += chaddr.ljust(16, b"\0") + b"\0" * 192 + b"\x63\x82\x53\x63"
    return m + bytes([53, 1, kind]) + options + b"\xff"


def dhcp_send(w, message, src_mac=None, src="0.0.0.0", dst="255.255.255.255"):
    packet = ipv4(src, dst, 17, udp(src, dst, 68, 67, message))
    w.ip(packet, dst=b"\xff" * 6, src=src_mac)


def random_mac():
    return bytes([0x02, 0x99] + [random.getrandbits(8) for _ in range(4)])


def main():
    iface, gw, kind, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    random.seed(kind)
    w = Wire(iface, gw)
    if kind == "dhcp-hlen":
        for htype in (0, 1, 6, 255):
            for hlen in range(256):
                dhcp_send(w, dhcp_message(w.mac, 1, htype, hlen))
    elif kind == "dhcp-starve":
        for _ in range(int(args[0])):
            m = random_mac()
            dhcp_send(w, dhcp_message(m, 1), src_mac=m)
    elif kind == "dhcp-spoof":
        ip, victim = args[0], mac_bytes(args[1])
        opt = bytes([50, 4]) + ip_bytes(ip)
        dhcp_send(w, dhcp_message(victim, 4, options=opt))
        dhcp_send(w, dhcp_message(victim, 7, ciaddr=ip), src=ip)
    elif kind == "ip-options":
        src, dst, n = args[0], args[1], int(args[2])
        for i in range(n):
            words = random.randrange(1, 11)
            opts = bytes(random.getrandbits(8) for _ in range(4 * words))
            if i % 3 == 0:  # a record-route option whose pointer lies
                opts = bytes([7, 4 * words - 1, random.getrandbits(8)]) + opts[3:]
            w.ip(ipv4(src, dst, 17, udp(src, dst, 1000, 9, b"options"), options=opts))
    elif kind == "ihl-lies":
        src, dst, n = args[0], args[1], int(args[2])
        for i in range(n):
            body = udp(src, dst, 1000, 9, bytes(random.getrandbits(8) for _ in range(i % 64)))
            ihl = random.randrange(0, 16)
            total = random.choice([None, random.randrange(0, 65536)])
            w.ip(ipv4(src, dst, 17, body, ihl=ihl, total=total))
    elif kind == "icmp-quotes":
        src, dst, n = args[0], args[1], int(args[2])
        for i in range(n):
            quote = ipv4(dst, "203.0.113.11", 17, udp(dst, "203.0.113.11", 16384, 53, b"q" * 8))
            quote = bytes([0x40 | (i % 16)]) + quote[1:]
            quote = quote[:random.randrange(0, len(quote) + 1)]
            kind_code = random.choice([(3, 3), (3, 4), (11, 0), (12, 0), (5, 1), (4, 0)])
            w.ip(ipv4(src, dst, 1, icmp(kind_code[0], kind_code[1], b"\0" * 4, quote)))
    elif kind == "frag-storm":
        src, dst, n = args[0], args[1], int(args[2])
        for i in range(n):
            body = udp(src, dst, 1000, 7, b"f" * 2000)[:1480]
            w.ip(ipv4(src, dst, 17, body, ident=i & 0xFFFF, frag=0x2000))
    elif kind == "arp-spray":
        for i in range(int(args[0])):
            spa = struct.pack("!I", 0xAC100000 + i)  # 172.16.0.0/12, off every lab subnet
            sha = random_mac()
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + spa + b"\0" * 6 + ip_bytes("0.0.0.0")
            w.frame(b"\xff" * 6, sha, 0x0806, arp)
    elif kind == "sweep":
        src, net = args[0], args[1].rsplit(".", 1)[0]
        for last in range(1, 255):
            dst = "%s.%d" % (net, last)
            w.ip(ipv4(src, dst, 17, udp(src, dst, 1000, 9, b"sweep")))
    elif kind == "spray":
        import time
        src, sport, dst, until = args[0], int(args[1]), args[2], time.time() + float(args[3])
        while time.time() < until:
            for port in range(1024, 65536):
                w.ip(ipv4(src, dst, 17, udp(src, dst, sport, port, b"\xff\xfe garbage")))
                if port % 100 == 0:
                    time.sleep(0.01)  # about 10,000 a second: a spray, not a flood
                    if time.time() >= until:
                        break
    elif kind == "udp-from":
        src, dst, dport, n = args[0], args[2], int(args[3]), int(args[4])
        for i in range(n):
            sport = 10000 + i if args[1] == "seq" else int(args[1])
            query = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\3lab\4test\0\0\1\0\1"
            w.ip(ipv4(src, dst, 17, udp(src, dst, sport, dport, query)))
    elif kind == "ra6":
        prefix = ip6_bytes(args[0])
        src, dst, all_nodes = "fe80::bad", "ff02::1", b"\x33\x33\0\0\0\1"
        body = struct.pack("!BBHII", 64, 0, 1800, 0, 0)
        body += struct.pack("!BB", 1, 1) + w.mac
        body += struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + prefix
        ra = icmp6(src, dst, 134, 0, body)
        w.ip6(ipv6(src, dst, 58, ra, hop=255), dst=all_nodes)
        opts = struct.pack("!BBBB", 58, 0, 1, 4) + b"\0" * 4
        w.ip6(ipv6(src, dst, 60, opts + ra, hop=255), dst=all_nodes)
    elif kind == "na6":
        src, target = args[0], args[1]
        body = struct.pack("!I", 0x20000000) + ip6_bytes(target) + struct.pack("!BB", 2, 1) + w.mac
        na = icmp6(src, "ff02::1", 136, 0, body)
        w.ip6(ipv6(src, "ff02::1", 58, na, hop=255), dst=b"\x33\x33\0\0\0\1")
    elif kind == "ext-chain6":
        src, dst, n = args[0], args[1], int(args[2])
        payload = udp6(src, dst, 1000, 9, b"chain")
        for i in range(n):
            nh = 17 if i == 0 else 60
            payload = struct.pack("!BBBB", nh, 0, 1, 4) + b"\0" * 4 + payload
        w.ip6(ipv6(src, dst, 60 if n else 17, payload))
    elif kind == "tiny-frag6":
        src, dst = args[0], args[1]
        u = udp6(src, dst, 1000, 9, b"x" * 64)
        # Fragment header (offset 0, M set), then a destination-options
        # header whose length runs past the packet: no UDP header here.
        frag = struct.pack("!BBHI", 60, 0, 1, 0x1234)
        opts = struct.pack("!BBBB", 17, 30, 1, 4) + b"\0" * 4
        w.ip6(ipv6(src, dst, 44, frag + opts))
        w.ip6(ipv6(src, dst, 44, struct.pack("!BBHI", 60, 0, 8 * 31, 0x1234) + u))
    else:
        sys.exit("unknown kind " + kind)
    print("sent %d" % w.sent)


if __name__ == "__main__":
    main()
