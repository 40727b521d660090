"""Several photos at once (issue #12, item 13): POST /retrieve/batch, and `photo2cad query` ranking photos without a
server through the same Retriever; plus the mesh downloads the results link to (item 11)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from photo2cad.service.app import create_app
from tests.helpers import ServedIndex, image_bytes, post_photo, rendered_photo, settings_for


@pytest.fixture(scope="module")
def client(served_index: ServedIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(served_index.root))) as test_client:
        yield test_client


def ranking(answer: dict[str, object]) -> list[tuple[str, float]]:
    return [(r["shape_id"], round(r["score"], 5)) for r in answer["results"]]  # type: ignore[index,attr-defined]


# ---------------------------------------------------------------------------------------------------- batch route
def test_a_batch_ranks_each_photo_as_retrieve_does(client: TestClient, served_index: ServedIndex) -> None:
    photos = [rendered_photo(served_index.root, shape) for shape in ("chair/box", "table/cone", "bed/torus")]
    files = [("photos", (f"{i}.jpg", photo, "image/jpeg")) for i, photo in enumerate(photos)]
    response = client.post("/retrieve/batch", files=files, data={"top_k": "4"})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["filename"] for item in items] == ["0.jpg", "1.jpg", "2.jpg"]
    for item, photo in zip(items, photos, strict=True):
        assert item["status"] == 200 and item["detail"] is None
        assert ranking(item["answer"]) == ranking(post_photo(client, photo, top_k=4).json())


def test_a_refused_photo_in_a_batch_does_not_fail_the_others(client: TestClient, served_index: ServedIndex) -> None:
    files = [
        ("photos", ("good.jpg", rendered_photo(served_index.root), "image/jpeg")),
        ("photos", ("notes.txt", b"not a picture", "text/plain")),
        ("photos", ("tiny.png", image_bytes((1, 1)), "image/png")),
    ]
    items = client.post("/retrieve/batch", files=files).json()["items"]
    assert [item["status"] for item in items] == [200, 415, 400]
    assert items[1]["detail"] == "the photo is not a JPEG, PNG, WebP, HEIC or AVIF image" and items[1]["answer"] is None


def test_a_batch_over_the_limit_is_400(served_index: ServedIndex) -> None:
    with TestClient(create_app(settings_for(served_index.root, max_batch_photos=2))) as limited:
        files = [("photos", (f"{i}.png", image_bytes((64, 64)), "image/png")) for i in range(3)]
        response = limited.post("/retrieve/batch", files=files)
    assert response.status_code == 400 and "PHOTO2CAD_MAX_BATCH_PHOTOS" in response.json()["detail"]


# ---------------------------------------------------------------------------------------------------- query command
def test_query_ranks_photos_without_a_server_as_the_service_does(
    client: TestClient, served_index: ServedIndex, tmp_path: Path
) -> None:
    from photo2cad.cli import app

    paths = []
    for shape in ("chair/box", "sofa/capsule"):
        path = tmp_path / f"{shape.replace('/', '-')}.jpg"
        path.write_bytes(rendered_photo(served_index.root, shape))
        paths.append(path)
    result = CliRunner().invoke(
        app, ["query", *map(str, paths), "--index", str(served_index.root), "--top-k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert [item["filename"] for item in answer["items"]] == [str(p) for p in paths]
    for item, path in zip(answer["items"], paths, strict=True):
        assert ranking(item["answer"]) == ranking(post_photo(client, path.read_bytes(), top_k=3).json())


def test_query_prints_a_table_and_reports_a_bad_photo_without_losing_the_others(
    served_index: ServedIndex, tmp_path: Path
) -> None:
    from photo2cad.cli import app

    good, bad, missing = tmp_path / "good.jpg", tmp_path / "bad.png", tmp_path / "missing.jpg"
    good.write_bytes(rendered_photo(served_index.root))
    bad.write_text("not a picture")
    result = CliRunner().invoke(app, ["query", str(good), str(bad), str(missing), "--index", str(served_index.root)])
    assert result.exit_code == 1
    assert f"{good}  (index " in result.stdout and "    1  " in result.stdout
    assert f"{bad}: refused (415): the photo is not a JPEG" in result.stderr
    assert f"{missing}: refused (400): cannot read {missing}" in result.stderr


def test_query_takes_a_mask_and_a_box_per_photo_as_the_api_does(
    client: TestClient, served_index: ServedIndex, tmp_path: Path
) -> None:
    from photo2cad.cli import app

    photo_bytes = rendered_photo(served_index.root, "chair/box")
    photo, mask_path = tmp_path / "chair.jpg", tmp_path / "chair-mask.png"
    photo.write_bytes(photo_bytes)
    with Image.open(photo) as opened:
        width, height = opened.size
    mask = Image.new("L", (width, height), 0)
    mask.paste(1, (width // 4, height // 4, 3 * width // 4, 3 * height // 4))  # 0/1: non-zero is object
    mask.save(mask_path)
    box = f"{width // 8},{height // 8},{3 * width // 4},{3 * height // 4}"
    args = ["query", str(photo), "--index", str(served_index.root), "--top-k", "5", "--json"]

    result = CliRunner().invoke(app, [*args, "--mask", str(mask_path), "--box", box])

    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["items"]
    expected = post_photo(client, photo_bytes, mask_path.read_bytes(), top_k=5, box=box).json()
    assert ranking(item["answer"]) == ranking(expected)
    plain = post_photo(client, photo_bytes, top_k=5).json()
    assert [r["score"] for r in item["answer"]["results"]] != [r["score"] for r in plain["results"]]  # they acted


def test_query_refuses_masks_or_boxes_that_do_not_pair_with_the_photos(
    served_index: ServedIndex, tmp_path: Path
) -> None:
    from photo2cad.cli import app

    photos = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for path in photos:
        path.write_bytes(rendered_photo(served_index.root))
    args = ["query", *map(str, photos), "--index", str(served_index.root)]

    one_box = CliRunner().invoke(app, [*args, "--box", "0,0,10,10"])
    bad_box = CliRunner().invoke(app, [*args, "--box", "0,0,10,10", "--box", "1,2,3"])

    assert one_box.exit_code == 2 and "1 --box for 2 photos: give one per photo, in order" in one_box.output
    assert bad_box.exit_code == 2 and "box must be four non-negative integers" in bad_box.output


# ---------------------------------------------------------------------------------------------------- downloads
def test_results_say_the_mesh_format_and_link_a_glb(client: TestClient, served_index: ServedIndex) -> None:
    first = post_photo(client, rendered_photo(served_index.root), top_k=1).json()["results"][0]
    assert first["mesh_format"] == "obj" and first["glb_url"] == f"/shapes/{first['shape_id']}/glb"


def test_the_glb_download_keeps_an_obj_s_materials(tmp_path: Path) -> None:
    from photo2cad.service.shape_files import glb_bytes

    folder = tmp_path / "lamp"
    folder.mkdir()
    box = trimesh.creation.box()
    box.visual = trimesh.visual.TextureVisuals(
        uv=box.vertices[:, :2] * 0.5 + 0.5,
        material=trimesh.visual.material.SimpleMaterial(diffuse=(200, 30, 30, 255)),
    )
    box.export(folder / "model.obj")  # writes model.obj and material.mtl beside it
    assert (folder / "material.mtl").is_file()
    scene = trimesh.load(io.BytesIO(glb_bytes(folder / "model.obj")), file_type="glb")
    (geometry,) = scene.geometry.values()
    assert tuple(geometry.visual.material.main_color[:3]) == (200, 30, 30)


def test_the_glb_route_answers_a_binary_gltf(client: TestClient) -> None:
    response = client.get("/shapes/chair/box/glb")
    assert response.status_code == 200 and response.headers["content-type"] == "model/gltf-binary"
    assert response.content[:4] == b"glTF" and 'filename="box.glb"' in response.headers["content-disposition"]
