"""What a first result's score says: bands measured on right and wrong answers to photos never trained on.

The score of a result is the cosine of photo and shape embeddings; its scale depends on the weights, so the bands
are measured for them and stored with them (the checkpoint header). For each held-out photo: the first result's
score and whether it is the photographed model; and the first score when that model is taken out of the pool, which
is what a photo of a model the catalogue lacks looks like. A band's edge is where first results above it were right
often enough (`strong`), or where hardly any right answer scores below it (`weak`).
"""

from __future__ import annotations

import numpy as np

from photo2cad.weights.bands import ScoreBands


def measure_bands(
    query_vectors: np.ndarray,
    shape_vectors: np.ndarray,
    gt_rows: np.ndarray,
    measured_on: str,
    target_precision: float = 0.6,
    right_below_weak: float = 0.05,
    min_strong_photos: int = 10,
) -> ScoreBands | None:
    """Bands from held-out photos: `strong` the lowest score whose first results at or above it were right at
    least `target_precision` of the time, counted over at least `min_strong_photos` photos so that one lucky photo
    makes no band (None when no score reaches it), `weak` the score below which `right_below_weak` of the right
    first results fall. None when no first result was right: there is nothing to measure."""
    similarity = query_vectors @ shape_vectors.T
    first = similarity.argmax(axis=1)
    first_scores = similarity[np.arange(len(first)), first]
    right = first == gt_rows
    if not right.any():
        return None
    absent = similarity.copy()
    absent[np.arange(len(gt_rows)), gt_rows] = -np.inf  # the photographed model taken out of the pool
    absent_scores = absent.max(axis=1)
    order = np.argsort(-first_scores)
    precision_from_top = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    reaching = np.flatnonzero(precision_from_top >= target_precision)
    reaching = reaching[reaching + 1 >= min_strong_photos]
    strong = float(first_scores[order][reaching.max()]) if len(reaching) else None
    weak = float(np.quantile(first_scores[right], right_below_weak))
    if strong is not None:
        weak = min(weak, strong)
    above = first_scores >= strong if strong is not None else np.zeros_like(right)
    return ScoreBands(
        strong=strong,
        weak=weak,
        strong_precision=float(right[above].mean()) if above.any() else None,
        weak_share_of_right=float((first_scores[right] < weak).mean()),
        absent_share_below_weak=float((absent_scores < weak).mean()),
        measured_on=measured_on,
    )
