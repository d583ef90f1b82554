"""Step declarations and the registry that turns them into order and dependencies.

A step module declares ``STEP = Step(...)``: its name and number, the steps whose output it
reads, which external inputs it reads (names from :mod:`mea_pipeline.inputs`), a parameter
dataclass, a code version (bump it when the step's output changes for the same inputs) and the
function. From these declarations follow the run order, the Prefect tasks, the cache
dependencies (a step's cache key includes its upstream records and its inputs' fingerprints)
and the schema entries (``outputs``).

A step reads another step's output only through that step's *readers* (functions decorated
with :func:`reader`), which refuse a step that does not declare the writer upstream.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..inputs import RAW_INPUTS, check_declared

if TYPE_CHECKING:
    from ..config import PipelineConfig, RecordingInputs
    from ..store import StepTransaction


class UndeclaredUpstream(RuntimeError):
    """A step read the output of a step it does not declare upstream (a programming error)."""


@dataclass
class StepContext:
    """What a step function gets: its inputs, the open output file, and a warning sink."""

    recording: "RecordingInputs"
    config: "PipelineConfig"
    tx: "StepTransaction"
    step: "Step | None" = None
    warnings: list[str] = field(default_factory=list)
    # Called as progress(done, total) by steps that loop over units (terminal bars, UI artifacts).
    progress: Callable[[int, int], None] | None = None

    @property
    def h5(self):
        """The output file (a temporary copy holding every earlier step's output)."""
        return self.tx.h5

    def upstream_file(self, writer: str):
        """The output file, for reading ``writer``'s output; ``writer`` must be declared upstream."""
        if self.step is not None and writer not in self.step.upstream:
            raise UndeclaredUpstream(f"step {self.step.name} reads {writer}'s output but does not declare "
                                     f"{writer!r} in its upstream steps")
        return self.h5

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def report_progress(self, done: int, total: int) -> None:
        """Tell whoever runs the step how far it got (``done`` of ``total`` items)."""
        if self.progress is not None:
            self.progress(done, total)


def reader(writer: str):
    """Mark a function ``f(h5, ...)`` as a reader of step ``writer``'s output.

    The decorated function takes a :class:`StepContext` (checked: the reading step must declare
    ``writer`` upstream) or an open ``h5py.File`` (tests, QC figures) as its first argument.
    """
    def decorate(function):
        @functools.wraps(function)
        def read(source, *args, **kwargs):
            h5 = source.upstream_file(writer) if isinstance(source, StepContext) else source
            return function(h5, *args, **kwargs)

        return read

    return decorate


@dataclass(frozen=True)
class Step:
    name: str
    number: int
    upstream: tuple[str, ...]
    reads: frozenset[str]
    params: type
    version: str
    run: Callable[[StepContext, Any], dict]
    outputs: tuple  # of schema.Out: the step's entries in the output schema
    description: str

    def __post_init__(self):
        object.__setattr__(self, "reads", check_declared(self.name, self.reads))
        object.__setattr__(self, "upstream", tuple(self.upstream))

    @property
    def needs_raw(self) -> bool:
        return bool(self.reads & RAW_INPUTS)


class Registry:
    """Steps in run order, with dependency queries."""

    def __init__(self, steps: list[Step]):
        self._set(list(steps))

    def _set(self, steps: list[Step]) -> None:
        ordered = sorted(steps, key=lambda s: s.number)
        by_name = {s.name: s for s in ordered}
        if len(by_name) != len(ordered) or len({s.number for s in ordered}) != len(ordered):
            raise ValueError("step names and numbers must be unique")
        for step in ordered:
            unknown = [u for u in step.upstream if u not in by_name]
            if unknown:
                raise ValueError(f"step {step.name} declares unknown upstream step(s) {unknown}")
            if any(by_name[u].number >= step.number for u in step.upstream):
                raise ValueError(f"step {step.name} must come after its upstream steps")
        self.steps, self.by_name = ordered, by_name

    def register(self, step: Step) -> None:
        """Add a step at run time (plug-ins, tests); it is wired like the built-in ones."""
        self._set(self.steps + [step])

    def unregister(self, name: str) -> None:
        self._set([s for s in self.steps if s.name != name])

    def replace(self, step: Step) -> Step:
        """Swap the declaration of ``step.name`` for ``step``; returns the one it replaced."""
        previous = self.by_name[step.name]
        self._set([step if s.name == step.name else s for s in self.steps])
        return previous

    def __getitem__(self, name: str) -> Step:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.steps)

    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def dependents(self, name: str) -> list[str]:
        """Every step that reads ``name``'s output, directly or through other steps."""
        found: list[str] = []
        for step in self.steps:
            if name in step.upstream or any(u in found for u in step.upstream):
                found.append(step.name)
        return found

    def select(self, spec: str | None) -> list[Step]:
        """Steps named by ``spec``: None/'all', a range '1-5', a list '1,3,4', or names."""
        if spec is None or str(spec).strip().lower() in ("", "all"):
            return list(self.steps)
        by_number = {s.number: s for s in self.steps}
        chosen: set[str] = set()
        for part in str(spec).split(","):
            part = part.strip()
            if match := re.fullmatch(r"(\d+)\s*-\s*(\d+)", part):
                low, high = int(match[1]), int(match[2])
                numbers = [n for n in by_number if low <= n <= high]
                if not numbers:
                    raise InputError(f"--steps {spec!r}: no step numbered {low}-{high}")
                chosen.update(by_number[n].name for n in numbers)
            elif part.isdigit() and int(part) in by_number:
                chosen.add(by_number[int(part)].name)
            elif part in self.by_name:
                chosen.add(part)
            else:
                valid = ", ".join(f"{s.number}={s.name}" for s in self.steps)
                raise InputError(f"--steps {spec!r}: unknown step {part!r}; steps are {valid}")
        return [s for s in self.steps if s.name in chosen]
