"""Step declarations and the registry that turns them into order and dependencies.

A step module declares ``STEP = Step(...)``: its name and number, the steps whose output it
reads, which external inputs it reads (``cmcr``, ``cmtr``, ``stimuli``, ...), a parameter
dataclass, a code version (bump it when the step's output changes for the same inputs) and the
function. From these declarations follow the run order, the cache dependencies (a step's
cache key includes its upstream records) and the schema entries (``outputs``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from ..config import PipelineConfig, RecordingInputs
    from ..store import StepTransaction

RAW_INPUTS = frozenset({"cmcr", "cmtr"})


@dataclass
class StepContext:
    """What a step function gets: its inputs, the open output file, and a warning sink."""

    recording: "RecordingInputs"
    config: "PipelineConfig"
    tx: "StepTransaction"
    warnings: list[str] = field(default_factory=list)

    @property
    def h5(self):
        """The output file (a temporary copy holding every earlier step's output)."""
        return self.tx.h5

    def warn(self, message: str) -> None:
        self.warnings.append(message)


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

    @property
    def needs_raw(self) -> bool:
        return bool(self.reads & RAW_INPUTS)


class Registry:
    """Steps in run order, with dependency queries."""

    def __init__(self, steps: list[Step]):
        self.steps = sorted(steps, key=lambda s: s.number)
        self.by_name = {s.name: s for s in self.steps}
        for step in self.steps:
            unknown = [u for u in step.upstream if u not in self.by_name]
            if unknown:
                raise ValueError(f"step {step.name} declares unknown upstream step(s) {unknown}")
            if any(self.by_name[u].number >= step.number for u in step.upstream):
                raise ValueError(f"step {step.name} must come after its upstream steps")

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
