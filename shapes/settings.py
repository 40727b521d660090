"""Renderer settings: part of an index's identity (an index built with other settings must not be mixed in)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from photo2cad.weights.checkpoint import CheckpointHeader


class RenderSettings(BaseModel):
    """The multi-view recipe of docs/method.md (the 3D-FUTURE toolbox's cameras)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_views: int = Field(12, ge=1, description="views at evenly spaced azimuths starting at 0 degrees")
    elevation_deg: float = Field(14.0, description="camera elevation above the horizontal plane")
    distance: float = Field(3.3, gt=0, description="camera distance to the origin; meshes fit in [-1, 1]")
    yfov_deg: float = Field(56.0, gt=0, lt=180, description="vertical field of view")
    embed_size: int = Field(224, ge=16, description="side of the grey views that are embedded")
    synth_size: int = Field(256, ge=16, description="side of the normal maps the texture synthesis reads")
    up_axis: Literal["x", "y", "z"] = Field("y", description="the meshes' up axis (Pix3D, ShapeNet: y)")
    framing: Literal["fixed", "object"] = Field(
        "fixed",
        description="fixed: every view keeps the camera's field of view (the object's size varies with the view); "
        "object: each view is zoomed onto the object, square, with frame_margin around it, as photos are cropped",
    )
    frame_margin: float = Field(
        0.05, ge=0.0, le=1.0, description="object framing: margin per side, share of the object"
    )

    @property
    def azimuths_deg(self) -> list[float]:
        return [360.0 * i / self.num_views for i in range(self.num_views)]

    def identity(self) -> str:
        """A short stable hash of every setting, stored in manifests and compared on update."""
        # Framing came after the first indexes were built: fixed framing leaves it out of the hash, so that those
        # indexes keep their identity.
        legacy = {"framing", "frame_margin"} if self.framing == "fixed" else set()
        return hashlib.sha256(self.model_dump_json(exclude=legacy).encode()).hexdigest()[:16]


def render_settings_for(header: CheckpointHeader, num_views: int | None = None) -> RenderSettings:
    """How to render views for a checkpoint: the renderer it was trained with (its header records it; older
    checkpoints, the defaults), at the network's input size, optionally with another number of views (the view
    attention fuses any number)."""
    settings = RenderSettings.model_validate(header.renderer or {})
    update: dict[str, int] = {"embed_size": int(header.config.get("image_size", settings.embed_size))}
    if num_views is not None:
        update["num_views"] = num_views
    return settings.model_copy(update=update)
