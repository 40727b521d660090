"""Photos the service used to rank silently wrong (issue #12, items 3, 4, 5, 9 and 12): 16-bit grey, transparency,
0/1 and empty masks, HEIC and AVIF, and a box to crop to. Each answer is compared with the answer for the same
pixels sent the plain way (8-bit RGB, explicit 0/255 mask, pre-cropped photo), which the service always handled."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from photo2cad.models.preprocess import flatten_photo
from photo2cad.service.app import create_app
from photo2cad.service.images import ImageLimits, draft_for, load_upright, open_image
from tests.helpers import ServedIndex, image_bytes, post_photo, rendered_photo, settings_for

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def client(served_index: ServedIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(served_index.root))) as test_client:
        yield test_client


def png(image: Image.Image, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def scores(response: Any) -> list[tuple[str, float]]:
    assert response.status_code == 200, response.text
    return [(r["shape_id"], round(r["score"], 5)) for r in response.json()["results"]]


@pytest.fixture(scope="module")
def render(served_index: ServedIndex) -> Image.Image:
    """A pool render (grey object on white), 64 px, enlarged to a photo-like 192 px."""
    image = Image.open(io.BytesIO(rendered_photo(served_index.root, "table/cone")))
    return image.convert("RGB").resize((192, 192), Image.Resampling.BILINEAR)


def object_alpha(render: Image.Image) -> Image.Image:
    """The render's object as alpha: opaque where it is not white."""
    grey = np.asarray(render.convert("L"))
    return Image.fromarray(np.where(grey < 245, 255, 0).astype(np.uint8), mode="L")


# ---------------------------------------------------------------------------------------------------- 16-bit grey
def test_a_16_bit_grey_png_ranks_as_its_8_bit_version_not_as_white(client: TestClient, render: Image.Image) -> None:
    grey = np.asarray(render.convert("L"), dtype=np.uint16)
    sixteen_bit = png(Image.fromarray(grey * 257))  # 0..255 -> 0..65535, the same picture at 16 bits
    assert Image.open(io.BytesIO(sixteen_bit)).mode.startswith("I")
    eight_bit = png(render.convert("L"))
    white = image_bytes((192, 192), colour=(255, 255, 255))
    assert scores(post_photo(client, sixteen_bit)) == scores(post_photo(client, eight_bit))
    assert scores(post_photo(client, sixteen_bit)) != scores(post_photo(client, white))


# ---------------------------------------------------------------------------------------------------- transparency
def test_a_cut_out_on_transparent_black_ranks_as_the_cut_out_on_white_with_its_alpha_as_mask(
    client: TestClient, render: Image.Image
) -> None:
    alpha = object_alpha(render)
    under_the_alpha = Image.composite(render, Image.new("RGB", render.size, (0, 0, 0)), alpha)
    cut_out = under_the_alpha.copy()
    cut_out.putalpha(alpha)  # transparent where there is no object, and black underneath
    on_white = Image.composite(render, Image.new("RGB", render.size, (255, 255, 255)), alpha)
    expected = scores(post_photo(client, png(on_white), mask=png(alpha)))
    assert scores(post_photo(client, png(cut_out))) == expected
    assert scores(post_photo(client, png(under_the_alpha))) != expected  # what the alpha used to be dropped to


def test_a_palette_png_with_a_transparent_index_is_composited_and_masked(client: TestClient) -> None:
    palette = Image.new("P", (160, 120), 0)
    palette.putpalette([0, 0, 0, 200, 40, 30, 40, 90, 200])
    palette.paste(1, (30, 20, 110, 100))
    palette.paste(2, (60, 40, 90, 70))
    shown = Image.new("RGB", (160, 120), (255, 255, 255))
    shown.paste((200, 40, 30), (30, 20, 110, 100))
    shown.paste((40, 90, 200), (60, 40, 90, 70))
    mask = Image.new("L", (160, 120), 0)
    mask.paste(255, (30, 20, 110, 100))
    expected = scores(post_photo(client, png(shown), mask=png(mask)))
    assert scores(post_photo(client, png(palette, transparency=0))) == expected


