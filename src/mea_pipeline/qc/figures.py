"""Drawing help for the QC figures the steps declare (matplotlib, no screen needed).

Each step draws its own figure from its output through its readers (``Step.qc``); here are the
pieces they share. Figures are built with the object-oriented API (no pyplot state), so they can
be drawn from several threads.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

MAX_PANELS = 16    # units shown in a per-unit figure
PANEL_IN = 2.0     # inches per panel
MIN_WIDTH_IN = 6.4  # a figure of one or two units still has room for its title
TITLE_PT = 9
CHARS_PER_IN = 13  # of a TITLE_PT title: where its lines are wrapped


def grid(n: int, title: str, polar: bool = False) -> tuple[Figure, list]:
    """A figure of ``n`` square panels (polar with ``polar``, without ticks) in a near-square grid
    under ``title``, and its axes.

    The title is wrapped to the figure's width, so constrained layout keeps it whole.
    """
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    width = max(cols * PANEL_IN, MIN_WIDTH_IN)
    lines = textwrap.wrap(title, int(width * CHARS_PER_IN))
    fig = Figure(figsize=(width, rows * PANEL_IN + 0.2 * len(lines) + 0.2), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, subplot_kw={"projection": "polar"} if polar else None).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[:n]:  # the panels are images and polar plots: the title and colour bar give the scale
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("\n".join(lines), fontsize=TITLE_PT)
    return fig, list(axes[:n])


def colour_scale(fig: Figure, image, ax) -> None:
    """A small colour bar beside one panel: the image's values, readable without the data."""
    from matplotlib.ticker import MaxNLocator

    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.locator = MaxNLocator(4)  # a square-root scale would otherwise crowd its small values
    bar.update_ticks()
    bar.ax.tick_params(labelsize=6, length=2)
