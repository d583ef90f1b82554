"""The batch-level check: everything every recording of the batch reads, once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..config import PipelineConfig, RecordingInputs
from ..inputs import INPUTS, is_raw
from ..inputs.raw import windows_path_hint
from ..steps import REGISTRY
from ..steps.registry import Registry
from .output import check_output_folder
from .report import Report
from .stimuli import check_library_reads


def check_batch(config: PipelineConfig, steps: str | None, output: str | Path,
                selection: Sequence[RecordingInputs] = (), registry: Registry = REGISTRY) -> Report:
    """Check the output folder and every shared input the selected steps read.

    What is checked follows from the declarations: each input the selected steps read runs its
    ``check_batch``, and each selected step its ``library_check``.

    Parameters
    ----------
    config : PipelineConfig
        The inputs (stimulus library, playlist, sheet, labels, weights, crossing pickle, ...).
    steps : str or None
        The ``--steps`` selection (None: all).
    output : str or Path
        The output folder.
    selection : sequence of RecordingInputs
        The recordings the batch will run: a recording named twice is a warning; Windows paths
        on every row (a forgotten ``--path-map``) are one error instead of one per recording.

    Returns
    -------
    Report
        Errors stop the whole batch (exit code 2); warnings are printed and the batch runs.
    """
    report = Report()
    selected = registry.select(steps, config.enabled_steps)
    reads = set().union(*(step.reads for step in selected))
    check_output_folder(report, Path(output))
    for name in sorted(reads):
        if INPUTS[name].check_batch is not None:
            INPUTS[name].check_batch(report, config)
    check_library_reads(report, config, selected, registry)
    _check_selection(report, selection, is_raw(reads))
    return report


def _check_selection(report: Report, selection: Sequence[RecordingInputs], reads_raw: bool) -> None:
    for rid, count in Counter(rec.recording_id for rec in selection).items():
        if count > 1:
            report.warning(f"recording {rid} is named by {count} rows of the mapping CSV: it runs once, "
                           "the other rows are reported as skipped")
    if not reads_raw or not selection:
        return
    unmapped = [rec for rec in selection if not Path(rec.cmtr_path).exists() and windows_path_hint(rec.cmtr_path)]
    if len(unmapped) == len(selection):
        report.error(f"every selected row of the mapping CSV names a Windows path that does not exist here "
                     f"(e.g. {unmapped[0].cmtr_path}){windows_path_hint(unmapped[0].cmtr_path)}")
