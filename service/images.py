"""Uploaded bytes -> a decoded photo (or mask), refusing with a reason whatever the encoder should never see.

Nothing here trusts the client: the declared content type is ignored (the bytes are sniffed), the pixel count is
checked from the header before any pixel is decoded, and only JPEG, PNG and WebP decoders are ever run.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from photo2cad.service.errors import BadImage, ImageTooLarge, UnsupportedImage

# Pillow's JPEG opener also opens MPO (a JPEG with more pictures appended, as many phones write) and names it so.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
ACCEPTED_NAMES = "JPEG, PNG or WebP"

# Only to name a refused format in the message; the decoders of these formats are never run.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"%PDF", "PDF"),
    (0, b"\x00\x00\x01\x00", "ICO"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"<svg", "SVG"),
    (0, b"<?xml", "SVG/XML"),
)

_ORIENTATION_TAG = 0x0112
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    min_side: int
    max_aspect_ratio: float


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # pixels loaded; EXIF orientation not yet applied (preprocessing applies it)
    upright_size: tuple[int, int]  # (width, height) as displayed, i.e. after the EXIF orientation
    format: str


def _refused_format_name(data: bytes) -> str | None:
    head = data[:32].lstrip() if data[:1].isspace() else data[:32]
    for offset, signature, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    return None


def _upright_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - broken EXIF: exif_transpose will ignore it too
        return width, height
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def check_dimensions(width: int, height: int, what: str, limits: ImageLimits) -> None:
    """Refuse sizes the encoder cannot use, before a single pixel is decoded."""
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"the {what} is {width} x {height} = {pixels:,} pixels, more than the limit of {limits.max_pixels:,} "
            "(PHOTO2CAD_MAX_IMAGE_PIXELS); send a smaller image"
        )
    shorter, longer = min(width, height), max(width, height)
    if shorter < limits.min_side:
        raise BadImage(f"the {what} is {width} x {height} px; its shorter side must be at least {limits.min_side} px")
    if longer / shorter > limits.max_aspect_ratio:
        raise BadImage(
            f"the {what} is {width} x {height} px, more elongated than {limits.max_aspect_ratio:g}:1; crop it"
        )


def decode_image(data: bytes, what: str, limits: ImageLimits, draft_side: int | None = None) -> DecodedImage:
    """Decode `data` as a JPEG, PNG or WebP within `limits`; `what` ("photo", "mask") names it in errors.

    `draft_side` lets the JPEG decoder scale down by 2, 4 or 8 while decoding (never below `draft_side` on the
    shorter side): a 12-megapixel photo decodes several times faster and the encoder sees the same letterboxed image.
    """
    if not data:
        raise BadImage(f"the {what} is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except UnidentifiedImageError as err:
        name = _refused_format_name(data)
        if name is not None:
            raise UnsupportedImage(f"the {what} is a {name} image; send a {ACCEPTED_NAMES} image") from err
        raise UnsupportedImage(f"the {what} is not a {ACCEPTED_NAMES} image") from err
    except Image.DecompressionBombError as err:
        # Pillow's own guard (twice its global limit, ~179 MP) fires inside open(), before ours can; same answer.
        found = re.search(r"\((\d+) pixels\)", str(err))
        count = f"{int(found.group(1)):,}" if found else "too many"
        raise ImageTooLarge(
            f"the {what} has {count} pixels, more than the limit of {limits.max_pixels:,} "
            "(PHOTO2CAD_MAX_IMAGE_PIXELS); send a smaller image"
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImage(f"the {what} is corrupt: {err}") from err

    width, height = _upright_size(image)
    check_dimensions(width, height, what, limits)
    if draft_side is not None and image.format in ("JPEG", "MPO"):
        image.draft(None, (draft_side, draft_side))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as err:
        raise BadImage(f"the {what} is truncated or corrupt ({err}); send the whole file") from err
    return DecodedImage(image, (width, height), str(image.format))


def check_mask_fits(photo: DecodedImage, mask: DecodedImage) -> None:
    if mask.upright_size != photo.upright_size:
        pw, ph = photo.upright_size
        mw, mh = mask.upright_size
        raise BadImage(f"the mask is {mw} x {mh} px but the photo is {pw} x {ph} px; they must be the same size")
