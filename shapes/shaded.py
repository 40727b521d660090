"""Colour renders of a mesh with its own look: materials, textures, vertex or face colours under pyrender's lit PBR.

The grey and normal passes of shapes.render ignore what a model looks like; photos of objects do not. This module
renders the look (for synthetic photos, e.g. the demo catalogue) from the same cameras: `load_textured` normalises
exactly as `shapes.meshes.normalise(load_mesh(path))` does, so a colour render lines up pixel for pixel with the
grey, normal and mask passes of the same file and camera.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import trimesh
from PIL import Image

from photo2cad.shapes.gl import OffscreenContext
from photo2cad.shapes.meshes import MeshLoadError, load_mesh

log = logging.getLogger(__name__)

LightKind = Literal["directional", "point", "ambient"]
LightFrame = Literal["camera", "world"]

# Faces meeting at a smaller angle are shaded as one smooth surface (a 12-sided cylinder's sides), larger ones keep a
# hard edge (a box's). Files seldom carry normals worth trusting, so they are always recomputed.
_CREASE_ANGLE_DEG = 40.0
# Corner pairs compared by the crease smoothing; a vertex shared by thousands of faces (a fan) would need millions,
# so such meshes are shaded flat instead.
_MAX_SMOOTHING_PAIRS = 20_000_000
# A surface without a colour of its own: light grey (sRGB), like an unpainted model in a CAD viewer.
_DEFAULT_SRGB = (0.8, 0.8, 0.8)
_MAX_TEXTURE_SIDE = 2048


@dataclass(frozen=True)
class Light:
    """One light. `direction` is where a directional light shines towards, `position` where a point light sits.

    Both are in the light's frame: "camera" (x right, y up, z towards the viewer; the light moves with the camera) or
    "world". An ambient light lights every surface evenly and ignores direction and position. `colour` is linear RGB
    in [0, 1]; `intensity` is pyrender's (lux for directional, candela for point lights).
    """

    kind: LightKind = "directional"
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    intensity: float = 3.0
    frame: LightFrame = "camera"


# A key light above-left of the viewer, a weaker fill from the right, and some ambient so nothing turns black. Exposed
# so that a white matte surface facing the key light stays below 255 (about 220) and its faces keep their shading:
# brighter lights washed white and light materials out to a flat 255, the shape lost against a light background.
DEFAULT_LIGHTS: tuple[Light, ...] = (
    Light(kind="directional", direction=(0.4, -0.6, -1.0), intensity=2.2, frame="camera"),
    Light(kind="directional", direction=(-0.7, 0.1, -0.6), intensity=0.7, frame="camera"),
    Light(kind="ambient", intensity=0.15),
)


def load_textured(path: Path) -> trimesh.Scene:
    """The file's geometry with its materials, normalised exactly as `normalise(load_mesh(path))`.

    Raises MeshLoadError for whatever load_mesh refuses. A texture image that is missing or unreadable leaves its
    material's flat colour (trimesh drops the image and warns); materials that cannot be read at all leave the
    surfaces uncoloured (logged).
    """
    path = Path(path)
    # The same load and checks as the grey renders, so the centre and scale come from identical geometry.
    reference = load_mesh(path)
    lower, upper = reference.bounds
    half_extent = float((upper - lower).max()) / 2.0
    normalising = np.diag([1.0 / half_extent] * 3 + [1.0])
    normalising[:3, 3] = -(lower + upper) / 2.0 / half_extent
    try:
        loaded = trimesh.load_scene(path, file_type=path.suffix.lower()[1:])
        parts = [part for part in loaded.dump() if isinstance(part, trimesh.Trimesh)]
    except Exception as error:  # a material trimesh chokes on; the geometry itself loaded fine above
        log.warning("%s: materials unreadable (%s: %.200s); rendering it uncoloured", path, type(error).__name__, error)
        parts = [reference]
    scene = trimesh.Scene()
    for index, part in enumerate(parts):
        if len(part.faces) == 0:
            continue
        part.apply_transform(normalising)
        scene.add_geometry(part, geom_name=f"part_{index}")
    if len(scene.geometry) == 0:
        raise MeshLoadError(path, "no faces (no triangle geometry in the file)")
    return scene


class ShadedRenderer:
    """Lit colour renders at size x size px; one offscreen GL context, reused, used only by the thread that made it."""

    def __init__(self, size: int, yfov_deg: float = 56.0) -> None:
        self._context: OffscreenContext | None = OffscreenContext(size)
        self.size = size
        self.yfov_deg = yfov_deg
        self.platform = self._context.platform
        self._pyrender = pyrender = self._context.pyrender
        self._scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(0.0, 0.0, 0.0))
        self._camera = pyrender.PerspectiveCamera(yfov=np.radians(yfov_deg), znear=0.05, zfar=100.0, aspectRatio=1.0)
        self._camera_node = self._scene.add(self._camera, pose=np.eye(4))

    def render(
        self,
        scene: trimesh.Scene | trimesh.Trimesh,
        camera_pose: np.ndarray,
        lights: Sequence[Light] | None = None,
        background: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(S, S, 3) uint8 RGB composited over `background` (white when None) and the (S, S) bool silhouette.

        `camera_pose` is camera-to-world, OpenGL convention (the camera looks down its -z axis), as
        shapes.render.camera_poses gives.
        """
        if self._context is None:
            raise RuntimeError("the ShadedRenderer is closed")
        camera_pose = np.asarray(camera_pose, dtype=np.float64)
        if camera_pose.shape != (4, 4):
            raise ValueError(f"camera_pose must be a (4, 4) matrix, got shape {camera_pose.shape}")
        if background is not None and (background.shape != (self.size, self.size, 3) or background.dtype != np.uint8):
            raise ValueError(
                f"background must be a ({self.size}, {self.size}, 3) uint8 image, got {background.shape} "
                f"{background.dtype}"
            )
        pyrender = self._pyrender
        meshes = _pyrender_meshes(pyrender, scene, camera_pose[:3, 3])
        if not meshes:
            raise ValueError("cannot render a scene without faces")
        ambient = np.zeros(3)
        placed_lights = []
        for light in DEFAULT_LIGHTS if lights is None else lights:
            if light.kind == "ambient":
                ambient += np.asarray(light.colour) * light.intensity
            else:
                placed_lights.append((_pyrender_light(pyrender, light), _light_pose(light, camera_pose)))
        self._fit_depth_range(scene, camera_pose)
        self._scene.set_pose(self._camera_node, camera_pose)
        self._scene.ambient_light = ambient
        nodes = []
        try:
            nodes += [self._scene.add(mesh) for mesh in meshes]
            nodes += [self._scene.add(light, pose=pose) for light, pose in placed_lights]
            flags = pyrender.RenderFlags.RGBA | pyrender.RenderFlags.SKIP_CULL_FACES
            rgba, depth = self._context.render(self._scene, flags)
        finally:
            for node in nodes:
                self._scene.remove_node(node)
            self._context.free(meshes)
        mask = depth > 0
        # The multisampled colour is premultiplied by coverage (cleared to transparent black): blending by alpha
        # keeps the antialiased edge instead of a jagged cut-out.
        alpha = rgba[..., 3:].astype(np.float32) / 255.0
        backdrop = np.full((self.size, self.size, 3), 255.0, np.float32) if background is None else background
        composite = rgba[..., :3].astype(np.float32) + (1.0 - alpha) * backdrop
        return np.clip(np.rint(composite), 0, 255).astype(np.uint8), mask

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None

    def __enter__(self) -> ShadedRenderer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _fit_depth_range(self, scene: trimesh.Scene | trimesh.Trimesh, camera_pose: np.ndarray) -> None:
        # A depth range hugging the scene keeps depth precise whatever its size and the camera's distance.
        lower, upper = np.asarray(scene.bounds, dtype=np.float64)
        radius = float(np.linalg.norm(upper - lower)) / 2.0 + 1e-6
        distance = float(np.linalg.norm(camera_pose[:3, 3] - (lower + upper) / 2.0))
        margin = 0.05 * radius
        zfar = distance + radius + margin
        self._camera.znear = 1e-9  # pyrender checks znear < zfar on every assignment, so shrink it first
        self._camera.zfar = zfar
        self._camera.znear = max(distance - radius - margin, 1e-3 * zfar)


