"""List the shapes of a CAD pool folder.

Two layouts are recognised, and may be mixed in one pool:

- a mesh file ``<rel>.<ext>``: shape_id is ``<rel>`` (the path relative to the root without its suffix, '/'-separated);
- a folder holding ``model.<ext>`` (Pix3D's and ShapeNet's layout, e.g. ``chair/IKEA_POANG_1/model.obj``): shape_id is
  the folder's relative path (``chair/IKEA_POANG_1``). Everything else inside such a folder (textures, .mtl files,
  keypoints, nested folders) belongs to that shape and is not listed.

Supported suffixes, case-insensitive: .obj .glb .gltf .ply .stl .off. Names starting with '.' (``.git``, macOS ``._``
files) are ignored. Whatever cannot become a shape, but looks like it was meant to, is reported in
``PoolListing.skipped`` instead of raising: a Pix3D-style folder without its model file, a second mesh claiming an
already listed shape_id, a symlink leading outside the root (or to a folder inside it, which is listed under its own
path), a broken symlink, an unreadable folder. Symlinked files inside the root are followed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from photo2cad.errors import Photo2CadError
from photo2cad.shapes.csvfile import read_csv_rows
from photo2cad.shapes.meshes import MESH_SUFFIXES

MODEL_STEM = "model"
# Files that Pix3D ships next to every model.obj: a folder holding one of them (or a .mtl) but no mesh lost its model.
_MODEL_FOLDER_MARKERS = frozenset({"3d_keypoints.txt", "voxel.mat"})


class PoolError(Photo2CadError, ValueError):
    """The pool or its categories file cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class ShapeRecord:
    shape_id: str
    path: Path
    category: str | None


@dataclass(frozen=True)
class SkippedEntry:
    path: Path
    reason: str


@dataclass(frozen=True)
class PoolListing:
    shapes: tuple[ShapeRecord, ...]
    skipped: tuple[SkippedEntry, ...]


