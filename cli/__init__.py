"""The `photo2cad` command: a thin shell that parses, calls library functions and formats their results.

Errors a user can act on (every `photo2cad.errors.Photo2CadError`, a settings value pydantic refuses, a missing
file) become one line, `error: ...`, and exit code 2, here and nowhere else; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

if __name__ != "photo2cad.cli":  # the folder imported from the repository root as a top-level `cli`
    raise ImportError("this folder installs as photo2cad.cli: import photo2cad.cli, not cli")

import logging
import platform
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from photo2cad import __version__
from photo2cad.cli.demo import demo
from photo2cad.cli.evaluate import eval_command
from photo2cad.cli.index import index_app
from photo2cad.cli.query import query
from photo2cad.cli.serve import serve
from photo2cad.cli.train import train_app
from photo2cad.cli.weights import weights_app
from photo2cad.errors import Photo2CadError


class _ReportingGroup(TyperGroup):
    """Every subcommand runs inside this group's invoke: the one place where errors become exit codes."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors click in recent versions)
        try:
            return super().invoke(ctx)
        except (Photo2CadError, ValidationError, FileNotFoundError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err


app = typer.Typer(
    cls=_ReportingGroup,
    help="photo2cad: photo in, ranked 3D CAD models out. Index a CAD catalogue, serve retrieval, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(index_app, name="index")
app.add_typer(train_app, name="train")
app.add_typer(weights_app, name="weights")
app.command("eval")(eval_command)
app.command("serve")(serve)
app.command("query")(query)
app.command("demo")(demo)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # faiss logs every instruction set it fails to load; only its failures matter to a user.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


@app.command()
def info() -> None:
    """Print versions, the device photo2cad would use and which optional back ends are installed."""
    import torch

    from photo2cad.device import pick_device

    try:
        import faiss

        faiss_info = f"{faiss.__version__} ({'GPU' if hasattr(faiss, 'StandardGpuResources') else 'CPU'} build)"
    except ImportError:
        faiss_info = "not installed"
    rows = {
        "photo2cad": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(pick_device("auto")),
        "faiss": faiss_info,
    }
    for key, value in rows.items():
        typer.echo(f"{key:10s} {value}")
