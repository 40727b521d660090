"""A demo catalogue made from nothing: parametric furniture in Pix3D's categories and synthetic photos of it.

``generate_demo(root)`` writes a folder ``read_folder(root)`` reads::

    root/
      pool/<category>/<category>_<NNN>.<obj|glb|ply|stl|off>   formats in turn; an obj brings its .mtl and .png
      photos/<category>_<NNN>_<k>.jpg                           the coloured model, lit and placed on a backdrop
      masks/<category>_<NNN>_<k>.png                            its silhouette in that photo
      queries.csv                                               image,shape_id,split,mask,category
      shapes.json                                               each shape's parameters and finishes
      .complete                                                 the generation parameters, written last

Each category has one generator of parts (boxes, cylinders, turned profiles, rounded cushions, bent panels), driven
by a parameter vector drawn from a seeded RNG: leg, back, arm, top and headboard styles, proportions, counts. A draw
too close to an earlier one of its category is rejected, so no two shapes are near-copies and retrieval must tell
them apart by geometry. Parts carry finishes (wood with grain, paint, fabric, leather, metal) that the obj, glb and
ply files store; stl and off keep geometry only, which is why the photos are rendered from the in-memory model.

Photos vary what real ones do: viewpoint (any azimuth, 0-35 degrees elevation, small roll), how much of the frame
the object fills (50-90 %, roughly centred like an object crop), lighting (direction, colour temperature,
intensity), finishes' colour and the backdrop (gradients, noise, wall and floor, patterns). Everything is drawn from
RNGs seeded by (seed, category, shape, photo): a rerun, or a resumed run, makes the same catalogue.
"""

from __future__ import annotations

import colorsys
import csv
import io
import json
import logging
import math
import shutil
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from PIL import Image, ImageFilter
from trimesh.visual.material import PBRMaterial, SimpleMaterial

from photo2cad.models.datasets.records import Split
from photo2cad.shapes.pool import shape_id_for_mesh
from photo2cad.shapes.shaded import Light, ShadedRenderer  # pyrender itself loads only when a renderer is made

logger = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("bed", "chair", "sofa", "table")
FORMATS: tuple[str, ...] = ("obj", "glb", "ply", "stl", "off")
MAX_FACES = 5000

# Bump when the generators or the photo recipe change: a catalogue made by other code is regenerated, not reused.
GENERATOR_VERSION = 1
_YFOV_DEG = 56.0
# Parameter vectors (continuous parameters scaled to [0, 1], one choice against another = 1) closer than this to an
# earlier shape of the category are drawn again.
_MIN_PARAMETER_DISTANCE = 0.3
_MAX_DRAWS_PER_SHAPE = 200
_COMPLETE = ".complete"
_IN_PROGRESS = ".generating"
_OUTPUTS = ("pool", "photos", "masks", "queries.csv", "shapes.json")

Vec3 = tuple[float, float, float]
Point = Sequence[float] | np.ndarray
Parameters = dict[str, float | int | str | None]


# --------------------------------------------------------------------------------------------------------------------
# Finishes


@dataclass(frozen=True)
class Finish:
    """A surface: its colour as seen (sRGB in [0, 1]), PBR metalness and roughness, and whether it shows wood grain."""

    name: str
    srgb: Vec3
    metallic: float = 0.0
    roughness: float = 0.8
    grain: bool = False


WOODS = (
    Finish("oak", (0.74, 0.56, 0.36), roughness=0.6, grain=True),
    Finish("walnut", (0.40, 0.25, 0.15), roughness=0.55, grain=True),
    Finish("cherry", (0.58, 0.30, 0.18), roughness=0.5, grain=True),
    Finish("pine", (0.86, 0.70, 0.48), roughness=0.65, grain=True),
    Finish("maple", (0.90, 0.78, 0.60), roughness=0.6, grain=True),
    Finish("teak", (0.62, 0.41, 0.22), roughness=0.55, grain=True),
    Finish("ebonised", (0.16, 0.12, 0.10), roughness=0.45, grain=True),
)
PAINTS = (
    Finish("white paint", (0.90, 0.90, 0.88), roughness=0.5),
    Finish("grey paint", (0.52, 0.53, 0.55), roughness=0.5),
    Finish("black paint", (0.09, 0.09, 0.09), roughness=0.45),
    Finish("sage paint", (0.58, 0.65, 0.55), roughness=0.5),
    Finish("navy paint", (0.15, 0.20, 0.32), roughness=0.5),
)
FABRICS = (
    Finish("grey fabric", (0.56, 0.56, 0.56), roughness=0.95),
    Finish("charcoal fabric", (0.26, 0.26, 0.28), roughness=0.95),
    Finish("beige fabric", (0.78, 0.70, 0.58), roughness=0.95),
    Finish("cream fabric", (0.92, 0.88, 0.80), roughness=0.95),
    Finish("navy fabric", (0.17, 0.21, 0.36), roughness=0.95),
    Finish("teal fabric", (0.16, 0.42, 0.44), roughness=0.95),
    Finish("olive fabric", (0.46, 0.46, 0.26), roughness=0.95),
    Finish("mustard fabric", (0.80, 0.60, 0.16), roughness=0.95),
    Finish("terracotta fabric", (0.70, 0.36, 0.23), roughness=0.95),
    Finish("blush fabric", (0.86, 0.62, 0.60), roughness=0.95),
    Finish("forest fabric", (0.16, 0.33, 0.21), roughness=0.95),
    Finish("red fabric", (0.62, 0.13, 0.13), roughness=0.95),
    Finish("sky fabric", (0.56, 0.68, 0.80), roughness=0.95),
)
LEATHERS = (
    Finish("black leather", (0.08, 0.08, 0.08), roughness=0.45),
    Finish("brown leather", (0.36, 0.21, 0.11), roughness=0.45),
    Finish("cognac leather", (0.62, 0.33, 0.13), roughness=0.45),
    Finish("tan leather", (0.74, 0.54, 0.34), roughness=0.5),
    Finish("white leather", (0.90, 0.89, 0.86), roughness=0.45),
)
METALS = (
    Finish("black steel", (0.08, 0.08, 0.09), metallic=0.5, roughness=0.4),
    Finish("chrome", (0.78, 0.78, 0.80), metallic=0.8, roughness=0.22),
    Finish("brass", (0.80, 0.62, 0.34), metallic=0.8, roughness=0.3),
    Finish("white steel", (0.88, 0.88, 0.87), metallic=0.3, roughness=0.4),
)
BEDDING = (
    Finish("white linen", (0.94, 0.94, 0.92), roughness=0.95),
    Finish("ivory linen", (0.93, 0.90, 0.82), roughness=0.95),
    Finish("pale grey linen", (0.80, 0.81, 0.83), roughness=0.95),
    Finish("pale blue linen", (0.76, 0.83, 0.90), roughness=0.95),
)


# --------------------------------------------------------------------------------------------------------------------
# Parameter specs: what each category's generator reads, and the distance between two draws


@dataclass(frozen=True)
class _Param:
    name: str
    low: float = 0.0
    high: float = 1.0
    choices: tuple[str, ...] = ()  # a choice listed twice is drawn twice as often
    integer: bool = False
    # Drawn only while an earlier choice has one of these values (e.g. a slat count only for slatted backs); else
    # None, so that it can make no two shapes look different on paper only.
    when: tuple[str, tuple[str, ...]] | None = None

    def draw(self, rng: np.random.Generator, drawn: Parameters) -> float | int | str | None:
        if self.when is not None and drawn[self.when[0]] not in self.when[1]:
            return None
        if self.choices:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.integer:
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return round(float(rng.uniform(self.low, self.high)), 4)

    def encode(self, value: float | int | str | None) -> list[float]:
        if self.choices:
            # One-hot scaled so that two different choices lie exactly 1 apart.
            return [(value == choice) / math.sqrt(2.0) for choice in dict.fromkeys(self.choices)]
        if value is None:
            return [0.0]
        return [(float(value) - self.low) / (self.high - self.low)]


_FOUR_LEGS = ("square", "round", "tapered", "turned", "splayed")

_CHAIR = (
    _Param("seat_width", 0.40, 0.56),
    _Param("seat_depth", 0.38, 0.54),
    _Param("seat_height", 0.40, 0.50),
    _Param("seat_thickness", 0.02, 0.07),
    _Param("seat_shape", choices=("rectangular", "rounded", "round")),
    _Param("legs", choices=("square", "round", "tapered", "turned", "splayed", "sled", "pedestal")),
    _Param("leg_thickness", 0.022, 0.05),
    _Param("leg_inset", 0.0, 0.04, when=("legs", _FOUR_LEGS)),
    _Param("splay", 0.03, 0.09, when=("legs", ("splayed",))),
    _Param("turning", choices=("bead", "vase", "ring"), when=("legs", ("turned",))),
    _Param("stretchers", choices=("none", "h", "box"), when=("legs", _FOUR_LEGS)),
    _Param("back", choices=("solid", "slatted", "ladder", "spindle", "curved", "upholstered")),
    _Param("back_height", 0.28, 0.55),
    _Param("back_tilt_deg", 0.0, 16.0),
    _Param("back_count", 2, 7, integer=True, when=("back", ("slatted", "ladder", "spindle"))),
    _Param("panel_fraction", 0.35, 0.9, when=("back", ("solid", "curved"))),
    _Param("curve", 0.03, 0.12, when=("back", ("curved",))),
    _Param("arms", choices=("none", "none", "bar", "panel")),
    _Param("arm_height", 0.16, 0.26, when=("arms", ("bar", "panel"))),
    _Param("seat_cushion", choices=("no", "yes")),
)

