"""Write synthetic recordings (``.cmcr`` + ``-.cmtr`` + truth) and whole datasets with a mapping CSV."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ..mcs_io import unit_id
from .cells import make_cells, simulate_spikes
from .cmcr import write_cmcr
from .cmtr import write_cmtr
from .label_folder import write_label_folder
from .library import read_playlist, write_stimulus_library
from .sheet_export import sheet_row_truth, write_sheet_export
from .spec import DENSE_NOISE, SynthSpec
from .templates import unit_template
from .timeline import analog_channels, build_timeline
from .truth import write_truth

# New streams go at the end: each stream's seed depends on its position only.
_STREAMS = ("cells", "spikes", "sensor", "analog", "sorter", "ids", "sheet")


def _generators(spec: SynthSpec, recording_id: str) -> dict[str, np.random.Generator]:
    """Independent random streams per purpose, fixed by the seed and the recording ID."""
    seeds = np.random.SeedSequence([spec.seed, zlib.crc32(recording_id.encode())]).spawn(len(_STREAMS))
    return {name: np.random.default_rng(seed) for name, seed in zip(_STREAMS, seeds)}


def write_recording(folder: str | Path, recording_id: str, spec: SynthSpec, stimuli_dir: str | Path,
                    labels_dir: str | Path | None = None) -> dict:
    """Simulate one recording and write ``<id>.cmcr``, ``<id>-.cmtr`` and its truth into ``folder``.

    The playlist ``spec.playlist`` and its movies are read from ``stimuli_dir`` (written by
    :func:`write_stimulus_library` with the same profile). With ``labels_dir`` the recording's
    manual-label folder is written there too (lab layout, labels in the truth). Returns
    ``{'recording_id', 'cmcr', 'cmtr', 'truth', 'sheet_row'}``; ``sheet_row`` is the recording's
    row of the synthetic sheet export (its ``bad_lanes`` and ``center_xy`` are in the truth).
    """
    folder, stimuli_dir = Path(folder), Path(stimuli_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rngs = _generators(spec, recording_id)
    movies, lengths, configs = read_playlist(stimuli_dir, spec.playlist)
    noise = np.load(stimuli_dir / f"{DENSE_NOISE}.npy") if DENSE_NOISE in movies else None
    timeline = build_timeline(movies, lengths, configs, noise, spec)
    cells, onh = make_cells(spec, rngs["cells"])
    simulate_spikes(cells, timeline, spec, rngs["spikes"])
    templates = [unit_template(cell, spec.sampling_rate_hz) for cell in cells]
    analog = analog_channels(timeline, rngs["analog"])

    cmcr_path, cmtr_path = folder / f"{recording_id}.cmcr", folder / f"{recording_id}-.cmtr"
    n_sensor = write_cmcr(cmcr_path, recording_id, spec, analog, cells, templates, rngs)
    write_cmtr(cmtr_path, recording_id, cmcr_path.name, spec, cells, templates, n_sensor,
               timeline.n_samples * spec.tick_us, rngs)
    sheet = sheet_row_truth(recording_id, rngs["sheet"])
    labels = None
    if labels_dir is not None:
        units = [{"unit_id": unit_id(c.unit_number), "unit_number": c.unit_number, "is_rgc": c.is_rgc} for c in cells]
        labels = write_label_folder(labels_dir, recording_id, units, overwrite=True)
    truth = write_truth(folder, recording_id, spec, timeline, cells, onh, n_sensor, cmcr_path.name, cmtr_path.name,
                        sheet={"bad_lanes": sheet["bad_lanes"], "center_xy": sheet["center_xy"]}, labels=labels)
    return {"recording_id": recording_id, "cmcr": cmcr_path, "cmtr": cmtr_path, "truth": truth,
            "sheet_row": sheet | {"duration_s": timeline.n_samples / spec.sampling_rate_hz}}


def recording_ids(n_recordings: int) -> list[str]:
    """Lab-style IDs, one day apart: ``2024.01.17-11.15.41-Rec``, ``2024.01.18-11.22.41-Rec``, ..."""
    start = datetime(2024, 1, 17, 11, 15, 41)
    return [(start + timedelta(days=i, minutes=7 * i)).strftime("%Y.%m.%d-%H.%M.%S-Rec")
            for i in range(n_recordings)]


def write_dataset(out_dir: str | Path, n_recordings: int = 3, spec: SynthSpec = SynthSpec()) -> dict:
    """Stimulus library, recordings and mapping CSV under ``out_dir``.

    Layout: ``stimuli/`` (library of ``spec.profile``), ``recordings/`` (pairs + truth),
    ``labels/`` (manual-label folders in the lab's layout), ``gsheet_export.csv`` (the lab's sheet
    columns, one row per recording), ``mapping.csv`` (``cmcr_path``, ``cmtr_path``, ``matched``,
    ``recording_id``, ``truth_path``), ``pipeline.toml`` (a ``--config`` file naming these inputs
    and ``output/`` as the output folder).

    Returns
    -------
    dict
        ``out_dir``, ``stimuli_dir``, ``recordings_dir``, ``labels_dir``, ``gsheet_csv``, ``mapping_csv``,
        ``config_file``, ``playlist`` and ``recordings`` (one :func:`write_recording` result per recording).
    """
    out_dir = Path(out_dir).resolve()
    stimuli = write_stimulus_library(out_dir / "stimuli", spec.profile)
    recordings_dir, labels_dir = out_dir / "recordings", out_dir / "labels"
    recordings = [write_recording(recordings_dir, rid, spec, stimuli, labels_dir)
                  for rid in recording_ids(n_recordings)]
    gsheet_csv = write_sheet_export(out_dir / "gsheet_export.csv", [r["sheet_row"] for r in recordings])
    mapping = out_dir / "mapping.csv"
    pd.DataFrame({
        "cmcr_path": [str(r["cmcr"]) for r in recordings],
        "cmtr_path": [str(r["cmtr"]) for r in recordings],
        "matched": ["True"] * len(recordings),
        "recording_id": [r["recording_id"] for r in recordings],
        "truth_path": [str(r["truth"]) for r in recordings],
    }).to_csv(mapping, index=False)
    paths = {"out_dir": out_dir, "stimuli_dir": stimuli, "recordings_dir": recordings_dir, "labels_dir": labels_dir,
             "gsheet_csv": gsheet_csv, "mapping_csv": mapping, "playlist": spec.playlist, "recordings": recordings}
    paths["config_file"] = write_config(out_dir / "pipeline.toml", paths)
    return paths


def write_config(path: Path, paths: dict) -> Path:
    """A ``--config`` file naming the dataset's inputs, so ``mea-pipeline batch --config`` runs it as is."""
    lines = ["# Written by mea-pipeline synth: the inputs of this synthetic dataset.",
             f"stimuli = {json.dumps(str(paths['stimuli_dir']))}",
             f"playlist = {json.dumps(paths['playlist'])}",
             f"labels = {json.dumps(str(paths['labels_dir']))}",
             f"gsheet_csv = {json.dumps(str(paths['gsheet_csv']))}",
             "", "[batch]",
             f"csv = {json.dumps(str(paths['mapping_csv']))}",
             f"output = {json.dumps(str(paths['out_dir'] / 'output'))}", ""]
    path.write_text("\n".join(lines))
    return path
