"""Furniture parts: boxes, rods, turned profiles, rounded cushions, bent panels, legs and stretchers.

Metres, y up, the front of every piece faces +z (where view 0 of shapes.render looks from). A part is a mesh and
the role that names its finish ("legs", "seat", ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import trimesh

Point = Sequence[float] | np.ndarray
Part = tuple[trimesh.Trimesh, str]  # a piece and the role naming its finish


def box(size: Sequence[float], centre: Sequence[float]) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=np.asarray(size, dtype=np.float64))
    mesh.apply_translation(np.asarray(centre, dtype=np.float64))
    return mesh


def align(mesh: trimesh.Trimesh, start: Point, end: Point) -> trimesh.Trimesh:
    """`mesh`, built along +z from 0 to the segment's length, moved onto the segment."""
    start_point = np.asarray(start, dtype=np.float64)
    direction = np.asarray(end, dtype=np.float64) - start_point
    transform = trimesh.geometry.align_vectors([0.0, 0.0, 1.0], direction / np.linalg.norm(direction))
    transform[:3, 3] = start_point
    mesh.apply_transform(transform)
    return mesh


def rod(start: Point, end: Point, radius: float, sections: int = 12) -> trimesh.Trimesh:
    length = float(np.linalg.norm(np.subtract(end, start)))
    mesh = trimesh.creation.cylinder(radius=radius, height=length, sections=sections)
    mesh.apply_translation([0.0, 0.0, length / 2.0])
    return align(mesh, start, end)


def lathe(profile: Sequence[tuple[float, float]], start: Point, end: Point, sections: int = 12) -> trimesh.Trimesh:
    """A turned piece: `profile` is (radius, fraction of the length) from start to end, closed at both ends."""
    length = float(np.linalg.norm(np.subtract(end, start)))
    points = [(0.0, 0.0), *((radius, fraction * length) for radius, fraction in profile), (0.0, length)]
    mesh = trimesh.creation.revolve(np.array(points), sections=sections)
    return align(mesh, start, end)


def post(start: Point, end: Point, width: float, top_scale: float = 1.0) -> trimesh.Trimesh:
    """A square-section post from start to end, its far end scaled by `top_scale` (a tapered leg when < 1)."""
    length = float(np.linalg.norm(np.subtract(end, start)))
    mesh = trimesh.creation.box(extents=(width, width, length))
    mesh.apply_translation([0.0, 0.0, length / 2.0])
    far = mesh.vertices[:, 2] > length / 2.0
    vertices = mesh.vertices.copy()
    vertices[far, :2] *= top_scale
    mesh.vertices = vertices
    return align(mesh, start, end)


_TURNINGS: dict[str, tuple[tuple[float, float], ...]] = {
    # (radius as a share of the leg's half thickness, position from the foot up)
    "bead": ((0.7, 0.0), (0.75, 0.06), (0.55, 0.1), (0.55, 0.3), (1.0, 0.36), (0.55, 0.42), (0.6, 0.75), (1.0, 0.8)),
    "vase": ((0.55, 0.0), (0.65, 0.05), (0.5, 0.12), (1.0, 0.35), (0.75, 0.55), (0.5, 0.68), (0.9, 0.78), (1.0, 1.0)),
    "ring": ((0.8, 0.0), (0.8, 0.08), (0.5, 0.1), (0.5, 0.45), (0.95, 0.5), (0.95, 0.55), (0.5, 0.6), (0.9, 0.9)),
}


def turned_leg(start: Point, end: Point, thickness: float, turning: str) -> trimesh.Trimesh:
    radius = thickness / 2.0
    profile = [(share * radius, position) for share, position in _TURNINGS[turning]]
    return lathe([*profile, (radius, 1.0)], start, end)


# A cube subdivided twice and blown up to the unit sphere: rounded boxes are shaped from it.
_CUBE_SPHERE = trimesh.creation.box(extents=(2.0, 2.0, 2.0)).subdivide().subdivide()
_CUBE_SPHERE_VERTICES = _CUBE_SPHERE.vertices / np.linalg.norm(_CUBE_SPHERE.vertices, axis=1, keepdims=True)


