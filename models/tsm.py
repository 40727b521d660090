"""Texture Synthesis Module (supplement Table 1; BicycleGAN layout, see docs/design.md).

Reads top to bottom like the table: texture encoder, U-Net generator fed z and c at every down block, and the two
PatchGAN discriminators (70x70 on the image, 140x140 on a 3x3/2 average-pooled copy) with category heads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from photo2cad.models.config import TSMConfig
from photo2cad.models.layers import category_linear

LEAK = 0.2


def _conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2 if kernel % 2 else 1)


# --------------------------------------------------------------------------------------------- texture encoder
class EncoderResBlock(nn.Module):
    """Figure 1(b): [IN] -> LReLU -> conv3x3 -> [IN] -> LReLU -> conv3x3, plus a 1x1 shortcut.

    `downsample` closes the block with a 2x2 average pool on both paths (BicycleGAN's BasicBlock), which is how the
    encoder reaches the 8x8 map that row 7's 8x8 pool expects.
    """

    def __init__(self, c_in: int, c_out: int, norm: bool, downsample: bool) -> None:
        super().__init__()

        def norm_layer(c: int) -> nn.Module:
            return nn.InstanceNorm2d(c) if norm else nn.Identity()

        self.residual = nn.Sequential(
            norm_layer(c_in),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(c_in, c_in, 3, 1, 1),
            norm_layer(c_in),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(c_in, c_out, 3, 1, 1),
        )
        self.shortcut = nn.Conv2d(c_in, c_out, 1, 1, 0)
        self.pool = nn.AvgPool2d(2) if downsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.residual(x) + self.shortcut(x))


class TextureEncoder(nn.Module):
    """Table 1, Encoder: photo -> (mu, logvar) of the 8-D texture code z."""

    def __init__(self, config: TSMConfig) -> None:
        super().__init__()
        widths = config.encoder_channels
        self.stem = nn.Sequential(  # row 1
            nn.Conv2d(3, widths[0], 4, 2, 1), nn.InstanceNorm2d(widths[0]), nn.LeakyReLU(LEAK)
        )
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for index, c_out in enumerate(widths):  # rows 2-6
            last = index == len(widths) - 1
            blocks.append(EncoderResBlock(c_in, c_out, norm=not last, downsample=index > 0))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.activation = nn.LeakyReLU(LEAK)  # row 6's LeakyReLU
        self.pool = nn.AvgPool2d(config.image_size // 32)  # row 7: 8x8 for 256 px input
        self.fc_mu = nn.Linear(c_in, config.latent_dim)  # row 8
        self.fc_logvar = nn.Linear(c_in, config.latent_dim)  # row 8's twin, for the cVAE-GAN half

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.pool(self.activation(self.blocks(self.stem(image)))).flatten(1)
        return self.fc_mu(features), self.fc_logvar(features)


# --------------------------------------------------------------------------------------------------- generator
class UnetDown(nn.Module):
    """Figure 1(c): conv4x4/2 -> [IN] -> activation, on the input concatenated with the broadcast (z, c)."""

    def __init__(self, c_in: int, c_out: int, norm: bool, activation: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 4, 2, 1)
        self.norm = nn.InstanceNorm2d(c_out) if norm else nn.Identity()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


class UnetUp(nn.Module):
    """Figure 1(d): transposed conv4x4/2 -> IN -> ReLU (the outermost block: -> Tanh instead)."""

    def __init__(self, c_in: int, c_out: int, outermost: bool) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
        self.norm = nn.Identity() if outermost else nn.InstanceNorm2d(c_out)
        self.activation: nn.Module = nn.Tanh() if outermost else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


def _broadcast_concat(x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    if code.shape[1] == 0:
        return x
    return torch.cat([x, code[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], dim=1)


class UnetGenerator(nn.Module):
    """Table 1, Generator: normal map (3) + z (8) + c (C) -> textured image (3), U-Net with skips.

    A 256 px input allows eight stride-2 convolutions: row 1, rows 2-4, row 5 repeated log2(size) - 5 times (three at
    256 px; the table prints x4, which cannot fit, see docs/design.md) and the innermost row 6. The up path mirrors
    it: row 7 (four blocks to 512), rows 13-16.
    """

    def __init__(self, config: TSMConfig) -> None:
        super().__init__()
        if config.image_size & (config.image_size - 1):
            raise ValueError(f"TSM image_size must be a power of two, got {config.image_size}")
        ngf = config.base_channels
        code = config.latent_dim + config.num_categories
        repeats = int(math.log2(config.image_size)) - 5
        if repeats < 0:
            raise ValueError(f"TSM image_size must be at least 32, got {config.image_size}")
        down_widths = [ngf, ngf * 2, ngf * 4, ngf * 8] + [ngf * 8] * repeats
        downs: list[nn.Module] = [UnetDown(3 + code, ngf, norm=False, activation=nn.LeakyReLU(LEAK))]  # row 1
        for c_in, c_out in zip(down_widths[:-1], down_widths[1:], strict=True):  # rows 2-5
            downs.append(UnetDown(c_in + code, c_out, norm=True, activation=nn.LeakyReLU(LEAK)))
        self.downs = nn.ModuleList(downs)
        self.innermost = UnetDown(ngf * 8, ngf * 8, norm=False, activation=nn.ReLU())  # row 6
        ups: list[nn.Module] = [UnetUp(ngf * 8, ngf * 8, outermost=False)]  # row 7, first (no skip yet)
        skips = list(reversed(down_widths))  # widths of the skip tensors, deepest first
        c_up = ngf * 8
        for skip, c_out in zip(skips[:-1], list(reversed(down_widths))[1:], strict=True):  # rows 7, 13-15
            ups.append(UnetUp(c_up + skip, c_out, outermost=False))
            c_up = c_out
        ups.append(UnetUp(c_up + skips[-1], 3, outermost=True))  # row 16
        self.ups = nn.ModuleList(ups)

    def forward(self, normal_map: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """`code` is cat(z, one-hot c), shape (B, latent_dim + num_categories)."""
        skips: list[torch.Tensor] = []
        x = normal_map
        for down in self.downs:
            x = down(_broadcast_concat(x, code))
            skips.append(x)
        x = self.ups[0](self.innermost(x))
        for up, skip in zip(self.ups[1:], reversed(skips), strict=True):
            x = up(torch.cat([x, skip], dim=1))
        return x


# ------------------------------------------------------------------------------------------------ discriminator
class DiscriminatorOutput(NamedTuple):
    patch_logits: torch.Tensor  # (B, 1, h, w): least-squares GAN scores per patch
    category_logits: torch.Tensor  # (B, C); C = 0 when the dataset has one category


class PatchDiscriminator(nn.Module):
    """Table 1, Discriminators: PatchGAN with an average-pool + linear category head.

    `ndf=64, input_pool=False` is the 70x70 one; `ndf=32, input_pool=True` the 140x140 one, which first halves the
    image with a 3x3/2 average pool. The head reads the last feature map (512 resp. 256 channels; the table prints
    512 for both, see docs/design.md).
    """

    def __init__(self, ndf: int, input_pool: bool, num_categories: int) -> None:
        super().__init__()
        self.input_pool: nn.Module = (
            nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False) if input_pool else nn.Identity()
        )
        widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 4, 2, 1), nn.LeakyReLU(LEAK)]
        for index, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            stride = 1 if index == len(widths) - 2 else 2
            layers += [nn.Conv2d(c_in, c_out, 4, stride, 1), nn.InstanceNorm2d(c_out), nn.LeakyReLU(LEAK)]
        self.features = nn.Sequential(*layers)
        self.patch_head = nn.Conv2d(widths[-1], 1, 4, 1, 1)
        self.category_head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), category_linear(widths[-1], num_categories)
        )

    def forward(self, image: torch.Tensor) -> DiscriminatorOutput:
        features = self.features(self.input_pool(image))
        return DiscriminatorOutput(self.patch_head(features), self.category_head(features))


# -------------------------------------------------------------------------------------------------------- whole
class TextureSynthesisModule(nn.Module):
    """Encoder E, generator G and the two discriminators, with the helpers training and hard-triplet mining use."""

    def __init__(self, config: TSMConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextureEncoder(config)
        self.generator = UnetGenerator(config)
        self.discriminator_70 = PatchDiscriminator(64, input_pool=False, num_categories=config.num_categories)
        self.discriminator_140 = PatchDiscriminator(32, input_pool=True, num_categories=config.num_categories)

    def code(self, z: torch.Tensor, category: torch.Tensor | None) -> torch.Tensor:
        """cat(z, one-hot c); `category` holds class indices and is ignored when the config has no categories."""
        if self.config.num_categories == 0:
            return z
        if category is None:
            raise ValueError("this TSM is category-conditioned: pass the category index of every sample")
        return torch.cat([z, F.one_hot(category, self.config.num_categories).to(z.dtype)], dim=1)

    def sample_z(
        self, batch: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return torch.randn(batch, self.config.latent_dim, device=device, generator=generator)

    def texture_code(self, image: torch.Tensor) -> torch.Tensor:
        """E(image): the mean texture code, as hard-negative mining uses it."""
        mu, _ = self.encoder(image)
        return mu

    def synthesize(self, normal_map: torch.Tensor, z: torch.Tensor, category: torch.Tensor | None) -> torch.Tensor:
        """Textured rendering of the shape behind `normal_map` (values in [-1, 1])."""
        return self.generator(normal_map, self.code(z, category))
