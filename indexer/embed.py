"""The shape branch of AMV-ML on batches of rendered views: GPU with mixed precision when present, CPU otherwise."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from photo2cad.models import AMVML


def views_to_tensor(views: np.ndarray) -> torch.Tensor:
    """(B, V, H, W, 3) uint8 -> (B, V, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(views)).permute(0, 1, 4, 2, 3).float().div_(255.0)


class ViewEmbedder:
    def __init__(self, model: AMVML, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.device = device

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def embed(self, grey_views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, V, H, W, 3) uint8 grey renders -> shape vectors (B, D) and view embeddings (B, V, D), float32."""
        with torch.inference_mode(), self._autocast():
            out = self.model.embed_views(views_to_tensor(grey_views).to(self.device, non_blocking=True))
        return out.embedding.float().cpu().numpy(), out.view_embeddings.float().cpu().numpy()
