"""The Ray Data runner gives the same index as the local loop (a local Ray on the CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photo2cad.indexer import BuildRequest, build_index, open_index
from photo2cad.shapes.pool import scan_pool
from photo2cad.shapes.settings import RenderSettings
from tests.meshpool import write_pool

ray = pytest.importorskip("ray")

# The team's real IKEA/Pix3D models (never committed): beside the repository, as CI lays it out.
DEV_POOL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ikea-pix3d-dev" / "pool"


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


@pytest.mark.skipif(not DEV_POOL.is_dir(), reason=f"the dev pool is not at {DEV_POOL}")
def test_ray_build_of_the_dev_pool_matches_the_local_build(tmp_path: Path, tiny_weights: Path, local_ray: None) -> None:
    """Real CAD files (OBJ with materials, 44 to 29,000 faces, two folders without a model): every 6th shape."""
    from photo2cad.indexer.distributed import RayOptions, build_index_with_ray

    listing = scan_pool(DEV_POOL)
    shapes = listing.shapes[::6]
    settings = RenderSettings(num_views=4, embed_size=64)

    def request(out: str) -> BuildRequest:
        return BuildRequest(
            pool=DEV_POOL, out=tmp_path / out, weights=tiny_weights, render=settings, shapes=shapes, progress=False
        )

    local = build_index(request("local"))
    distributed = build_index_with_ray(request("ray"), RayOptions(render_workers=1, embed_workers=1))
    assert local.shapes == distributed.shapes == len(shapes) and distributed.embedded_now == len(shapes)
    a, b = open_index(tmp_path / "local"), open_index(tmp_path / "ray")
    assert [e.shape_id for e in a.manifest.shapes] == [e.shape_id for e in b.manifest.shapes]
    assert [e.checksum for e in a.manifest.shapes] == [e.checksum for e in b.manifest.shapes]
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-4)
    np.testing.assert_allclose(a.view_embeddings, b.view_embeddings, atol=2e-3)  # float16 on disk
