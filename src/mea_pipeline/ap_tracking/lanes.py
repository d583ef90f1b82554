"""Bad lanes: electrode columns (axis 2) the sheet marks as broken, flattened before tracking.

The sheet's ``Bad_lanes`` cell holds comma-separated 1-based column numbers ("53, 59"). A token
that is not a column number (typing slips such as "18. 38") is reported back, never silently
dropped, so the user can correct the sheet.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import numpy as np

_COLUMN_NUMBER = re.compile(r"\d+", re.ASCII)


def sheet_text(value) -> str:
    """Text of one sheet cell as stored upstream: str, bytes, numpy scalar/array, number or None.

    Returns ``''`` for None, empty arrays and NaN (pandas' empty cell); a multi-element array is
    joined with commas.
    """
    if value is None:
        return ""
    if isinstance(value, np.ndarray):
        items = value.ravel().tolist()
        return ",".join(sheet_text(item) for item in items)
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace").strip()
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


class BadLanes(NamedTuple):
    """The sheet's ``Bad_lanes``, parsed: the columns to flatten and the tokens that are not columns."""

    columns: list[int]      # distinct 0-based column indices (axis 2), sorted
    rejected: list[str]     # tokens that are not a positive whole number, in input order


def parse_bad_lanes(text) -> BadLanes:
    """Parse the sheet's ``Bad_lanes`` cell.

    Parameters
    ----------
    text : str, bytes, numpy array, number or None
        Comma-separated 1-based column numbers.

    Returns
    -------
    BadLanes
        ``columns``: distinct 0-based column indices (axis 2), sorted; ``rejected``: tokens that
        are not a positive whole number, in input order (empty tokens, as left by a trailing
        comma, are not reported).
    """
    lanes, rejected = set(), []
    for token in sheet_text(text).split(","):
        token = token.strip()
        if not token:
            continue
        if _COLUMN_NUMBER.fullmatch(token) and int(token) >= 1:
            lanes.add(int(token) - 1)
        else:
            rejected.append(token)
    return BadLanes(sorted(lanes), rejected)


def fix_bad_lanes(eimage: np.ndarray, lanes: list[int]) -> np.ndarray:
    """Copy of ``eimage`` with every listed column (last axis) set to the array's mean.

    The mean is over the whole array, the bad columns included, as in the lab; NaN values are
    left out of it (the lab's plain mean would turn the lanes NaN). Indices outside the last
    axis are ignored. An array with no finite value is returned as an unchanged copy.
    """
    fixed = np.array(eimage, copy=True)
    columns = [c for c in lanes if 0 <= c < fixed.shape[-1]]
    finite = np.isfinite(fixed)
    if columns and finite.any():
        fixed[..., columns] = fixed[finite].mean(dtype=np.float64)
    return fixed
