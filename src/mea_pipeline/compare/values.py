"""Compare two values of one key: dtype family, shape, then the data (NumPy, no loop over elements).

Families: float, complex, int (signed or unsigned), bool, string (bytes or text, fixed or
variable length: compared as text), compound (field by field) and other (opaque, references,
variable-length sequences). Two values are *equal* when family, shape and data agree exactly
(NaN equals NaN, a float32 and a float64 holding the same numbers are equal); floats that differ
are *within tolerance* when every element satisfies

    |lab - ours| <= rtol * |lab| + atol,   atol = rtol * scale,

``scale`` being the largest finite magnitude in either array (so elements near zero of an array of
order 1 are judged on the array's scale), and NaN and infinities sit at the same places. ``rtol``
is that of the coarser of the two dtypes (:data:`RTOL`) unless the user gives one.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from .hdf5_walk import Value

# Relative tolerance per float precision. float64: far above rounding (eps 2e-16) yet far below
# anything a figure shows; float32: ~800 eps, room for another summation order over long sums;
# float16: ~10 eps.
RTOL = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-6}
# A float128 (longdouble) or an unnamed precision gets float64's.
DEFAULT_RTOL = RTOL["float64"]

EQUAL, WITHIN_TOLERANCE, DIFFERS = "equal", "within_tolerance", "differs"


@dataclass(frozen=True)
class Outcome:
    status: str          # EQUAL, WITHIN_TOLERANCE or DIFFERS
    detail: str = ""
    # Every differing element is NaN in our file (a value the lab writes as a sentinel or default).
    ours_nan_only: bool = False


def family(dtype: np.dtype) -> str:
    """The dtype family a lab notebook would notice: float, int, bool, string, ..."""
    if dtype.kind in "SU" or h5py.check_string_dtype(dtype) is not None:
        return "string"
    if dtype.names:
        return "compound"
    return {"f": "float", "c": "complex", "i": "int", "u": "int", "b": "bool"}.get(dtype.kind, "other")


def rtol_for(lab: np.dtype, ours: np.dtype, override: float | None, precision: float = 0.0) -> float:
    """The relative tolerance for two float dtypes: the coarser one's (at least the key's declared
    ``precision``), or the user's."""
    if override is not None:
        return override
    return max(precision, *(RTOL.get(np.dtype(d).name, DEFAULT_RTOL) for d in (_real(lab), _real(ours))))


def _real(dtype: np.dtype) -> np.dtype:
    return np.empty(0, dtype).real.dtype


def compare_values(lab: Value, ours: Value, rtol: float | None = None, precision: float = 0.0) -> Outcome:
    """Equal, within tolerance or differs (saying how: dtype family, shape or value)."""
    kind, ours_family = family(lab.dtype), family(ours.dtype)
    if kind != ours_family:
        return Outcome(DIFFERS, f"dtype family: {kind} ({lab.dtype}) in LAB, {ours_family} ({ours.dtype}) in OURS")
    if lab.shape != ours.shape:
        return Outcome(DIFFERS, f"shape: {_shape(lab.shape)} in LAB, {_shape(ours.shape)} in OURS")
    note = "" if lab.dtype == ours.dtype or kind == "string" else f" ({lab.dtype} in LAB, {ours.dtype} in OURS)"
    if lab.shape is None:
        return Outcome(EQUAL, "both empty" + note)
    if kind == "compound":
        outcome = _compare_compound(lab.data, ours.data, rtol)
    else:
        tolerance = rtol_for(lab.dtype, ours.dtype, rtol, precision) if kind in ("float", "complex") else 0.0
        outcome = _compare_data(kind, lab.data, ours.data, tolerance)
    return Outcome(outcome.status, outcome.detail + note, outcome.ours_nan_only)


def _compare_data(kind: str, lab: np.ndarray, ours: np.ndarray, rtol: float) -> Outcome:
    if kind == "string":
        lab, ours = as_text(lab), as_text(ours)
    if kind == "other":
        return Outcome(EQUAL) if _other_equal(lab, ours) else Outcome(DIFFERS, "value differs")
    if kind in ("float", "complex"):
        if np.array_equal(lab, ours, equal_nan=True):
            return Outcome(EQUAL)
        return _float_outcome(lab, ours, rtol)
    if np.array_equal(lab, ours):
        return Outcome(EQUAL)
    return Outcome(DIFFERS, _value_difference(lab, ours, lab != ours))


