"""Losses of the metric learning and of the texture synthesis."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def negative_log_weights(
    is_photo: torch.Tensor,
    targets: torch.Tensor,
    unphotographed_weight: float,
    photographed_rows: torch.Tensor | None,
    source_of_rows: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """(B, N) shifts of a softmax's logits over the pool: each shape counts as a negative of a sample w times, where
    w = 1 except for real photos (`is_photo`, (B,)), whose shapes without training photos (`photographed_rows`, (N,)
    bool) or of another source (`source_of_rows`, (N,) ints; `targets` (B,) are the samples' own shapes) count
    `unphotographed_weight` times: log(w) is added (-inf at w = 0, left out). None when every shape counts fully.

    Photos of a few models would otherwise teach "those models are the answers", burying the shapes nobody
    photographed; another source's shapes are told apart from a photo by their style alone."""
    if unphotographed_weight >= 1.0 or photographed_rows is None:
        return None
    shift = math.log(unphotographed_weight) if unphotographed_weight > 0 else float("-inf")
    candidate = photographed_rows[None, :].expand(len(targets), -1)
    if source_of_rows is not None:
        candidate = candidate & (source_of_rows[None, :] == source_of_rows[targets][:, None])
    outside = is_photo[:, None] & ~candidate
    return torch.zeros(outside.shape, device=outside.device).masked_fill(outside, shift)


def batch_triplet_loss(
    anchors: torch.Tensor, candidates: torch.Tensor, same: torch.Tensor, margin: float
) -> torch.Tensor:
    """Triplet margin loss over every (anchor, positive, negative) of a batch (Euclidean, unit vectors).

    `candidates[i]` is anchor i's positive; `same[i, j]` says candidate j is also a right answer for anchor i (the
    same shape twice in a batch), so it is never used as a negative. Averaged over the triplets that violate the
    margin, so easy negatives do not dilute the gradient as training progresses.
    """
    distances = torch.cdist(anchors, candidates)  # (B, B)
    positive = distances.diagonal().unsqueeze(1)  # (B, 1)
    violation = F.relu(positive - distances + margin) * (~same).float()
    active = (violation > 0).float().sum()
    return violation.sum() / active.clamp(min=1.0)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float) -> torch.Tensor:
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin)


def masked_category_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over samples with a known category (label >= 0); zero when none or no categories."""
    known = labels >= 0
    if logits.shape[1] == 0 or not known.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[known], labels[known])


def masked_mask_loss(mask_logits: torch.Tensor, masks: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    if not has_mask.any():
        return mask_logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(mask_logits[has_mask], masks[has_mask])


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(scores, torch.full_like(scores, 1.0 if real else 0.0))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
