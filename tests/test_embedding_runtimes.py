"""The ONNX Runtime path of embed_view_sets gives PyTorch's vectors (the CPU index build uses it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from photo2cad.models import vector_dim
from photo2cad.models.embedding import embed_view_sets
from photo2cad.models.onnx_views import OnnxViewEngine, onnx_view_engine
from photo2cad.shapes.render import Renderer
from photo2cad.weights.checkpoint import load_amvml, set_category_weight, set_prior_weight
from tests.helpers import TEST_RENDER
from tests.meshpool import shapes

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def grey_views() -> np.ndarray:
    """(3, 4, 64, 64, 3) renders of three test shapes, as the indexer embeds them."""
    with Renderer(TEST_RENDER) as renderer:
        meshes = list(shapes().values())[:3]
        views = [
            renderer.render(m.copy().apply_scale(0.5), TEST_RENDER.embed_size, passes=("grey",)).grey for m in meshes
        ]
    return np.stack(views)  # type: ignore[arg-type]


@pytest.mark.parametrize("prior_weight", [0.0, 0.6])
def test_onnx_runtime_embeds_views_as_pytorch_does(
    tiny_weights: Path, grey_views: np.ndarray, prior_weight: float
) -> None:
    model, header = load_amvml(tiny_weights, CPU)
    set_prior_weight(model, header, prior_weight)

    reference = embed_view_sets(model, grey_views, CPU, batch_shapes=2)
    fast = embed_view_sets(model, grey_views, CPU, batch_shapes=2, engine=OnnxViewEngine(model))

    assert fast.vectors.shape == (3, vector_dim(model.config)) and fast.view_embeddings.shape == (3, 4, 32)
    np.testing.assert_allclose(fast.vectors, reference.vectors, atol=1e-4)
    np.testing.assert_allclose(fast.view_embeddings, reference.view_embeddings, atol=1e-4)
    assert not np.allclose(reference.vectors[0], reference.vectors[1])  # the shapes differ: the check can fail


def test_a_gpu_embeds_with_pytorch(tiny_weights: Path) -> None:
    model, _ = load_amvml(tiny_weights, CPU)

    assert onnx_view_engine(model, torch.device("cuda")) is None


def test_a_cpu_embeds_with_onnx_runtime_out_of_the_box(tiny_weights: Path) -> None:
    model, _ = load_amvml(tiny_weights, CPU)

    assert onnx_view_engine(model, CPU) is not None  # the install brings the exporter (onnx), not just the runtime


def test_weights_scoring_categories_embed_shapes_with_their_categories(
    tiny_weights: Path, grey_views: np.ndarray
) -> None:
    model, header = load_amvml(tiny_weights, CPU)
    named = header.model_copy(update={"notes": {**header.notes, "categories": ["bed", "chair", "sofa", "table"]}})
    set_category_weight(model, named, 0.2)
    with pytest.raises(ValueError, match="needs their categories"):
        embed_view_sets(model, grey_views, CPU)

    reference = embed_view_sets(model, grey_views, CPU, categories=["sofa", None, "lamp"])
    fast = embed_view_sets(model, grey_views, CPU, engine=OnnxViewEngine(model), categories=["sofa", None, "lamp"])

    np.testing.assert_allclose(fast.vectors, reference.vectors, atol=1e-4)
    assert np.argmax(reference.vectors[:, -5:], axis=1).tolist() == [2, 4, 4]  # sofa, then "other" twice
