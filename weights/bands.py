"""Score bands: what the score of a first result means for the weights that produced it, stored in their header.

`photo2cad.models.evaluation.bands.measure_bands` measures them on held-out photos; the service reads them to say
whether a match is strong, possible or weak.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from photo2cad.weights.checkpoint import CheckpointHeader

Match = Literal["strong", "possible", "weak"]


class ScoreBands(BaseModel):
    """Score edges of the first result: >= strong, likely the model; < weak, likely not in the catalogue at all.

    `strong` is None when no score was high enough for its first results to be right often enough: the weights
    can then say that a match is weak, never that it is strong (on models no training photo showed, that is honest).
    """

    strong: float | None = Field(
        description="first results scoring at least this were the photographed model most often: a strong match; "
        "null when no score was reliably right on the held-out photos (a match is then never called strong)"
    )
    weak: float = Field(description="below this, first results were almost never the photographed model")
    strong_precision: float | None = Field(description="share of first results >= strong that were right")
    weak_share_of_right: float = Field(description="share of right first results that scored below weak")
    absent_share_below_weak: float = Field(
        description="share of photos whose model was taken out of the pool that scored below weak"
    )
    measured_on: str = Field(description="which photos, which pool, how many")

    def match(self, score: float) -> Match:
        if self.strong is not None and score >= self.strong:
            return "strong"
        return "possible" if score >= self.weak else "weak"


def score_bands_of(header: CheckpointHeader) -> ScoreBands | None:
    """The bands a checkpoint's header records, or None (weights trained before bands were measured)."""
    recorded = header.notes.get("score_bands")
    return ScoreBands.model_validate(recorded) if recorded else None