_TABLE = (
    _Param("kind", choices=("dining", "coffee", "side")),
    _Param("size", 0.0, 1.0),
    _Param("height", 0.0, 1.0),
    _Param("top", choices=("rectangular", "square", "round", "oval")),
    _Param("aspect", 0.45, 0.8, when=("top", ("rectangular", "oval"))),
    _Param("top_thickness", 0.02, 0.065),
    _Param("legs", choices=("square", "round", "tapered", "turned", "splayed", "hairpin", "pedestal", "trestle")),
    _Param("leg_thickness", 0.03, 0.075),
    _Param("leg_inset", 0.02, 0.14, when=("legs", (*_FOUR_LEGS, "hairpin", "trestle"))),
    _Param("splay", 0.03, 0.1, when=("legs", ("splayed",))),
    _Param("turning", choices=("bead", "vase", "ring"), when=("legs", ("turned",))),
    _Param("apron", choices=("no", "yes"), when=("legs", _FOUR_LEGS)),
    _Param("apron_height", 0.05, 0.13, when=("apron", ("yes",))),
    _Param("stretchers", choices=("none", "h", "box"), when=("legs", _FOUR_LEGS)),
    _Param("shelf", choices=("no", "yes"), when=("legs", (*_FOUR_LEGS, "trestle"))),
    _Param("pedestal_base", choices=("disk", "cross", "tripod"), when=("legs", ("pedestal",))),
    _Param("column", choices=("straight", "turned", "tapered"), when=("legs", ("pedestal",))),
)

_BED = (
    _Param("mattress_width", 0.9, 1.9),
    _Param("mattress_length", 1.9, 2.15),
    _Param("mattress_thickness", 0.14, 0.3),
    _Param("clearance", 0.04, 0.3),
    _Param("rail_height", 0.1, 0.3),
    _Param("rail_thickness", 0.03, 0.08),
    _Param("legs", choices=("block", "turned", "tapered", "plinth", "metal")),
    _Param("headboard", choices=("panel", "slatted", "spindle", "upholstered", "arched")),
    _Param("headboard_height", 0.3, 0.95),
    _Param("headboard_count", 4, 12, integer=True, when=("headboard", ("slatted", "spindle"))),
    _Param("arch", 0.06, 0.3, when=("headboard", ("arched",))),
    _Param("footboard", choices=("none", "panel", "slatted", "spindle", "upholstered")),
    _Param("footboard_height", -0.12, 0.35, when=("footboard", ("panel", "slatted", "spindle", "upholstered"))),
    _Param("posts", choices=("none", "none", "short", "tall")),
    _Param("post_width", 0.04, 0.09, when=("posts", ("short", "tall"))),
    _Param("pillows", 1, 3, integer=True),
    _Param("blanket", choices=("no", "yes")),
    _Param("blanket_cover", 0.35, 0.8, when=("blanket", ("yes",))),
)

_SOFA = (
    _Param("seats", 2, 4, integer=True),
    _Param("seat_width", 0.5, 0.72),
    _Param("depth", 0.78, 1.02),
    _Param("seat_height", 0.38, 0.48),
    _Param("cushion_thickness", 0.08, 0.18),
    _Param("back_height", 0.68, 0.95),
    _Param("back_thickness", 0.12, 0.24),
    _Param("back", choices=("tight", "cushions", "curved")),
    _Param("back_tilt_deg", 4.0, 16.0, when=("back", ("cushions",))),
    _Param("curve", 0.05, 0.2, when=("back", ("curved",))),
    _Param("seat_cushions", choices=("bench", "per seat")),
    _Param("arms", choices=("none", "square", "rolled", "sloped", "wooden")),
    _Param("arm_width", 0.08, 0.26, when=("arms", ("square", "rolled", "sloped"))),
    _Param("arm_height", 0.52, 0.72, when=("arms", ("square", "rolled", "sloped", "wooden"))),
    _Param("base", choices=("legs", "buns", "tapered", "plinth", "sled")),
    _Param("leg_height", 0.03, 0.22),
    _Param("chaise", choices=("none", "none", "left", "right")),
    _Param("chaise_length", 0.45, 0.75, when=("chaise", ("left", "right"))),
)

_SPECS: dict[str, tuple[_Param, ...]] = {"bed": _BED, "chair": _CHAIR, "sofa": _SOFA, "table": _TABLE}
# The style that most sets a piece apart is dealt from a shuffled deck rather than drawn, so every style gets its
# share of the catalogue (a plain draw gave one table style in three, another one in sixty).
_DEALT: dict[str, str] = {"bed": "headboard", "chair": "legs", "sofa": "arms", "table": "legs"}


def _valid(category: str, parameters: Parameters) -> bool:
    """Combinations a furniture maker would not build are drawn again."""
    if category == "table":
        legs, top, kind = parameters["legs"], parameters["top"], parameters["kind"]
        if legs == "pedestal" and top not in ("round", "oval", "square"):
            return False
        if legs == "trestle" and (top not in ("rectangular", "oval") or kind == "side"):
            return False
        if parameters.get("shelf") == "yes" and kind == "dining":
            return False
    if category == "chair" and parameters["arms"] != "none":
        # Arms run along straight seat sides: a round seat has none to carry them, a sled or a pedestal no legs to
        # carry a side panel.
        if parameters["seat_shape"] == "round":
            return False
        if parameters["arms"] == "panel" and parameters["legs"] in ("sled", "pedestal"):
            return False
    return not (category == "sofa" and parameters["chaise"] != "none" and int(parameters["seats"] or 0) < 3)


def _parameter_vector(spec: Sequence[_Param], parameters: Parameters) -> np.ndarray:
    return np.array([value for param in spec for value in param.encode(parameters[param.name])])


# --------------------------------------------------------------------------------------------------------------------
# Geometry helpers. Metres, y up, the front of every piece faces +z (where view 0 of indexer.render looks from).


Part = tuple[trimesh.Trimesh, str]  # a piece and the role naming its finish


def _box(size: Sequence[float], centre: Sequence[float]) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=np.asarray(size, dtype=np.float64))
    mesh.apply_translation(np.asarray(centre, dtype=np.float64))
    return mesh


def _align(mesh: trimesh.Trimesh, start: Point, end: Point) -> trimesh.Trimesh:
    """`mesh`, built along +z from 0 to the segment's length, moved onto the segment."""
    start_point = np.asarray(start, dtype=np.float64)
    direction = np.asarray(end, dtype=np.float64) - start_point
    transform = trimesh.geometry.align_vectors([0.0, 0.0, 1.0], direction / np.linalg.norm(direction))
    transform[:3, 3] = start_point
    mesh.apply_transform(transform)
    return mesh


def _rod(start: Point, end: Point, radius: float, sections: int = 12) -> trimesh.Trimesh:
    length = float(np.linalg.norm(np.subtract(end, start)))
    mesh = trimesh.creation.cylinder(radius=radius, height=length, sections=sections)
    mesh.apply_translation([0.0, 0.0, length / 2.0])
    return _align(mesh, start, end)


def _lathe(profile: Sequence[tuple[float, float]], start: Point, end: Point, sections: int = 12) -> trimesh.Trimesh:
    """A turned piece: `profile` is (radius, fraction of the length) from start to end, closed at both ends."""
    length = float(np.linalg.norm(np.subtract(end, start)))
    points = [(0.0, 0.0), *((radius, fraction * length) for radius, fraction in profile), (0.0, length)]
    mesh = trimesh.creation.revolve(np.array(points), sections=sections)
    return _align(mesh, start, end)


def _post(start: Point, end: Point, width: float, top_scale: float = 1.0) -> trimesh.Trimesh:
    """A square-section post from start to end, its far end scaled by `top_scale` (a tapered leg when < 1)."""
    length = float(np.linalg.norm(np.subtract(end, start)))
    mesh = trimesh.creation.box(extents=(width, width, length))
    mesh.apply_translation([0.0, 0.0, length / 2.0])
    far = mesh.vertices[:, 2] > length / 2.0
    vertices = mesh.vertices.copy()
    vertices[far, :2] *= top_scale
    mesh.vertices = vertices
    return _align(mesh, start, end)


