"""The bundled weights' recipe (issue #10): its sources, their merge, and the whole recipe on tiny data."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from safetensors import safe_open
from safetensors.torch import load_file

from photo2cad.models.datasets import read_folder
from photo2cad.models.datasets.demo import generate_demo
from photo2cad.models.datasets.merge import merge_datasets, prefixed
from photo2cad.models.datasets.records import DatasetError, RetrievalDataset
from photo2cad.models.datasets.sweethome3d import CATEGORY_OF_MODEL, extract_sweethome3d, read_sweethome3d
from photo2cad.models.evaluation.bands import FirstResults, first_results, measure_bands
from photo2cad.models.training.config import BundledRecipe
from photo2cad.models.training.recipe import reproduce_default_weights, train_bundled
from photo2cad.models.training.reproducible import training_machine
from photo2cad.weights.bands import score_bands_of
from photo2cad.weights.bundled import DEFAULT_AMVML, resolve_amvml
from photo2cad.weights.checkpoint import read_header
from tests.photoset import write_photo_dataset

MODELS = "streamlit_sweethome3d-0.0.6/streamlit_sweethome3d/frontend/dist/lib/resources/models"


def write_sweethome3d_sdist(path: Path) -> str:
    """An sdist laid out like streamlit-sweethome3d's: one zipped OBJ per model, furniture and a door; its sha256."""
    with tarfile.open(path, "w:gz") as archive:
        for index, model in enumerate([*CATEGORY_OF_MODEL, "door"]):
            box = trimesh.creation.box(extents=(1.0, 0.5 + 0.05 * index, 0.8))
            zipped = io.BytesIO()
            with zipfile.ZipFile(zipped, "w") as handle:
                handle.writestr(f"{model}.obj", box.export(file_type="obj"))
            member = tarfile.TarInfo(f"{MODELS}/{model}.zip")
            member.size = len(zipped.getvalue())
            archive.addfile(member, io.BytesIO(zipped.getvalue()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sweethome3d(tmp_path_factory: pytest.TempPathFactory) -> RetrievalDataset:
    root = tmp_path_factory.mktemp("sh3d")
    sha256 = write_sweethome3d_sdist(root / "sdist.tar.gz")
    return read_sweethome3d(extract_sweethome3d(root / "sdist.tar.gz", root / "pool", sha256=sha256))


def test_sweethome3d_furniture_comes_out_of_its_sdist_in_pix3d_categories(sweethome3d: RetrievalDataset) -> None:
    assert len(sweethome3d.shapes) == len(CATEGORY_OF_MODEL)  # the door is not furniture
    assert sweethome3d.shape("chair/armchair2").category == "chair"
    assert set(sweethome3d.categories()) == {"bed", "bookcase", "chair", "desk", "sofa", "table", "wardrobe"}
    assert sweethome3d.queries == ()


def test_an_sdist_other_than_the_pinned_one_is_refused(tmp_path: Path) -> None:
    write_sweethome3d_sdist(tmp_path / "sdist.tar.gz")
    with pytest.raises(DatasetError, match="sha256"):
        extract_sweethome3d(tmp_path / "sdist.tar.gz", tmp_path / "pool")


def test_merged_datasets_prefix_every_id_and_keep_splits(sweethome3d: RetrievalDataset, tmp_path: Path) -> None:
    photos = read_folder(write_photo_dataset(tmp_path / "photos", size=32, count=4))
    merged = merge_datasets("both", {"photos": photos, "sh3d": sweethome3d})
    assert len(merged.shapes) == len(photos.shapes) + len(sweethome3d.shapes)
    assert merged.shape("sh3d/chair/armchair2").path == sweethome3d.shape("chair/armchair2").path
    assert [q.shape_id for q in merged.split("val")] == [f"photos/{q.shape_id}" for q in photos.split("val")]
    assert {s.shape_id for s in prefixed("photos", photos).shapes} == {f"photos/{s.shape_id}" for s in photos.shapes}


TINY_RECIPE = BundledRecipe(
    image_size=64,
    epochs=2,
    end_to_end_epochs=1,
    tsm_image_size=64,
    tsm_base_channels=8,
    tsm_steps=2,
    tsm_views_per_shape=1,
    demo_shapes_per_category=1,
)


def tiny_sources(root: Path, sweethome3d: RetrievalDataset) -> dict[str, RetrievalDataset]:
    """The recipe's three sources in miniature: photos of a few shapes (some held out), a demo catalogue, SH3D."""
    generate_demo(root / "demo", shapes_per_category=1, photos_per_shape=4, photo_size=64, progress=False)
    ikea_like = read_folder(write_photo_dataset(root / "ikea", size=64))
    return {"ikea": ikea_like, "demo": read_folder(root / "demo"), "sweethome3d": sweethome3d}


def test_the_bundled_recipe_trains_on_every_source_and_records_itself(
    sweethome3d: RetrievalDataset, tmp_path: Path
) -> None:
    sources = tiny_sources(tmp_path, sweethome3d)
    ikea_like, recipe = sources["ikea"], TINY_RECIPE
    result = train_bundled(sources, tmp_path / "work", tmp_path / "out", recipe, torch.device("cpu"), "photos", False)

    header = read_header(result.checkpoint)
    assert header.notes["recipe"] == recipe.model_dump(mode="json") and header.notes["holdout"] == "photos"
    assert header.notes["machine"] == training_machine(torch.device("cpu"))  # what its bits repeat on
    assert set(header.notes["sources"]) == {"ikea", "demo", "sweethome3d"}
    assert all(name in header.training_data for name in ("ikea", "demo", "sweethome3d"))
    assert header.renderer is not None and header.renderer["framing"] == "object"
    assert header.config["num_categories"] == 7  # the union of the sources' categories
    assert header.config["prior_weight"] == recipe.prior_weight  # given after training, which never reads it
    assert header.config["category_weight"] == recipe.category_weight
    assert header.config["category_names"] == header.notes["categories"]  # the heads' classes, in their order
    # The category probe, fitted after training on every training photo (the demo's synthetic ones too).
    assert header.config["category_probe"] is recipe.category_probe is True
    trained_on = len(ikea_like.split("train")) + len(sources["demo"].split("train"))
    assert header.notes["category_probe"]["photos"] == trained_on
    assert "category_probe.weight" in load_file(str(result.checkpoint))
    assert read_header(tmp_path / "out" / "amvml" / "amvml-last.safetensors").config["prior_weight"] == 0
    with safe_open(str(result.checkpoint), framework="pt") as stored:  # shipped in float16
        assert stored.get_tensor("view_projection.weight").dtype == torch.float16
    # Validation: each source's own photos against its own pool, per epoch (ikea) and at the end (every source).
    assert result.validation["ikea"]["count"] == len(ikea_like.split("val"))
    assert result.validation["demo"]["count"] == len(sources["demo"].split("val"))
    assert [record["val_count"] for record in result.history] == [len(ikea_like.split("val"))] * 3
    # The warm-up's epochs, then the end-to-end ones (every layer learning, the memory bank ranking the pool).
    assert ["loss_pool" in record for record in result.history] == [True, True, False]
    assert result.history[-1]["loss_bank"] > 0
    assert json.loads((tmp_path / "out" / "validation.json").read_text()) == result.validation
    assert (tmp_path / "work" / "tsm" / "tsm-last.safetensors").is_file()  # the TSM painted the tsm look
    bands = score_bands_of(header)  # measured on the held-out real photos, recorded for the service
    assert bands is not None and "held-out real IKEA photos" in bands.measured_on
    assert bands.strong is None or bands.weak <= bands.strong


def test_the_default_weights_come_from_one_call_that_ships_the_pooled_bands_of_the_unseen_folds(
    sweethome3d: RetrievalDataset, tmp_path: Path
) -> None:
    sources = tiny_sources(tmp_path, sweethome3d)
    every_photo_trains = replace(
        sources["ikea"], queries=tuple(replace(query, split="train") for query in sources["ikea"].queries)
    )
    asked: list[tuple[str, int]] = []

    def sources_for(holdout: str, fold: int, work_dir: Path) -> dict[str, RetrievalDataset]:
        asked.append((holdout, fold))
        return sources if holdout == "models" else {**sources, "ikea": every_photo_trains}

    recipe = TINY_RECIPE.model_copy(update={"unseen_folds": 2})
    result = reproduce_default_weights(sources_for, tmp_path / "runs", recipe, torch.device("cpu"), False)

    assert asked == [("models", 0), ("models", 1), ("none", 0)]  # the held-out runs first: they measure the bands
    assert result.checkpoint == tmp_path / "runs" / "bundled" / "amvml-bundled.safetensors"
    shipped, unseen = (
        read_header(result.checkpoint),
        read_header(tmp_path / "runs/bundled-unseen/amvml-bundled.safetensors"),
    )
    assert shipped.notes["holdout"] == "none" and unseen.notes["holdout"] == "models"
    bands, held_out = score_bands_of(shipped), len(sources["ikea"].split("val"))
    assert bands is not None and bands.measured_on.startswith(f"{2 * held_out} held-out real IKEA photos")
    assert "2 runs of the recipe" in bands.measured_on  # pooled over both folds
    folds = json.loads((tmp_path / "runs" / "bundled-unseen-folds.json").read_text())
    assert folds["pooled"]["count"] == 2 * held_out and len(folds["folds"]) == 2
    assert read_header(tmp_path / "runs/bundled-unseen-fold1/amvml-bundled.safetensors").notes["fold"] == 1
    assert "ikea" not in result.validation  # no real photo left to measure on: the bands come from the unseen runs
    assert (tmp_path / "runs" / "bundled-work" / "tsm" / "tsm-last.safetensors").is_file()  # one TSM for both


def test_score_bands_separate_right_first_results_from_wrong_and_absent_ones() -> None:
    rng = np.random.default_rng(0)
    shapes = rng.normal(size=(50, 16))
    shapes /= np.linalg.norm(shapes, axis=1, keepdims=True)
    gt = rng.integers(0, 50, size=200)
    closeness = rng.uniform(0.0, 1.0, size=200)  # photos close to their shape are ranked right, with high scores
    queries = closeness[:, None] * shapes[gt] + (1 - closeness[:, None]) * rng.normal(size=(200, 16)) * 0.3
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    bands = measure_bands(first_results(queries, shapes, gt), "synthetic", target_precision=0.8, right_below_weak=0.05)

    first = (queries @ shapes.T).argmax(axis=1)
    scores = (queries @ shapes.T).max(axis=1)
    assert bands is not None and bands.strong is not None and bands.strong_precision is not None
    assert bands.weak <= bands.strong
    assert np.mean(first[scores >= bands.strong] == gt[scores >= bands.strong]) >= 0.8
    assert bands.strong_precision >= 0.8 and bands.weak_share_of_right <= 0.06
    assert bands.absent_share_below_weak > 0.5  # without its model in the pool, a photo mostly scores weak


def test_the_default_weights_are_the_bundled_recipes_and_record_it() -> None:
    assert resolve_amvml(None) == DEFAULT_AMVML and DEFAULT_AMVML.name == "amvml-default.safetensors"
    header = read_header(DEFAULT_AMVML)
    assert header.notes["holdout"] == "none"  # trained on every real photo we have
    assert header.notes["recipe"] == BundledRecipe().model_dump(mode="json")  # the command's defaults reproduce it
    assert set(header.notes["sources"]) == {"ikea", "demo", "sweethome3d"}
    assert header.renderer is not None and header.renderer["framing"] == "object"
    assert header.config["prior_weight"] == BundledRecipe().prior_weight
    assert header.config["category_weight"] == BundledRecipe().category_weight
    assert header.config["category_probe"] is BundledRecipe().category_probe
    assert header.notes["category_probe"]["photos"] == 458 + 480  # every real photo we have, the demo's train photos
    bands = score_bands_of(header)
    assert bands is not None and "held-out" in bands.measured_on
    assert f"{BundledRecipe().unseen_folds} runs of the recipe" in bands.measured_on  # the folds' photos pooled


def test_index_build_without_weights_embeds_with_the_default_weights(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from photo2cad.cli import app
    from photo2cad.indexer import open_index
    from photo2cad.shapes.meshes import file_checksum
    from tests.meshpool import write_pool

    write_pool(tmp_path / "pool", count=3, corrupt=False)
    args = ["index", "build", str(tmp_path / "pool"), "--out", str(tmp_path / "index"), "--views", "2"]
    result = CliRunner().invoke(app, [*args, "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    manifest = open_index(tmp_path / "index").manifest
    assert manifest.weights.sha256 == file_checksum(DEFAULT_AMVML)
    assert manifest.render.framing == "object"  # the views follow the checkpoint's framing


def test_score_bands_call_nothing_strong_when_no_score_is_reliably_right() -> None:
    rng = np.random.default_rng(1)
    shapes = rng.normal(size=(40, 16))
    shapes /= np.linalg.norm(shapes, axis=1, keepdims=True)
    queries = rng.normal(size=(120, 16))  # photos unrelated to their shapes: right first results are luck
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    first = (queries @ shapes.T).argmax(axis=1)
    gt = np.where(np.arange(120) % 20 == 0, first, (first + 1) % 40)  # one in 20 right, at any score

    results = first_results(queries, shapes, gt)
    bands = measure_bands(results, "unrelated photos", target_precision=0.6, min_strong_photos=10)

    assert bands is not None and bands.strong is None and bands.strong_precision is None
    assert {bands.match(score) for score in (queries @ shapes.T).max(axis=1)} <= {"possible", "weak"}
    assert measure_bands(first_results(queries, shapes, (first + 1) % 40), "never right") is None  # nothing to measure


def test_bands_of_pooled_held_out_runs_are_those_of_all_their_photos_at_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    shapes = rng.normal(size=(30, 8))
    queries = shapes[rng.integers(0, 30, size=90)] + rng.normal(size=(90, 8))
    gt = np.array(
        [int(np.argmin(np.linalg.norm(shapes - q, axis=1))) if i % 3 else i % 30 for i, q in enumerate(queries)]
    )
    runs = [first_results(queries[part], shapes, gt[part]) for part in (slice(0, 40), slice(40, 90))]
    runs[0].save(tmp_path / "first_results.npz")  # what each held-out run leaves in its directory

    pooled = FirstResults.pooled([FirstResults.load(tmp_path / "first_results.npz"), runs[1]])

    assert len(pooled) == 90
    assert measure_bands(pooled, "pooled") == measure_bands(first_results(queries, shapes, gt), "pooled") is not None
