"""The reverse proxy of docker/ (issue #12, item 1): Debian's nginx with docker/nginx/photo2cad.conf.template in front
of a real `photo2cad serve` on loopback. Silent and slow clients are cut off by nginx, large bodies refused before
they reach the app, and requests pass through.

Needs Debian's nginx (`apt-get install nginx-light`, which scripts/install.sh does); skipped, saying so, without it.
"""

from __future__ import annotations

import shutil
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import LiveServer, ServedIndex, free_port, live_server, rendered_photo

TEMPLATE = Path(__file__).resolve().parents[1] / "docker" / "nginx" / "photo2cad.conf.template"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
HEADER_TIMEOUT_S = 2


@dataclass(frozen=True)
class Proxy:
    url: str
    port: int


def nginx_config(workdir: Path, upstream: str, port: int) -> Path:
    """The template filled in as the nginx image's entrypoint does, inside a main config that keeps every file of
    nginx (pid, logs, temporary bodies) in `workdir`."""
    values = {
        "PHOTO2CAD_UPSTREAM": upstream,
        "PHOTO2CAD_PROXY_LISTEN": f"127.0.0.1:{port}",
        "PHOTO2CAD_PROXY_HEADER_TIMEOUT": f"{HEADER_TIMEOUT_S}s",
        "PHOTO2CAD_PROXY_BODY_TIMEOUT": "2s",
        "PHOTO2CAD_PROXY_MAX_BODY": "1m",
    }
    # safe_substitute, like envsubst with a list of names: nginx's own $host and friends stay as they are.
    server = string.Template(TEMPLATE.read_text()).safe_substitute(values)
    (workdir / "photo2cad.conf").write_text(server)
    main = workdir / "nginx.conf"
    temp_paths = "".join(
        f"  {kind}_temp_path {workdir / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main.write_text(
        f"pid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;\ndaemon off;\nevents {{}}\nhttp {{\n"
        f"  access_log off;\n{temp_paths}  include {workdir}/photo2cad.conf;\n}}\n"
    )
    return main


@pytest.fixture(scope="module")
def server(served_index: ServedIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light)")
    with live_server(served_index.root, tmp_path_factory.mktemp("server") / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def proxy(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    assert NGINX is not None
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_port()
    config = nginx_config(workdir, f"127.0.0.1:{server.port}", port)
    checked = subprocess.run([NGINX, "-t", "-c", str(config), "-p", str(workdir)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([NGINX, "-c", str(config), "-p", str(workdir)], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        yield Proxy(url, port)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_config_template_passes_nginx_s_own_check(proxy: Proxy) -> None:
    assert httpx.get(f"{proxy.url}/healthz", timeout=5).json() == {"status": "ok"}


def test_retrieval_passes_through_the_proxy(proxy: Proxy, served_index: ServedIndex) -> None:
    files = {"photo": ("render.jpg", rendered_photo(served_index.root), "image/jpeg")}
    response = httpx.post(f"{proxy.url}/retrieve", files=files, data={"top_k": "2"}, timeout=30)
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    assert response.headers["x-content-type-options"] == "nosniff"  # the app's headers come through


def test_a_body_over_the_proxy_s_limit_is_413_in_json_before_it_reaches_the_app(proxy: Proxy) -> None:
    files = {"photo": ("big.jpg", b"\xff\xd8" + bytes(2 * 2**20), "image/jpeg")}
    response = httpx.post(f"{proxy.url}/retrieve", files=files, timeout=30)
    assert response.status_code == 413 and "larger than the proxy allows (1m)" in response.json()["detail"]


def test_the_proxy_closes_a_connection_that_sends_no_headers(proxy: Proxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port)) as silent:
        silent.settimeout(5 * HEADER_TIMEOUT_S)
        started = time.monotonic()
        answer = b""
        while chunk := silent.recv(4096):
            answer += chunk
        assert time.monotonic() - started < 3 * HEADER_TIMEOUT_S


def test_idle_connections_to_the_proxy_leave_health_answering(proxy: Proxy) -> None:
    idle = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(100)]
    try:
        started = time.monotonic()
        assert httpx.get(f"{proxy.url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0
    finally:
        for connection in idle:
            connection.close()
