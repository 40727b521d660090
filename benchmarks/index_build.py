"""Index build throughput: models/s and views/s, split into load, render, embed and index stages.

    python benchmarks/index_build.py --shapes 100 --faces 20000 --backbone resnet34 --image-size 224

Makes a pool of `--shapes` random meshes with about `--faces` faces each (perturbed spheres, written as .ply), an
untrained checkpoint of the chosen backbone (speed does not depend on training), builds the index with the local
runner and prints the figures. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from photo2cad.indexer import BuildRequest, build_index
from photo2cad.models import AMVML, AMVMLConfig
from photo2cad.shapes.gl import select_gl_platform
from photo2cad.shapes.settings import RenderSettings
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=int, default=50)
    parser.add_argument("--faces", type=int, default=20000)
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--backbone", default="resnet34", choices=["resnet34", "efficientnet_lite0"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--index", default="exact", choices=["exact", "ivf", "hnsw"])
    args = parser.parse_args()
    select_gl_platform()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        make_pool(root / "pool", args.shapes, args.faces, seed=0)
        print(f"made {args.shapes} meshes of ~{args.faces} faces in {time.perf_counter() - started:.1f} s")
        config = AMVMLConfig(backbone=args.backbone, pretrained=False, image_size=args.image_size, num_views=args.views)
        model = AMVML(config)
        weights = save_checkpoint(root / "w.safetensors", model, header_for(model, training_data="benchmark"))
        request = BuildRequest(
            pool=root / "pool",
            out=root / "index",
            weights=weights,
            render=RenderSettings(num_views=args.views, embed_size=args.image_size),
            index_kind=args.index,  # type: ignore[arg-type]
            batch_size=args.batch_size,
            device=args.device,
            progress=False,
        )
        report = build_index(request)
    t = report.times
    shapes, views = t.counts["shapes"], t.counts["views"]
    device = "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    print(f"device {device}, torch threads {torch.get_num_threads()}, backbone {args.backbone}, {args.image_size} px")
    print(f"{'stage':8s} {'seconds':>8s} {'models/s':>9s} {'views/s':>8s}")
    for stage, seconds in (("load", t.load), ("render", t.render), ("embed", t.embed), ("index", t.index)):
        print(f"{stage:8s} {seconds:8.2f} {shapes / max(seconds, 1e-9):9.2f} {views / max(seconds, 1e-9):8.1f}")
    total = report.seconds
    print(f"{'total':8s} {total:8.2f} {shapes / total:9.2f} {views / total:8.1f}")


if __name__ == "__main__":
    main()
