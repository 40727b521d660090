"""Rendering and view-embedding throughput on this machine: the two stages of an index build that a GPU speeds up.

    .venv/bin/python benchmarks/render_embed.py ../shared/data/ikea-pix3d-dev/pool
    .venv/bin/python benchmarks/render_embed.py POOL --models 40 --sizes 160 224 --repeat 25

Loads the first --models meshes (model.obj under POOL/<category>/<model>/), then per image side: milliseconds per view
of the densest of them (grey + mask, 12 views, five passes after a warm one), models per second over all of them
(12 grey views each, meshes already loaded), and shapes per second through the ImageNet-initialised Lite0 view branch
(PyTorch under autocast, batches of 32 shapes; the views are repeated --repeat times on a GPU to time a longer run).
Prints the GL renderer, so a GPU run shows whether pyrender drew on the NVIDIA driver or on Mesa's llvmpipe.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from photo2cad.device import place_network
from photo2cad.models.config import AMVMLConfig
from photo2cad.models.embedding import embed_view_sets
from photo2cad.shapes.meshes import load_mesh, normalise
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.pretrained import new_amvml

VIEWS = 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pool", type=Path, help="a pool folder: <category>/<model>/model.obj")
    parser.add_argument("--models", type=int, default=40, help="how many meshes to load (default 40)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[160, 224], help="image sides in pixels")
    parser.add_argument("--repeat", type=int, default=25, help="times the views are embedded over on a GPU")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0) if cuda else 'CPU'}")
    meshes = [normalise(load_mesh(path)) for path in sorted(args.pool.glob("*/*/model.obj"))[: args.models]]
    if not meshes:
        raise SystemExit(f"no */*/model.obj under {args.pool}")
    densest = max(meshes, key=lambda mesh: len(mesh.faces))
    for size in args.sizes:
        with Renderer(RenderSettings(num_views=VIEWS, embed_size=size, framing="object")) as renderer:
            print(f"{size} px: PyOpenGL platform {renderer.platform}, GL renderer {renderer.gl_renderer}")
            renderer.render(densest, size, passes=("grey", "mask"))  # the first draw compiles the shaders
            start = time.perf_counter()
            for _ in range(5):
                renderer.render(densest, size, passes=("grey", "mask"))
            per_view_ms = (time.perf_counter() - start) / (5 * VIEWS) * 1000
            print(f"  render: {per_view_ms:.2f} ms per view of a {len(densest.faces)}-face mesh")
            start = time.perf_counter()
            grey = np.stack([renderer.render(mesh, size, passes=("grey",)).grey for mesh in meshes])
            print(f"  render: {len(meshes) / (time.perf_counter() - start):.1f} models/s ({VIEWS} views each)")
        model = new_amvml(AMVMLConfig(num_categories=7, backbone="efficientnet_lite0", image_size=size))
        model = place_network(model, device).eval()  # as index builds run it
        shapes = np.concatenate([grey] * (args.repeat if cuda else 1))
        embed_view_sets(model, shapes[:32], device, batch_shapes=32)  # warm: kernels chosen, weights on the device
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        embed_view_sets(model, shapes, device, batch_shapes=32)
        if cuda:
            torch.cuda.synchronize()
        print(f"  embed: {len(shapes) / (time.perf_counter() - start):.0f} shapes/s ({VIEWS} views each, {device})")


if __name__ == "__main__":
    main()
