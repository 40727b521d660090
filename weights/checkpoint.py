"""One checkpoint format for every network: safetensors tensors plus a JSON header in the file's metadata.

The header says what the tensors are (architecture, its config and version), how they were made (renderer settings,
training data) and when. Loading rebuilds the network from the header and refuses, with a message naming the
difference, anything the running code cannot reproduce exactly.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from photo2cad import __version__
from photo2cad.device import place_network
from photo2cad.errors import Photo2CadError
from photo2cad.files import atomic_path
from photo2cad.models import AMVML, AMVMLConfig, TextureSynthesisModule, TSMConfig
from photo2cad.models.amvml import probe_width
from photo2cad.models.inference import folded_for_inference

FORMAT_VERSION = 1
HEADER_KEY = "photo2cad"
_DEFAULT_PRIOR_STAGES: int = AMVMLConfig.model_fields["prior_stages"].default
Architecture = Literal["amvml", "tsm"]

# Bump when a network's layers change in a way old tensors cannot follow.
ARCHITECTURE_VERSIONS: dict[str, int] = {"amvml": 1, "tsm": 1}


class CheckpointError(Photo2CadError):
    """A checkpoint cannot be read or does not fit the running code."""


class CheckpointHeader(BaseModel):
    format_version: int = FORMAT_VERSION
    architecture: Architecture
    architecture_version: int
    config: dict[str, Any]
    embedding_dim: int | None = None
    renderer: dict[str, Any] | None = Field(None, description="render settings of the views it was trained on")
    training_data: str = "untrained"
    photo2cad_version: str = __version__
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    notes: dict[str, Any] = Field(default_factory=dict, description="training summary, metrics")


def header_for(
    model: AMVML | TextureSynthesisModule,
    training_data: str = "untrained",
    renderer: dict[str, Any] | None = None,
    notes: dict[str, Any] | None = None,
) -> CheckpointHeader:
    architecture: Architecture = "amvml" if isinstance(model, AMVML) else "tsm"
    return CheckpointHeader(
        architecture=architecture,
        architecture_version=ARCHITECTURE_VERSIONS[architecture],
        config=model.config.model_dump(mode="json"),
        embedding_dim=model.config.embedding_dim if isinstance(model, AMVML) else None,
        renderer=renderer,
        training_data=training_data,
        notes=notes or {},
    )


def save_checkpoint(path: str | Path, model: nn.Module, header: CheckpointHeader, half: bool = False) -> Path:
    """Write atomically: a crash mid-write never leaves a half checkpoint under `path`.

    `half` stores floating-point tensors as float16 (half the size, for weights that ship in git); loading casts
    them back to the network's float32.
    """
    path = Path(path)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    if half:
        tensors = {name: t.half() if t.is_floating_point() else t for name, t in tensors.items()}
    with atomic_path(path) as partial:
        save_file(tensors, str(partial), metadata={HEADER_KEY: header.model_dump_json()})
    return path


def is_half(path: str | Path) -> bool:
    """Whether a checkpoint stores its floating-point tensors in float16 (`save_checkpoint(..., half=True)`)."""
    with safe_open(str(path), framework="pt") as handle:
        return any(handle.get_slice(name).get_dtype() == "F16" for name in list(handle.keys()))


def read_header(path: str | Path) -> CheckpointHeader:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a safetensors checkpoint: {err}") from err
    if HEADER_KEY not in metadata:
        raise CheckpointError(f"{path} has no photo2cad header; it was not written by photo2cad")
    try:
        header = CheckpointHeader.model_validate(json.loads(metadata[HEADER_KEY]))
    except (ValueError, ValidationError) as err:
        raise CheckpointError(f"{path} has a malformed photo2cad header: {err}") from err
    if header.format_version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {header.format_version}; this photo2cad reads format {FORMAT_VERSION}"
        )
    return header


def _check_header(path: Path, header: CheckpointHeader, architecture: Architecture) -> None:
    if header.architecture != architecture:
        raise CheckpointError(f"{path} holds a {header.architecture} network, not {architecture}")
    expected = ARCHITECTURE_VERSIONS[architecture]
    if header.architecture_version != expected:
        raise CheckpointError(
            f"{path} was written for {architecture} architecture version {header.architecture_version}; "
            f"the running code builds version {expected}"
        )


def _load_state(path: Path, model: nn.Module) -> None:
    state = load_file(str(path))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = [
        f"{name}: checkpoint {tuple(state[name].shape)} vs code {tuple(expected[name].shape)}"
        for name in sorted(set(state) & set(expected))
        if state[name].shape != expected[name].shape
    ]
    if missing or unexpected or reshaped:
        problems = [
            f"missing {missing[:5]}" * bool(missing),
            f"unexpected {unexpected[:5]}" * bool(unexpected),
        ]
        problems += reshaped[:5]
        raise CheckpointError(
            f"{path} does not fit the network the code builds: " + "; ".join(p for p in problems if p)
        )
    model.load_state_dict(state)


def load_amvml(path: str | Path, device: torch.device | str = "cpu") -> tuple[AMVML, CheckpointHeader]:
    """AMV-ML in eval mode on `device` (in the layout `place_network` gives it), rebuilt from the header; no ImageNet
    weights are fetched."""
    path = Path(path)
    header = read_header(path)
    model = AMVML(amvml_config(path, header))
    _load_state(path, model)
    return place_network(model, device).eval(), header


def load_amvml_for_inference(path: str | Path, device: torch.device | str = "cpu") -> tuple[AMVML, CheckpointHeader]:
    """`load_amvml`'s network with its batch norms and paddings folded into the convolutions (models/inference.py):
    the same vectors up to float rounding, a batch of views in about half the time on a CPU; it cannot train."""
    model, header = load_amvml(path, device)
    return folded_for_inference(model, keep_original=False), header


def set_prior_weight(
    model: AMVML, header: CheckpointHeader, weight: float, stages: int = _DEFAULT_PRIOR_STAGES
) -> CheckpointHeader:
    """Give `model` the retrieval prior `weight` over the view branch's last `stages` stages (AMVMLConfig's
    prior_weight and prior_stages; no tensor changes) and return `header` saying so; training never reads the
    prior, so a trained checkpoint can take one afterwards."""
    return _reconfigured(model, header, {"prior_weight": weight, "prior_stages": stages})


def set_category_weight(model: AMVML, header: CheckpointHeader, weight: float) -> CheckpointHeader:
    """Give `model` the photo category head's share in retrieval scores (AMVMLConfig.category_weight, with the heads'
    classes from the header's notes; no tensor changes) and return `header` saying so."""
    notes = header.notes.get("categories")
    names = [str(name) for name in notes] if isinstance(notes, list) else []
    if weight > 0 and len(names) != model.config.num_categories:
        raise CheckpointError(
            f"the header names no {model.config.num_categories} categories (notes.categories): the category heads' "
            "classes are unknown, so retrieval cannot score a shape's category"
        )
    changes: dict[str, Any] = {"category_weight": weight, "category_names": names if weight > 0 else []}
    if weight == 0 and model.category_probe is not None:
        header = set_category_probe(model, header, None)  # nothing left for the probe to speak through
    return _reconfigured(model, header, changes)


