"""One checkpoint format: safetensors + JSON header; loading refuses what the running code cannot rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from photo2cad.models import AMVML, AMVMLConfig, TextureSynthesisModule, TSMConfig, vector_dim
from photo2cad.models.amvml import probe_width
from photo2cad.weights.checkpoint import (
    HEADER_KEY,
    CheckpointError,
    header_for,
    load_amvml,
    load_tsm,
    read_header,
    save_checkpoint,
    set_category_probe,
    set_category_weight,
    set_prior_weight,
)

RENDERER = {"views": 12, "elevation": 14.0, "distance": 3.3, "fov": 56.0, "size": 224}


@pytest.fixture(scope="module")
def small_amvml() -> AMVML:
    return AMVML(AMVMLConfig(backbone="efficientnet_lite0", pretrained=False, embedding_dim=32)).eval()


@pytest.fixture
def saved_amvml(tmp_path: Path, small_amvml: AMVML) -> Path:
    header = header_for(small_amvml, training_data="unit-test", renderer=RENDERER, notes={"epochs": 0})
    return save_checkpoint(tmp_path / "amvml.safetensors", small_amvml, header)


def test_round_trip_gives_the_same_tensors_and_embeddings(saved_amvml: Path, small_amvml: AMVML) -> None:
    loaded, header = load_amvml(saved_amvml)
    for name, tensor in small_amvml.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    views = torch.rand(1, 2, 3, 224, 224)
    with torch.no_grad():
        # The loaded network computes in NHWC, the saved one in NCHW: other kernels, the same numbers up to rounding.
        assert torch.allclose(loaded.embed_views(views).embedding, small_amvml.embed_views(views).embedding, atol=1e-5)
    assert not loaded.training


def test_a_loaded_network_computes_in_nhwc_and_saves_the_same_file_as_in_nchw(
    saved_amvml: Path, tmp_path: Path
) -> None:
    loaded, header = load_amvml(saved_amvml)
    convolutions = [m for m in loaded.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convolutions)
    saved_again = save_checkpoint(tmp_path / "again.safetensors", loaded, header)
    assert load_file(saved_again).keys() == load_file(saved_amvml).keys()
    for name, tensor in load_file(saved_amvml).items():
        assert torch.equal(load_file(saved_again)[name], tensor), name


def test_header_records_architecture_config_renderer_data_version_and_date(saved_amvml: Path) -> None:
    header = read_header(saved_amvml)
    assert header.architecture == "amvml"
    assert header.config["backbone"] == "efficientnet_lite0"
    assert header.embedding_dim == 32
    assert header.renderer == RENDERER
    assert header.training_data == "unit-test"
    assert header.photo2cad_version and header.created_at.year >= 2024
    assert header.notes == {"epochs": 0}


def test_a_prior_set_after_training_is_recorded_in_the_header_and_changes_no_tensor(
    saved_amvml: Path, tmp_path: Path
) -> None:
    model, header = load_amvml(saved_amvml)
    with_prior = save_checkpoint(tmp_path / "with-prior.safetensors", model, set_prior_weight(model, header, 0.6))
    assert read_header(with_prior).config == {**header.config, "prior_weight": 0.6, "prior_stages": 3}
    assert load_amvml(with_prior)[0].config.prior_weight == 0.6
    assert load_file(str(with_prior)).keys() == load_file(str(saved_amvml)).keys()


def test_a_category_weight_takes_the_heads_classes_from_the_header(saved_amvml: Path, tmp_path: Path) -> None:
    model, header = load_amvml(saved_amvml)
    with pytest.raises(CheckpointError, match="notes.categories"):
        set_category_weight(model, header, 0.1)  # the header does not say what the heads' classes are
    named = header.model_copy(update={"notes": {**header.notes, "categories": ["bed", "chair", "sofa", "table"]}})
    scoring = save_checkpoint(tmp_path / "scoring.safetensors", model, set_category_weight(model, named, 0.1))
    config = load_amvml(scoring)[0].config
    assert config.category_weight == 0.1 and config.category_names == ("bed", "chair", "sofa", "table")
    assert vector_dim(config) == 32 + 5  # the embedding, then the four classes and "other"


def test_a_category_probe_is_stored_with_the_weights_and_leaves_with_the_category_weight(
    saved_amvml: Path, tmp_path: Path
) -> None:
    model, header = load_amvml(saved_amvml)
    probe = torch.nn.Linear(probe_width(model.config), 4)
    with pytest.raises(CheckpointError, match="set a category weight first"):
        set_category_probe(model, header, probe)
    named = header.model_copy(update={"notes": {**header.notes, "categories": ["bed", "chair", "sofa", "table"]}})
    scoring = set_category_weight(model, named, 0.1)
    with pytest.raises(CheckpointError, match="this network needs"):
        set_category_probe(model, scoring, torch.nn.Linear(10, 4))

    probing = save_checkpoint(
        tmp_path / "probing.safetensors", model, set_category_probe(model, scoring, probe, {"photos": 12})
    )

    loaded, loaded_header = load_amvml(probing)
    assert loaded.config.category_probe and loaded_header.notes["category_probe"] == {"photos": 12}
    assert loaded.category_probe is not None and torch.equal(loaded.category_probe.weight, probe.weight)
    photos = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.embed_photo(photos).vector, model.embed_photo(photos).vector, atol=1e-6)
    plain = set_category_weight(loaded, loaded_header, 0.0)  # no category term: nothing for the probe to say
    assert loaded.category_probe is None and not plain.config["category_probe"] and "category_probe" not in plain.notes
    stored = load_file(str(save_checkpoint(tmp_path / "plain.safetensors", loaded, plain)))
    assert "category_probe.weight" not in stored and stored.keys() == load_file(str(saved_amvml)).keys()


def test_a_checkpoint_written_before_prior_stages_keeps_its_c5_prior(saved_amvml: Path, tmp_path: Path) -> None:
    model, header = load_amvml(saved_amvml)
    old_config = {k: v for k, v in set_prior_weight(model, header, 0.6).config.items() if k != "prior_stages"}
    old = tmp_path / "old.safetensors"
    old_header = header.model_copy(update={"config": old_config}).model_dump_json()
    save_file(load_file(str(saved_amvml)), str(old), metadata={HEADER_KEY: old_header})
    loaded, _ = load_amvml(old)
    assert (loaded.config.prior_weight, loaded.config.prior_stages) == (0.6, 1)
    assert vector_dim(loaded.config) == 32 + 320


def test_tsm_round_trip(tmp_path: Path) -> None:
    tsm = TextureSynthesisModule(TSMConfig(num_categories=0, image_size=64, base_channels=8))
    path = save_checkpoint(tmp_path / "tsm.safetensors", tsm, header_for(tsm))
    loaded, header = load_tsm(path)
    assert header.architecture == "tsm" and loaded.config == tsm.config
    for name, tensor in tsm.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_loading_a_tsm_as_amvml_is_refused(tmp_path: Path) -> None:
    tsm = TextureSynthesisModule(TSMConfig(num_categories=0, image_size=64, base_channels=8))
    path = save_checkpoint(tmp_path / "tsm.safetensors", tsm, header_for(tsm))
    with pytest.raises(CheckpointError, match="holds a tsm network, not amvml"):
        load_amvml(path)


def _rewrite(path: Path, edit_header=None, edit_tensors=None) -> None:  # type: ignore[no-untyped-def]
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()["photo2cad"])
    tensors = load_file(str(path))
    if edit_header:
        edit_header(header)
    if edit_tensors:
        edit_tensors(tensors)
    save_file(tensors, str(path), metadata={"photo2cad": json.dumps(header)})


def test_a_tensor_of_another_shape_is_named_in_the_error(saved_amvml: Path) -> None:
    def widen(tensors: dict[str, torch.Tensor]) -> None:
        tensors["photo_projection.weight"] = torch.zeros(64, 320)

    _rewrite(saved_amvml, edit_tensors=widen)
    with pytest.raises(CheckpointError, match=r"photo_projection.weight: checkpoint \(64, 320\) vs code \(32, 320\)"):
        load_amvml(saved_amvml)


def test_a_missing_tensor_is_named_in_the_error(saved_amvml: Path) -> None:
    _rewrite(saved_amvml, edit_tensors=lambda tensors: tensors.pop("upernet.classifier.bias"))
    with pytest.raises(CheckpointError, match="missing.*upernet.classifier.bias"):
        load_amvml(saved_amvml)


def test_an_unknown_config_field_is_refused(saved_amvml: Path) -> None:
    _rewrite(saved_amvml, edit_header=lambda h: h["config"].update(attention_heads=8))
    with pytest.raises(CheckpointError, match="config this code does not understand"):
        load_amvml(saved_amvml)


def test_an_older_architecture_version_is_refused(saved_amvml: Path) -> None:
    _rewrite(saved_amvml, edit_header=lambda h: h.update(architecture_version=0))
    with pytest.raises(CheckpointError, match="architecture version 0"):
        load_amvml(saved_amvml)


def test_a_newer_file_format_is_refused(saved_amvml: Path) -> None:
    _rewrite(saved_amvml, edit_header=lambda h: h.update(format_version=99))
    with pytest.raises(CheckpointError, match="format 99"):
        read_header(saved_amvml)


def test_a_file_without_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="no photo2cad header"):
        read_header(path)


def test_a_file_that_is_not_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        read_header(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        read_header(tmp_path / "nowhere.safetensors")


def test_saving_leaves_no_partial_file(saved_amvml: Path) -> None:
    assert [p.name for p in saved_amvml.parent.iterdir()] == ["amvml.safetensors"]


def test_a_half_precision_checkpoint_loads_into_float32(tmp_path: Path, small_amvml: AMVML) -> None:
    path = save_checkpoint(tmp_path / "half.safetensors", small_amvml, header_for(small_amvml), half=True)
    full = save_checkpoint(tmp_path / "full.safetensors", small_amvml, header_for(small_amvml))
    assert path.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_amvml(path)
    assert loaded.photo_projection.weight.dtype == torch.float32
    views = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        a, b = loaded.embed_views(views).embedding, small_amvml.embed_views(views).embedding
    assert torch.allclose(a, b, atol=2e-2)
