"""Checkpoints of every network in one format, and ImageNet initialisation of the backbones."""