def _pyrender_light(pyrender: Any, light: Light) -> Any:
    if light.kind == "directional":
        return pyrender.DirectionalLight(color=light.colour, intensity=light.intensity)
    if light.kind == "point":
        return pyrender.PointLight(color=light.colour, intensity=light.intensity)
    raise ValueError(f"unknown light kind {light.kind!r}; expected directional, point or ambient")


def _light_pose(light: Light, camera_pose: np.ndarray) -> np.ndarray:
    pose = np.eye(4)
    if light.kind == "directional":
        # pyrender's directional light shines down its node's -z axis.
        forward = np.asarray(light.direction, dtype=np.float64)
        norm = np.linalg.norm(forward)
        if norm == 0.0:
            raise ValueError("a directional light needs a non-zero direction")
        z_axis = -forward / norm
        helper = np.array([0.0, 1.0, 0.0]) if abs(z_axis[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        x_axis = np.cross(helper, z_axis)
        x_axis /= np.linalg.norm(x_axis)
        pose[:3, :3] = np.stack([x_axis, np.cross(z_axis, x_axis), z_axis], axis=1)
    else:
        pose[:3, 3] = light.position
    return camera_pose @ pose if light.frame == "camera" else pose


def _pyrender_meshes(pyrender: Any, scene: trimesh.Scene | trimesh.Trimesh, camera_position: np.ndarray) -> list[Any]:
    if isinstance(scene, trimesh.Trimesh):
        placed = [(np.eye(4), scene)]
    else:
        placed = []
        for node in scene.graph.nodes_geometry:
            transform, geometry_name = scene.graph[node]
            geometry = scene.geometry[geometry_name]
            if isinstance(geometry, trimesh.Trimesh):
                placed.append((np.asarray(transform, dtype=np.float64), geometry))
    primitives = [
        _primitive(pyrender, mesh, transform, camera_position) for transform, mesh in placed if len(mesh.faces)
    ]
    # pyrender draws its mesh nodes in the order of a set (its sort by distance from the camera ties: every node sits
    # at the origin), so parts as separate nodes were drawn in an order that changed between renders, and with it
    # which of two coplanar faces showed. One mesh per pass (solid, then transparent) draws them in file order.
    solid = [primitive for primitive in primitives if not primitive.is_transparent]
    clear = [primitive for primitive in primitives if primitive.is_transparent]
    return [pyrender.Mesh(primitives=group) for group in (solid, clear) if group]


def _primitive(pyrender: Any, mesh: trimesh.Trimesh, transform: np.ndarray, camera_position: np.ndarray) -> Any:
    """One unindexed triangle list (three corners per face) in world space, so face colours and hard edges survive."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices = np.asarray(mesh.vertices, dtype=np.float64) @ transform[:3, :3].T + transform[:3, 3]
    corners = vertices[faces]  # (F, 3, 3)
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    areas = np.linalg.norm(face_normals, axis=1)
    face_normals = face_normals / np.maximum(areas, 1e-300)[:, None]
    normals = _crease_normals(_welded(vertices)[faces], face_normals, areas)
    # pyrender's shader lights only the side a normal points to; meshes from the wild have arbitrary winding, and
    # open surfaces are seen from both sides: shade every face from the side the camera sees.
    away = np.einsum("ij,ij->i", face_normals, camera_position - corners.mean(axis=1)) < 0
    normals[away] *= -1.0

    colours, texcoords, material = _surface(pyrender, mesh, faces)
    return pyrender.Primitive(
        positions=corners.reshape(-1, 3).astype(np.float32),
        normals=normals.reshape(-1, 3).astype(np.float32),
        texcoord_0=texcoords,
        color_0=colours,
        material=material,
    )


def _welded(vertices: np.ndarray) -> np.ndarray:
    """Per vertex, one index shared by all vertices at the same place.

    Exporters split vertices along UV seams and at every corner of a face-coloured or box-projected mesh; smoothing
    by vertex index would shade such a cylinder flat.
    """
    scale = max(float(np.ptp(vertices, axis=0).max()), 1e-12) if len(vertices) else 1.0
    keys = np.round(vertices / scale * 2.0**20).astype(np.int64)
    _, welded = np.unique(keys, axis=0, return_inverse=True)
    return welded.reshape(-1)


def _crease_normals(faces: np.ndarray, face_normals: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """(F, 3, 3) per-corner normals: the area-weighted mean of the faces at that vertex within the crease angle."""
    corner_faces = np.repeat(np.arange(len(faces)), 3)
    corner_vertices = faces.reshape(-1)
    order = np.argsort(corner_vertices, kind="stable")
    sorted_vertices = corner_vertices[order]
    starts = np.flatnonzero(np.r_[True, sorted_vertices[1:] != sorted_vertices[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_vertices)])
    size_of_corner = np.repeat(sizes, sizes)
    if int(np.sum(size_of_corner)) > _MAX_SMOOTHING_PAIRS:
        return np.repeat(face_normals[:, None, :], 3, axis=1)
    # Every ordered pair (i, j) of corners sharing a vertex, as positions in the sorted order.
    first = np.repeat(np.arange(len(sorted_vertices)), size_of_corner)
    start_of_corner = np.repeat(starts, sizes)
    pair_offsets = np.arange(len(first)) - np.repeat(np.cumsum(size_of_corner) - size_of_corner, size_of_corner)
    second = np.repeat(start_of_corner, size_of_corner) + pair_offsets
    face_i = corner_faces[order[first]]
    face_j = corner_faces[order[second]]
    similar = np.einsum("ij,ij->i", face_normals[face_i], face_normals[face_j]) >= np.cos(np.radians(_CREASE_ANGLE_DEG))
    weights = areas[face_j] * similar
    summed = np.stack(
        [
            np.bincount(order[first], weights=weights * face_normals[face_j, axis], minlength=len(order))
            for axis in range(3)
        ],
        axis=1,
    )
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    flat = np.repeat(face_normals, 3, axis=0)
    normals = np.where(length > 1e-12, summed / np.maximum(length, 1e-300), flat)
    return normals.reshape(-1, 3, 3)


def _surface(pyrender: Any, mesh: trimesh.Trimesh, faces: np.ndarray) -> tuple[Any, Any, Any]:
    """(per-corner linear RGBA colours or None, per-corner UVs or None, pyrender material) of a mesh's visual."""
    visual: Any = mesh.visual  # ColorVisuals or TextureVisuals: told apart by `kind` below
    colours = None
    texcoords = None
    base_colour = _srgb_to_linear(np.asarray(_DEFAULT_SRGB))
    texture_image = None
    metallic, roughness = 0.0, 0.8
    kind = visual.kind if visual is not None and visual.defined else None
    if kind == "vertex":
        colours = np.asarray(visual.vertex_colors)[faces].reshape(-1, 4)
    elif kind == "face":
        colours = np.repeat(np.asarray(visual.face_colors), 3, axis=0)
    elif kind == "texture":
        material = visual.material
        if isinstance(material, trimesh.visual.material.PBRMaterial):
            # glTF stores its base colour factor in linear RGB already.
            factor = material.baseColorFactor
            base_colour = np.ones(3) if factor is None else np.asarray(factor, dtype=np.float64)[:3] / 255.0
            texture_image = material.baseColorTexture
            # glTF's default metal (1.0) reflects only an environment, which we do not render: it would come out
            # black. Treat an unstated metalness as none.
            metallic = float(material.metallicFactor) if material.metallicFactor is not None else 0.0
            roughness = float(material.roughnessFactor) if material.roughnessFactor is not None else 1.0
        elif isinstance(material, trimesh.visual.material.SimpleMaterial):
            # OBJ's Kd is written as the colour seen on screen (sRGB); Ns maps to roughness as pyrender does.
            base_colour = _srgb_to_linear(np.asarray(material.diffuse, dtype=np.float64)[:3] / 255.0)
            texture_image = material.image
            glossiness = float(np.ravel(material.glossiness)[0]) if material.glossiness is not None else 1.0
            roughness = float((2.0 / (glossiness + 2.0)) ** 0.25)
        uv = visual.uv
        if texture_image is not None and uv is not None and len(uv) == len(mesh.vertices):
            texcoords = np.asarray(uv, dtype=np.float32)[faces].reshape(-1, 2)
        else:
            texture_image = None
    if colours is not None:
        # Vertex colours multiply the lit linear colour in pyrender's shader: linearise the stored sRGB bytes, and
        # keep them opaque so the render's alpha is pure coverage.
        linear = _srgb_to_linear(colours[:, :3].astype(np.float64) / 255.0)
        colours = np.concatenate([linear, np.ones((len(linear), 1))], axis=1).astype(np.float32)
    texture = None
    if texture_image is not None:
        texture = pyrender.Texture(source=_texture_pixels(texture_image), source_channels="RGBA")
    material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=[*np.clip(base_colour, 0.0, 1.0).tolist(), 1.0],
        baseColorTexture=texture,
        metallicFactor=float(np.clip(metallic, 0.0, 1.0)),
        roughnessFactor=float(np.clip(roughness, 0.0, 1.0)),
        doubleSided=True,
        alphaMode="OPAQUE",
    )
    return colours, texcoords, material


def _texture_pixels(image: Any) -> np.ndarray:
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    # Opaque RGBA: pyrender uploads rows with OpenGL's default 4-byte row alignment, so an RGB texture whose width is
    # not a multiple of 4 (common in CAD files: 5 x 38, 78 x 241) was read skewed and past its buffer's end, into
    # whatever memory followed: a wrong texture, different on every render.
    image = image.convert("RGB")
    if max(image.size) > _MAX_TEXTURE_SIDE:  # detail beyond what a few hundred pixels can show costs upload time
        image.thumbnail((_MAX_TEXTURE_SIDE, _MAX_TEXTURE_SIDE))
    image.putalpha(255)
    return np.asarray(image)


def _srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