def require_category_weight(model: AMVML) -> None:
    """A category probe speaks only through the category term: refuse one for a network without it."""
    if model.config.category_weight == 0:
        raise CheckpointError("a category probe speaks through the category term: set a category weight first")


def set_category_probe(
    model: AMVML, header: CheckpointHeader, probe: nn.Linear | None, described: dict[str, Any] | None = None
) -> CheckpointHeader:
    """Give `model` a fitted category probe (AMVMLConfig.category_probe; None removes it) and return `header` saying
    so, with `described` (what it was fitted on) in its notes. The model must weigh categories already."""
    if probe is not None:
        require_category_weight(model)
        expected = (model.config.num_categories, probe_width(model.config))
        if tuple(probe.weight.shape) != expected:
            raise CheckpointError(
                f"a category probe of shape {tuple(probe.weight.shape)}; this network needs {expected}"
            )
    header = _reconfigured(model, header, {"category_probe": probe is not None})
    model.category_probe = probe
    notes = {key: value for key, value in header.notes.items() if key != "category_probe"}
    if probe is not None:
        notes["category_probe"] = described or {}
    return header.model_copy(update={"notes": notes})


def _reconfigured(model: AMVML, header: CheckpointHeader, changes: dict[str, Any]) -> CheckpointHeader:
    """`model` with retrieval-only settings changed, and its header saying so."""
    model.config = AMVMLConfig.model_validate({**model.config.model_dump(), **changes})
    return header.model_copy(update={"config": {**header.config, **changes}})


def amvml_config(path: Path, header: CheckpointHeader) -> AMVMLConfig:
    """The network an AMV-ML checkpoint's header describes (without building it)."""
    _check_header(path, header, "amvml")
    # Checkpoints written before prior_stages existed gave their prior C5 alone.
    written = {"prior_stages": 1, **header.config}
    try:
        config = AMVMLConfig.model_validate({**written, "pretrained": False})
    except ValidationError as err:
        raise CheckpointError(f"{path} has an AMV-ML config this code does not understand: {err}") from err
    if header.embedding_dim is not None and header.embedding_dim != config.embedding_dim:
        raise CheckpointError(
            f"{path}: header says embedding size {header.embedding_dim}, config says {config.embedding_dim}"
        )
    return config


def load_tsm(path: str | Path, device: torch.device | str = "cpu") -> tuple[TextureSynthesisModule, CheckpointHeader]:
    path = Path(path)
    header = read_header(path)
    _check_header(path, header, "tsm")
    try:
        config = TSMConfig.model_validate(header.config)
    except ValidationError as err:
        raise CheckpointError(f"{path} has a TSM config this code does not understand: {err}") from err
    model = TextureSynthesisModule(config)
    _load_state(path, model)
    return model.to(device).eval(), header
