"""The service against a stranger (issue #12, items 6, 7 and 8): secrets that cannot be empty, Host headers a
DNS-rebinding page would send, the optional API key, browser protections, and answers that name no server path."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from photo2cad.indexer import layout
from photo2cad.indexer.manifest import Manifest
from photo2cad.indexer.shape_table import ShapeEntry, ShapeTable
from photo2cad.service.app import create_app
from photo2cad.service.served_index import escaping_paths
from tests.helpers import ServedIndex, image_bytes, post_photo, rendered_photo, settings_for

API_KEY = "a-long-random-api-key-for-tests"
ADMIN_TOKEN = "a-long-random-admin-token"


@pytest.fixture(scope="module")
def client(served_index: ServedIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(served_index.root))) as test_client:
        yield test_client


# ---------------------------------------------------------------------------------------------------- secrets
@pytest.mark.parametrize("token", ["", "   ", "short"])
def test_an_empty_or_short_admin_token_is_refused_at_start(served_index: ServedIndex, token: str) -> None:
    with pytest.raises(ValidationError, match="PHOTO2CAD_ADMIN_TOKEN is set but shorter than 16 characters"):
        settings_for(served_index.root, admin_token=token)


def test_serve_with_an_empty_admin_token_exits_with_a_message(
    served_index: ServedIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photo2cad.cli import app

    monkeypatch.setenv("PHOTO2CAD_ADMIN_TOKEN", "")
    result = CliRunner().invoke(app, ["serve", "--index", str(served_index.root)])
    assert result.exit_code == 2 and "PHOTO2CAD_ADMIN_TOKEN is set but shorter than 16" in result.output


def test_a_refused_secret_is_not_printed_back(served_index: ServedIndex) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_for(served_index.root, api_key="hunter2-secret")
    assert "hunter2-secret" not in str(refused.value)


# ---------------------------------------------------------------------------------------------------- hosts
def test_a_host_header_other_than_a_loopback_name_is_400(client: TestClient) -> None:
    response = client.get("/shapes/chair/box/mesh", headers={"Host": "attacker.example:8000"})
    assert response.status_code == 400 and response.text == "Invalid host header"


def test_health_probes_answer_whatever_the_host(client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        assert client.get(path, headers={"Host": "10.1.2.3:8000"}).status_code == 200


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "testserver"])
def test_loopback_host_names_are_answered(client: TestClient, host: str) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_the_default_trusted_hosts_are_the_loopback_names_and_a_specific_bind_address(
    served_index: ServedIndex,
) -> None:
    from photo2cad.service.settings import ServiceSettings

    assert ServiceSettings(index=served_index.root).trusted_hosts() == ["localhost", "127.0.0.1", "[::1]"]
    exposed = ServiceSettings(index=served_index.root, host="192.0.2.7", allowed_hosts="cad.example.com")
    assert exposed.trusted_hosts() == ["cad.example.com", "192.0.2.7"]


# ---------------------------------------------------------------------------------------------------- API key
@pytest.fixture(scope="module")
def keyed_client(served_index: ServedIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(served_index.root, api_key=API_KEY))) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/shapes/chair/box", "/shapes/chair/box/mesh", "/shapes/chair/box/thumbnail"])
def test_with_an_api_key_the_shapes_need_it(keyed_client: TestClient, path: str) -> None:
    refused = keyed_client.get(path)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    assert keyed_client.get(path, headers={"X-API-Key": "wrong" + API_KEY}).status_code == 401
    assert keyed_client.get(path, headers={"X-API-Key": API_KEY}).status_code == 200


def test_with_an_api_key_retrieval_needs_it(keyed_client: TestClient, served_index: ServedIndex) -> None:
    photo = rendered_photo(served_index.root)
    assert post_photo(keyed_client, photo).status_code == 401
    # The key is asked before anything else is judged: a keyless client learns nothing of the options.
    assert keyed_client.post("/retrieve?top_k=2", files={"photo": ("p.jpg", photo, "image/jpeg")}).status_code == 401
    keyed = keyed_client.post(
        "/retrieve", files={"photo": ("p.jpg", photo, "image/jpeg")}, headers={"X-API-Key": API_KEY}
    )
    assert keyed.status_code == 200


def test_with_an_api_key_health_and_the_page_stay_open(keyed_client: TestClient) -> None:
    assert keyed_client.get("/healthz").status_code == 200 and keyed_client.get("/").status_code == 200
    assert keyed_client.get("/index").json()["api_key_required"] is True


def test_without_an_api_key_nothing_asks_for_one(client: TestClient) -> None:
    assert client.get("/shapes/chair/box").status_code == 200
    assert client.get("/index").json()["api_key_required"] is False


# ---------------------------------------------------------------------------------------------------- headers
@pytest.mark.parametrize("path", ["/", "/healthz", "/shapes/chair/box/thumbnail", "/static/page.js", "/nothing"])
def test_every_answer_forbids_sniffing_and_framing_and_sets_a_content_security_policy(
    client: TestClient, path: str
) -> None:
    headers = client.get(path).headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    if path == "/":
        assert "script-src 'self';" in policy  # the page's script is a file of its own: no inline script runs


# ---------------------------------------------------------------------------------------------------- no paths
def test_index_names_the_weights_file_but_not_its_directory(client: TestClient, served_index: ServedIndex) -> None:
    body = client.get("/index").json()
    assert body["weights"]["file_name"] == served_index.weights.name
    assert str(served_index.weights.parent) not in json.dumps(body)


def test_a_misnamed_upload_field_is_422_without_echoing_the_upload(client: TestClient) -> None:
    response = client.post("/retrieve", files={"image": ("holiday.jpg", image_bytes((64, 64), "JPEG"), "image/jpeg")})
    assert response.status_code == 422
    problems = {(tuple(item["loc"]), item["msg"]) for item in response.json()["detail"]}
    assert (("body", "photo"), "Field required") in problems
    assert (("body", "image"), "Extra inputs are not permitted") in problems
    for internal in ("holiday.jpg", "UploadFile", "headers", "size"):
        assert internal not in response.text


@pytest.fixture
def admin_client(served_index: ServedIndex, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    root = tmp_path / "index"
    shutil.copytree(served_index.root, root, symlinks=True)
    with TestClient(create_app(settings_for(root, admin_token=ADMIN_TOKEN))) as test_client:
        yield test_client, root


def publish_with_manifest_change(root: Path, shape_id: str, source_path: str) -> str:
    current = layout.current_version(root)
    name = layout.new_version_name() + "-escaping"
    version = root / name
    shutil.copytree(current, version)
    manifest = Manifest.read(version)
    entries = [
        entry.model_copy(update={"source_path": source_path}) if entry.shape_id == shape_id else entry
        for entry in manifest.shapes
    ]
    manifest.model_copy(update={"version": name, "shapes": ShapeTable.from_entries(entries)}).write(version)
    layout.publish(root, version)
    return name


@pytest.mark.parametrize("escaping", ["../../../etc/passwd", "/etc/passwd"])
def test_reload_refuses_a_manifest_whose_mesh_paths_leave_the_pool(
    admin_client: tuple[TestClient, Path], escaping: str
) -> None:
    client, root = admin_client
    before = client.get("/readyz").json()["index_version"]
    publish_with_manifest_change(root, "chair/box", escaping)
    response = client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 409
    assert f"the mesh path of 'chair/box' leaves its directory: {escaping!r}" in response.json()["detail"]
    assert client.get("/readyz").json()["index_version"] == before
    assert str(root) not in response.text and str(root.resolve()) not in response.text


def test_escaping_paths_names_every_path_that_leaves_and_no_other() -> None:
    leaving = ["../x.obj", "a/../../x.obj", "/abs/x.obj", "C:/x.obj", "c:x.obj", "\\\\server\\share\\x.obj", ".."]
    staying = ["chair/a..b.obj", "chair/x.obj", "sofa/t:1/x.obj", "...", "table/x..", "x"]
    paths = [*staying, *leaving, *staying]  # leaving paths between others: rows are told apart by their offsets
    entries = [
        ShapeEntry(shape_id=f"s{i}", source_path=path, category=None, checksum="0", thumbnail=f"thumbnails/{i}.jpg")
        for i, path in enumerate(paths)
    ]
    manifest = Manifest.model_construct(shapes=ShapeTable.from_entries(entries))

    problems = escaping_paths(manifest)

    named = sorted(problem.split(": ", 1)[1] for problem in problems)
    assert named == sorted(repr(path) for path in leaving)