def test_an_opaque_alpha_channel_changes_nothing(client: TestClient, render: Image.Image) -> None:
    opaque = render.copy()
    opaque.putalpha(255)
    assert scores(post_photo(client, png(opaque))) == scores(post_photo(client, png(render)))


def test_a_fully_transparent_photo_is_400(client: TestClient) -> None:
    response = post_photo(client, png(Image.new("RGBA", (64, 64), (10, 20, 30, 0))))
    assert response.status_code == 400
    assert response.json()["detail"] == "the photo is fully transparent: nothing in it can be matched"


def test_transparent_pixels_are_composited_onto_white() -> None:
    photo = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    photo.paste((200, 10, 10, 255), (10, 10, 30, 30))
    flat, mask = flatten_photo(photo)
    assert flat.getpixel((0, 0)) == (255, 255, 255) and flat.getpixel((20, 20)) == (200, 10, 10)
    assert mask is not None and mask.getpixel((0, 0)) == 0 and mask.getpixel((20, 20)) == 255


# ---------------------------------------------------------------------------------------------------- masks
def rectangle_mask(size: tuple[int, int], box: tuple[int, int, int, int], value: int) -> bytes:
    mask = Image.new("L", size, 0)
    mask.paste(value, box)
    return png(mask)


def test_a_0_1_mask_counts_its_ones_as_object(client: TestClient, render: Image.Image) -> None:
    box = (40, 40, 150, 150)
    ones = post_photo(client, png(render), mask=rectangle_mask(render.size, box, 1))
    full_scale = post_photo(client, png(render), mask=rectangle_mask(render.size, box, 255))
    no_mask = post_photo(client, png(render))
    assert scores(ones) == scores(full_scale) != scores(no_mask)


def test_an_all_zero_mask_is_400(client: TestClient, render: Image.Image) -> None:
    response = post_photo(client, png(render), mask=rectangle_mask(render.size, (0, 0, 0, 0), 255))
    assert response.status_code == 400
    assert response.json()["detail"].startswith("the mask is empty: no pixel is non-zero")


def test_a_mask_whose_object_vanishes_at_the_encoder_s_size_is_400(client: TestClient) -> None:
    photo = image_bytes((2000, 1500), colour=(120, 120, 120))
    response = post_photo(client, photo, mask=rectangle_mask((2000, 1500), (1000, 700, 1001, 701), 255))
    assert response.status_code == 400
    assert "too small to be seen at the encoder's 64 x 64 px input" in response.json()["detail"]


# ---------------------------------------------------------------------------------------------------- HEIC, AVIF
def heic_reference_photo() -> Image.Image:
    """What tests/data/photo.heic holds (tests/data/make_heic.py made it from the same picture)."""
    image = Image.new("RGB", (120, 80), (200, 60, 40))
    image.paste((30, 60, 220), (0, 0, 40, 30))
    return image


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean())


def test_an_iphone_heic_photo_is_decoded(client: TestClient) -> None:
    heic = (DATA / "photo.heic").read_bytes()
    opened = open_image(heic, "photo", ImageLimits(40_000_000, 32, 10.0))
    assert opened.format == "HEIF" and opened.upright_size == (120, 80)
    assert mean_difference(load_upright(opened).convert("RGB"), heic_reference_photo()) < 4  # lossy, close
    response = post_photo(client, heic, top_k=3)
    assert response.status_code == 200 and len(response.json()["results"]) == 3


def test_an_avif_photo_is_decoded_upright(client: TestClient) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    buffer = io.BytesIO()
    heic_reference_photo().save(buffer, format="AVIF", quality=95, exif=exif)
    opened = open_image(buffer.getvalue(), "photo", ImageLimits(40_000_000, 32, 10.0))
    assert opened.format == "AVIF" and opened.upright_size == (80, 120)
    upright = heic_reference_photo().transpose(Image.Transpose.ROTATE_270)
    assert mean_difference(load_upright(opened).convert("RGB"), upright) < 6
    assert post_photo(client, buffer.getvalue(), top_k=2).status_code == 200