def _float_outcome(lab: np.ndarray, ours: np.ndarray, rtol: float) -> Outcome:
    finite = np.isfinite(lab) & np.isfinite(ours)
    # NaN where the other has a number, or infinities that differ: no tolerance covers them.
    non_finite_differs = ~finite & ~((lab == ours) | (np.isnan(lab) & np.isnan(ours)))
    magnitudes = np.concatenate([np.abs(lab[finite]).ravel(), np.abs(ours[finite]).ravel()])
    scale = float(magnitudes.max()) if magnitudes.size else 0.0
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where both are infinite: masked
        error = np.where(finite, np.abs(lab - ours), 0.0)
    too_far = finite & (error > rtol * np.abs(lab) + rtol * scale)
    worst = float(error.max())
    relative = f"{worst / scale:.3g}" if scale else "inf"
    if not non_finite_differs.any() and not too_far.any():
        return Outcome(WITHIN_TOLERANCE, f"max |LAB - OURS| {worst:.3g} ({relative} of the scale {scale:.3g}), "
                                         f"rtol {rtol:g}")
    differing = non_finite_differs | too_far
    detail = _value_difference(lab, ours, differing)
    if lab.ndim and too_far.any():
        detail += f", max |LAB - OURS| {worst:.3g} ({relative} of the scale {scale:.3g})"
    return Outcome(DIFFERS, detail, bool(np.isnan(ours[differing]).all()))


def _compare_compound(lab: np.ndarray, ours: np.ndarray, rtol: float | None) -> Outcome:
    if lab.dtype.names != ours.dtype.names:
        return Outcome(DIFFERS, f"fields: {lab.dtype.names} in LAB, {ours.dtype.names} in OURS")
    worst = Outcome(EQUAL)
    for name in lab.dtype.names:
        field = compare_values(Value(lab.dtype[name], lab.shape, lab[name]),
                               Value(ours.dtype[name], ours.shape, ours[name]), rtol)
        if field.status == DIFFERS:
            return Outcome(DIFFERS, f"field {name}: {field.detail}")
        if field.status == WITHIN_TOLERANCE:
            worst = Outcome(WITHIN_TOLERANCE, f"field {name}: {field.detail}")
    return worst


def _other_equal(lab: np.ndarray, ours: np.ndarray) -> bool:
    if lab.dtype.kind != "O" or ours.dtype.kind != "O":
        return lab.dtype == ours.dtype and lab.tobytes() == ours.tobytes()
    # Variable-length sequences: one array per element, compared one by one (a rare, small type).
    return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(lab.ravel(), ours.ravel()))


def as_text(data: np.ndarray) -> np.ndarray:
    """Strings as text (bytes decoded as UTF-8), whatever the storage: fixed, variable, bytes, str."""
    data = np.asarray(data)
    if data.dtype.kind == "S":
        return np.char.decode(data, "utf-8", "replace")
    if data.dtype.kind == "O":
        flat = [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in data.ravel()]
        return np.array(flat, dtype=object).reshape(data.shape)
    return data


def _value_difference(lab: np.ndarray, ours: np.ndarray, differs: np.ndarray) -> str:
    if lab.ndim == 0:
        return f"value: {_show(lab[()])} in LAB, {_show(ours[()])} in OURS"
    first = tuple(int(i) for i in np.argwhere(differs)[0])
    index = first[0] if len(first) == 1 else first
    return (f"value: {int(np.count_nonzero(differs))} of {lab.size} elements differ (first at {index}: "
            f"{_show(lab[first])} in LAB, {_show(ours[first])} in OURS)")


def _show(item) -> str:
    text = repr(item.item() if isinstance(item, np.generic) else item)
    return text if len(text) <= 40 else text[:37] + "..."


def _shape(shape) -> str:
    return "empty" if shape is None else str(tuple(shape))


def tolerance_text(rtol: float | None) -> str:
    """The float tolerance, as the summary and the JSON report state it."""
    per_dtype = ", ".join(f"{name} {value:g}" for name, value in reversed(RTOL.items()))
    given = f"{rtol:g} for every float (--rtol)" if rtol is not None else f"{per_dtype} (the coarser dtype's)"
    return (f"floats: |LAB - OURS| <= rtol |LAB| + rtol scale, scale = the largest finite |value| of the two; "
            f"rtol {given}")
