"""`train amvml`, `train tsm` and `eval` end to end on CPU, on a small dataset the tests make."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from photo2cad.models import AMVMLConfig, TSMConfig
from photo2cad.models.datasets import read_dataset
from photo2cad.models.datasets.merge import merge_datasets
from photo2cad.models.datasets.records import RetrievalDataset
from photo2cad.models.evaluation.evaluate import evaluate
from photo2cad.models.training import amvml_trainer, tsm_trainer
from photo2cad.models.training.amvml_trainer import TrainingRequestError, train_amvml
from photo2cad.models.training.config import AMVMLTrainConfig, TSMTrainConfig
from photo2cad.models.training.epochs import EpochInputs
from photo2cad.models.training.losses import lsgan_loss
from photo2cad.models.training.reproducible import (
    cpu_name,
    deterministic_algorithms,
    pin_cublas_workspace,
    training_machine,
)
from photo2cad.models.training.tsm_trainer import TexturePairs, train_tsm
from photo2cad.models.training.views import render_views
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights import header_for, load_amvml, load_tsm, new_amvml, save_checkpoint
from tests.helpers import recording_entries
from tests.photoset import write_photo_dataset

SIZE = 64
CPU = torch.device("cpu")
RENDER = RenderSettings(num_views=4, embed_size=SIZE, synth_size=SIZE)


def _random_texture_pairs(labels: list[int], names: tuple[str, ...]) -> TexturePairs:
    """Noise images at 64 px, one pair for each label: what the TSM trainer's loop needs, nothing it learns from."""
    rng = np.random.default_rng(0)
    shape = (len(labels), SIZE, SIZE, 3)
    normals = rng.integers(0, 255, shape, dtype=np.uint8)
    textured = rng.integers(0, 255, shape, dtype=np.uint8)
    return TexturePairs(normals, textured, np.array(labels), names)


def model_config(**overrides: object) -> AMVMLConfig:
    values: dict[str, object] = {
        "backbone": "efficientnet_lite0",
        "pretrained": True,
        "image_size": SIZE,
        "num_views": 4,
        "embedding_dim": 32,
        "num_categories": 4,
    }
    return AMVMLConfig.model_validate({**values, **overrides})


@pytest.fixture(scope="module")
def photoset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RetrievalDataset]:
    root = write_photo_dataset(tmp_path_factory.mktemp("photoset"), size=SIZE)
    return root, read_dataset("folder", root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, photoset: tuple[Path, RetrievalDataset]) -> Path:
    _, dataset = photoset
    out = tmp_path_factory.mktemp("amvml")
    train_amvml(
        dataset,
        out,
        model_config(),
        AMVMLTrainConfig(epochs=6, warmup_epochs=6, batch_size=8, train_views=2, extra_negatives=2),
        RENDER,
        out / "cache",
        CPU,
        progress=False,
    )
    return out


