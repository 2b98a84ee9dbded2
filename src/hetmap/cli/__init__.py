"""The `hetmap` command line (typer)."""

from hetmap.cli.app import app, main

__all__ = ["app", "main"]
