"""Photos as training and evaluation samples: crop, letterbox, augment, with their mask when one exists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.tv_tensors import Mask

from photo2cad.models.datasets.records import QueryRecord
from photo2cad.models.preprocess import mask_to_tensor, photo_to_tensor


@dataclass(frozen=True)
class PhotoSample:
    photo: torch.Tensor  # (3, S, S) in [0, 1]
    mask: torch.Tensor  # (1, S, S) in {0, 1}; zeros when has_mask is False
    has_mask: bool
    shape_row: int
    category: int  # -1 when unknown
    is_photo: bool = True  # False for a render dressed up as a photo (a textured anchor)


def load_query(query: QueryRecord, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    with Image.open(query.image) as image:
        photo = image.convert("RGB")
        mask = None
        if query.mask is not None:
            with Image.open(query.mask) as mask_image:
                mask = mask_image.convert("L")
    if query.bbox is not None:
        photo = photo.crop(query.bbox)
        mask = mask.crop(query.bbox) if mask is not None else None
    return photo_to_tensor(photo, size), mask_to_tensor(mask, size) if mask is not None else None


def photo_augmentation(size: int, grayscale_probability: float) -> v2.Compose:
    """What a training photo (or photo-like render) goes through: crop, flip, colour jitter, sometimes grey."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.8, 1.25), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.03),
            v2.RandomGrayscale(p=grayscale_probability),
        ]
    )


class PhotoDataset(Dataset[PhotoSample]):
    def __init__(
        self,
        queries: Sequence[QueryRecord],
        shape_rows: dict[str, int],
        categories: Sequence[str],
        size: int,
        augment: bool,
        grayscale_probability: float = 0.0,
    ) -> None:
        self.queries = [q for q in queries if q.shape_id in shape_rows]
        self.shape_rows = shape_rows
        self.category_index = {c: i for i, c in enumerate(categories)}
        self.size = size
        self.augment = photo_augmentation(size, grayscale_probability) if augment else None

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, index: int) -> PhotoSample:
        query = self.queries[index]
        photo, mask = load_query(query, self.size)
        has_mask = mask is not None
        mask_tensor = mask if mask is not None else torch.zeros(1, self.size, self.size)
        if self.augment is not None:
            photo, mask_tensor = self.augment(photo, Mask(mask_tensor))
        return PhotoSample(
            photo=photo.clamp(0, 1),
            mask=torch.as_tensor(mask_tensor),
            has_mask=has_mask,
            shape_row=self.shape_rows[query.shape_id],
            category=self.category_index.get(query.category, -1) if query.category else -1,
        )


def collate(samples: list[PhotoSample]) -> dict[str, torch.Tensor]:
    return {
        "photo": torch.stack([s.photo for s in samples]),
        "mask": torch.stack([s.mask for s in samples]),
        "has_mask": torch.tensor([s.has_mask for s in samples]),
        "shape_row": torch.tensor([s.shape_row for s in samples]),
        "category": torch.tensor([s.category for s in samples]),
        "is_photo": torch.tensor([s.is_photo for s in samples]),
    }
