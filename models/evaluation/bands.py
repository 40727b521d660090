"""What a first result's score says: bands measured on right and wrong answers to photos never trained on.

The score of a result is the cosine of photo and shape embeddings; its scale depends on the weights, so the bands
are measured for them and stored with them (the checkpoint header). For each held-out photo: the first result's
score and whether it is the photographed model; and the first score when that model is taken out of the pool, which
is what a photo of a model the catalogue lacks looks like. A band's edge is where first results above it were right
often enough (`strong`), or where hardly any right answer scores below it (`weak`). Several held-out runs of one
recipe, each holding out other models, can be pooled (`FirstResults.pooled`): each scored only photos it never saw,
and one recipe's runs share its score scale, so the pool measures the bands on more photos than one run holds out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photo2cad.weights.bands import ScoreBands


@dataclass(frozen=True)
class FirstResults:
    """What the bands are measured on, one entry per held-out photo: its first result's score, whether that result
    is the photographed model, and the first score once that model is taken out of the pool."""

    scores: np.ndarray
    right: np.ndarray
    absent_scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def save(self, path: Path) -> None:
        np.savez(path, scores=self.scores, right=self.right, absent_scores=self.absent_scores)

    @classmethod
    def load(cls, path: Path) -> FirstResults:
        with np.load(path) as stored:
            return cls(stored["scores"], stored["right"], stored["absent_scores"])

    @classmethod
    def pooled(cls, parts: Sequence[FirstResults]) -> FirstResults:
        """The photos of several held-out runs of one recipe as one set (each run scored photos it never saw)."""
        return cls(
            np.concatenate([part.scores for part in parts]),
            np.concatenate([part.right for part in parts]),
            np.concatenate([part.absent_scores for part in parts]),
        )


def first_results(query_vectors: np.ndarray, shape_vectors: np.ndarray, gt_rows: np.ndarray) -> FirstResults:
    """Each photo's first result against the pool, and its best score without the photographed model."""
    similarity = query_vectors @ shape_vectors.T
    rows = np.arange(len(gt_rows))
    first = similarity.argmax(axis=1)
    absent = similarity.copy()
    absent[rows, gt_rows] = -np.inf  # the photographed model taken out of the pool
    return FirstResults(similarity[rows, first], first == gt_rows, absent.max(axis=1))


def measure_bands(
    results: FirstResults,
    measured_on: str,
    target_precision: float = 0.6,
    right_below_weak: float = 0.05,
    min_strong_photos: int = 10,
) -> ScoreBands | None:
    """Bands from held-out photos: `strong` the lowest score whose first results at or above it were right at
    least `target_precision` of the time, counted over at least `min_strong_photos` photos so that one lucky photo
    makes no band (None when no score reaches it), `weak` the score below which `right_below_weak` of the right
    first results fall. None when no first result was right: there is nothing to measure."""
    first_scores, right = results.scores, results.right
    if not right.any():
        return None
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
        absent_share_below_weak=float((results.absent_scores < weak).mean()),
        measured_on=measured_on,
    )
