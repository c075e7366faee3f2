#!/usr/bin/env python3
"""TCP peer for the NAT tests: a server that tells each client the address
it sees, and clients that make many short connections.

  tcp_peer.py serve PORT
  tcp_peer.py sequential HOST PORT N   -> prints "ok N", the addresses seen
                                          and the seconds it took
  tcp_peer.py concurrent HOST PORT N   -> same, all N connections at once
"""
import asyncio
import sys
import time


async def serve(port):
    async def handle(reader, writer):
        host, peer_port = writer.get_extra_info("peername")[:2]
        writer.write(f"{host}:{peer_port}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def one(host, port):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return line.decode().strip()


async def clients(host, port, n, concurrent):
    start = time.monotonic()
    if concurrent:
        results = await asyncio.gather(*(one(host, port) for _ in range(n)), return_exceptions=True)
    else:
        results = []
        for _ in range(n):
            try:
                results.append(await one(host, port))
            except Exception as e:  # counted, not fatal
                results.append(e)
    ok = [r for r in results if isinstance(r, str) and r]
    seen = sorted({r.rsplit(":", 1)[0] for r in ok})
    print(f"ok {len(ok)}")
    print("seen " + " ".join(seen))
    print(f"elapsed {time.monotonic() - start:.3f}")


def main():
    mode = sys.argv[1]
    if mode == "serve":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        asyncio.run(clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), mode == "concurrent"))


if __name__ == "__main__":
    main()
