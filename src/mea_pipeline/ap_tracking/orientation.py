"""Retina orientation from the sheet, and soma positions in polar coordinates around the ONH.

The sheet's ``Center_xy`` cell is "LR, DV, NT": the eye (L/R), the dorso-ventral position stored
ventral-positive (flipped here so dorsal is positive) and the naso-temporal position (nasal
positive). ONH points are ``(x = col, y = row)``; soma positions are (row, col) electrodes.

Frames (:mod:`mea_pipeline.frames`): raw angles are image angles of the electrode frame; the
angle correction turns them so that 0 deg = nasal and 90 deg = dorsal (the lab's rotation; a
mirrored image is not undone), i.e. into the retina frame. Without an orientation the
"corrected" angles equal the raw ones and stay in the electrode frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .lanes import sheet_text
from .pathway import wrap_degrees


class RetinaPosition(NamedTuple):
    """Where the recorded piece sits in the retina; None for a field the sheet does not give."""

    lr: str | None
    dv: float | None
    nt: float | None


def _number(field: str) -> float | None:
    try:
        value = float(field)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_center_xy(text) -> RetinaPosition:
    """Parse ``Center_xy`` ("L, 5, -5" -> ('L', -5.0, -5.0)).

    Spaces are removed and the text split on commas. Each field is parsed on its own and
    becomes None when missing or malformed, so "R, -5. -5" (a dot typed for a comma) still
    gives the eye: ('R', None, None). The lab requires all three fields or gives up on every
    one. LR is upper-cased and kept even when it is not L or R (the caller may warn).
    """
    fields = sheet_text(text).replace(" ", "").split(",")
    fields += [""] * (3 - len(fields))
    lr = fields[0].upper() or None
    dv = _number(fields[1])
    return RetinaPosition(lr, None if dv is None else -dv, _number(fields[2]))


def angle_correction(onh_xy: tuple[float, float], dv: float | None, nt: float | None,
                     reference_xy: tuple[float, float]) -> float | None:
    """Rotation (degrees) that turns the image direction ONH -> reference point into the anatomical one.

    ``expected = atan2(DV, NT)`` is where the recorded piece lies as seen from the ONH, and the
    image angle of the vector from the ONH to ``reference_xy`` (``(col, row)``) should match
    it; the correction is their difference (not wrapped). None when DV or NT is unknown.
    """
    if dv is None or nt is None:
        return None
    image_angle = wrap_degrees(np.degrees(np.arctan2(reference_xy[1] - onh_xy[1], reference_xy[0] - onh_xy[0])))
    return wrap_degrees(np.degrees(np.arctan2(dv, nt))) - image_angle


def quadrant(x: float, y: float) -> str:
    """'Q1'..'Q4' from the signs of a point (zero counts as positive)."""
    if x >= 0:
        return "Q1" if y >= 0 else "Q4"
    return "Q2" if y >= 0 else "Q3"


def anatomical_quadrant(dv: float | None, nt: float | None) -> str | None:
    """'dorsal|ventral-nasal|temporal' of the recorded piece (dorsal when DV > 0, nasal when NT > 0)."""
    if dv is None or nt is None:
        return None
    return ("dorsal" if dv > 0 else "ventral") + "-" + ("nasal" if nt > 0 else "temporal")


@dataclass(frozen=True)
class SomaPolar:
    """One soma's position relative to the ONH, as the lab measures it (its ``soma_polar_coordinates``).

    ``cartesian_x`` = soma col - ONH x, ``cartesian_y`` = soma row - ONH y; ``theta_deg_raw`` is the
    image angle of that vector in [0, 360); ``theta_deg`` = ``theta_deg_corrected`` = it plus the
    angle correction (= raw without one), ``angle`` the same in radians; ``transformed_x`` /
    ``transformed_y`` the soma rotated by the correction, ``quadrant`` of that point;
    ``original_x`` = soma row, ``original_y`` = soma col. ``anatomical_quadrant`` and
    ``angle_correction_applied`` (degrees) are None when the orientation is unknown.
    """

    radius: float
    angle: float
    cartesian_x: float
    cartesian_y: float
    theta_deg: float
    theta_deg_raw: float
    theta_deg_corrected: float
    transformed_x: float
    transformed_y: float
    quadrant: str
    original_x: int
    original_y: int
    anatomical_quadrant: str | None
    angle_correction_applied: float | None

    @property
    def corrected(self) -> bool:
        """Whether the angle correction was applied (the corrected angles are then in the retina frame)."""
        return self.angle_correction_applied is not None


def soma_polar_coordinates(soma_row: int, soma_col: int, onh_xy: tuple[float, float],
                           correction_deg: float | None, dv: float | None, nt: float | None) -> SomaPolar:
    """The lab's polar coordinates of one soma relative to the ONH (see :class:`SomaPolar`)."""
    dx, dy = float(soma_col - onh_xy[0]), float(soma_row - onh_xy[1])
    radius = math.hypot(dx, dy)
    raw = wrap_degrees(math.degrees(math.atan2(dy, dx)))
    corrected = raw if correction_deg is None else wrap_degrees(raw + correction_deg)
    transformed_x = radius * math.cos(math.radians(corrected))
    transformed_y = radius * math.sin(math.radians(corrected))
    return SomaPolar(
        radius=radius, angle=math.radians(corrected), cartesian_x=dx, cartesian_y=dy,
        theta_deg=corrected, theta_deg_raw=raw, theta_deg_corrected=corrected,
        transformed_x=transformed_x, transformed_y=transformed_y, quadrant=quadrant(transformed_x, transformed_y),
        original_x=int(soma_row), original_y=int(soma_col), anatomical_quadrant=anatomical_quadrant(dv, nt),
        angle_correction_applied=None if correction_deg is None else float(correction_deg))
