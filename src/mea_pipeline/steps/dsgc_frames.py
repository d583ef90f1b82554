"""dsgc's frames: the stimulus -> electrode registration and each preferred direction in the
electrode and retina frames (PRODUCT.md 3.12).

The units with both an RF centre (rf_geometry, the RF's own: ``gaussian_fit_unblurred``) and a
soma centre (soma_geometry) register the stimulus to the electrodes (:mod:`mea_pipeline.frames.registration`,
stored under ``metadata/stimulus_registration``); through it each preferred direction is also
given in the electrode frame and, with ap_tracking's optic-nerve head and the sheet's ``Center_xy``,
in the retina frame. Every stored angle names its frame in a ``frame`` attribute.
"""

from __future__ import annotations

import numpy as np

from ..dsgc.params import DsgcParams
from ..errors import InputError
from ..frames import ELECTRODE, RETINA
from ..frames.registration import AFFINE, SIMILARITY, Registration, fit_registration, map_direction, retina_direction
from . import ap_tracking, rf_geometry, soma_geometry
from .dsgc_outputs import (
    PREFERRED_ELECTRODE, PREFERRED_ELECTRODE_REASON, PREFERRED_RETINA, PREFERRED_RETINA_LABEL, PREFERRED_RETINA_REASON,
    REG_CONVENTION, REG_ELECTRODE_XY, REG_KIND, REG_MATRIX, REG_N_PAIRED, REG_N_USED, REG_OFFSET, REG_OUTLIER_UNITS,
    REG_PITCH, REG_REASON, REG_REFLECTED, REG_RESIDUAL, REG_RESIDUAL_OTHER, REG_RESIDUALS, REG_RETINA_REASON,
    REG_RF_MOVIE, REG_ROTATION, REG_SCALE, REG_SCALE_UM, REG_STATUS, REG_STIMULUS_XY, REG_UNITS,
)
from .registry import StepContext

REGISTRATION_CONVENTION = (
    "electrode_xy = matrix @ stimulus_xy + offset; xy = (column, row); stimulus in pixels of the projector "
    "image (pixel p centred on p), electrodes 0-based (column = eimage axis 2, row = axis 1); reflected: "
    "matrix = scale * R(rotation_deg) @ T, T swapping column and row")


class DirectionFrames:
    """How this recording carries a stimulus-frame direction into the electrode and retina frames."""

    def __init__(self, registration: Registration, correction_deg: float | None, retina_reason: str):
        self.registration, self.correction_deg, self.retina_reason = registration, correction_deg, retina_reason

    def electrode(self, stimulus_deg: float) -> tuple[float, str]:
        """Electrode-frame angle and '', or NaN and why."""
        if self.registration.status != "ok":
            return np.nan, f"no stimulus registration: {self.registration.reason}"
        if not np.isfinite(stimulus_deg):
            return np.nan, "no preferred direction in the stimulus frame"
        return float(map_direction(stimulus_deg, self.registration.matrix)), ""

    def retina(self, electrode_deg: float, electrode_reason: str) -> tuple[float, str, str]:
        """Retina-frame angle, its nearest anatomical label and '', or NaN, '' and why."""
        if electrode_reason:
            return np.nan, "", electrode_reason
        if self.correction_deg is None:
            return np.nan, "", self.retina_reason
        angle, label = retina_direction(electrode_deg, self.correction_deg)
        return float(angle), str(label), ""


def register_stimulus(ctx: StepContext, units: list[str], rf_movie: str | None, p: DsgcParams) -> DirectionFrames:
    """Fit the stimulus -> electrode transform from the units with an RF centre in ``rf_movie`` and a
    soma centre; write it."""
    if p.registration_kind not in (SIMILARITY, AFFINE):
        raise InputError(f"dsgc parameter registration_kind is {p.registration_kind!r}: use "
                         f"{SIMILARITY!r} or {AFFINE!r}")
    paired, stimulus_xy, electrode_xy = [], [], []
    for unit in units:
        # Our own computation: the RF's own centre, not the lab's fit of the blurred map.
        rf = rf_geometry.rf_center(ctx, unit, rf_movie, fit="gaussian_fit_unblurred") if rf_movie else None
        soma = soma_geometry.soma_center(ctx, unit)
        if rf is None or soma is None:
            continue
        checker_col, checker_row = p.stimulus_px / rf.grid[1], p.stimulus_px / rf.grid[0]
        paired.append(unit)
        stimulus_xy.append(((rf.col + 0.5) * checker_col - 0.5, (rf.row + 0.5) * checker_row - 0.5))
        electrode_xy.append((soma.col, soma.row))
    registration = fit_registration(
        np.reshape(stimulus_xy, (-1, 2)), np.reshape(electrode_xy, (-1, 2)), kind=p.registration_kind,
        min_points=p.registration_min_units, outlier_threshold_um=p.registration_outlier_um,
        pitch_um=p.electrode_pitch_um, max_hypotheses=p.registration_max_hypotheses,
        min_spread_ratio=p.registration_min_spread, seed=p.seed)
    if registration.status != "ok":
        ctx.warn(f"no stimulus registration: {registration.reason}")
    orientation = ap_tracking.retina_orientation(ctx)
    ok = registration.status == "ok"
    ctx.write({
        REG_STATUS: registration.status, REG_REASON: registration.reason, REG_KIND: registration.kind,
        REG_MATRIX: registration.matrix, REG_OFFSET: registration.offset, REG_REFLECTED: bool(registration.reflected),
        REG_SCALE: registration.scale, REG_SCALE_UM: registration.scale * p.electrode_pitch_um,
        REG_ROTATION: registration.rotation_deg, REG_RESIDUAL: registration.residual_um,
        REG_RESIDUAL_OTHER: registration.residual_other_handedness_um,
        REG_N_PAIRED: len(paired), REG_N_USED: registration.n_used,
        REG_UNITS: paired, REG_STIMULUS_XY: np.reshape(stimulus_xy, (-1, 2)),
        REG_ELECTRODE_XY: np.reshape(electrode_xy, (-1, 2)),
        REG_RESIDUALS: registration.residuals_um if ok else np.full(len(paired), np.nan),
        REG_OUTLIER_UNITS: [u for u, used in zip(paired, registration.inliers) if not used] if ok else [],
        REG_RF_MOVIE: rf_movie or "", REG_PITCH: p.electrode_pitch_um,
        REG_CONVENTION: REGISTRATION_CONVENTION, REG_RETINA_REASON: orientation.reason,
    }, {REG_ROTATION: {"frame": ELECTRODE}})
    return DirectionFrames(registration, orientation.correction_deg, orientation.reason)


def write_direction_frames(ctx: StepContext, preferred_deg: float, frames: DirectionFrames, **where: str) -> None:
    """The preferred direction in the electrode and retina frames beside the stimulus one, each naming its frame."""
    electrode, electrode_reason = frames.electrode(preferred_deg)
    retina, label, retina_reason = frames.retina(electrode, electrode_reason)
    ctx.write({PREFERRED_ELECTRODE: electrode, PREFERRED_ELECTRODE_REASON: electrode_reason,
               PREFERRED_RETINA: retina, PREFERRED_RETINA_LABEL: label, PREFERRED_RETINA_REASON: retina_reason},
              {PREFERRED_ELECTRODE: {"frame": ELECTRODE}, PREFERRED_RETINA: {"frame": RETINA}}, **where)
