"""HTTP below the routes (issue #12, items 1, 2 and 10): idle and slow clients cannot lock the service out, work is
admitted by what it costs, HEAD works wherever GET does, the docs work offline, and every answer is counted under
its route. The full-scale lock-out and memory-burst figures come from benchmarks/service_lockout.py and
benchmarks/service_burst.py (docs/service.md)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from photo2cad.service.admission import DecodeBudget, InFlightLimit
from photo2cad.service.app import create_app
from photo2cad.service.errors import Busy
from tests.helpers import LiveServer, ServedIndex, image_bytes, live_server, metric, settings_for

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def client(served_index: ServedIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(served_index.root))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server(served_index: ServedIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "PHOTO2CAD_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
        "PHOTO2CAD_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
    }
    with live_server(served_index.root, tmp_path_factory.mktemp("server") / "server.log", env) as running:
        yield running


def seconds_until_closed(connection: socket.socket, limit_s: float) -> float:
    started = time.monotonic()
    connection.settimeout(limit_s)
    received = b""
    try:
        while chunk := connection.recv(4096):
            received += chunk
    except TimeoutError:
        return float("inf")
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------------------- lock-out
def test_idle_connections_do_not_lock_health_out(server: LiveServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(80)]  # more than the old limit 64
    try:
        started = time.monotonic()
        response = httpx.get(f"{server.url}/healthz", timeout=5)
        assert response.status_code == 200 and time.monotonic() - started < 1.0
    finally:
        for connection in idle:
            connection.close()


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as silent:
        assert seconds_until_closed(silent, 10 * HEADER_TIMEOUT_S) < 5 * HEADER_TIMEOUT_S


def test_headers_sent_a_byte_at_a_time_are_cut_off_too(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        started = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:  # the server closed the connection: what should happen
            pass
        assert time.monotonic() - started < 5 * HEADER_TIMEOUT_S


def test_a_kept_alive_connection_gets_its_next_request_answered(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as keep_alive:
        assert keep_alive.get("/healthz").status_code == 200
        assert keep_alive.get("/readyz").status_code == 200


def test_a_body_that_stops_arriving_is_408(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as stalled:
        stalled.sendall(
            b"POST /retrieve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 100000\r\n\r\n--x\r\n"
        )
        stalled.settimeout(10 * BODY_TIMEOUT_S)
        answer = b""
        while chunk := stalled.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"PHOTO2CAD_BODY_TIMEOUT_SECONDS" in answer


def test_more_photos_than_the_in_flight_limit_get_503_with_retry_after(served_index: ServedIndex) -> None:
    with TestClient(create_app(settings_for(served_index.root, max_photos_in_flight=2))) as limited:
        photos = [("photos", (f"{i}.png", image_bytes((64, 64)), "image/png")) for i in range(3)]
        refused = limited.post("/retrieve/batch", files=photos)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "PHOTO2CAD_MAX_PHOTOS_IN_FLIGHT" in refused.json()["detail"]
        assert limited.post("/retrieve/batch", files=photos[:2]).status_code == 200


def test_the_in_flight_limit_counts_photos_not_connections() -> None:
    limit = InFlightLimit(2)
    with limit.admit(), limit.admit(), pytest.raises(Busy):
        limit.__class__.admit(limit).__enter__()
    with limit.admit(2):
        pass
    assert limit.in_flight == 0


# ---------------------------------------------------------------------------------------------------- decode budget
def test_a_small_photo_decodes_beside_a_huge_one_while_other_huge_ones_wait() -> None:
    async def scenario() -> list[str]:
        budget = DecodeBudget(48)
        order: list[str] = []
        release_first = asyncio.Event()

        async def decode(name: str, pixels: int, hold: asyncio.Event | None = None) -> None:
            async with budget.reserve(pixels):
                order.append(name)
                if hold is not None:
                    await hold.wait()

        first = asyncio.create_task(decode("huge-1", 40, release_first))
        await asyncio.sleep(0)
        others = [asyncio.create_task(decode(f"huge-{i}", 40)) for i in (2, 3)]
        await asyncio.sleep(0)
        await decode("small", 1)  # fits in what huge-1 leaves: runs at once
        assert order == ["huge-1", "small"]
        release_first.set()
        await asyncio.gather(first, *others)
        return order

    assert asyncio.run(scenario()) == ["huge-1", "small", "huge-2", "huge-3"]


def test_among_waiting_photos_the_smallest_goes_first() -> None:
    async def scenario() -> list[str]:
        budget = DecodeBudget(10)
        order: list[str] = []
        hold = asyncio.Event()

        async def decode(name: str, pixels: int) -> None:
            async with budget.reserve(pixels):
                order.append(name)
                if name == "blocker":
                    await hold.wait()

        blocker = asyncio.create_task(decode("blocker", 10))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(decode(name, size)) for name, size in (("big", 9), ("mid", 5), ("tiny", 1))]
        await asyncio.sleep(0)
        hold.set()
        await asyncio.gather(blocker, *waiting)
        return order

    assert asyncio.run(scenario()) == ["blocker", "tiny", "mid", "big"]


def test_a_caller_that_goes_away_while_waiting_leaves_the_budget_whole() -> None:
    async def scenario() -> int:
        budget = DecodeBudget(10)
        hold = asyncio.Event()

        async def decode(pixels: int) -> None:
            async with budget.reserve(pixels):
                await hold.wait()

        holder = asyncio.create_task(decode(10))
        await asyncio.sleep(0)
        gone = asyncio.create_task(decode(5))
        await asyncio.sleep(0)
        gone.cancel()
        hold.set()
        await holder
        async with budget.reserve(10):
            pass
        return budget.in_use

    assert asyncio.run(scenario()) == 0


def test_memory_is_handed_back_when_a_burst_of_large_decodes_ends() -> None:
    async def scenario() -> int:
        calls: list[int] = []
        budget = DecodeBudget(100, on_idle=lambda: calls.append(1), idle_after_pixels=50)
        async with budget.reserve(10):  # a small photo alone: nothing to hand back
            pass
        await asyncio.sleep(0.05)
        async with budget.reserve(60), budget.reserve(30):
            pass
        await asyncio.sleep(0.05)  # on_idle runs in a worker thread
        return len(calls)

    assert asyncio.run(scenario()) == 1


# ------------------------------------------------------------------------------------------ HEAD, docs, metrics
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/index", "/shapes/chair/box/thumbnail", "/", "/docs"])
def test_head_answers_wherever_get_does_without_a_body(client: TestClient, path: str) -> None:
    head, get = client.head(path), client.get(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]


def test_head_on_a_post_only_route_is_405(client: TestClient) -> None:
    assert client.head("/retrieve").status_code == 405


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_the_api_docs_load_their_scripts_from_the_service(client: TestClient, page: str, script: str) -> None:
    html = client.get(page).text
    assert "cdn" not in html.lower() and f"/static-offline-docs/{script}" in html
    bundle = client.get(f"/static-offline-docs/{script}")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


def test_a_413_from_the_body_limit_is_counted_under_retrieve(client: TestClient) -> None:
    key = {"route": "/retrieve", "method": "POST", "status": "413"}
    before = metric(client.get("/metrics").text, "photo2cad_http_requests_total", **key)
    huge = b"\xff\xd8" + bytes(21 * 2**20)
    assert client.post("/retrieve", files={"photo": ("a.jpg", huge, "image/jpeg")}).status_code == 413
    after = client.get("/metrics").text
    assert metric(after, "photo2cad_http_requests_total", **key) == before + 1


def test_a_path_no_route_knows_is_still_counted_as_unmatched(client: TestClient) -> None:
    key = {"route": "unmatched", "method": "GET", "status": "404"}
    before = metric(client.get("/metrics").text, "photo2cad_http_requests_total", **key)
    client.get("/no/such/route")
    assert metric(client.get("/metrics").text, "photo2cad_http_requests_total", **key) == before + 1


def test_the_default_bind_is_loopback_and_uvicorn_counts_no_connections(tmp_path: Path) -> None:
    from photo2cad.service.settings import ServiceSettings

    settings = ServiceSettings(index=tmp_path)
    assert settings.host == "127.0.0.1" and settings.limit_concurrency is None