_TURNINGS: dict[str, tuple[tuple[float, float], ...]] = {
    # (radius as a share of the leg's half thickness, position from the foot up)
    "bead": ((0.7, 0.0), (0.75, 0.06), (0.55, 0.1), (0.55, 0.3), (1.0, 0.36), (0.55, 0.42), (0.6, 0.75), (1.0, 0.8)),
    "vase": ((0.55, 0.0), (0.65, 0.05), (0.5, 0.12), (1.0, 0.35), (0.75, 0.55), (0.5, 0.68), (0.9, 0.78), (1.0, 1.0)),
    "ring": ((0.8, 0.0), (0.8, 0.08), (0.5, 0.1), (0.5, 0.45), (0.95, 0.5), (0.95, 0.55), (0.5, 0.6), (0.9, 0.9)),
}


def _turned_leg(start: Point, end: Point, thickness: float, turning: str) -> trimesh.Trimesh:
    radius = thickness / 2.0
    profile = [(share * radius, position) for share, position in _TURNINGS[turning]]
    return _lathe([*profile, (radius, 1.0)], start, end)


# A cube subdivided twice and blown up to the unit sphere: rounded boxes are shaped from it.
_CUBE_SPHERE = trimesh.creation.box(extents=(2.0, 2.0, 2.0)).subdivide().subdivide()
_CUBE_SPHERE_VERTICES = _CUBE_SPHERE.vertices / np.linalg.norm(_CUBE_SPHERE.vertices, axis=1, keepdims=True)


def _rounded_box(size: Sequence[float], centre: Sequence[float], softness: float = 0.3) -> trimesh.Trimesh:
    """A cushion: a superellipsoid filling `size`; softness 0 is a box, 1 an ellipsoid."""
    exponent = float(np.clip(softness, 0.05, 1.0))
    shaped = np.sign(_CUBE_SPHERE_VERTICES) * np.abs(_CUBE_SPHERE_VERTICES) ** exponent
    vertices = shaped * (np.asarray(size, dtype=np.float64) / 2.0) + np.asarray(centre, dtype=np.float64)
    return trimesh.Trimesh(vertices=vertices, faces=_CUBE_SPHERE.faces.copy(), process=False)


def _extrude(outline: np.ndarray, thickness: float) -> trimesh.Trimesh:
    """A convex polygon (N, 2, counter-clockwise, in x-y) extruded symmetrically along z."""
    count = len(outline)
    ring = np.arange(count)
    following = (ring + 1) % count
    vertices = np.concatenate(
        [
            np.column_stack([outline, np.full(count, -thickness / 2.0)]),
            np.column_stack([outline, np.full(count, thickness / 2.0)]),
            [[*outline.mean(axis=0), -thickness / 2.0], [*outline.mean(axis=0), thickness / 2.0]],
        ]
    )
    bottom_centre, top_centre = 2 * count, 2 * count + 1
    faces = np.concatenate(
        [
            np.column_stack([np.full(count, top_centre), count + ring, count + following]),
            np.column_stack([np.full(count, bottom_centre), following, ring]),
            np.column_stack([ring, following, count + following]),
            np.column_stack([ring, count + following, count + ring]),
        ]
    )
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def _slab(outline: np.ndarray, thickness: float, plane: str, offset: Sequence[float]) -> trimesh.Trimesh:
    """`_extrude` turned so that the outline lies in the x-y ("xy") or z-y ("zy", thickness along x) plane."""
    mesh = _extrude(outline, thickness)
    if plane == "zy":
        mesh.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2.0, [0.0, 1.0, 0.0]))
    mesh.apply_translation(np.asarray(offset, dtype=np.float64))
    return mesh


def _bent_panel(width: float, height: float, thickness: float, curve: float, segments: int = 12) -> trimesh.Trimesh:
    """A panel across x, from y = 0 to `height`, its ends bent `curve` forward (+z): a back that wraps around."""
    xs = np.linspace(-width / 2.0, width / 2.0, segments + 1)
    zs = curve * (2.0 * xs / width) ** 2
    count = len(xs)
    layers = [(z_shift, y) for y in (0.0, height) for z_shift in (-thickness / 2.0, thickness / 2.0)]
    vertices = np.concatenate([np.column_stack([xs, np.full(count, y), zs + z_shift]) for z_shift, y in layers])
    back_low, front_low, back_high, front_high = (index * count for index in range(4))
    faces = []
    for i in range(count - 1):
        for a, b in ((front_low, front_high), (back_high, back_low), (front_high, back_high), (back_low, front_low)):
            faces += [[a + i, a + i + 1, b + i + 1], [a + i, b + i + 1, b + i]]
    for i, (a, b) in ((0, (front_low, back_low)), (count - 1, (back_low, front_low))):
        faces += [[a + i, b + i, b + i + 2 * count], [a + i, b + i + 2 * count, a + i + 2 * count]]
    return trimesh.Trimesh(vertices=vertices, faces=np.array(faces), process=False)


def _tilted(parts: list[Part], pivot: Point, degrees: float) -> list[Part]:
    """Parts leaned back (top towards -z) by `degrees` about a horizontal axis through `pivot`."""
    transform = trimesh.transformations.rotation_matrix(-math.radians(degrees), [1.0, 0.0, 0.0], point=pivot)
    for mesh, _ in parts:
        mesh.apply_transform(transform)
    return parts


def _leg(style: str, top: Point, foot: Point, thickness: float, turning: str | None = None) -> trimesh.Trimesh:
    if style == "square":
        return _post(foot, top, thickness)
    if style == "tapered":
        return _post(top, foot, thickness, top_scale=0.55)
    if style == "turned":
        return _turned_leg(foot, top, thickness, turning or "bead")
    return _rod(foot, top, thickness / 2.0)


def _stretchers(
    kind: str | None,
    corners: Sequence[tuple[float, float]],
    foot_of: Callable[[float, float, float], np.ndarray],
    height: float,
    radius: float,
) -> list[Part]:
    """Rails between the legs: `corners` are (x, z) of front-left, front-right, back-right, back-left."""
    if kind in (None, "none"):
        return []
    front_left, front_right, back_right, back_left = (foot_of(x, z, height) for x, z in corners)
    parts = [
        (_rod(front_left, back_left, radius), "frame"),
        (_rod(front_right, back_right, radius), "frame"),
    ]
    if kind == "box":
        parts += [(_rod(front_left, front_right, radius), "frame"), (_rod(back_left, back_right, radius), "frame")]
    else:
        middle_left, middle_right = (front_left + back_left) / 2.0, (front_right + back_right) / 2.0
        parts.append((_rod(middle_left, middle_right, radius * 0.9), "frame"))
    return parts


def _arch(width: float, rise: float, height: float, segments: int = 10) -> np.ndarray:
    """Outline of a panel `width` wide whose top rises from `height` to `height + rise` at the middle."""
    angles = np.linspace(0.0, math.pi, segments + 1)
    top = np.column_stack([np.cos(angles) * width / 2.0, height + np.sin(angles) * rise])
    return np.concatenate([[[-width / 2.0, 0.0], [width / 2.0, 0.0]], top])


# --------------------------------------------------------------------------------------------------------------------
# Generators


def _chair(p: Parameters) -> list[Part]:
    width, depth, height = _f(p, "seat_width"), _f(p, "seat_depth"), _f(p, "seat_height")
    thickness, leg = _f(p, "seat_thickness"), _f(p, "leg_thickness")
    legs_style = str(p["legs"])
    if p["seat_shape"] == "round":
        depth = width = max(width, depth)
    under_seat = height - thickness
    parts: list[Part] = []

    if p["seat_shape"] == "round":
        seat = trimesh.creation.cylinder(radius=width / 2.0, height=thickness, sections=32)
        seat.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2.0, [1.0, 0.0, 0.0]))
        seat.apply_translation([0.0, height - thickness / 2.0, 0.0])
    elif p["seat_shape"] == "rounded":
        seat = _rounded_box((width, thickness, depth), (0.0, height - thickness / 2.0, 0.0), softness=0.18)
    else:
        seat = _box((width, thickness, depth), (0.0, height - thickness / 2.0, 0.0))
    parts.append((seat, "seat"))
    if p["seat_cushion"] == "yes":
        cushion = _rounded_box((width * 0.92, 0.05, depth * 0.9), (0.0, height + 0.02, 0.01), softness=0.35)
        parts.append((cushion, "cushion"))

    if legs_style in _FOUR_LEGS:
        inset = leg / 2.0 + _f(p, "leg_inset")
        reach = 0.72 if p["seat_shape"] == "round" else 1.0
        x, z = (width / 2.0 - inset) * reach, (depth / 2.0 - inset) * reach
        corners = [(-x, z), (x, z), (x, -z), (-x, -z)]
        splay = _f(p, "splay") if legs_style == "splayed" else 0.0

        def foot_of(cx: float, cz: float, y: float) -> np.ndarray:
            share = 1.0 - y / under_seat
            return np.array([cx + math.copysign(splay, cx) * share, y, cz + math.copysign(splay, cz) * share])

        for cx, cz in corners:
            style = "round" if legs_style == "splayed" else legs_style
            parts.append((_leg(style, (cx, under_seat, cz), foot_of(cx, cz, 0.0), leg, _s(p, "turning")), "legs"))
        parts += _stretchers(_s(p, "stretchers"), corners, foot_of, 0.16, leg * 0.3)
    elif legs_style == "sled":
        for side in (-1.0, 1.0):
            x = side * (width / 2.0 - 0.03)
            front, back = depth / 2.0 - 0.03, -depth / 2.0 + 0.05
            parts += [
                (_rod((x, 0.012, front + 0.04), (x, 0.012, back), 0.012), "legs"),
                (_rod((x, 0.012, front + 0.04), (x, under_seat, front), 0.012), "legs"),
                (_rod((x, 0.012, back), (x, under_seat, back), 0.012), "legs"),
            ]
    else:  # pedestal: an office chair's column on a five-arm star
        parts.append((_rod((0.0, 0.09, 0.0), (0.0, under_seat, 0.0), max(leg, 0.03) * 0.8, 16), "legs"))
        for arm in range(5):
            angle = 2.0 * math.pi * arm / 5.0
            tip = (0.3 * math.sin(angle), 0.07, 0.3 * math.cos(angle))
            parts.append((_rod((0.0, 0.09, 0.0), tip, 0.022, 8), "legs"))
            parts.append((_rod((tip[0], 0.0, tip[2]), (tip[0], 0.05, tip[2]), 0.025, 10), "legs"))

    parts += _chair_back(p, width, depth, height, thickness, leg)
    parts += _chair_arms(p, width, depth, height, leg)
    return parts


