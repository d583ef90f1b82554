"""Drawing help for the QC figures the steps declare (matplotlib, no screen needed).

Each step draws its own figure from its output through its readers (``Step.qc``); here are the
pieces they share. Figures are built with the object-oriented API (no pyplot state), so they can
be drawn from several threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

MAX_PANELS = 16   # units shown in a per-unit figure
PANEL_IN = 1.6    # inches per panel


def grid(n: int, polar: bool = False) -> tuple[Figure, list]:
    """A figure of ``n`` square panels (polar with ``polar``) in a near-square grid, and its axes."""
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(cols * PANEL_IN, rows * PANEL_IN + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, subplot_kw={"projection": "polar"} if polar else None).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])
