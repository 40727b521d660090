"""Checkpoints of every network in one format, ImageNet initialisation of the backbones, the bundled weights."""

if __name__ != "photo2cad.weights":  # the folder imported from the repository root as a top-level `weights`
    raise ImportError("this folder installs as photo2cad.weights: import photo2cad.weights, not weights")
