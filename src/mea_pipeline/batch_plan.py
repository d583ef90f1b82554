"""What a batch will do with each row it selects, decided once before anything runs.

:func:`plan_batch` reads the mapping CSV, applies the row range and the filters of the batch
options, and decides per recording: ``run`` it, ``skip`` it (its output is complete) or skip a
``duplicate`` row (a recording named again by the CSV runs once). ``mea-pipeline check`` and
the batch flow both act on this plan, so they agree on what runs; the batch's pre-flight checks
the rows the plan runs, and the per-recording guard asks about completeness again only when the
output file changed since the plan looked at it (another run may have finished it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .batch_options import BatchOptions
from .config import PipelineConfig, RecordingInputs
from .mapping import parse_path_map, recordings, scan
from .runner import is_complete
from .steps import REGISTRY
from .steps.registry import Registry
from .store import OutputFile

RUN, SKIP, DUPLICATE = "run", "skip", "duplicate"


def file_identity(path: Path) -> tuple[int, ...] | None:
    """What changes whenever a file is replaced or edited (a commit replaces it); None when it is absent."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


@dataclass(frozen=True)
class RecordingDecision:
    """What the batch does with one selected row of the mapping CSV.

    Attributes
    ----------
    recording : RecordingInputs
        The row's recording.
    action : str
        ``'run'``, ``'skip'`` (output complete) or ``'duplicate'`` (the recording was named by
        an earlier row; it runs once).
    reason : str
        Why, in the words the batch prints.
    seen : tuple of int or None
        The output file's identity when the plan decided (:func:`file_identity`).
    """

    recording: RecordingInputs
    action: str
    reason: str
    seen: tuple[int, ...] | None = None

    def output_changed(self) -> bool:
        """True when the output file is not the one the plan looked at (another run wrote it since)."""
        return file_identity(self.recording.output_path) != self.seen


@dataclass(frozen=True)
class BatchPlan:
    """The batch's decisions, one per selected row in CSV order, and the steps it runs.

    Attributes
    ----------
    options : BatchOptions
        The resolved batch options the plan follows.
    steps : tuple of str
        Names of the selected steps, in run order.
    decisions : tuple of RecordingDecision
        One per selected row of the mapping CSV.
    """

    options: BatchOptions
    steps: tuple[str, ...]
    decisions: tuple[RecordingDecision, ...]

    @property
    def to_run(self) -> list[RecordingInputs]:
        """The recordings the batch runs (each once)."""
        return [d.recording for d in self.decisions if d.action == RUN]

    @property
    def preflight_rows(self) -> list[RecordingInputs]:
        """The rows the batch's pre-flight checks: those that run and the rows repeating them
        (so the check can say that a recording is named twice); none when nothing runs."""
        running = {d.recording.recording_id for d in self.decisions if d.action == RUN}
        return [d.recording for d in self.decisions if d.recording.recording_id in running and d.action != SKIP]


@dataclass(frozen=True)
class CheckedBatch:
    """A planned batch whose pre-flight passed: what the batch flow runs.

    The command line makes one before Prefect starts (a bad input is one line at once) and hands
    it to the flow, so the config is loaded, the pre-flight run and each output's completeness
    asked once per batch.

    Attributes
    ----------
    plan : BatchPlan
        What runs.
    config : PipelineConfig
        The loaded configuration, with the input options given.
    """

    plan: BatchPlan
    config: PipelineConfig


def plan_batch(options: BatchOptions, config: PipelineConfig, csv: str | Path | None = None,
               registry: Registry = REGISTRY) -> BatchPlan:
    """Decide, for every row the batch selects, whether it runs.

    Parameters
    ----------
    options : BatchOptions
        The mapping CSV, row range, ``recording_ids``, ``only_failed``, ``overwrite``,
        ``recheck`` and ``steps`` of the batch.
    config : PipelineConfig
        The step parameters a complete output must have been computed with.
    csv : str or Path, optional
        The mapping CSV to read instead of ``options.csv`` (the one a folder scan wrote).
    registry : Registry
        The steps.

    Returns
    -------
    BatchPlan
        A recording runs when ``overwrite`` or ``recheck`` is set or its output is not complete
        (:func:`mea_pipeline.runner.is_complete`: the file's records are trusted, the raw files,
        which may be offline, are not read); a complete one is skipped; a recording named again
        by a later row is a ``duplicate``.

    Raises
    ------
    InputError
        The mapping CSV or the row range is unusable (one line naming the file or option).
    """
    selection = recordings(csv or options.csv, options.output, parse_path_map(list(options.path_map)),
                           options.start, options.end)
    if options.recording_ids:
        wanted = set(options.recording_ids)
        selection = [r for r in selection if r.recording_id in wanted]
    if options.only_failed:
        selection = [r for r in selection if _has_failed_step(r.output_path)]
    decisions, seen = [], set()
    for recording in selection:
        if recording.recording_id in seen:
            decisions.append(RecordingDecision(recording, DUPLICATE, "named again by the mapping CSV; it runs once"))
            continue
        seen.add(recording.recording_id)
        decisions.append(_decide(recording, options, config, registry))
    selected = registry.select(options.steps, config.enabled_steps)
    return BatchPlan(options, tuple(step.name for step in selected), tuple(decisions))


def _decide(recording: RecordingInputs, options: BatchOptions, config: PipelineConfig,
            registry: Registry) -> RecordingDecision:
    identity = file_identity(recording.output_path)
    if options.overwrite:
        return RecordingDecision(recording, RUN, "--overwrite: every selected step is recomputed", identity)
    if options.recheck:
        # --recheck compares every step's cache key, raw files included, when the recording runs.
        return RecordingDecision(recording, RUN, "--recheck: steps whose inputs changed rerun", identity)
    if identity is None:
        return RecordingDecision(recording, RUN, "no output yet", identity)
    if is_complete(recording, config, options.steps, registry):
        return RecordingDecision(recording, SKIP, "output complete", identity)
    return RecordingDecision(recording, RUN, "output incomplete", identity)


def _has_failed_step(path: Path) -> bool:
    return any(state.startswith("failed") for state in OutputFile(path).step_states().values())


def scan_to_csv(roots, output: str | Path) -> tuple[Path, str, list[str]]:
    """Scan the data folders and write the mapping CSV next to the outputs (``scan-YYYY-MM-DD.csv``).

    Returns the CSV, a line saying what was found, and the files that could not be paired.
    """
    table, problems = scan(list(roots))
    path = Path(output) / f"scan-{date.today().isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    found = int(table["matched"].sum()) if len(table) else 0
    return path, f"scanned {', '.join(map(str, roots))}: {found} recordings -> {path}", problems
