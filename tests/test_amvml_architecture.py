"""AMV-ML against supplement Table 2 (224x224 inputs) and the decisions of docs/method.md."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn
from torchvision.models.resnet import BasicBlock

from photo2cad.models import AMVML, AMVMLConfig, vector_dim
from photo2cad.models.amvml import CATEGORY_SCALE, masked_average_pool, probe_width, with_shape_categories


@pytest.fixture(scope="module")
def amvml() -> AMVML:
    return AMVML(AMVMLConfig(backbone="resnet34", pretrained=False)).eval()


def _conv(module: nn.Module) -> tuple[int, int, int, int]:
    assert isinstance(module, nn.Conv2d)
    return module.in_channels, module.out_channels, module.kernel_size[0], module.stride[0]


def _stage_widths(stage: nn.Module) -> tuple[int, int, int]:
    blocks = [b for b in stage.children() if isinstance(b, BasicBlock)]
    return blocks[0].conv1.in_channels, blocks[-1].conv2.out_channels, blocks[0].conv1.kernel_size[0]


def test_enc1_rows_conv7x7_bn_relu_maxpool_conv2x(amvml: AMVML) -> None:
    conv, bn, relu, pool, conv2x = amvml.enc1
    assert _conv(conv) == (3, 64, 7, 2)
    assert isinstance(bn, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
    assert isinstance(pool, nn.MaxPool2d) and (pool.kernel_size, pool.stride) == (3, 2)
    assert _stage_widths(conv2x) == (64, 64, 3)
    assert len(conv2x) == 3  # ResNet34's conv2_x has three basic blocks


@pytest.mark.parametrize("branch", ["enc2", "enc3"])
def test_enc2_and_enc3_rows_are_resnet34_conv3x_to_conv5x(amvml: AMVML, branch: str) -> None:
    stages = getattr(amvml, branch).stages
    assert [_stage_widths(s) for s in stages] == [(64, 128, 3), (128, 256, 3), (256, 512, 3)]
    assert [len(s) for s in stages] == [4, 6, 3]


def test_enc2_and_enc3_are_separate_while_enc1_is_shared(amvml: AMVML) -> None:
    enc2 = {id(p) for p in amvml.enc2.parameters()}
    enc3 = {id(p) for p in amvml.enc3.parameters()}
    assert not enc2 & enc3
    photo_path = amvml.photo_features(torch.rand(1, 3, 224, 224))
    view_path = amvml.view_features(torch.rand(1, 3, 224, 224))
    assert photo_path[-1].shape == view_path[-1].shape == (1, 512, 7, 7)


def test_upernet_rows(amvml: AMVML) -> None:
    head = amvml.upernet
    assert isinstance(head.ppm_pool, nn.AdaptiveAvgPool2d)  # row 1
    assert _conv(head.ppm_conv[0])[:3] == (512, 128, 1) and isinstance(head.ppm_conv[1], nn.BatchNorm2d)  # row 2
    assert _conv(head.ppm_bottleneck[0])[:3] == (512 + 128, 128, 1)  # row 3
    assert [_conv(lat[0])[:3] for lat in head.lateral] == [(64, 128, 1), (128, 128, 1), (256, 128, 1)]  # row 4 FPN
    assert _conv(head.fuse[0]) == (512, 128, 3, 1) and isinstance(head.fuse[2], nn.ReLU)  # row 5
    assert _conv(head.classifier) == (128, 1, 1, 1)  # row 6


def test_photo_branch_outputs_at_224px(amvml: AMVML) -> None:
    with torch.no_grad():
        features = amvml.photo_features(torch.rand(2, 3, 224, 224))
        out = amvml.embed_photo(torch.rand(2, 3, 224, 224))
    assert [tuple(f.shape[1:]) for f in features] == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    assert out.embedding.shape == (2, 256)
    assert out.mask_logits.shape == (2, 1, 224, 224)
    assert out.category_logits.shape == (2, 4)
    assert torch.allclose(out.embedding.norm(dim=1), torch.ones(2), atol=1e-5)


def test_view_branch_fuses_twelve_views_into_one_unit_vector(amvml: AMVML) -> None:
    with torch.no_grad():
        out = amvml.embed_views(torch.rand(2, 12, 3, 224, 224))
    assert out.embedding.shape == (2, 256)
    assert out.view_embeddings.shape == (2, 12, 256)
    assert torch.allclose(out.view_attention.sum(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(out.embedding.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(out.view_embeddings.norm(dim=2), torch.ones(2, 12), atol=1e-5)


def test_masked_pooling_ignores_the_background() -> None:
    features = torch.zeros(1, 2, 4, 4)
    features[:, 0, :2] = 1.0  # channel 0 lives in the top half only
    features[:, 1, 2:] = 1.0  # channel 1 in the bottom half
    top_mask = torch.zeros(1, 1, 8, 8)
    top_mask[:, :, :4] = 1.0
    pooled = masked_average_pool(features, top_mask)
    assert pooled[0, 0] > 0.99 and pooled[0, 1] < 0.01


def test_a_given_mask_replaces_the_predicted_one(amvml: AMVML) -> None:
    image = torch.rand(1, 3, 224, 224)
    left = torch.zeros(1, 1, 224, 224)
    left[..., :112] = 1
    with torch.no_grad():
        predicted = amvml.embed_photo(image).embedding
        masked = amvml.embed_photo(image, mask=left).embedding
    assert not torch.allclose(predicted, masked)


def test_rerank_scores_are_cosines_of_query_conditioned_fusions(amvml: AMVML) -> None:
    queries = torch.nn.functional.normalize(torch.randn(3, 256), dim=1)
    views = torch.nn.functional.normalize(torch.randn(5, 12, 256), dim=2)
    with torch.no_grad():
        scores = amvml.rerank_scores(queries, views)
    assert scores.shape == (3, 5)
    assert scores.abs().max() <= 1 + 1e-5
    # A candidate whose every view equals the query scores 1, the highest possible.
    views[2] = queries[0]
    with torch.no_grad():
        assert amvml.rerank_scores(queries[:1], views)[0].argmax() == 2


def test_embeddings_are_deterministic_in_eval_mode(amvml: AMVML) -> None:
    image = torch.rand(2, 3, 224, 224)
    views = torch.rand(1, 12, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(amvml.embed_photo(image).embedding, amvml.embed_photo(image).embedding)
        assert torch.equal(amvml.embed_views(views).embedding, amvml.embed_views(views).embedding)


def test_sizes_are_configuration() -> None:
    config = AMVMLConfig(pretrained=False, embedding_dim=64, num_views=4, num_categories=7, image_size=128)
    model = AMVML(config).eval()
    with torch.no_grad():
        photo = model.embed_photo(torch.rand(1, 3, 128, 128))
        shape = model.embed_views(torch.rand(1, 4, 3, 128, 128))
    assert photo.embedding.shape == (1, 64) and photo.category_logits.shape == (1, 7)
    assert shape.view_embeddings.shape == (1, 4, 64)


def test_efficientnet_lite0_backbone_is_cut_at_the_same_strides() -> None:
    model = AMVML(AMVMLConfig(backbone="efficientnet_lite0", pretrained=False)).eval()
    with torch.no_grad():
        features = model.photo_features(torch.rand(1, 3, 224, 224))
        shape = model.embed_views(torch.rand(1, 12, 3, 224, 224))
    assert [tuple(f.shape[1:]) for f in features] == [(24, 56, 56), (40, 28, 28), (112, 14, 14), (320, 7, 7)]
    assert shape.embedding.shape == (1, 256)


def test_efficientnet_lite2_backbone_is_cut_at_the_same_strides() -> None:
    model = AMVML(AMVMLConfig(backbone="efficientnet_lite2", pretrained=False)).eval()
    with torch.no_grad():
        features = model.photo_features(torch.rand(1, 3, 256, 256))
    assert [tuple(f.shape[1:]) for f in features] == [(24, 64, 64), (48, 32, 32), (120, 16, 16), (352, 8, 8)]
    assert sum(p.numel() for p in model.parameters()) == 10_139_355


def test_parameter_counts_are_recorded() -> None:
    counts = {}
    for backbone in ("resnet34", "efficientnet_lite0"):
        model = AMVML(AMVMLConfig(backbone=backbone, pretrained=False))
        counts[backbone] = sum(p.numel() for p in model.parameters())
    assert counts == {"resnet34": 43_942_859, "efficientnet_lite0": 7_323_099}


def test_forward_and_backward_on_cpu(amvml: AMVML) -> None:
    amvml.train()
    try:
        photo = amvml.embed_photo(torch.rand(2, 3, 224, 224))
        shape = amvml.embed_views(torch.rand(2, 3, 3, 224, 224))
        loss = (
            (1 - (photo.embedding * shape.embedding).sum(dim=1)).mean()
            + photo.mask_logits.sigmoid().mean()
            + photo.category_logits.sum()
            + shape.category_logits.sum()
        )
        loss.backward()
        for part in (amvml.enc1, amvml.enc2, amvml.enc3, amvml.upernet, amvml.view_attention):
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in part.parameters())
    finally:
        amvml.zero_grad(set_to_none=True)
        amvml.eval()


def test_attention_can_be_switched_off_for_the_ablation() -> None:
    model = AMVML(AMVMLConfig(pretrained=False, backbone="efficientnet_lite0", view_attention=False)).eval()
    with torch.no_grad():
        out = model.embed_views(torch.rand(1, 3, 3, 224, 224))
    assert torch.allclose(out.view_attention, torch.full((1, 3), 1 / 3))


def test_without_prior_the_retrieval_vector_is_the_embedding(amvml: AMVML) -> None:
    with torch.no_grad():
        photo = amvml.embed_photo(torch.rand(1, 3, 224, 224))
        shape = amvml.embed_views(torch.rand(1, 3, 3, 224, 224))
    assert torch.equal(photo.vector, photo.embedding) and torch.equal(shape.vector, shape.embedding)
    assert vector_dim(amvml.config) == amvml.config.embedding_dim


@pytest.mark.parametrize(("stages", "widths"), [(1, (320,)), (3, (40, 112, 320))])
def test_the_prior_blends_the_view_branch_features_into_the_scores(stages: int, widths: tuple[int, ...]) -> None:
    """vector . vector = (1 - w) x the embeddings' cosine + w x the mean over the prior's stages of the cosine of the
    view branch's pooled features, the photo's seen through the view branch, a shape's averaged over its views."""
    config = AMVMLConfig(
        backbone="efficientnet_lite0",
        pretrained=False,
        image_size=64,
        num_views=3,
        prior_weight=0.7,
        prior_stages=stages,
    )
    model = AMVML(config).eval()
    photo_pixels, view_pixels = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 3, 64, 64)

    def pooled_stages(pixels: torch.Tensor) -> list[torch.Tensor]:
        maps = model.view_features(pixels)[-stages:]
        return [F.normalize(feature_map.mean(dim=(2, 3)), dim=1) for feature_map in maps]

    with torch.no_grad():
        photo, shape = model.embed_photo(photo_pixels), model.embed_views(view_pixels)
        photo_priors = pooled_stages(photo_pixels)
        shape_priors = [
            F.normalize(v.view(2, 3, -1).mean(dim=1), dim=1) for v in pooled_stages(view_pixels.flatten(0, 1))
        ]
    assert vector_dim(config) == 256 + sum(widths)
    assert photo.vector.shape == shape.vector.shape == (2, 256 + sum(widths)) and photo.embedding.shape == (2, 256)
    assert torch.allclose(photo.vector.norm(dim=1), torch.ones(2)) and torch.allclose(
        shape.vector.norm(dim=1), torch.ones(2)
    )
    prior_cosine = sum(p @ s.T for p, s in zip(photo_priors, shape_priors, strict=True)) / stages
    expected = 0.3 * photo.embedding @ shape.embedding.T + 0.7 * prior_cosine
    assert torch.allclose(photo.vector @ shape.vector.T, expected, atol=1e-5)


