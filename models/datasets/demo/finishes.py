"""Finishes: wood with grain, paint, fabric, leather, metal; which a piece of each category gets, and how a photo's
light shifts them."""

from __future__ import annotations

import colorsys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image
from trimesh.visual.material import PBRMaterial

from photo2cad.models.datasets.demo.furniture import Parameters
from photo2cad.models.datasets.demo.geometry import concatenate

Vec3 = tuple[float, float, float]


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


def choose_finishes(category: str, parameters: Parameters, rng: np.random.Generator) -> dict[str, Finish]:
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


def jittered(finishes: Mapping[str, Finish], rng: np.random.Generator) -> dict[str, Finish]:
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


def finished_mesh(meshes: Sequence[trimesh.Trimesh], finish: Finish, name: str) -> trimesh.Trimesh:
    """The meshes as one, wearing `finish` as a PBR material (wood grain as a box-projected texture)."""
    merged, uv = with_grain_uv(meshes) if finish.grain else (concatenate(meshes), None)
    material = PBRMaterial(
        name=name,
        baseColorFactor=[1.0, 1.0, 1.0, 1.0] if finish.grain else [*srgb_to_linear(finish.srgb), 1.0],
        baseColorTexture=grain_texture(finish.srgb, texture_seed(finish)) if finish.grain else None,
        metallicFactor=finish.metallic,
        roughnessFactor=finish.roughness,
    )
    merged.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return merged


def random_finishes(rng: np.random.Generator, count: int) -> list[Finish]:
    """`count` finishes for the parts of a piece nobody described: a main finish on most parts, an accent on some,
    each a little jittered, as one piece of furniture mixes at most two or three materials."""
    families = (WOODS, WOODS, PAINTS, FABRICS, LEATHERS, METALS)
    drawn = {role: _pick(rng, families[int(rng.integers(len(families)))]) for role in ("main", "accent")}
    main, accent = (jittered(drawn, rng)[role] for role in ("main", "accent"))
    return [main if rng.random() < 0.7 else accent for _ in range(count)]


def _pick(rng: np.random.Generator, options: Sequence[Finish]) -> Finish:
    return options[int(rng.integers(len(options)))]


def with_grain_uv(meshes: Sequence[trimesh.Trimesh]) -> tuple[trimesh.Trimesh, np.ndarray]:
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


def texture_seed(finish: Finish) -> int:
    return zlib.crc32(finish.name.encode())  # stable across processes, unlike hash()


def grain_texture(srgb: Sequence[float], seed: int, size: int = 128) -> Image.Image:
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


def srgb_to_linear(srgb: Sequence[float]) -> list[float]:
    values = np.asarray(srgb, dtype=np.float64)
    linear = np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)
    return [float(value) for value in linear]
