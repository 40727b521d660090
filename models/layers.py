"""Small layers both networks share."""

from __future__ import annotations

import torch
from torch import nn


class NoCategories(nn.Module):
    """The category head of a single-category dataset (the car sets): (B, F) -> (B, 0)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.new_zeros(features.shape[0], 0)


def category_linear(in_features: int, num_categories: int) -> nn.Module:
    return nn.Linear(in_features, num_categories) if num_categories > 0 else NoCategories()
