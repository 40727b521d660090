"""The one offscreen OpenGL context both renderers draw in, and the choice of headless platform behind it.

PyOpenGL fixes its platform (EGL or OSMesa) when it is first imported, so the choice is made once per process, before
pyrender is imported. The context carries the patches to pyrender 0.1.45 (its last release) that photo2cad needs, in
one place: framebuffers on OSMesa too, an EGL teardown that leaves the display other contexts share, and freeing a
mesh's GL buffers at once instead of at the next draw.
"""

from __future__ import annotations

import ctypes.util
import functools
import importlib.metadata
import logging
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from photo2cad.errors import Photo2CadError

log = logging.getLogger(__name__)

_HEADLESS_PLATFORMS = ("egl", "osmesa")
_EGL_VENDOR_DIRS = ("/usr/share/glvnd/egl_vendor.d", "/etc/glvnd/egl_vendor.d")
_OSMESA_MIN_PYOPENGL = (3, 1, 5)


class RendererUnavailable(Photo2CadError, RuntimeError):
    """No headless OpenGL on this machine, or a setup pyrender cannot use; the message says what to install."""


@functools.cache  # PyOpenGL reads the platform once, at import: one answer per process
def select_gl_platform() -> str:
    """PyOpenGL's platform ("egl" or "osmesa"), chosen once per process before OpenGL is imported.

    PYOPENGL_PLATFORM set by the user wins; otherwise EGL when libEGL and a vendor library are installed (the NVIDIA
    driver on a GPU server, Mesa's llvmpipe on a CPU machine), else OSMesa. PyOpenGL fixes its platform at import,
    so a later call returns the first answer, and a process that imported OpenGL some other way is told so.
    """
    requested = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if requested:
        platform = requested
    elif "OpenGL.platform" in sys.modules:
        platform = _platform_of_imported_opengl()
    elif _egl_available():
        platform = "egl"
    elif ctypes.util.find_library("OSMesa"):
        platform = "osmesa"
    else:
        raise RendererUnavailable(
            "no headless OpenGL library found: install EGL (Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 "
            "libgl1-mesa-dri; on a GPU server the NVIDIA driver's EGL) or OSMesa (apt-get install libosmesa6)"
        )
    if platform not in _HEADLESS_PLATFORMS:
        raise RendererUnavailable(
            f"PYOPENGL_PLATFORM={platform} is not a headless platform pyrender can render offscreen with; "
            "set it to egl or osmesa, or unset it to let photo2cad choose"
        )
    if platform == "osmesa":
        _check_pyopengl_for_osmesa()
    os.environ["PYOPENGL_PLATFORM"] = platform  # read by PyOpenGL at import and by pyrender at context creation
    return platform


def _egl_available() -> bool:
    if not ctypes.util.find_library("EGL"):
        return False
    # glvnd's libEGL (Debian's libegl1) is only a dispatcher: without a vendor behind it EGL cannot start.
    if ctypes.util.find_library("EGL_nvidia") or ctypes.util.find_library("EGL_mesa"):
        return True
    vendor_dirs = [*_EGL_VENDOR_DIRS, *os.environ.get("__EGL_VENDOR_LIBRARY_DIRS", "").split(":")]
    has_vendor_file = any(
        Path(folder).is_dir() and any(Path(folder).glob("*.json")) for folder in vendor_dirs if folder
    )
    return has_vendor_file or bool(os.environ.get("__EGL_VENDOR_LIBRARY_FILENAMES"))


def _platform_of_imported_opengl() -> str:
    loaded = type(sys.modules["OpenGL.platform"].PLATFORM).__name__  # e.g. EGLPlatform, OSMesaPlatform, GLXPlatform
    for platform in _HEADLESS_PLATFORMS:
        if loaded.lower().startswith(platform):
            return platform
    raise RendererUnavailable(
        f"OpenGL was imported with its {loaded} before photo2cad could choose a headless platform; "
        "set PYOPENGL_PLATFORM=egl (or osmesa) in the environment, or create the Renderer before importing OpenGL"
    )


def _check_pyopengl_for_osmesa() -> None:
    try:
        version_text = importlib.metadata.version("PyOpenGL")
    except importlib.metadata.PackageNotFoundError as error:
        raise RendererUnavailable("PyOpenGL is not installed: pip install 'PyOpenGL>=3.1.7'") from error
    version = tuple(int(part) for part in version_text.split(".")[:3] if part.isdigit())
    if version < _OSMESA_MIN_PYOPENGL:
        # pyrender pins PyOpenGL==3.1.0, whose OSMesa binding lacks OSMesaCreateContextAttribs.
        raise RendererUnavailable(
            f"PyOpenGL {version_text} cannot create OSMesa contexts (no OSMesaCreateContextAttribs): "
            "pip install 'PyOpenGL>=3.1.7'"
        )