def _chair_back(p: Parameters, width: float, depth: float, height: float, thickness: float, leg: float) -> list[Part]:
    back, back_height = str(p["back"]), _f(p, "back_height")
    post = leg * 0.85
    z = -depth / 2.0 + post / 2.0
    x = width / 2.0 - post / 2.0
    if p["seat_shape"] == "round":  # posts on the rim, not out in the air beside it
        x, z = 0.6 * width / 2.0, -0.78 * depth / 2.0
    inner = 2.0 * x - post
    round_posts = p["legs"] in ("round", "splayed", "turned", "sled", "pedestal")
    parts: list[Part] = []
    if back != "curved":
        for side in (-x, x):
            start, end = (side, height - thickness, z), (side, height + back_height, z)
            parts.append((_rod(start, end, post / 2.0) if round_posts else _post(start, end, post), "frame"))
    top = height + back_height
    if back == "solid":
        panel = _f(p, "panel_fraction") * back_height
        parts.append((_box((inner, panel, 0.02), (0.0, top - 0.02 - panel / 2.0, z)), "back"))
    elif back == "upholstered":
        parts.append(
            (_rounded_box((inner + 0.02, back_height * 0.85, 0.07), (0.0, top - back_height * 0.44, z), 0.3), "back")
        )
    elif back == "curved":
        panel = _f(p, "panel_fraction") * back_height
        bent = _bent_panel(2.0 * x + post, panel, 0.022, _f(p, "curve"))
        bent.apply_translation([0.0, top - panel, z])
        parts.append((bent, "back"))
        for side in (-0.6 * x, 0.6 * x):
            parts.append(
                (_rod((side, height - thickness, z - 0.015), (side, top - panel + 0.02, z - 0.015), 0.012), "frame")
            )
    else:
        count = int(p["back_count"] or 3)
        rail = 0.06
        parts.append((_box((inner, rail, post * 0.8), (0.0, top - rail / 2.0, z)), "frame"))
        if back == "ladder":
            for rung in range(1, count):
                y = top - rail / 2.0 - rung * (back_height * 0.7 - rail) / max(count - 1, 1)
                parts.append((_box((inner, rail * 0.8, post * 0.6), (0.0, y, z)), "frame"))
        else:
            bottom = height + 0.08
            parts.append((_box((inner, 0.035, post * 0.7), (0.0, bottom, z)), "frame"))
            for index in range(count):
                sx = -inner / 2.0 + inner * (index + 1) / (count + 1)
                start, end = (sx, bottom, z), (sx, top - rail / 2.0, z)
                if back == "spindle":
                    parts.append((_rod(start, end, 0.009, 8), "frame"))
                else:
                    slat = min(0.8 * inner / (count + 1), 0.07)
                    parts.append(
                        (_box((slat, top - rail / 2.0 - bottom, 0.015), (sx, (bottom + top) / 2.0, z)), "back")
                    )
    return _tilted(parts, (0.0, height, z), _f(p, "back_tilt_deg"))


def _chair_arms(p: Parameters, width: float, depth: float, height: float, leg: float) -> list[Part]:
    if p["arms"] not in ("bar", "panel"):
        return []
    arm_y = height + _f(p, "arm_height")
    parts: list[Part] = []
    for side in (-1.0, 1.0):
        x = side * (width / 2.0 + 0.02)
        if p["arms"] == "bar":
            parts.append((_box((0.05, 0.025, depth * 0.85), (x, arm_y, -depth * 0.05)), "frame"))
            front = depth / 2.0 - 0.06
            parts.append((_rod((x, height - 0.02, front), (x, arm_y, front), leg * 0.4), "frame"))
        else:
            parts.append(
                (_box((0.035, arm_y - height + 0.04, depth * 0.9), (x, (arm_y + height) / 2.0, -0.02)), "back")
            )
    return parts


def _table(p: Parameters) -> list[Part]:
    kind = str(p["kind"])
    length_range, height_range = {
        "dining": ((1.0, 2.1), (0.71, 0.78)),
        "coffee": ((0.75, 1.35), (0.36, 0.48)),
        "side": ((0.4, 0.65), (0.5, 0.68)),
    }[kind]
    length = _lerp(length_range, _f(p, "size"))
    height = _lerp(height_range, _f(p, "height"))
    top_shape = str(p["top"])
    depth = length * _f(p, "aspect") if top_shape in ("rectangular", "oval") else length
    top_thickness = _f(p, "top_thickness")
    leg = _f(p, "leg_thickness")
    legs_style = str(p["legs"])
    under_top = height - top_thickness
    parts: list[Part] = []

    if top_shape in ("round", "oval"):
        top = trimesh.creation.cylinder(radius=depth / 2.0, height=top_thickness, sections=40)
        top.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2.0, [1.0, 0.0, 0.0]))
        top.apply_scale([length / depth, 1.0, 1.0])
        top.apply_translation([0.0, height - top_thickness / 2.0, 0.0])
    else:
        top = _box((length, top_thickness, depth), (0.0, height - top_thickness / 2.0, 0.0))
    parts.append((top, "top"))

    if legs_style in (*_FOUR_LEGS, "hairpin"):
        inset = leg / 2.0 + _f(p, "leg_inset")
        if top_shape in ("round", "oval"):
            x, z = (length / 2.0 - inset) * 0.68, (depth / 2.0 - inset) * 0.68
        else:
            x, z = length / 2.0 - inset, depth / 2.0 - inset
        corners = [(-x, z), (x, z), (x, -z), (-x, -z)]
        splay = _f(p, "splay") if legs_style == "splayed" else 0.0

        def foot_of(cx: float, cz: float, y: float) -> np.ndarray:
            share = 1.0 - y / under_top
            return np.array([cx + math.copysign(splay, cx) * share, y, cz + math.copysign(splay, cz) * share])

        for cx, cz in corners:
            if legs_style == "hairpin":
                foot = (cx, 0.0, cz)
                for dx in (-0.05, 0.05):
                    parts.append((_rod((cx + dx, under_top, cz), foot, 0.006, 8), "metal"))
                parts.append(
                    (_rod((cx - 0.06, under_top - 0.004, cz), (cx + 0.06, under_top - 0.004, cz), 0.008, 8), "metal")
                )
                continue
            style = "round" if legs_style == "splayed" else legs_style
            parts.append((_leg(style, (cx, under_top, cz), foot_of(cx, cz, 0.0), leg, _s(p, "turning")), "legs"))
        if p.get("apron") == "yes":
            apron = _f(p, "apron_height")
            y = under_top - apron / 2.0
            parts += [
                (_box((2 * x, apron, 0.022), (0.0, y, z)), "legs"),
                (_box((2 * x, apron, 0.022), (0.0, y, -z)), "legs"),
                (_box((0.022, apron, 2 * z), (x, y, 0.0)), "legs"),
                (_box((0.022, apron, 2 * z), (-x, y, 0.0)), "legs"),
            ]
        parts += [
            (mesh, "legs") for mesh, _ in _stretchers(_s(p, "stretchers"), corners, foot_of, height * 0.2, leg * 0.3)
        ]
        if p.get("shelf") == "yes":
            parts.append((_box((2 * x + leg, 0.02, 2 * z + leg), (0.0, height * 0.25, 0.0)), "top"))
    elif legs_style == "pedestal":
        parts += _pedestal(p, under_top, max(length, depth))
    else:  # trestle: an end frame at each side, a beam between them
        x = length / 2.0 - _f(p, "leg_inset") - 0.08
        for side in (-x, x):
            parts += [
                (_box((leg, under_top - 0.06, depth * 0.35), (side, (under_top + 0.06) / 2.0, 0.0)), "legs"),
                (_box((leg * 1.4, 0.06, depth * 0.8), (side, 0.03, 0.0)), "legs"),
                (_box((leg * 1.2, 0.05, depth * 0.75), (side, under_top - 0.025, 0.0)), "legs"),
            ]
        parts.append((_box((2 * x, 0.07, 0.04), (0.0, under_top * 0.35, 0.0)), "legs"))
        if p.get("shelf") == "yes":
            parts.append((_box((2 * x - leg, 0.02, depth * 0.3), (0.0, under_top * 0.35 + 0.045, 0.0)), "top"))
    return parts


