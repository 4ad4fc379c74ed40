"""Sizes on the command line; the parsing lives in the core (``lakeshift.sizes``) because
the API takes the same spellings."""

from __future__ import annotations

from lakeshift.sizes import human_bytes, parse_size

__all__ = ["human_bytes", "parse_size"]