def test_training_writes_checkpoint_history_and_loss_curve(trained: Path) -> None:
    model, header = load_amvml(trained / "amvml-last.safetensors")
    history = json.loads((trained / "history.json").read_text())
    assert len(history) == 6 and header.training_data == "folder"
    assert header.renderer == RENDER.model_dump()
    assert (trained / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert history[-1]["loss_total"] < history[0]["loss_total"]


def test_training_resumes_from_the_last_epoch(trained: Path, photoset: tuple[Path, RetrievalDataset]) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(
        epochs=7, warmup_epochs=6, batch_size=8, train_views=2, extra_negatives=2, validate_every=0
    )
    result = train_amvml(dataset, trained, model_config(), config, RENDER, trained / "cache", CPU, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5, 6, 7]


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    """Shuffles, augmentation and the end-to-end epochs' view and negative draws go on from the saved random state."""
    _, dataset = photoset

    def run(out: Path, epochs: int) -> Path:
        config = AMVMLTrainConfig(
            epochs=epochs, warmup_epochs=1, batch_size=8, train_views=2, extra_negatives=2, validate_every=0
        )
        return train_amvml(dataset, out, model_config(), config, RENDER, tmp_path / "c", CPU, progress=False).checkpoint

    uninterrupted = load_amvml(run(tmp_path / "straight", 3))[0].state_dict()
    run(tmp_path / "killed", 2)
    resumed = load_amvml(run(tmp_path / "killed", 3))[0].state_dict()

    assert all(torch.equal(uninterrupted[name], resumed[name]) for name in uninterrupted)


@pytest.mark.parametrize("deterministic", [True, False])
def test_the_epochs_run_on_deterministic_kernels_as_the_config_says_and_the_process_setting_comes_back(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deterministic: bool
) -> None:
    """Seeds alone left two CPU processes of the shipped recipe a few float16 steps apart (docs/training.md)."""
    _, dataset = photoset
    seen: list[bool] = []

    def spying(epoch: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
        def run(*args: object, **kwargs: object) -> dict[str, float]:
            seen.append(torch.are_deterministic_algorithms_enabled())
            return epoch(*args, **kwargs)

        return run

    monkeypatch.setattr(amvml_trainer, "warmup_epoch", spying(amvml_trainer.warmup_epoch))
    monkeypatch.setattr(amvml_trainer, "end_to_end_epoch", spying(amvml_trainer.end_to_end_epoch))
    config = AMVMLTrainConfig(
        epochs=2, warmup_epochs=1, batch_size=8, train_views=2, validate_every=0, deterministic=deterministic
    )
    before = torch.are_deterministic_algorithms_enabled()
    train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path / "c", CPU, progress=False)

    assert seen == [deterministic, deterministic]
    assert torch.are_deterministic_algorithms_enabled() == before


def test_tsm_training_runs_on_deterministic_kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[bool] = set()

    def spying_loss(*args: Any, **kwargs: Any) -> torch.Tensor:
        seen.add(torch.are_deterministic_algorithms_enabled())
        return lsgan_loss(*args, **kwargs)

    monkeypatch.setattr(tsm_trainer, "lsgan_loss", spying_loss)
    pairs = _random_texture_pairs([0, 1], ("bed", "chair"))
    train_tsm(
        pairs,
        tmp_path,
        TSMConfig(num_categories=2, image_size=64, base_channels=8),
        TSMTrainConfig(epochs=1, batch_size=2),
        CPU,
        "synthetic",
    )

    assert seen == {True} and not torch.are_deterministic_algorithms_enabled()


def test_both_trainers_keep_the_heap_for_reuse_during_their_epochs(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large activations stay in glibc's heap between steps instead of being mapped and faulted in anew (heap.py)."""
    _, dataset = photoset
    entered: list[str] = []
    monkeypatch.setattr(amvml_trainer, "heap_kept_for_reuse", recording_entries(entered, "amvml"))
    monkeypatch.setattr(tsm_trainer, "heap_kept_for_reuse", recording_entries(entered, "tsm"))
    config = AMVMLTrainConfig(epochs=1, warmup_epochs=1, batch_size=8, validate_every=0)
    train_amvml(dataset, tmp_path / "amvml", model_config(), config, RENDER, tmp_path / "c", CPU, progress=False)
    tsm = TSMConfig(num_categories=2, image_size=64, base_channels=8)
    pairs = _random_texture_pairs([0, 1], ("bed", "chair"))
    train_tsm(pairs, tmp_path / "tsm", tsm, TSMTrainConfig(epochs=1, batch_size=2), CPU, "synthetic")

    assert entered == ["amvml", "tsm"]


def test_the_recorded_machine_names_the_processor_with_its_family_and_model(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    block = "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
    cpuinfo.write_text(block.format(n=0) + "\n" + block.format(n=1).replace("17", "99"))
    assert cpu_name(cpuinfo) == "AMD EPYC (family 25, model 17)"  # the first processor's block
    machine = training_machine(CPU)
    assert machine["cpu_kernels"] == torch.backends.cpu.get_cpu_capability() and machine["device"] == "cpu"
    assert machine["torch"] == torch.__version__ and "gpu" not in machine


def test_without_cpuinfo_the_recorded_processor_is_what_the_platform_knows(tmp_path: Path) -> None:
    assert cpu_name(tmp_path / "absent") == (platform.processor() or platform.machine() or "unknown")


def test_a_callers_own_deterministic_setting_survives_a_training_block() -> None:
    torch.use_deterministic_algorithms(True, warn_only=False)
    try:
        with deterministic_algorithms(False):
            assert not torch.are_deterministic_algorithms_enabled()
            assert not torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    finally:
        torch.use_deterministic_algorithms(False)


def test_deterministic_runs_skip_filling_new_memory_and_train_the_same_weights_as_with_it(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyTorch's deterministic mode writes NaN into every new tensor unless told not to; no kernel of ours reads memory
    before writing it, so the filling (12-18 % of an end-to-end epoch on a CPU) changes no bit of the weights."""
    _, dataset = photoset
    config = AMVMLTrainConfig(epochs=2, warmup_epochs=1, batch_size=8, train_views=2, validate_every=0)
    filling: set[bool] = set()
    real_epoch = amvml_trainer.end_to_end_epoch

    def spy(*args: Any) -> dict[str, float]:
        filling.add(torch.utils.deterministic.fill_uninitialized_memory)  # type: ignore[attr-defined]
        return real_epoch(*args)

    def run(out: Path) -> dict[str, torch.Tensor]:
        result = train_amvml(dataset, out, model_config(), config, RENDER, tmp_path / "c", CPU, progress=False)
        return load_amvml(result.checkpoint)[0].state_dict()

    monkeypatch.setattr(amvml_trainer, "end_to_end_epoch", spy)
    unfilled = run(tmp_path / "unfilled")

    @contextlib.contextmanager
    def filling_deterministic(enabled: bool) -> Iterator[None]:
        with deterministic_algorithms(enabled):
            torch.utils.deterministic.fill_uninitialized_memory = True  # type: ignore[attr-defined]
            yield

    monkeypatch.setattr(amvml_trainer, "deterministic_algorithms", filling_deterministic)
    filled = run(tmp_path / "filled")

    assert filling == {False, True}
    assert all(torch.equal(unfilled[name], filled[name]) for name in unfilled)


def _changed_parts(checkpoint: Path) -> set[str]:
    """Which of enc1/enc2/enc3/heads differ from a freshly (ImageNet-)initialised network."""
    fresh = new_amvml(model_config()).state_dict()
    after = load_amvml(checkpoint)[0].state_dict()
    changed = {name for name in fresh if not torch.equal(fresh[name], after[name])}
    return {name.split(".")[0] if name.startswith("enc") else "heads" for name in changed}


def test_warmup_moves_the_heads_and_leaves_the_backbone_as_imagenet_made_it(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(epochs=2, warmup_epochs=2, batch_size=8, validate_every=0)
    result = train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path / "cache", CPU, progress=False)

    assert _changed_parts(result.checkpoint) == {"heads"}
    assert all("loss_pool" in record for record in result.history)


def test_warmup_with_a_photo_branch_rate_adapts_the_photo_branch_only(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(epochs=1, warmup_epochs=1, batch_size=8, photo_branch_lr=1e-4, validate_every=0)
    result = train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path / "cache", CPU, progress=False)

    assert _changed_parts(result.checkpoint) == {"heads", "enc2"}


def test_training_resumes_across_the_end_of_the_warmup(photoset: tuple[Path, RetrievalDataset], tmp_path: Path) -> None:
    _, dataset = photoset
    common = {"warmup_epochs": 1, "batch_size": 8, "train_views": 2, "extra_negatives": 2, "validate_every": 0}
    train_amvml(
        dataset,
        tmp_path,
        model_config(),
        AMVMLTrainConfig(epochs=1, **common),
        RENDER,
        tmp_path / "c",
        CPU,
        progress=False,
    )
    result = train_amvml(
        dataset,
        tmp_path,
        model_config(),
        AMVMLTrainConfig(epochs=2, **common),
        RENDER,
        tmp_path / "c",
        CPU,
        progress=False,
    )

    assert [h["epoch"] for h in result.history] == [1, 2]
    assert "loss_pool" in result.history[0] and "loss_triplet" in result.history[1]


def test_end_to_end_epochs_train_when_retrieval_vectors_carry_the_prior(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    """The losses compare embeddings; the retrieval vectors (validation) append the view branch's prior to them."""
    _, dataset = photoset
    config = AMVMLTrainConfig(epochs=2, warmup_epochs=1, batch_size=8, train_views=2, extra_negatives=2)
    network = model_config(prior_weight=0.5)
    result = train_amvml(dataset, tmp_path, network, config, RENDER, tmp_path / "c", CPU, progress=False)

    end_to_end = result.history[1]
    assert end_to_end["loss_bank"] > 0 and np.isfinite(end_to_end["loss_total"])
    assert 0.0 <= end_to_end["val_top1"] <= 1.0 and end_to_end["val_count"] > 0


def test_textured_anchors_join_the_training_photos(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(epochs=1, warmup_epochs=1, batch_size=8, textured_anchors=True, validate_every=0)
    with caplog.at_level("INFO"):
        result = train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path / "c", CPU, progress=False)

    photos = len([q for q in dataset.split("train")])
    assert f"{len(dataset.shapes)} textured anchors join {photos} training photos" in caplog.text
    assert result.history[0]["loss_mask"] > 0, "anchors bring silhouettes: the mask head learns"


def test_end_to_end_epochs_read_only_the_named_sources_while_the_warmup_reads_all(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe can keep a source (synthetic photos, say) out of its end-to-end epochs and still warm up on it."""
    _, dataset = photoset
    merged = merge_datasets("mixed", {"real": dataset, "synthetic": dataset})
    read: dict[str, set[str]] = {}

    def sources_read(phase: str, real_epoch: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
        def spy(model: object, inputs: EpochInputs, *args: object) -> dict[str, float]:
            rows = torch.cat([batch["shape_row"] for batch in inputs.loader]).tolist()
            read[phase] = {inputs.views.shape_ids[row].split("/")[0] for row in rows}
            return real_epoch(model, inputs, *args)

        return spy

    monkeypatch.setattr(amvml_trainer, "warmup_epoch", sources_read("warm-up", amvml_trainer.warmup_epoch))
    monkeypatch.setattr(amvml_trainer, "end_to_end_epoch", sources_read("end to end", amvml_trainer.end_to_end_epoch))
    config = AMVMLTrainConfig(
        epochs=2,
        warmup_epochs=1,
        batch_size=8,
        train_views=2,
        extra_negatives=2,
        textured_anchors=True,
        end_to_end_sources=("real",),
        validate_every=0,
    )
    result = train_amvml(merged, tmp_path, model_config(), config, RENDER, tmp_path / "c", CPU, progress=False)

    assert read == {"warm-up": {"real", "synthetic"}, "end to end": {"real"}}
    assert np.isfinite(result.history[1]["loss_total"])


def test_end_to_end_sources_that_the_dataset_lacks_are_refused(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(epochs=2, warmup_epochs=1, batch_size=8, end_to_end_sources=("ikea",))
    with pytest.raises(TrainingRequestError, match="no source ikea in folder for the end-to-end epochs"):
        train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path / "c", CPU, progress=False)


def test_textured_anchors_alone_train_without_the_photos(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(
        epochs=1, warmup_epochs=1, batch_size=8, textured_anchors=True, train_on_photos=False, validate_every=0
    )
    with caplog.at_level("INFO"):
        result = train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path / "c", CPU, progress=False)

    assert f"{len(dataset.shapes)} textured anchors each epoch; the photos only lend their backgrounds" in caplog.text
    assert result.history[0]["loss_pool"] > 0


def test_training_with_neither_photos_nor_anchors_is_refused(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(train_on_photos=False)
    with pytest.raises(ValueError, match="nothing to train on"):
        train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path, CPU, progress=False)


def test_training_with_a_category_weight_is_refused(photoset: tuple[Path, RetrievalDataset], tmp_path: Path) -> None:
    _, dataset = photoset
    scoring = model_config().model_copy(update={"category_weight": 0.1, "category_names": ("a", "b", "c", "d")})
    with pytest.raises(ValueError, match="weights categories"):
        train_amvml(dataset, tmp_path, scoring, AMVMLTrainConfig(), RENDER, tmp_path, CPU, progress=False)


def test_trained_network_beats_the_untrained_one_on_top1(
    trained: Path, photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    untrained = model_config()
    torch.manual_seed(0)
    model = new_amvml(untrained)
    untrained_path = save_checkpoint(tmp_path / "untrained.safetensors", model, header_for(model))
    before = evaluate(untrained_path, dataset, tmp_path / "before", CPU, views=4, progress=False)
    after = evaluate(trained / "amvml-last.safetensors", dataset, tmp_path / "after", CPU, views=4, progress=False)
    print(f"test split Top1@R untrained {before.overall['top1']:.3f} -> trained {after.overall['top1']:.3f}")
    assert float(after.overall["top1"]) >= float(before.overall["top1"]) + 0.2  # type: ignore[arg-type]


def test_eval_writes_report_csv_and_gallery(
    trained: Path, photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    report = evaluate(trained / "amvml-last.safetensors", dataset, tmp_path, CPU, views=4, progress=False)
    data = json.loads(report.path.read_text())
    test_photos = len(dataset.split("test"))
    assert data["overall"]["count"] == test_photos and set(data["per_category"]) == {"bed", "chair", "sofa", "table"}
    for key in ("top1", "top10", "category_accuracy", "f_score"):
        assert 0.0 <= data["overall"][key] <= 1.0
    with (tmp_path / "per_photo.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == test_photos
    for row in rows:  # a correct first result is the ground truth itself: zero Chamfer distance, F-score 1
        if row["gt_rank"] == "0":
            assert float(row["chamfer"]) == 0.0 and float(row["f_score"]) == 1.0
    assert (tmp_path / "gallery.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_eval_reuses_an_index_built_with_the_same_weights(
    trained: Path, photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    weights = trained / "amvml-last.safetensors"
    evaluate(
        weights,
        dataset,
        tmp_path / "a",
        CPU,
        index_dir=tmp_path / "index",
        views=4,
        geometric=False,
        progress=False,
    )
    first = sorted(p.name for p in (tmp_path / "index").glob("v-*"))
    evaluate(
        weights,
        dataset,
        tmp_path / "b",
        CPU,
        index_dir=tmp_path / "index",
        views=4,
        geometric=False,
        progress=False,
    )
    assert sorted(p.name for p in (tmp_path / "index").glob("v-*")) == first


def test_tsm_training_saves_sample_grids_and_a_loadable_checkpoint(tmp_path: Path) -> None:
    pairs = _random_texture_pairs([0, 1, 2, 3, 0, -1], ("bed", "chair", "sofa", "table"))
    config = TSMConfig(num_categories=4, image_size=64, base_channels=8)
    path = train_tsm(pairs, tmp_path, config, TSMTrainConfig(epochs=2, batch_size=2, sample_every=2), CPU, "synthetic")
    tsm, header = load_tsm(path)
    assert tsm.config == config and header.notes["categories"] == ["bed", "chair", "sofa", "table"]
    assert header.notes["machine"] == training_machine(CPU)  # bits repeat only on the same kind of machine
    grids = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert "epoch-002.png" in grids and "step-000002.png" in grids


def test_tsm_training_shows_a_bar_of_the_steps_it_will_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = _random_texture_pairs([0, 1, 0, 1, 0, 1], ("bed", "chair"))
    config = TSMConfig(num_categories=2, image_size=64, base_channels=8)
    train_tsm(pairs, tmp_path, config, TSMTrainConfig(epochs=3, batch_size=2), CPU, "synthetic", max_steps=4)
    bar = capsys.readouterr().err
    assert "TSM steps" in bar and "4/4" in bar  # 3 epochs of 3 steps, cut at 4: the bar counts what will run
    assert torch.load(tmp_path / tsm_trainer.STATE, weights_only=False)["step"] == 4


def test_hard_triplets_train_with_a_tsm(photoset: tuple[Path, RetrievalDataset], tmp_path: Path) -> None:
    from photo2cad.models import TextureSynthesisModule

    _, dataset = photoset
    tsm = TextureSynthesisModule(TSMConfig(num_categories=4, image_size=64, base_channels=8))
    tsm_path = save_checkpoint(tmp_path / "tsm.safetensors", tsm, header_for(tsm))
    config = AMVMLTrainConfig(
        epochs=1, warmup_epochs=0, batch_size=4, train_views=2, extra_negatives=0, tsm_triplets=True, validate_every=0
    )
    result = train_amvml(
        dataset,
        tmp_path / "run",
        model_config(),
        config,
        RENDER,
        tmp_path / "cache",
        CPU,
        tsm_weights=tsm_path,
        progress=False,
    )
    assert result.history[0]["loss_tsm_triplet"] > 0


def test_tsm_triplets_without_end_to_end_epochs_are_refused(
    photoset: tuple[Path, RetrievalDataset], tmp_path: Path
) -> None:
    _, dataset = photoset
    config = AMVMLTrainConfig(epochs=2, warmup_epochs=2, tsm_triplets=True)
    with pytest.raises(ValueError, match="end-to-end epochs"):
        train_amvml(dataset, tmp_path, model_config(), config, RENDER, tmp_path, CPU, tsm_weights=tmp_path / "t")


def test_views_of_broken_shapes_are_left_out_and_reported(tmp_path: Path) -> None:
    from photo2cad.shapes.pool import ShapeRecord

    (tmp_path / "bad.obj").write_text("not a mesh")
    good = tmp_path / "good.ply"
    import trimesh

    trimesh.creation.box().export(good)
    views = render_views(
        [ShapeRecord("bad", tmp_path / "bad.obj", None), ShapeRecord("good", good, None)],
        RENDER,
        tmp_path / "c",
        progress=False,
    )
    assert views.shape_ids == ("good",) and views.failed[0][0] == "bad"
    assert views.grey.shape == (1, 4, SIZE, SIZE, 3)


def _photo_batch(size: int, rows: list[int], is_photo: list[bool]) -> dict[str, torch.Tensor]:
    count = len(rows)
    return {
        "photo": torch.rand(count, 3, size, size),
        "mask": torch.zeros(count, 1, size, size),
        "has_mask": torch.zeros(count, dtype=torch.bool),
        "shape_row": torch.tensor(rows),
        "category": torch.full((count,), -1),
        "is_photo": torch.tensor(is_photo),
    }


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_unphotographed_shapes_count_as_negatives_of_real_photos_at_their_weight(weight: float) -> None:
    from photo2cad.models.training.warmup import pool_ranking_loss

    model = new_amvml(model_config(pretrained=False)).eval()
    batch = _photo_batch(SIZE, [0, 1], [True, True])
    photographed = torch.tensor([True, True, False, False])
    pooled = torch.rand(4, 4, 320)
    other = pooled.clone()
    other[2:] = torch.rand(2, 4, 320)  # only the unphotographed shapes change
    config = AMVMLTrainConfig(unphotographed_weight=weight)
    with torch.no_grad():
        before = pool_ranking_loss(model, batch, pooled, torch.full((4,), -1), config, photographed)["pool"]
        after = pool_ranking_loss(model, batch, other, torch.full((4,), -1), config, photographed)["pool"]
    if weight == 0.0:
        assert torch.allclose(before, after)  # left out of the ranking altogether
    else:
        assert not torch.allclose(before, after)


@pytest.mark.parametrize("move", [False, True])
def test_real_photos_move_the_shape_side_only_when_asked(move: bool) -> None:
    from photo2cad.models.training.warmup import pool_ranking_loss

    model = new_amvml(model_config(pretrained=False)).train()
    config = AMVMLTrainConfig(photos_move_shapes=move)
    only_photos = _photo_batch(SIZE, [0, 1], [True, True])
    losses = pool_ranking_loss(model, only_photos, torch.rand(3, 4, 320), torch.full((3,), -1), config)
    (losses["pool"] + losses["rerank"]).backward()
    shape_side = model.view_projection.weight.grad
    assert model.photo_projection.weight.grad is not None and model.photo_projection.weight.grad.abs().sum() > 0
    assert (shape_side is not None and shape_side.abs().sum() > 0) == move


def test_another_sources_shapes_are_no_negatives_of_a_real_photo_at_weight_zero() -> None:
    from photo2cad.models.training.warmup import pool_ranking_loss

    model = new_amvml(model_config(pretrained=False)).eval()
    batch = _photo_batch(SIZE, [0, 1], [True, True])
    photographed = torch.tensor([True, True, True, True])  # every shape has photos...
    sources = torch.tensor([0, 0, 1, 1])  # ...but shapes 2 and 3 come from another dataset of the merge
    pooled = torch.rand(4, 4, 320)
    other = pooled.clone()
    other[2:] = torch.rand(2, 4, 320)
    config = AMVMLTrainConfig(unphotographed_weight=0.0)
    with torch.no_grad():
        before = pool_ranking_loss(model, batch, pooled, torch.full((4,), -1), config, photographed, sources)
        after = pool_ranking_loss(model, batch, other, torch.full((4,), -1), config, photographed, sources)
    assert torch.allclose(before["pool"], after["pool"])


def test_the_bank_term_is_computed_in_float32_under_mixed_precision() -> None:
    """On a GPU the end-to-end steps run under autocast; the bank's logits must not drop to half precision."""
    from photo2cad.models.training.epochs import bank_infonce

    photos = torch.nn.functional.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    bank = torch.nn.functional.normalize(torch.randn(10, 8), dim=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = bank_infonce(photos, photos.detach(), bank, np.array([1, 2, 3, 4]), AMVMLTrainConfig())
    loss.backward()

    assert loss.dtype == torch.float32 and photos.grad is not None and torch.isfinite(photos.grad).all()


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_the_end_to_end_bank_weights_unphotographed_negatives_of_real_photos_as_the_warmup_does(weight: float) -> None:
    from photo2cad.models.training.epochs import bank_infonce
    from photo2cad.models.training.losses import negative_log_weights

    photos = torch.nn.functional.normalize(torch.randn(2, 8), dim=1)
    bank = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    other = bank.clone()
    other[2:] = torch.nn.functional.normalize(torch.randn(2, 8), dim=1)  # only the unphotographed shapes change
    rows, photographed = np.array([0, 1]), torch.tensor([True, True, False, False])
    config = AMVMLTrainConfig(unphotographed_weight=weight)

    def loss(shapes: torch.Tensor, is_photo: list[bool]) -> torch.Tensor:
        weights = negative_log_weights(torch.tensor(is_photo), torch.from_numpy(rows), weight, photographed)
        return bank_infonce(photos, shapes[rows], shapes, rows, config, weights)

    if weight == 0.0:
        assert torch.allclose(loss(bank, [True, True]), loss(other, [True, True]))  # left out of the ranking
    else:
        assert not torch.allclose(loss(bank, [True, True]), loss(other, [True, True]))
        expected = F.cross_entropy(
            photos @ bank.T / config.temperature + torch.tensor([0, 0, 1, 1]) * math.log(weight), torch.from_numpy(rows)
        )
        assert torch.allclose(loss(bank, [True, True]), expected)
    assert not torch.allclose(loss(bank, [False, False]), loss(other, [False, False]))  # anchors rank every shape


def test_a_deterministic_gpu_run_pins_the_cublas_workspace_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    pin_cublas_workspace(True, CPU)
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    pin_cublas_workspace(True, torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    pin_cublas_workspace(True, torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
