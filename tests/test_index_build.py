"""Building, resuming, updating and verifying an index directory on CPU."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from photo2cad.cli import app
from photo2cad.indexer import (
    BuildError,
    BuildRequest,
    build_index,
    layout,
    open_index,
    runner,
    verify_index,
    verify_version,
)
from photo2cad.indexer.mapper import StageTimes
from photo2cad.indexer.runner import update_request
from photo2cad.indexer.shards import Shard
from photo2cad.indexer.vector_search import SearchConfig, VectorSearch, ivf_lists_for
from photo2cad.shapes.pool import ShapeRecord, scan_pool
from photo2cad.shapes.settings import RenderSettings
from tests.helpers import recording_entries
from tests.meshpool import write_pool

SETTINGS = RenderSettings(num_views=4, embed_size=64)


def request_for(pool: Path, out: Path, weights: Path, **overrides: object) -> BuildRequest:
    return BuildRequest(pool=pool, out=out, weights=weights, render=SETTINGS, progress=False, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("built")
    pool, out = root / "pool", root / "index"
    write_pool(pool)
    build_index(request_for(pool, out, tiny_weights, batch_size=3))
    return pool, out


def test_every_format_is_indexed_and_the_corrupt_file_is_reported(built: tuple[Path, Path]) -> None:
    _, out = built
    manifest = open_index(out).manifest
    suffixes = {Path(e.source_path).suffix for e in manifest.shapes}
    assert suffixes == {".obj", ".glb", ".gltf", ".ply", ".stl", ".off"}
    assert manifest.counts.shapes == 8
    assert [Path(f.source_path).name for f in manifest.failures] == ["broken.obj"]
    assert manifest.failures[0].reason and "broken.obj" not in manifest.failures[0].reason  # the path is said once


def test_manifest_records_renderer_weights_and_categories(built: tuple[Path, Path], tiny_weights: Path) -> None:
    _, out = built
    manifest = open_index(out).manifest
    assert manifest.render == SETTINGS and manifest.render_identity == SETTINGS.identity()
    assert manifest.weights.backbone == "efficientnet_lite0" and len(manifest.weights.sha256) == 64
    assert {e.category for e in manifest.shapes} == {"bed", "chair", "sofa", "table"}
    assert all(len(e.checksum) == 64 for e in manifest.shapes)


def test_each_shape_finds_itself_first(built: tuple[Path, Path]) -> None:
    index = open_index(built[1])
    hits = index.search(index.vectors, k=3)
    assert [h[0].row for h in hits] == list(range(index.size))
    assert index.view_embeddings.shape == (8, 4, 32)


def test_category_filter_ranks_only_that_category(built: tuple[Path, Path]) -> None:
    index = open_index(built[1])
    hits = index.search(index.vectors[:1], k=10, category="table")
    assert len(hits[0]) == 2
    assert {index.manifest.shapes[h.row].category for h in hits[0]} == {"table"}


def test_thumbnails_are_jpegs(built: tuple[Path, Path]) -> None:
    index = open_index(built[1])
    for entry in index.manifest.shapes:
        assert (index.directory / entry.thumbnail).read_bytes()[:2] == b"\xff\xd8"


def test_a_fresh_index_verifies(built: tuple[Path, Path]) -> None:
    assert verify_index(built[1]) == []


def test_verify_reports_a_changed_source(tmp_path: Path, tiny_weights: Path) -> None:
    pool, out = tmp_path / "pool", tmp_path / "index"
    paths = write_pool(pool, count=3, corrupt=False)
    build_index(request_for(pool, out, tiny_weights))
    with paths["chair/box"].open("ab") as handle:
        handle.write(b"\n# edited\n")
    problems = verify_index(out)
    assert len(problems) == 1 and "chair/box changed" in problems[0]


def test_update_after_adding_changing_and_deleting_equals_a_fresh_build(tmp_path: Path, tiny_weights: Path) -> None:
    pool, out, fresh = tmp_path / "pool", tmp_path / "index", tmp_path / "fresh"
    paths = write_pool(pool, count=6, corrupt=False)
    build_index(request_for(pool, out, tiny_weights))
    paths["chair/box"].unlink()  # deleted
    paths["table/cone"].unlink()  # changed: same name, other geometry
    import trimesh

    trimesh.creation.cone(radius=0.3, height=3.0).export(paths["table/cone"])
    trimesh.creation.annulus(r_min=0.5, r_max=1.0, height=0.5).export(pool / "table" / "ring.stl")  # added
    report = build_index(update_request(out, progress=False))
    assert (report.embedded_now, report.reused) == (2, 4)
    build_index(request_for(pool, fresh, tiny_weights))
    updated, rebuilt = open_index(out), open_index(fresh)
    assert [e.shape_id for e in updated.manifest.shapes] == [e.shape_id for e in rebuilt.manifest.shapes]
    assert [e.checksum for e in updated.manifest.shapes] == [e.checksum for e in rebuilt.manifest.shapes]
    np.testing.assert_allclose(updated.vectors, rebuilt.vectors, atol=1e-5)


def test_a_failed_build_leaves_the_published_index_serving(tmp_path: Path, tiny_weights: Path) -> None:
    pool, out = tmp_path / "pool", tmp_path / "index"
    write_pool(pool, count=2, corrupt=False)
    build_index(request_for(pool, out, tiny_weights))
    before = layout.current_version(out)
    broken_pool = tmp_path / "broken"
    (broken_pool / "chair").mkdir(parents=True)
    (broken_pool / "chair" / "bad.ply").write_bytes(b"ply\nnonsense")
    with pytest.raises(BuildError, match="no shape"):
        build_index(request_for(broken_pool, out, tiny_weights, resume=False))
    assert layout.current_version(out) == before
    assert verify_index(out) == []


@pytest.mark.parametrize(("cpu_runtime", "heap_kept"), [("torch", True), ("onnxruntime", False)])
def test_pytorch_on_a_cpu_embeds_with_the_heap_kept_for_reuse_and_onnx_runtime_with_glibc_defaults(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, cpu_runtime: str, heap_kept: bool
) -> None:
    """PyTorch's activations stay in glibc's heap from batch to batch (docs/indexing.md); ONNX Runtime has its own
    arena, so its builds leave the heap as it is."""
    entered: list[str] = []
    monkeypatch.setattr(runner, "heap_kept_for_reuse", recording_entries(entered, cpu_runtime))
    pool = tmp_path / "pool"
    write_pool(pool, count=2, corrupt=False)
    report = build_index(request_for(pool, tmp_path / "index", tiny_weights, device="cpu", cpu_runtime=cpu_runtime))

    assert report.embedded_now == 2
    assert entered == ([cpu_runtime] if heap_kept else [])


@pytest.mark.parametrize(("cpu_runtime", "heap_kept"), [("torch", True), ("onnxruntime", False)])
def test_a_ray_embedding_actor_makes_the_local_builds_heap_choice_once_for_its_whole_life(
    tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, cpu_runtime: str, heap_kept: bool
) -> None:
    from photo2cad.indexer.distributed import EmbedActor  # Ray itself is not needed to make one

    entered: list[str] = []
    monkeypatch.setattr(runner, "heap_kept_for_reuse", recording_entries(entered, cpu_runtime))
    actor = EmbedActor(str(tiny_weights), cpu_runtime)
    size = SETTINGS.embed_size
    batch = {
        "shape_id": np.array(["a", "b"]),
        "failure": np.array(["", ""]),
        "category": np.array(["chair", ""]),
        "grey": np.random.default_rng(0).integers(0, 256, (2, SETTINGS.num_views, size, size, 3), dtype=np.uint8),
    }
    for _ in range(2):  # batch after batch in the same heap
        out = actor(batch)
        assert out["vector"].shape[0] == 2 and np.isfinite(out["vector"]).all() and "grey" not in out

    assert entered == ([cpu_runtime] if heap_kept else [])


def test_weights_for_another_view_size_are_refused(tmp_path: Path, tiny_weights: Path) -> None:
    pool = tmp_path / "pool"
    write_pool(pool, count=1, corrupt=False)
    request = BuildRequest(pool=pool, out=tmp_path / "i", weights=tiny_weights, render=RenderSettings(), progress=False)
    with pytest.raises(BuildError, match="64 px views but the renderer makes 224 px"):
        build_index(request)


def test_a_killed_build_resumes_without_redoing_finished_shapes(tmp_path: Path, tiny_weights: Path) -> None:
    pool, out = tmp_path / "pool", tmp_path / "index"
    write_pool(pool, count=24, corrupt=False)
    command = [sys.executable, "-m", "photo2cad.cli", "index", "build", str(pool), "--out", str(out)]
    command += ["--weights", str(tiny_weights), "--views", "4", "--batch-size", "2", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = out / layout.BUILD_DIR / "shards"
    deadline = time.monotonic() + 120
    while len(list(shards.glob("shard-*.npz"))) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(shards.glob("shard-*.npz")))
    assert 2 <= done_before < 12 and not layout.has_index(out)
    report = build_index(request_for(pool, out, tiny_weights, batch_size=2))
    assert report.resumed == 2 * done_before
    assert report.embedded_now == 24 - 2 * done_before
    assert report.shapes == 24 and verify_index(out) == []


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_report_their_recall(
    built: tuple[Path, Path], tiny_weights: Path, tmp_path: Path, kind: str
) -> None:
    pool, _ = built
    report = build_index(request_for(pool, tmp_path / kind, tiny_weights, search=SearchConfig(kind=kind)))
    assert report.recall_at_10 is not None and 0.0 <= report.recall_at_10 <= 1.0
    assert open_index(tmp_path / kind).manifest.approximate_recall_at_10 == report.recall_at_10


def test_cli_build_info_verify(tmp_path: Path, tiny_weights: Path) -> None:
    pool, out = tmp_path / "pool", tmp_path / "index"
    write_pool(pool, count=3)
    runner = CliRunner()
    args = ["index", "build", str(pool), "--out", str(out), "--weights", str(tiny_weights), "--views", "4"]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "3 shapes" in result.output and "skipped" in result.output and "broken.obj" in result.output
    info = runner.invoke(app, ["index", "info", str(out)])
    assert info.exit_code == 0 and json.loads(info.output)["shapes"] == 3
    assert runner.invoke(app, ["index", "verify", str(out)]).output.strip() == "ok"


def test_cli_on_a_directory_without_index_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["index", "info", str(tmp_path)])
    assert result.exit_code == 2 and "holds no index" in result.output


def test_verify_reports_vectors_shorter_than_the_manifest(tmp_path: Path, tiny_weights: Path) -> None:
    pool, out = tmp_path / "pool", tmp_path / "index"
    write_pool(pool, count=3, corrupt=False)
    build_index(request_for(pool, out, tiny_weights))
    version = layout.current_version(out)
    vectors = np.load(version / layout.VECTORS)
    np.save(version / layout.VECTORS, vectors[:1])
    problems = verify_index(out)
    assert problems and "shape vectors are (1, 32)" in problems[0]


def no_rendering(*args: object) -> Iterator[tuple[Shard, StageTimes]]:
    raise AssertionError("this build must not render or embed anything")


def fresh_index(tmp_path: Path, weights: Path, count: int, corrupt: bool = False) -> tuple[Path, Path, dict[str, Path]]:
    """(pool, index directory, shape_id -> file) of a pool of `count` test shapes, built once."""
    pool, out = tmp_path / "pool", tmp_path / "index"
    paths = write_pool(pool, count=count, corrupt=corrupt)
    build_index(request_for(pool, out, weights))
    return pool, out, paths


def unit_vectors(count: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_changing_the_index_kind_reindexes_the_stored_vectors_without_rendering(
    tmp_path: Path, tiny_weights: Path
) -> None:
    pool, out, _ = fresh_index(tmp_path, tiny_weights, count=6)
    before = open_index(out)

    report = build_index(
        request_for(pool, out, tiny_weights, search=SearchConfig(kind="hnsw")), distributor=no_rendering
    )

    after = open_index(out)
    assert report.published and (report.embedded_now, report.reused) == (0, 6)
    assert after.manifest.index_kind == "hnsw" and after.name != before.name
    np.testing.assert_array_equal(after.vectors, before.vectors)
    np.testing.assert_array_equal(after.view_embeddings, before.view_embeddings)


def test_an_update_with_nothing_changed_publishes_nothing_and_says_so(tmp_path: Path, tiny_weights: Path) -> None:
    _, out, _ = fresh_index(tmp_path, tiny_weights, count=4, corrupt=True)  # the broken file fails again alike
    before = layout.current_version(out)

    report = build_index(update_request(out, progress=False))
    result = CliRunner().invoke(app, ["index", "update", str(out), "--no-progress"])

    assert not report.published and report.version_dir == before and report.shapes == 4
    assert result.exit_code == 0 and "nothing changed" in result.output and "no new version" in result.output
    assert layout.current_version(out) == before
    assert [p.name for p in layout.versions_newest_first(out)] == [before.name]


def test_pruning_never_deletes_a_version_a_server_has_open(tmp_path: Path, tiny_weights: Path) -> None:
    pool, out = tmp_path / "pool", tmp_path / "index"
    paths = write_pool(pool, count=3, corrupt=False)
    build_index(request_for(pool, out, tiny_weights, keep_versions=1))
    served = open_index(out)  # what a running service holds
    for round_ in range(2):
        with paths["chair/box"].open("ab") as handle:
            handle.write(f"\n# edit {round_}\n".encode())
        build_index(update_request(out, progress=False, keep_versions=1))

    assert served.directory.is_dir() and served.search(served.vectors[:1], 1)[0][0].row == 0
    assert len(layout.versions_newest_first(out)) == 2  # the served one and the current one
    served.lease.release()
    assert layout.prune_versions(out, keep=1) == [served.directory]


def test_pruning_keeps_the_newest_version_that_still_validates(tmp_path: Path, tiny_weights: Path) -> None:
    from photo2cad.indexer import verify_version

    _, out, paths = fresh_index(tmp_path, tiny_weights, count=3)
    good = layout.current_version(out)
    with paths["chair/box"].open("ab") as handle:
        handle.write(b"\n# edited\n")
    build_index(update_request(out, progress=False))
    broken = layout.current_version(out)
    shutil.rmtree(broken / layout.THUMBNAILS)

    removed = layout.prune_versions(out, keep=0, validates=lambda v: not verify_version(v, check_sources=False))

    assert removed == [] and good.is_dir() and broken.is_dir()


def test_ivf_lists_follow_the_pool_size() -> None:
    assert ivf_lists_for(100) == 2  # at least 39 shapes per list
    assert ivf_lists_for(10_000) == 256
    assert ivf_lists_for(1_000_000) == 4000  # 4 sqrt(N)


def test_an_ivf_build_tunes_its_probe_to_the_target_recall_and_index_info_shows_it(
    tmp_path: Path, tiny_weights: Path
) -> None:
    pool, out, _ = fresh_index(tmp_path, tiny_weights, count=8)
    vectors = unit_vectors(4000, 32, seed=0)

    search = VectorSearch.build(vectors, SearchConfig(kind="ivf", target_recall=0.9))

    assert search.params["lists"] == ivf_lists_for(4000)
    assert search.params["recall_at_10"] >= 0.9
    assert 1 <= search.params["probe"] <= search.params["lists"]
    report = build_index(
        request_for(pool, out, tiny_weights, search=SearchConfig(kind="ivf")), distributor=no_rendering
    )
    info = json.loads(CliRunner().invoke(app, ["index", "info", str(out)]).output)
    assert info["approximate_recall_at_10"] == report.recall_at_10 and info["index_params"]["lists"] == 1


def test_an_approximate_index_below_its_target_recall_says_so(caplog: pytest.LogCaptureFixture) -> None:
    vectors = unit_vectors(4000, 32, seed=0)  # no structure: one probed list of 64 finds few true neighbours

    with caplog.at_level(logging.WARNING, logger="photo2cad.indexer.vector_search"):
        search = VectorSearch.build(vectors, SearchConfig(kind="ivf", ivf_lists=64, ivf_probe=1))

    assert search.params["recall_at_10"] < 0.95
    assert "below the target 0.95" in caplog.text


def test_an_hnsw_index_that_needs_a_wide_search_recommends_ivf(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photo2cad.indexer import vector_search

    vectors = unit_vectors(3000, 16, seed=1)
    with caplog.at_level(logging.WARNING, logger="photo2cad.indexer.vector_search"):
        VectorSearch.build(vectors, SearchConfig(kind="hnsw"))
        assert caplog.text == ""  # tuned, within the target, at a breadth of a few dozen
        monkeypatch.setattr(vector_search, "SLOW_HNSW_EF", 16)  # any tuned breadth counts as wide now
        search = VectorSearch.build(vectors, SearchConfig(kind="hnsw"))

    assert search.params["recall_at_10"] >= 0.95
    assert f"needed ef_search {search.params['ef_search']}" in caplog.text and "--index-kind ivf" in caplog.text


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_a_category_filter_on_an_approximate_index_ranks_only_that_category(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photo2cad.indexer import vector_search

    monkeypatch.setattr(vector_search, "EXACT_RANGE_ROWS", 10)  # make the range large enough for the index path
    vectors = unit_vectors(3000, 16, seed=1)
    search = VectorSearch.build(vectors, SearchConfig(kind=kind))  # type: ignore[arg-type]

    scores, rows = search.search(vectors[:5], 10, rows=(1000, 2000))

    assert ((rows >= 1000) & (rows < 2000)).all()
    _, exact = VectorSearch(vectors, "exact").search(vectors[:5], 10, rows=(1000, 2000))
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact, strict=True)]) >= 0.8


def test_categories_are_contiguous_rows_and_ids_are_found_by_bisection(built: tuple[Path, Path]) -> None:
    index = open_index(built[1])
    for category, rows in index.rows_by_category.items():
        assert list(rows) == list(range(rows[0], rows[-1] + 1))
        assert {index.manifest.shapes[int(r)].category for r in rows} == {category}
    for row, entry in enumerate(index.manifest.shapes):
        assert index.find_entry(entry.shape_id) == entry and index.manifest.shapes.row_of(entry.shape_id) == row
    assert index.find_entry("chair/no_such_shape") is None


def test_a_version_written_before_the_shapes_table_still_opens_and_serves(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    current = open_index(built[1])
    old = tmp_path / "old-version"
    shutil.copytree(current.directory, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 1
    manifest["shapes"] = [entry.model_dump() for entry in current.manifest.shapes]
    (old / "manifest.json").write_text(json.dumps(manifest))
    (old / "shapes.npz").unlink()

    reopened = open_index(old)

    assert [e.shape_id for e in reopened.manifest.shapes] == [e.shape_id for e in current.manifest.shapes]
    assert reopened.search(reopened.vectors[:2], 1)[0][0].row == 0
    assert verify_version(old, check_sources=False) == []


def test_a_pool_reached_through_a_symlinked_folder_indexes_like_any_other(tmp_path: Path, tiny_weights: Path) -> None:
    disk = tmp_path / "other-disk" / "catalogue"
    write_pool(disk, count=3, corrupt=False)
    linked = tmp_path / "pool"
    linked.symlink_to(disk)

    report = build_index(request_for(linked, tmp_path / "index", tiny_weights))

    assert report.shapes == 3 and report.failures == []
    index = open_index(tmp_path / "index")
    assert Path(index.manifest.pool_root) == disk.resolve()
    assert {e.source_path for e in index.manifest.shapes} == {
        "chair/box.obj",
        "chair/tall_box.glb",
        "table/cylinder.ply",
    }
    assert verify_index(tmp_path / "index") == []


def test_shapes_whose_files_lie_outside_the_pool_are_refused_before_any_rendering(
    tmp_path: Path, tiny_weights: Path
) -> None:
    pool, elsewhere = tmp_path / "pool", tmp_path / "elsewhere"
    write_pool(pool, count=2, corrupt=False)
    paths = write_pool(elsewhere, count=1, corrupt=False)
    (pool / "chair" / "linked.obj").symlink_to(paths["chair/box"])
    shapes = (ShapeRecord("chair/linked", pool / "chair" / "linked.obj", "chair"), *scan_pool(pool).shapes)

    with pytest.raises(BuildError, match=r"1 shape files lie outside the pool .*linked\.obj"):
        build_index(request_for(pool, tmp_path / "index", tiny_weights, shapes=shapes), distributor=no_rendering)


@pytest.mark.parametrize("problem", ["pool is a file", "out is a file"])
def test_build_errors_reach_the_user_as_one_line_and_exit_code_2(
    tmp_path: Path, tiny_weights: Path, problem: str
) -> None:
    pool, out = tmp_path / "pool", tmp_path / "index"
    write_pool(pool, count=1, corrupt=False)
    if problem == "pool is a file":
        pool = tmp_path / "notes.txt"
        pool.write_text("not a folder")
    else:
        out.write_text("a file where the index should go")
    args = ["index", "build", str(pool), "--out", str(out), "--weights", str(tiny_weights), "--views", "4"]

    result = CliRunner().invoke(app, [*args, "--no-progress"])

    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert "Traceback" not in result.output
