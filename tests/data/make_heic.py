"""How tests/data/photo.heic was made. pillow-heif's encoder is GPL x265, so it is no dependency of photo2cad (the
service decodes with pi-heif, decoder only): `pip install pillow-heif && python tests/data/make_heic.py`.

The picture is tests.helpers.heic_reference_photo(), which the tests compare the decoded file with.
"""

from pathlib import Path

import pillow_heif
from PIL import Image


def heic_reference_photo() -> Image.Image:
    # The same as tests.helpers.heic_reference_photo (this script runs outside the test environment).
    image = Image.new("RGB", (120, 80), (200, 60, 40))
    image.paste((30, 60, 220), (0, 0, 40, 30))
    return image


if __name__ == "__main__":
    pillow_heif.register_heif_opener()
    heic_reference_photo().save(Path(__file__).with_name("photo.heic"), format="HEIF", quality=95)
