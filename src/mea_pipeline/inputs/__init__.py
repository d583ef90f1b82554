"""The external inputs a step may read, each declared once (:class:`ExternalInput`).

A declaration gives an input's options (each a config-file key and a flag of every processing
command), its fingerprint (which enters the cache key of every step that reads it, so a change
reruns exactly those steps) and its pre-flight checks. A step names the inputs it reads
(``reads=("cmcr", "stimuli")``) or declares its own (an :class:`ExternalInput` in ``reads``, added
here while the step is registered); an unknown name is an error when the step is declared.

Locating may give ``None`` for optional inputs (no label folder, no sheet, the packaged default
weights); the fingerprint then says so, and the step decides what that means.
"""

from __future__ import annotations

from .crossing import ON_OFF_DICT
from .declaration import PATH, TEXT, ExternalInput, InputOption, content_fingerprint, file_fingerprint
from .labels import LABELS
from .model import AP_MODEL
from .raw import CMCR, CMTR
from .sheet import SHEET, cached_table
from .stimuli import STIMULI

INPUTS: dict[str, ExternalInput] = {i.name: i for i in (CMCR, CMTR, STIMULI, LABELS, SHEET, AP_MODEL, ON_OFF_DICT)}


def is_raw(names) -> bool:
    """Whether any of the inputs ``names`` is a raw recording file."""
    return any(INPUTS[name].raw for name in names)


def options() -> dict[str, InputOption]:
    """Every input's options by config key, in declaration order."""
    found: dict[str, InputOption] = {}
    for spec in INPUTS.values():
        for option in spec.options:
            found[option.key] = option
    return found


def input_names(step_name: str, reads) -> frozenset[str]:
    """The names of a step's inputs (names, or the step's own ExternalInput declarations).

    A name that is neither a known input nor declared by the step is a programming error.
    """
    names = frozenset(item.name if isinstance(item, ExternalInput) else item for item in reads)
    own = {item.name for item in reads if isinstance(item, ExternalInput)}
    unknown = sorted(names - set(INPUTS) - own)
    if unknown:
        raise ValueError(f"step {step_name} reads unknown input(s) {unknown}; known: {', '.join(INPUTS)}")
    return names


def add_inputs(step_name: str, declared) -> None:
    """Make a step's own inputs known (flags, config keys, fingerprints, pre-flight).

    An input of the same name that is another declaration, or an option key another input uses,
    is a programming error.
    """
    for spec in declared:
        if INPUTS.get(spec.name, spec) != spec:
            raise ValueError(f"step {step_name} declares input {spec.name!r}, which is already another input")
        taken = {o.key for other in INPUTS.values() if other.name != spec.name for o in other.options}
        clash = [o.key for o in spec.options if o.key in taken]
        if clash:
            raise ValueError(f"step {step_name}: input {spec.name!r} reuses option key(s) {clash}")
    INPUTS.update({spec.name: spec for spec in declared})


def remove_inputs(declared) -> None:
    for spec in declared:
        INPUTS.pop(spec.name, None)


def fingerprints(reads, rec, config) -> dict:
    """Fingerprint of every input in ``reads`` (sorted by name)."""
    return {name: INPUTS[name].fingerprint(rec, config) for name in sorted(reads)}


__all__ = ["INPUTS", "PATH", "TEXT", "ExternalInput", "InputOption",
           "add_inputs", "cached_table", "content_fingerprint", "file_fingerprint",
           "fingerprints", "input_names", "is_raw", "options", "remove_inputs"]
