"""The Ray Data runner gives the same index as the local loop (a local Ray on the CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photo2cad.indexer import BuildRequest, build_index, open_index
from photo2cad.shapes.settings import RenderSettings
from tests.meshpool import write_pool

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_build_matches_the_local_build(tmp_path: Path, tiny_weights: Path, local_ray: None) -> None:
    from photo2cad.indexer.distributed import RayOptions, build_index_with_ray

    pool = tmp_path / "pool"
    write_pool(pool, count=6)
    settings = RenderSettings(num_views=4, embed_size=64)
    local = BuildRequest(pool=pool, out=tmp_path / "local", weights=tiny_weights, render=settings, progress=False)
    distributed = BuildRequest(pool=pool, out=tmp_path / "ray", weights=tiny_weights, render=settings, progress=False)
    build_index(local)
    report = build_index_with_ray(distributed, RayOptions(render_workers=1, embed_workers=1))
    assert report.shapes == 6
    assert [Path(f.source_path).name for f in report.failures] == ["broken.obj"]
    a, b = open_index(tmp_path / "local"), open_index(tmp_path / "ray")
    assert [e.shape_id for e in a.manifest.shapes] == [e.shape_id for e in b.manifest.shapes]
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-4)
    assert all((b.directory / e.thumbnail).stat().st_size > 0 for e in b.manifest.shapes)
