"""Photo preprocessing shared by training, evaluation and the service: one place, so they can never disagree.

Whatever a file holds (16-bit grey, transparency, palettes) becomes 8-bit RGB the way the network was trained on
(`flatten_photo`), and a mask becomes object (any non-zero pixel) or not (`binary_mask`), never silently clipped or
dropped.
"""

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
    """A photo as opened, in any mode -> (3, size, size) float in [0, 1] (upright; transparency onto white)."""
    return rgb_to_tensor(flatten_photo(ImageOps.exif_transpose(image))[0], size)


def rgb_to_tensor(rgb: Image.Image, size: int) -> torch.Tensor:
    """An upright 8-bit RGB photo (what `flatten_photo` makes) -> (3, size, size) float in [0, 1], letterboxed."""
    boxed = letterbox(rgb, size)
    return torch.from_numpy(np.asarray(boxed, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)


def mask_to_tensor(mask: Image.Image, size: int) -> torch.Tensor:
    """Object mask as opened (any mode; non-zero = object) -> (1, size, size) float in {0, 1}, letterboxed like its
    photo."""
    return binary_mask_to_tensor(binary_mask(ImageOps.exif_transpose(mask)), size)


def binary_mask_to_tensor(mask: Image.Image, size: int) -> torch.Tensor:
    """An upright 0/255 mask (what `binary_mask` makes) -> (1, size, size) float in {0, 1}, letterboxed."""
    grey = letterbox(mask, size, fill=0)
    return torch.from_numpy((np.asarray(grey) > 127).astype(np.float32)).unsqueeze(0)


# Alpha at or above this counts as object when a transparent photo's alpha becomes its mask: half-opaque, so that the
# faint shadows and halos cut-out tools leave around an object do not count as object.
ALPHA_OBJECT_THRESHOLD = 128


def to_8bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit integer grey -> 8-bit grey by its high byte (Pillow's own conversion clips at 255: white)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image).astype(np.uint32)
        return Image.fromarray((values >> 8).clip(0, 255).astype(np.uint8), mode="L")
    return image


def flatten_photo(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """An upright decoded photo -> (8-bit RGB, its alpha as a 0/255 object mask, or None when it has none).

    Transparent pixels are composited onto white, the background of the pool renders the shapes were embedded from,
    instead of showing the network whatever colour the file stores under them."""
    image = to_8bit(image)
    if not image.has_transparency_data:
        return (image if image.mode == "RGB" else image.convert("RGB")), None
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:  # an alpha channel, all opaque: nothing to composite, no mask in it
        return rgba.convert("RGB"), None
    background = Image.new("RGBA", rgba.size, (*PAD_COLOUR, 255))
    flat = Image.alpha_composite(background, rgba).convert("RGB")
    return flat, alpha.point(lambda a: 255 if a >= ALPHA_OBJECT_THRESHOLD else 0)


def binary_mask(image: Image.Image) -> Image.Image:
    """An upright decoded mask in any mode -> 0/255 grey: a non-zero pixel is object, as the API documents."""
    image = to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    values = np.asarray(image)
    is_object = values.any(axis=2) if values.ndim == 3 else values != 0
    return Image.fromarray(np.where(is_object, 255, 0).astype(np.uint8), mode="L")