def _pedestal(p: Parameters, under_top: float, span: float) -> list[Part]:
    column_style, base = str(p["column"]), str(p["pedestal_base"])
    radius = max(_f(p, "leg_thickness"), 0.045)
    base_height = 0.04
    start, end = (0.0, base_height, 0.0), (0.0, under_top, 0.0)
    if column_style == "turned":
        column = _lathe(
            [
                (radius * 1.4, 0.0),
                (radius * 0.8, 0.15),
                (radius * 1.3, 0.35),
                (radius * 0.7, 0.6),
                (radius * 0.9, 0.9),
                (radius * 1.2, 1.0),
            ],
            start,
            end,
            sections=16,
        )
    elif column_style == "tapered":
        column = _lathe([(radius * 1.5, 0.0), (radius * 0.8, 1.0)], start, end, sections=16)
    else:
        column = _rod(start, end, radius, 16)
    parts: list[Part] = [(column, "legs")]
    reach = min(0.22 + 0.2 * span, 0.42)
    if base == "disk":
        disk = trimesh.creation.cylinder(radius=reach, height=base_height, sections=32)
        disk.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2.0, [1.0, 0.0, 0.0]))
        disk.apply_translation([0.0, base_height / 2.0, 0.0])
        parts.append((disk, "legs"))
    else:
        feet = 4 if base == "cross" else 3
        for foot in range(feet):
            angle = 2.0 * math.pi * foot / feet + math.pi / 4.0
            tip = (reach * math.sin(angle), 0.02, reach * math.cos(angle))
            parts.append((_post((0.0, base_height, 0.0), tip, 0.05, top_scale=0.6), "legs"))
    return parts


def _bed(p: Parameters) -> list[Part]:
    width, length = _f(p, "mattress_width"), _f(p, "mattress_length")
    clearance, rail_height, rail = _f(p, "clearance"), _f(p, "rail_height"), _f(p, "rail_thickness")
    legs_style, posts = str(p["legs"]), str(p["posts"])
    if legs_style == "plinth":
        clearance = min(clearance, 0.08)
    rail_top = clearance + rail_height
    mattress_bottom = rail_top - 0.05
    mattress_top = mattress_bottom + _f(p, "mattress_thickness")
    outer_x = width / 2.0 + rail
    head_z, foot_z = -length / 2.0 - rail / 2.0, length / 2.0 + rail / 2.0
    parts: list[Part] = [
        (
            _rounded_box(
                (width - 0.01, mattress_top - mattress_bottom, length - 0.01),
                (0.0, (mattress_top + mattress_bottom) / 2.0, 0.0),
                0.2,
            ),
            "mattress",
        ),
    ]
    rail_y = clearance + rail_height / 2.0
    for side in (-1.0, 1.0):
        parts.append((_box((rail, rail_height, length), (side * (width + rail) / 2.0, rail_y, 0.0)), "frame"))
    parts.append((_box((2 * outer_x, rail_height, rail), (0.0, rail_y, foot_z)), "frame"))

    if legs_style == "plinth":
        parts.append((_box((width - 0.1, clearance + 0.01, length - 0.1), (0.0, clearance / 2.0, 0.0)), "frame"))
    else:
        leg = 0.07 if legs_style == "block" else 0.055
        for side in (-1.0, 1.0):
            for z in (head_z + rail, foot_z - rail / 2.0):
                x = side * (outer_x - leg / 2.0)
                top, foot = (x, clearance + 0.01, z), (x, 0.0, z)
                if legs_style == "metal":
                    parts.append((_rod(foot, top, 0.015), "metal"))
                else:
                    style = {"block": "square", "turned": "turned", "tapered": "tapered"}[legs_style]
                    parts.append((_leg(style, top, foot, leg, "ring"), "frame"))

    head_top = mattress_top + _f(p, "headboard_height")
    post_width = _f(p, "post_width") if posts != "none" else 0.0
    board_bottom = 0.0 if legs_style == "plinth" else clearance * 0.5
    parts += _board(p, "headboard", 2 * outer_x, board_bottom, head_top, head_z)
    foot_top = mattress_top + _f(p, "footboard_height") if p["footboard"] != "none" else rail_top
    if p["footboard"] != "none":
        parts += _board(p, "footboard", 2 * outer_x, board_bottom, max(foot_top, rail_top + 0.08), foot_z)
    if posts != "none":
        tall = 2.0 if posts == "tall" else 0.0
        for side in (-1.0, 1.0):
            x = side * (outer_x + post_width / 2.0)
            parts.append((_post((x, 0.0, head_z), (x, max(head_top + 0.06, tall), head_z), post_width), "frame"))
            parts.append((_post((x, 0.0, foot_z), (x, max(foot_top + 0.06, tall), foot_z), post_width), "frame"))
        if posts == "tall":
            x = outer_x + post_width / 2.0
            for a, b in (
                ((-x, head_z), (x, head_z)),
                ((-x, foot_z), (x, foot_z)),
                ((-x, head_z), (-x, foot_z)),
                ((x, head_z), (x, foot_z)),
            ):
                parts.append((_post((a[0], tall - 0.03, a[1]), (b[0], tall - 0.03, b[1]), post_width * 0.6), "frame"))

    pillows = int(p["pillows"] or 1)
    pillow_width = min(0.62, (width - 0.08) / pillows)
    for index in range(pillows):
        x = -width / 2.0 + (index + 0.5) * width / pillows
        parts.append(
            (
                _rounded_box((pillow_width - 0.03, 0.13, 0.38), (x, mattress_top + 0.05, -length / 2.0 + 0.26), 0.45),
                "pillow",
            )
        )
    if p["blanket"] == "yes":
        cover = _f(p, "blanket_cover") * length
        z0, z1 = length / 2.0 + 0.025 - cover, length / 2.0 + 0.025
        drop = min(0.22, mattress_top - rail_top + 0.1)
        parts += [
            (_box((width + 0.05, 0.025, cover), (0.0, mattress_top + 0.012, (z0 + z1) / 2.0)), "blanket"),
            (
                _box((0.02, drop, cover), (-(width / 2.0 + 0.025), mattress_top - drop / 2.0, (z0 + z1) / 2.0)),
                "blanket",
            ),
            (_box((0.02, drop, cover), (width / 2.0 + 0.025, mattress_top - drop / 2.0, (z0 + z1) / 2.0)), "blanket"),
        ]
    return parts


def _board(p: Parameters, which: str, width: float, bottom: float, top: float, z: float) -> list[Part]:
    style = str(p[which])
    height = top - bottom
    thickness = 0.045
    if style == "panel":
        return [
            (_box((width, height, thickness), (0.0, bottom + height / 2.0, z)), "frame"),
            (_box((width + 0.04, 0.035, thickness + 0.02), (0.0, top, z)), "frame"),
        ]
    if style == "upholstered":
        return [(_rounded_box((width + 0.04, height, 0.11), (0.0, bottom + height / 2.0, z), 0.25), "upholstery")]
    if style == "arched":
        rise = _f(p, "arch")
        outline = _arch(width, rise, height - rise)
        return [(_slab(outline, thickness, "xy", (0.0, bottom, z)), "frame")]
    # slatted or spindle: rails at the top and bottom, filled with upright slats or rods
    count = int(p.get(f"{which}_count") or p.get("headboard_count") or 6)
    rail = 0.07
    low = bottom + min(0.25, height * 0.4)
    parts: list[Part] = [
        (_box((width, rail, thickness), (0.0, top - rail / 2.0, z)), "frame"),
        (_box((width, rail, thickness), (0.0, low, z)), "frame"),
        (_post((-width / 2.0 + 0.03, 0.0, z), (-width / 2.0 + 0.03, top, z), 0.06), "frame"),
        (_post((width / 2.0 - 0.03, 0.0, z), (width / 2.0 - 0.03, top, z), 0.06), "frame"),
    ]
    for index in range(count):
        x = -width / 2.0 + width * (index + 1) / (count + 1)
        if style == "spindle":
            parts.append((_rod((x, low, z), (x, top - rail / 2.0, z), 0.012, 8), "frame"))
        else:
            slat = min(0.5 * width / (count + 1), 0.1)
            parts.append((_box((slat, top - rail / 2.0 - low, 0.02), (x, (low + top - rail / 2.0) / 2.0, z)), "frame"))
    return parts


