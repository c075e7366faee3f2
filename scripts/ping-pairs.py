#!/usr/bin/env python3
"""Echo requests between many pairs of namespaces at once, from one process.

    ping-pairs.py PAIRS_FILE [TIMEOUT_S]

Each line of PAIRS_FILE is `NAMESPACE ADDRESS` (IPv4 or IPv6). For every
line, a raw ICMP socket is opened inside the namespace (setns, so no
process per ping: what is timed is the network, not `ip netns exec`), an
echo request goes to the address, and unanswered pairs are asked again
every 200 ms. Prints the seconds until every pair answered, or `timeout N`
with N the pairs still silent after TIMEOUT_S (default 30)."""

import ctypes
import os
import resource
import select
import socket
import struct
import sys
import time


LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def setns(fd):
    if LIBC.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def request(v6, ident, seq):
    kind = 128 if v6 else 8
    body = b"scratchnet pairs"
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        return head + body  # the kernel fills in an ICMPv6 checksum
    return struct.pack("!BBHHH", kind, 0, checksum(head + body), ident, seq) + body


def main():
    lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    # One socket per namespace and family; a pair is known by its echo
    # identifier.
    sockets = {}
    waiting = {}  # ident -> (socket, address, v6)
    for n, (ns, addr) in enumerate(lines):
        v6 = ":" in addr
        if (ns, v6) not in sockets:
            fd = os.open("/run/netns/" + ns, os.O_RDONLY)
            setns(fd)
            os.close(fd)
            if v6:
                s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            s.setblocking(False)
            sockets[(ns, v6)] = s
        waiting[n & 0xFFFF] = (sockets[(ns, v6)], addr, v6)
    setns(home)
    by_fd = {s.fileno(): (s, v6) for (_, v6), s in sockets.items()}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    start = time.monotonic()
    seq = 0
    while waiting:
        now = time.monotonic()
        if now - start > timeout:
            print("timeout %d" % len(waiting))
            return
        seq += 1
        for ident, (s, addr, v6) in waiting.items():
            try:
                s.sendto(request(v6, ident, seq), (addr, 0))
            except OSError:
                pass  # no route yet, a neighbour not yet resolved: again later
        until = now + 0.2
        while waiting and time.monotonic() < until:
            for fd, _ in poller.poll(max(0.0, until - time.monotonic())):
                s, v6 = by_fd[fd]
                while True:
                    try:
                        data = s.recv(2048)
                    except BlockingIOError:
                        break
                    icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
                    if len(icmp) >= 8:
                        kind, _, _, got, _ = struct.unpack("!BBHHH", icmp[:8])
                        if kind == (129 if v6 else 0):
                            waiting.pop(got, None)
    print("%.2f" % (time.monotonic() - start))


main()
