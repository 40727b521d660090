"""Training settings of both networks (the network architectures themselves live in models/config.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from photo2cad.models.config import Backbone


class AMVMLTrainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(10, ge=1, description="all epochs, the warm-up ones included")
    warmup_epochs: int = Field(
        10, ge=0, description="first epochs with the backbone frozen: only the heads learn, against the whole pool"
    )
    warmup_lr: float = Field(1e-3, gt=0, description="learning rate of the heads in the warm-up epochs")
    photo_branch_lr: float = Field(
        0.0, ge=0, description="learning rate of the photo branch Enc2 during the warm-up; 0 keeps it frozen"
    )
    batch_size: int = Field(16, ge=2, description="photos (and anchors) per step")
    freeze_batchnorm: bool = Field(
        True, description="end-to-end epochs keep the backbone's batch-norm statistics (small batches)"
    )
    train_views: int = Field(4, ge=1, description="views per positive shape in a step (all views at evaluation)")
    extra_negatives: int = Field(8, ge=0, description="shapes added to each batch as negatives, same category first")
    lr: float = Field(1e-4, gt=0, description="learning rate of the end-to-end epochs")
    weight_decay: float = Field(1e-4, ge=0)
    margin: float = Field(0.3, gt=0, description="triplet margin on Euclidean distances of unit vectors")
    bank_weight: float = Field(1.0, ge=0, description="InfoNCE against every shape of the pool (memory bank)")
    temperature: float = Field(0.1, gt=0, description="InfoNCE temperature (CMIC: 0.1)")
    grayscale_probability: float = Field(0.3, ge=0, le=1, description="photos turned grey, like the pool renders")
    category_weight: float = Field(0.1, ge=0)
    mask_weight: float = Field(0.5, ge=0)
    textured_anchors: bool = Field(
        False, description="add every pool shape rendered with its own materials as photo-like anchors"
    )
    train_on_photos: bool = Field(
        True, description="train on the real photos; False with textured_anchors trains on the renders alone"
    )
    anchor_looks: tuple[Literal["own", "random", "tsm"], ...] = Field(
        ("own",),
        description="what the textured anchors wear: own (the files' materials), random (random finishes), tsm "
        "(TSM textures; needs TSM weights)",
    )
    unphotographed_weight: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="how much the shapes without training photos from the photo's own source count as negatives of "
        "a photo in the warm-up: 1 ranks a photo against the whole pool; 0 only against the shapes its source "
        "photographed, so that photos of a few shapes cannot teach 'those shapes are the answers' (better on shapes "
        "nobody photographed, worse on the others)",
    )
    photos_move_shapes: bool = Field(
        True,
        description="whether real photos move the shape side in the warm-up (False: only the anchors do, so every "
        "shape is placed by renders alike, photographed or not)",
    )
    domain_weight: float = Field(
        0.0,
        ge=0,
        description="weight of a term pulling the mean embedding of a batch's real photos onto that of its anchors, "
        "so that real photos and renders do not settle in separate regions (0: off)",
    )
    end_to_end_sources: tuple[str, ...] = Field(
        (),
        description="the sources (a merged dataset's part names) whose photos and anchors train the end-to-end "
        "epochs; empty: all. The warm-up always reads every source; the pool, the bank included, stays whole",
    )
    tsm_triplets: bool = Field(False, description="add the TSM hard triplets (needs TSM weights)")
    tsm_weight: float = Field(1.0, ge=0)
    seed: int = Field(0, description="seeds the network's start, the shuffles and the augmentation")
    deterministic: bool = Field(
        True,
        description="deterministic kernels (PyTorch's use_deterministic_algorithms): a seed gives the same weights "
        "on the same machine and software, at a small cost in speed",
    )
    num_workers: int = Field(0, ge=0)
    validate_every: int = Field(1, ge=0, description="epochs between validation passes; 0 = never")


class TSMTrainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(10, ge=1, description="passes over the texture pairs")
    batch_size: int = Field(4, ge=1, description="pairs per step")
    lr: float = Field(2e-4, gt=0)
    beta1: float = 0.5
    l1_weight: float = 10.0
    kl_weight: float = 0.01
    latent_weight: float = 0.5
    category_weight: float = 1.0
    sample_every: int = Field(50, ge=1, description="steps between sample grids")
    seed: int = 0
    deterministic: bool = Field(
        True,
        description="deterministic kernels (PyTorch's use_deterministic_algorithms): a seed gives the same weights "
        "on the same machine and software, at a small cost in speed",
    )


class BundledRecipe(BaseModel):
    """Every choice of the recipe; the defaults are the shipped weights' (docs/training.md says what chose them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backbone: Backbone = "efficientnet_lite0"
    image_size: int = Field(160, ge=32, description="side of the views and photos")
    epochs: int = Field(3, ge=1, description="warm-up epochs (the backbone frozen but the photo branch)")
    photo_branch_lr: float = Field(1e-4, ge=0)
    end_to_end_epochs: int = Field(
        4,
        ge=0,
        description="epochs after the warm-up with every layer learning, the view branch too (its batch-norm "
        "statistics kept); 0 leaves the view branch as ImageNet made it",
    )
    end_to_end_lr: float = Field(1e-5, gt=0, description="learning rate of the end-to-end epochs")
    end_to_end_sources: tuple[str, ...] = Field(
        (),
        description="AMVMLTrainConfig.end_to_end_sources: the sources whose photos and anchors the end-to-end epochs "
        "train on; empty: all (ikea alone, without the demo's synthetic photos, did worse on fold 0)",
    )
    anchor_looks: tuple[Literal["own", "random", "tsm"], ...] = ("own", "random", "tsm")
    unphotographed_weight: float = Field(0.1, description="AMVMLTrainConfig.unphotographed_weight")
    photos_move_shapes: bool = Field(True, description="AMVMLTrainConfig.photos_move_shapes")
    domain_weight: float = Field(10.0, description="AMVMLTrainConfig.domain_weight")
    prior_weight: float = Field(
        0.6, ge=0.0, lt=1.0, description="AMVMLConfig.prior_weight of the result (retrieval only; training ignores it)"
    )
    prior_stages: int = Field(3, ge=1, le=3, description="AMVMLConfig.prior_stages of the result")
    category_weight: float = Field(
        0.05, ge=0.0, le=1.0, description="AMVMLConfig.category_weight of the result (retrieval only)"
    )
    category_probe: bool = Field(
        True,
        description="fit AMVMLConfig.category_probe on the training photos (real and synthetic) after training; "
        "needs category_weight",
    )
    category_probe_l2: float = Field(1e-4, gt=0.0, description="the probe's L2 penalty on its weights")
    tsm_image_size: int = Field(128, description="the TSM's side: 128 px is what a CPU trains in minutes")
    tsm_base_channels: int = Field(32, description="the TSM generator's width (the paper: 64)")
    tsm_steps: int = Field(1200, ge=0, description="TSM training steps of 4 pairs")
    tsm_views_per_shape: int = Field(6, ge=1)
    demo_shapes_per_category: int = Field(60, ge=1)
    unseen_folds: int = Field(
        3, ge=1, description="held-out runs whose pooled photos measure the score bands, each without 12 models"
    )
    seed: int = 0
