"""Where the projected stimulus falls on the chip in a synthetic recording (stimulus -> electrode).

Points are ``(x, y) = (column, row)`` in both frames. Electrode frame: eimage axis 2 (= MCS Row
- 1) is the column, axis 1 (= MCS Column - 1) the row (:func:`mea_pipeline.mcs_io.sensor_frame_index`).
Stimulus frame: checkers of the 15 x 15 noise grid, checker ``c`` centred at ``c`` (stimulus
pixel ``20 c + 9.5`` in pixel-index coordinates, pixel ``p`` centred on ``p``).

The spec's transform (:class:`~mea_pipeline.synth.spec.SynthSpec` ``stimulus_*`` fields) is::

    electrode = chip centre + offset + scale * FILL * R(rotation) @ T^mirror @ (stimulus - grid centre)

with ``T`` swapping column and row (the stimulus transposed) and ``FILL = 64 / 14`` electrodes per
checker: at scale 1 the checker centres 0..14 span electrodes 0..64. A direction ``a`` on the
screen moves along ``rotation + a`` on the chip, or ``rotation + 90 - a`` when mirrored. The
default (mirrored, no rotation, scale 1, no offset) is the geometry of every synthetic recording
before the transform could be chosen: RF (row, column) = (soma MCS row - 1, MCS column - 1) * 14 / 64.
"""

from __future__ import annotations

import math

import numpy as np

from ..mcs_io import GRID as CHIP
from .render import CHECKER_PX, GRID
from .spec import SynthSpec

CHECKERS_PER_ELECTRODE = (GRID - 1) / (CHIP - 1)   # 14 / 64, exact in binary
CHIP_CENTRE = (CHIP - 1) / 2                        # electrode 32 (0-based), both axes
GRID_CENTRE = (GRID - 1) / 2                        # checker 7, both axes


def _rotation(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s], [s, c]])


def _mirror(spec: SynthSpec) -> np.ndarray:
    return np.array([[0.0, 1.0], [1.0, 0.0]]) if spec.stimulus_mirror else np.eye(2)


def rf_center_of_soma(spec: SynthSpec, soma: np.ndarray) -> np.ndarray:
    """Checker ``(row, column)`` of the stimulus point over a soma at 1-based MCS ``(row, column)``.

    The inverse of the spec's transform. Exact for the default spec: every factor is a small
    integer times a power of two, so earlier recordings are reproduced bit for bit.
    """
    electrode_xy = np.array([soma[0] - 1, soma[1] - 1], dtype=np.float64)   # (MCS row - 1, MCS col - 1) = (x, y)
    shift = electrode_xy - CHIP_CENTRE - np.asarray(spec.stimulus_offset, dtype=np.float64)
    # T and R(-rotation) undo R(rotation) @ T (T is its own inverse); 1 / (scale * FILL).
    inverse = _mirror(spec) @ _rotation(-spec.stimulus_rotation_deg) * (CHECKERS_PER_ELECTRODE / spec.stimulus_scale)
    stimulus_xy = inverse @ shift + GRID_CENTRE
    return stimulus_xy[::-1]                                                 # (x, y) -> (row, column)


def stimulus_to_electrode(spec: SynthSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(matrix, offset)`` with ``electrode_xy = matrix @ pixel_xy + offset``, stimulus in pixel indices."""
    per_checker = spec.stimulus_scale / CHECKERS_PER_ELECTRODE * _rotation(spec.stimulus_rotation_deg) @ _mirror(spec)
    matrix = per_checker / CHECKER_PX
    pixel_of_grid_centre = GRID_CENTRE * CHECKER_PX + (CHECKER_PX - 1) / 2
    centre = CHIP_CENTRE + np.asarray(spec.stimulus_offset, dtype=np.float64)
    offset = centre - matrix @ np.full(2, pixel_of_grid_centre)
    return matrix, offset


def electrode_direction(spec: SynthSpec, stimulus_deg: float) -> float:
    """A screen direction (0 = +column, 90 = +row of the stimulus) as seen on the chip, in [0, 360)."""
    turned = 90.0 - stimulus_deg if spec.stimulus_mirror else stimulus_deg
    return (spec.stimulus_rotation_deg + turned) % 360.0


def truth_record(spec: SynthSpec) -> dict:
    """The transform for the truth JSON: matrix and offset in pixels, and the spec's parameters."""
    matrix, offset = stimulus_to_electrode(spec)
    return {
        "matrix": matrix.tolist(), "offset": offset.tolist(), "mirror": spec.stimulus_mirror,
        "rotation_deg": spec.stimulus_rotation_deg, "scale": spec.stimulus_scale,
        "electrodes_per_pixel": spec.stimulus_scale / CHECKERS_PER_ELECTRODE / CHECKER_PX,
        "offset_electrodes": list(spec.stimulus_offset),
        "convention": "electrode_xy = matrix @ stimulus_xy + offset; xy = (column, row); stimulus in pixel "
                      "indices of the 300 x 300 image, electrodes 0-based (eimage axis 2, axis 1); "
                      "mirror = the stimulus transposed before the rotation",
    }
