"""rf_geometry: receptive-field geometry of every dense-noise STA dense_noise_sta wrote, and the LN model.

The maths is :mod:`mea_pipeline.geometry.rf` and :mod:`mea_pipeline.geometry.lnl`. The lab's keys
hold the lab's quantities (``gaussian_fit`` is the lab's fit of the blurred peak-to-peak map, with
its theta convention and sigma order); what we compute better sits beside them under its own key
(``gaussian_fit_unblurred``: the RF's own sigmas). Deviations, each marked in the schema: the
size metrics use the RF's own frame range (40, 60); the LN rates are per second of the display
frames binned; a unit without an STA or a failed fit is NaN plus ``fit_status``, never -5.
Centres are in checker units of the noise movie: ``center_x`` = column, ``center_y`` = row.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from ..frames import STIMULUS
from ..geometry.rf import RfGeometryParams
from ..schema import FIXED, LAB, OURS, Out, outs
from ..stimulus_library import StimulusLibrary
from . import dense_noise_sta, load_recording, section_spike_times, section_time
from .registry import Qc, Step, StepContext, reader

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


def _written(when: str, *declared: Out) -> tuple[Out, ...]:
    """``declared`` as outputs written only ``when`` (which their meaning says)."""
    return tuple(dataclasses.replace(out, required=False, doc=f"{out.doc}; written {when}") for out in declared)


# Every key of geometry.rf.rf_geometry()'s result, for each unit and dense-noise movie.
PER_STA = _written(
    "for every unit and dense-noise movie (none without a dense-noise STA)",
    *outs(GEO, ("center_row", "center_col"), "f", 0,
          "{name} of the argmax of the peak-to-peak map M (padding removed; NaN without an STA)",
          origin=FIXED, fixed_where_nan=True, fixed=NO_SENTINEL, units=CHECKERS, frame=STIMULUS),
    *outs(GEO, ("size_x", "size_y"), "f", 0,
          "{name}: extent along columns (x) / rows (y) of the half-max region of M",
          origin=FIXED, fixed=SIZE_FIX, units=CHECKERS, frame=STIMULUS),
    Out(GEO + "/area", "f", 0, "pixel count of that region", origin=FIXED, fixed=SIZE_FIX,
        units="checkers^2"),
    Out(GEO + "/equivalent_diameter", "f", 0, "2 sqrt(area / pi)", origin=FIXED, fixed=SIZE_FIX,
        units=CHECKERS),
    Out(GEO + "/peak_frame", "i", 0, "STA frame of the largest absolute preprocessed value (-1 without an STA)",
        origin=LAB, units="STA frames"),
    Out(GEO + "/diff_map", "f", 2, "M, the peak-to-peak map of the blurred STA (rows, cols)",
        origin=LAB, units="STA units", frame=STIMULUS),
    Out(GEO + "/sta_time_course", "f", 1, "preprocessed trace at the rounded gaussian_fit centre (NaN if it failed)",
        origin=LAB, units="STA units"),
    *outs(GEO, ("status", "reason"), "str", 0, "{name}: ok, no_sta or flat_sta, and why",
          origin=OURS),
    *outs(GEO + "/gaussian_fit", ("center_x", "center_y"), "f", 0,
          "lab's rotated Gaussian on M: {name} (x = column, y = row)", origin=LAB, units=CHECKERS,
          frame=STIMULUS),
    *outs(GEO + "/gaussian_fit", ("sigma_x", "sigma_y"), "f", 0,
          "lab's rotated Gaussian on M: {name} in the fit's order (not sorted), includes the 1.5-checker blur",
          origin=LAB, units=CHECKERS),
    Out(GEO + "/gaussian_fit/theta", "f", 0,
        "rotation of the sigma_x axis in [-pi, pi], " + LAB_THETA, origin=LAB,
        units="rad", frame=STIMULUS),
    *outs(GEO + "/gaussian_fit", ("amplitude", "offset"), "f", 0, "lab's rotated Gaussian on M: {name}",
          origin=LAB, units="STA units"),
    Out(GEO + "/gaussian_fit/r_squared", "f", 0, "R² of that fit over the padded map",
        origin=LAB),
    Out(GEO + "/gaussian_fit/fit_status", "str", 0, FIT_STATUS, origin=OURS),
    *outs(GEO + "/gaussian_fit_unblurred", ("center_x", "center_y"), "f", 0,
          "rotated Gaussian on the unblurred spatial RF: {name} (x = column, y = row)",
          origin=OURS, units=CHECKERS, frame=STIMULUS),
    *outs(GEO + "/gaussian_fit_unblurred", ("sigma_major", "sigma_minor"), "f", 0,
          "the RF's own {name} (no blur)", origin=OURS, units=CHECKERS),
    Out(GEO + "/gaussian_fit_unblurred/orientation_deg", "f", 0,
        "orientation of the major axis in [0, 180): 0 = +column, 90 = +row", origin=OURS,
        units="deg", frame=STIMULUS),
    *outs(GEO + "/gaussian_fit_unblurred", ("amplitude", "offset"), "f", 0,
          "{name} (STA units; the amplitude's sign is the main lobe's)", origin=OURS,
          units="STA units"),
    Out(GEO + "/gaussian_fit_unblurred/r_squared", "f", 0, "R² over the unpadded map",
        origin=OURS),
    *outs(GEO + "/gaussian_fit_unblurred", ("ellipse_1sigma_area", "ellipse_2sigma_area"), "f", 0,
          "{name}: pi k² sigma_major sigma_minor", origin=OURS, units="checkers^2"),
    *outs(GEO + "/gaussian_fit_unblurred",
          ("ellipse_1sigma_equivalent_diameter", "ellipse_2sigma_equivalent_diameter"), "f", 0,
          "{name}: 2 k sqrt(sigma_major sigma_minor)", origin=OURS, units=CHECKERS),
    Out(GEO + "/gaussian_fit_unblurred/fit_status", "str", 0, FIT_STATUS, origin=OURS),
    *outs(GEO + "/DoG", ("center_x", "center_y"), "f", 0, "lab's concentric DoG on M: {name}",
          origin=LAB, units=CHECKERS, frame=STIMULUS),
    *outs(GEO + "/DoG", ("sigma_exc", "sigma_inh"), "f", 0, "lab's DoG on M: {name} (includes the blur)",
          origin=LAB, units=CHECKERS),
    *outs(GEO + "/DoG", ("amp_exc", "amp_inh", "offset"), "f", 0, "lab's DoG on M: {name}",
          origin=LAB, units="STA units"),
    Out(GEO + "/DoG/r_squared", "f", 0, "R² of the DoG over the padded map", origin=LAB),
    Out(GEO + "/DoG/fit_status", "str", 0, FIT_STATUS, origin=OURS),
    *outs(GEO + "/ONOFF_model", [f"{s}_center_{a}" for s in ("on", "off") for a in "xy"], "f", 0,
          "lab's axis-aligned Gaussian of one polarity of the signed extreme map: {name}",
          units=CHECKERS, frame=STIMULUS, **ONOFF_FAILED),
    *outs(GEO + "/ONOFF_model", [f"{s}_sigma_{a}" for s in ("on", "off") for a in "xy"], "f", 0,
          "lab's ON/OFF Gaussian: {name} (includes the blur)", units=CHECKERS, **ONOFF_FAILED),
    *outs(GEO + "/ONOFF_model", ("on_amplitude", "off_amplitude"), "f", 0, "lab's ON/OFF Gaussian: {name}",
          units="STA units", **ONOFF_FAILED),
    *outs(GEO + "/ONOFF_model", ("on_r_squared", "off_r_squared"), "f", 0, "lab's ON/OFF Gaussian: {name}",
          **ONOFF_FAILED),
    Out(GEO + "/ONOFF_model/fit_status", "str", 0, FIT_STATUS + " (per polarity)", origin=OURS),
)
# Every key of geometry.lnl.lnl_fit()'s result.
LN_MODEL = _written(
    "when lnl_fitting is on and the unit has an STA of the movie",
    *outs(GEO + "/lnl", ("a", "a_norm"), "f", 0,
          "LN model rate = exp(b + a g): {name} (a per unit of g, a_norm per standard deviation of g)",
          origin=LAB, precision=LN_PRECISION),
    Out(GEO + "/lnl/b", "f", 0, "log rate at g = 0", origin=FIXED, fixed=LN_FIX, units="log Hz",
        precision=LN_PRECISION),
    *outs(GEO + "/lnl", ("log_likelihood", "null_log_likelihood"), "f", 0,
          "{name}: sum(y log rate - rate dt) of the model / of a constant rate", origin=FIXED,
          fixed=LN_FIX, precision=LN_PRECISION),
    Out(GEO + "/lnl/bits_per_spike", "f", 0, "(LL - null LL) / (n_spikes ln 2)", origin=LAB,
        units="bits/spike", precision=LN_PRECISION),
    *outs(GEO + "/lnl", ("r_squared", "rectification_index", "nonlinearity_index"), "f", 0,
          "LN model: {name}", origin=LAB, precision=LN_PRECISION),
    Out(GEO + "/lnl/threshold_g", "f", 0, "upward mean-rate crossing of the nonlinearity curve",
        origin=LAB, units="std of the bin centres", precision=LN_PRECISION),
    *outs(GEO + "/lnl", ("n_frames", "n_spikes"), "i", 0, "LN model: {name} in the valid frame range",
          origin=LAB),
    Out(GEO + "/lnl/g_bin_centers", "f", 1, "float32 (lnl_bins,) centres of the generator-signal bins",
        origin=LAB, precision=LN_PRECISION),
    Out(GEO + "/lnl/rate_vs_g", "f", 1, "float32 (lnl_bins,) histogram nonlinearity, smoothed by one bin",
        origin=FIXED, fixed=LN_FIX, units="Hz"),
    Out(GEO + "/lnl/fit_status", "str", 0, FIT_STATUS, origin=OURS),
)
# The outputs under GEO by their path below it ('gaussian_fit/center_x'): how the writer and readers name them.
STA_GEOMETRY = {out.path.removeprefix(GEO + "/"): out for out in PER_STA + LN_MODEL}
# The fit angles carry their frame and convention as attributes of their datasets.
ANGLE_ATTRS = {
    "gaussian_fit/theta": {"frame": STIMULUS, "units": "rad", "convention": LAB_THETA},
    "gaussian_fit_unblurred/orientation_deg": {"frame": STIMULUS, "units": "deg",
                                               "convention": "0 = +column, 90 = +row"},
}
STA_FEATURE_NAME = Out(META + "/sta_feature_name", "str", 0,
                       "sta_<first dense-noise movie> (the lab's one STA feature)", origin=LAB)
FRAME_RANGE = Out(META + "/frame_range", "i", 1, "frame range of the size metrics", origin=FIXED, fixed=SIZE_FIX,
                  units="STA frames")
THRESHOLD_FRACTION = Out(META + "/threshold_fraction", "f", 0, "half-max fraction of the size region", origin=LAB)
LNL_FITTING_ENABLED = Out(META + "/lnl_fitting_enabled", "b", 0, "whether the LN model was fitted", origin=LAB)
MOVIES = Out(META + "/movies", "str", 1, "every dense-noise movie measured", origin=OURS)
FRAME_PERIOD_S = Out(META + "/frame_period_s", "f", 0, "display frame period the LN rates use", origin=OURS, units="s")


@reader("rf_geometry")
def rf_movies(h5) -> list[str]:
    """Dense-noise movies whose STAs rf_geometry measured."""
    path = MOVIES.at()
    return list(h5[path].asstr()[()]) if path in h5 else []


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
    def value(name: str):
        return h5[STA_GEOMETRY[name].at(unit=unit, movie=movie)][()]

    if STA_GEOMETRY["diff_map"].at(unit=unit, movie=movie) not in h5:
        return None
    grid = tuple(value("diff_map").shape)
    if _fit_ok(h5, unit, movie, fit):
        return RfCenter(float(value(f"{fit}/center_x")), float(value(f"{fit}/center_y")), fit, grid)
    col, row = float(value("center_col")), float(value("center_row"))
    return RfCenter(col, row, "argmax", grid) if np.isfinite(col) and np.isfinite(row) else None


def _fit_ok(h5, unit: str, movie: str, fit: str) -> bool:
    """Whether ``unit``'s ``fit`` (a fit group's name) of ``movie`` is in the file and succeeded."""
    path = STA_GEOMETRY[f"{fit}/fit_status"].at(unit=unit, movie=movie)
    return path in h5 and h5[path].asstr()[()] == "ok"


def run(ctx: StepContext, p: RfGeometryParams) -> dict:
    # Imported when the step runs: reading the registry (status, schema) stays fast.
    from ..geometry.lnl import lnl_fit
    from ..geometry.rf import rf_geometry

    movies = dense_noise_sta.sta_movies(ctx)
    if not movies:
        ctx.warn("dense_noise_sta computed no dense-noise STA; no RF geometry")
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
            _write_sta_geometry(ctx, unit, movie, result)
            fitted += result["gaussian_fit"]["fit_status"] == "ok"
    # The lab's layout describes one STA feature; the parameters are the same for every movie.
    for out, value in ((STA_FEATURE_NAME, f"sta_{movies[0]}" if movies else ""),
                       (FRAME_RANGE, np.asarray(p.frame_range, dtype=np.int64)),
                       (THRESHOLD_FRACTION, float(p.threshold_fraction)),
                       (LNL_FITTING_ENABLED, np.bool_(p.lnl_fitting)), (MOVIES, list(movies)),
                       (FRAME_PERIOD_S, frame_period_s)):
        ctx.tx.write(out.at(), value)
    return {"movies": movies, "n_gaussian_fits_ok": int(fitted)}


def _write_sta_geometry(ctx: StepContext, unit: str, movie: str, result: dict, below: str = "") -> None:
    """Every value of ``result`` (groups as nested dicts) at its declared output, angles with their attributes."""
    for name, value in result.items():
        if isinstance(value, dict):
            _write_sta_geometry(ctx, unit, movie, value, f"{below}{name}/")
        else:
            ctx.tx.write(STA_GEOMETRY[below + name].at(unit=unit, movie=movie), value,
                         attrs=ANGLE_ATTRS.get(below + name))


def rf_figure(h5):
    """Each unit's STA of the first measured movie at its peak frame, with the 2-sigma ellipse of its unblurred fit."""
    from matplotlib.patches import Ellipse

    from ..qc.figures import MAX_PANELS, colour_scale, grid

    movie = next(iter(rf_movies(h5)), None)
    if movie is None:
        return None

    def value(unit: str, name: str):
        return h5[STA_GEOMETRY[f"gaussian_fit_unblurred/{name}"].at(unit=unit, movie=movie)][()]

    r2 = {u: value(u, "r_squared") for u in load_recording.unit_ids(h5)
          if _fit_ok(h5, u, movie, "gaussian_fit_unblurred")}
    if not r2:
        return None
    shown = sorted(sorted(r2, key=lambda u: -r2[u])[:MAX_PANELS])
    fig, axes = grid(len(shown), f"STA at its peak frame (minus the first 10 frames' mean) and the 2-sigma RF "
                                 f"ellipse of its unblurred Gaussian fit ({movie})")
    for ax, unit in zip(axes, shown):
        sta = dense_noise_sta.sta(h5, unit, movie)
        centered = sta - sta[:10].mean(axis=0)
        frame = int(np.argmax(np.abs(centered).reshape(len(centered), -1).max(axis=1)))
        limit = np.abs(centered[frame]).max() or 1.0
        image = ax.imshow(centered[frame], cmap="RdBu_r", vmin=-limit, vmax=limit, origin="upper")
        colour_scale(fig, image, ax)
        # Image axes (origin upper): the angle turns +column toward +row, as orientation_deg does.
        ax.add_patch(Ellipse((value(unit, "center_x"), value(unit, "center_y")), 4 * value(unit, "sigma_major"),
                             4 * value(unit, "sigma_minor"), angle=value(unit, "orientation_deg"), fill=False,
                             color="k", lw=0.8))
        ax.set_title(f"{unit} R2 {r2[unit]:.2f}", fontsize=8)
    return fig


