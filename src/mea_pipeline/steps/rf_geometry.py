"""Step 7: receptive-field geometry of every dense-noise STA step 4 wrote, and the LN model.

The maths is :mod:`mea_pipeline.geometry.rf` and :mod:`mea_pipeline.geometry.lnl`. The lab's keys
hold the lab's quantities (``gaussian_fit`` is the lab's fit of the blurred peak-to-peak map, with
its theta convention and sigma order); what we compute better sits beside them under its own key
(``gaussian_fit_unblurred``: the RF's own sigmas). Deviations, each marked in the schema: the
size metrics use the RF's own frame range (40, 60); the LN rates are per second of the display
frames binned; a unit without an STA or a failed fit is NaN plus ``fit_status``, never -5.
Centres are in checker units of the noise movie: ``center_x`` = column, ``center_y`` = row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..frames import STIMULUS
from ..geometry.rf import RfGeometryParams
from ..schema import FIXED, LAB, OURS, Out, outs
from ..stimulus_library import StimulusLibrary
from ..store import WithAttrs
from . import dense_noise_sta, load_recording, section_spike_times, section_time
from .registry import Step, StepContext, reader


@reader("rf_geometry")
def rf_movies(h5) -> list[str]:
    """Dense-noise movies whose STAs step 7 measured."""
    key = f"{META}/movies"
    return list(h5[key].asstr()[()]) if key in h5 else []


class RfCenter(NamedTuple):
    """A unit's RF centre in checker units of its dense-noise movie."""

    col: float
    row: float
    source: str                 # the fit's group name, or 'argmax'
    grid: tuple[int, int]       # checkers (rows, cols) of the noise movie


@reader("rf_geometry")
def rf_center(h5, unit: str, movie: str, fit: str = "gaussian_fit") -> RfCenter | None:
    """RF centre of ``unit`` in ``movie``, None if it has none.

    The centre of the Gaussian ``fit`` when it succeeded, else the argmax of the peak-to-peak map
    when the STA had signal. The default is the lab's rotated Gaussian, what the lab's DSGC step
    uses; ``'gaussian_fit_unblurred'`` is ours, closer to the RF's centre when the blurred map's
    fit wanders (short noise, small RFs).
    """
    base = f"units/{unit}/features/sta_{movie}/sta_geometry"
    if base not in h5:
        return None
    grid = tuple(h5[f"{base}/diff_map"].shape)
    group = h5[f"{base}/{fit}"] if f"{base}/{fit}" in h5 else None
    if group is not None and group["fit_status"].asstr()[()] == "ok":
        return RfCenter(float(group["center_x"][()]), float(group["center_y"][()]), fit, grid)
    col, row = (float(h5[f"{base}/{key}"][()]) for key in ("center_col", "center_row"))
    return RfCenter(col, row, "argmax", grid) if np.isfinite(col) and np.isfinite(row) else None


