"""The networks of the paper (the Texture Synthesis Module and AMV-ML) and how they embed; with the dataset
readers (`datasets`), training (`training`) and evaluation (`evaluation`) as subpackages on higher floors."""

if __name__ != "photo2cad.models":  # the folder imported from the repository root as a top-level `models`
    raise ImportError("this folder installs as photo2cad.models: import photo2cad.models, not models")

from photo2cad.models.amvml import AMVML, vector_dim
from photo2cad.models.config import AMVMLConfig, TSMConfig
from photo2cad.models.tsm import TextureSynthesisModule

__all__ = ["AMVML", "AMVMLConfig", "TSMConfig", "TextureSynthesisModule", "vector_dim"]
