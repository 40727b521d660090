"""The two networks of the paper: the Texture Synthesis Module (TSM) and AMV-ML."""

from models.amvml import AMVML
from models.config import AMVMLConfig, TSMConfig
from models.tsm import TextureSynthesisModule

__all__ = ["AMVML", "AMVMLConfig", "TSMConfig", "TextureSynthesisModule"]
