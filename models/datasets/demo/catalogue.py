"""The demo catalogue: every piece designed (parameters, finishes, parts), written in its file format with its photos
and masks, resumable and refusing to overwrite anything it did not make. The package docstring gives the layout."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from PIL import Image
from trimesh.visual.material import SimpleMaterial

from photo2cad.files import write_bytes_atomically
from photo2cad.models.datasets.demo.finishes import (
    Finish,
    choose_finishes,
    finished_mesh,
    jittered,
)
from photo2cad.models.datasets.demo.furniture import (
    CATEGORIES,
    DEALT,
    GENERATORS,
    SPECS,
    Parameters,
    parameter_vector,
    valid,
)
from photo2cad.models.datasets.demo.geometry import Part, by_role, concatenate, normalising_transform
from photo2cad.models.datasets.demo.photos import (
    YFOV_DEG,
    finish_photo,
    photo_background,
    photo_camera,
    photo_lights,
    photo_splits,
)
from photo2cad.shapes.pool import shape_id_for_mesh
from photo2cad.shapes.shaded import ShadedRenderer  # pyrender itself loads only when a renderer is made

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("obj", "glb", "ply", "stl", "off")
MAX_FACES = 5000

# Bump when the generators or the photo recipe change: a catalogue made by other code is regenerated, not reused.
GENERATOR_VERSION = 1
# Parameter vectors (continuous parameters scaled to [0, 1], one choice against another = 1) closer than this to an
# earlier shape of the category are drawn again.
MIN_PARAMETER_DISTANCE = 0.3
_MAX_DRAWS_PER_SHAPE = 200
_COMPLETE = ".complete"
_IN_PROGRESS = ".generating"
_OUTPUTS = ("pool", "photos", "masks", "queries.csv", "shapes.json")


@dataclass(frozen=True, eq=False)
class DemoShape:
    """One designed piece: its parameters, finishes per role and parts (metres, y up, front towards +z)."""

    shape_id: str
    category: str
    index: int
    parameters: Parameters
    finishes: Mapping[str, Finish]
    parts: tuple[Part, ...]
    file_format: str

    @property
    def relative_path(self) -> str:
        return f"pool/{self.shape_id}.{self.file_format}"

    def mesh(self) -> trimesh.Trimesh:
        """All parts as one mesh without colour."""
        return concatenate([mesh for mesh, _ in self.parts])

    def scene(self, finishes: Mapping[str, Finish] | None = None, normalised: bool = False) -> trimesh.Scene:
        """One geometry per role, with its finish as a PBR material (wood grain as a texture)."""
        finishes = self.finishes if finishes is None else finishes
        transform = normalising_transform(self.mesh()) if normalised else np.eye(4)
        scene = trimesh.Scene()
        for role, meshes in by_role(self.parts).items():
            finished = finished_mesh(meshes, finishes[role], role)
            finished.apply_transform(transform)
            scene.add_geometry(finished, geom_name=role)
        return scene


def design_catalogue(shapes_per_category: int = 60, seed: int = 0) -> tuple[DemoShape, ...]:
    """Every shape's parameters, finishes and parts, drawn as generate_demo draws them (nothing is written)."""
    if shapes_per_category < 1:
        raise ValueError(f"shapes_per_category must be at least 1, got {shapes_per_category}")
    shapes: list[DemoShape] = []
    for category_index, category in enumerate(CATEGORIES):
        spec = SPECS[category]
        rng = np.random.default_rng([seed, category_index])
        dealt = DEALT[category]
        deck_rng = np.random.default_rng([seed, category_index, 1])
        styles = list(dict.fromkeys(next(param.choices for param in spec if param.name == dealt)))
        deck: list[str] = []
        vectors: list[np.ndarray] = []
        for index in range(shapes_per_category):
            if not deck:
                deck = [styles[i] for i in deck_rng.permutation(len(styles))]
            style = deck.pop()
            for _ in range(_MAX_DRAWS_PER_SHAPE):
                parameters: Parameters = {}
                for param in spec:
                    parameters[param.name] = style if param.name == dealt else param.draw(rng, parameters)
                if not valid(category, parameters):
                    continue
                vector = parameter_vector(spec, parameters)
                if vectors and min(float(np.linalg.norm(vector - other)) for other in vectors) < (
                    MIN_PARAMETER_DISTANCE
                ):
                    continue
                break
            else:
                raise RuntimeError(
                    f"cannot draw {shapes_per_category} distinct {category} shapes (stopped at {index}); "
                    "ask for fewer shapes per category"
                )
            vectors.append(vector)
            finishes = choose_finishes(category, parameters, rng)
            parts = tuple(GENERATORS[category](parameters))
            faces = sum(len(mesh.faces) for mesh, _ in parts)
            if faces > MAX_FACES:  # the generators are sized to stay below; a change that breaks it must show
                raise RuntimeError(f"{category} {index} has {faces} faces, over the budget of {MAX_FACES}")
            name = f"{category}_{index:03d}"
            file_format = FORMATS[(category_index + index) % len(FORMATS)]
            shape_id = shape_id_for_mesh(f"{category}/{name}.{file_format}")
            shapes.append(DemoShape(shape_id, category, index, parameters, dict(finishes), parts, file_format))
    return tuple(shapes)


