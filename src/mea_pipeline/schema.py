"""The output file's schema, declared by the steps, and a validator for produced files.

Each step lists its outputs as :class:`Out` entries (a path pattern, dtype, shape, meaning).
``validate`` checks a produced file against them: every path a step recorded must match one of
its declared patterns with the declared dtype and rank, and every required pattern must occur.
``render_markdown`` writes ``docs/output_schema.md`` from the same declarations, ending with the
parameter reference (:mod:`mea_pipeline.params_reference`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import h5py
import numpy as np

from . import params_reference
from .frames import FRAMES

# Placeholders usable in patterns, and what they match.
PLACEHOLDERS = {
    "{unit}": r"unit_\d{3,}",
    "{movie}": r"[^/@]+",
    "{trial}": r"\d+",
    "{field}": r"[^/@]+",
    "{direction}": r"\d+(?:\.\d+)?",   # a moving-bar direction in degrees, as dsgc names its groups
    "{attribute}": r"[^/@]+",
}


# What a key is to a lab that reads our files (PRODUCT.md section 4, "the lab-key contract").
LAB, FIXED, OURS = "lab", "fixed", "ours"


@dataclass(frozen=True)
class Out:
    """One output: ``path`` pattern (``group@attr`` for an attribute), dtype kind and rank.

    ``dtype``: 'f' float, 'i' integer (signed or unsigned), 'u' unsigned, 'b' boolean, 'str'
    string, 'any' (metadata copied from the raw files). ``ndim``: None when it varies.

    ``origin`` says what the key is to a lab whose notebooks read it: :data:`LAB` (the lab's
    scripts write this key and it holds the lab's quantity, units, convention and structure),
    :data:`FIXED` (a lab key whose value we deliberately compute differently; ``fixed`` says
    why, and ``mea-pipeline compare`` reports a difference there as documented) or :data:`OURS`
    (a key the lab's scripts do not write). ``units`` names the unit of a quantity and ``frame``
    the frame of an angle or position (:mod:`mea_pipeline.frames`).
    """

    path: str
    dtype: str
    ndim: int | None
    doc: str
    required: bool = True
    origin: str | None = None
    fixed: str = ""
    units: str = ""
    frame: str = ""
    # A fix that only applies where the lab writes a sentinel or defaults and we write NaN (plus a
    # status): elsewhere the key is the lab's, and compare holds it to the lab's value.
    fixed_where_nan: bool = False
    # The relative precision the lab's value carries when it is coarser than its dtype's (e.g. a
    # float64 key the lab computes in float32): compare allows at least this much.
    precision: float = 0.0

    def __post_init__(self):
        if self.origin not in (None, LAB, FIXED, OURS):
            raise ValueError(f"{self.path}: origin must be lab, fixed or ours, got {self.origin!r}")
        if (self.origin == FIXED) != bool(self.fixed):
            raise ValueError(f"{self.path}: a fixed lab key names its reason, and only a fixed key has one")
        if self.fixed_where_nan and self.origin != FIXED:
            raise ValueError(f"{self.path}: fixed_where_nan qualifies a fixed key")

    @property
    def mark(self) -> str:
        """'lab', 'lab, fixed: <reason>' (or 'lab, fixed where ours is NaN: <reason>') or 'ours'; None when unmarked."""
        if self.origin != FIXED:
            return self.origin
        return f"lab, fixed where ours is NaN: {self.fixed}" if self.fixed_where_nan else f"lab, fixed: {self.fixed}"

    def regex(self) -> re.Pattern:
        return _path_regex(self.path)

    def at(self, **values: str) -> str:
        """The concrete path of this output: ``at(unit="unit_001", movie=m)`` fills the placeholders.

        Writers, readers and QC all name an output through its declaration, so a path is typed
        once. Every placeholder of the pattern must be given and match what it stands for.
        """
        path = self.path
        for name in _placeholders(self.path):
            if name not in values:
                raise KeyError(f"{self.path}: give {name}=...")
            value = str(values.pop(name))
            if not re.fullmatch(PLACEHOLDERS["{" + name + "}"], value):
                raise ValueError(f"{self.path}: {name}={value!r} does not fit the pattern")
            path = path.replace("{" + name + "}", value)
        if values:
            raise KeyError(f"{self.path} has no placeholder(s) {', '.join(values)}")
        return path

    def key(self) -> str:
        """The last name of the path (the dataset or attribute name), e.g. for a reader's dict."""
        return self.path.rpartition("@")[2] if "@" in self.path else self.path.rpartition("/")[2]


@functools.cache
def _path_regex(path: str) -> re.Pattern:
    """A declared path as a regex, built once: find_out and validate match every key of a file."""
    pattern = re.escape(path)
    for placeholder, regex in PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape(placeholder), regex)
    return re.compile(pattern + r"$")


def _placeholders(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def outs(base: str, names, dtype: str, ndim: int | None, doc: str, **marks) -> tuple[Out, ...]:
    """One :class:`Out` per name under ``base`` sharing dtype, rank, meaning and marks.

    ``doc`` may use ``{name}``. Keys of one group that differ in origin, units or frame are
    declared by separate calls, so every key carries its own mark.
    """
    return tuple(Out(f"{base}/{name}", dtype, ndim, doc.format(name=name), **marks) for name in names)


PIPELINE_OUTPUTS = (
    Out("pipeline/completed_steps", "str", 1, "names of the steps whose record is done", origin=OURS),
    Out("pipeline/steps/{field}", "group", None,
        "one record per step: attributes status, cache_key, code_version, parameters (JSON), "
        "input_fingerprint (JSON), outputs (JSON list of owned paths), output_digest, started_at, "
        "finished_at, duration_s, warnings (JSON), summary (JSON); last_error/last_error_at after a failure",
        origin=OURS),
)


def all_outputs(registry) -> list[Out]:
    """Every declared output: the bookkeeping, then each step's in run order."""
    return list(PIPELINE_OUTPUTS) + [out for step in registry for out in step.outputs]


def find_out(registry, path: str) -> Out | None:
    """The declaration a produced path (``group@attr`` for an attribute) falls under, or None.

    Sub-objects of a declared group (e.g. the attributes of a step record) belong to it.
    """
    declared = all_outputs(registry)
    probe = path
    while probe:
        for out in declared:
            if out.regex().match(probe):
                return out
        probe = probe.rpartition("@")[0] if "@" in probe else probe.rpartition("/")[0]
    return None


def _dtype_ok(obj, expected: str) -> bool:
    if expected == "any":
        return True
    if expected == "group":
        return isinstance(obj, h5py.Group)
    if isinstance(obj, h5py.Group):
        return False
    dtype = obj.dtype
    if expected == "str":
        return dtype.kind in "OSU" or h5py.check_string_dtype(dtype) is not None
    if expected == "i":
        return dtype.kind in "iu"
    return dtype.kind == expected


def _check_value(h5: h5py.File, path: str, out: Out) -> str | None:
    obj_path, _, attr = path.partition("@")
    if obj_path not in h5 or (attr and attr not in h5[obj_path].attrs):
        return f"{path}: recorded by the step but missing from the file (renamed or deleted?)"
    if attr:
        kind = np.asarray(h5[obj_path].attrs[attr]).dtype.kind
        ok = out.dtype == "any" or kind == out.dtype or (out.dtype == "str" and kind in "OSU") \
            or (out.dtype == "i" and kind in "iu")
        return None if ok else f"{path}: attribute of kind {kind}, schema says {out.dtype}"
    obj = h5[obj_path]
    if not _dtype_ok(obj, out.dtype):
        return f"{path}: {getattr(obj, 'dtype', 'group')}, schema says {out.dtype}"
    if out.ndim is not None and isinstance(obj, h5py.Dataset) and obj.ndim != out.ndim:
        return f"{path}: {obj.ndim}-d, schema says {out.ndim}-d"
    return None


def validate(h5: h5py.File, registry) -> list[str]:
    """Problems of a produced file against the schema (empty list = valid)."""
    from .store import StepRecord  # the store does not depend on the schema

    problems = []
    paths = _all_paths(h5)
    problems += [f"{out.path}: missing" for out in PIPELINE_OUTPUTS
                 if out.required and not any(out.regex().match(p) for p in paths)]
    for step in registry:
        record = StepRecord.read(h5, step.name)
        if record is None or record.status != "done":
            continue
        matched: dict[Out, int] = {out: 0 for out in step.outputs}
        for path in record.outputs:
            outs = [out for out in step.outputs if out.regex().match(path)]
            if not outs:
                problems.append(f"{step.name}: {path} is not in the schema")
                continue
            matched[outs[0]] += 1
            if problem := _check_value(h5, path, outs[0]):
                problems.append(f"{step.name}: {problem}")
        problems += [f"{step.name}: no output matches {out.path}" for out, count in matched.items()
                     if out.required and count == 0]
    return problems


def _all_paths(h5: h5py.File) -> list[str]:
    paths: list[str] = []
    h5.visit(paths.append)
    return paths


def render_markdown(registry) -> str:
    """The schema as a Markdown document (``docs/output_schema.md``)."""
    lines = [
        "# Output file schema",
        "",
        "Generated from the step declarations (`mea-pipeline schema > docs/output_schema.md`);",
        "a test checks produced files against it. One file per recording, `<recording_id>.h5`.",
        "Placeholders: `{unit}` = `unit_NNN` (CMTR unit number), `{movie}` = a playlist movie,",
        "`{trial}` = trial index, `{direction}` = a moving-bar direction in degrees (`0`, `45`, ...),",
        "`{field}` = a name the source defines (a raw-file attribute, a sheet column), `group@attr` =",
        "an attribute. dtype: f float, i integer, u unsigned, b boolean, str string, any = copied",
        "from the raw files as found.",
        "",
        "Origin (PRODUCT.md, the lab-key contract): `lab` = the lab's scripts write this key and it",
        "holds the lab's quantity, units, sign and angle convention, field order, dtype family and",
        "structure; `lab, fixed: <reason>` = a lab key whose value we compute differently on purpose",
        "(a lab bug this pipeline fixes; `fixed where ours is NaN`: only where the lab writes a sentinel",
        "or defaults and we write NaN plus a status); `ours` = not written by the lab's scripts.",
        "`mea-pipeline compare LAB.h5 OURS.h5` reads these marks. Angles and positions name their",
        "frame: " + "; ".join(f"`{name}` = {meaning}" for name, meaning in FRAMES.items()) + ".",
        "",
        "## Pipeline bookkeeping",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(out) for out in PIPELINE_OUTPUTS]
    for step in registry:
        reads = ", ".join(sorted(step.reads)) or "the output file only"
        optional = (f" Optional: runs where the config enables it (`[steps.{step.name}] enabled = true`) or "
                    f"`--steps` names it." if step.optional else "")
        lines += ["", f"## Step {registry.number(step.name)}: {step.name}", "",
                  f"{step.description}. Reads: {reads}. Upstream: {', '.join(step.upstream) or 'none'}.{optional}",
                  "", HEADER, "|---|---|---|---|---|---|---|"]
        lines += [_row(out) for out in step.outputs]
    return "\n".join(lines) + "\n\n" + params_reference.render_markdown(registry)


HEADER = "| path | origin | dtype | ndim | units | frame | meaning |"


def _row(out: Out) -> str:
    optional = "" if out.required else " (optional)"
    if out.precision:
        optional += f"; the lab's value carries a relative precision of {out.precision:g}"
    ndim = out.ndim if out.ndim is not None else "-"
    return (f"| `{out.path}` | {out.mark or 'UNMARKED'} | {out.dtype} | {ndim} | {out.units or '-'} | "
            f"{out.frame or '-'} | {out.doc}{optional} |")