def import_pyrender() -> Any:
    """pyrender, imported on the platform `select_gl_platform` chose."""
    platform = select_gl_platform()
    if platform == "egl":
        # pyrender imports its viewer, and pyglet's X11 GL with it: on a server without X's libraries (the NVIDIA
        # image, a bare GPU machine) that import fails. Headless pyglet takes its GL from EGL, which is there.
        os.environ.setdefault("PYGLET_HEADLESS", "true")
    try:
        import pyrender
    except Exception as error:  # PyOpenGL raises at import when the platform's library cannot be loaded
        raise RendererUnavailable(f"pyrender cannot load OpenGL on platform {platform}: {error}") from error
    return pyrender


class OffscreenContext:
    """A size x size offscreen context, used only by the thread that made it (a GL context is current in one thread;
    calls from another would draw into nothing or crash the driver)."""

    def __init__(self, size: int, program_cache: Any | None = None) -> None:
        if size < 1:
            raise ValueError(f"image size must be positive, got {size}")
        self.size = size
        self.platform = select_gl_platform()
        self.pyrender = import_pyrender()
        self._thread = threading.get_ident()
        try:
            context = self.pyrender.OffscreenRenderer(size, size)
        except Exception as error:
            raise RendererUnavailable(
                f"cannot create an offscreen OpenGL context on platform {self.platform} ({type(error).__name__}: "
                f"{error}); try PYOPENGL_PLATFORM=osmesa (apt-get install libosmesa6) or check the EGL driver"
            ) from error
        if program_cache is not None:
            context._renderer._program_cache = program_cache  # shaders of our own in place of pyrender's
        # pyrender treats OSMesa as having no framebuffer objects and draws into its window buffer: no multisampling,
        # no alpha read back. Mesa's OpenGL 3.3 core has them and a context here never changes size, so OSMesa takes
        # the EGL path: the same images on both platforms.
        context._platform.supports_framebuffers = lambda: True
        if self.platform == "egl":
            # pyrender's EGL teardown calls eglTerminate on the display every context of the process shares (one
            # per device): closing one context would kill all the others.
            context._platform.delete_context = functools.partial(_destroy_egl_context_only, context._platform)
        from OpenGL import GL  # the new context is current right after creation

        self.gl_renderer: str = GL.glGetString(GL.GL_RENDERER).decode(errors="replace")
        log.debug("%d px context on PyOpenGL platform %s, GL renderer %s", size, self.platform, self.gl_renderer)
        self._context: Any = context

    @property
    def pyrender_renderer(self) -> Any:
        """pyrender's renderer of this context: what holds the meshes and textures uploaded to the GPU."""
        return self._context._renderer

    def render(self, scene: Any, flags: int) -> tuple[np.ndarray, np.ndarray]:
        """(colour, depth) of `scene` from its main camera node."""
        self._check_thread()
        if self._context is None:
            raise RuntimeError("the offscreen context is closed")
        colour, depth = self._context.render(scene, flags=flags)
        return colour, depth

    def free(self, meshes: Iterable[Any]) -> None:
        """Release the GL buffers and textures of pyrender meshes removed from the scene: pyrender frees them only at
        its next draw, and thousands of meshes in a row must not wait for that."""
        self._check_thread()
        renderer = self.pyrender_renderer
        self._context._platform.make_current()
        try:
            for mesh in meshes:
                for primitive in mesh.primitives:
                    primitive.delete()
                    for texture in primitive.material.textures:
                        texture.delete()
                        renderer._mesh_textures.discard(texture)
                renderer._meshes.discard(mesh)
        finally:
            self._context._platform.make_uncurrent()

    def close(self) -> None:
        if self._context is not None:
            self._check_thread()
            self._context.delete()
            self._context = None

    def __enter__(self) -> OffscreenContext:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _check_thread(self) -> None:
        if threading.get_ident() != self._thread:
            raise RuntimeError("an offscreen GL context must be used by the thread that created it")


def _destroy_egl_context_only(platform: Any) -> None:
    from OpenGL import EGL

    if platform._egl_context is not None:
        # Released first: EGL frees a context still current only when it stops being current.
        EGL.eglMakeCurrent(platform._egl_display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
        EGL.eglDestroyContext(platform._egl_display, platform._egl_context)
        platform._egl_context = None
    platform._egl_display = None
