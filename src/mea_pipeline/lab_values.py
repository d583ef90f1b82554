"""Values copied from the raw files and the sheet, stored the way the lab's scripts store them.

The lab's files hold these keys with particular shapes and types that its notebooks rely on
(ref-steps-1-5 sections 8 and 9, ref-steps-6-11 section 3): a root attribute of a ``.cmcr`` or
``.cmtr`` becomes a scalar (a one-element array is unwrapped), while a number of a unit's
``Unit Info`` or of its group attributes becomes a one-element int64 or float64 array; a
sheet cell keeps the type pandas reads it with. Each function returns what to write: a Python
scalar or string (a 0-d dataset) or an array.
"""

from __future__ import annotations

import math

import numpy as np


def root_attribute(value):
    """A CMCR/CMTR root attribute as the lab stores it under ``metadata/cmcr_meta`` or ``cmtr_meta``.

    Bytes become text (UTF-8, undecodable bytes dropped, nothing stripped), a one-element
    array its element, numpy integers and floats int64 and float64 scalars; longer arrays stay
    arrays of their own dtype.
    """
    if isinstance(value, np.ndarray) and value.ndim > 0 and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        return value.decode("utf-8", "ignore")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def unit_field(value):
    """A ``Unit Info`` field or a unit group attribute as the lab stores it under ``unit_meta``.

    Numbers (also one-element arrays of numbers) become one-element int64 or float64 arrays,
    bytes become text (a scalar string), other one-element arrays one-element arrays, longer
    arrays arrays; strings stay strings.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "ignore")
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return np.array(value)
        value = value.item()
        if isinstance(value, (int, float)):  # bool is an int here, as in the lab's copy
            return np.array([value], dtype=np.int64 if isinstance(value, int) else np.float64)
        return np.array([value])
    if isinstance(value, np.integer):
        return np.array([int(value)], dtype=np.int64)
    if isinstance(value, np.floating):
        return np.array([float(value)], dtype=np.float64)
    return value


def sheet_cell(value):
    """A cell of the sheet table read by pandas (default type inference) as the lab stores it.

    Missing cells become ``''``; booleans, integers, floats and strings keep their type (bool,
    int64, float64, text).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return str(value)
