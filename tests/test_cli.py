"""The `photo2cad` command as a newcomer meets it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from photo2cad.cli import app
from photo2cad.models.training.config import BundledRecipe

runner = CliRunner()


def test_help_lists_the_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("info", "weights"):
        assert command in result.output


def test_without_faiss_the_cli_says_which_extra_to_install() -> None:
    """FAISS comes with the cpu or gpu extra; a bare install must say so instead of failing deep in an import."""
    hide_faiss = (
        "import sys, runpy\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'faiss': raise ImportError('No module named faiss')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "sys.argv = ['photo2cad', '--help']\n"
        "runpy.run_module('photo2cad.cli', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", hide_faiss], capture_output=True, text=True, timeout=120)

    assert result.returncode != 0
    assert "pip install 'photo2cad[cpu]'" in result.stderr.strip().splitlines()[-1]


def test_info_names_the_device() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    assert "device" in result.output and "torch" in result.output


def test_weights_init_then_show_prints_the_header(tmp_path: Path) -> None:
    out = tmp_path / "tsm.safetensors"
    assert (
        runner.invoke(app, ["weights", "init", str(out), "--architecture", "tsm", "--num-categories", "0"]).exit_code
        == 0
    )
    result = runner.invoke(app, ["weights", "show", str(out)])
    assert result.exit_code == 0
    header = json.loads(result.output)
    assert header["architecture"] == "tsm" and header["config"]["num_categories"] == 0


def test_weights_show_on_a_bad_file_exits_2_with_a_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_text("nope")
    result = runner.invoke(app, ["weights", "show", str(bad)])
    assert result.exit_code == 2
    assert "not a safetensors checkpoint" in result.output


def test_weights_half_halves_the_file_and_keeps_the_header(tmp_path: Path) -> None:
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    init = ["weights", "init", str(full), "--backbone", "efficientnet_lite0", "--image-size", "64"]
    assert runner.invoke(app, init).exit_code == 0

    result = runner.invoke(app, ["weights", "half", str(full), str(half), "--training-data", "my catalogue"])

    assert result.exit_code == 0, result.output
    assert half.stat().st_size < 0.6 * full.stat().st_size
    shown = [json.loads(runner.invoke(app, ["weights", "show", str(path)]).output) for path in (full, half)]
    assert shown[0]["config"] == shown[1]["config"] and shown[1]["training_data"] == "my catalogue"


def test_weights_prior_copies_a_checkpoint_with_the_prior_in_its_precision(tmp_path: Path) -> None:
    full, half, with_prior = (tmp_path / f"{name}.safetensors" for name in ("full", "half", "prior"))
    init = ["weights", "init", str(full), "--backbone", "efficientnet_lite0", "--image-size", "64"]
    assert runner.invoke(app, init).exit_code == 0
    assert runner.invoke(app, ["weights", "half", str(full), str(half)]).exit_code == 0

    result = runner.invoke(app, ["weights", "prior", str(half), str(with_prior), "--weight", "0.6"])

    assert result.exit_code == 0, result.output
    header = json.loads(runner.invoke(app, ["weights", "show", str(with_prior)]).output)
    assert header["config"]["prior_weight"] == 0.6
    assert abs(with_prior.stat().st_size - half.stat().st_size) < 4096  # still float16
    refused = runner.invoke(app, ["weights", "prior", str(half), str(tmp_path / "x.safetensors"), "--weight", "1"])
    assert refused.exit_code == 2 and not (tmp_path / "x.safetensors").exists()


def test_weights_probe_fits_a_category_probe_on_a_datasets_training_photos(tmp_path: Path) -> None:
    from photo2cad.models.datasets import read_folder
    from photo2cad.weights.checkpoint import load_amvml, save_checkpoint, set_category_weight
    from tests.photoset import write_photo_dataset

    photos = write_photo_dataset(tmp_path / "photos", count=6)  # chairs, tables and sofas
    plain = tmp_path / "plain.safetensors"
    init = ["weights", "init", str(plain), "--backbone", "efficientnet_lite0", "--image-size", "64"]
    assert runner.invoke(app, [*init, "--num-categories", "3"]).exit_code == 0
    model, header = load_amvml(plain)
    named = header.model_copy(update={"notes": {"categories": ["bed", "chair", "table"]}})
    scoring = save_checkpoint(tmp_path / "scoring.safetensors", model, set_category_weight(model, named, 0.05))
    probed = tmp_path / "probed.safetensors"

    result = runner.invoke(app, ["weights", "probe", str(scoring), str(probed), str(photos)])

    assert result.exit_code == 0, result.output
    header_shown = json.loads(runner.invoke(app, ["weights", "show", str(probed)]).output)
    assert header_shown["config"]["category_probe"] is True
    known = [q for q in read_folder(photos).split("train") if q.category in ("bed", "chair", "table")]
    assert header_shown["notes"]["category_probe"]["photos"] == len(known) > 0  # photos of other categories left out
    assert f"fitted on {len(known)} training photos" in result.output
    refused = runner.invoke(app, ["weights", "probe", str(plain), str(tmp_path / "x.safetensors"), str(photos)])
    assert refused.exit_code == 2 and "category weight" in refused.output
    assert not (tmp_path / "x.safetensors").exists()


def test_train_bundled_refuses_a_fold_unless_it_holds_out_models(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "bundled", str(tmp_path), "--holdout", "photos", "--fold", "1"])

    assert result.exit_code == 2
    assert "Invalid value for --fold: folds hold out whole models: use it with --holdout" in result.output


@pytest.mark.parametrize(("given", "sources"), [(None, ()), ("all", ()), ("ikea,demo", ("ikea", "demo"))])
def test_train_bundled_names_the_sources_of_its_end_to_end_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str | None, sources: tuple[str, ...]
) -> None:
    from photo2cad.models.training import recipe as bundled

    recipes: list[BundledRecipe] = []

    def gather_sources(ikea: Path, work: Path, recipe: BundledRecipe, *args: object, **kwargs: object) -> None:
        recipes.append(recipe)
        raise typer.Exit(0)  # the recipe is all this test needs: no data gathered, nothing trained

    monkeypatch.setattr(bundled, "gather_sources", gather_sources)
    option = [] if given is None else ["--end-to-end-sources", given]
    result = runner.invoke(app, ["train", "bundled", str(tmp_path), *option])

    assert result.exit_code == 0, result.output
    assert recipes[0].end_to_end_sources == sources


@pytest.mark.parametrize(("flag", "deterministic"), [([], True), (["--fast-kernels"], False)])
def test_train_amvml_runs_deterministic_kernels_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: list[str], deterministic: bool
) -> None:
    from photo2cad.models.training import amvml_trainer
    from photo2cad.models.training.config import AMVMLTrainConfig
    from tests.photoset import write_photo_dataset

    configs: list[AMVMLTrainConfig] = []

    def train_amvml(
        dataset: object, out: Path, model: object, config: AMVMLTrainConfig, *args: object, **kw: object
    ) -> None:
        configs.append(config)
        raise typer.Exit(0)  # the settings are all this test needs: nothing trained

    monkeypatch.setattr(amvml_trainer, "train_amvml", train_amvml)
    data = write_photo_dataset(tmp_path / "photos", size=32)
    result = runner.invoke(app, ["train", "amvml", str(data), "--out", str(tmp_path / "run"), *flag])

    assert result.exit_code == 0, result.output
    assert configs[0].deterministic is deterministic
