"""The root of every error photo2cad reports to a user: the CLI turns any of them into one line and exit code 2."""

from __future__ import annotations


class Photo2CadError(Exception):
    """A request that cannot be carried out as given; the message says what to change."""
