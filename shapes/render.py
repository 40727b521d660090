"""Normalised mesh -> multi-view grey renders, normal maps and silhouettes (docs/method.md, "Shape side").

Headless OpenGL through pyrender. One draw per view fills all three passes: a small shader of our own writes the
camera-space face normal to RGB and the grey shade to alpha, and the depth buffer gives the silhouette. The face
normal comes from screen-space derivatives of the camera-space position, so it is exact, flat, and always points
towards the camera whatever the mesh's winding or vertex normals (meshes from the wild have neither right).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import trimesh

from photo2cad.shapes.gl import OffscreenContext, import_pyrender, select_gl_platform
from photo2cad.shapes.settings import RenderSettings

log = logging.getLogger(__name__)

PASSES = ("grey", "normals", "mask")

# Encodes the zero vector, (0.5*0 + 0.5)*255: "no surface". A visible unit normal never has x = y = z = 0.
NORMALS_BACKGROUND = (128, 128, 128)
GREY_BACKGROUND = 255

# A directional light fixed to the camera (a direction in camera space, towards the light: up-left of the viewer)
# plus ambient, so the shade of a pixel depends on the geometry alone. Ambient + diffuse < 1 keeps every surface
# darker than the white background.
_LIGHT_DIRECTION = (-0.3, 0.4, 1.0)
_AMBIENT = 0.25
_DIFFUSE = 0.7


def camera_poses(settings: RenderSettings) -> np.ndarray:
    """(V, 4, 4) camera-to-world poses, OpenGL convention (the camera looks down its -z axis), aimed at the origin.

    With up = y, view 0 sits on the +z axis and the azimuth turns the camera counter-clockwise seen from above (right
    hand about the up axis), so azimuth 90 looks from +x. Other up axes rotate that frame: up = z puts view 0 on the
    -y axis (the usual "front" of z-up models), up = x keeps it on +z.
    """
    elevation = np.radians(settings.elevation_deg)
    poses = []
    for azimuth_deg in settings.azimuths_deg:
        pose = _UP_FRAMES[settings.up_axis] @ _rotation_y(np.radians(azimuth_deg)) @ _rotation_x(-elevation)
        pose = pose @ _translation_z(settings.distance)
        poses.append(pose)
    return np.stack(poses)


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]], dtype=np.float64)


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1]], dtype=np.float64)


def _translation_z(distance: float) -> np.ndarray:
    pose = np.eye(4)
    pose[2, 3] = distance
    return pose


# Rotations taking the y-up camera rig to the mesh's up axis.
_UP_FRAMES = {
    "y": np.eye(4),
    "z": np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float64),
    "x": np.array([[0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64),
}


@dataclass(frozen=True)
class ViewSet:
    """The passes of one mesh, views in the order of settings.azimuths_deg; a pass not asked for is None.

    grey: (V, S, S, 3) uint8, untextured grey shading on a white (255) background.
    normals: (V, S, S, 3) uint8, camera-space normals (x right, y up, z towards the camera) as 255*(0.5*n + 0.5);
        a surface facing the camera is (128, 128, 255); the background is NORMALS_BACKGROUND (128, 128, 128), the
        encoding of the zero vector.
    masks: (V, S, S) bool silhouettes.
    """

    grey: np.ndarray | None
    normals: np.ndarray | None
    masks: np.ndarray | None


_VERTEX_SHADER = """#version 330 core
layout(location = 0) in vec3 position;
layout(location = INST_M_LOC) in mat4 inst_m;
uniform mat4 M;
uniform mat4 V;
uniform mat4 P;
out vec3 view_position;
void main()
{
    vec4 camera_space = V * M * inst_m * vec4(position, 1.0);
    view_position = camera_space.xyz;
    gl_Position = P * camera_space;
}
"""

_FRAGMENT_SHADER = f"""#version 330 core
in vec3 view_position;
out vec4 frag_color;
const vec3 light_direction = normalize(vec3{_LIGHT_DIRECTION});
void main()
{{
    // The plane of the triangle, oriented by the screen: the face normal on the camera's side of the surface.
    vec3 normal = normalize(cross(dFdx(view_position), dFdy(view_position)));
    float shade = {_AMBIENT} + {_DIFFUSE} * max(dot(normal, light_direction), 0.0);
    frag_color = vec4(0.5 * normal + 0.5, shade);
}}
"""


class Renderer:
    """Renders normalised meshes from the settings' cameras; one GL context per image size, reused across meshes."""

    def __init__(self, settings: RenderSettings) -> None:
        self.settings = settings
        self.platform = select_gl_platform()
        self._poses = camera_poses(settings)
        self._contexts: dict[int, OffscreenContext] = {}
        self._pyrender = pyrender = import_pyrender()
        self._scene = pyrender.Scene(bg_color=(0.5, 0.5, 0.5, GREY_BACKGROUND / 255.0), ambient_light=(0.0, 0.0, 0.0))
        # Everything of a normalised mesh lies within sqrt(3) of the origin: a tight depth range keeps depth precise.
        reach = float(np.sqrt(3.0)) + 0.1
        znear, zfar = max(settings.distance - reach, 0.01), settings.distance + reach
        camera: Any
        if settings.framing == "object":  # intrinsics set per view and size in render()
            camera = pyrender.IntrinsicsCamera(fx=1.0, fy=1.0, cx=0.0, cy=0.0, znear=znear, zfar=zfar)
        else:
            camera = pyrender.PerspectiveCamera(
                yfov=np.radians(settings.yfov_deg), znear=znear, zfar=zfar, aspectRatio=1.0
            )
        self._camera = camera
        self._camera_node = self._scene.add(camera, pose=self._poses[0])
        self._material = pyrender.MetallicRoughnessMaterial(doubleSided=True)
        self.gl_renderer = self._context(settings.embed_size).gl_renderer
        log.info("rendering with PyOpenGL platform %s, GL renderer %s", self.platform, self.gl_renderer)

    def render(self, mesh: trimesh.Trimesh, size: int, passes: Iterable[str] = ("grey", "normals", "mask")) -> ViewSet:
        """Every view of a mesh already normalised into [-1, 1] (see shapes.meshes.normalise), at size x size px."""
        wanted = set(passes)
        unknown = wanted - set(PASSES)
        if unknown:
            raise ValueError(f"unknown render passes {sorted(unknown)}; choose from {PASSES}")
        if len(mesh.faces) == 0:
            raise ValueError("cannot render a mesh without faces")
        pyrender = self._pyrender
        context = self._context(size)
        primitive = pyrender.Primitive(
            positions=np.asarray(mesh.vertices, dtype=np.float32),
            indices=np.asarray(mesh.faces, dtype=np.uint32),
            material=self._material,
        )
        node = self._scene.add(pyrender.Mesh(primitives=[primitive]))
        views = len(self._poses)
        rgba = np.empty((views, size, size, 4), dtype=np.uint8)
        masks = np.empty((views, size, size), dtype=bool)
        windows = None
        if self.settings.framing == "object":
            windows = object_windows(np.asarray(mesh.vertices), self._poses, self.settings.frame_margin)
        try:
            for view, pose in enumerate(self._poses):
                self._scene.set_pose(self._camera_node, pose)
                if windows is not None:
                    fx, cx, cy = window_intrinsics(windows[view], size)
                    self._camera.fx, self._camera.fy, self._camera.cx, self._camera.cy = fx, fx, cx, cy
                color, depth = context.render(self._scene, _render_flags(pyrender))
                rgba[view] = color
                masks[view] = depth > 0
        finally:
            self._scene.remove_node(node)
            context.free([node.mesh])
        return ViewSet(
            grey=np.repeat(rgba[..., 3:], 3, axis=-1) if "grey" in wanted else None,
            normals=np.ascontiguousarray(rgba[..., :3]) if "normals" in wanted else None,
            masks=masks if "mask" in wanted else None,
        )

    def close(self) -> None:
        for context in self._contexts.values():
            context.close()
        self._contexts.clear()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _context(self, size: int) -> OffscreenContext:
        if size not in self._contexts:
            self._contexts[size] = OffscreenContext(size, program_cache=_make_program_cache())
        return self._contexts[size]


