"""Files the service hands out (thumbnails, meshes), each resolved and kept inside the directory it belongs to."""

from __future__ import annotations

import logging
from pathlib import Path

import trimesh

from photo2cad.indexer import IndexVersion
from photo2cad.indexer.manifest import ShapeEntry
from photo2cad.service.errors import MeshNotConvertible, OutsidePool, ShapeNotFound

log = logging.getLogger(__name__)

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
        log.warning("refused to serve the %s: %s is outside %s", what, path, root)  # the paths, for the operator only
        raise OutsidePool(f"the {what} resolves to a path outside its directory; refusing to serve it")
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


def glb_bytes(path: Path) -> bytes:
    """The mesh file as one binary glTF: an OBJ's .mtl and textures (or a .gltf's buffers) packed in, so one download
    keeps the materials. trimesh reads those side files only from the mesh's own folder and below."""
    if path.suffix.lower() == ".glb":
        return path.read_bytes()
    try:
        scene = trimesh.load_scene(path)
        data = scene.export(file_type="glb")
    except Exception as err:  # noqa: BLE001 - trimesh raises many kinds; the caller can still take the original
        log.warning("cannot convert %s to GLB: %s", path, err)
        raise MeshNotConvertible(
            f"the mesh cannot be converted to GLB ({type(err).__name__}); download the original file instead"
        ) from err
    return bytes(data)