def run(ctx: StepContext, p: RfGeometryParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..geometry.lnl import lnl_fit
    from ..geometry.rf import rf_geometry

    movies = dense_noise_sta.sta_movies(ctx)
    if not movies:
        ctx.warn("step 4 computed no dense-noise STA; no RF geometry")
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
            result = rf_geometry(sta, p)
            if noise is not None and sta is not None:
                spikes = section_spike_times.trial_spikes(ctx, unit, movie, 0)
                result["lnl"] = lnl_fit(sta, noise, dense_noise_sta.spike_frames(spikes, frames, frame0),
                                        frames_before=sta.shape[0], frame_period_s=frame_period_s,
                                        n_bins=p.lnl_bins, min_spikes=p.lnl_min_spikes)
            ctx.tx.write_tree(f"units/{unit}/features/sta_{movie}/sta_geometry", _angles_named(result))
            fitted += result["gaussian_fit"]["fit_status"] == "ok"
    # The lab's layout describes one STA feature; the parameters are the same for every movie.
    ctx.tx.write_tree(META, {
        "sta_feature_name": f"sta_{movies[0]}" if movies else "",
        "frame_range": np.asarray(p.frame_range, dtype=np.int64), "threshold_fraction": float(p.threshold_fraction),
        "lnl_fitting_enabled": np.bool_(p.lnl_fitting), "movies": list(movies),
        "frame_period_s": frame_period_s,
    })
    return {"movies": movies, "n_gaussian_fits_ok": int(fitted)}


def _angles_named(result: dict) -> dict:
    """The fit angles with their frame and convention as attributes of their datasets."""
    lab, ours = result["gaussian_fit"], result["gaussian_fit_unblurred"]
    lab["theta"] = WithAttrs(lab["theta"], {"frame": STIMULUS, "units": "rad", "convention": LAB_THETA})
    ours["orientation_deg"] = WithAttrs(ours["orientation_deg"], {"frame": STIMULUS, "units": "deg",
                                                                  "convention": "0 = +column, 90 = +row"})
    return result


LAB_THETA = "the lab's: sigma_x axis along (cos theta, -sin theta) in (column, row), from +column toward -row"
GEO = "units/{unit}/features/sta_{movie}/sta_geometry"
META = "metadata/rf_sta_geometry"
CHECKERS = "checkers of the noise movie"
SIZE_FIX = "frame range (40, 60), the RF's own: the lab's unified pipeline passed the soma's (10, 14)"
LN_FIX = ("rates per second of the display frames binned: the lab divides by 1/15 s while binning display "
          "frames (b and the log-likelihoods shift by n log 4, rate_vs_g by 4 at 60 Hz)")
NO_SENTINEL = "no -5 sentinel: an STA without signal gives NaN plus a status"
ONOFF_FAILED = dict(origin=FIXED, fixed_where_nan=True,
                    fixed="a polarity without signal or a failed fit is NaN plus fit_status, not the lab's defaults "
                          "(sigma 0, amplitude 0, the RF centre)")
# The lab sums the generator signal in float32: its LN numbers carry float32's precision.
LN_PRECISION = 1e-4
FIT_STATUS = "'ok', or why the fit was not made or failed (its values are then NaN)"
STEP = Step(
    name="rf_geometry", position=7,
    upstream=("load_recording", "section_time", "section_spike_times", "dense_noise_sta"),
    reads=frozenset({"stimuli"}), params=RfGeometryParams, version="2", run=run,
    outputs=(
        *outs(GEO, ("center_row", "center_col"), "f", 0,
              "{name} of the argmax of the peak-to-peak map M (padding removed; NaN without an STA)",
              required=False, origin=FIXED, fixed_where_nan=True, fixed=NO_SENTINEL, units=CHECKERS, frame=STIMULUS),
        *outs(GEO, ("size_x", "size_y"), "f", 0,
              "{name}: extent along columns (x) / rows (y) of the half-max region of M", required=False,
              origin=FIXED, fixed=SIZE_FIX, units=CHECKERS, frame=STIMULUS),
        Out(GEO + "/area", "f", 0, "pixel count of that region", required=False, origin=FIXED, fixed=SIZE_FIX,
            units="checkers^2"),
        Out(GEO + "/equivalent_diameter", "f", 0, "2 sqrt(area / pi)", required=False, origin=FIXED, fixed=SIZE_FIX,
            units=CHECKERS),
        Out(GEO + "/peak_frame", "i", 0, "STA frame of the largest absolute preprocessed value (-1 without an STA)",
            required=False, origin=LAB, units="STA frames"),
        Out(GEO + "/diff_map", "f", 2, "M, the peak-to-peak map of the blurred STA (rows, cols)", required=False,
            origin=LAB, units="STA units", frame=STIMULUS),
        Out(GEO + "/sta_time_course", "f", 1, "preprocessed trace at the rounded gaussian_fit centre (NaN if it failed)",
            required=False, origin=LAB, units="STA units"),
        *outs(GEO, ("status", "reason"), "str", 0, "{name}: ok, no_sta or flat_sta, and why", required=False,
              origin=OURS),
        *outs(GEO + "/gaussian_fit", ("center_x", "center_y"), "f", 0,
              "lab's rotated Gaussian on M: {name} (x = column, y = row)", required=False, origin=LAB, units=CHECKERS,
              frame=STIMULUS),
        *outs(GEO + "/gaussian_fit", ("sigma_x", "sigma_y"), "f", 0,
              "lab's rotated Gaussian on M: {name} in the fit's order (not sorted), includes the 1.5-checker blur",
              required=False, origin=LAB, units=CHECKERS),
        Out(GEO + "/gaussian_fit/theta", "f", 0,
            "rotation of the sigma_x axis in [-pi, pi], " + LAB_THETA, required=False, origin=LAB,
            units="rad", frame=STIMULUS),
        *outs(GEO + "/gaussian_fit", ("amplitude", "offset"), "f", 0, "lab's rotated Gaussian on M: {name}",
              required=False, origin=LAB, units="STA units"),
        Out(GEO + "/gaussian_fit/r_squared", "f", 0, "R² of that fit over the padded map", required=False,
            origin=LAB),
        Out(GEO + "/gaussian_fit/fit_status", "str", 0, FIT_STATUS, required=False, origin=OURS),
        *outs(GEO + "/gaussian_fit_unblurred", ("center_x", "center_y"), "f", 0,
              "rotated Gaussian on the unblurred spatial RF: {name} (x = column, y = row)", required=False,
              origin=OURS, units=CHECKERS, frame=STIMULUS),
        *outs(GEO + "/gaussian_fit_unblurred", ("sigma_major", "sigma_minor"), "f", 0,
              "the RF's own {name} (no blur)", required=False, origin=OURS, units=CHECKERS),
        Out(GEO + "/gaussian_fit_unblurred/orientation_deg", "f", 0,
            "orientation of the major axis in [0, 180): 0 = +column, 90 = +row", required=False, origin=OURS,
            units="deg", frame=STIMULUS),
        *outs(GEO + "/gaussian_fit_unblurred", ("amplitude", "offset"), "f", 0,
              "{name} (STA units; the amplitude's sign is the main lobe's)", required=False, origin=OURS,
              units="STA units"),
        Out(GEO + "/gaussian_fit_unblurred/r_squared", "f", 0, "R² over the unpadded map", required=False,
            origin=OURS),
        *outs(GEO + "/gaussian_fit_unblurred", ("ellipse_1sigma_area", "ellipse_2sigma_area"), "f", 0,
              "{name}: pi k² sigma_major sigma_minor", required=False, origin=OURS, units="checkers^2"),
        *outs(GEO + "/gaussian_fit_unblurred",
              ("ellipse_1sigma_equivalent_diameter", "ellipse_2sigma_equivalent_diameter"), "f", 0,
              "{name}: 2 k sqrt(sigma_major sigma_minor)", required=False, origin=OURS, units=CHECKERS),
        Out(GEO + "/gaussian_fit_unblurred/fit_status", "str", 0, FIT_STATUS, required=False, origin=OURS),
        *outs(GEO + "/DoG", ("center_x", "center_y"), "f", 0, "lab's concentric DoG on M: {name}", required=False,
              origin=LAB, units=CHECKERS, frame=STIMULUS),
        *outs(GEO + "/DoG", ("sigma_exc", "sigma_inh"), "f", 0, "lab's DoG on M: {name} (includes the blur)",
              required=False, origin=LAB, units=CHECKERS),
        *outs(GEO + "/DoG", ("amp_exc", "amp_inh", "offset"), "f", 0, "lab's DoG on M: {name}", required=False,
              origin=LAB, units="STA units"),
        Out(GEO + "/DoG/r_squared", "f", 0, "R² of the DoG over the padded map", required=False, origin=LAB),
        Out(GEO + "/DoG/fit_status", "str", 0, FIT_STATUS, required=False, origin=OURS),
        *outs(GEO + "/ONOFF_model", [f"{s}_center_{a}" for s in ("on", "off") for a in "xy"], "f", 0,
              "lab's axis-aligned Gaussian of one polarity of the signed extreme map: {name}", required=False,
              units=CHECKERS, frame=STIMULUS, **ONOFF_FAILED),
        *outs(GEO + "/ONOFF_model", [f"{s}_sigma_{a}" for s in ("on", "off") for a in "xy"], "f", 0,
              "lab's ON/OFF Gaussian: {name} (includes the blur)", required=False, units=CHECKERS, **ONOFF_FAILED),
        *outs(GEO + "/ONOFF_model", ("on_amplitude", "off_amplitude"), "f", 0, "lab's ON/OFF Gaussian: {name}",
              required=False, units="STA units", **ONOFF_FAILED),
        *outs(GEO + "/ONOFF_model", ("on_r_squared", "off_r_squared"), "f", 0, "lab's ON/OFF Gaussian: {name}",
              required=False, **ONOFF_FAILED),
        Out(GEO + "/ONOFF_model/fit_status", "str", 0, FIT_STATUS + " (per polarity)", required=False, origin=OURS),
        *outs(GEO + "/lnl", ("a", "a_norm"), "f", 0,
              "LN model rate = exp(b + a g): {name} (a per unit of g, a_norm per standard deviation of g)",
              required=False, origin=LAB, precision=LN_PRECISION),
        Out(GEO + "/lnl/b", "f", 0, "log rate at g = 0", required=False, origin=FIXED, fixed=LN_FIX, units="log Hz",
            precision=LN_PRECISION),
        *outs(GEO + "/lnl", ("log_likelihood", "null_log_likelihood"), "f", 0,
              "{name}: sum(y log rate - rate dt) of the model / of a constant rate", required=False, origin=FIXED,
              fixed=LN_FIX, precision=LN_PRECISION),
        Out(GEO + "/lnl/bits_per_spike", "f", 0, "(LL - null LL) / (n_spikes ln 2)", required=False, origin=LAB,
            units="bits/spike", precision=LN_PRECISION),
        *outs(GEO + "/lnl", ("r_squared", "rectification_index", "nonlinearity_index"), "f", 0,
              "LN model: {name}", required=False, origin=LAB, precision=LN_PRECISION),
        Out(GEO + "/lnl/threshold_g", "f", 0, "upward mean-rate crossing of the nonlinearity curve", required=False,
            origin=LAB, units="std of the bin centres", precision=LN_PRECISION),
        *outs(GEO + "/lnl", ("n_frames", "n_spikes"), "i", 0, "LN model: {name} in the valid frame range",
              required=False, origin=LAB),
        Out(GEO + "/lnl/g_bin_centers", "f", 1, "float32 (lnl_bins,) centres of the generator-signal bins",
            required=False, origin=LAB, precision=LN_PRECISION),
        Out(GEO + "/lnl/rate_vs_g", "f", 1, "float32 (lnl_bins,) histogram nonlinearity, smoothed by one bin",
            required=False, origin=FIXED, fixed=LN_FIX, units="Hz"),
        Out(GEO + "/lnl/fit_status", "str", 0, FIT_STATUS, required=False, origin=OURS),
        Out(META + "/sta_feature_name", "str", 0, "sta_<first dense-noise movie> (the lab's one STA feature)",
            origin=LAB),
        Out(META + "/frame_range", "i", 1, "frame range of the size metrics", origin=FIXED, fixed=SIZE_FIX,
            units="STA frames"),
        Out(META + "/threshold_fraction", "f", 0, "half-max fraction of the size region", origin=LAB),
        Out(META + "/lnl_fitting_enabled", "b", 0, "whether the LN model was fitted", origin=LAB),
        Out(META + "/movies", "str", 1, "every dense-noise movie measured", origin=OURS),
        Out(META + "/frame_period_s", "f", 0, "display frame period the LN rates use", origin=OURS, units="s"),
    ),
    description="Receptive-field geometry (Gaussian, DoG, ON/OFF fits, size, time course) and LN model per STA",
)
