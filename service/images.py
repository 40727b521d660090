"""Uploaded bytes -> a decoded photo (or mask), refusing with a reason whatever the encoder should never see.

Nothing here trusts the client: the declared content type is ignored (the bytes are sniffed), the pixel count is
checked from the header before any pixel is decoded, and only the decoders of the accepted formats ever run.

Two steps, so that the caller can bound memory between them: `open_image` reads the header only (cheap: format,
size, EXIF orientation, how many pixels decoding will produce) and `load_upright` decodes. Pixels that are not 8-bit
RGB (16-bit grey, transparency, palettes) are turned into what the network was trained on by
`models.preprocess.flatten_photo` and `binary_mask`, never silently clipped or dropped.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import BinaryIO

import pi_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from photo2cad.service.errors import BadImage, ImageTooLarge, UnsupportedImage

# HEIC/HEIF (iPhones' default) through pi-heif's decoder-only plugin; AVIF through Pillow's own plugin.
pi_heif.register_heif_opener()

# Pillow's JPEG opener also opens MPO (a JPEG with more pictures appended, as many phones write) and names it so.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF")
ACCEPTED_NAMES = "JPEG, PNG, WebP, HEIC or AVIF"
ACCEPTED_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif", "image/avif")

# Only to name a refused format in the message (with the article it is spoken with); their decoders never run.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "a GIF"),
    (0, b"GIF89a", "a GIF"),
    (0, b"BM", "a BMP"),
    (0, b"II*\x00", "a TIFF"),
    (0, b"MM\x00*", "a TIFF"),
    (0, b"%PDF", "a PDF"),
    (0, b"\x00\x00\x01\x00", "an ICO"),
    (0, b"\xff\x0a", "a JPEG XL"),
    (0, b"<svg", "an SVG"),
    (0, b"<?xml", "an SVG/XML"),
)


ImageSource = bytes | BinaryIO  # the upload: its bytes, or a file holding them (a spooled upload, a file on disk)


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    min_side: int
    max_aspect_ratio: float


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels of the photo as displayed (after EXIF rotation): left, top, width, height."""

    left: int
    top: int
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Box:
        """ "x,y,w,h" (non-negative integers, w and h at least 1) -> Box; ValueError saying what is wrong."""
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 4 or not all(part.isdigit() for part in parts):
            raise ValueError(f"box must be four non-negative integers x,y,w,h (pixels of the photo), not {text!r}")
        left, top, width, height = (int(part) for part in parts)
        if width < 1 or height < 1:
            raise ValueError(f"box {text!r} has no area: its width and height must be at least 1")
        return cls(left, top, width, height)

    def __str__(self) -> str:
        return f"{self.left},{self.top},{self.width},{self.height}"


@dataclass(frozen=True)
class OpenedImage:
    """A header that passed every check; pixels not decoded yet."""

    image: Image.Image
    upright_size: tuple[int, int]  # (width, height) as displayed, i.e. after the EXIF orientation
    format: str
    what: str
    compressed_bytes: int
    orientation: int | None  # EXIF orientation as read from the header; loading follows it, never a later one

    @property
    def decode_pixels(self) -> int:
        """Pixels decoding will produce: fewer than upright_size's for a JPEG drafted to a reduced scale."""
        width, height = self.image.size
        return width * height

    @property
    def decode_cost(self) -> int:
        """What decoding costs, in pixels: those it produces, or the compressed bytes it reads when they are more. A
        17 MB JPEG drafted to 1/8 scale produces few pixels, but its decoder still reads every byte."""
        return max(self.decode_pixels, self.compressed_bytes)


def _refused_format_name(head: bytes) -> str | None:
    head = head.lstrip() if head[:1].isspace() else head
    for offset, signature, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    return None


def _orientation(image: Image.Image) -> int | None:
    if image.format == "PNG" and "exif" not in image.info:
        # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixels: 120 MB for a
        # 40-megapixel PNG, before any budget could count it. An eXIf chunk before the pixels is in info already.
        return None
    try:
        value = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - broken EXIF: exif_transpose will ignore it too
        return None
    return value if isinstance(value, int) else None


