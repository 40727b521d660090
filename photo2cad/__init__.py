"""photo2cad: photo in, ranked 3D CAD models out."""

__version__ = "0.1.0"