# ---------------------------------------------------------------------------------------------------- decode cost
def test_reading_a_png_s_header_decodes_no_pixel() -> None:
    opened = open_image(image_bytes((2000, 1500)), "photo", ImageLimits(40_000_000, 32, 10.0))
    assert opened.image.tile  # still to decode: the decode budget counts it before it costs memory
    assert opened.decode_cost == 2000 * 1500


def test_a_jpeg_s_decode_cost_counts_the_bytes_its_decoder_reads() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG", quality=95)
    opened = open_image(buffer.getvalue(), "photo", ImageLimits(40_000_000, 32, 10.0))
    draft_for(opened, 128)
    assert opened.decode_pixels == 250 * 188  # 1/8 scale
    assert opened.decode_cost == len(buffer.getvalue()) > 1_000_000


# ---------------------------------------------------------------------------------------------------- box
def test_a_box_ranks_as_the_photo_cropped_to_it(client: TestClient, render: Image.Image) -> None:
    scene = Image.new("RGB", (480, 360), (150, 110, 80))  # the object somewhere in a room
    scene.paste(render, (200, 100))
    in_the_box = post_photo(client, png(scene), box="190,90,212,212")
    assert scores(in_the_box) == scores(post_photo(client, png(scene.crop((190, 90, 402, 302)))))
    assert scores(in_the_box) != scores(post_photo(client, png(scene)))


def test_a_box_is_in_pixels_of_the_photo_as_displayed(client: TestClient, render: Image.Image) -> None:
    stored = Image.new("RGB", (360, 240), (150, 110, 80))
    stored.paste(render, (20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: displayed 240 x 360
    displayed = ImageOps.exif_transpose(Image.open(io.BytesIO(png(stored, exif=exif))))
    assert displayed.size == (240, 360)
    box = (10, 100, 200, 200)
    cropped = displayed.crop((box[0], box[1], box[0] + box[2], box[1] + box[3]))
    response = post_photo(client, png(stored, exif=exif), box=",".join(map(str, box)))
    assert scores(response) == scores(post_photo(client, png(cropped)))


def test_a_box_crops_the_mask_too(client: TestClient, render: Image.Image) -> None:
    alpha = object_alpha(render)
    expected = scores(
        post_photo(client, png(render.crop((20, 20, 180, 180))), mask=png(alpha.crop((20, 20, 180, 180))))
    )
    assert scores(post_photo(client, png(render), mask=png(alpha), box="20,20,160,160")) == expected


@pytest.mark.parametrize(
    ("box", "status", "detail"),
    [
        ("100,100,200,200", 400, "the box 100,100,200,200 (x,y,w,h) reaches outside the photo, which is 192 x 192 px"),
        ("0,0,10,10", 400, "the box is 10 x 10 px; its shorter side must be at least 32 px"),
        ("0,0,0,50", 422, "box '0,0,0,50' has no area"),
        ("1,2,3", 422, "String should match pattern"),
    ],
)
def test_a_box_outside_the_photo_too_small_or_malformed_is_refused(
    client: TestClient, render: Image.Image, box: str, status: int, detail: str
) -> None:
    response = post_photo(client, png(render), box=box)
    assert response.status_code == status and detail in str(response.json()["detail"])


def test_a_box_keeps_a_large_jpeg_s_draft_scale_at_the_box_s_resolution() -> None:
    from photo2cad.service.images import Box

    opened = open_image(image_bytes((2048, 1536), "JPEG"), "photo", ImageLimits(40_000_000, 32, 10.0))
    draft_for(opened, 128, Box(0, 0, 256, 256))
    assert opened.decode_pixels == 1024 * 768  # 1/2 scale: the 256 px box keeps 128 px