def object_windows(vertices: np.ndarray, poses: np.ndarray, margin: float) -> np.ndarray:
    """(V, 3) square windows (centre x, centre y, half side) around the object's projection in each view.

    Units are tangents of the angle off the optical axis (x right, y up), so a window is independent of the image
    size. The side is the larger extent of the projection grown by `margin` of it on every side: the framing of an
    object crop, whatever the view.
    """
    homogeneous = np.concatenate([vertices, np.ones((len(vertices), 1))], axis=1)
    windows = np.empty((len(poses), 3))
    for view, pose in enumerate(poses):
        camera = homogeneous @ np.linalg.inv(pose).T  # the camera looks down its -z axis
        depth = np.maximum(-camera[:, 2], 1e-6)
        x, y = camera[:, 0] / depth, camera[:, 1] / depth
        half = max(np.ptp(x), np.ptp(y)) / 2.0 * (1.0 + 2.0 * margin)
        windows[view] = ((x.max() + x.min()) / 2.0, (y.max() + y.min()) / 2.0, max(half, 1e-6))
    return windows


def window_intrinsics(window: np.ndarray, size: int) -> tuple[float, float, float]:
    """(focal length, cx, cy) in pixels that map `window` onto a size x size image (pyrender's image convention:
    u = fx * x + cx from the left, v = cy - fy * y from the top)."""
    centre_x, centre_y, half = (float(value) for value in window)
    focal = size / 2.0 / half
    return focal, size / 2.0 - focal * centre_x, size / 2.0 + focal * centre_y


def _render_flags(pyrender: Any) -> int:
    # FLAT selects the program we replace and skips pyrender's light bindings; RGBA reads the shade in alpha back.
    return int(pyrender.RenderFlags.FLAT | pyrender.RenderFlags.RGBA | pyrender.RenderFlags.SKIP_CULL_FACES)


def _make_program_cache() -> Any:
    from pyrender.shader_program import ShaderProgram, ShaderProgramCache

    class InlineShaderProgram(ShaderProgram):  # type: ignore[misc]
        def _load(self, shader_filename: str) -> str:
            source = _VERTEX_SHADER if shader_filename.endswith(".vert") else _FRAGMENT_SHADER
            return source.replace("INST_M_LOC", str(self.defines["INST_M_LOC"]))

    class GeometryShaderCache(ShaderProgramCache):  # type: ignore[misc]
        def get_program(
            self,
            vertex_shader: str,
            fragment_shader: str,
            geometry_shader: str | None = None,
            defines: dict[str, Any] | None = None,
        ) -> Any:
            if vertex_shader != "flat.vert":
                return super().get_program(vertex_shader, fragment_shader, geometry_shader, defines)
            defines = defines or {}
            key = ("photo2cad", defines.get("INST_M_LOC"))
            if key not in self._program_cache:
                self._program_cache[key] = InlineShaderProgram("photo2cad.vert", "photo2cad.frag", defines=defines)
            return self._program_cache[key]

    return GeometryShaderCache()