def _sofa(p: Parameters) -> list[Part]:
    seats, seat_width, depth = int(p["seats"] or 2), _f(p, "seat_width"), _f(p, "depth")
    seat_height, cushion = _f(p, "seat_height"), _f(p, "cushion_thickness")
    back_top, back_thickness = _f(p, "back_height"), _f(p, "back_thickness")
    arms, base = str(p["arms"]), str(p["base"])
    arm_width = {"none": 0.0, "wooden": 0.05}[arms] if arms in ("none", "wooden") else _f(p, "arm_width")
    inner = seats * seat_width
    width = inner + 2 * arm_width
    leg_height = 0.02 if base == "plinth" else _f(p, "leg_height")
    if base == "tapered":
        leg_height = max(leg_height, 0.14)
    base_top = seat_height - cushion
    back_z = -depth / 2.0 + back_thickness / 2.0
    seat_front = depth / 2.0
    parts: list[Part] = [
        (
            _box(
                (inner if arms != "wooden" else width, base_top - leg_height, depth),
                (0.0, (base_top + leg_height) / 2.0, 0.0),
            ),
            "upholstery",
        ),
    ]
    cushion_depth = depth - back_thickness - 0.02
    cushion_z = seat_front - cushion_depth / 2.0
    pieces = seats if p["seat_cushions"] == "per seat" else 1
    for index in range(pieces):
        x = -inner / 2.0 + (index + 0.5) * inner / pieces
        parts.append(
            (
                _rounded_box(
                    (inner / pieces - 0.01, cushion + 0.02, cushion_depth),
                    (x, base_top + cushion / 2.0, cushion_z),
                    0.25,
                ),
                "cushion",
            )
        )

    chaise = str(p["chaise"])
    if chaise != "none":
        side = -1.0 if chaise == "left" else 1.0
        extra = _f(p, "chaise_length")
        x = side * (inner / 2.0 - seat_width / 2.0)
        z = seat_front + extra / 2.0
        parts.append(
            (_box((seat_width, base_top - leg_height, extra), (x, (base_top + leg_height) / 2.0, z)), "upholstery")
        )
        parts.append(
            (
                _rounded_box((seat_width - 0.01, cushion + 0.02, extra + 0.02), (x, base_top + cushion / 2.0, z), 0.25),
                "cushion",
            )
        )

    back = str(p["back"])
    if back == "curved":
        panel = _bent_panel(width, back_top - leg_height, back_thickness, _f(p, "curve"), segments=16)
        panel.apply_translation([0.0, leg_height, back_z - _f(p, "curve") * 0.5])
        parts.append((panel, "upholstery"))
    elif back == "tight":
        parts.append(
            (
                _rounded_box(
                    (inner, back_top - leg_height, back_thickness), (0.0, (back_top + leg_height) / 2.0, back_z), 0.12
                ),
                "upholstery",
            )
        )
    else:
        frame_top = seat_height + 0.12
        parts.append(
            (
                _box(
                    (inner, frame_top - leg_height, back_thickness * 0.6),
                    (0.0, (frame_top + leg_height) / 2.0, -depth / 2.0 + back_thickness * 0.3),
                ),
                "upholstery",
            )
        )
        cushions: list[Part] = []
        height = back_top - seat_height
        for index in range(seats):
            x = -inner / 2.0 + (index + 0.5) * seat_width
            cushions.append(
                (
                    _rounded_box(
                        (seat_width - 0.02, height, 0.17), (x, seat_height + height / 2.0, back_z + 0.05), 0.3
                    ),
                    "cushion",
                )
            )
        parts += _tilted(cushions, (0.0, seat_height, back_z), _f(p, "back_tilt_deg"))

    parts += _sofa_arms(arms, p, width, depth, leg_height, seat_height, arm_width)
    parts += _sofa_base(base, width, depth, leg_height, chaise, inner, seat_width, p)
    return parts


def _sofa_arms(
    arms: str, p: Parameters, width: float, depth: float, leg_height: float, seat_height: float, arm_width: float
) -> list[Part]:
    if arms == "none":
        return []
    arm_top = _f(p, "arm_height")
    parts: list[Part] = []
    for side in (-1.0, 1.0):
        x = side * (width / 2.0 - arm_width / 2.0)
        if arms == "square":
            parts.append(
                (_box((arm_width, arm_top - leg_height, depth), (x, (arm_top + leg_height) / 2.0, 0.0)), "upholstery")
            )
        elif arms == "rolled":
            roll = arm_width * 0.62
            body_top = arm_top - roll
            parts.append(
                (_box((arm_width, body_top - leg_height, depth), (x, (body_top + leg_height) / 2.0, 0.0)), "upholstery")
            )
            parts.append(
                (
                    _rod(
                        (x + side * roll * 0.2, body_top, -depth / 2.0),
                        (x + side * roll * 0.2, body_top, depth / 2.0 + 0.02),
                        roll,
                        16,
                    ),
                    "upholstery",
                )
            )
        elif arms == "sloped":
            outline = np.array(
                [
                    [depth / 2.0, leg_height],
                    [depth / 2.0, arm_top - 0.12],
                    [0.0, arm_top - 0.02],
                    [-depth / 2.0, arm_top + 0.04],
                    [-depth / 2.0, leg_height],
                ]
            )
            parts.append((_slab(outline, arm_width, "zy", (x, 0.0, 0.0)), "upholstery"))
        else:  # wooden: a rest on two posts
            parts.append((_box((0.06, 0.03, depth * 0.95), (x, arm_top, 0.0)), "legs"))
            for z in (depth / 2.0 - 0.06, -depth / 2.0 + 0.06):
                parts.append((_post((x, seat_height - 0.1, z), (x, arm_top, z), 0.04), "legs"))
    return parts


def _sofa_base(
    base: str,
    width: float,
    depth: float,
    leg_height: float,
    chaise: str,
    inner: float,
    seat_width: float,
    p: Parameters,
) -> list[Part]:
    if base == "plinth":
        return [(_box((width - 0.06, leg_height, depth - 0.06), (0.0, leg_height / 2.0, 0.0)), "legs")]
    x, z = width / 2.0 - 0.06, depth / 2.0 - 0.06
    spots = [(-x, z), (x, z), (x, -z), (-x, -z)]
    if width > 2.0:
        spots += [(0.0, z), (0.0, -z)]
    if chaise != "none":
        side = -1.0 if chaise == "left" else 1.0
        spots.append((side * (inner / 2.0 - 0.06), depth / 2.0 + _f(p, "chaise_length") - 0.06))
    parts: list[Part] = []
    if base == "sled":
        for side in (-x, x):
            parts += [
                (_rod((side, 0.01, z + 0.03), (side, 0.01, -z - 0.03), 0.012), "metal"),
                (_rod((side, 0.01, z), (side, leg_height + 0.01, z), 0.012), "metal"),
                (_rod((side, 0.01, -z), (side, leg_height + 0.01, -z), 0.012), "metal"),
            ]
        return parts
    for sx, sz in spots:
        top, foot = (sx, leg_height + 0.01, sz), (sx, 0.0, sz)
        if base == "buns":
            parts.append(
                (_lathe([(0.03, 0.0), (0.045, 0.3), (0.045, 0.6), (0.035, 0.9), (0.035, 1.0)], foot, top), "legs")
            )
        elif base == "tapered":
            splayed = (sx + math.copysign(0.03, sx), 0.0, sz + math.copysign(0.03, sz))
            parts.append((_lathe([(0.012, 0.0), (0.022, 1.0)], splayed, top), "legs"))
        else:
            parts.append((_post(foot, top, 0.05), "legs"))
    return parts


_GENERATORS: dict[str, Callable[[Parameters], list[Part]]] = {
    "bed": _bed,
    "chair": _chair,
    "sofa": _sofa,
    "table": _table,
}


def _f(parameters: Parameters, name: str) -> float:
    value = parameters[name]
    if value is None or isinstance(value, str):
        raise ValueError(f"parameter {name!r} is {value!r}, not a number")
    return float(value)


def _s(parameters: Parameters, name: str) -> str | None:
    value = parameters.get(name)
    return None if value is None else str(value)


def _lerp(bounds: tuple[float, float], share: float) -> float:
    return bounds[0] + share * (bounds[1] - bounds[0])


# --------------------------------------------------------------------------------------------------------------------
# Finishes per category


