"""The retrieval service over HTTP (issue #4): what POST /retrieve answers, the shape routes, operations endpoints,
and how every kind of bad input is refused while the service keeps serving."""

from __future__ import annotations

import io
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from photo2cad.indexer import open_index
from photo2cad.models.preprocess import mask_to_tensor, photo_to_tensor
from photo2cad.service.app import create_app, plan_startup
from photo2cad.service.errors import ServiceConfigError
from photo2cad.weights.checkpoint import load_amvml
from tests.helpers import (
    ServedIndex,
    image_bytes,
    index_test_meshes,
    metric,
    png_header_only,
    post_photo,
    rendered_photo,
    settings_for,
)


# ---------------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client(served_index: ServedIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(served_index.root))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tiny_model(tiny_weights: Path) -> Any:
    model, _ = load_amvml(tiny_weights, "cpu")
    return model


# ---------------------------------------------------------------------------------------------------------- retrieve
def test_retrieve_answers_ranked_shapes_with_urls_version_and_stage_times(
    client: TestClient, served_index: ServedIndex
) -> None:
    response = post_photo(client, rendered_photo(served_index.root), top_k=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["index_version"] == open_index(served_index.root).manifest.version
    assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    first = body["results"][0]
    assert first["thumbnail_url"] == f"/shapes/{first['shape_id']}/thumbnail"
    assert first["mesh_url"] == f"/shapes/{first['shape_id']}/mesh"
    assert first["category"] == first["shape_id"].split("/")[0]
    timings = body["timings"]
    stages = ("decode_wait", "decode", "preprocess", "queue", "encode", "search", "rerank")
    assert all(timings[f"{stage}_ms"] >= 0 for stage in stages)
    assert timings["total_ms"] >= timings["encode_ms"] > 0
    assert body["reranked"] is False and body["batch_size"] >= 1


def test_top_k_defaults_to_ten_and_is_capped_by_the_index_size(client: TestClient, served_index: ServedIndex) -> None:
    body = post_photo(client, rendered_photo(served_index.root)).json()
    assert len(body["results"]) == 8  # 10 asked by default, 8 shapes indexed


def test_ranking_equals_the_encoder_and_index_used_directly(
    client: TestClient, served_index: ServedIndex, tiny_model: Any
) -> None:
    photo = image_bytes((120, 90), colour=(90, 140, 200))
    index = open_index(served_index.root)
    with torch.inference_mode():
        tensor = photo_to_tensor(Image.open(io.BytesIO(photo)), tiny_model.config.image_size).unsqueeze(0)
        query = tiny_model.embed_photo(tensor).embedding.numpy()
    expected = [index.manifest.shapes[hit.row].shape_id for hit in index.search(query, 8)[0]]
    body = post_photo(client, photo, top_k=8).json()
    assert [r["shape_id"] for r in body["results"]] == expected


def test_a_mask_weights_the_pooling_instead_of_the_predicted_mask(
    client: TestClient, served_index: ServedIndex, tiny_model: Any
) -> None:
    photo = image_bytes((100, 100), colour=(30, 160, 90))
    mask_image = Image.new("L", (100, 100), 0)
    mask_image.paste(255, (20, 20, 60, 60))
    buffer = io.BytesIO()
    mask_image.save(buffer, format="PNG")
    size = tiny_model.config.image_size
    with torch.inference_mode():
        tensor = photo_to_tensor(Image.open(io.BytesIO(photo)), size).unsqueeze(0)
        query = tiny_model.embed_photo(tensor, mask_to_tensor(mask_image, size).unsqueeze(0)).embedding.numpy()
    index = open_index(served_index.root)
    expected = [round(hit.score, 4) for hit in index.search(query, 8)[0]]
    body = post_photo(client, photo, mask=buffer.getvalue(), top_k=8).json()
    assert [round(r["score"], 4) for r in body["results"]] == expected


def test_category_filter_ranks_only_that_category(client: TestClient, served_index: ServedIndex) -> None:
    body = post_photo(client, rendered_photo(served_index.root), category="table").json()
    assert {r["category"] for r in body["results"]} == {"table"}
    assert len(body["results"]) == 2


def test_rerank_rescores_the_candidates_with_view_attention(
    client: TestClient, served_index: ServedIndex, tiny_model: Any
) -> None:
    photo = image_bytes((96, 96), colour=(240, 240, 240))
    body = post_photo(client, photo, top_k=1, rerank="true").json()
    assert body["reranked"] is True and body["timings"]["rerank_ms"] > 0
    index = open_index(served_index.root)
    with torch.inference_mode():
        tensor = photo_to_tensor(Image.open(io.BytesIO(photo)), tiny_model.config.image_size).unsqueeze(0)
        query = tiny_model.embed_photo(tensor).embedding
        # top_k 1 x rerank_factor 5 = the 5 best search candidates are re-scored
        rows = [hit.row for hit in index.search(query.numpy(), 5)[0]]
        views = torch.from_numpy(np.asarray(index.view_embeddings[rows], dtype=np.float32))
        scores = tiny_model.rerank_scores(query, views)[0].numpy()
    best = rows[int(np.argmax(scores))]
    assert body["results"][0]["shape_id"] == index.manifest.shapes[best].shape_id
    assert body["results"][0]["score"] == pytest.approx(float(scores.max()), abs=1e-4)


def test_a_webp_photo_is_accepted(client: TestClient) -> None:
    assert post_photo(client, image_bytes((80, 80), "WEBP"), top_k=1).status_code == 200


# ---------------------------------------------------------------------------------------------------------- bad input
def refusal(response: Any) -> tuple[int, str]:
    detail = response.json()["detail"]
    return response.status_code, detail if isinstance(detail, str) else str(detail)


def test_a_request_without_photo_is_422_naming_the_field(client: TestClient) -> None:
    status, detail = refusal(client.post("/retrieve", data={"top_k": "3"}))
    assert status == 422 and "'photo'" in detail and "Field required" in detail


@pytest.mark.parametrize("path", ["/retrieve", "/retrieve/batch"])
def test_an_option_in_the_url_is_422_naming_the_form_field_it_belongs_in(client: TestClient, path: str) -> None:
    # Ignored, `?top_k=2` would answer the default ten shapes as if it had been read.
    files = {"photo" if path == "/retrieve" else "photos": ("p.png", image_bytes((64, 64), "PNG"), "image/png")}
    response = client.post(f"{path}?top_k=2&colour=red", files=files)
    assert response.status_code == 422
    problems = {(tuple(item["loc"]), item["msg"]) for item in response.json()["detail"]}
    assert problems == {
        (("query", "top_k"), "not a URL parameter: send top_k as a form field"),
        (("query", "colour"), "Extra inputs are not permitted (the options are form fields)"),
    }


def test_an_empty_request_body_is_422_naming_the_photo(client: TestClient) -> None:
    status, detail = refusal(client.post("/retrieve", content=b""))
    assert status == 422 and "'photo'" in detail and "Field required" in detail


def test_an_empty_photo_is_400(client: TestClient) -> None:
    assert refusal(post_photo(client, b"")) == (400, "the photo is empty (0 bytes)")


def test_bytes_that_are_no_image_are_415(client: TestClient) -> None:
    assert refusal(post_photo(client, b"just some text, no picture")) == (
        415,
        "the photo is not a JPEG, PNG, WebP, HEIC or AVIF image",
    )


def test_an_unsupported_image_format_is_415_naming_it(client: TestClient) -> None:
    assert refusal(post_photo(client, image_bytes((64, 64), "GIF", mode="P", colour=3))) == (
        415,
        "the photo is a GIF image; send a JPEG, PNG, WebP, HEIC or AVIF image",
    )


def test_a_truncated_jpeg_is_400(client: TestClient) -> None:
    photo = image_bytes((400, 300), "JPEG")
    status, detail = refusal(post_photo(client, photo[: len(photo) // 2]))
    assert status == 400 and detail.startswith("the photo is truncated or corrupt")


def test_a_decompression_bomb_is_413_before_decoding(client: TestClient) -> None:
    bomb = png_header_only(8_000, 8_000)  # 64 megapixels declared in 100 bytes; decoding it would fail (400)
    pillow_limit = Image.MAX_IMAGE_PIXELS
    assert refusal(post_photo(client, bomb)) == (
        413,
        "the photo is 8000 x 8000 = 64,000,000 pixels, more than the limit of 40,000,000 "
        "(PHOTO2CAD_MAX_IMAGE_PIXELS); send a smaller image",
    )
    assert pillow_limit == Image.MAX_IMAGE_PIXELS  # the service's limit is its own, not Pillow's global


def test_the_pixel_limit_is_a_setting(served_index: ServedIndex) -> None:
    settings = settings_for(served_index.root, max_image_pixels=100 * 100)
    with TestClient(create_app(settings)) as small_client:
        assert post_photo(small_client, image_bytes((100, 100))).status_code == 200
        assert refusal(post_photo(small_client, image_bytes((101, 100)))) == (
            413,
            "the photo is 101 x 100 = 10,100 pixels, more than the limit of 10,000 (PHOTO2CAD_MAX_IMAGE_PIXELS); "
            "send a smaller image",
        )


def test_a_one_pixel_image_is_400(client: TestClient) -> None:
    assert refusal(post_photo(client, image_bytes((1, 1)))) == (
        400,
        "the photo is 1 x 1 px; its shorter side must be at least 32 px",
    )


def test_a_20000_pixel_square_image_is_413(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000), 1).save(buffer, format="PNG")  # a real image, 50 KB on disk
    assert refusal(post_photo(client, buffer.getvalue())) == (
        413,
        "the photo has 400,000,000 pixels, more than the limit of 40,000,000 (PHOTO2CAD_MAX_IMAGE_PIXELS); "
        "send a smaller image",
    )


def test_an_extremely_elongated_image_is_400(client: TestClient) -> None:
    status, detail = refusal(post_photo(client, image_bytes((2000, 40))))
    assert status == 400 and "more elongated than 10:1" in detail


def test_a_mask_of_another_size_than_the_photo_is_400(client: TestClient) -> None:
    response = post_photo(client, image_bytes((100, 80)), mask=image_bytes((80, 100), mode="L", colour=255))
    assert refusal(response) == (
        400,
        "the mask is 80 x 100 px but the photo is 100 x 80 px; they must be the same size",
    )


def test_mask_and_photo_sizes_are_compared_as_displayed_after_exif_rotation(client: TestClient) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed portrait: a phone held upright
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (90, 90, 90)).save(buffer, format="JPEG", exif=exif)
    upright_mask = image_bytes((80, 120), mode="L", colour=255)
    stored_mask = image_bytes((120, 80), mode="L", colour=255)
    assert post_photo(client, buffer.getvalue(), mask=upright_mask, top_k=1).status_code == 200
    assert refusal(post_photo(client, buffer.getvalue(), mask=stored_mask)) == (
        400,
        "the mask is 120 x 80 px but the photo is 80 x 120 px; they must be the same size",
    )


def test_a_large_jpeg_is_decoded_at_a_reduced_scale() -> None:
    from photo2cad.service.images import ImageLimits, draft_for, load_upright, open_image

    opened = open_image(image_bytes((2048, 1536), "JPEG"), "photo", ImageLimits(40_000_000, 32, 10.0))
    draft_for(opened, 256)
    assert opened.upright_size == (2048, 1536)
    assert opened.decode_pixels == 256 * 192  # known before decoding
    assert load_upright(opened).size == (256, 192)  # the decoder's 1/8 scale, still 256 px on the longer side


@pytest.mark.parametrize("top_k", [0, 10**6])
def test_top_k_out_of_1_to_100_is_422(client: TestClient, top_k: int) -> None:
    status, detail = refusal(post_photo(client, image_bytes((64, 64)), top_k=top_k))
    assert status == 422 and "top_k" in detail


def test_an_unknown_category_is_400_naming_the_known_ones(client: TestClient) -> None:
    assert refusal(post_photo(client, image_bytes((64, 64)), category="lamp")) == (
        400,
        "unknown category 'lamp'; the index knows: bed, chair, sofa, table",
    )


def test_an_upload_over_20_mb_is_413(client: TestClient) -> None:
    huge = b"\xff\xd8" + bytes(20 * 2**20)
    status, detail = refusal(post_photo(client, huge))
    assert status == 413 and detail.startswith("the request body is larger than the limit of 20,971,520 bytes (20 MB")


def test_an_upload_without_content_length_is_cut_off_at_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to refuse up front
        boundary = b'--x\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
        yield boundary
        for _ in range(21):
            yield bytes(2**20)

    response = client.post("/retrieve", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413 and "PHOTO2CAD_MAX_UPLOAD_BYTES" in response.json()["detail"]


def test_the_service_keeps_serving_after_bad_input(client: TestClient, served_index: ServedIndex) -> None:
    for bad in (b"", b"text", png_header_only(50_000, 50_000), image_bytes((1, 1))):
        assert 400 <= post_photo(client, bad).status_code < 500
    assert post_photo(client, rendered_photo(served_index.root), top_k=2).status_code == 200


# ---------------------------------------------------------------------------------------------------------- shapes
def test_shape_info_takes_ids_with_slashes(client: TestClient) -> None:
    response = client.get("/shapes/chair/box")
    assert response.status_code == 200
    body = response.json()
    assert body["shape_id"] == "chair/box" and body["category"] == "chair"
    assert body["source_path"] == "chair/box.obj" and len(body["checksum"]) == 64


def test_thumbnail_is_the_indexed_jpeg(client: TestClient, served_index: ServedIndex) -> None:
    response = client.get("/shapes/chair/box/thumbnail")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == rendered_photo(served_index.root, "chair/box")


def test_mesh_is_the_pool_file(client: TestClient, served_index: ServedIndex) -> None:
    response = client.get("/shapes/table/cylinder/mesh")
    assert response.status_code == 200
    source = open_index(served_index.root).manifest.shapes
    path = next(served_index.pool / e.source_path for e in source if e.shape_id == "table/cylinder")
    assert response.content == path.read_bytes()
    assert path.name in response.headers["content-disposition"]


@pytest.mark.parametrize("path", ["/shapes/chair/nothing", "/shapes/chair/nothing/thumbnail", "/shapes/x/mesh"])
def test_an_unknown_shape_is_404(client: TestClient, path: str) -> None:
    status, detail = refusal(client.get(path))
    assert status == 404 and "no shape" in detail


def test_dot_dot_in_a_shape_path_reaches_no_file(client: TestClient) -> None:
    for path in ("/shapes/../../etc/passwd/mesh", "/shapes/%2e%2e/%2e%2e/etc/passwd/mesh"):
        assert client.get(path).status_code == 404


def test_a_mesh_that_resolves_outside_the_pool_is_refused_without_naming_a_directory(
    client: TestClient, served_index: ServedIndex, tmp_path: Path
) -> None:
    mesh = served_index.pool / "chair" / "box.obj"
    kept = tmp_path / "box.obj"
    shutil.move(mesh, kept)
    (tmp_path / "secret.obj").write_text("v 0 0 0\n")
    mesh.symlink_to(tmp_path / "secret.obj")  # a link planted in the pool after indexing
    try:
        status, detail = refusal(client.get("/shapes/chair/box/mesh"))
    finally:
        mesh.unlink()
        shutil.move(kept, mesh)
    assert status == 403 and "outside" in detail
    assert str(served_index.pool) not in detail and str(tmp_path) not in detail  # issue #12: no server path


# ---------------------------------------------------------------------------------------------------------- operations
def test_healthz_says_ok(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_names_the_loaded_index(client: TestClient, served_index: ServedIndex) -> None:
    body = client.get("/readyz").json()
    assert body["ready"] is True and body["shapes"] == 8 and body["device"] == "cpu"
    assert body["index_version"] == open_index(served_index.root).manifest.version


def test_readyz_is_503_before_the_lifespan_has_loaded(served_index: ServedIndex) -> None:
    unstarted = TestClient(create_app(settings_for(served_index.root)))  # no `with`: no lifespan
    assert unstarted.get("/readyz").status_code == 503
    assert unstarted.get("/healthz").status_code == 200


def test_index_lists_categories_and_the_serving_weights(client: TestClient, served_index: ServedIndex) -> None:
    body = client.get("/index").json()
    assert [c["name"] for c in body["categories"]] == ["bed", "chair", "sofa", "table"]
    assert body["weights"]["matches_index"] is True and body["image_size"] == 64


def test_metrics_count_requests_by_route_and_status_and_time_each_stage(
    client: TestClient, served_index: ServedIndex
) -> None:
    before = client.get("/metrics").text
    post_photo(client, rendered_photo(served_index.root))
    post_photo(client, b"")
    client.get("/shapes/chair/box")
    after = client.get("/metrics").text
    for route, status in (("/retrieve", "200"), ("/retrieve", "400"), ("/shapes/{shape_id:path}", "200")):
        key = {"method": "GET" if route.startswith("/shapes") else "POST", "route": route, "status": status}
        assert (
            metric(after, "photo2cad_http_requests_total", **key)
            == metric(before, "photo2cad_http_requests_total", **key) + 1
        )
    for stage in ("decode_wait", "decode", "preprocess", "queue", "encode", "search", "rerank", "total"):
        assert metric(after, "photo2cad_retrieve_stage_seconds_count", stage=stage) >= 1
    assert metric(after, "photo2cad_index_shapes") == 8
    assert metric(after, "photo2cad_encoder_batch_size_count") >= 1


def test_the_page_and_its_script_and_style_come_from_the_service_itself(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sorted(assets) == ["static/page.css", "static/page.js"]  # relative: nothing fetched off-host
    for asset in assets:
        body = client.get(f"/{asset}")
        assert body.status_code == 200 and not re.search(r"https?://", body.text)


def test_the_openapi_document_describes_requests_and_responses(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"RetrieveForm", "RetrieveResponse", "RankedShape", "StageTimings", "ShapeInfo", "ErrorMessage"} <= set(
        schemas
    )
    retrieve = document["paths"]["/retrieve"]["post"]
    assert {"200", "400", "413", "415", "422"} <= set(retrieve["responses"])
    assert list(retrieve["requestBody"]["content"]) == ["multipart/form-data"]
    assert schemas["RetrieveForm"]["properties"]["top_k"]["maximum"] == 100


def test_admin_reload_does_not_exist_without_a_token(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 404


def threads_a_new_thread_gets() -> int:
    # torch's count is per thread once a thread has used it; a new thread shows the process-wide setting.
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    return seen[0]


def test_the_encoder_thread_count_holds_while_serving_and_is_restored_after(served_index: ServedIndex) -> None:
    before = threads_a_new_thread_gets()
    with TestClient(create_app(settings_for(served_index.root, torch_threads=before + 1))):
        assert threads_a_new_thread_gets() == before + 1
    assert threads_a_new_thread_gets() == before


# ---------------------------------------------------------------------------------------------------------- weights
@pytest.fixture(scope="module")
def other_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from photo2cad.models import AMVML, AMVMLConfig
    from photo2cad.weights.checkpoint import header_for, save_checkpoint

    config = AMVMLConfig(backbone="efficientnet_lite0", pretrained=False, image_size=64, embedding_dim=32, num_views=4)
    torch.manual_seed(1)
    model = AMVML(config)
    return save_checkpoint(tmp_path_factory.mktemp("other") / "other.safetensors", model, header_for(model))


def test_default_weights_are_the_ones_the_index_was_built_with(served_index: ServedIndex) -> None:
    assert plan_startup(settings_for(served_index.root)).weights == served_index.weights


def test_weights_other_than_the_index_s_are_refused(served_index: ServedIndex, other_weights: Path) -> None:
    with pytest.raises(ServiceConfigError, match="not those index .* was built with .*--allow-weights-mismatch"):
        plan_startup(settings_for(served_index.root, weights=other_weights))


def test_other_weights_serve_when_the_mismatch_is_allowed(served_index: ServedIndex, other_weights: Path) -> None:
    settings = settings_for(served_index.root, weights=other_weights, allow_weights_mismatch=True)
    with TestClient(create_app(settings)) as mismatched:
        assert mismatched.get("/index").json()["weights"]["matches_index"] is False
        assert post_photo(mismatched, image_bytes((64, 64)), top_k=1).status_code == 200


def test_serve_command_refuses_mismatched_weights_with_a_message(
    served_index: ServedIndex, other_weights: Path
) -> None:
    from photo2cad.cli import app

    result = CliRunner().invoke(app, ["serve", "--index", str(served_index.root), "--weights", str(other_weights)])
    assert result.exit_code == 2
    assert "error: the weights (sha256" in result.output and "--allow-weights-mismatch" in result.output


def test_serve_command_on_a_directory_without_index_says_so(tmp_path: Path) -> None:
    from photo2cad.cli import app

    result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path)])
    assert result.exit_code == 2 and "holds no index" in result.output


# ---------------------------------------------------------------------------------------------------------- prior
@pytest.fixture(scope="module")
def prior_index(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> ServedIndex:
    """The test meshes indexed with the tiny weights carrying a prior (config prior_weight 0.5)."""
    from photo2cad.weights.checkpoint import save_checkpoint, set_prior_weight

    base = tmp_path_factory.mktemp("prior-index")
    model, header = load_amvml(tiny_weights, "cpu")
    weights = save_checkpoint(base / "prior.safetensors", model, set_prior_weight(model, header, 0.5))
    return index_test_meshes(base, weights)


def test_weights_with_a_prior_index_longer_vectors_and_serve_them_with_re_ranking(prior_index: ServedIndex) -> None:
    index = open_index(prior_index.root)
    model, _ = load_amvml(prior_index.weights, "cpu")
    assert model.config.prior_weight == 0.5
    assert index.manifest.embedding_dim == index.vectors.shape[1] == 32 + 40 + 112 + 320  # Lite0's C3, C4, C5
    assert index.view_embeddings.shape[2] == 32
    photo = image_bytes((96, 96), colour=(240, 240, 240))
    with torch.inference_mode():
        tensor = photo_to_tensor(Image.open(io.BytesIO(photo)), model.config.image_size).unsqueeze(0)
        query = model.embed_photo(tensor).vector
        rows = np.array([hit.row for hit in index.search(query.numpy(), 5)[0]])
        views, vectors = torch.from_numpy(index.view_embeddings_of(rows)), torch.from_numpy(index.vectors_of(rows))
        scores = model.rerank_scores(query, views, vectors)[0].numpy()
    with TestClient(create_app(settings_for(prior_index.root, weights=prior_index.weights))) as client:
        plain = post_photo(client, photo, top_k=5).json()
        reranked = post_photo(client, photo, top_k=1, rerank="true").json()
    assert [r["shape_id"] for r in plain["results"]] == [index.manifest.shapes[row].shape_id for row in rows]
    assert reranked["results"][0]["shape_id"] == index.manifest.shapes[rows[int(np.argmax(scores))]].shape_id
    assert reranked["results"][0]["score"] == pytest.approx(float(scores.max()), abs=1e-4)


# ----------------------------------------------------------------------------------------------------- categories
@pytest.fixture(scope="module")
def category_index(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> ServedIndex:
    """The test meshes indexed with the tiny weights scoring categories (category_weight 0.3; heads untrained)."""
    from photo2cad.weights.checkpoint import save_checkpoint, set_category_weight

    base = tmp_path_factory.mktemp("category-index")
    model, header = load_amvml(tiny_weights, "cpu")
    named = header.model_copy(update={"notes": {**header.notes, "categories": ["bed", "chair", "lamp", "table"]}})
    weights = save_checkpoint(base / "categories.safetensors", model, set_category_weight(model, named, 0.3))
    return index_test_meshes(base, weights)


def test_weights_scoring_categories_index_each_shape_with_its_category(category_index: ServedIndex) -> None:
    index = open_index(category_index.root)
    slots = index.vectors[:, -5:] * np.sqrt(2)  # bed, chair, lamp, table, other
    expected = [
        ["bed", "chair", "lamp", "table"].index(e.category) if e.category != "sofa" else 4
        for e in index.manifest.shapes
    ]
    np.testing.assert_allclose(slots, np.eye(5, dtype=np.float32)[expected], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)


def test_weights_scoring_categories_serve_the_photo_vector_against_the_shape_vectors(
    category_index: ServedIndex,
) -> None:
    index = open_index(category_index.root)
    model, _ = load_amvml(category_index.weights, "cpu")
    photo = image_bytes((96, 96), colour=(200, 120, 60))
    with torch.inference_mode():
        tensor = photo_to_tensor(Image.open(io.BytesIO(photo)), model.config.image_size).unsqueeze(0)
        scores = (model.embed_photo(tensor).vector.numpy() @ index.vectors.T)[0]
    with TestClient(create_app(settings_for(category_index.root, weights=category_index.weights))) as client:
        answer = post_photo(client, photo, top_k=3).json()
    best = np.argsort(-scores)[:3]
    assert [r["shape_id"] for r in answer["results"]] == [index.manifest.shapes[row].shape_id for row in best]
    assert answer["results"][0]["score"] == pytest.approx(float(scores[best[0]]), abs=1e-4)
