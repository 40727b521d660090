"""The same build on Ray Data: rendering as a pool of CPU actors, embedding as a pool of GPU actors.

Point it at a cluster with `RayOptions(address=...)` (the CLI's --ray-address, or RAY_ADDRESS); every node needs
photo2cad installed and the pool and index folders at the same paths (a shared file system). docs/indexing.md has
the throughput per worker to plan with.

Reader, resume and shard writing stay with the runner in the driver (Ray has no job-level resume of its own); this
module only replaces the local loop. Each render actor holds one headless GL context for its whole life; each
embedding actor loads the weights once and holds one GPU (or runs on the CPU when the cluster has none).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from photo2cad.indexer.mapper import MeshPreparation, StageTimes, render_shapes
from photo2cad.indexer.runner import BuildReport, BuildRequest, build_index, heap_for_embedding
from photo2cad.indexer.shards import EmbeddedShape, FailedShape, Shard
from photo2cad.models import AMVML, vector_dim
from photo2cad.models.embedding import embed_view_sets
from photo2cad.models.onnx_views import onnx_view_engine
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.checkpoint import load_amvml_for_inference

log = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start or join a local Ray
    render_workers: int = 1
    embed_workers: int = 1
    gpus_per_embed_worker: float = 0.0  # 1.0 on a GPU cluster


def _record(batch: Batch, i: int) -> ShapeRecord:
    category = str(batch["category"][i])
    return ShapeRecord(str(batch["shape_id"][i]), Path(str(batch["path"][i])), category or None)


class RenderActor:
    """Ray actor: mesh files -> grey views (failures travel on as rows with a reason)."""

    def __init__(self, render_json: str, max_faces: int | None) -> None:
        self.settings = RenderSettings.model_validate_json(render_json)
        self.preparation = MeshPreparation.for_views(max_faces, self.settings)
        # A GL context is current in one thread only, and Ray may call an actor from several: every GL call of this
        # actor runs on one dedicated thread.
        self.gl_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gl")
        self.renderer = self.gl_thread.submit(Renderer, self.settings).result()

    def __call__(self, batch: Batch) -> Batch:
        items = [(_record(batch, i), str(batch["checksum"][i])) for i in range(len(batch["shape_id"]))]
        times = StageTimes()
        rendered, failed = self.gl_thread.submit(
            render_shapes, items, self.renderer, self.settings, times, self.preparation
        ).result()
        size, views = self.settings.embed_size, self.settings.num_views
        rows = [(r.record, r.checksum, r.grey_views, r.thumbnail_jpeg, "") for r in rendered]
        rows += [
            (f.record, f.checksum or "", np.zeros((views, size, size, 3), np.uint8), b"", f.reason) for f in failed
        ]
        return {
            "shape_id": np.array([r[0].shape_id for r in rows]),
            "path": np.array([str(r[0].path) for r in rows]),
            "category": np.array([r[0].category or "" for r in rows]),
            "checksum": np.array([r[1] for r in rows]),
            "grey": np.stack([r[2] for r in rows]),
            "thumbnail": np.array([r[3] for r in rows], dtype=object),
            "failure": np.array([r[4] for r in rows]),
            **{
                f"seconds_{stage}": np.full(len(rows), getattr(times, stage) / max(len(rows), 1))
                for stage in ("load", "simplify", "normalise", "render")
            },
        }


class EmbedActor:
    """Ray actor: grey views -> shape vectors and view embeddings with the AMV-ML shape branch."""

    def __init__(self, weights: str, cpu_runtime: str) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model, _ = load_amvml_for_inference(Path(weights), self.device)
        self.engine = onnx_view_engine(self.model, self.device) if cpu_runtime == "onnxruntime" else None
        # The actor's process embeds and does nothing else, so the local build's heap choice holds for its life.
        self._heap = ExitStack()
        self._heap.enter_context(heap_for_embedding(self.engine, self.device))

    def __call__(self, batch: Batch) -> Batch:
        import time

        ok = batch["failure"] == ""
        count, views = len(ok), batch["grey"].shape[1]
        vectors = np.zeros((count, vector_dim(self.model.config)), np.float32)
        view_embeddings = np.zeros((count, views, self.model.config.embedding_dim), np.float32)
        start = time.perf_counter()
        if ok.any():
            categories = [str(c) or None for c in batch["category"][ok]]
            vectors[ok], view_embeddings[ok] = embed_view_sets(
                self.model, batch["grey"][ok], self.device, len(ok), self.engine, categories
            )
        out = {key: value for key, value in batch.items() if key != "grey"}
        out["vector"] = vectors
        out["view_embeddings"] = view_embeddings
        out["seconds_embed"] = np.full(count, (time.perf_counter() - start) / max(count, 1))
        out["views"] = np.full(count, views)
        return out


def ray_distributor(options: RayOptions) -> Any:
    def distribute(
        todo: Sequence[tuple[ShapeRecord, str]], request: BuildRequest, model: AMVML, device: torch.device
    ) -> Iterator[tuple[Shard, StageTimes]]:
        import ray

        if not ray.is_initialized():
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
        log.info("Ray cluster resources: %s", ray.cluster_resources())
        items = [
            {"shape_id": r.shape_id, "path": str(r.path), "category": r.category or "", "checksum": c} for r, c in todo
        ]
        dataset: ray.data.Dataset = ray.data.from_items(items)
        dataset = dataset.map_batches(
            RenderActor,
            fn_constructor_kwargs={"render_json": request.render.model_dump_json(), "max_faces": request.max_faces},
            batch_size=request.batch_size,
            compute=ray.data.ActorPoolStrategy(size=options.render_workers),
            num_cpus=1,
        )
        dataset = dataset.map_batches(
            EmbedActor,
            fn_constructor_kwargs={"weights": str(request.weights.resolve()), "cpu_runtime": request.cpu_runtime},
            batch_size=request.batch_size,
            compute=ray.data.ActorPoolStrategy(size=options.embed_workers),
            num_gpus=options.gpus_per_embed_worker,
        )
        for batch in dataset.iter_batches(batch_size=request.batch_size, batch_format="numpy"):
            times = StageTimes()
            times.merge_seconds(
                {
                    stage: float(batch[f"seconds_{stage}"].sum())
                    for stage in ("load", "simplify", "normalise", "render", "embed")
                }
            )
            embedded, failed = [], []
            for i in range(len(batch["shape_id"])):
                record, checksum = _record(batch, i), str(batch["checksum"][i])
                if batch["failure"][i]:
                    failed.append(FailedShape(record, checksum, str(batch["failure"][i])))
                else:
                    embedded.append(
                        EmbeddedShape(
                            record,
                            checksum,
                            batch["vector"][i],
                            batch["view_embeddings"][i],
                            bytes(batch["thumbnail"][i]),
                        )
                    )
            times.counts["shapes"] = len(embedded)
            times.counts["views"] = int(batch["views"][0]) * len(embedded) if len(embedded) else 0
            yield Shard(embedded, failed), times

    return distribute


def build_index_with_ray(request: BuildRequest, options: RayOptions | None = None) -> BuildReport:
    return build_index(request, distributor=ray_distributor(options or RayOptions()))
