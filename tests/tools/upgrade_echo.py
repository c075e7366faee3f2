#!/usr/bin/env python3
"""A backend that accepts any Upgrade (as a WebSocket server does) and then
echoes bytes, and a client for it; for the balancer's pass-through test.

  upgrade_echo.py serve ADDR PORT      serve until killed
  upgrade_echo.py ask HOST PORT        upgrade, send "ping", print the echo
"""
import socket
import sys
import threading


def head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(4096)
        if not more:
            return None, b""
        data += more
    h, rest = data.split(b"\r\n\r\n", 1)
    return h.decode("latin-1"), rest


def serve_one(conn):
    with conn:
        h, rest = head(conn)
        if h is None or "upgrade: echo" not in h.lower():
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
        if rest:
            conn.sendall(rest)
        while True:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)


def serve(addr, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def ask(host, port):
    c = socket.create_connection((host, port), timeout=5)
    c.sendall(b"GET /chat HTTP/1.1\r\nHost: lb\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
    h, rest = head(c)
    print(h.splitlines()[0])
    c.sendall(b"ping")
    got = rest
    while len(got) < 4:
        got += c.recv(4096)
    print(got.decode())


if __name__ == "__main__":
    {"serve": serve, "ask": ask}[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
