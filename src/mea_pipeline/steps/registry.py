"""Step declarations and the registry that turns them into order and dependencies.

A step module declares ``STEP = Step(...)`` (see :class:`Step`): the steps whose output it
reads, the external inputs it reads, what pre-flight checks of the stimulus library for it, its
parameters, code version, function, outputs and QC part. From these declarations follow the run
order (dependencies, ties by position) and the public step numbers, the Prefect tasks, the cache
dependencies (a step's cache key includes its upstream records and its inputs' fingerprints),
pre-flight, the QC report, the parameter reference and the schema.

A step reads another step's output only through that step's *readers* (functions decorated
with :func:`reader`), which refuse a step that does not declare the writer upstream.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..inputs import ExternalInput, add_inputs, input_names, is_raw, remove_inputs

if TYPE_CHECKING:
    from ..config import PipelineConfig, RecordingInputs
    from ..schema import Out
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

    def write(self, values: Mapping["Out", object], attrs: Mapping["Out", Mapping] | None = None,
              **where: str) -> None:
        """Write each value at its output, the path filled in with ``where`` (:meth:`Out.at`).

        A None value is not written. ``attrs`` gives outputs their dataset attributes (e.g. an
        angle's frame); an output ``group@name`` is set as attribute ``name`` of its group.
        """
        for out, value in values.items():
            if value is None:
                continue
            path = out.at(**where)
            if "@" in path:
                group, _, name = path.partition("@")
                self.tx.set_attrs(group, {name: value})
            else:
                self.tx.write(path, value, attrs=(attrs or {}).get(out))

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
class Qc:
    """A step's part of a recording's QC report, drawn from the output file through the step's readers.

    ``figure(h5)`` returns a matplotlib Figure (saved as ``<topic>.png``) or None when the file
    holds nothing to draw; ``numbers(h5)`` returns key numbers (a dict of JSON values) merged into
    the report's ``numbers``.
    """

    topic: str | None = None
    figure: Callable[[Any], Any] | None = None
    numbers: Callable[[Any], dict] | None = None

    def __post_init__(self):
        if (self.topic is None) != (self.figure is None):
            raise ValueError("a QC figure needs its topic (the PNG's name), and a topic its figure")


@dataclass(frozen=True)
class Step:
    """Everything about one step; the registry derives order, tasks, cache keys, pre-flight, QC and schema.

    Attributes
    ----------
    name : str
        The step's name: task name, ``--steps`` value, config table ``[steps.<name>]``.
    upstream : tuple of str
        Steps whose output this one reads (through their readers); the run order follows them.
    reads : frozenset
        External inputs (names of :data:`mea_pipeline.inputs.INPUTS`, or
        :class:`~mea_pipeline.inputs.ExternalInput` declarations of the step's own inputs, which
        registering the step adds to the inputs: flag, config key, fingerprint, pre-flight).
    params : type
        The parameter dataclass (every default written there, once).
    version : str
        Code version; bump it when the output changes for the same inputs.
    run : callable
        ``run(ctx, params) -> summary dict``.
    outputs : tuple of schema.Out
        The step's entries in the output schema; writers and readers name paths through them.
    description : str
        One line for the UI, the schema document and ``mea-pipeline params``.
    position : float
        Breaks ties of the dependency order (steps that do not depend on each other run by
        position); the public step numbers follow the resulting order.
    library_check : callable, optional
        ``library_check(check)``: what the step reads of the stimulus library, read by pre-flight
        with the readers the step uses (``check`` is a :class:`mea_pipeline.preflight.stimuli.LibraryCheck`).
    qc : Qc, optional
        The step's figure and key numbers in the QC report.
    retries : int, optional
        Retries on transient I/O errors; default: 2 for steps that read the raw files, else 0.
    timeout_s : float, optional
        A time limit of the step's task (``[timeouts] <step>`` in the config overrides it).
    optional : bool
        Runs only where enabled (``[steps.<name>] enabled = true``) or named in ``--steps``
        (``--steps all,<name>``); 'all' and the stages leave it out otherwise.
    external_outputs : callable, optional
        ``external_outputs(recording, params) -> paths``: files the step writes beside the output
        file (e.g. an export). The step counts as done only while they all exist.
    """

    name: str
    upstream: tuple[str, ...]
    reads: frozenset
    params: type
    version: str
    run: Callable[[StepContext, Any], dict]
    outputs: tuple
    description: str
    position: float = 100.0
    library_check: Callable[[Any], None] | None = None
    qc: Qc | None = None
    retries: int | None = None
    timeout_s: float | None = None
    optional: bool = False
    external_outputs: Callable[["RecordingInputs", Any], tuple[Path, ...]] | None = None
    own_inputs: tuple[ExternalInput, ...] = field(init=False, default=())

    def __post_init__(self):
        object.__setattr__(self, "own_inputs", tuple(i for i in self.reads if isinstance(i, ExternalInput)))
        object.__setattr__(self, "reads", input_names(self.name, self.reads))
        object.__setattr__(self, "upstream", tuple(self.upstream))

    @property
    def needs_raw(self) -> bool:
        return is_raw(self.reads)

    def outside_files_present(self, recording: "RecordingInputs", params) -> bool:
        """Whether every file the step writes beside the output file exists (True when it writes none)."""
        if self.external_outputs is None:
            return True
        return all(Path(path).is_file() for path in self.external_outputs(recording, params))

    @property
    def stage(self) -> str:
        """``raw`` (reads the raw recordings) or ``offline`` (the output file and small inputs only)."""
        return RAW if self.needs_raw else OFFLINE


RAW, OFFLINE = "raw", "offline"
STAGES = {RAW: "steps that read the raw .cmcr/.cmtr files", OFFLINE: "steps that need only the output file and small inputs"}


def dependency_order(steps: list[Step]) -> list[Step]:
    """Steps in an order where each comes after its upstream steps; ties go by (position, name).

    Raises ValueError for duplicate names, an unknown upstream step or a dependency cycle.
    """
    by_name = {s.name: s for s in steps}
    if len(by_name) != len(steps):
        raise ValueError("step names must be unique")
    for step in steps:
        unknown = [u for u in step.upstream if u not in by_name]
        if unknown:
            raise ValueError(f"step {step.name} declares unknown upstream step(s) {unknown}")
    ordered: list[Step] = []
    placed: set[str] = set()
    waiting = sorted(steps, key=lambda s: (s.position, s.name))
    while waiting:
        ready = next((s for s in waiting if set(s.upstream) <= placed), None)
        if ready is None:
            raise ValueError(f"steps {', '.join(s.name for s in waiting)} depend on each other in a cycle")
        ordered.append(ready)
        placed.add(ready.name)
        waiting.remove(ready)
    return ordered


class Registry:
    """Steps in dependency order, with their public numbers, stages and dependency queries."""

    def __init__(self, steps: list[Step]):
        self._set(list(steps))

    def _set(self, steps: list[Step]) -> None:
        ordered = dependency_order(steps)
        previous = getattr(self, "steps", [])
        remove_inputs([i for s in previous for i in s.own_inputs])
        for step in ordered:
            add_inputs(step.name, step.own_inputs)
        self.steps, self.by_name = ordered, {s.name: s for s in ordered}

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

    def number(self, name: str) -> int:
        """The step's public number: its place in the run order, from 1 (``--steps 1-5``)."""
        return self.steps.index(self.by_name[name]) + 1

    def dependents(self, name: str) -> list[str]:
        """Every step that reads ``name``'s output, directly or through other steps."""
        found: list[str] = []
        for step in self.steps:
            if name in step.upstream or any(u in found for u in step.upstream):
                found.append(step.name)
        return found

    def upstream_closure(self, names) -> list[str]:
        """``names`` and every step they read from, directly or through others, in run order."""
        wanted = set(names)
        for step in reversed(self.steps):
            if step.name in wanted:
                wanted.update(step.upstream)
        return [s.name for s in self.steps if s.name in wanted]

    def select(self, spec: str | None, enabled: Collection[str] = ()) -> list[Step]:
        """Steps named by ``spec``: None/'all', numbers ('1-5', '1,3'), names, or stages ('raw', 'offline').

        'all' and the stages hold the optional steps only when ``enabled`` names them (the
        config's ``[steps.<name>] enabled = true``); a name or number selects any step, so
        ``all,<name>`` adds an optional step to one run.
        """
        def default(step: Step) -> bool:
            return not step.optional or step.name in enabled

        if spec is None or str(spec).strip().lower() in ("", "all"):
            return [s for s in self.steps if default(s)]
        by_number = {n: s for n, s in enumerate(self.steps, start=1)}
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
            elif part.lower() == "all":
                chosen.update(s.name for s in self.steps if default(s))
            elif part.lower() in STAGES:
                chosen.update(s.name for s in self.steps if s.stage == part.lower() and default(s))
            else:
                valid = ", ".join(f"{n}={s.name}" + (" (optional)" if s.optional else "")
                                  for n, s in by_number.items())
                raise InputError(f"--steps {spec!r}: unknown step {part!r}; steps are {valid}, "
                                 f"'all', or the stages {', '.join(STAGES)}")
        return [s for s in self.steps if s.name in chosen]
