"""Checkpoints that ship inside the package (the default weights) and how to find them."""

from __future__ import annotations

from pathlib import Path

from photo2cad.errors import Photo2CadError

BUNDLED_DIR = Path(__file__).resolve().parent
# Trained by `photo2cad train bundled` on real photos and photo-like renders (docs/training.md); research use only.
DEFAULT_AMVML = BUNDLED_DIR / "amvml-default.safetensors"


class NoWeightsError(Photo2CadError):
    """No checkpoint was given and none ships with this installation."""


def resolve_amvml(path: Path | None) -> Path:
    """The given checkpoint, else the bundled default weights, else a clear error."""
    if path is not None:
        return path
    if DEFAULT_AMVML.is_file():
        return DEFAULT_AMVML
    raise NoWeightsError(
        "no AMV-ML weights given and none bundled; pass --weights PATH "
        "(`photo2cad weights init PATH` writes an untrained, ImageNet-initialised one)"
    )