def rf_numbers(h5) -> dict:
    """``rfs_fitted``: units whose lab Gaussian fit of the first measured movie succeeded (none without a movie)."""
    movie = next(iter(rf_movies(h5)), None)
    if movie is None:
        return {}
    return {"rfs_fitted": sum(_fit_ok(h5, u, movie, "gaussian_fit") for u in load_recording.unit_ids(h5))}


def check_library(check) -> None:
    """Pre-flight: with LN fitting on, the dense-noise movies the LN model reads (dense_noise_sta's)."""
    if check.params.lnl_fitting:
        dense_noise_sta.check_noise_movies(check, check.params_of("dense_noise_sta").movie_pattern)


STEP = Step(
    name="rf_geometry", position=7,
    upstream=("load_recording", "section_time", "section_spike_times", "dense_noise_sta"),
    reads=frozenset({"stimuli"}), params=RfGeometryParams, version="2", run=run,
    outputs=(*PER_STA, *LN_MODEL, STA_FEATURE_NAME, FRAME_RANGE, THRESHOLD_FRACTION, LNL_FITTING_ENABLED, MOVIES,
             FRAME_PERIOD_S),
    description="Receptive-field geometry (Gaussian, DoG, ON/OFF fits, size, time course) and LN model per STA",
    library_check=check_library,
    qc=Qc(topic="rf", figure=rf_figure, numbers=rf_numbers),
)
