"""Files the service hands out (thumbnails, meshes), each resolved and kept inside the directory it belongs to."""

from __future__ import annotations

from pathlib import Path

from photo2cad.indexer import IndexVersion
from photo2cad.indexer.manifest import ShapeEntry
from photo2cad.service.errors import OutsidePool, ShapeNotFound

MESH_MEDIA_TYPES = {
    ".obj": "model/obj",
    ".stl": "model/stl",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".ply": "application/octet-stream",
    ".off": "application/octet-stream",
}


def contained_file(base: Path, relative: str, what: str) -> Path:
    """`base / relative` with symlinks and '..' resolved; refused unless it is a file inside `base`."""
    root = base.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise OutsidePool(f"the {what} resolves to a path outside {root}; refusing to serve it")
    if not path.is_file():
        raise ShapeNotFound(f"the {what} file is missing")
    return path


def shape_entry(index: IndexVersion, shape_id: str) -> ShapeEntry:
    entry = index.find_entry(shape_id)
    if entry is None:
        raise ShapeNotFound(f"no shape {shape_id!r} in index {index.name}")
    return entry


def thumbnail_file(index: IndexVersion, shape_id: str) -> Path:
    return contained_file(index.directory, shape_entry(index, shape_id).thumbnail, f"thumbnail of {shape_id!r}")


def mesh_file(index: IndexVersion, shape_id: str) -> Path:
    return contained_file(index.pool_root, shape_entry(index, shape_id).source_path, f"mesh of {shape_id!r}")


def mesh_media_type(path: Path) -> str:
    return MESH_MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
