r"""Attentive Multi-View Metric Learning (supplement Table 2 and docs/method.md's decisions).

    photo  -> Enc1 -> Enc2 -> UperNet -> mask logits
                          \-> mask-weighted pooling -> 256-D photo embedding
    views  -> Enc1 -> Enc3 -> pooling -> per-view embeddings -> learned attention -> 256-D shape embedding

All embeddings are L2-normalised and compared by inner product. Images enter as float RGB in [0, 1]; the network
applies its backbone's own normalisation.

Retrieval compares `vector`s: the embedding itself, or, with `config.prior_weight` w > 0, the embedding followed by
the view branch's average-pooled features of its last `config.prior_stages` stages (C5; or C3, C4 and C5, each
unit length and weighted alike), for a photo as for the views, scaled so that the inner product of two vectors is
(1 - w) x the embeddings' cosine + w x the features' mean cosine. Trained on the photos of a few dozen models,
the embedding ranks the right category and its neighbours higher; the frozen ImageNet features keep the exact model
of a catalogue no training photo showed in front more often (docs/training.md). The losses never read it.

With `config.category_weight` b > 0, retrieval vectors also carry categories: a shape's score gains b x log(C x p(c |
photo)) for its category c, by the photo's category head (0 for shapes of a category the head does not know). In a
catalogue whose style the training photos never showed, the head names a photo's category more often than the
nearest shapes have it. Shape vectors stay unit length; photo vectors do not. With `config.category_probe`, p(c |
photo) is the normalised product of the head's probabilities and those of a linear probe on the photo's frozen
view-branch features (C3..C5), fitted on the training photos afterwards (`models/training/category_probe.py`): the
head, trained beside the embedding on photos and renders, and the probe on ImageNet's features err on different photos.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from photo2cad.models.backbones import new_backbone, split_backbone, stage_channels
from photo2cad.models.config import AMVMLConfig
from photo2cad.models.layers import category_linear


def conv_bn_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Branch(nn.Module):
    """Enc2 or Enc3: conv3_x, conv4_x, conv5_x; returns the three feature maps (strides 8, 16, 32)."""

    def __init__(self, stages: nn.ModuleList) -> None:
        super().__init__()
        self.stages = stages

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class UperNetHead(nn.Module):
    """Table 2, UperNet: one-scale pyramid pooling on C5, an FPN over C2..C5, fusion, a 1-channel map."""

    def __init__(self, in_channels: tuple[int, int, int, int], width: int) -> None:
        super().__init__()
        c5 = in_channels[-1]
        self.ppm_pool = nn.AdaptiveAvgPool2d(1)  # row 1
        self.ppm_conv = conv_bn_relu(c5, width, 1)  # row 2
        self.ppm_bottleneck = conv_bn_relu(c5 + width, width, 1)  # row 3
        self.lateral = nn.ModuleList([conv_bn_relu(c, width, 1) for c in in_channels[:-1]])  # row 4: FPN
        self.fpn_out = nn.ModuleList([conv_bn_relu(width, width, 3) for _ in in_channels[:-1]])
        self.fuse = conv_bn_relu(width * len(in_channels), width, 3)  # row 5
        self.classifier = nn.Conv2d(width, 1, 1)  # row 6

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        c5 = features[-1]
        pooled = F.interpolate(self.ppm_conv(self.ppm_pool(c5)), size=c5.shape[2:], mode="nearest")
        top = self.ppm_bottleneck(torch.cat([c5, pooled], dim=1))
        pyramid = [top]
        for feature, lateral, out in zip(
            reversed(features[:-1]), reversed(self.lateral), reversed(self.fpn_out), strict=True
        ):
            top = lateral(feature) + F.interpolate(top, size=feature.shape[2:], mode="bilinear", align_corners=False)
            pyramid.insert(0, out(top))
        size = pyramid[0].shape[2:]
        fused = torch.cat(
            [pyramid[0]] + [F.interpolate(p, size=size, mode="bilinear", align_corners=False) for p in pyramid[1:]],
            dim=1,
        )
        return self.classifier(self.fuse(fused))


class PhotoEmbedding(NamedTuple):
    embedding: torch.Tensor  # (B, D), L2-normalised
    mask_logits: torch.Tensor  # (B, 1, H, W) at input resolution
    category_logits: torch.Tensor  # (B, C)
    vector: torch.Tensor  # (B, vector_dim(config)): what retrieval compares (= embedding without prior and categories)


class ShapeEmbedding(NamedTuple):
    embedding: torch.Tensor  # (B, D), L2-normalised attention-fused shape vector
    view_embeddings: torch.Tensor  # (B, V, D), each L2-normalised
    view_attention: torch.Tensor  # (B, V), sums to 1
    category_logits: torch.Tensor  # (B, C)
    vector: torch.Tensor  # (B, vector_dim - category_slots), unit length; `with_shape_categories` completes it


# The category probe reads the view branch's last three stages (C3..C5), whatever the prior reads.
PROBE_STAGES = 3


def probe_width(config: AMVMLConfig) -> int:
    """Input size of the category probe: the channels of the view branch's stages it reads."""
    return sum(stage_channels(config.backbone)[-PROBE_STAGES:])


