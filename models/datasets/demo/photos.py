"""Synthetic photos of a piece: a viewpoint framing it like an object crop, lights, a backdrop, sensor noise.

Photos vary what real ones do: viewpoint (any azimuth, 0-35 degrees elevation, small roll), how much of the frame
the object fills (50-90 %, roughly centred), lighting (direction, colour temperature, intensity), the finishes'
colour (finishes.jittered) and the backdrop (gradients, noise, wall and floor, patterns).
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import trimesh
from PIL import Image, ImageFilter

from photo2cad.models.datasets.records import Split
from photo2cad.shapes.shaded import Light

YFOV_DEG = 56.0


def photo_camera(rng: np.random.Generator, points: np.ndarray, yfov_deg: float) -> np.ndarray:
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


def photo_lights(rng: np.random.Generator) -> list[Light]:
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


def photo_background(rng: np.random.Generator, size: int) -> np.ndarray:
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


def finish_photo(rng: np.random.Generator, rgb: np.ndarray) -> tuple[Image.Image, int]:
    """Sensor noise and a touch of blur, and the JPEG quality to save with."""
    noisy = rgb.astype(np.float64) + rng.normal(0.0, rng.uniform(0.5, 4.0), size=rgb.shape)
    image = Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    return image, int(rng.integers(82, 96))


def photo_splits(photos_per_shape: int) -> list[Split]:
    """Per shape: a quarter of the photos test (at least one), a quarter val (from three photos on), the rest train."""
    test = max(1, round(photos_per_shape / 4))
    val = round(photos_per_shape / 4) if photos_per_shape >= 3 else 0
    train = photos_per_shape - test - val
    splits: list[Split] = ["train"] * train
    splits += ["val"] * val
    splits += ["test"] * test
    return splits
