"""`python -m vectorforge.cli`: the same app as the `vectorforge` console script."""

from __future__ import annotations

from vectorforge.cli import app

app(prog_name="vectorforge")