def probe_features(pooled_stages: list[torch.Tensor]) -> torch.Tensor:
    """The category probe's input: the average-pooled stages it reads (each (B, C_i)), each unit length."""
    return torch.cat([F.normalize(stage, dim=-1) for stage in pooled_stages[-PROBE_STAGES:]], dim=-1)


def prior_widths(config: AMVMLConfig) -> tuple[int, ...]:
    """Channels of the view branch's stages the prior reads, in order (none without a prior)."""
    return stage_channels(config.backbone)[-config.prior_stages :] if config.prior_weight > 0 else ()


# With a category weight, a shape's retrieval vector ends in a one-hot of its category (a last slot for categories the
# head does not know) and a photo's in its category scores; both halves are scaled so that shape vectors keep unit
# length and the inner product stays (score without categories) + the photo's score for the shape's category.
CATEGORY_SCALE = math.sqrt(2.0)


def category_slots(config: AMVMLConfig) -> int:
    """Trailing entries of the retrieval vectors that carry categories: the head's classes and "other" (or none)."""
    return len(config.category_names) + 1 if config.category_weight > 0 else 0


def vector_dim(config: AMVMLConfig) -> int:
    """Size of the retrieval vectors (photo and shape) of a network with `config`: an index's vector size."""
    return config.embedding_dim + sum(prior_widths(config)) + category_slots(config)


def with_shape_categories(config: AMVMLConfig, vectors: torch.Tensor, categories: Sequence[str | None]) -> torch.Tensor:
    """Shape vectors (N, D) without categories -> the retrieval vectors of shapes of `categories` (N, vector_dim)."""
    slots = category_slots(config)
    if not slots:
        return vectors
    if len(categories) != len(vectors):
        raise ValueError(f"{len(categories)} categories for {len(vectors)} shapes")
    other = slots - 1
    index = [config.category_names.index(c) if c in config.category_names else other for c in categories]
    one_hot = F.one_hot(torch.tensor(index, dtype=torch.long, device=vectors.device), slots).to(vectors.dtype)
    return torch.cat([vectors, one_hot], dim=1) / CATEGORY_SCALE


def stage_prior(pooled_stages: list[torch.Tensor]) -> torch.Tensor:
    """Pooled features of several stages (each (..., C_i)) -> one vector whose inner products are the mean of the
    stages' cosines: every stage counts alike, whatever its width."""
    unit = [F.normalize(stage, dim=-1) for stage in pooled_stages]
    return torch.cat(unit, dim=-1) / math.sqrt(len(unit))


