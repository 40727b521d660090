"""How a shape nobody photographed is made to look like a photo of it: the looks of the textured anchors.

- own: the file's materials and textures (what the catalogue's author painted; often not the photographed colour);
- random: its parts dressed in finishes drawn from the demo catalogue's woods, paints, fabrics, leathers and metals,
  jittered: the colour of a real piece is anyone's guess, so the network must not lean on it;
- tsm: textures the Texture Synthesis Module paints onto the shape's normal maps (the paper's hard examples), for
  shapes whose files have no materials as much as for the others.
Every render gets random lights (direction, colour temperature, intensity), as photos do.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import torch
import trimesh

from photo2cad.models import TextureSynthesisModule
from photo2cad.models.datasets.demo.finishes import finished_mesh, random_finishes
from photo2cad.models.datasets.demo.photos import photo_lights
from photo2cad.shapes.shaded import Light

Look = Literal["own", "random", "tsm"]
LOOKS: tuple[Look, ...] = ("own", "random", "tsm")
# A part split into more connected pieces than this keeps one finish per piece group, not per piece: a mesh of
# thousands of loose triangles would otherwise become confetti.
_MAX_PIECES = 64
# The demo photos' lights are set for a dark-on-light look; anchors use the shaded renderer's default exposure.
_EXPOSURE = 0.85


def random_look(scene: trimesh.Scene, rng: np.random.Generator) -> trimesh.Scene:
    """The scene's geometry (already placed) dressed in random finishes: one per material group, or, for a file
    with a single group, one per connected piece (legs, seat, back...) where there are not too many."""
    parts = [part for part in scene.dump() if isinstance(part, trimesh.Trimesh) and len(part.faces)]
    if len(parts) == 1:
        pieces = parts[0].split(only_watertight=False)
        if 1 < len(pieces) <= _MAX_PIECES:
            parts = list(pieces)
    finishes = random_finishes(rng, len(parts))
    grouped: dict[int, list[trimesh.Trimesh]] = {}
    for part, finish in zip(parts, finishes, strict=True):
        grouped.setdefault(id(finish), []).append(part)
    by_id = {id(finish): finish for finish in finishes}
    dressed = trimesh.Scene()
    for index, (key, meshes) in enumerate(grouped.items()):
        dressed.add_geometry(finished_mesh(meshes, by_id[key], f"finish_{index}"), geom_name=f"finish_{index}")
    return dressed


def anchor_lights(rng: np.random.Generator) -> list[Light]:
    """The demo photos' random lights, dimmed to the shaded renderer's exposure (white stays below 255)."""
    return [dataclasses.replace(light, intensity=light.intensity * _EXPOSURE) for light in photo_lights(rng)]


@torch.no_grad()
def tsm_look(
    tsm: TextureSynthesisModule, normal_maps: np.ndarray, category: int, rng: np.random.Generator
) -> np.ndarray:
    """(V, T, T, 3) uint8 normal maps -> (V, T, T, 3) uint8 textured images, one random texture code per image."""
    tsm.eval()
    normals = torch.from_numpy(normal_maps).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    device = next(tsm.parameters()).device
    z = torch.from_numpy(rng.standard_normal((len(normals), tsm.config.latent_dim)).astype(np.float32))
    categories = torch.full((len(normals),), max(category, 0), dtype=torch.long) if tsm.config.num_categories else None
    images = tsm.synthesize(normals.to(device), z.to(device), None if categories is None else categories.to(device))
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
