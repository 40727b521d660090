"""`photo2cad demo`: the embedded default, on a small catalogue and the bundled weights."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from photo2cad.cli import app
from photo2cad.cli.demo import example_photo, prepare_demo
from photo2cad.indexer import layout, open_index
from photo2cad.weights.bundled import DEFAULT_AMVML
from photo2cad.weights.checkpoint import read_header


def test_bundled_weights_say_how_they_were_trained() -> None:
    header = read_header(DEFAULT_AMVML)
    assert header.architecture == "amvml" and "demo" in header.training_data
    assert header.config["backbone"] == "efficientnet_lite0"
    assert header.notes["history"], "the training history travels with the weights"


def test_demo_builds_its_index_once_and_then_reuses_it(tmp_path: Path) -> None:
    catalogue, index_dir = prepare_demo(tmp_path, shapes_per_category=1, device="cpu", progress=False)
    manifest = open_index(index_dir).manifest
    assert manifest.counts.shapes == 4 and {e.category for e in manifest.shapes} == {"bed", "chair", "sofa", "table"}
    version = layout.current_version(index_dir)
    prepare_demo(tmp_path, shapes_per_category=1, device="cpu", progress=False)
    assert layout.current_version(index_dir) == version
    photo = example_photo(catalogue)
    assert photo is not None and photo.is_file()


def test_demo_without_serving_prints_how_to_query(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--workdir", str(tmp_path), "--shapes-per-category", "1", "--no-serve", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "curl -F photo=@" in result.output and "/retrieve" in result.output
