"""Index build throughput: seconds per model, split into load, simplify, normalise, render, embed and index stages.

    python benchmarks/index_build.py --pool ../shared/data/ikea-pix3d-dev/pool    # the dev pool, bundled weights
    python benchmarks/index_build.py --pool /tmp/ikea-heavy/pool --shapes 40       # the heavy pool (heavy_pool.py)
    python benchmarks/index_build.py --pool POOL --max-faces 0 --runtime torch --no-pipeline  # as main built
    python benchmarks/index_build.py --synthetic 50 --faces 20000 --backbone resnet34 --image-size 224
    python benchmarks/index_build.py --pool ../shared/data/ikea-pix3d-dev/pool --shapes 60 --ray   # Ray Data, local

With --pool it indexes (the first --shapes shapes of) a real pool with the bundled weights (or --weights): the
figures of a user's build. With --synthetic N it makes N random meshes of about --faces faces (perturbed spheres)
and an untrained checkpoint of the chosen backbone (speed does not depend on training). Nothing is downloaded. The
device is chosen at run time (--device auto: the GPU when there is one), so the same command measures a GPU.

Stages run on two threads (rendering the next batch while the network embeds this one) unless --no-pipeline: the
per-stage seconds are each thread's own, and their sum exceeds the wall time by what overlapped.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from photo2cad.indexer import BuildRequest, build_index
from photo2cad.indexer.mapper import StageTimes
from photo2cad.indexer.runner import DEFAULT_MAX_FACES, local_distributor
from photo2cad.indexer.vector_search import SearchConfig
from photo2cad.models import AMVML, AMVMLConfig
from photo2cad.shapes.gl import select_gl_platform
from photo2cad.shapes.pool import scan_pool
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings, render_settings_for
from photo2cad.weights import read_header, resolve_amvml
from photo2cad.weights.checkpoint import header_for, save_checkpoint


def make_pool(root: Path, shapes: int, faces: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    subdivisions = max(1, int(round(np.log(faces / 20) / np.log(4))))
    for i in range(shapes):
        mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
        bumps = 1 + 0.3 * np.sin(mesh.vertices @ rng.normal(size=(3, 4)) * 3).sum(axis=1, keepdims=True) / 4
        mesh.vertices = mesh.vertices * bumps * rng.uniform(0.5, 1.5, size=3)
        (root / "bench").mkdir(parents=True, exist_ok=True)
        mesh.export(root / "bench" / f"shape_{i:05d}.ply")


def serial_distributor(todo, request, model, device):  # type: ignore[no-untyped-def]
    """main's loop before the pipeline: render a batch, then embed it, on one thread."""
    from photo2cad.indexer.mapper import MeshPreparation, embed_shapes, render_shapes
    from photo2cad.indexer.shards import Shard
    from photo2cad.models.onnx_views import onnx_view_engine

    engine = onnx_view_engine(model, device) if request.cpu_runtime == "onnxruntime" else None
    preparation = MeshPreparation.for_views(request.max_faces, request.render)
    with Renderer(request.render) as renderer:
        for start in range(0, len(todo), request.batch_size):
            times = StageTimes()
            rendered, failed = render_shapes(
                todo[start : start + request.batch_size], renderer, request.render, times, preparation
            )
            yield Shard(embed_shapes(rendered, model, device, times, engine), failed), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pool", type=Path, help="a real pool folder")
    source.add_argument("--synthetic", type=int, metavar="N", help="make N random meshes instead")
    parser.add_argument("--shapes", type=int, default=None, help="index only the first N shapes of --pool")
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint for --pool (default: bundled)")
    parser.add_argument("--faces", type=int, default=20000, help="faces per synthetic mesh")
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=160, help="synthetic: the network's input size")
    parser.add_argument("--backbone", default="efficientnet_lite0", choices=["resnet34", "efficientnet_lite0"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--index", default="exact", choices=["exact", "ivf", "hnsw"])
    parser.add_argument("--max-faces", type=int, default=DEFAULT_MAX_FACES, help="0: draw every face")
    parser.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "torch"], help="CPU embedding")
    parser.add_argument("--no-pipeline", action="store_true", help="render and embed one after the other")
    parser.add_argument("--ray", action="store_true", help="Ray Data on a local Ray: one render and one embed actor")
    parser.add_argument("--no-mesh-cache", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="build twice into one folder, report the second")
    parser.add_argument("--keep", type=Path, default=None, help="build into this folder and keep it")
    args = parser.parse_args()
    select_gl_platform()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.synthetic:
            started = time.perf_counter()
            make_pool(root / "pool", args.synthetic, args.faces, seed=0)
            print(f"made {args.synthetic} meshes of ~{args.faces} faces in {time.perf_counter() - started:.1f} s")
            config = AMVMLConfig(
                backbone=args.backbone, pretrained=False, image_size=args.image_size, num_views=args.views
            )
            model = AMVML(config)
            weights = save_checkpoint(root / "w.safetensors", model, header_for(model, training_data="benchmark"))
            pool, render = root / "pool", RenderSettings(num_views=args.views, embed_size=args.image_size)
            shapes = None
        else:
            weights = resolve_amvml(args.weights)
            pool, render = args.pool, render_settings_for(read_header(weights), num_views=args.views)
            shapes = scan_pool(pool).shapes[: args.shapes]
        request = BuildRequest(
            pool=pool,
            out=args.keep or root / "index",
            weights=weights,
            render=render,
            search=SearchConfig(kind=args.index),
            batch_size=args.batch_size,
            device=args.device,
            progress=False,
            shapes=shapes,
            max_faces=args.max_faces or None,
            mesh_cache=not args.no_mesh_cache,
            cpu_runtime=args.runtime,
            reuse=False,
            resume=False,
        )
        distributor = serial_distributor if args.no_pipeline else local_distributor
        if args.ray:
            from photo2cad.indexer.distributed import RayOptions, ray_distributor

            distributor = ray_distributor(RayOptions(render_workers=1, embed_workers=1))
        report = build_index(request, distributor=distributor)
        if args.rebuild:  # the mesh cache is warm now: what a rebuild with other weights or views costs
            report = build_index(request, distributor=distributor)
    t = report.times
    shapes_done, views = t.counts["shapes"], t.counts["views"]
    device = "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    faces_in = t.counts.get("faces_in", 0) / max(shapes_done, 1)
    faces_drawn = t.counts.get("faces_drawn", 0) / max(shapes_done, 1)
    print(
        f"machine {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, device "
        f"{device}; {args.backbone if args.synthetic else 'weights ' + str(weights.name)}, {render.embed_size} px, "
        f"{render.num_views} views, framing {render.framing}"
    )
    print(
        f"{shapes_done} models, mean faces {faces_in:,.0f} in the files, {faces_drawn:,.0f} drawn; "
        f"max_faces {args.max_faces or 'none'}, runtime {args.runtime}, "
        f"{'Ray' if args.ray else 'serial' if args.no_pipeline else 'pipelined'}"
        f"{', rebuild (mesh cache warm)' if args.rebuild else ''}"
    )
    print(f"{'stage':9s} {'seconds':>8s} {'s/model':>8s} {'views/s':>8s}")
    for stage, seconds in t.as_dict().items():
        rate = f"{views / seconds:8.1f}" if seconds > 1e-3 else f"{'-':>8s}"
        print(f"{stage:9s} {seconds:8.2f} {seconds / max(shapes_done, 1):8.4f} {rate}")
    total = report.seconds
    print(f"{'wall':9s} {total:8.2f} {total / max(shapes_done, 1):8.4f} {views / total:8.1f}")


if __name__ == "__main__":
    main()