def _write_mesh(shape: DemoShape, path: Path) -> None:
    """The shape in its format; colours and textures where the format can hold them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = shape.file_format
    if fmt == "obj":
        for name, content in _obj_files(shape, path.stem).items():
            write_bytes_atomically(path.parent / name, content)
        return
    data: Any
    if fmt == "glb":
        data = trimesh.exchange.gltf.export_glb(shape.scene())
    elif fmt == "ply":
        data = _coloured_mesh(shape).export(file_type="ply")
    else:
        data = shape.mesh().export(file_type=fmt)
    write_bytes_atomically(path, data if isinstance(data, bytes) else str(data).encode())


def _obj_files(shape: DemoShape, stem: str) -> dict[str, bytes]:
    scene = trimesh.Scene()
    for role, geometry in shape.scene().geometry.items():
        finish = shape.finishes[role]
        material = geometry.visual.material
        # OBJ materials hold the colour as seen (Kd) and a shininess (Ns) that readers map back to roughness.
        shininess = 2.0 / max(finish.roughness, 0.05) ** 4 - 2.0
        simple = SimpleMaterial(
            name=role,
            image=material.baseColorTexture,
            diffuse=[255, 255, 255, 255] if finish.grain else [round(c * 255) for c in finish.srgb] + [255],
            glossiness=shininess,
        )
        scene.add_geometry(
            trimesh.Trimesh(
                vertices=geometry.vertices,
                faces=geometry.faces,
                visual=trimesh.visual.TextureVisuals(uv=geometry.visual.uv, material=simple),
                process=False,
            ),
            geom_name=role,
        )
    text, extra = trimesh.exchange.obj.export_obj(
        scene, include_normals=False, include_texture=True, return_texture=True, mtl_name=f"{stem}.mtl"
    )
    files = {f"{stem}.obj": text.encode()}
    library = extra.pop(f"{stem}.mtl").decode()
    # trimesh names textures after their material index; in a folder of many models they must carry the model's name.
    for name, data in sorted(extra.items()):
        library = library.replace(f" {name}", f" {stem}_{name}")
        files[f"{stem}_{name}"] = data
    files[f"{stem}.mtl"] = library.encode()
    return files


def _coloured_mesh(shape: DemoShape) -> trimesh.Trimesh:
    meshes = [mesh for mesh, _ in shape.parts]
    colours = [
        np.tile([*(round(c * 255) for c in shape.finishes[role].srgb), 255], (len(mesh.faces), 1))
        for mesh, role in shape.parts
    ]
    mesh = concatenate(meshes)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=np.concatenate(colours).astype(np.uint8))
    return mesh


@dataclass(frozen=True)
class DemoSummary:
    root: Path
    shapes: int
    photos: int
    categories: Mapping[str, int]
    formats: Mapping[str, int]
    splits: Mapping[str, int]
    seconds: float
    reused: bool = field(default=False)


def generate_demo(
    root: Path,
    shapes_per_category: int = 60,
    photos_per_shape: int = 4,
    seed: int = 0,
    photo_size: int = 224,
    progress: bool = True,
) -> DemoSummary:
    """Write the demo catalogue under `root` (layout in the module docstring) and say what it holds.

    Returns at once when `root/.complete` records the same parameters. A run that stopped part-way resumes: shapes
    whose files are all there are kept (they would come out the same). A root holding a catalogue made with other
    parameters is cleared first; a root holding anything else of the kind (a pool/, photos/ or queries.csv) is
    refused rather than overwritten.
    """
    root = Path(root)
    if photos_per_shape < 1:
        raise ValueError(f"photos_per_shape must be at least 1, got {photos_per_shape}")
    if photo_size < 16:
        raise ValueError(f"photo_size must be at least 16, got {photo_size}")
    settings = {
        "generator_version": GENERATOR_VERSION,
        "shapes_per_category": shapes_per_category,
        "photos_per_shape": photos_per_shape,
        "seed": seed,
        "photo_size": photo_size,
    }
    done = _read_marker(root / _COMPLETE)
    if done is not None and done.get("settings") == settings:
        return _summary(root, done["summary"], reused=True)
    _prepare(root, settings)

    started = time.perf_counter()
    shapes = design_catalogue(shapes_per_category, seed)
    splits = photo_splits(photos_per_shape)
    rows: list[dict[str, str]] = []
    with ShadedRenderer(photo_size, YFOV_DEG) as renderer:
        for shape in _progress(shapes, progress):
            name = shape.shape_id.rsplit("/", 1)[-1]
            photo_names = [f"photos/{name}_{k}.jpg" for k in range(photos_per_shape)]
            mask_names = [f"masks/{name}_{k}.png" for k in range(photos_per_shape)]
            wanted = [shape.relative_path, *photo_names, *mask_names]
            if not all((root / relative).is_file() for relative in wanted):
                _write_mesh(shape, root / shape.relative_path)
                _write_photos(shape, renderer, root, photo_names, mask_names, seed)
            for photo, mask, split in zip(photo_names, mask_names, splits, strict=True):
                rows.append(
                    {
                        "image": photo,
                        "shape_id": shape.shape_id,
                        "split": split,
                        "mask": mask,
                        "category": shape.category,
                    }
                )
    _write_queries(root / "queries.csv", rows)
    write_bytes_atomically(root / "shapes.json", _shapes_json(shapes).encode())

    summary = {
        "shapes": len(shapes),
        "photos": len(rows),
        "categories": {category: sum(s.category == category for s in shapes) for category in CATEGORIES},
        "formats": {fmt: sum(s.file_format == fmt for s in shapes) for fmt in FORMATS},
        "splits": {split: sum(row["split"] == split for row in rows) for split in ("train", "val", "test")},
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_bytes_atomically(root / _COMPLETE, json.dumps({"settings": settings, "summary": summary}, indent=2).encode())
    (root / _IN_PROGRESS).unlink(missing_ok=True)
    logger.info(
        "demo catalogue: %d shapes, %d photos in %.1f s under %s", len(shapes), len(rows), summary["seconds"], root
    )
    return _summary(root, summary, reused=False)


def _prepare(root: Path, settings: dict[str, Any]) -> None:
    """Make `root` ready for a run with `settings`: resume the same run, clear another demo, refuse foreign data."""
    root.mkdir(parents=True, exist_ok=True)
    in_progress = _read_marker(root / _IN_PROGRESS)
    complete = _read_marker(root / _COMPLETE)
    ours = in_progress is not None or complete is not None
    if in_progress == settings and complete is None:
        return
    present = [name for name in _OUTPUTS if (root / name).exists()]
    if present and not ours:
        raise FileExistsError(
            f"{root} already holds {', '.join(present)} that no demo run made; choose an empty folder"
        )
    for name in present:
        target = root / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    (root / _COMPLETE).unlink(missing_ok=True)
    write_bytes_atomically(root / _IN_PROGRESS, json.dumps(settings).encode())


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_photos(
    shape: DemoShape,
    renderer: ShadedRenderer,
    root: Path,
    photo_names: Sequence[str],
    mask_names: Sequence[str],
    seed: int,
) -> None:
    mesh = shape.mesh()
    points = trimesh.transform_points(mesh.vertices, normalising_transform(mesh))
    category_index = CATEGORIES.index(shape.category)
    for k, (photo_name, mask_name) in enumerate(zip(photo_names, mask_names, strict=True)):
        rng = np.random.default_rng([seed, category_index, shape.index, k])
        scene = shape.scene(jittered(shape.finishes, rng), normalised=True)
        pose = photo_camera(rng, points, YFOV_DEG)
        lights = photo_lights(rng)
        background = photo_background(rng, renderer.size)
        rgb, mask = renderer.render(scene, pose, lights, background)
        image, quality = finish_photo(rng, rgb)
        for relative, picture, options in (
            (photo_name, image, {"format": "JPEG", "quality": quality}),
            (mask_name, Image.fromarray(mask.astype(np.uint8) * 255), {"format": "PNG"}),
        ):
            buffer = io.BytesIO()
            picture.save(buffer, **options)
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(root / relative, buffer.getvalue())


def _write_queries(path: Path, rows: Sequence[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["image", "shape_id", "split", "mask", "category"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomically(path, buffer.getvalue().encode())


def _shapes_json(shapes: Sequence[DemoShape]) -> str:
    listing = {
        shape.shape_id: {
            "file": shape.relative_path,
            "category": shape.category,
            "faces": sum(len(mesh.faces) for mesh, _ in shape.parts),
            "parameters": shape.parameters,
            "finishes": {role: finish.name for role, finish in sorted(shape.finishes.items())},
        }
        for shape in shapes
    }
    return json.dumps(listing, indent=1, sort_keys=True)


def _summary(root: Path, values: dict[str, Any], reused: bool) -> DemoSummary:
    return DemoSummary(
        root=root,
        shapes=int(values["shapes"]),
        photos=int(values["photos"]),
        categories=dict(values["categories"]),
        formats=dict(values["formats"]),
        splits=dict(values["splits"]),
        seconds=float(values["seconds"]),
        reused=reused,
    )


def _progress(shapes: Sequence[DemoShape], enabled: bool) -> Sequence[DemoShape]:
    if not enabled:
        return shapes
    from tqdm import tqdm

    return tqdm(shapes, desc="demo catalogue", unit="shape")  # type: ignore[return-value]