def _finishes(category: str, parameters: Parameters, rng: np.random.Generator) -> dict[str, Finish]:
    def pick(options: Sequence[Finish]) -> Finish:
        return options[int(rng.integers(len(options)))]

    wood = pick(WOODS) if rng.random() < 0.75 else pick(PAINTS)
    metal = pick(METALS)
    fabric = pick(FABRICS) if rng.random() < 0.75 else pick(LEATHERS)
    if category == "chair":
        upholstered = parameters["back"] == "upholstered" or rng.random() < 0.35
        legs = metal if parameters["legs"] in ("sled", "pedestal") or rng.random() < 0.15 else wood
        seat = fabric if upholstered else wood
        back = fabric if parameters["back"] in ("upholstered",) or (upholstered and rng.random() < 0.5) else wood
        return {
            "legs": legs,
            "frame": wood if legs is not metal or rng.random() < 0.5 else metal,
            "seat": seat,
            "back": back,
            "cushion": pick(FABRICS),
        }
    if category == "table":
        top = wood if rng.random() < 0.85 else pick(PAINTS + METALS[:1])
        legs = (
            metal
            if parameters["legs"] in ("hairpin",) or rng.random() < 0.2
            else (wood if rng.random() < 0.8 else pick(PAINTS))
        )
        return {"top": top, "legs": legs, "metal": metal}
    if category == "bed":
        frame = wood if rng.random() < 0.8 else fabric
        return {
            "frame": frame,
            "upholstery": fabric,
            "metal": metal,
            "mattress": pick(BEDDING),
            "pillow": pick(BEDDING),
            "blanket": pick(FABRICS + BEDDING),
        }
    legs = metal if parameters["base"] == "sled" else pick(WOODS + METALS[:1])
    cushion = fabric if rng.random() < 0.8 else pick(FABRICS)
    return {"upholstery": fabric, "cushion": cushion, "legs": legs, "metal": metal}


# --------------------------------------------------------------------------------------------------------------------
# Shapes


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
        return _concatenate([mesh for mesh, _ in self.parts])

    def scene(self, finishes: Mapping[str, Finish] | None = None, normalised: bool = False) -> trimesh.Scene:
        """One geometry per role, with its finish as a PBR material (wood grain as a texture)."""
        finishes = self.finishes if finishes is None else finishes
        transform = _normalising_transform(self.mesh()) if normalised else np.eye(4)
        scene = trimesh.Scene()
        for role, meshes in _by_role(self.parts).items():
            finish = finishes[role]
            merged, uv = _with_grain_uv(meshes) if finish.grain else (_concatenate(meshes), None)
            merged.apply_transform(transform)
            texture = _grain_texture(finish.srgb, _texture_seed(finish)) if finish.grain else None
            material = PBRMaterial(
                name=role,
                baseColorFactor=[1.0, 1.0, 1.0, 1.0] if finish.grain else [*_srgb_to_linear(finish.srgb), 1.0],
                baseColorTexture=texture,
                metallicFactor=finish.metallic,
                roughnessFactor=finish.roughness,
            )
            merged.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
            scene.add_geometry(merged, geom_name=role)
        return scene


def design_catalogue(shapes_per_category: int = 60, seed: int = 0) -> tuple[DemoShape, ...]:
    """Every shape's parameters, finishes and parts, drawn as generate_demo draws them (nothing is written)."""
    if shapes_per_category < 1:
        raise ValueError(f"shapes_per_category must be at least 1, got {shapes_per_category}")
    shapes: list[DemoShape] = []
    for category_index, category in enumerate(CATEGORIES):
        spec = _SPECS[category]
        rng = np.random.default_rng([seed, category_index])
        dealt = _DEALT[category]
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
                if not _valid(category, parameters):
                    continue
                vector = _parameter_vector(spec, parameters)
                if vectors and min(float(np.linalg.norm(vector - other)) for other in vectors) < (
                    _MIN_PARAMETER_DISTANCE
                ):
                    continue
                break
            else:
                raise RuntimeError(
                    f"cannot draw {shapes_per_category} distinct {category} shapes (stopped at {index}); "
                    "ask for fewer shapes per category"
                )
            vectors.append(vector)
            finishes = _finishes(category, parameters, rng)
            parts = tuple(_GENERATORS[category](parameters))
            faces = sum(len(mesh.faces) for mesh, _ in parts)
            if faces > MAX_FACES:  # the generators are sized to stay below; a change that breaks it must show
                raise RuntimeError(f"{category} {index} has {faces} faces, over the budget of {MAX_FACES}")
            name = f"{category}_{index:03d}"
            file_format = FORMATS[(category_index + index) % len(FORMATS)]
            shape_id = shape_id_for_mesh(f"{category}/{name}.{file_format}")
            shapes.append(DemoShape(shape_id, category, index, parameters, dict(finishes), parts, file_format))
    return tuple(shapes)


def _by_role(parts: Sequence[Part]) -> dict[str, list[trimesh.Trimesh]]:
    grouped: dict[str, list[trimesh.Trimesh]] = {}
    for mesh, role in parts:
        grouped.setdefault(role, []).append(mesh)
    return dict(sorted(grouped.items()))


def _concatenate(meshes: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    vertices, faces, offset = [], [], 0
    for mesh in meshes:
        vertices.append(np.asarray(mesh.vertices, dtype=np.float64))
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + offset)
        offset += len(mesh.vertices)
    return trimesh.Trimesh(vertices=np.concatenate(vertices), faces=np.concatenate(faces), process=False)


def _normalising_transform(mesh: trimesh.Trimesh) -> np.ndarray:
    """The transform of indexer.meshes.normalise: bounding box centred, largest half-extent 1."""
    lower, upper = mesh.bounds
    half_extent = float((upper - lower).max()) / 2.0
    transform = np.diag([1.0 / half_extent] * 3 + [1.0])
    transform[:3, 3] = -(lower + upper) / 2.0 / half_extent
    return transform


def _with_grain_uv(meshes: Sequence[trimesh.Trimesh]) -> tuple[trimesh.Trimesh, np.ndarray]:
    """Faces unshared and box-projected: each face maps its two in-plane axes, the grain along the piece's length."""
    vertices, uvs = [], []
    for mesh in meshes:
        corners = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]  # (F, 3, 3)
        normals = np.abs(np.asarray(mesh.face_normals))
        dominant = normals.argmax(axis=1)
        longest = int(np.ptp(mesh.vertices, axis=0).argmax())
        # (u, v) axes per dominant axis; v, the grain, follows the longest axis where it lies in the face.
        axes = np.array([[a for a in range(3) if a != d] for d in range(3)])[dominant]
        grain_first = axes[:, 0] == longest
        axes[grain_first] = axes[grain_first][:, ::-1]
        u = np.take_along_axis(corners, axes[:, None, 0:1].repeat(3, axis=1), axis=2)[..., 0]
        v = np.take_along_axis(corners, axes[:, None, 1:2].repeat(3, axis=1), axis=2)[..., 0]
        # One texture tile spans 0.4 m across the grain and 1.2 m along it.
        uvs.append(np.stack([u / 0.4, v / 1.2], axis=-1).reshape(-1, 2))
        vertices.append(corners.reshape(-1, 3))
    stacked = np.concatenate(vertices)
    faces = np.arange(len(stacked)).reshape(-1, 3)
    return trimesh.Trimesh(vertices=stacked, faces=faces, process=False), np.concatenate(uvs)


def _texture_seed(finish: Finish) -> int:
    return zlib.crc32(finish.name.encode())  # stable across processes, unlike hash()


def _grain_texture(srgb: Sequence[float], seed: int, size: int = 128) -> Image.Image:
    """A tileable wood grain: rings across u that wander along v, fine streaks, a little noise."""
    rng = np.random.default_rng(seed)
    u = np.arange(size) / size
    v = u[:, None]
    wander = 0.08 * np.sin(2 * np.pi * (v + rng.random())) + 0.03 * np.sin(2 * np.pi * (3 * v + rng.random()))
    rings = np.sin(2 * np.pi * (int(rng.integers(4, 8)) * u[None, :] + wander)) ** 2
    streaks = np.real(np.fft.ifft(np.fft.fft(rng.standard_normal(size)) * (np.arange(size) < 24)))
    streaks = streaks / (np.abs(streaks).max() + 1e-9)
    shade = 0.9 + 0.16 * rings + 0.07 * streaks[None, :] + 0.025 * rng.standard_normal((size, size))
    pixels = np.clip(np.asarray(srgb)[None, None, :] * shade[..., None], 0.0, 1.0)
    return Image.fromarray(np.round(pixels * 255).astype(np.uint8))


def _srgb_to_linear(srgb: Sequence[float]) -> list[float]:
    values = np.asarray(srgb, dtype=np.float64)
    linear = np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)
    return [float(value) for value in linear]


# --------------------------------------------------------------------------------------------------------------------
# Files


