"""Photo preprocessing shared by training, evaluation and the service: one place, so they can never disagree."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageOps

# Photos are letterboxed onto white, the background of the grey pool renders.
PAD_COLOUR = (255, 255, 255)


def letterbox(image: Image.Image, size: int, fill: tuple[int, ...] | int = PAD_COLOUR) -> Image.Image:
    """Scale the longer side to `size` and pad the shorter one, keeping the object's proportions."""
    return ImageOps.pad(image, (size, size), method=Image.Resampling.BILINEAR, color=fill, centering=(0.5, 0.5))


def photo_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGB photo -> (3, size, size) float in [0, 1]."""
    rgb = letterbox(ImageOps.exif_transpose(image).convert("RGB"), size)
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)


def mask_to_tensor(mask: Image.Image, size: int) -> torch.Tensor:
    """Object mask (any mode; non-zero = object) -> (1, size, size) float in {0, 1}, letterboxed like its photo."""
    grey = letterbox(ImageOps.exif_transpose(mask).convert("L"), size, fill=0)
    return torch.from_numpy((np.asarray(grey) > 127).astype(np.float32)).unsqueeze(0)
