"""QC figures of one recording, drawn from its output file (matplotlib, no screen needed).

One figure per topic: the electrical images with their soma centre and footprint (step 6), the
dense-noise STAs with their fitted RF ellipse (step 7), the axon pathways and the optic-nerve head
on the array (step 10) and the direction tuning under the moving bar (step 11). Each function takes
an open output file and returns a :class:`matplotlib.figure.Figure`, or None when the step's output
is not in the file. Figures are built with the object-oriented API (no pyplot state), so they can be
drawn from several threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from ..steps import load_recording

MAX_PANELS = 16
PANEL_IN = 1.6


def grid(n: int, polar: bool = False) -> tuple[Figure, list]:
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(cols * PANEL_IN, rows * PANEL_IN + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, subplot_kw={"projection": "polar"} if polar else None).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _text(group, key: str) -> str:
    return group[key].asstr()[()] if key in group else ""


def eimage_figure(h5) -> Figure | None:
    """Trough depth of the strongest units' eimages, soma centre (+) and half-max footprint."""
    units = [u for u in load_recording.unit_ids(h5) if "features/eimage_sta/geometry" in h5[f"units/{u}"]]
    depth = {}
    for unit in units:
        eimage = load_recording.eimage(h5, unit)
        if np.isfinite(eimage).any():
            trough = -np.nanmin(eimage - np.nanmean(eimage[:5], axis=0), axis=0)
            # Troughs within 3 robust SDs of the median are noise: shown flat, which also keeps the PNG small.
            floor = np.nanmedian(trough) + 3 * 1.4826 * np.nanmedian(np.abs(trough - np.nanmedian(trough)))
            depth[unit] = np.clip(trough - floor, 0, None)
    if not depth:
        return None
    shown = sorted(depth, key=lambda u: -np.nanmax(depth[u]))[:MAX_PANELS]
    fig, axes = grid(len(shown))
    for ax, unit in zip(axes, sorted(shown)):
        geometry = h5[f"units/{unit}/features/eimage_sta/geometry"]
        ax.imshow(depth[unit], cmap="magma", origin="upper")
        diff = geometry["diff_map"][()]
        if np.isfinite(diff).any() and np.nanmax(diff) > 0:
            ax.contour(diff, levels=[0.5 * np.nanmax(diff)], colors="cyan", linewidths=0.6)
        ax.plot(geometry["center_col"][()], geometry["center_row"][()], "+", color="cyan", ms=8)
        ax.set_title(unit, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("eimage trough depth (axis 1 down, axis 2 right), soma + and half-max footprint", fontsize=8)
    return fig


def rf_figure(h5, movie: str) -> Figure | None:
    """Each unit's STA at its peak frame with the 2-sigma ellipse of its unblurred Gaussian fit."""
    fits = {u: f"units/{u}/features/sta_{movie}/sta_geometry/gaussian_fit_unblurred"
            for u in load_recording.unit_ids(h5)}
    fitted = [u for u, path in fits.items() if path in h5 and _text(h5[path], "fit_status") == "ok"]
    if not fitted:
        return None
    r2 = {u: h5[f"{fits[u]}/r_squared"][()] for u in fitted}
    shown = sorted(sorted(fitted, key=lambda u: -r2[u])[:MAX_PANELS])
    fig, axes = grid(len(shown))
    for ax, unit in zip(axes, shown):
        sta = h5[f"units/{unit}/features/sta_{movie}/data"][()]
        centered = sta - sta[:10].mean(axis=0)
        frame = int(np.argmax(np.abs(centered).reshape(len(centered), -1).max(axis=1)))
        limit = np.abs(centered[frame]).max() or 1.0
        ax.imshow(centered[frame], cmap="RdBu_r", vmin=-limit, vmax=limit, origin="upper")
        fit = h5[fits[unit]]
        # Image axes (origin upper): the angle turns +column toward +row, as orientation_deg does.
        ax.add_patch(Ellipse((fit["center_x"][()], fit["center_y"][()]), 4 * fit["sigma_major"][()],
                             4 * fit["sigma_minor"][()], angle=fit["orientation_deg"][()], fill=False,
                             color="k", lw=0.8))
        ax.set_title(f"{unit} R2 {r2[unit]:.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"STA at its peak frame and the 2-sigma RF ellipse ({movie})", fontsize=8)
    return fig
