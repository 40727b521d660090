"""Do simplified renders cost accuracy? Top1@R / Top10@R of one checkpoint through two indexes of the same pool:
every face drawn, and meshes simplified to the face budget (what `index build` does by default).

    python benchmarks/simplify_accuracy.py /tmp/ikea-heavy --weights runs/x/amvml-last.safetensors [--max-faces 20000]

DATA is an ikea-dev folder (pool/, photos.csv, photos/; benchmarks/heavy_pool.py makes the heavy one). Both indexes
are built with the local runner (printing seconds per model), then the validation photos are ranked against each
over the whole pool, exactly as `photo2cad eval --split val` ranks them. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from photo2cad.device import pick_device
from photo2cad.indexer import BuildRequest, build_index, open_index
from photo2cad.indexer.runner import DEFAULT_MAX_FACES
from photo2cad.models.datasets import read_dataset
from photo2cad.models.evaluation.retrieval import embed_queries, rank_queries, retrieval_metrics
from photo2cad.shapes.settings import render_settings_for
from photo2cad.weights.checkpoint import load_amvml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--layout", default="ikea-dev")
    parser.add_argument("--split", default="val")
    parser.add_argument("--max-faces", type=int, default=DEFAULT_MAX_FACES)
    args = parser.parse_args()
    device = pick_device("auto")
    dataset = read_dataset(args.layout, args.data)
    model, header = load_amvml(args.weights, device)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, max_faces in (("every face", None), (f"max_faces {args.max_faces}", args.max_faces)):
            report = build_index(
                BuildRequest(
                    pool=dataset.pool_folder(),
                    out=Path(tmp) / label.replace(" ", "-"),
                    weights=args.weights,
                    render=render_settings_for(header),
                    shapes=dataset.shapes,
                    max_faces=max_faces,
                    progress=False,
                )
            )
            index = open_index(report.version_dir)
            rows = {entry.shape_id: row for row, entry in enumerate(index.manifest.shapes)}
            queries = [q for q in dataset.split(args.split) if q.shape_id in rows]
            categories = header.notes.get("categories") or list(dataset.categories())
            vectors, _ = embed_queries(model, queries, rows, categories, device)
            ranking = rank_queries(
                vectors, index.vectors, np.array([rows[q.shape_id] for q in queries]), [None] * index.size
            )
            metrics = retrieval_metrics(ranking, [None] * len(queries), [None] * len(queries)).as_dict()
            metrics["build_s_per_model"] = round(report.seconds / max(report.shapes, 1), 3)
            metrics["faces_drawn_per_model"] = round(report.times.counts["faces_drawn"] / max(report.shapes, 1))
            results[label] = metrics
            print(label, json.dumps(metrics), flush=True)
    first, second = results.values()
    top1, top10 = second["top1"] - first["top1"], second["top10"] - first["top10"]
    print(f"Top1@R change {top1:+.4f}, Top10@R change {top10:+.4f}")


if __name__ == "__main__":
    main()
