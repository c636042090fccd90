"""Tabula's thin command-line front (`tabula`, `python -m tabula`); see tabula/cli.py."""

from tabula.cli import build_parser, main

__all__ = ["build_parser", "main"]
