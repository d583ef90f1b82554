"""Write synthetic recordings (``.cmcr`` + ``-.cmtr`` + truth) and whole datasets with a mapping CSV."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from .cells import make_cells, simulate_spikes
from .cmcr import write_cmcr
from .cmtr import write_cmtr
from .library import read_playlist, write_stimulus_library
from .spec import DENSE_NOISE, SynthSpec
from .templates import unit_template
from .timeline import analog_channels, build_timeline
from .truth import write_truth

_STREAMS = ("cells", "spikes", "sensor", "analog", "sorter", "ids")


def _generators(spec: SynthSpec, recording_id: str) -> dict[str, np.random.Generator]:
    """Independent random streams per purpose, fixed by the seed and the recording ID."""
    seeds = np.random.SeedSequence([spec.seed, zlib.crc32(recording_id.encode())]).spawn(len(_STREAMS))
    return {name: np.random.default_rng(seed) for name, seed in zip(_STREAMS, seeds)}


def write_recording(folder: str | Path, recording_id: str, spec: SynthSpec, stimuli_dir: str | Path) -> dict:
    """Simulate one recording and write ``<id>.cmcr``, ``<id>-.cmtr`` and its truth into ``folder``.

    The playlist ``spec.playlist`` and its movies are read from ``stimuli_dir`` (written by
    :func:`write_stimulus_library` with the same profile). Returns the paths as
    ``{'recording_id', 'cmcr', 'cmtr', 'truth'}``.
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
    truth = write_truth(folder, recording_id, spec, timeline, cells, onh, n_sensor, cmcr_path.name, cmtr_path.name)
    return {"recording_id": recording_id, "cmcr": cmcr_path, "cmtr": cmtr_path, "truth": truth}


def recording_ids(n_recordings: int) -> list[str]:
    """Lab-style IDs, one day apart: ``2024.01.17-11.15.41-Rec``, ``2024.01.18-11.22.41-Rec``, ..."""
    start = datetime(2024, 1, 17, 11, 15, 41)
    return [(start + timedelta(days=i, minutes=7 * i)).strftime("%Y.%m.%d-%H.%M.%S-Rec")
            for i in range(n_recordings)]


def write_dataset(out_dir: str | Path, n_recordings: int = 3, spec: SynthSpec = SynthSpec()) -> dict:
    """Stimulus library, recordings and mapping CSV under ``out_dir``.

    Layout: ``stimuli/`` (library of ``spec.profile``), ``recordings/`` (pairs + truth),
    ``mapping.csv`` (``cmcr_path``, ``cmtr_path``, ``matched``, ``recording_id``, ``truth_path``),
    ``pipeline.toml`` (a ``--config`` file naming these inputs and ``output/`` as the output folder).

    Returns
    -------
    dict
        ``out_dir``, ``stimuli_dir``, ``recordings_dir``, ``mapping_csv``, ``config_file``, ``playlist`` and
        ``recordings`` (one :func:`write_recording` result per recording).
    """
    out_dir = Path(out_dir).resolve()
    stimuli = write_stimulus_library(out_dir / "stimuli", spec.profile)
    recordings_dir = out_dir / "recordings"
    recordings = [write_recording(recordings_dir, rid, spec, stimuli) for rid in recording_ids(n_recordings)]
    mapping = out_dir / "mapping.csv"
    pd.DataFrame({
        "cmcr_path": [str(r["cmcr"]) for r in recordings],
        "cmtr_path": [str(r["cmtr"]) for r in recordings],
        "matched": ["True"] * len(recordings),
        "recording_id": [r["recording_id"] for r in recordings],
        "truth_path": [str(r["truth"]) for r in recordings],
    }).to_csv(mapping, index=False)
    paths = {"out_dir": out_dir, "stimuli_dir": stimuli, "recordings_dir": recordings_dir,
             "mapping_csv": mapping, "playlist": spec.playlist, "recordings": recordings}
    paths["config_file"] = write_config(out_dir / "pipeline.toml", paths)
    return paths


def write_config(path: Path, paths: dict) -> Path:
    """A ``--config`` file naming the dataset's inputs, so ``mea-pipeline batch --config`` runs it as is."""
    lines = ["# Written by mea-pipeline synth: the inputs of this synthetic dataset.",
             f"stimuli = {json.dumps(str(paths['stimuli_dir']))}",
             f"playlist = {json.dumps(paths['playlist'])}",
             "", "[batch]",
             f"csv = {json.dumps(str(paths['mapping_csv']))}",
             f"output = {json.dumps(str(paths['out_dir'] / 'output'))}", ""]
    path.write_text("\n".join(lines))
    return path
