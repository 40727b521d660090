"""StanfordCars 3D and CompCars 3D (Wang et al., "3D Pose Estimation for Fine-Grained Object Categories", ECCV
workshops 2018): photos of the fine-grained car datasets, each labelled with the ShapeNetCore.v1 car that matches it.

Layout: the annotation release (github.com/yangyi02/finegrained-pose, its "Release" folder) with the photos and the
ShapeNet cars put where its README says::

    root/
      Anno3D/StanfordCars/train_anno.pkl   test_anno.pkl   (train_anno_v2.pkl, test_anno_v2.pkl: improved poses)
      Anno3D/CompCars/train_anno.pkl       test_anno.pkl
      Image/StanfordCars/cars_train/<00001>.jpg            (Stanford Cars' cars_train.tgz)
      Image/StanfordCars/cars_test/<00001>.jpg             (cars_test.tgz)
      Image/CompCars/image/<make>/<model>/<year>/<name>.jpg (CompCars' data/image)
      CAD/02958343/<model_id>/model.obj                    (ShapeNetCore.v1 synset 02958343)

Each .pkl is a Python 2 pickle of a dict: image name (relative to the image folder of its split) -> {"model_id",
"azimuth", "elevation", "theta", "distance", "u", "v", "f"}. Only plain dicts, strings and numbers are unpickled;
anything else is refused, so a tampered file cannot run code. Verified against the release's files and its
sample_visualize.py; the image folders follow its README.

Splits: train_anno -> "train", test_anno -> "test" (no "val"). The pool is every car an annotation of either split
names (the protocol of the retrieval papers on these datasets), category "car"; shape_id is the ShapeNet model id.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Literal

from photo2cad.models.datasets._common import OnMissing, RecordProblems
from photo2cad.models.datasets.records import DatasetError, QueryRecord, RetrievalDataset, Split
from photo2cad.shapes.pool import ShapeRecord

logger = logging.getLogger(__name__)

CAR_SYNSET = "02958343"
CATEGORY = "car"


def read_stanford_cars_3d(
    root: Path, annotation_version: Literal["v1", "v2"] = "v1", on_missing: OnMissing = "error"
) -> RetrievalDataset:
    root = Path(root)
    if annotation_version not in ("v1", "v2"):
        raise ValueError(f"annotation_version must be 'v1' or 'v2', not {annotation_version!r}")
    suffix = "_v2" if annotation_version == "v2" else ""
    annotations = root / "Anno3D" / "StanfordCars"
    images = root / "Image" / "StanfordCars"
    return _read_cars(
        "stanford-cars",
        root,
        {
            "train": (annotations / f"train_anno{suffix}.pkl", images / "cars_train"),
            "test": (annotations / f"test_anno{suffix}.pkl", images / "cars_test"),
        },
        on_missing,
    )


def read_compcars_3d(root: Path, on_missing: OnMissing = "error") -> RetrievalDataset:
    root = Path(root)
    annotations = root / "Anno3D" / "CompCars"
    images = root / "Image" / "CompCars" / "image"
    return _read_cars(
        "compcars",
        root,
        {"train": (annotations / "train_anno.pkl", images), "test": (annotations / "test_anno.pkl", images)},
        on_missing,
    )


def _read_cars(
    name: str, root: Path, sources: dict[Split, tuple[Path, Path]], on_missing: OnMissing
) -> RetrievalDataset:
    cars = root / "CAD" / CAR_SYNSET
    problems = RecordProblems(name, on_missing, logger)
    shapes: dict[str, ShapeRecord] = {}
    missing_models: set[str] = set()
    queries: list[QueryRecord] = []
    for split, (source, image_folder) in sources.items():
        annotations = _load_annotations(source)
        for image_name in sorted(annotations):
            annotation = annotations[image_name]
            label = f"image {image_name!r}"
            model_id = annotation.get("model_id") if isinstance(annotation, dict) else None
            if not isinstance(model_id, str) or not model_id:
                problems.report(source, label, f"expected a dict with a string 'model_id', found {annotation!r}")
                continue
            if model_id not in shapes and model_id not in missing_models:
                mesh = cars / model_id / "model.obj"
                if mesh.is_file():
                    shapes[model_id] = ShapeRecord(shape_id=model_id, path=mesh, category=CATEGORY)
                else:
                    missing_models.add(model_id)
            if model_id in missing_models:
                problems.report(source, label, f"model not found: {cars / model_id / 'model.obj'}")
                continue
            image = image_folder / image_name
            if not problems.file_missing(image, source, label, "image"):
                continue
            queries.append(
                QueryRecord(image=image, shape_id=model_id, category=CATEGORY, mask=None, split=split, bbox=None)
            )
    problems.log()
    pool = tuple(shapes[model_id] for model_id in sorted(shapes))
    return RetrievalDataset(name=name, shapes=pool, queries=tuple(queries), pool_root=cars)


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only dicts, strings and numbers are expected")


def _load_annotations(source: Path) -> dict[str, Any]:
    if not source.is_file():
        raise DatasetError(f"annotation file not found: {source}")
    try:
        with source.open("rb") as handle:
            # latin1 turns Python 2 byte strings into str without failing on any byte
            content = _PlainDataUnpickler(handle, encoding="latin1").load()
    except Exception as error:  # a corrupt pickle fails with almost any exception type
        raise DatasetError(f"{source}: not a readable annotation pickle: {error}") from None
    if not isinstance(content, dict) or not all(isinstance(key, str) for key in content):
        raise DatasetError(f"{source}: expected a dict of image name -> annotation, found {type(content).__name__}")
    return content
