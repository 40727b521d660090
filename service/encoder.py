"""The query side of AMV-ML: which weights to serve, whether they fit the index, and batched photo embedding."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from photo2cad.indexer.manifest import Manifest
from photo2cad.models import AMVML, vector_dim
from photo2cad.models.embedding import embed_photos
from photo2cad.service.errors import ServiceConfigError
from photo2cad.shapes.meshes import file_checksum
from photo2cad.weights.bands import ScoreBands, score_bands_of
from photo2cad.weights.bundled import NoWeightsError, resolve_amvml
from photo2cad.weights.checkpoint import CheckpointError, load_amvml_for_inference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoInput:
    photo: torch.Tensor  # (3, S, S) float in [0, 1]
    mask: torch.Tensor | None  # (1, S, S) in {0, 1}; None: the network's mask head weights the pooling


def choose_weights(given: Path | None, manifest: Manifest) -> Path:
    """The given checkpoint, else the one the index was built with (if it is still there), else the bundled one."""
    if given is not None:
        return given
    indexed = Path(manifest.weights.path)
    if indexed.is_file():
        return indexed
    try:
        return resolve_amvml(None)
    except NoWeightsError as err:
        raise ServiceConfigError(
            f"the index was built with {indexed}, which is gone, and no weights are bundled; pass --weights"
        ) from err


def compatibility_problems(
    weights_sha256: str, photo_vector_dim: int, manifest: Manifest, allow_weights_mismatch: bool
) -> list[str]:
    """Why photos embedded with these weights cannot be searched in this index version (empty: they can)."""
    problems = []
    if photo_vector_dim != manifest.embedding_dim:
        problems.append(
            f"the weights embed photos into {photo_vector_dim}-D vectors but index {manifest.version} holds "
            f"{manifest.embedding_dim}-D shape vectors"
        )
    elif weights_sha256 != manifest.weights.sha256 and not allow_weights_mismatch:
        problems.append(
            f"the weights (sha256 {weights_sha256[:12]}) are not those index {manifest.version} was built with "
            f"({manifest.weights.path}, sha256 {manifest.weights.sha256[:12]}): photo and shape embeddings would "
            "not be comparable. Serve the index's weights, rebuild the index, or pass --allow-weights-mismatch"
        )
    return problems


class QueryEncoder:
    """AMV-ML's photo branch on one device; not thread-safe for `embed`, which the batcher runs in one thread."""

    def __init__(
        self,
        model: AMVML,
        weights_path: Path,
        weights_sha256: str,
        device: torch.device,
        score_bands: ScoreBands | None = None,
    ) -> None:
        self.model = model
        self.weights_path = weights_path
        self.weights_sha256 = weights_sha256
        self.device = device
        self.score_bands = score_bands  # what a first result's score means for these weights, when measured

    @classmethod
    def load(cls, path: Path, device: torch.device, sha256: str | None = None) -> QueryEncoder:
        try:
            model, header = load_amvml_for_inference(path, device)
        except CheckpointError as err:
            raise ServiceConfigError(str(err)) from err
        return cls(model, path, sha256 or file_checksum(path), device, score_bands_of(header))

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def vector_dim(self) -> int:
        """Size of the photo vectors, which the index's shape vectors must share."""
        return vector_dim(self.model.config)

    def embed(self, inputs: Sequence[PhotoInput]) -> list[np.ndarray]:
        """One (D,) float32 L2-normalised embedding per input, in order."""
        embeddings: list[np.ndarray | None] = [None] * len(inputs)
        with_mask = [i for i, item in enumerate(inputs) if item.mask is not None]
        without_mask = [i for i, item in enumerate(inputs) if item.mask is None]
        # embed_photo takes one mask for the whole batch or none: a mixed batch is two forward passes.
        for rows in (without_mask, with_mask):
            if not rows:
                continue
            photos = torch.stack([inputs[i].photo for i in rows])  # the network's layout is place_network's
            masks = torch.stack([inputs[i].mask for i in rows]) if rows is with_mask else None  # type: ignore[misc]
            vectors = embed_photos(self.model, photos, self.device, masks).vectors
            for row, vector in zip(rows, vectors, strict=True):
                embeddings[row] = vector
        return [e for e in embeddings if e is not None]

    def rerank(self, query: np.ndarray, view_embeddings: np.ndarray, shape_vectors: np.ndarray) -> np.ndarray:
        """Scores (N,) of N candidates, their views (N, V, D) and shape vectors (N, D'), against one query (D',),
        by query-conditioned attention over the views."""
        with torch.inference_mode():
            queries = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32)).unsqueeze(0).to(self.device)
            views = torch.from_numpy(np.asarray(view_embeddings, dtype=np.float32)).to(self.device)
            shapes = torch.from_numpy(np.asarray(shape_vectors, dtype=np.float32)).to(self.device)
            return self.model.rerank_scores(queries, views, shapes)[0].float().cpu().numpy()

    def warm_up(self) -> None:
        """One forward pass at start-up, so the first user does not pay for lazy initialisation."""
        size = self.image_size
        self.embed([PhotoInput(torch.full((3, size, size), 0.5), None)])
