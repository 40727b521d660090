"""Index hot reload: a new version is validated and swapped in without dropping requests; a broken one is refused
and the old one keeps serving."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from photo2cad.indexer import build_index, layout
from photo2cad.indexer.runner import update_request
from photo2cad.indexer.vector_search import SearchConfig
from photo2cad.service.app import create_app
from tests.helpers import ServedIndex, metric, post_photo, rendered_photo, settings_for

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def index_root(served_index: ServedIndex, tmp_path: Path) -> Path:  # noqa: F811
    """A private copy of the served index: these tests move its `current` pointer."""
    root = tmp_path / "index"
    shutil.copytree(served_index.root, root, symlinks=True)
    return root


def publish_copy(root: Path, change: Callable[[Path], None] | None = None, source: str | None = None) -> str:
    """Publish a copy of the current (or `source`) version under a new name, optionally changed (broken) first."""
    current = root / source if source else layout.current_version(root)
    name = layout.new_version_name() + "-copy"
    version = root / name
    shutil.copytree(current, version)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["version"] = name
    (version / "manifest.json").write_text(json.dumps(manifest))
    if change is not None:
        change(version)
    layout.publish(root, version)
    return name


def serving_version(client: TestClient) -> str:
    return str(client.get("/readyz").json()["index_version"])


def wait_for_version(client: TestClient, version: str, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if serving_version(client) == version:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def admin_client(index_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(index_root, admin_token=TOKEN))) as client:
        yield client


def test_the_watcher_swaps_in_a_version_published_by_index_update(index_root: Path) -> None:
    with TestClient(create_app(settings_for(index_root, reload_poll_seconds=0.1))) as client:
        before = serving_version(client)
        # An update publishes only what changes: here how the vectors are searched (no rendering).
        report = build_index(update_request(index_root, progress=False, search=SearchConfig(kind="hnsw")))
        assert report.reused == 8 and report.version_dir.name != before
        assert wait_for_version(client, report.version_dir.name)
        assert post_photo(client, rendered_photo(index_root)).json()["index_version"] == report.version_dir.name


def test_admin_reload_swaps_at_once_and_says_what_changed(admin_client: TestClient, index_root: Path) -> None:
    before = serving_version(admin_client)
    new = publish_copy(index_root)
    response = admin_client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "outcome": "reloaded",
        "version": new,
        "previous_version": before,
        "candidate": new,
        "problems": [],
    }
    assert serving_version(admin_client) == new
    assert admin_client.post("/admin/reload", headers=AUTH).json()["outcome"] == "unchanged"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_admin_reload_needs_the_bearer_token(admin_client: TestClient, headers: dict[str, str]) -> None:
    response = admin_client.post("/admin/reload", headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def lose_thumbnails(version: Path) -> None:
    shutil.rmtree(version / layout.THUMBNAILS)


def truncate_vectors(version: Path) -> None:
    np.save(version / layout.VECTORS, np.zeros((3, 32), np.float32))


def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(admin_client: TestClient, index_root: Path) -> None:
    before = serving_version(admin_client)
    broken = publish_copy(index_root, lose_thumbnails)
    response = admin_client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 409
    assert response.json()["detail"] == f"version {broken} refused, still serving {before}: 8 thumbnails missing, " + (
        "e.g. ['bed/flat_box', 'bed/torus', 'chair/box']"
    )
    assert serving_version(admin_client) == before
    assert post_photo(admin_client, rendered_photo(index_root / before), top_k=1).status_code == 200
    assert metric(admin_client.get("/metrics").text, "photo2cad_index_reloads_total", outcome="refused") == 1


def test_a_version_that_crashes_validation_is_refused(admin_client: TestClient, index_root: Path) -> None:
    before = serving_version(admin_client)
    publish_copy(index_root, truncate_vectors)
    assert admin_client.post("/admin/reload", headers=AUTH).status_code == 409
    assert serving_version(admin_client) == before


def test_a_version_built_with_other_weights_is_refused(admin_client: TestClient, index_root: Path) -> None:
    def other_weights(version: Path) -> None:
        manifest = json.loads((version / "manifest.json").read_text())
        manifest["weights"]["sha256"] = "0" * 64
        (version / "manifest.json").write_text(json.dumps(manifest))

    publish_copy(index_root, other_weights)
    response = admin_client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 409 and "not those index" in response.json()["detail"]


def test_a_dangling_current_pointer_is_refused(admin_client: TestClient, index_root: Path) -> None:
    before = serving_version(admin_client)
    (index_root / layout.CURRENT).unlink()
    (index_root / layout.CURRENT).symlink_to("v-gone")
    response = admin_client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 409 and "does not exist" in response.json()["detail"]
    assert serving_version(admin_client) == before


def test_the_watcher_refuses_a_broken_version_once_and_keeps_serving(index_root: Path) -> None:
    with TestClient(create_app(settings_for(index_root, reload_poll_seconds=0.05))) as client:
        before = serving_version(client)
        publish_copy(index_root, lose_thumbnails)

        def refusals() -> float:
            return metric(client.get("/metrics").text, "photo2cad_index_reloads_total", outcome="refused")

        deadline = time.monotonic() + 10
        while refusals() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # ten more polls of the same broken version
        assert refusals() == 1
        assert serving_version(client) == before
        fixed = publish_copy(index_root, source=before)  # the next good version is taken
        assert wait_for_version(client, fixed)


def test_requests_in_flight_during_reloads_all_succeed(admin_client: TestClient, index_root: Path) -> None:
    photo = rendered_photo(index_root)
    versions = {serving_version(admin_client)}
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            response = post_photo(admin_client, photo, top_k=3)
            answers.append((response.status_code, response.json().get("index_version", response.text)))

    clients = [threading.Thread(target=keep_asking) for _ in range(4)]
    for thread in clients:
        thread.start()
    for _ in range(4):
        versions.add(publish_copy(index_root))
        assert admin_client.post("/admin/reload", headers=AUTH).json()["outcome"] == "reloaded"
        time.sleep(0.1)
    stop.set()
    for thread in clients:
        thread.join()
    assert len(answers) >= 4
    assert {status for status, _ in answers} == {200}
    assert {version for _, version in answers} <= versions
