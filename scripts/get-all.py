#!/usr/bin/env python3
"""An HTTP GET of / from every address in a file, 64 at a time.

    get-all.py ADDRESS_FILE

Run it inside the client's namespace (ip netns exec). Prints the seconds
until every address answered 200, and how many did not (a refusal, a
timeout of 5 s or another status), as `SECONDS FAILED`."""

import http.client
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def get(address):
    try:
        conn = http.client.HTTPConnection(address, 80, timeout=5)
        conn.request("GET", "/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def main():
    addresses = open(sys.argv[1]).read().split()
    start = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        failed = sum(not ok for ok in pool.map(get, addresses))
    print("%.2f %d" % (time.monotonic() - start, failed))


main()
