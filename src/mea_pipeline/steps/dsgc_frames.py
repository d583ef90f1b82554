"""dsgc's frames: the stimulus -> electrode registration and each preferred direction in the
electrode and retina frames (PRODUCT.md 3.12).

The units with both an RF centre (rf_geometry, the RF's own: ``gaussian_fit_unblurred``) and a
soma centre (soma_geometry) register the stimulus to the electrodes (:mod:`mea_pipeline.frames.registration`,
stored under ``metadata/stimulus_registration``); through it each preferred direction is also
given in the electrode frame and, with ap_tracking's optic-nerve head and the sheet's ``Center_xy``,
in the retina frame. Every stored angle names its frame in a ``frame`` attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..frames import ELECTRODE, RETINA, STIMULUS
from ..frames.registration import AFFINE, SIMILARITY, Registration, fit_registration, map_direction, retina_direction
from ..schema import OURS, Out, outs
from ..store import WithAttrs
from . import ap_tracking, rf_geometry, soma_geometry
from .registry import StepContext

if TYPE_CHECKING:
    from .dsgc import DsgcParams

REGISTRATION = "metadata/stimulus_registration"
REGISTRATION_CONVENTION = (
    "electrode_xy = matrix @ stimulus_xy + offset; xy = (column, row); stimulus in pixels of the projector "
    "image (pixel p centred on p), electrodes 0-based (column = eimage axis 2, row = axis 1); reflected: "
    "matrix = scale * R(rotation_deg) @ T, T swapping column and row")
FEATURES = "units/{unit}/features/{movie}/dsgc"


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


def register_stimulus(ctx: StepContext, units: list[str], rf_movie: str | None, p: "DsgcParams") -> DirectionFrames:
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
    ctx.tx.write_tree(REGISTRATION, {
        "status": registration.status, "reason": registration.reason, "kind": registration.kind,
        "matrix": registration.matrix, "offset": registration.offset, "reflected": bool(registration.reflected),
        "scale": registration.scale, "scale_um_per_px": registration.scale * p.electrode_pitch_um,
        "residual_um": registration.residual_um,
        "residual_other_handedness_um": registration.residual_other_handedness_um,
        "n_units_paired": len(paired), "n_units_used": registration.n_used,
        "units": paired, "stimulus_xy_px": np.reshape(stimulus_xy, (-1, 2)),
        "electrode_xy": np.reshape(electrode_xy, (-1, 2)),
        "residuals_um": registration.residuals_um if ok else np.full(len(paired), np.nan),
        "outlier_units": [u for u, used in zip(paired, registration.inliers) if not used] if ok else [],
        "rf_movie": rf_movie or "", "electrode_pitch_um": p.electrode_pitch_um,
        "convention": REGISTRATION_CONVENTION, "retina_reason": orientation.reason,
        "rotation_deg": WithAttrs(registration.rotation_deg, {"frame": ELECTRODE}),
    })
    return DirectionFrames(registration, orientation.correction_deg, orientation.reason)


def write_direction_frames(ctx: StepContext, base: str, preferred_deg: float, frames: DirectionFrames) -> None:
    """The preferred direction in the electrode and retina frames beside the stimulus one, each naming its frame."""
    electrode, electrode_reason = frames.electrode(preferred_deg)
    retina, label, retina_reason = frames.retina(electrode, electrode_reason)
    ctx.tx.write_tree(base, {
        "preferred_direction_electrode_deg": WithAttrs(electrode, {"frame": ELECTRODE}),
        "preferred_direction_electrode_reason": electrode_reason,
        "preferred_direction_retina_deg": WithAttrs(retina, {"frame": RETINA}),
        "preferred_direction_retina_label": label, "preferred_direction_retina_reason": retina_reason,
    })


FRAME_OUTPUTS = (
    Out(FEATURES + "/preferred_direction_electrode_deg", "f", 0,
        "preferred_direction_deg carried into the electrode frame through the stimulus registration's linear "
        "part (0 = toward +column, 90 = toward +row of the eimage); NaN when there is no registration",
        required=False, origin=OURS, units="degrees", frame=ELECTRODE),
    Out(FEATURES + "/preferred_direction_retina_deg", "f", 0,
        "the electrode-frame direction plus ap_tracking's angle_correction_deg (the lab's rule for soma polar "
        "coordinates): 0 = nasal, 90 = dorsal, 180 = temporal, 270 = ventral; NaN without ONH and Center_xy",
        required=False, origin=OURS, units="degrees", frame=RETINA),
    Out(FEATURES + "/preferred_direction_retina_label", "str", 0,
        "nearest of nasal, dorsal, temporal, ventral (ties to the earlier); '' when NaN",
        required=False, origin=OURS, frame=RETINA),
    *outs(FEATURES, ("preferred_direction_electrode_reason", "preferred_direction_retina_reason"), "str", 0,
          "why the direction in that frame is NaN ('' when it has a value)", required=False, origin=OURS),
)

REGISTRATION_OUTPUTS = (
    Out(f"{REGISTRATION}/status", "str", 0, "ok or refused (then NaN numbers and the reason)",
        origin=OURS),
    Out(f"{REGISTRATION}/reason", "str", 0, "why the registration was refused ('' when ok)",
        origin=OURS),
    Out(f"{REGISTRATION}/kind", "str", 0, "similarity (rotation, uniform scale, translation, reflection allowed) or "
        "affine",
        origin=OURS),
    Out(f"{REGISTRATION}/convention", "str", 0, "how matrix and offset map stimulus pixels to electrodes",
        origin=OURS),
    Out(f"{REGISTRATION}/matrix", "f", 2, "(2, 2) linear part: electrode_xy = matrix @ stimulus_xy + offset, xy = "
        "(column, row)",
        origin=OURS, units="electrodes per stimulus pixel"),
    Out(f"{REGISTRATION}/offset", "f", 1, "(2,) translation, (column, row)",
        origin=OURS, units="electrodes", frame=ELECTRODE),
    Out(f"{REGISTRATION}/reflected", "b", 0, "the stimulus is mirrored against the electrodes (det(matrix) < 0)",
        origin=OURS),
    Out(f"{REGISTRATION}/scale", "f", 0, "sqrt(|det(matrix)|)",
        origin=OURS, units="electrodes per stimulus pixel"),
    Out(f"{REGISTRATION}/scale_um_per_px", "f", 0, "scale times electrode_pitch_um",
        origin=OURS, units="um per stimulus pixel"),
    Out(f"{REGISTRATION}/rotation_deg", "f", 0, "electrode-frame angle of the stimulus +column axis, or of its +row "
        "axis when reflected (matrix = scale * R(rotation_deg) @ T, T swapping column and row)",
        origin=OURS, units="degrees", frame=ELECTRODE),
    Out(f"{REGISTRATION}/residual_um", "f", 0, "RMS distance of the mapped RF centres from the somas of the units "
        "used",
        origin=OURS, units="um"),
    Out(f"{REGISTRATION}/residual_other_handedness_um", "f", 0, "the same for the best fit of the other handedness on "
        "the same units (how clearly the data decide reflected); NaN for affine",
        origin=OURS, units="um"),
    Out(f"{REGISTRATION}/n_units_paired", "i", 0, "units with both an RF centre (rf_geometry) and a soma centre "
        "(soma_geometry)",
        origin=OURS),
    Out(f"{REGISTRATION}/n_units_used", "i", 0, "paired units within registration_outlier_um of the fit",
        origin=OURS),
    Out(f"{REGISTRATION}/units", "str", 1, "the paired units, in the order of the arrays below",
        origin=OURS),
    Out(f"{REGISTRATION}/outlier_units", "str", 1, "paired units farther than registration_outlier_um from the fit",
        origin=OURS),
    Out(f"{REGISTRATION}/stimulus_xy_px", "f", 2, "(n, 2) RF centres of the paired units, (column, row)",
        origin=OURS, units="stimulus pixels", frame=STIMULUS),
    Out(f"{REGISTRATION}/electrode_xy", "f", 2, "(n, 2) soma centres of the paired units, (column, row)",
        origin=OURS, units="electrodes", frame=ELECTRODE),
    Out(f"{REGISTRATION}/residuals_um", "f", 1, "(n,) distance of each paired unit's mapped RF centre from its soma",
        origin=OURS, units="um"),
    Out(f"{REGISTRATION}/rf_movie", "str", 0, "the dense-noise movie whose RF centres were used ('' if none)",
        origin=OURS),
    Out(f"{REGISTRATION}/electrode_pitch_um", "f", 0, "electrode pitch (parameter electrode_pitch_um)",
        origin=OURS, units="um"),
    Out(f"{REGISTRATION}/retina_reason", "str", 0, "why directions have no retina frame (no ONH, or no DV and NT in "
        "Center_xy); '' when they have",
        origin=OURS),
)