def rounded_box(size: Sequence[float], centre: Sequence[float], softness: float = 0.3) -> trimesh.Trimesh:
    """A cushion: a superellipsoid filling `size`; softness 0 is a box, 1 an ellipsoid."""
    exponent = float(np.clip(softness, 0.05, 1.0))
    shaped = np.sign(_CUBE_SPHERE_VERTICES) * np.abs(_CUBE_SPHERE_VERTICES) ** exponent
    vertices = shaped * (np.asarray(size, dtype=np.float64) / 2.0) + np.asarray(centre, dtype=np.float64)
    return trimesh.Trimesh(vertices=vertices, faces=_CUBE_SPHERE.faces.copy(), process=False)


def extrude(outline: np.ndarray, thickness: float) -> trimesh.Trimesh:
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


def slab(outline: np.ndarray, thickness: float, plane: str, offset: Sequence[float]) -> trimesh.Trimesh:
    """`extrude` turned so that the outline lies in the x-y ("xy") or z-y ("zy", thickness along x) plane."""
    mesh = extrude(outline, thickness)
    if plane == "zy":
        mesh.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2.0, [0.0, 1.0, 0.0]))
    mesh.apply_translation(np.asarray(offset, dtype=np.float64))
    return mesh


def bent_panel(width: float, height: float, thickness: float, curve: float, segments: int = 12) -> trimesh.Trimesh:
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


def tilted(parts: list[Part], pivot: Point, degrees: float) -> list[Part]:
    """Parts leaned back (top towards -z) by `degrees` about a horizontal axis through `pivot`."""
    transform = trimesh.transformations.rotation_matrix(-math.radians(degrees), [1.0, 0.0, 0.0], point=pivot)
    for mesh, _ in parts:
        mesh.apply_transform(transform)
    return parts


def leg(style: str, top: Point, foot: Point, thickness: float, turning: str | None = None) -> trimesh.Trimesh:
    if style == "square":
        return post(foot, top, thickness)
    if style == "tapered":
        return post(top, foot, thickness, top_scale=0.55)
    if style == "turned":
        return turned_leg(foot, top, thickness, turning or "bead")
    return rod(foot, top, thickness / 2.0)


def stretchers(
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
        (rod(front_left, back_left, radius), "frame"),
        (rod(front_right, back_right, radius), "frame"),
    ]
    if kind == "box":
        parts += [(rod(front_left, front_right, radius), "frame"), (rod(back_left, back_right, radius), "frame")]
    else:
        middle_left, middle_right = (front_left + back_left) / 2.0, (front_right + back_right) / 2.0
        parts.append((rod(middle_left, middle_right, radius * 0.9), "frame"))
    return parts


def arch(width: float, rise: float, height: float, segments: int = 10) -> np.ndarray:
    """Outline of a panel `width` wide whose top rises from `height` to `height + rise` at the middle."""
    angles = np.linspace(0.0, math.pi, segments + 1)
    top = np.column_stack([np.cos(angles) * width / 2.0, height + np.sin(angles) * rise])
    return np.concatenate([[[-width / 2.0, 0.0], [width / 2.0, 0.0]], top])


def by_role(parts: Sequence[Part]) -> dict[str, list[trimesh.Trimesh]]:
    grouped: dict[str, list[trimesh.Trimesh]] = {}
    for mesh, role in parts:
        grouped.setdefault(role, []).append(mesh)
    return dict(sorted(grouped.items()))


def concatenate(meshes: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    vertices, faces, offset = [], [], 0
    for mesh in meshes:
        vertices.append(np.asarray(mesh.vertices, dtype=np.float64))
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + offset)
        offset += len(mesh.vertices)
    return trimesh.Trimesh(vertices=np.concatenate(vertices), faces=np.concatenate(faces), process=False)


def normalising_transform(mesh: trimesh.Trimesh) -> np.ndarray:
    """The transform of shapes.meshes.normalise: bounding box centred, largest half-extent 1."""
    lower, upper = mesh.bounds
    half_extent = float((upper - lower).max()) / 2.0
    transform = np.diag([1.0 / half_extent] * 3 + [1.0])
    transform[:3, 3] = -(lower + upper) / 2.0 / half_extent
    return transform
