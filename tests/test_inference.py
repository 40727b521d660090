"""A network folded for inference computes what it was folded from, faster, and leaves that network as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from photo2cad.models import AMVML, AMVMLConfig
from photo2cad.models.inference import folded_for_inference
from photo2cad.weights.checkpoint import header_for, load_amvml_for_inference, save_checkpoint


def _with_trained_statistics(model: AMVML) -> AMVML:
    """Batch norms as training leaves them (statistics and affine maps away from 0 and 1), so folding has work."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(channels, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(channels, generator=generator) * 0.1)
    return model.eval()


@pytest.fixture(scope="module", params=["efficientnet_lite0", "resnet34"])
def network(request: pytest.FixtureRequest) -> AMVML:
    config = AMVMLConfig(backbone=request.param, pretrained=False, embedding_dim=32, image_size=64, prior_weight=0.5)
    return _with_trained_statistics(AMVML(config))


def test_a_folded_network_gives_the_same_vectors_up_to_rounding(network: AMVML) -> None:
    folded = folded_for_inference(network)
    views, photos = torch.rand(2, 3, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        shapes, folded_shapes = network.embed_views(views), folded.embed_views(views)
        photo, folded_photo = network.embed_photo(photos), folded.embed_photo(photos)
    assert torch.allclose(folded_shapes.vector, shapes.vector, atol=1e-5)
    assert torch.allclose(folded_shapes.view_embeddings, shapes.view_embeddings, atol=1e-5)
    assert torch.allclose(folded_photo.vector, photo.vector, atol=1e-5)
    assert torch.allclose(folded_photo.mask_logits, photo.mask_logits, atol=1e-4)


def test_folding_removes_every_batch_norm_and_the_symmetric_paddings(network: AMVML) -> None:
    folded = folded_for_inference(network)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    pads_before = sum(isinstance(m, nn.ZeroPad2d) for m in network.modules())
    pads_after = sum(isinstance(m, nn.ZeroPad2d) for m in folded.modules())
    if network.config.backbone == "efficientnet_lite0":  # TF-style "same" padding: stride 1 symmetric, stride 2 not
        assert 0 < pads_after < pads_before
    assert not folded.training
    assert not any(p.requires_grad for p in folded.parameters())


def test_the_network_folded_from_is_left_as_it_was(network: AMVML) -> None:
    state = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    network.train()
    folded_for_inference(network)
    assert network.training
    assert any(isinstance(m, nn.BatchNorm2d) for m in network.modules())
    assert all(torch.equal(network.state_dict()[name], tensor) for name, tensor in state.items())
    network.eval()


def test_a_network_nobody_else_holds_can_be_folded_itself() -> None:
    network = _with_trained_statistics(AMVML(AMVMLConfig(backbone="efficientnet_lite0", pretrained=False)))
    views = torch.rand(1, 2, 3, 64, 64)
    with torch.inference_mode():
        before = network.embed_views(views).vector
        folded = folded_for_inference(network, keep_original=False)
        assert folded is network
        assert torch.allclose(folded.embed_views(views).vector, before, atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in network.modules())


def test_inference_loading_folds_the_checkpoint(tmp_path: Path) -> None:
    model = _with_trained_statistics(AMVML(AMVMLConfig(backbone="efficientnet_lite0", pretrained=False)))
    path = save_checkpoint(tmp_path / "amvml.safetensors", model, header_for(model))
    loaded, header = load_amvml_for_inference(path)
    assert header.architecture == "amvml"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.modules())
    views = torch.rand(1, 2, 3, 160, 160)
    with torch.inference_mode():
        assert torch.allclose(loaded.embed_views(views).vector, model.embed_views(views).vector, atol=1e-5)