def test_re_ranking_with_the_prior_re_scores_the_embedding_part_only() -> None:
    config = AMVMLConfig(backbone="efficientnet_lite0", pretrained=False, image_size=64, num_views=3, prior_weight=0.6)
    model = AMVML(config).eval()
    with torch.no_grad():
        photo = model.embed_photo(torch.rand(1, 3, 64, 64))
        shapes = model.embed_views(torch.rand(4, 3, 3, 64, 64))
        attended = model.rerank_scores(photo.embedding, shapes.view_embeddings)
        blended = model.rerank_scores(photo.vector, shapes.view_embeddings, shapes.vector)
        prior_part = photo.vector[:, 256:] @ shapes.vector[:, 256:].T
        with pytest.raises(ValueError, match="retrieval vectors"):
            model.rerank_scores(photo.vector, shapes.view_embeddings)
    assert torch.allclose(blended, 0.4 * attended + prior_part, atol=1e-5)
    assert not torch.allclose(blended, attended)


CATEGORIES = ("bed", "chair", "table")


def _scoring_categories(model: AMVML, weight: float) -> AMVML:
    model.config = model.config.model_copy(update={"category_weight": weight, "category_names": CATEGORIES})
    return model


def test_a_category_weight_adds_the_photo_head_score_of_each_shape_category() -> None:
    """score = the score without categories + b x log(C x p(c | photo)) for a shape of category c the head knows, and
    + 0 for a shape of another category or none; shape vectors stay unit length."""
    config = AMVMLConfig(backbone="efficientnet_lite0", pretrained=False, image_size=64, num_views=3, num_categories=3)
    model = AMVML(config.model_copy(update={"prior_weight": 0.6})).eval()
    photo_pixels, view_pixels = torch.rand(2, 3, 64, 64), torch.rand(3, 3, 3, 64, 64)
    shape_categories = ["table", None, "lamp"]
    with torch.no_grad():
        plain_photo, shapes = model.embed_photo(photo_pixels), model.embed_views(view_pixels)
        plain = plain_photo.vector @ shapes.vector.T
        weighted = _scoring_categories(model, 0.5)
        photo = weighted.embed_photo(photo_pixels)
        shape_vectors = with_shape_categories(weighted.config, shapes.vector, shape_categories)
    head_scores = 0.5 * (F.log_softmax(plain_photo.category_logits, dim=1) + math.log(3))
    assert vector_dim(weighted.config) == 256 + 40 + 112 + 320 + 4 == photo.vector.shape[1] == shape_vectors.shape[1]
    assert torch.allclose(shape_vectors.norm(dim=1), torch.ones(3))
    scores = photo.vector @ shape_vectors.T
    assert torch.allclose(scores[:, 0], plain[:, 0] + head_scores[:, 2], atol=1e-5)
    assert torch.allclose(scores[:, 1:], plain[:, 1:], atol=1e-5)


