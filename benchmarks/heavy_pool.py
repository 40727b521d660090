"""Make the heavy benchmark pool: the dev pool's meshes subdivided to about 100,000 faces each.

    python benchmarks/heavy_pool.py ../shared/data/ikea-pix3d-dev /tmp/ikea-heavy [--faces 100000]

Real catalogues hold meshes of 100k faces and more (Pix3D's non-IKEA models: 100k faces, 3.4 MB of OBJ each), while
the dev pool's IKEA models are light (median ~530 faces). This script writes OUT as a copy of the dataset folder
whose pool meshes are subdivided (largest faces first, each split into four at its edge midpoints) until they hold
`--faces` faces: the same surfaces, so views of a heavy mesh look like views of its light original, but an index
build must parse and draw 100k faces per model. Photos and photos.csv are linked, not copied, so
`photo2cad eval OUT --layout ikea-dev` evaluates on it. The output is benchmark data: never commit it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import trimesh

from photo2cad.shapes.meshes import load_mesh
from photo2cad.shapes.pool import scan_pool


def subdivide_to(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """Split the largest faces into four (midpoint subdivision) until the mesh holds about `faces` faces."""
    while len(mesh.faces) < faces:
        wanted = int(np.ceil((faces - len(mesh.faces)) / 3))  # each split face adds three
        largest = np.argsort(-mesh.area_faces)[: min(wanted, len(mesh.faces))]
        mesh = mesh.subdivide(face_index=largest)
    return mesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="the ikea-pix3d-dev folder (pool/, photos/, photos.csv)")
    parser.add_argument("out", type=Path, help="folder to write the heavy copy into")
    parser.add_argument("--faces", type=int, default=100_000, help="faces per mesh (default 100,000)")
    args = parser.parse_args()
    started = time.perf_counter()
    listing = scan_pool(args.dataset / "pool")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("photos", "photos.csv"):
        link = args.out / name
        if not link.exists() and (args.dataset / name).exists():
            os.symlink((args.dataset / name).resolve(), link)
    sizes = []
    for record in listing.shapes:
        target = args.out / "pool" / record.path.relative_to(args.dataset / "pool")
        if target.is_file():
            sizes.append(target.stat().st_size)
            continue
        heavy = subdivide_to(load_mesh(record.path), args.faces)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Positions and faces only: about 3.5 MB of OBJ per 100k faces, as Pix3D's heavy models.
        heavy.export(target, file_type="obj", include_normals=False, include_texture=False)
        sizes.append(target.stat().st_size)
    print(
        f"{len(listing.shapes)} meshes of ~{args.faces} faces in {args.out / 'pool'}: "
        f"median {np.median(sizes) / 1e6:.1f} MB of OBJ each, {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
