"""Options read from the settings models: each help text and default is written once, on the model's field."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel

DEVICE_HELP = "auto (GPU when present), cpu or cuda."


def setting_help(model: type[BaseModel], field: str, env_prefix: str | None = None, show_default: bool = True) -> str:
    info = model.model_fields[field]
    notes = [f"default: {info.default}"] if show_default else []
    if env_prefix is not None:
        notes.append(f"env {env_prefix}{field.upper()}")
    # Parentheses, not brackets: typer's rich help would read [..] as markup and drop it.
    return f"{info.description or ''} ({'; '.join(notes)})" if notes else info.description or ""


def setting_option(model: type[BaseModel], field: str, *flags: str, env_prefix: str | None = None) -> Any:
    """An option that is None unless given, so that the model's own default applies (`given` drops the Nones)."""
    return typer.Option(None, *flags, help=setting_help(model, field, env_prefix), show_default=False)


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave: the settings model fills in the rest with its defaults."""
    return {name: value for name, value in values.items() if value is not None}
