"""What a batch processes and how: one set of options for the CLI, the script and every deployment.

The options come from the ``[batch]`` table of the ``--config`` file, overridden by whatever the
caller sets (command-line flags, deployment parameters). They are resolved once, inside the
batch flow, so ``mea-pipeline batch``, ``python flows/batch_all_steps.py`` and a deployment run
with the same config behave alike.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from .config import read_config_file
from .errors import InputError

DEFAULT_OUTPUT = "export_all_steps"
MAX_CONCURRENCY = 16


@dataclass(frozen=True)
class BatchOptions:
    """One batch.

    Attributes
    ----------
    csv : str
        Mapping CSV (``cmcr_path``, ``cmtr_path``, ``matched``).
    output : str
        Folder of the ``<recording_id>.h5`` outputs.
    start, end : int, int or None
        Rows ``[start, end)`` of the matched rows.
    overwrite : bool
        Recompute every step of every selected recording.
    steps : str or None
        Steps to run (names, ``'1-5'``, ``'raw'``/``'offline'``); None = all.
    concurrency : int
        Recordings processed at once.
    raw_reads : int
        Recordings reading raw files at once, across every batch sharing the server.
    path_map : list of str
        ``'M:\\\\=/mnt/m/'`` rewrites of the CSV's paths.
    only_failed : bool
        Only recordings whose output records a failed step.
    recheck : bool
        Run every recording's steps through the cache even when its output is complete.
    recording_ids : list of str or None
        Only these recordings.
    scan_roots : list of str or None
        Data folders to scan for recordings when the batch starts (``mea-pipeline scan``); the
        mapping CSV found there is written next to the outputs and replaces ``csv``.
    dask_address : str or None
        ``tcp://host:port`` of an existing Dask scheduler that runs the recordings (read by the
        command line and ``serve``, which choose the flow's task runner).
    via_deployment : str or None
        ``<flow>/<deployment>`` of the per-recording flow on a work pool (e.g.
        ``process_recording/workers``): each recording becomes a flow run of that deployment,
        which a Prefect worker claims and runs, instead of running in the batch's process.
    report_webhook : str or None
        ``http(s)://`` address that gets the batch's report when it ends (counts, each failed
        recording with its reason, the UI link, the rerun command) as Slack-compatible JSON
        (``{"text": ...}``), sent by the Prefect server; None sends nothing.
    """

    csv: str | None = None
    output: str = DEFAULT_OUTPUT
    start: int = 0
    end: int | None = None
    overwrite: bool = False
    steps: str | None = None
    concurrency: int = 1
    raw_reads: int = 1
    path_map: tuple[str, ...] = ()
    only_failed: bool = False
    recheck: bool = False
    recording_ids: tuple[str, ...] | None = None
    scan_roots: tuple[str, ...] | None = None
    dask_address: str | None = None
    via_deployment: str | None = None
    report_webhook: str | None = None

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides) -> "BatchOptions":
        """``[batch]`` of ``config_file`` with the non-None ``overrides`` applied, validated."""
        table = dict(read_config_file(config_file).get("batch") or {}) if config_file else {}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - names)
        if unknown:
            raise InputError(f"{config_file}: unknown [batch] key(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown batch option(s) {unknown}")
        values = table | {k: v for k, v in overrides.items() if v is not None}
        for key in ("path_map", "scan_roots"):
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        for key in ("path_map", "recording_ids", "scan_roots"):
            if values.get(key) is not None:
                values[key] = tuple(str(v) for v in values[key])
        for key in ("csv", "output"):
            if values.get(key) is not None:
                values[key] = str(values[key])
        options = cls(**values)
        options.validate(config_file)
        return options

    def validate(self, where=None) -> None:
        prefix = f"{where}: " if where else ""
        if not self.csv and not self.scan_roots:
            raise InputError(f"{prefix}no mapping CSV: pass --csv FILE (or csv = ... under [batch] in --config)")
        if self.dask_address and not str(self.dask_address).startswith(("tcp://", "tls://")):
            raise InputError(f"{prefix}--dask-address {self.dask_address!r}: give the scheduler as tcp://host:port")
        if self.via_deployment and not re.fullmatch(r"[^/\s]+/[^/\s]+", self.via_deployment):
            raise InputError(f"{prefix}--via-deployment {self.via_deployment!r}: give it as <flow>/<deployment>, "
                             "e.g. process_recording/workers")
        if self.via_deployment and self.dask_address:
            raise InputError(f"{prefix}--via-deployment and --dask-address both choose where recordings run: "
                             "give one of them")
        if self.report_webhook is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", str(self.report_webhook)):
            raise InputError(f"{prefix}report_webhook {self.report_webhook!r}: give the address the report is "
                             "posted to, e.g. https://hooks.slack.com/services/...")
        for key in ("start", "end", "concurrency", "raw_reads"):
            value = getattr(self, key)
            if key == "end" and value is None:
                continue  # every row from start on
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"{prefix}{key} must be an integer, got {value!r}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise InputError(f"{prefix}--concurrency {self.concurrency}: use 1 to {MAX_CONCURRENCY}")
        if self.raw_reads < 1:
            raise InputError(f"{prefix}--raw-reads {self.raw_reads}: use 1 or more")