def _write_mesh(shape: DemoShape, path: Path) -> None:
    """The shape in its format; colours and textures where the format can hold them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = shape.file_format
    if fmt == "obj":
        for name, content in _obj_files(shape, path.stem).items():
            _write_atomic(path.parent / name, content)
        return
    data: Any
    if fmt == "glb":
        data = trimesh.exchange.gltf.export_glb(shape.scene())
    elif fmt == "ply":
        data = _coloured_mesh(shape).export(file_type="ply")
    else:
        data = shape.mesh().export(file_type=fmt)
    _write_atomic(path, data if isinstance(data, bytes) else str(data).encode())


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
    mesh = _concatenate(meshes)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=np.concatenate(colours).astype(np.uint8))
    return mesh


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


# --------------------------------------------------------------------------------------------------------------------
# Photos


def _photo_camera(rng: np.random.Generator, points: np.ndarray, yfov_deg: float) -> np.ndarray:
    """A camera-to-world pose (OpenGL) that frames `points` like an object crop, from a random viewpoint."""
    azimuth = math.radians(rng.uniform(0.0, 360.0))
    elevation = math.radians(rng.uniform(0.0, 35.0))
    roll = math.radians(float(np.clip(rng.normal(0.0, 3.0), -8.0, 8.0)))
    fill = rng.uniform(0.5, 0.9)
    target = rng.uniform(-0.04, 0.04, size=2)
    rotation = (
        trimesh.transformations.rotation_matrix(azimuth, [0.0, 1.0, 0.0])
        @ trimesh.transformations.rotation_matrix(-elevation, [1.0, 0.0, 0.0])
        @ trimesh.transformations.rotation_matrix(roll, [0.0, 0.0, 1.0])
    )[:3, :3]
    tan_half = math.tan(math.radians(yfov_deg) / 2.0)
    offset = np.array([0.0, 0.0, 3.0])
    # The projected extent falls as 1/distance and the centre moves with the camera's sideways shift: a few fixed
    # point steps settle both.
    for _ in range(6):
        in_camera = (points - rotation @ offset) @ rotation
        depth = -in_camera[:, 2]
        projected = in_camera[:, :2] / depth[:, None] / tan_half
        lower, upper = projected.min(axis=0), projected.max(axis=0)
        extent = float((upper - lower).max()) / 2.0
        offset[2] *= extent / fill
        offset[:2] += ((lower + upper) / 2.0 - target) * tan_half * float(np.median(depth))
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = rotation @ offset
    return pose


def _kelvin_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Colour of a black body (Tanner Helland's fit), brightest channel 1."""
    t = kelvin / 100.0
    red = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    green = 99.47 * math.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
    blue = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * math.log(t - 10) - 305.04)
    rgb = np.clip([red, green, blue], 0.0, 255.0)
    rgb = rgb / rgb.max()
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def _photo_lights(rng: np.random.Generator) -> list[Light]:
    def towards_object(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
        azimuth, elevation = math.radians(azimuth_deg), math.radians(elevation_deg)
        source = (math.sin(azimuth) * math.cos(elevation), math.sin(elevation), math.cos(azimuth) * math.cos(elevation))
        return (-source[0], -source[1], -source[2])

    key_azimuth = rng.uniform(-110.0, 110.0)
    return [
        Light(
            "directional",
            direction=towards_object(key_azimuth, rng.uniform(15.0, 70.0)),
            colour=_kelvin_to_rgb(rng.uniform(3000.0, 7500.0)),
            intensity=rng.uniform(2.2, 4.5),
        ),
        Light(
            "directional",
            direction=towards_object(-key_azimuth * rng.uniform(0.5, 1.2), rng.uniform(-5.0, 35.0)),
            colour=_kelvin_to_rgb(rng.uniform(4000.0, 9000.0)),
            intensity=rng.uniform(0.4, 1.5),
        ),
        Light("ambient", colour=_kelvin_to_rgb(rng.uniform(5000.0, 9000.0)), intensity=rng.uniform(0.15, 0.45)),
    ]


def _random_colour(rng: np.random.Generator, saturation: float = 0.5) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, saturation), rng.uniform(0.3, 0.95))
    return np.array(rgb) * 255.0


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A backdrop: a gradient, cloudy noise, a wall meeting a floor, or a pattern."""
    kind = ("gradient", "noise", "room", "room", "pattern")[int(rng.integers(5))]
    rows, columns = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    first, second = _random_colour(rng), _random_colour(rng)
    if kind == "gradient":
        angle = rng.uniform(0.0, 2 * math.pi)
        ramp = (columns - 0.5) * math.cos(angle) + (rows - 0.5) * math.sin(angle)
        share = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    elif kind == "noise":
        share = sum(weight * _smooth_noise(rng, size, cells) for weight, cells in ((0.6, 3), (0.3, 7), (0.1, 17)))
    elif kind == "room":
        horizon = rng.uniform(0.5, 0.85)
        floor = rows > horizon
        wall_shade = 1.0 + 0.15 * (0.5 - rows)
        floor_shade = 0.85 + 0.3 * (rows - horizon)
        if rng.random() < 0.5:  # floorboards
            boards = np.floor((columns + rng.random()) * rng.integers(4, 12))
            floor_shade = floor_shade * (0.92 + 0.16 * ((boards * 0.618) % 1.0))
        wall = first * wall_shade[..., None]
        ground = second * floor_shade[..., None]
        image = np.where(floor[..., None], ground, wall)
        skirting = np.abs(rows - horizon) < rng.uniform(0.005, 0.025)
        image[skirting & (rows < horizon)] = _random_colour(rng, 0.2)
        return np.clip(image, 0, 255).astype(np.uint8)
    else:
        period = rng.uniform(0.04, 0.3)
        angle = rng.uniform(0.0, math.pi)
        along = columns * math.cos(angle) + rows * math.sin(angle)
        across = -columns * math.sin(angle) + rows * math.cos(angle)
        if rng.random() < 0.5:
            share = (np.floor(along / period) % 2).astype(np.float64)
        else:
            share = ((np.floor(along / period) + np.floor(across / period)) % 2).astype(np.float64)
    image = first * (1.0 - share[..., None]) + second * share[..., None]
    pixels = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return np.asarray(pixels.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))))


def _jittered(finishes: Mapping[str, Finish], rng: np.random.Generator) -> dict[str, Finish]:
    """The finishes with a small change of hue, saturation and brightness, as lighting and cameras do to a photo."""
    jittered = {}
    for role, finish in sorted(finishes.items()):
        hue, saturation, value = colorsys.rgb_to_hsv(*finish.srgb)
        hue = (hue + rng.uniform(-0.02, 0.02)) % 1.0
        saturation = float(np.clip(saturation * rng.uniform(0.8, 1.15), 0.0, 1.0))
        value = float(np.clip(value * rng.uniform(0.85, 1.12), 0.0, 1.0))
        red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
        jittered[role] = Finish(finish.name, (red, green, blue), finish.metallic, finish.roughness, finish.grain)
    return jittered


def _finish_photo(rng: np.random.Generator, rgb: np.ndarray) -> tuple[Image.Image, int]:
    """Sensor noise and a touch of blur, and the JPEG quality to save with."""
    noisy = rgb.astype(np.float64) + rng.normal(0.0, rng.uniform(0.5, 4.0), size=rgb.shape)
    image = Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    return image, int(rng.integers(82, 96))


def _photo_splits(photos_per_shape: int) -> list[Split]:
    """Per shape: a quarter of the photos test (at least one), a quarter val (from three photos on), the rest train."""
    test = max(1, round(photos_per_shape / 4))
    val = round(photos_per_shape / 4) if photos_per_shape >= 3 else 0
    train = photos_per_shape - test - val
    splits: list[Split] = ["train"] * train
    splits += ["val"] * val
    splits += ["test"] * test
    return splits


# --------------------------------------------------------------------------------------------------------------------
# The catalogue


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
    splits = _photo_splits(photos_per_shape)
    rows: list[dict[str, str]] = []
    with ShadedRenderer(photo_size, _YFOV_DEG) as renderer:
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
    _write_atomic(root / "shapes.json", _shapes_json(shapes).encode())

    summary = {
        "shapes": len(shapes),
        "photos": len(rows),
        "categories": {category: sum(s.category == category for s in shapes) for category in CATEGORIES},
        "formats": {fmt: sum(s.file_format == fmt for s in shapes) for fmt in FORMATS},
        "splits": {split: sum(row["split"] == split for row in rows) for split in ("train", "val", "test")},
        "seconds": round(time.perf_counter() - started, 2),
    }
    _write_atomic(root / _COMPLETE, json.dumps({"settings": settings, "summary": summary}, indent=2).encode())
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
    _write_atomic(root / _IN_PROGRESS, json.dumps(settings).encode())


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
    points = trimesh.transform_points(mesh.vertices, _normalising_transform(mesh))
    category_index = CATEGORIES.index(shape.category)
    for k, (photo_name, mask_name) in enumerate(zip(photo_names, mask_names, strict=True)):
        rng = np.random.default_rng([seed, category_index, shape.index, k])
        scene = shape.scene(_jittered(shape.finishes, rng), normalised=True)
        pose = _photo_camera(rng, points, _YFOV_DEG)
        lights = _photo_lights(rng)
        background = _background(rng, renderer.size)
        rgb, mask = renderer.render(scene, pose, lights, background)
        image, quality = _finish_photo(rng, rgb)
        for relative, picture, options in (
            (photo_name, image, {"format": "JPEG", "quality": quality}),
            (mask_name, Image.fromarray(mask.astype(np.uint8) * 255), {"format": "PNG"}),
        ):
            buffer = io.BytesIO()
            picture.save(buffer, **options)
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(root / relative, buffer.getvalue())


def _write_queries(path: Path, rows: Sequence[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["image", "shape_id", "split", "mask", "category"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(path, buffer.getvalue().encode())


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
