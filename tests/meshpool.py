"""Small real CAD pools for the tests, written with trimesh: every format the indexer reads, plus broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh


def shapes() -> dict[str, trimesh.Trimesh]:
    """Distinct geometry per shape so that embeddings differ."""
    return {
        "chair/box": trimesh.creation.box(extents=(1.0, 2.0, 0.5)),
        "chair/tall_box": trimesh.creation.box(extents=(0.5, 3.0, 0.5)),
        "table/cylinder": trimesh.creation.cylinder(radius=1.0, height=0.4, sections=24),
        "table/cone": trimesh.creation.cone(radius=1.0, height=2.0, sections=24),
        "sofa/capsule": trimesh.creation.capsule(height=2.0, radius=0.5),
        "sofa/sphere": trimesh.creation.icosphere(subdivisions=2),
        "bed/torus": trimesh.creation.torus(major_radius=1.0, minor_radius=0.3),
        "bed/flat_box": trimesh.creation.box(extents=(2.0, 0.3, 1.5)),
    }


FORMATS = (".obj", ".glb", ".ply", ".stl", ".off", ".gltf")


def write_pool(root: Path, count: int | None = None, corrupt: bool = True) -> dict[str, Path]:
    """Write the shapes in rotating formats under `root/<category>/`; returns shape_id -> path."""
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    items = list(shapes().items())
    total = count or len(items)
    for i in range(total):
        name, mesh = items[i % len(items)]
        if i >= len(items):  # more shapes than templates: stretch the template so every shape differs
            mesh = mesh.copy()
            mesh.apply_scale(np.array([1.0 + 0.15 * (i // len(items)), 1.0, 1.0]))
            name = f"{name}_{i}"
        suffix = FORMATS[i % len(FORMATS)]
        path = root / f"{name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".gltf":  # one self-contained file; side buffers of several models would collide
            files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(mesh), embed_buffers=True)
            path.write_bytes(files["model.gltf"])
        else:
            mesh.export(path)
        paths[name] = path
    if corrupt:
        (root / "chair" / "broken.obj").write_bytes(b"v 1 2\nf 9 9 9\ngarbage \x00\xff")
    return paths