def masked_average_pool(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Average of `features` (B, C, h, w) weighted by `weights` (B, 1, H, W) resized to (h, w).

    A small floor keeps an all-background mask from dividing by zero: it degrades to plain average pooling.
    """
    weights = F.adaptive_avg_pool2d(weights, (features.shape[2], features.shape[3])) + 1e-4
    return (features * weights).sum(dim=(2, 3)) / weights.sum(dim=(2, 3))


class AMVML(nn.Module):
    """The network with random weights; `photo2cad.weights.new_amvml` starts the backbone from ImageNet when
    `config.pretrained` asks for it, and `photo2cad.weights.load_amvml` reads a checkpoint."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: AMVMLConfig) -> None:
        super().__init__()
        self.config = config
        parts = split_backbone(config.backbone, new_backbone(config.backbone))
        self.register_buffer("mean", torch.tensor(parts.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(parts.std).view(1, 3, 1, 1), persistent=False)
        self.enc1 = parts.enc1
        self.enc2 = Branch(parts.new_branch())  # photos and textured renders
        self.enc3 = Branch(parts.new_branch())  # grey pool views
        self.upernet = UperNetHead(parts.channels, config.decoder_channels)
        final = parts.channels[-1]
        d = config.embedding_dim
        self.photo_projection = nn.Linear(final, d)
        self.view_projection = nn.Linear(final, d)
        # Both branches start from the same backbone weights; starting both projections equal too means an untrained
        # network already compares photos and views in one space (ImageNet features) instead of two random ones.
        self.view_projection.load_state_dict(self.photo_projection.state_dict())
        self.photo_category_head = category_linear(final, config.num_categories)
        # Fitted after training (`set_category_probe`), never by the losses.
        self.category_probe = nn.Linear(probe_width(config), config.num_categories) if config.category_probe else None
        self.view_category_head = category_linear(final, config.num_categories)
        # Query-independent view attention: one vector per shape can live in the index.
        self.view_attention = nn.Sequential(
            nn.Linear(d, config.view_attention_hidden), nn.Tanh(), nn.Linear(config.view_attention_hidden, 1)
        )
        # Query-conditioned attention for re-ranking: a bilinear score between query and view embeddings.
        self.query_projection = nn.Linear(d, d)
        # Identity at the start: each query first weights a candidate's views by plain similarity to itself.
        nn.init.eye_(self.query_projection.weight)
        nn.init.zeros_(self.query_projection.bias)
        self.rerank_log_scale = nn.Parameter(torch.tensor(2.3))  # exp(2.3) ~ 10, a softmax temperature of 0.1

    # ------------------------------------------------------------------------------------------ features
    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def photo_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """C2..C5 of the photo branch (Enc1 + Enc2)."""
        c2 = self.enc1(self._normalise(images))
        return [c2, *self.enc2(c2)]

    def view_features(self, views: torch.Tensor) -> list[torch.Tensor]:
        """C3..C5 of the view branch (Enc1 + Enc3) for a batch of single views (N, 3, H, W)."""
        return self.enc3(self.enc1(self._normalise(views)))

    def pooled_view_features(self, views: torch.Tensor) -> torch.Tensor:
        """What the network reads of single views (N, 3, H, W): the view branch's average-pooled C5 (N, C5),
        preceded by the earlier stages' when the prior reads them (N, sum of prior_widths). With a frozen backbone
        they can be cached (`shapes_from_pooled`)."""
        stages = self.view_features(views)
        read = max(1, len(prior_widths(self.config)))
        return torch.cat([stage.mean(dim=(2, 3)) for stage in stages[-read:]], dim=-1)

    # ------------------------------------------------------------------------------------------ heads
    def embed_photo(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> PhotoEmbedding:
        """Photos or textured renders (B, 3, H, W) -> embedding; pooled under `mask` or the predicted mask."""
        features = self.photo_features(images)
        mask_logits = F.interpolate(self.upernet(features), size=images.shape[2:], mode="bilinear", align_corners=False)
        weights = mask if mask is not None else torch.sigmoid(mask_logits)
        pooled = masked_average_pool(features[-1], weights.to(features[-1].dtype))
        embedding = F.normalize(self.photo_projection(pooled), dim=1)
        # The prior and the probe see the photo through the view branch: the features the views' prior is made of.
        view_stages = self.photo_view_stages(features[0]) if self._reads_view_stages() else []
        vector = self._with_prior(embedding, lambda: stage_prior(view_stages[-len(prior_widths(self.config)) :]))
        category_logits = self.photo_category_head(pooled)
        vector = self._with_category(vector, self._retrieval_category_logits(category_logits, view_stages))
        return PhotoEmbedding(embedding, mask_logits, category_logits, vector)

    def probe_input(self, images: torch.Tensor) -> torch.Tensor:
        """Photos (B, 3, H, W) -> what the category probe reads (B, probe_width): fitting it needs no more."""
        return probe_features(self.photo_view_stages(self.enc1(self._normalise(images))))

    def photo_view_stages(self, c2: torch.Tensor) -> list[torch.Tensor]:
        """A photo's view-branch stages C3..C5, average-pooled, from its Enc1 output (B, C2, h, w) -> [(B, C_i)]."""
        return [stage.mean(dim=(2, 3)) for stage in self.enc3(c2)]

    def _reads_view_stages(self) -> bool:
        return self.config.prior_weight > 0 or self.category_probe is not None

    def embed_views(self, views: torch.Tensor) -> ShapeEmbedding:
        """Grey renders (B, V, 3, H, W) -> per-view embeddings and the attention-fused shape embedding."""
        batch, num_views = views.shape[:2]
        pooled = self.pooled_view_features(views.flatten(0, 1))
        return self.shapes_from_pooled(pooled.view(batch, num_views, -1))

    def shapes_from_pooled(self, pooled_views: torch.Tensor) -> ShapeEmbedding:
        """The heads of `embed_views` on `pooled_view_features` (B, V, C): with a frozen backbone they can be cached."""
        pooled = pooled_views[..., -stage_channels(self.config.backbone)[-1] :]  # C5: what the heads read
        batch, num_views = pooled.shape[:2]
        view_embeddings = F.normalize(self.view_projection(pooled), dim=-1)
        if self.config.view_attention:
            attention = torch.softmax(self.view_attention(view_embeddings).squeeze(-1), dim=1)
        else:
            attention = view_embeddings.new_full((batch, num_views), 1.0 / num_views)
        shape = F.normalize((attention.unsqueeze(-1) * view_embeddings).sum(dim=1), dim=1)
        category_logits = self.view_category_head(pooled.mean(dim=1))
        vector = self._with_prior(shape, lambda: self._shape_prior(pooled_views))
        return ShapeEmbedding(shape, view_embeddings, attention, category_logits, vector)

    def _shape_prior(self, pooled_views: torch.Tensor) -> torch.Tensor:
        """A shape's prior features: per stage, the mean of its views' unit features (B, V, C) -> (B, P)."""
        stages = torch.split(pooled_views, list(prior_widths(self.config)), dim=-1)
        return stage_prior([F.normalize(stage, dim=-1).mean(dim=1) for stage in stages])

    def _retrieval_category_logits(self, head_logits: torch.Tensor, view_stages: list[torch.Tensor]) -> torch.Tensor:
        """What the category term reads: the head's logits, or with a probe the log of its probabilities times the
        probe's (unnormalised; the term normalises)."""
        if self.category_probe is None:
            return head_logits
        probe_logits = self.category_probe(probe_features(view_stages).to(self.category_probe.weight.dtype))
        return F.log_softmax(head_logits.float(), dim=1) + F.log_softmax(probe_logits.float(), dim=1)

    def _with_category(self, vector: torch.Tensor, category_logits: torch.Tensor) -> torch.Tensor:
        """A photo's retrieval vector: `vector`, followed by category_weight x log(C x p(c | photo)) per class c and
        0 for "other" (`with_shape_categories` gives shapes the matching one-hot)."""
        if not category_slots(self.config):
            return vector
        classes = category_logits.shape[1]
        scores = self.config.category_weight * (F.log_softmax(category_logits.float(), dim=1) + math.log(classes))
        scores = torch.cat([scores, scores.new_zeros(len(scores), 1)], dim=1).to(vector.dtype)
        return torch.cat([vector, scores], dim=1) * CATEGORY_SCALE

    def _with_prior(self, embedding: torch.Tensor, prior_features: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The retrieval vector: `embedding`, followed by the prior's features (B, C) when the config weights them."""
        weight = self.config.prior_weight
        if weight == 0:
            return embedding
        prior = F.normalize(prior_features().to(embedding.dtype), dim=-1)
        return torch.cat([embedding * math.sqrt(1 - weight), prior * math.sqrt(weight)], dim=-1)

    def rerank_scores(
        self, queries: torch.Tensor, view_embeddings: torch.Tensor, shape_vectors: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Query-conditioned view attention: (Q, D) queries against (N, V, D) candidates -> (Q, N) scores.

        Each query weights each candidate's views by how well they match it, fuses them, and scores the fused
        vector by cosine similarity. Retrieval vectors with the prior or categories as queries need the candidates'
        retrieval vectors (N, vector_dim) too: the embedding part is re-scored, the rest kept as it was.
        """
        embedding_dim = self.config.embedding_dim
        if queries.shape[-1] == embedding_dim:
            return self._attended_scores(queries, view_embeddings)
        if shape_vectors is None:
            raise ValueError("re-ranking retrieval vectors with the prior needs the candidates' retrieval vectors")
        kept = math.sqrt(1 - self.config.prior_weight)
        scale = kept * (CATEGORY_SCALE if category_slots(self.config) else 1.0)
        attended = self._attended_scores(queries[:, :embedding_dim] / scale, view_embeddings)
        # Already w x the features' cosine, plus the category score: the scales of both sides cancel.
        rest = queries[:, embedding_dim:] @ shape_vectors[:, embedding_dim:].T
        return attended * kept**2 + rest

    def _attended_scores(self, queries: torch.Tensor, view_embeddings: torch.Tensor) -> torch.Tensor:
        keys = self.query_projection(queries)  # (Q, D)
        logits = torch.einsum("qd,nvd->qnv", keys, view_embeddings) * self.rerank_log_scale.exp()
        attention = torch.softmax(logits, dim=-1)
        fused = F.normalize(torch.einsum("qnv,nvd->qnd", attention, view_embeddings), dim=-1)
        return torch.einsum("qd,qnd->qn", queries, fused)
