#!/usr/bin/env python3
"""Slow-client resistance of a running `pique serve`.

Opens N idle connections (half send nothing, half send an unfinished header block, as a
slowloris client does), then measures a normal request's latency on fresh connections while
they are open, and when the server closes them (the header read timeout).

    scripts/slow-clients.py http://127.0.0.1:8080 --idle 2000 --path /api/v1/shows/

Only for servers you run yourself on 127.0.0.1. Standard library only.
"""

import argparse
import http.client
import selectors
import socket
import statistics
import time
import urllib.parse


def timed_get(host, port, path):
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        status = resp.status
    except OSError as e:
        status = f"error: {e}"
    finally:
        conn.close()
    return (time.monotonic() - started) * 1000.0, status


def summary(samples):
    ms = sorted(s for s, _ in samples)
    statuses = sorted({str(st) for _, st in samples})
    return (
        f"n={len(ms)} p50={statistics.median(ms):.1f} ms max={ms[-1]:.1f} ms "
        f"statuses={','.join(statuses)}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="e.g. http://127.0.0.1:8080")
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--path", default="/api/v1/shows/")
    ap.add_argument("--watch", type=float, default=30.0, help="seconds to watch the idle ones")
    args = ap.parse_args()
    url = urllib.parse.urlparse(args.base)
    host, port = url.hostname, url.port or 80
    assert host in ("127.0.0.1", "localhost"), "local servers only"

    before = [timed_get(host, port, args.path) for _ in range(20)]
    print(f"before:  {summary(before)}")

    sel = selectors.DefaultSelector()
    opened = time.monotonic()
    idle = []
    for i in range(args.idle):
        s = socket.create_connection((host, port))
        if i % 2:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        idle.append(s)
    print(f"opened {args.idle} idle connections in {time.monotonic() - opened:.2f} s")

    during = []
    closed_after = []
    next_probe = time.monotonic()
    deadline = opened + args.watch
    while time.monotonic() < deadline and len(closed_after) < len(idle):
        for key, _ in sel.select(timeout=0.05):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed_after.append(time.monotonic() - opened)
                sel.unregister(key.fileobj)
                key.fileobj.close()
        if time.monotonic() >= next_probe and len(closed_after) < len(idle) / 2:
            during.append(timed_get(host, port, args.path))
            next_probe = time.monotonic() + 0.25
    if during:
        print(f"during:  {summary(during)}")
    if closed_after:
        closed_after.sort()
        print(
            f"closed by the server: {len(closed_after)} of {len(idle)}; "
            f"first after {closed_after[0]:.1f} s, median {statistics.median(closed_after):.1f} s, "
            f"last {closed_after[-1]:.1f} s"
        )
    else:
        print(f"closed by the server: 0 of {len(idle)} within {args.watch:.0f} s")
    for s in idle:
        try:
            s.close()
        except OSError:
            pass
    after = [timed_get(host, port, args.path) for _ in range(20)]
    print(f"after:   {summary(after)}")


if __name__ == "__main__":
    main()
