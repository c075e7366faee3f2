#!/usr/bin/env python3
"""Clients for the service-host tests.

  svc_client.py udp-echo HOST PORT       -> "ok N" after N datagrams of many
                                            sizes came back unchanged
  svc_client.py tcp-echo HOST PORT BYTES -> "ok BYTES" after BYTES went there
                                            and back, the client's half closed
                                            first and the echo's FIN read
  svc_client.py udp-closed HOST PORT     -> "refused" when an ICMP port
                                            unreachable comes back
  svc_client.py pattern FILE SIZE        -> "ok" if FILE holds SIZE bytes of
                                            the /bytes pattern (i % 251)
  svc_client.py never-read HOST PORT N   -> opens N connections asking for
                                            1 GiB each, prints "open N", then
                                            never reads; exits on stdin EOF
  svc_client.py hold HOST PORT N         -> opens N keep-alive connections,
                                            one request each, prints "held N",
                                            holds them until stdin closes
  svc_client.py idle HOST PORT           -> opens one keep-alive connection,
                                            prints "open", then "eof" when
                                            the server closes it
"""
import socket
import sys
import threading

PERIOD = 251


def udp_echo(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    sizes = [0, 1, 100, 512, 1400, 1472, 4000, 8000, 20000] * 5
    for i, n in enumerate(sizes):
        data = bytes((i + j) % 256 for j in range(n))
        s.sendto(data, (host, port))
        back, _ = s.recvfrom(65536)
        assert back == data, f"datagram {i} of {n} bytes came back as {len(back)}"
    print(f"ok {len(sizes)}")


def tcp_echo(host, port, total):
    s = socket.create_connection((host, port), timeout=10)
    data = bytes((i * 7) % 256 for i in range(total))
    got = bytearray()

    def reader():
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return
            got.extend(chunk)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(30)
    assert not t.is_alive(), "no FIN from the echo service"
    assert bytes(got) == data, f"{len(got)} of {total} bytes came back intact"
    print(f"ok {total}")


def udp_closed(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((host, port))
    s.send(b"anyone?")
    try:
        s.recv(100)
        print("answered")
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("silence")


def pattern(path, size):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != size:
        print(f"size {len(data)}")
        return
    expected = bytes(i % PERIOD for i in range(PERIOD)) * (size // PERIOD + 1)
    print("ok" if data == expected[:size] else "corrupt")


def never_read(host, port, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((host, port))
        s.sendall(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    print(f"open {n}", flush=True)
    sys.stdin.read()


def idle(host, port):
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(65536)
    print("open", flush=True)
    s.settimeout(30)
    try:
        while s.recv(65536):
            pass
        print("eof", flush=True)
    except ConnectionResetError:
        print("reset", flush=True)


def hold(host, port, n):
    import asyncio
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))

    async def one():
        r, w = await asyncio.open_connection(host, port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await w.drain()
        await r.readuntil(b"\r\n\r\n")
        return r, w

    async def main():
        conns = []
        for i in range(0, n, 500):
            conns += await asyncio.gather(*(one() for _ in range(min(500, n - i))))
        print(f"held {len(conns)}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "udp-echo":
        udp_echo(args[0], int(args[1]))
    elif cmd == "tcp-echo":
        tcp_echo(args[0], int(args[1]), int(args[2]))
    elif cmd == "udp-closed":
        udp_closed(args[0], int(args[1]))
    elif cmd == "pattern":
        pattern(args[0], int(args[1]))
    elif cmd == "never-read":
        never_read(args[0], int(args[1]), int(args[2]))
    elif cmd == "hold":
        hold(args[0], int(args[1]), int(args[2]))
    elif cmd == "idle":
        idle(args[0], int(args[1]))
    else:
        sys.exit(f"unknown command {cmd}")
