"""`photo2cad eval`: index the test pool (or reuse its index), run the test photos, write the report files.

Writes into the output directory: report.json (overall and per-category Top1@R, Top10@R, category accuracy and
geometric scores), per_photo.csv (one row per photo: ground truth, top 10, scores), gallery.jpg (hits and misses).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from photo2cad.indexer import BuildRequest, IndexVersion, ensure_index
from photo2cad.models.datasets.records import QueryRecord, RetrievalDataset
from photo2cad.models.evaluation.geometry import geometric_score, surface_points
from photo2cad.models.evaluation.retrieval import embed_queries, rank_queries, retrieval_metrics
from photo2cad.shapes.settings import render_settings_for
from photo2cad.weights.checkpoint import load_amvml_for_inference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalReport:
    path: Path
    overall: dict[str, float | int | None]
    per_category: dict[str, dict[str, float | int | None]]


def _gallery(queries: list[QueryRecord], top: np.ndarray, gt_rows: np.ndarray, index: IndexVersion, path: Path) -> None:
    """Up to 12 rows: the photo, then the top 5 thumbnails; green frame = the right model, red = wrong."""
    cell = 128
    hits = [i for i in range(len(queries)) if top[i, 0] == gt_rows[i]]
    misses = [i for i in range(len(queries)) if top[i, 0] != gt_rows[i]]
    chosen = hits[:6] + misses[: 12 - min(len(hits), 6)]
    canvas = Image.new("RGB", (cell * 6, cell * max(len(chosen), 1)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, q in enumerate(chosen):
        with Image.open(queries[q].image) as photo:
            canvas.paste(ImageOps.pad(photo.convert("RGB"), (cell, cell), color="white"), (0, row * cell))
        for col, shape_row in enumerate(top[q, :5]):
            if shape_row < 0:
                continue
            entry = index.manifest.shapes[shape_row]
            with Image.open(index.directory / entry.thumbnail) as thumb:
                canvas.paste(thumb.convert("RGB").resize((cell, cell)), ((col + 1) * cell, row * cell))
            colour = (0, 160, 0) if shape_row == gt_rows[q] else (200, 0, 0)
            x, y = (col + 1) * cell, row * cell
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline=colour, width=3)
    canvas.save(path, quality=88)


def evaluate(
    weights: Path,
    dataset: RetrievalDataset,
    out_dir: Path,
    device: torch.device,
    split: str = "test",
    index_dir: Path | None = None,
    views: int = 12,
    within_category: bool | None = None,
    geometric: bool = True,
    progress: bool = True,
) -> EvalReport:
    """Rank the split's photos against an index of the dataset's pool (built, or reused when it fits) and write the
    report files. `within_category` defaults to the dataset's own protocol (Pix3D: on)."""
    if within_category is None:
        within_category = dataset.rank_within_category
    out_dir.mkdir(parents=True, exist_ok=True)
    model, header = load_amvml_for_inference(weights, device)
    index = ensure_index(
        BuildRequest(
            pool=dataset.pool_folder(),
            out=index_dir or out_dir / "index",
            weights=weights,
            render=render_settings_for(header, num_views=views),
            shapes=dataset.shapes,
            progress=progress,
        )
    )
    rows = {entry.shape_id: row for row, entry in enumerate(index.manifest.shapes)}
    queries = [q for q in dataset.split(split) if q.shape_id in rows]
    dropped = len(dataset.split(split)) - len(queries)
    if dropped:
        log.warning("%d %s photos show shapes that failed to index and are left out", dropped, split)
    if not queries:
        raise ValueError(f"{dataset.name} has no {split} photos of indexed shapes")
    categories = header.notes.get("categories") or list(dataset.categories())
    query_vectors, _ = embed_queries(model, queries, rows, categories, device)
    shape_categories = [e.category for e in index.manifest.shapes]
    gt_rows = np.array([rows[q.shape_id] for q in queries])
    ranking = rank_queries(
        query_vectors,
        index.vectors,
        gt_rows,
        shape_categories,
        [q.category for q in queries] if within_category else None,
    )
    first_categories = [shape_categories[r] if r >= 0 else None for r in ranking.top[:, 0]]
    pool = Path(index.manifest.pool_root)
    scores: list[tuple[float, float] | None] = []
    for q, first in zip(queries, ranking.top[:, 0], strict=True):
        if not geometric or first < 0:
            scores.append(None)
            continue
        predicted = surface_points(pool / index.manifest.shapes[first].source_path)
        truth = surface_points(pool / index.manifest.shapes[rows[q.shape_id]].source_path)
        score = geometric_score(predicted, truth)
        scores.append((score.chamfer, score.f_score))

    def summary(selection: np.ndarray) -> dict[str, float | int | None]:
        sub = type(ranking)(ranking.gt_rank[selection], ranking.top[selection])
        metrics = retrieval_metrics(
            sub, [first_categories[i] for i in selection], [queries[i].category for i in selection]
        ).as_dict()
        geo = [scores[i] for i in selection if scores[i] is not None]
        metrics["chamfer"] = float(np.mean([g[0] for g in geo])) if geo else None
        metrics["f_score"] = float(np.mean([g[1] for g in geo])) if geo else None
        return metrics

    everything = np.arange(len(queries))
    per_category = {
        c: summary(np.array([i for i, q in enumerate(queries) if q.category == c]))
        for c in sorted({q.category for q in queries if q.category})
    }
    report = {
        "dataset": dataset.name,
        "split": split,
        "weights": str(weights),
        "weights_training_data": header.training_data,
        "index": str(index.directory),
        "pool_size": index.size,
        "ranking": "within the ground-truth category" if within_category else "over the whole pool",
        "overall": summary(everything),
        "per_category": per_category,
        "photos_left_out": dropped,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    with (out_dir / "per_photo.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["image", "shape_id", "category", "gt_rank", "top1", "top1_category", "chamfer", "f_score", "top10"]
        )
        for i, q in enumerate(queries):
            top_ids = [index.manifest.shapes[r].shape_id for r in ranking.top[i] if r >= 0]
            geo = scores[i]
            writer.writerow(
                [
                    q.image,
                    q.shape_id,
                    q.category,
                    int(ranking.gt_rank[i]),
                    top_ids[0] if top_ids else "",
                    first_categories[i],
                    f"{geo[0]:.4f}" if geo else "",
                    f"{geo[1]:.4f}" if geo else "",
                    " ".join(top_ids),
                ]
            )
    _gallery(queries, ranking.top, gt_rows, index, out_dir / "gallery.jpg")
    log.info("evaluation written to %s", out_dir)
    return EvalReport(out_dir / "report.json", report["overall"], per_category)  # type: ignore[arg-type]
