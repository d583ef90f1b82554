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
from matplotlib.patches import Circle, Ellipse

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


def ap_figure(h5) -> Figure | None:
    """Axon centroids and fitted pathways of every tracked unit, somas, and the ONH on the array."""
    if "metadata/ap_tracking" not in h5:
        return None
    fig = Figure(figsize=(5.2, 5.2), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(-0.5, 64.5)
    ax.set_ylim(64.5, -0.5)
    for unit in load_recording.unit_ids(h5):
        track = h5.get(f"units/{unit}/features/ap_tracking")
        if track is None or "refined_soma" not in track:
            continue
        row, col = track["refined_soma/x"][()], track["refined_soma/y"][()]
        tracked = _text(track, "status") == "tracked"
        ax.plot(col, row, "o", ms=3, color="tab:red" if tracked else "0.6")
        if tracked and "post_processed_data/axon_centroids" in track:
            points = track["post_processed_data/axon_centroids"][()]
            ax.plot(points[:, 2], points[:, 1], ".", ms=2, color="tab:blue")
            slope, intercept = track["ap_pathway/slope"][()], track["ap_pathway/intercept"][()]
            cols = np.array([points[:, 2].min(), points[:, 2].max()])
            ax.plot(cols, slope * cols + intercept, "-", lw=0.6, color="tab:blue")
    onh = h5.get("metadata/ap_tracking/all_ap_intersection")
    title = "no optic-nerve head"
    if onh is not None:
        ax.plot(onh["x"][()], onh["y"][()], "*", ms=14, color="gold", mec="k")
        title = f"ONH ({onh['x'][()]:.1f}, {onh['y'][()]:.1f}) by {_text(onh, 'method')}"
        ax.set_xlim(min(-0.5, onh["x"][()] - 2), max(64.5, onh["x"][()] + 2))
        ax.set_ylim(max(64.5, onh["y"][()] + 2), min(-0.5, onh["y"][()] - 2))
    ax.add_patch(Circle((32.5, 32.5), 50, fill=False, ls=":", color="0.5"))
    ax.set_aspect("equal")
    ax.set_xlabel("col (eimage axis 2)")
    ax.set_ylabel("row (eimage axis 1)")
    ax.set_title(f"axon pathways (blue), somas (red: tracked); {title}", fontsize=8)
    return fig


def dsgc_figure(h5, movie: str) -> Figure | None:
    """Polar plot of the mean spike count per direction of the most direction-selective units."""
    results = {}
    for unit in load_recording.unit_ids(h5):
        group = h5.get(f"units/{unit}/features/{movie}/dsgc")
        if group is not None and _text(group, "status") == "ok" and np.isfinite(group["dsi_vector"][()]):
            results[unit] = group
    if not results:
        return None
    shown = sorted(sorted(results, key=lambda u: -results[u]["dsi_vector"][()])[:MAX_PANELS])
    fig, axes = grid(len(shown), polar=True)
    for ax, unit in zip(axes, shown):
        group = results[unit]
        angles = np.deg2rad(np.append(group["direction_list"][()], group["direction_list"][0]))
        counts = np.append(group["spike_counts"][()], group["spike_counts"][0])
        ax.plot(angles, counts, "-", color="tab:purple", lw=1)
        ax.fill(angles, counts, alpha=0.2, color="tab:purple")
        # Screen angles: 90 deg = toward +row = down, so the polar axes run clockwise.
        ax.set_theta_direction(-1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{unit} DSI {group['dsi_vector'][()]:.2f} p {group['p_value'][()]:.3f}", fontsize=6)
    fig.suptitle(f"spikes per bar direction ({movie}; 0 deg = right, 90 deg = down)", fontsize=8)
    return fig
