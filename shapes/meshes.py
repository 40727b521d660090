"""Pool files -> one triangle mesh each, normalised into [-1, 1] for the renderer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import meshoptimizer
import numpy as np
import trimesh

from photo2cad.errors import Photo2CadError

# Order matters to pool scans: when one folder holds model.obj and model.ply, or chair.obj and chair.glb, the earlier
# suffix wins.
MESH_SUFFIXES: tuple[str, ...] = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")

_CHUNK_BYTES = 1 << 20


class MeshLoadError(Photo2CadError):
    """A pool file that cannot become a renderable mesh; the message names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def load_mesh(path: Path) -> trimesh.Trimesh:
    """Every triangle of the file, scene transforms applied, merged into one mesh without materials."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshLoadError(path, f"unsupported format {suffix!r}; expected one of {', '.join(MESH_SUFFIXES)}")
    if not path.is_file():
        raise MeshLoadError(path, "no such file")
    if path.stat().st_size == 0:
        raise MeshLoadError(path, "empty file")
    try:
        # Views are rendered untextured: skipping materials avoids decoding textures and fails no load over a
        # missing .mtl or image next to a Pix3D OBJ.
        scene = trimesh.load_scene(path, file_type=suffix[1:], skip_materials=True)
        parts = [part for part in scene.dump() if isinstance(part, trimesh.Trimesh)]
    except Exception as error:  # trimesh's loaders raise anything from ValueError to struct.error on bad bytes
        detail = str(error)[:200]  # some loaders quote the offending bytes
        raise MeshLoadError(path, f"unreadable {suffix[1:]} file ({type(error).__name__}: {detail})") from error
    mesh = _merge(parts)
    _check_renderable(path, mesh)
    return mesh


def _merge(parts: list[trimesh.Trimesh]) -> trimesh.Trimesh:
    # Stacking by hand instead of trimesh.util.concatenate: no visuals to merge, no vertex processing.
    vertices = [np.asarray(part.vertices, dtype=np.float64).reshape(-1, 3) for part in parts]
    faces = []
    offset = 0
    for part, part_vertices in zip(parts, vertices, strict=True):
        faces.append(np.asarray(part.faces, dtype=np.int64).reshape(-1, 3) + offset)
        offset += len(part_vertices)
    return trimesh.Trimesh(
        vertices=np.concatenate(vertices) if vertices else np.zeros((0, 3)),
        faces=np.concatenate(faces) if faces else np.zeros((0, 3), dtype=np.int64),
        process=False,
    )


def _check_renderable(path: Path, mesh: trimesh.Trimesh) -> None:
    if len(mesh.faces) == 0:
        raise MeshLoadError(path, "no faces (no triangle geometry in the file)")
    if mesh.faces.min() < 0 or mesh.faces.max() >= len(mesh.vertices):
        raise MeshLoadError(path, "faces refer to vertices the file does not define")
    # Stray vertices no face uses are never drawn: only the used ones must be sound.
    used = mesh.vertices[np.unique(mesh.faces)]
    if not np.isfinite(used).all():
        raise MeshLoadError(path, "non-finite vertex coordinates (NaN or infinity)")
    if np.ptp(used, axis=0).max() == 0.0:
        raise MeshLoadError(path, "degenerate: every face collapses to one point (zero extent)")
    if mesh.area == 0.0:
        raise MeshLoadError(path, "degenerate: every face has zero area")


def normalise(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A copy whose bounding box is centred at the origin and whose largest half-extent is 1."""
    if mesh.bounds is None:
        raise ValueError("cannot normalise a mesh without faces")
    lower, upper = mesh.bounds
    half_extent = float((upper - lower).max()) / 2.0
    if half_extent == 0.0:
        raise ValueError("cannot normalise a mesh of zero extent")
    vertices = (np.asarray(mesh.vertices, dtype=np.float64) - (lower + upper) / 2.0) / half_extent
    return trimesh.Trimesh(vertices=vertices, faces=np.array(mesh.faces), process=False)


def simplify(mesh: trimesh.Trimesh, max_faces: int, max_error: float) -> trimesh.Trimesh:
    """At most about `max_faces` faces by quadric edge collapse (meshoptimizer), never moving the surface by more
    than `max_error` of the mesh's largest extent; a mesh already within the budget is returned as it is.

    A 160 px view cannot show 100,000 faces: below a pixel's worth of error the views stay the same while drawing
    gets several times cheaper. The collapse works on any triangle soup (open borders, T-junctions, unwelded parts,
    slivers: what CAD exports are made of); it stops early rather than exceed the error, so a mesh whose detail is
    all visible keeps more faces than the budget.
    """
    if len(mesh.faces) <= max_faces:
        return mesh
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    indices = np.ascontiguousarray(mesh.faces, dtype=np.uint32).reshape(-1)
    kept = np.empty_like(indices)
    count = meshoptimizer.simplify(kept, indices, vertices, target_index_count=3 * max_faces, target_error=max_error)
    # Only the vertices the kept faces use travel on: the renderer uploads and the framing projects every vertex.
    used, faces = np.unique(kept[:count], return_inverse=True)
    return trimesh.Trimesh(
        vertices=np.asarray(mesh.vertices)[used], faces=faces.reshape(-1, 3).astype(np.int64), process=False
    )


def file_checksum(path: Path) -> str:
    """sha256 of the file's bytes, read in chunks so multi-GB meshes do not fill memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