def test_re_ranking_keeps_the_category_scores() -> None:
    config = AMVMLConfig(
        backbone="efficientnet_lite0", pretrained=False, image_size=64, num_views=3, num_categories=3, prior_weight=0.6
    )
    model = AMVML(config).eval()
    with torch.no_grad():
        photo_pixels, shapes = torch.rand(1, 3, 64, 64), model.embed_views(torch.rand(2, 3, 3, 64, 64))
        plain = model.rerank_scores(model.embed_photo(photo_pixels).vector, shapes.view_embeddings, shapes.vector)
        weighted = _scoring_categories(model, 0.3)
        photo = weighted.embed_photo(photo_pixels)
        shape_vectors = with_shape_categories(weighted.config, shapes.vector, ["chair", "desk"])
        reranked = weighted.rerank_scores(photo.vector, shapes.view_embeddings, shape_vectors)
    head_scores = 0.3 * (F.log_softmax(photo.category_logits, dim=1) + math.log(3))
    assert torch.allclose(reranked, plain + torch.stack([head_scores[0, 1], torch.tensor(0.0)]), atol=1e-5)


def test_a_category_probe_multiplies_its_probabilities_with_the_heads_in_the_category_term() -> None:
    """p(c | photo) = the normalised product of the head's and the probe's probabilities; the probe reads the photo's
    view-branch C3..C5, average-pooled and each unit length, and nothing else changes."""
    config = AMVMLConfig(backbone="efficientnet_lite0", pretrained=False, image_size=64, num_views=3, num_categories=3)
    probing = config.model_copy(update={"prior_weight": 0.6, "category_weight": 0.5, "category_names": CATEGORIES})
    model = AMVML(probing.model_copy(update={"category_probe": True})).eval()
    assert model.category_probe is not None and model.category_probe.in_features == probe_width(model.config) == 472
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        photo = model.embed_photo(pixels)
        stages = [stage.mean(dim=(2, 3)) for stage in model.enc3(model.enc1(model._normalise(pixels)))]
        probe_logits = model.category_probe(torch.cat([F.normalize(s, dim=1) for s in stages], dim=1))
        assert torch.allclose(model.probe_input(pixels), torch.cat([F.normalize(s, dim=1) for s in stages], dim=1))
        model.category_probe = None
        model.config = probing
        headless = model.embed_photo(pixels)  # the same network without its probe
    fused = F.log_softmax(F.log_softmax(photo.category_logits, 1) + F.log_softmax(probe_logits, 1), 1)
    category_part = photo.vector[:, -4:-1] / CATEGORY_SCALE
    assert torch.allclose(category_part, 0.5 * (fused + math.log(3)), atol=1e-5)
    assert torch.allclose(photo.vector[:, :-4], headless.vector[:, :-4], atol=1e-6)  # embedding and prior unchanged
    assert not torch.allclose(photo.vector[:, -4:-1], headless.vector[:, -4:-1])


def test_a_category_probe_needs_a_category_weight() -> None:
    with pytest.raises(ValidationError, match="category_probe needs category_weight"):
        AMVMLConfig(num_categories=3, category_probe=True)


def test_a_category_weight_needs_the_heads_class_names() -> None:
    with pytest.raises(ValidationError, match="category_names"):
        AMVMLConfig(num_categories=3, category_weight=0.1)
    with pytest.raises(ValidationError, match="2 category_names for 3 categories"):
        AMVMLConfig(num_categories=3, category_names=("bed", "chair"))
