"""ImageNet initialisation: real loading code, tested on weights the test makes, never downloaded."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision

from photo2cad.weights import pretrained


@pytest.fixture
def empty_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    pretrained._warn_random_init.cache_clear()

    def no_network(*args: object, **kwargs: object) -> None:
        raise URLError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub" / "checkpoints"


def test_resnet34_loads_imagenet_weights_from_the_torch_hub_cache(empty_torch_hub: Path) -> None:
    reference = torchvision.models.resnet34(weights=None)
    url = torchvision.models.ResNet34_Weights.IMAGENET1K_V1.url
    empty_torch_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), empty_torch_hub / url.rsplit("/", 1)[1])
    net = pretrained.resnet34(pretrained=True)
    assert torch.equal(net.conv1.weight, reference.conv1.weight)
    assert torch.equal(net.fc.bias, reference.fc.bias)


def test_unreachable_weights_fall_back_to_random_init_and_say_so_once(
    empty_torch_hub: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="weights.pretrained"):
        first = pretrained.resnet34(pretrained=True)
        pretrained.resnet34(pretrained=True)
    warnings = [r for r in caplog.records if "random initialisation" in r.getMessage()]
    assert len(warnings) == 1
    assert "resnet34" in warnings[0].getMessage()
    assert isinstance(first, torchvision.models.ResNet)


def test_efficientnet_lite0_weights_come_from_the_installed_wheel() -> None:
    random_net = pretrained.efficientnet_lite0(pretrained=False)
    imagenet_net = pretrained.efficientnet_lite0(pretrained=True)
    stem = imagenet_net.get_submodule("_bn0")
    # Trained batch-norm statistics, not the fresh ones (mean 0, variance 1).
    assert not torch.allclose(stem.running_var, torch.ones_like(stem.running_var))
    assert not torch.equal(
        imagenet_net.get_submodule("_conv_stem").weight, random_net.get_submodule("_conv_stem").weight
    )
