"""The Texture Synthesis Module, row by row against supplement Table 1 (256x256 input, C = 4, z = 8)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from photo2cad.models import TextureSynthesisModule, TSMConfig
from photo2cad.models.tsm import EncoderResBlock, PatchDiscriminator, UnetDown, UnetUp

C, Z = 4, 8


def conv_spec(conv: nn.Module) -> tuple[int, int, int, int]:
    assert isinstance(conv, nn.Conv2d | nn.ConvTranspose2d)
    return conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0]


@pytest.fixture(scope="module")
def tsm() -> TextureSynthesisModule:
    return TextureSynthesisModule(TSMConfig(num_categories=C, latent_dim=Z, image_size=256))


def test_encoder_row1_is_conv_instancenorm_leakyrelu_3_to_64_k4_s2(tsm: TextureSynthesisModule) -> None:
    conv, norm, act = tsm.encoder.stem
    assert conv_spec(conv) == (3, 64, 4, 2)
    assert isinstance(norm, nn.InstanceNorm2d) and isinstance(act, nn.LeakyReLU)


@pytest.mark.parametrize(
    ("row", "c_in", "c_out", "normalised"),
    [(2, 64, 64, True), (3, 64, 128, True), (4, 128, 192, True), (5, 192, 256, True), (6, 256, 256, False)],
)
def test_encoder_resblock_rows(tsm: TextureSynthesisModule, row: int, c_in: int, c_out: int, normalised: bool) -> None:
    block = tsm.encoder.blocks[row - 2]
    assert isinstance(block, EncoderResBlock)
    convs = [m for m in block.residual if isinstance(m, nn.Conv2d)]
    assert [conv_spec(c)[2:] for c in convs] == [(3, 1), (3, 1)]
    assert convs[0].in_channels == c_in and convs[-1].out_channels == c_out
    has_norm = any(isinstance(m, nn.InstanceNorm2d) for m in block.residual)
    assert has_norm is normalised
    assert any(isinstance(m, nn.LeakyReLU) for m in block.residual)


def test_encoder_rows7_8_average_pool_8_then_linear_256_to_8(tsm: TextureSynthesisModule) -> None:
    assert tsm.encoder.pool.kernel_size == 8 and tsm.encoder.pool.stride == 8
    assert (tsm.encoder.fc_mu.in_features, tsm.encoder.fc_mu.out_features) == (256, 8)
    assert (tsm.encoder.fc_logvar.in_features, tsm.encoder.fc_logvar.out_features) == (256, 8)


def test_encoder_maps_a_256px_photo_to_an_8d_code(tsm: TextureSynthesisModule) -> None:
    mu, logvar = tsm.encoder(torch.randn(2, 3, 256, 256))
    assert mu.shape == logvar.shape == (2, Z)


def test_generator_down_rows_take_z_and_c_at_every_block(tsm: TextureSynthesisModule) -> None:
    downs = tsm.generator.downs
    specs = [conv_spec(d.conv) for d in downs]
    assert specs == [
        (3 + C + Z, 64, 4, 2),  # row 1
        (64 + C + Z, 128, 4, 2),  # row 2
        (128 + C + Z, 256, 4, 2),  # row 3
        (256 + C + Z, 512, 4, 2),  # row 4
        (512 + C + Z, 512, 4, 2),  # row 5 (x3 at 256 px)
        (512 + C + Z, 512, 4, 2),
        (512 + C + Z, 512, 4, 2),
    ]
    assert isinstance(downs[0].norm, nn.Identity) and isinstance(downs[0].activation, nn.LeakyReLU)
    for block in downs[1:]:
        assert isinstance(block, UnetDown)
        assert isinstance(block.norm, nn.InstanceNorm2d) and isinstance(block.activation, nn.LeakyReLU)


def test_generator_row6_innermost_conv_relu_512(tsm: TextureSynthesisModule) -> None:
    assert conv_spec(tsm.generator.innermost.conv) == (512, 512, 4, 2)
    assert isinstance(tsm.generator.innermost.activation, nn.ReLU)


def test_generator_up_rows(tsm: TextureSynthesisModule) -> None:
    ups = tsm.generator.ups
    assert all(isinstance(u, UnetUp) and isinstance(u.conv, nn.ConvTranspose2d) for u in ups)
    assert [conv_spec(u.conv) for u in ups] == [
        (512, 512, 4, 2),  # row 7: the bottleneck has no skip partner
        (1024, 512, 4, 2),  # row 7
        (1024, 512, 4, 2),
        (1024, 512, 4, 2),
        (1024, 256, 4, 2),  # row 13
        (512, 128, 4, 2),  # row 14
        (256, 64, 4, 2),  # row 15
        (128, 3, 4, 2),  # row 16
    ]
    assert isinstance(ups[-1].activation, nn.Tanh)
    assert all(isinstance(u.activation, nn.ReLU) for u in ups[:-1])


def test_generator_textures_a_256px_normal_map(tsm: TextureSynthesisModule) -> None:
    normals = torch.rand(2, 3, 256, 256) * 2 - 1
    image = tsm.synthesize(normals, tsm.sample_z(2), torch.tensor([0, 3]))
    assert image.shape == (2, 3, 256, 256)
    assert image.min() >= -1 and image.max() <= 1


def test_generator_depends_on_z_and_category(tsm: TextureSynthesisModule) -> None:
    normals = torch.rand(1, 3, 256, 256) * 2 - 1
    z = tsm.sample_z(1)
    base = tsm.synthesize(normals, z, torch.tensor([0]))
    assert not torch.allclose(base, tsm.synthesize(normals, z + 1, torch.tensor([0])))
    assert not torch.allclose(base, tsm.synthesize(normals, z, torch.tensor([2])))


def _disc_convs(disc: PatchDiscriminator) -> list[tuple[int, int, int, int]]:
    return [conv_spec(m) for m in disc.features if isinstance(m, nn.Conv2d)] + [conv_spec(disc.patch_head)]


def test_discriminator_70_rows(tsm: TextureSynthesisModule) -> None:
    disc = tsm.discriminator_70
    assert isinstance(disc.input_pool, nn.Identity)
    assert _disc_convs(disc) == [
        (3, 64, 4, 2),
        (64, 128, 4, 2),
        (128, 256, 4, 2),
        (256, 512, 4, 1),
        (512, 1, 4, 1),
    ]
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in disc.features) == 3
    head = disc.category_head[-1]
    assert (head.in_features, head.out_features) == (512, C)


def test_discriminator_140_rows(tsm: TextureSynthesisModule) -> None:
    disc = tsm.discriminator_140
    assert isinstance(disc.input_pool, nn.AvgPool2d)
    assert (disc.input_pool.kernel_size, disc.input_pool.stride) == (3, 2)
    assert _disc_convs(disc) == [
        (3, 32, 4, 2),
        (32, 64, 4, 2),
        (64, 128, 4, 2),
        (128, 256, 4, 1),
        (256, 1, 4, 1),
    ]
    head = disc.category_head[-1]
    assert (head.in_features, head.out_features) == (256, C)


def test_discriminators_score_patches_and_categories(tsm: TextureSynthesisModule) -> None:
    image = torch.randn(2, 3, 256, 256)
    out70, out140 = tsm.discriminator_70(image), tsm.discriminator_140(image)
    assert out70.patch_logits.shape == (2, 1, 30, 30)
    assert out140.patch_logits.shape == (2, 1, 14, 14)
    assert out70.category_logits.shape == out140.category_logits.shape == (2, C)


def test_car_datasets_drop_the_category_code() -> None:
    tsm = TextureSynthesisModule(TSMConfig(num_categories=0))
    assert conv_spec(tsm.generator.downs[0].conv) == (3 + Z, 64, 4, 2)
    image = tsm.synthesize(torch.zeros(1, 3, 256, 256), tsm.sample_z(1), None)
    assert image.shape == (1, 3, 256, 256)


def test_category_conditioned_generator_requires_a_category(tsm: TextureSynthesisModule) -> None:
    with pytest.raises(ValueError, match="category"):
        tsm.synthesize(torch.zeros(1, 3, 256, 256), tsm.sample_z(1), None)


def test_parameter_counts_are_recorded(tsm: TextureSynthesisModule) -> None:
    counts = {name: sum(p.numel() for p in part.parameters()) for name, part in tsm.named_children()}
    # Recorded so an unnoticed change of any layer shows up here (see docs/design.md).
    assert counts == {
        "encoder": 2_668_048,
        "generator": 54_888_835,
        "discriminator_70": 2_766_789,
        "discriminator_140": 695_269,
    }


def test_forward_and_backward_on_cpu(tsm: TextureSynthesisModule) -> None:
    photo = torch.randn(1, 3, 256, 256)
    mu, _ = tsm.encoder(photo)
    fake = tsm.synthesize(torch.rand(1, 3, 256, 256), mu, torch.tensor([1]))
    loss = tsm.discriminator_70(fake).patch_logits.pow(2).mean() + tsm.discriminator_140(fake).category_logits.sum()
    loss.backward()
    trained = [*tsm.encoder.stem.parameters(), *tsm.encoder.fc_mu.parameters(), *tsm.generator.parameters()]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained)
    tsm.zero_grad(set_to_none=True)
