"""Several datasets trained on as one: every shape_id gets its part's name in front, so ids never collide."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from photo2cad.models.datasets.records import RetrievalDataset


def merge_datasets(name: str, parts: Mapping[str, RetrievalDataset]) -> RetrievalDataset:
    """One dataset holding every part's shapes and photos, shape_id `<part>/<shape_id>` (e.g. `ikea/chair/IKEA_STEFAN`);
    splits and categories are kept. Its pool folder is the parts' common parent, which matters only to an index."""
    shapes, queries = [], []
    for prefix, part in parts.items():
        shapes += [dataclasses.replace(shape, shape_id=f"{prefix}/{shape.shape_id}") for shape in part.shapes]
        queries += [dataclasses.replace(query, shape_id=f"{prefix}/{query.shape_id}") for query in part.queries]
    return RetrievalDataset(
        name=name, shapes=tuple(sorted(shapes, key=lambda s: s.shape_id)), queries=tuple(queries), parts=tuple(parts)
    )


def prefixed(prefix: str, dataset: RetrievalDataset) -> RetrievalDataset:
    """`dataset` with the ids `merge_datasets` gives its part named `prefix`: to validate on one part of a merge."""
    merged = merge_datasets(dataset.name, {prefix: dataset})
    return dataclasses.replace(merged, pool_root=dataset.pool_root, rank_within_category=dataset.rank_within_category)
