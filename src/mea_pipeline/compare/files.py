"""Compare a lab's HDF5 file with ours key by key, reading each key's lab-key mark from the schema.

Every key of either file (group, dataset, ``owner@attribute``) gets one class:

* ``equal`` / ``within_tolerance``: same structure, dtype family and shape; the values are equal,
  or floats within the tolerance of :mod:`.values`;
* ``documented``: differs from, or is absent in, our file, and the schema marks the key
  ``lab, fixed: <reason>`` (a lab bug this pipeline fixes); for a key fixed only where ours is
  NaN (``Out.fixed_where_nan``), only when every differing value is NaN in ours;
* ``differs``: anything else that is not equal (value, shape, dtype family or HDF5 structure);
* ``missing``: only in the lab's file; ``extra``: only in ours (keys we add beside the lab's).

A key the lab stores in another HDF5 structure than we do (the lab's ``_attrs`` sub-group of
datasets where we write attributes, a dataset where we write an attribute) is one key stored
twice: it is reported once, under the lab's path, as ``differs`` (structure), with our path.
A key no declaration covers, or whose declaration has no mark yet, counts as a lab key.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputError
from ..schema import FIXED, find_out
from .hdf5_walk import ATTRIBUTE, GROUP, open_file, read, walk
from .values import DIFFERS, EQUAL, WITHIN_TOLERANCE, Outcome, compare_values, tolerance_text

DOCUMENTED, MISSING, EXTRA = "documented", "missing", "extra"
CLASSES = (EQUAL, WITHIN_TOLERANCE, DOCUMENTED, DIFFERS, MISSING, EXTRA)


@dataclass(frozen=True)
class KeyResult:
    path: str
    cls: str
    mark: str | None       # 'lab', 'lab, fixed: <reason>', 'ours'; None when undeclared or unmarked
    detail: str = ""
    ours_path: str | None = None   # where our file holds this lab key, when its structure differs


@dataclass
class Report:
    lab: str
    ours: str
    rtol: float | None      # the user's --rtol, None for the per-dtype defaults
    keys: list[KeyResult]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CLASSES, 0)
        for key in self.keys:
            counts[key.cls] += 1
        return counts

    @property
    def exit_code(self) -> int:
        """0 when no key differs and none is missing, else 1."""
        counts = self.counts
        return 1 if counts[DIFFERS] or counts[MISSING] else 0

    def to_json(self) -> dict:
        return {"lab": self.lab, "ours": self.ours, "tolerance": tolerance_text(self.rtol), "counts": self.counts,
                "exit_code": self.exit_code,
                "keys": [{("class" if k == "cls" else k): v for k, v in asdict(key).items()
                          if k != "ours_path" or v is not None} for key in self.keys]}


def compare_files(lab: Path, ours: Path, registry=None, rtol: float | None = None) -> Report:
    """Classify every key of the lab's file ``lab`` and of our file ``ours``.

    ``registry`` gives the marks (default: the pipeline's steps); ``rtol`` replaces the per-dtype
    relative tolerance of floats.
    """
    if registry is None:
        from ..steps import REGISTRY as registry
    if rtol is not None and not 0 <= rtol < 1:
        raise InputError(f"--rtol {rtol}: give a relative tolerance between 0 and 1 (e.g. 1e-6)")
    marks = Marks(registry)
    with open_file(lab, "LAB") as lab_h5, open_file(ours, "OURS") as ours_h5:
        lab_keys, ours_keys = walk(lab_h5), walk(ours_h5)
        pairs = _pair_structures({k: v for k, v in lab_keys.items() if k not in ours_keys},
                                 {k: v for k, v in ours_keys.items() if k not in lab_keys})
        paired_ours = {ours_key for ours_key, outcome in pairs.values() if outcome is None}  # reported with the lab's
        results = []
        for key in sorted(lab_keys.keys() | ours_keys.keys()):
            if key in paired_ours:
                continue
            out = marks(key)
            if key in lab_keys and key in ours_keys:
                outcome = _judge(lab_h5, ours_h5, key, lab_keys[key], key, ours_keys[key], rtol, _precision(out))
                results.append(_with_mark(key, out, outcome))
            elif key in pairs:
                ours_key, outcome = pairs[key]
                if outcome is None:
                    outcome = _judge(lab_h5, ours_h5, key, lab_keys[key], ours_key, ours_keys[ours_key], rtol,
                                     _precision(out))
                results.append(_with_mark(key, out or marks(ours_key), outcome, ours_key))
            elif key in lab_keys:
                results.append(_with_mark(key, out, Outcome(MISSING, f"{lab_keys[key]} only in LAB")))
            else:
                results.append(KeyResult(key, EXTRA, _mark(out), f"{ours_keys[key]} only in OURS"))
    return Report(str(lab), str(ours), rtol, results)


def _precision(out) -> float:
    return out.precision if out is not None else 0.0


def _judge(lab_h5, ours_h5, lab_key: str, lab_kind: str, ours_key: str, ours_kind: str, rtol,
           precision: float = 0.0) -> Outcome:
    if lab_kind != ours_kind:
        where = "" if lab_key == ours_key else f" {ours_key}"
        how = f"structure: {lab_kind} in LAB, {ours_kind}{where} in OURS"
        if GROUP in (lab_kind, ours_kind):
            return Outcome(DIFFERS, how)
        values = compare_values(read(lab_h5, lab_key, lab_kind), read(ours_h5, ours_key, ours_kind), rtol, precision)
        return Outcome(DIFFERS, how + ("; same value" if values.status == EQUAL else f"; {values.detail}"))
    if lab_kind == GROUP:
        return Outcome(EQUAL)
    return compare_values(read(lab_h5, lab_key, lab_kind), read(ours_h5, ours_key, ours_kind), rtol, precision)


def _with_mark(key: str, out, outcome: Outcome, ours_key: str | None = None) -> KeyResult:
    """The key's class: a difference (or absence) at a key the schema marks fixed is documented."""
    cls = outcome.status
    detail = outcome.detail
    if cls in (DIFFERS, MISSING) and out is not None and out.origin == FIXED \
            and (not out.fixed_where_nan or outcome.ours_nan_only):
        cls, detail = DOCUMENTED, f"fixed: {out.fixed}; {detail}"
    return KeyResult(key, cls, _mark(out), detail, ours_key)


def _mark(out) -> str | None:
    return out.mark if out is not None else None


def _alias(key: str) -> str:
    """Where a notebook finds the key, whatever HDF5 structure holds it (``X/_attrs/n``, ``X/n``, ``X@n``)."""
    owner, at, name = key.partition("@")
    if at:
        return f"{owner}/{name}" if owner else name
    return key.replace("/_attrs/", "/")


def _pair_structures(lab_only: dict[str, str], ours_only: dict[str, str]) -> dict[str, tuple[str, Outcome | None]]:
    """Lab keys that our file holds in another structure: lab key -> (our key, outcome or None).

    None: to be judged (the two are leaves). A lab ``_attrs`` group whose datasets we store as
    attributes of its owner is paired with the owner, already judged.
    """
    ours_by_alias = {_alias(key): key for key in ours_only}
    pairs: dict[str, tuple[str, Outcome | None]] = {}
    for key in lab_only:
        ours_key = ours_by_alias.get(_alias(key))
        if ours_key is not None and ours_key != key and lab_only.get(key) != ours_only[ours_key]:
            pairs[key] = (ours_key, None)
    for key, kind in lab_only.items():
        if kind == GROUP and key.endswith("/_attrs") and key not in pairs:
            owner = key.removesuffix("/_attrs")
            moved = [pairs[k][0] for k in pairs if k.startswith(key + "/") and ours_only[pairs[k][0]] == ATTRIBUTE]
            if moved:
                pairs[key] = (owner, Outcome(DIFFERS, f"structure: group in LAB, attributes of {owner} in OURS "
                                                      f"({', '.join(sorted(moved))})"))
    return pairs


class Marks:
    """``find_out`` of a key, remembered per key shape.

    Unit ids and numeric path segments (trials, directions) are replaced by one representative
    before the look-up: the schema's placeholders match any of them alike and no declared path
    spells a literal unit id or number, so the ~126 000 keys of a lab-scale file take a few
    hundred look-ups.
    """

    _UNIT = re.compile(r"(?<![^/@])unit_\d{3,}(?![^/@])")
    _NUMBER = re.compile(r"(?<![^/@])\d+(?![^/@])")

    def __init__(self, registry):
        self.registry = registry
        self._known: dict[str, object] = {}

    def __call__(self, key: str):
        probe = self._NUMBER.sub("0", self._UNIT.sub("unit_000", key))
        if probe not in self._known:
            self._known[probe] = find_out(self.registry, probe)
        return self._known[probe]
