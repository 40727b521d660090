"""`python -m photo2cad.cli`: the `photo2cad` command."""

from photo2cad.cli import app

app()
