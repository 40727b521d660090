"""Idle and slow connections against `photo2cad serve` (issue #12, item 1): does /healthz still answer at once?

    .venv/bin/python benchmarks/service_lockout.py                         # 200 idle + 50 slow-header connections
    .venv/bin/python benchmarks/service_lockout.py --limit-concurrency 64  # the old default, for comparison

Opens N TCP connections that never send a byte and M that send their headers a byte every second, then times 20
GET /healthz and 5 POST /retrieve of a small photo, each on a fresh connection; then waits past the header timeout
and counts how many of the idle connections the server has closed. Target (issue #12): /healthz within 1 s while 200
idle connections are open. The server runs as a subprocess on 127.0.0.1 only, with the tests' tiny model.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_load import build_test_index, free_port, query_photo, start_server  # noqa: E402


def drip_headers(port: int, stop: threading.Event) -> None:
    """A slowloris client: one header byte a second, for as long as the server keeps the connection."""
    try:
        with socket.create_connection(("127.0.0.1", port)) as connection:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000:
                if stop.is_set():
                    return
                connection.sendall(bytes([byte]))
                time.sleep(1.0)
    except OSError:
        return  # closed by the server


def closed_by_server(connection: socket.socket) -> bool:
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def timed(call: object, count: int) -> tuple[list[float], list[str]]:
    latencies, failures = [], []
    for _ in range(count):
        started = time.perf_counter()
        try:
            response = call()  # type: ignore[operator]
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:80]}")
        except httpx.HTTPError as err:
            failures.append(f"{type(err).__name__}: {err}")
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, failures


def summary(name: str, latencies: list[float], failures: list[str]) -> None:
    values = np.array(latencies)
    print(
        f"  {name}: {len(values) - len(failures)}/{len(values)} answered 200; p50 {np.percentile(values, 50):.1f} ms, "
        f"max {values.max():.1f} ms" + (f"; failures e.g. {failures[0]}" if failures else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=200, help="connections that never send a byte")
    parser.add_argument("--slow", type=int, default=50, help="connections that send a header byte a second")
    parser.add_argument("--header-timeout", type=float, default=10.0, help="PHOTO2CAD_HEADER_TIMEOUT_SECONDS")
    parser.add_argument("--limit-concurrency", type=int, help="PHOTO2CAD_LIMIT_CONCURRENCY (default: none)")
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPUs, load average before: {[round(x, 2) for x in os.getloadavg()]}")
    with tempfile.TemporaryDirectory(prefix="photo2cad-lockout-") as tmp:
        print("building an index of a small catalogue with the tiny model ...", flush=True)
        index, weights = build_test_index(Path(tmp), "tiny")
        env = {"PHOTO2CAD_HEADER_TIMEOUT_SECONDS": str(args.header_timeout)}
        if args.limit_concurrency is not None:
            env["PHOTO2CAD_LIMIT_CONCURRENCY"] = str(args.limit_concurrency)
        port = free_port()
        server = start_server(index, weights, port, env)
        url = f"http://127.0.0.1:{port}"
        photo = query_photo(index, None)
        stop = threading.Event()
        idle: list[socket.socket] = []
        try:
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.idle)]
            drippers = [threading.Thread(target=drip_headers, args=(port, stop), daemon=True) for _ in range(args.slow)]
            for thread in drippers:
                thread.start()
            time.sleep(1.0)
            print(f"{args.idle} idle and {args.slow} slow-header connections open; settings {env}")
            summary("GET /healthz", *timed(lambda: httpx.get(f"{url}/healthz", timeout=10), 20))
            files = {"photo": ("small.jpg", photo, "image/jpeg")}
            summary("POST /retrieve", *timed(lambda: httpx.post(f"{url}/retrieve", files=files, timeout=30), 5))
            wait = args.header_timeout + 2
            time.sleep(wait)
            closed = sum(closed_by_server(connection) for connection in idle)
            alive = sum(thread.is_alive() for thread in drippers)
            print(
                f"  after {wait:.0f} s: {closed}/{len(idle)} idle connections closed by the server; "
                f"{alive}/{len(drippers)} slow-header clients still connected"
            )
        finally:
            stop.set()
            for connection in idle:
                connection.close()
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    print(f"load average after: {[round(x, 2) for x in os.getloadavg()]}")


if __name__ == "__main__":
    main()
