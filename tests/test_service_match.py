"""Match quality (issue #10): the served weights' score bands label every result and are explained by GET /index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from photo2cad.service.app import create_app
from photo2cad.weights.bands import ScoreBands
from photo2cad.weights.checkpoint import read_header
from tests.helpers import ServedIndex, post_photo, rendered_photo, settings_for, weights_with_bands

BANDS = ScoreBands(
    strong=0.9,
    weak=0.5,
    strong_precision=0.8,
    weak_share_of_right=0.05,
    absent_share_below_weak=0.6,
    measured_on="tests: made-up bands",
)


@pytest.fixture(scope="module")
def banded_client(served_index: ServedIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    banded = weights_with_bands(served_index.weights, BANDS, tmp_path_factory.mktemp("banded") / "banded.safetensors")
    assert read_header(banded).notes["score_bands"]["strong"] == 0.9
    settings = settings_for(served_index.root, weights=banded, allow_weights_mismatch=True)
    with TestClient(create_app(settings)) as client:
        yield client


def test_every_result_carries_the_band_of_its_search_score(
    banded_client: TestClient, served_index: ServedIndex
) -> None:
    response = post_photo(banded_client, rendered_photo(served_index.root), top_k=8)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["match"] for r in results] == [BANDS.match(r["search_score"]) for r in results]
    assert {BANDS.match(0.95), BANDS.match(0.7), BANDS.match(0.1)} == {"strong", "possible", "weak"}


def test_the_index_route_says_where_the_bands_lie(banded_client: TestClient) -> None:
    bands = banded_client.get("/index").json()["score_bands"]
    assert bands["strong"] == 0.9 and bands["weak"] == 0.5 and bands["measured_on"] == "tests: made-up bands"


def test_weights_without_measured_bands_leave_the_match_empty(served_index: ServedIndex) -> None:
    with TestClient(create_app(settings_for(served_index.root))) as client:  # the tests' weights carry no bands
        response = post_photo(client, rendered_photo(served_index.root), top_k=3)
        assert all(result["match"] is None for result in response.json()["results"])
        assert client.get("/index").json()["score_bands"] is None


def test_weights_whose_bands_found_no_strong_score_never_call_a_match_strong(
    served_index: ServedIndex, tmp_path: Path
) -> None:
    no_strong = BANDS.model_copy(update={"strong": None, "strong_precision": None, "weak": -1.0})
    weights = weights_with_bands(served_index.weights, no_strong, tmp_path / "w.safetensors")
    settings = settings_for(served_index.root, weights=weights, allow_weights_mismatch=True)
    with TestClient(create_app(settings)) as client:
        results = post_photo(client, rendered_photo(served_index.root), top_k=8).json()["results"]
        assert [r["match"] for r in results] == ["possible"] * len(results)  # every score is above weak (-1)
        assert client.get("/index").json()["score_bands"]["strong"] is None