def scan_pool(root: Path, categories_csv: Path | None = None) -> PoolListing:
    """List every shape under ``root``, sorted by shape_id.

    Category: from ``categories_csv`` (header ``shape_id,category``) for the shapes it lists; otherwise the first path
    component of a shape that lives in a sub-folder (``chair/IKEA_POANG_1`` -> ``chair``), else None. Rows of the CSV
    naming no listed shape are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise PoolError(f"pool folder not found: {root}")
    categories = read_categories_csv(categories_csv) if categories_csv is not None else {}

    walker = _Walker(root)
    walker.walk(root, "")

    shapes = tuple(
        ShapeRecord(shape_id=shape_id, path=path, category=categories.get(shape_id, _folder_category(shape_id)))
        for shape_id, path in sorted(walker.found.items())
    )
    skipped = tuple(sorted(walker.skipped, key=lambda entry: (entry.path.as_posix(), entry.reason)))
    return PoolListing(shapes=shapes, skipped=skipped)


def shape_id_for_mesh(relative_path: str) -> str:
    """The shape_id scan_pool gives the mesh at ``relative_path`` ('/'-separated, relative to the pool root)."""
    parent, _, name = relative_path.strip("/").rpartition("/")
    stem = os.path.splitext(name)[0]
    if parent and stem.lower() == MODEL_STEM:
        return parent
    return f"{parent}/{stem}" if parent else stem


def read_categories_csv(path: Path) -> dict[str, str]:
    """Read ``shape_id,category`` rows; any malformed line raises PoolError naming the file and line."""
    path = Path(path)

    def bad_row(line: int, reason: str) -> None:
        raise PoolError(f"{path}: line {line}: {reason}")

    categories: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, values in read_csv_rows(path, ("shape_id", "category"), PoolError, "categories file", bad_row):
        shape_id = values["shape_id"].strip("/")
        category = values["category"]
        if not shape_id or not category:
            raise PoolError(f"{path}: line {line}: empty shape_id or category: {values!r}")
        if shape_id in categories and categories[shape_id] != category:
            raise PoolError(
                f"{path}: line {line}: shape {shape_id!r} has category {category!r}, but line "
                f"{first_line[shape_id]} gave {categories[shape_id]!r}"
            )
        categories[shape_id] = category
        first_line.setdefault(shape_id, line)
    return categories


def _folder_category(shape_id: str) -> str | None:
    head, sep, _ = shape_id.partition("/")
    return head if sep else None


def _mesh_suffix_rank(name: str) -> int | None:
    suffix = os.path.splitext(name)[1].lower()
    return MESH_SUFFIXES.index(suffix) if suffix in MESH_SUFFIXES else None


class _Walker:
    """Depth-first walk in sorted order; collects shapes and skipped entries."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.found: dict[str, Path] = {}
        self.skipped: list[SkippedEntry] = []

    def walk(self, folder: Path, rel: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            self.skipped.append(SkippedEntry(folder, f"folder cannot be read: {error.strerror or error}"))
            return

        files: list[os.DirEntry[str]] = []
        folders: list[os.DirEntry[str]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink() and not self._symlink_ok(entry):
                continue
            try:
                if entry.is_dir():
                    folders.append(entry)
                elif entry.is_file():
                    files.append(entry)
            except OSError as error:
                self.skipped.append(SkippedEntry(Path(entry.path), f"cannot be read: {error.strerror or error}"))

        meshes = sorted(
            ((rank, entry) for entry in files if (rank := _mesh_suffix_rank(entry.name)) is not None),
            key=lambda item: (os.path.splitext(item[1].name)[0], item[0], item[1].name),
        )
        models = [entry for _, entry in meshes if os.path.splitext(entry.name)[0].lower() == MODEL_STEM]
        if rel and models:
            self._add(rel, Path(models[0].path))
            for extra in models[1:]:
                self.skipped.append(
                    SkippedEntry(Path(extra.path), f"second model file in {rel!r}; {models[0].name} is used")
                )
            return  # everything below a model folder belongs to that model

        for _, entry in meshes:
            stem = os.path.splitext(entry.name)[0]
            self._add(f"{rel}/{stem}" if rel else stem, Path(entry.path))

        if rel and not meshes and self._looks_like_model_folder(files):
            extensions = "/".join(suffix.lstrip(".") for suffix in MESH_SUFFIXES)
            self.skipped.append(
                SkippedEntry(
                    folder,
                    f"model folder without a model file (no model.{{{extensions}}} next to its .mtl or keypoints)",
                )
            )

        for entry in folders:
            self.walk(Path(entry.path), f"{rel}/{entry.name}" if rel else entry.name)

    def _add(self, shape_id: str, path: Path) -> None:
        if shape_id in self.found:
            self.skipped.append(SkippedEntry(path, f"duplicate shape_id {shape_id!r}; {self.found[shape_id]} is used"))
            return
        self.found[shape_id] = path

    def _symlink_ok(self, entry: os.DirEntry[str]) -> bool:
        path = Path(entry.path)
        target = path.resolve()
        if not target.exists():
            self.skipped.append(SkippedEntry(path, f"broken symlink to {os.readlink(path)}"))
            return False
        if not target.is_relative_to(self.real_root):
            self.skipped.append(SkippedEntry(path, f"symlink leads outside the pool root (to {target})"))
            return False
        if target.is_dir():
            # Its target is walked under its own path; following it too would list shapes twice or loop.
            self.skipped.append(SkippedEntry(path, f"symlink to a folder inside the pool ({target}), listed there"))
            return False
        return True

    @staticmethod
    def _looks_like_model_folder(files: list[os.DirEntry[str]]) -> bool:
        return any(
            entry.name.lower() in _MODEL_FOLDER_MARKERS or entry.name.lower().endswith(".mtl") for entry in files
        )
