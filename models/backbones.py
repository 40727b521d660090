"""Backbones split into the three encoders of AMV-ML (supplement Table 2).

Enc1 is the shared stem (ResNet34's conv1 + max-pool + conv2_x, stride 4). A *branch* is one copy of the remaining
stages (conv3_x, conv4_x, conv5_x; strides 8, 16, 32): Enc2 and Enc3 are two separate branches. EfficientNet-Lite0
and -Lite2 are cut at the same strides so the rest of AMV-ML does not care which backbone it runs on.

Backbones are built here with random weights; `photo2cad.weights.pretrained` starts them from ImageNet (one place
for every pretrained weight, below which the networks know nothing of files or downloads).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from photo2cad.models.config import Backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (x - 127) / 128 inputs.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class BackboneParts:
    """What AMV-ML needs of a backbone: Enc1, one template branch, channel widths and input normalisation."""

    enc1: nn.Module
    branch: nn.ModuleList
    channels: tuple[int, int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def new_branch(self) -> nn.ModuleList:
        """A separate copy of the branch (Enc2 and Enc3 share initial weights, not parameters)."""
        return copy.deepcopy(self.branch)


class _LiteStage(nn.Module):
    """A run of EfficientNet-Lite MBConv blocks (their forward takes an optional drop-connect rate)."""

    def __init__(self, blocks: list[nn.Module], stem: nn.Module | None = None) -> None:
        super().__init__()
        self.stem = stem if stem is not None else nn.Identity()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x


def new_backbone(name: Backbone) -> nn.Module:
    """The whole classification network of `name`, randomly initialised."""
    if name == "resnet34":
        return torchvision.models.resnet34(weights=None)
    if name in _LITE_CUTS:
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(name.replace("_", "-"))
    raise ValueError(f"unknown backbone {name!r}; choose resnet34, efficientnet_lite0 or efficientnet_lite2")


_RESNET34_CHANNELS = (64, 128, 256, 512)  # C2..C5


def _resnet34_parts(net: nn.Module) -> BackboneParts:
    assert isinstance(net, torchvision.models.ResNet)
    enc1 = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
    branch = nn.ModuleList([net.layer2, net.layer3, net.layer4])
    return BackboneParts(enc1, branch, _RESNET34_CHANNELS, IMAGENET_MEAN, IMAGENET_STD)


# Where EfficientNet-Lite's MBConv blocks reach strides 8, 16 and 32, and the widths there: (first block of each
# branch stage, end) and (C2, C3, C4, C5).
_LITE_CUTS: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "efficientnet_lite0": ((3, 5, 11, 16), (24, 40, 112, 320)),
    "efficientnet_lite2": ((4, 7, 15, 21), (24, 48, 120, 352)),
}


def _efficientnet_lite_parts(name: str, net: nn.Module) -> BackboneParts:
    (c3, c4, c5, end), channels = _LITE_CUTS[name]
    blocks: list[nn.Module] = list(net.get_submodule("_blocks").children())
    stem = nn.Sequential(net.get_submodule("_conv_stem"), net.get_submodule("_bn0"), nn.ReLU6())
    enc1 = _LiteStage(blocks[0:c3], stem=stem)  # stride 4
    branch = nn.ModuleList([_LiteStage(blocks[c3:c4]), _LiteStage(blocks[c4:c5]), _LiteStage(blocks[c5:end])])
    return BackboneParts(enc1, branch, channels, LITE_MEAN, LITE_STD)


def stage_channels(name: Backbone) -> tuple[int, int, int, int]:
    """Channels of C2..C5: Enc1's output and the three stages of a branch."""
    if name == "resnet34":
        return _RESNET34_CHANNELS
    if name in _LITE_CUTS:
        return _LITE_CUTS[name][1]
    raise ValueError(f"unknown backbone {name!r}; choose resnet34, efficientnet_lite0 or efficientnet_lite2")


def split_backbone(name: Backbone, net: nn.Module) -> BackboneParts:
    """Enc1 and the branch template of `net`, a network `new_backbone(name)` built (its modules, not copies)."""
    if name == "resnet34":
        return _resnet34_parts(net)
    if name in _LITE_CUTS:
        return _efficientnet_lite_parts(name, net)
    raise ValueError(f"unknown backbone {name!r}; choose resnet34, efficientnet_lite0 or efficientnet_lite2")
