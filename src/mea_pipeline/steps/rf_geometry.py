"""Step 7: receptive-field geometry of every dense-noise STA step 4 wrote, and the LN model.

The maths is :mod:`mea_pipeline.geometry.rf` (the lab's preprocessing, centre, size, rotated
Gaussian, DoG and ON/OFF fits with bounded least squares and a fixed evaluation cap) and
:mod:`mea_pipeline.geometry.lnl`. Decisions that differ from the lab: the size metrics use the
RF's own frame range (40, 60); sigma_x, sigma_y and theta are stored and derived sizes name their
ellipse multiple; a unit without an STA or a failed fit is NaN plus ``fit_status``, never -5.
Centres are in checker units: ``gaussian_fit/center_x`` = column, ``center_y`` = row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..schema import Out
from ..stimulus_library import StimulusLibrary
from . import dense_noise_sta, load_recording, section_spike_times, section_time
from .registry import Step, StepContext, reader


@dataclass(frozen=True)
class RfGeometryParams:
    frame_range: tuple[int, int] = (40, 60)
    threshold_fraction: float = 0.5
    baseline_frames: int = 10
    sigma_t: float = 2.0
    padding: int = 5
    spatial_sigma: float = 1.5
    size_sigma: float = 0.5
    center_fit_radius: float = 5.0
    max_sigma: float = 7.5
    max_nfev: int = 2000
    lnl_fitting: bool = True
    lnl_bins: int = 50


@reader("rf_geometry")
def rf_movies(h5) -> list[str]:
    """Dense-noise movies whose STAs step 7 measured."""
    return list(h5["metadata/rf_sta_geometry"]) if "metadata/rf_sta_geometry" in h5 else []


class RfCenter(NamedTuple):
    """A unit's RF centre in checker units of its dense-noise movie."""

    col: float
    row: float
    source: str                 # 'gaussian_fit' or 'argmax'
    grid: tuple[int, int]       # checkers (rows, cols) of the noise movie


@reader("rf_geometry")
def rf_center(h5, unit: str, movie: str) -> RfCenter | None:
    """RF centre of ``unit`` in ``movie``, None if it has none.

    The rotated Gaussian's centre when that fit succeeded, else the argmax of the peak-to-peak
    map when the STA had signal.
    """
    base = f"units/{unit}/features/sta_{movie}/sta_geometry"
    if base not in h5:
        return None
    grid = tuple(h5[f"{base}/diff_map"].shape)
    fit = h5[f"{base}/gaussian_fit"] if f"{base}/gaussian_fit" in h5 else None
    if fit is not None and fit["fit_status"].asstr()[()] == "ok":
        return RfCenter(float(fit["center_x"][()]), float(fit["center_y"][()]), "gaussian_fit", grid)
    col, row = (float(h5[f"{base}/{key}"][()]) for key in ("center_col", "center_row"))
    return RfCenter(col, row, "argmax", grid) if np.isfinite(col) and np.isfinite(row) else None


def run(ctx: StepContext, p: RfGeometryParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..geometry.lnl import lnl_fit
    from ..geometry.rf import rf_geometry

    movies = dense_noise_sta.sta_movies(ctx)
    if not movies:
        ctx.warn("step 4 computed no dense-noise STA; no RF geometry")
    geometry_args = {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if not f.name.startswith("lnl")}
    library = StimulusLibrary(ctx.config.stimuli)
    frames = section_time.frame_timestamps(ctx)
    frame_period_s = float(np.median(np.diff(frames))) / load_recording.sampling_rate(ctx)
    fitted = 0
    for movie in movies:
        noise = library.movie_array(movie) if p.lnl_fitting else None
        frame0 = section_time.movie_frame0(ctx, movie)
        units = load_recording.unit_ids(ctx)
        for done, unit in enumerate(units):
            ctx.report_progress(done, len(units))
            sta = dense_noise_sta.sta(ctx, unit, movie)
            result = rf_geometry(sta, **geometry_args)
            if noise is not None and sta is not None:
                spikes = section_spike_times.trial_spikes(ctx, unit, movie, 0)
                result["lnl"] = lnl_fit(sta, noise, dense_noise_sta.spike_frames(spikes, frames, frame0),
                                        frames_before=sta.shape[0], frame_period_s=frame_period_s, n_bins=p.lnl_bins)
            ctx.tx.write_tree(f"units/{unit}/features/sta_{movie}/sta_geometry", result)
            fitted += result["gaussian_fit"]["fit_status"] == "ok"
        ctx.tx.write_tree(f"metadata/rf_sta_geometry/{movie}", {
            "sta_feature_name": f"sta_{movie}", "frame_range": np.asarray(p.frame_range, dtype=np.int64),
            "threshold_fraction": p.threshold_fraction, "lnl_fitting_enabled": int(p.lnl_fitting),
        })
    return {"movies": movies, "n_gaussian_fits_ok": int(fitted)}


GEO = "units/{unit}/features/sta_{movie}/sta_geometry"
STEP = Step(
    name="rf_geometry", number=7,
    upstream=("load_recording", "section_time", "section_spike_times", "dense_noise_sta"),
    reads=frozenset({"stimuli"}), params=RfGeometryParams, version="1", run=run,
    outputs=(
        Out(GEO + "/{field}", "any", None,
            "center_row, center_col (argmax, checker units, padding removed), size_x, size_y, area, "
            "equivalent_diameter (frames 40-60), peak_frame (-1 if none), diff_map (15, 15), sta_time_course, "
            "status, reason", required=False),
        Out(GEO + "/gaussian_fit/{field}", "any", 0,
            "rotated 2-D Gaussian: center_x (column), center_y (row), sigma_x (major axis), sigma_y, theta (rad, "
            "from +column toward +row), amplitude, offset, r_squared, ellipse_<k>sigma_* sizes, fit_status",
            required=False),
        Out(GEO + "/DoG/{field}", "any", 0, "concentric difference of Gaussians on the blurred map, fit_status",
            required=False),
        Out(GEO + "/ONOFF_model/{field}", "any", 0, "ON and OFF Gaussians of the signed extreme map, fit_status",
            required=False),
        Out(GEO + "/lnl/{field}", "any", None,
            "LN model: a, b, a_norm, log_likelihood, null_log_likelihood, bits_per_spike, r_squared, "
            "rectification_index, nonlinearity_index, threshold_g, n_frames, n_spikes, g_bin_centers, rate_vs_g, "
            "fit_status", required=False),
        Out("metadata/rf_sta_geometry/{movie}/{field}", "any", None,
            "sta_feature_name, frame_range, threshold_fraction, lnl_fitting_enabled", required=False),
    ),
    description="Receptive-field geometry (Gaussian, DoG, ON/OFF fits, size, time course) and LN model per STA",
)