def _upright_size(size: tuple[int, int], orientation: int | None) -> tuple[int, int]:
    width, height = size
    return (height, width) if orientation in {5, 6, 7, 8} else (width, height)


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


def _as_file(source: ImageSource) -> BinaryIO:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    source.seek(0)
    return source


def open_image(source: ImageSource, what: str, limits: ImageLimits) -> OpenedImage:
    """Read the header of `source` as one of the accepted formats and check its size; `what` names it in errors."""
    file = _as_file(source)
    head = file.read(32)
    if not head:
        raise BadImage(f"the {what} is empty (0 bytes)")
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    try:
        image = Image.open(file, formats=list(ACCEPTED_FORMATS))
    except UnidentifiedImageError as err:
        name = _refused_format_name(head)
        if name is not None:
            raise UnsupportedImage(f"the {what} is {name} image; send a {ACCEPTED_NAMES} image") from err
        raise UnsupportedImage(f"the {what} is not a {ACCEPTED_NAMES} image") from err
    except Image.DecompressionBombError as err:
        # Pillow's own guard (twice its global limit, ~179 MP) fires inside open(), before ours can; same answer.
        found = re.search(r"\((\d+) pixels\)", str(err))
        count = f"{int(found.group(1)):,}" if found else "too many"
        raise ImageTooLarge(
            f"the {what} has {count} pixels, more than the limit of {limits.max_pixels:,} "
            "(PHOTO2CAD_MAX_IMAGE_PIXELS); send a smaller image"
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise BadImage(f"the {what} is corrupt: {err}") from err
    orientation = _orientation(image)
    width, height = _upright_size(image.size, orientation)
    check_dimensions(width, height, what, limits)
    return OpenedImage(image, (width, height), str(image.format), what, size, orientation)


def draft_for(opened: OpenedImage, needed_longer_side: int, region: Box | None = None) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale where the region used (the box, else the whole photo) still keeps
    `needed_longer_side` pixels on its longer side: a 12-megapixel photo decodes several times faster, in a fraction
    of the memory, and the encoder sees the same letterboxed image. Other formats decode at full size."""
    if opened.format not in ("JPEG", "MPO"):
        return
    longer = max(region.width, region.height) if region is not None else max(opened.upright_size)
    scale = min(1.0, needed_longer_side / longer)
    width, height = opened.image.size  # as stored: the same scale applies whatever the orientation
    opened.image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))


def load_upright(opened: OpenedImage) -> Image.Image:
    """Decode the pixels and apply the EXIF orientation (the decoded image itself when it is upright already: a copy
    of 40 megapixels is 120 MB)."""
    try:
        opened.image.load()
        if opened.orientation in (None, 1):
            return opened.image
        return ImageOps.exif_transpose(opened.image)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as err:
        raise BadImage(f"the {opened.what} is truncated or corrupt ({err}); send the whole file") from err


def check_box_inside(box: Box, size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if box.left + box.width > width or box.top + box.height > height:
        raise BadImage(
            f"the box {box} (x,y,w,h) reaches outside the photo, which is {width} x {height} px as displayed"
        )
    check_dimensions(box.width, box.height, "box", limits)


def crop_to_box(image: Image.Image, box: Box, upright_size: tuple[int, int]) -> Image.Image:
    """Crop a decoded image (possibly at a reduced scale) to `box`, given in pixels of the full upright photo."""
    scale_x, scale_y = image.width / upright_size[0], image.height / upright_size[1]
    left, top = round(box.left * scale_x), round(box.top * scale_y)
    right = max(left + 1, round((box.left + box.width) * scale_x))
    bottom = max(top + 1, round((box.top + box.height) * scale_y))
    return image.crop((left, top, right, bottom))


def shrink(image: Image.Image, longer_side: int) -> Image.Image:
    """Reduce by an integer factor (box filter) while the longer side stays at least `longer_side`."""
    factor = max(image.size) // longer_side
    return image.reduce(factor) if factor >= 2 else image


def check_mask_fits(photo: OpenedImage, mask: OpenedImage) -> None:
    if mask.upright_size != photo.upright_size:
        pw, ph = photo.upright_size
        mw, mh = mask.upright_size
        raise BadImage(f"the mask is {mw} x {mh} px but the photo is {pw} x {ph} px; they must be the same size")
