#!/usr/bin/env python3
"""Prints the seconds Debian's chromium (headless, through chromedriver's
WebDriver) takes from opening the web page at argv[1] until it has drawn
the lab and answers a click (its body's data-ready, set once drawn and
wired). Used by scripts/bench-web.sh."""
import json
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["value"]


def main():
    port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if call(port, "GET", "/status")["ready"]:
                    break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,850"]}}}}
        session = call(port, "POST", "/session", caps)["sessionId"]
        # A blank page first, so that the browser's own start is not counted.
        call(port, "POST", f"/session/{session}/url", {"url": "about:blank"})
        start = time.monotonic()
        call(port, "POST", f"/session/{session}/url", {"url": sys.argv[1]})
        script = {"script": "return document.body.dataset.ready === 'true'", "args": []}
        while not call(port, "POST", f"/session/{session}/execute/sync", script):
            if time.monotonic() - start > 60:
                print("timeout")
                return
            time.sleep(0.01)
        print(f"{time.monotonic() - start:.2f}")
        call(port, "DELETE", f"/session/{session}")
    finally:
        driver.kill()
        driver.wait()


main()
