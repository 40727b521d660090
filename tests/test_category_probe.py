"""The category probe: fitted after training on real photos' frozen features, deterministic, neutral on classes
that no photo shows."""

from __future__ import annotations

import numpy as np
import torch

from photo2cad.models.training.category_probe import fit_category_probe


def clustered(classes: list[int], per_class: int = 20, width: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit features around one random centre per class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(classes) + 1, width))
    labels = np.repeat(classes, per_class)
    features = centres[labels] + 0.3 * rng.normal(size=(len(labels), width))
    return (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32), labels


def test_the_probe_names_the_class_of_the_photos_it_was_fitted_on() -> None:
    features, labels = clustered([0, 1, 2])

    probe = fit_category_probe(features, labels, num_classes=3, l2=1e-4)

    with torch.no_grad():
        predicted = probe(torch.as_tensor(features)).argmax(1).numpy()
    assert (predicted == labels).mean() == 1.0


def test_fitting_the_same_photos_twice_gives_the_same_probe() -> None:
    features, labels = clustered([0, 1, 2], seed=1)

    first, second = (fit_category_probe(features, labels, 3, 1e-4) for _ in range(2))

    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)


def test_a_stronger_penalty_gives_smaller_weights() -> None:
    features, labels = clustered([0, 1, 2], seed=2)

    loose, tight = fit_category_probe(features, labels, 3, 1e-4), fit_category_probe(features, labels, 3, 1e-1)

    assert tight.weight.norm() < loose.weight.norm()


def test_a_class_no_photo_shows_gets_no_weights_and_the_mean_bias() -> None:
    """Ruling such a class out would bury every shape of it under the category term; the probe abstains instead."""
    features, labels = clustered([0, 2, 3])

    probe = fit_category_probe(features, labels, num_classes=4, l2=1e-4)

    assert torch.count_nonzero(probe.weight[1]) == 0
    assert torch.isclose(probe.bias[1], probe.bias[[0, 2, 3]].mean())
    with torch.no_grad():
        assert (probe(torch.as_tensor(features)).argmax(1).numpy() == labels).all()
