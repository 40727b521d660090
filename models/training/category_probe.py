"""The category probe: a linear classifier on photos' frozen view-branch features, fitted after training.

The photo category head is trained beside the embedding, on real photos, synthetic photos and renders; on real photos
of models no training photo showed it names the category about as often as a plain logistic regression on ImageNet's
own features (C3..C5 of the frozen view branch) fitted on the training photos, and the two err on different photos:
their product names it more often than either (docs/training.md). Fitting is a convex problem
(L2-penalised multinomial logistic regression, full batch, L-BFGS from zero), so the same photos give the same probe.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from photo2cad.models import AMVML
from photo2cad.models.datasets.photos import PhotoDataset, collate
from photo2cad.models.datasets.records import DatasetError, RetrievalDataset
from photo2cad.weights.checkpoint import CheckpointHeader, require_category_weight, set_category_probe

log = logging.getLogger(__name__)


def probe_inputs(model: AMVML, dataset: RetrievalDataset, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The training photos of `dataset` whose category the model's heads know -> (N, probe_width) features and (N,)
    class indices in `model.config.category_names`' order. Photos are framed as for retrieval, not augmented."""
    names = list(model.config.category_names)
    queries = [q for q in dataset.split("train") if q.category in names]
    rows = {shape.shape_id: i for i, shape in enumerate(dataset.shapes)}
    photos = PhotoDataset(queries, rows, names, model.config.image_size, augment=False)
    features, labels = [], []
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(photos, batch_size=16, collate_fn=collate):
            features.append(model.probe_input(batch["photo"].to(device)).float().cpu().numpy())
            labels.append(batch["category"].numpy())
    if not features:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(features), np.concatenate(labels)


def fit_category_probe(features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float) -> nn.Linear:
    """Multinomial logistic regression: minimises the mean cross-entropy + l2 x the squared weights (not the biases).

    Classes no photo shows are left out of the fit and get no weights and the mean bias of the others: the probe
    has no opinion on them, rather than ruling them out (the category term would bury their shapes)."""
    present = np.unique(labels)
    inputs = torch.as_tensor(features, dtype=torch.float64)
    targets = torch.as_tensor(np.searchsorted(present, labels), dtype=torch.long)
    weight = torch.zeros(len(present), inputs.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(present), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = nn.functional.cross_entropy(inputs @ weight.T + bias, targets) + l2 * weight.pow(2).sum()
        value.backward()  # type: ignore[no-untyped-call]
        return value

    optimiser.step(loss)  # type: ignore[no-untyped-call]
    probe = nn.Linear(inputs.shape[1], num_classes)
    with torch.no_grad():
        probe.weight.zero_()
        probe.bias.fill_(float(bias.mean()))
        rows = torch.as_tensor(present, dtype=torch.long)
        probe.weight[rows] = weight.float()
        probe.bias[rows] = bias.float()
    return probe


def add_category_probe(
    model: AMVML, header: CheckpointHeader, photos: RetrievalDataset, device: torch.device, l2: float
) -> CheckpointHeader:
    """Fit the probe on `photos`' training photos and give it to `model` (which must weigh categories); the returned
    header records it."""
    require_category_weight(model)  # first: without a category weight the heads' classes are not even known
    features, labels = probe_inputs(model, photos, device)
    if len(labels) == 0:
        raise DatasetError(
            f"{photos.name} has no training photo of the heads' categories ({', '.join(model.config.category_names)}) "
            "to fit the category probe on"
        )
    probe = fit_category_probe(features, labels, model.config.num_categories, l2)
    accuracy = float((probe(torch.as_tensor(features)).argmax(1).numpy() == labels).mean())
    log.info("category probe: fitted on %d photos of %s, training accuracy %.3f", len(labels), photos.name, accuracy)
    described = {"photos": len(labels), "dataset": photos.name, "l2": l2, "training_accuracy": round(accuracy, 4)}
    return set_category_probe(model, header, probe.to(device), described)
