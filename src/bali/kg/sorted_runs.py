"""Run starts in sorted frames: the KG builders deduplicate by a sort plus a comparison with
the row before (no hash group-by), keeping the rows where :func:`new_run` is true.
"""

from __future__ import annotations

import polars as pl


def new_run_expr(*exprs: pl.Expr) -> pl.Expr:
    """True where any of ``exprs`` differs from the row before (and on the first row)."""
    return pl.any_horizontal(e.ne_missing(e.shift(1)) for e in exprs).fill_null(True)


def new_run(*cols: str) -> pl.Expr:
    """:func:`new_run_expr` on columns."""
    return new_run_expr(*(pl.col(c) for c in cols))
