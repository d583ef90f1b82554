"""The lab's ON/OFF crossing dictionary (a pickle), read without running any code, and its pixel rule.

A pickle is a program: an ordinary ``pickle.load`` can call any importable function (``os.system``
included). The lab's table needs none: it is a dict of ``(row, col)`` tuples to dicts of int lists,
all of which the pickle protocol builds with its own opcodes. So the unpickler here refuses every
global lookup, which is the only way a pickle reaches a callable; a pickle that asks for one is
rejected before anything is called.

Format (the lab's ``moving_h_bar_s5_d8_3x_on_off_dict_hd_double_refined.pkl``): 90 000 keys
``(row, col)``, 0..299 each (row = movie axis 1); values ``{"on_peak_location": [24 ints],
"off_peak_location": [24 ints]}``, movie-relative frames, list index = trial (repetition-major).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from ..errors import InputError

ON_FIELD, OFF_FIELD = "on_peak_location", "off_peak_location"


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _DataOnlyUnpickler(pickle.Unpickler):
    """Builds only what the protocol's opcodes build (dict, list, tuple, set, int, float, str, bytes,
    bool, None): every import request, the way to reach a callable, is refused."""

    def find_class(self, module, name):
        raise _RefusedGlobal(f"{module}.{name}")


def _read(path: Path):
    try:
        with open(path, "rb") as stream:
            return _DataOnlyUnpickler(stream).load()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the ON/OFF table ({exc.strerror}); "
                         "check --on-off-dict") from None
    except _RefusedGlobal as exc:
        raise InputError(f"{path}: refused: the pickle asks for {exc}, but an ON/OFF table holds only "
                         "dicts, lists and ints; nothing was run") from None
    except Exception as exc:  # a malformed pickle can fail in many ways; none of them is ours to re-raise
        raise InputError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def _frames(path: Path, keys: list, values: list, field: str) -> np.ndarray:
    """(n_pixels, n_trials) int64 of one field, or an InputError naming the first bad pixel."""
    lists = [v[field] for v in values]
    for key, entry in zip(keys, lists):
        if not isinstance(entry, (list, tuple)):
            raise InputError(f"{path}: {field} of pixel {key} is a {type(entry).__name__}, not a list")
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    odd = np.flatnonzero(lengths != lengths[0])
    if len(odd):
        raise InputError(f"{path}: {field} of pixel {keys[odd[0]]} has {lengths[odd[0]]} values, "
                         f"pixel {keys[0]} has {lengths[0]}")
    try:
        frames = np.array(lists)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{path}: {field} holds values that are not frame numbers ({exc})") from None
    if frames.ndim != 2 or frames.dtype.kind not in "iu":
        raise InputError(f"{path}: {field} must hold integer frame numbers, found {frames.dtype} values")
    return frames.astype(np.int64)


def _check_within_sweeps(path: Path, keys: list, on: np.ndarray, off: np.ndarray, segments: np.ndarray,
                         layout_note: str) -> None:
    """An InputError naming the first (pixel, trial) whose ON or OFF frame lies outside its sweep."""
    start, end = segments[:, 0], segments[:, 1]
    for field, frames in ((ON_FIELD, on), (OFF_FIELD, off)):
        outside = np.argwhere((frames < start) | (frames >= end))
        if len(outside):
            pixel, trial = outside[0]
            raise InputError(
                f"{path}: pixel {keys[pixel]} trial {trial}: {field} = {frames[pixel, trial]} lies outside "
                f"its sweep, frames [{start[trial]}, {end[trial]}) ({len(outside)} (pixel, trial) entries "
                f"do); the table was made for another stimulus or sweep layout{layout_note}")


def load_on_off_table(path: str | Path, *, size: int, segments: np.ndarray | None = None,
                      layout_note: str = "") -> dict:
    """Read and check the lab's ON/OFF crossing pickle.

    Parameters
    ----------
    path : str or Path
        The ``.pkl`` file.
    segments : np.ndarray, optional
        (n_trials, 2) ``[start, end)`` movie-relative frames of each sweep (the layout's
        ``segments``): the table must list ``n_trials`` sweeps per pixel, and every entry's ON and
        OFF frame must lie inside its sweep (the lab's generator searches each sweep alone).
    size : int
        Side of the stimulus image; keys must lie in ``[0, size)``.
    layout_note : str
        Appended to the error for entries outside their sweeps (where the layout came from).

    Returns
    -------
    dict
        ``crossings``: ``(row, col) -> (on, off)``, each (n_trials,) int64 movie-relative frames
        (the format of :func:`.crossings.crossing_table`); ``n_pixels``; ``n_trials``;
        ``n_off_not_after_on``: (pixel, trial) entries whose OFF is not after its ON (allowed:
        the lab's older tables have them).

    Raises
    ------
    InputError
        The file is unreadable, not a pickle, asks for any global (code), is not a dict of
        ``(row, col)`` int tuples to ``{"on_peak_location", "off_peak_location"}`` int lists of one
        common length, or (with ``segments``) lists another number of sweeps or a frame outside
        its sweep (naming the file, the pixel and the trial).
    """
    path = Path(path)
    table = _read(path)
    if not isinstance(table, dict) or not table:
        raise InputError(f"{path}: expected a non-empty dict of (row, col) -> ON/OFF frames, "
                         f"found {type(table).__name__}")
    keys, values = list(table), list(table.values())
    for key, value in zip(keys, values):
        # type() rather than isinstance: a bool key or index is a corrupt table, not pixel 0/1.
        if (type(key) is not tuple or len(key) != 2 or any(type(k) is not int for k in key)
                or not all(0 <= k < size for k in key)):
            raise InputError(f"{path}: key {key!r} is not a (row, col) pixel in [0, {size})")
        if type(value) is not dict or ON_FIELD not in value or OFF_FIELD not in value:
            raise InputError(f"{path}: value of pixel {key} must be a dict with "
                             f"'{ON_FIELD}' and '{OFF_FIELD}'")
    on, off = _frames(path, keys, values, ON_FIELD), _frames(path, keys, values, OFF_FIELD)
    if on.shape != off.shape:
        raise InputError(f"{path}: {ON_FIELD} has {on.shape[1]} values per pixel, {OFF_FIELD} {off.shape[1]}")
    if segments is not None:
        if on.shape[1] != len(segments):
            raise InputError(f"{path}: lists {on.shape[1]} sweeps per pixel but the movie's JSON layout has "
                             f"{len(segments)}; use the table made for this movie")
        _check_within_sweeps(path, keys, on, off, np.asarray(segments), layout_note)
    return {
        "crossings": {key: (on[i], off[i]) for i, key in enumerate(keys)},
        "n_pixels": len(keys),
        "n_trials": int(on.shape[1]),
        "n_off_not_after_on": int(np.count_nonzero(off <= on)),
    }


def pixel_rule(center_x_col: float, center_y_row: float, checker_px: int,
               size: int) -> tuple[int, int] | None:
    """Stimulus pixel ``(row, col)`` of a receptive-field centre given in checker units.

    The lab's rule: ``int(c * checker_px + checker_px // 2)`` (the middle of the checker; ``int``
    truncates toward zero), clipped to ``[0, size - 1]``.

    Parameters
    ----------
    center_x_col, center_y_row : float
        Centre column and row in checker units (rf_geometry's Gaussian's ``center_x``, ``center_y``).
    checker_px : int
        Stimulus pixels per checker side.
    size : int
        Side of the stimulus image in pixels.

    Returns
    -------
    tuple of int or None
        ``(row_px, col_px)``; None when either coordinate is NaN or infinite.
    """
    if not (math.isfinite(center_x_col) and math.isfinite(center_y_row)):
        return None

    def to_pixel(c: float) -> int:
        return min(max(int(c * checker_px + checker_px // 2), 0), size - 1)

    return to_pixel(center_y_row), to_pixel(center_x_col)
