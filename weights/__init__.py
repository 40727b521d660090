"""Checkpoints of every network in one format, ImageNet initialisation of the backbones, the bundled weights."""

if __name__ != "photo2cad.weights":  # the folder imported from the repository root as a top-level `weights`
    raise ImportError("this folder installs as photo2cad.weights: import photo2cad.weights, not weights")

from photo2cad.weights.bundled import NoWeightsError, resolve_amvml
from photo2cad.weights.checkpoint import (
    CheckpointError,
    CheckpointHeader,
    header_for,
    load_amvml,
    load_amvml_for_inference,
    load_tsm,
    read_header,
    save_checkpoint,
)
from photo2cad.weights.pretrained import new_amvml

__all__ = [
    "CheckpointError",
    "CheckpointHeader",
    "NoWeightsError",
    "header_for",
    "load_amvml",
    "load_amvml_for_inference",
    "load_tsm",
    "new_amvml",
    "read_header",
    "resolve_amvml",
    "save_checkpoint",
]
