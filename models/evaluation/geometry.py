"""Geometric agreement of a retrieved shape with the ground truth: Chamfer distance and F-score on surface points.

Both meshes are normalised as the renderer sees them (bounding box centred, fitted to [-1, 1]), so the scores
compare shapes, not their file units. A near miss (a sibling model) scores far better than a wild one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from photo2cad.shapes.meshes import load_mesh, normalise

POINTS = 4096
F_SCORE_THRESHOLD = 0.05  # 2.5 % of the normalised extent of 2


@dataclass(frozen=True)
class GeometricScore:
    chamfer: float  # mean of the two directed mean nearest-neighbour distances
    f_score: float  # at F_SCORE_THRESHOLD


@functools.lru_cache(maxsize=512)
def surface_points(path: Path, count: int = POINTS, seed: int = 0) -> np.ndarray:
    mesh = normalise(load_mesh(path))
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points, dtype=np.float64)


def geometric_score(predicted: np.ndarray, truth: np.ndarray, threshold: float = F_SCORE_THRESHOLD) -> GeometricScore:
    to_truth, _ = cKDTree(truth).query(predicted)
    to_predicted, _ = cKDTree(predicted).query(truth)
    precision = float(np.mean(to_truth < threshold))
    recall = float(np.mean(to_predicted < threshold))
    f_score = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return GeometricScore(chamfer=float((to_truth.mean() + to_predicted.mean()) / 2), f_score=f_score)
