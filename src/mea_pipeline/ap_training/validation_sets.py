"""The synthetic recordings the CNN weights are judged on: none of them made by the training generator.

* ``synth``: units as ``mea-pipeline synth`` writes them (the demo's and the tests' recordings;
  :func:`~mea_pipeline.ap_training.training_data.onh_scene`);
* the held-out generator's sets (:mod:`~mea_pipeline.ap_training.heldout`: its own waveform
  family, spatial model, noise and ranges), some of them outside the training ranges (lower
  signal-to-noise, slower and faster axons).

:func:`tracking_check` runs ap_tracking's tracker on a set and scores it against the truth the way
the issue states the bar: of the units whose axon is visible for at least
:data:`MIN_AXON_FRAMES` frames, how many get a direction, how many within
:data:`DIRECTION_TOLERANCE_DEG`, and how far the optic-nerve head lies from the truth.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..ap_tracking.dense import predict_dense
from ..ap_tracking.track import track_recording
from .heldout import HELD_OUT_SETS, heldout_scene
from .training_data import NEGATIVE, POSITIVE, Scene, SceneSpec, onh_scene

THRESHOLDS = (0.5, 0.05)         # the network's decision and ap_tracking's noise threshold
DIRECTION_TOLERANCE_DEG = 20.0   # a direction counts as right within this
MIN_AXON_FRAMES = 12             # units whose axon is visible this many frames are "axon units"
SET_NAMES = ("synth",) + tuple(HELD_OUT_SETS)


def validation_scene(name: str, rng: np.random.Generator, n_units: int | None = None) -> Scene:
    """One scene of the named set (``n_units`` overrides the set's own count)."""
    if name == "synth":
        spec = SceneSpec() if n_units is None else SceneSpec(n_units=n_units)
        return onh_scene(rng, spec)
    if name not in HELD_OUT_SETS:
        raise ValueError(f"unknown validation set {name!r}; known: {', '.join(SET_NAMES)}")
    spec = HELD_OUT_SETS[name]
    return heldout_scene(spec if n_units is None else replace(spec, n_units=n_units), rng)


def validation_scenes(seed: int, names=SET_NAMES, n_units: int | None = None) -> dict[str, Scene]:
    """One scene per named set, each from its own stream of ``seed`` (the same scenes for every model)."""
    streams = np.random.SeedSequence([seed, 19]).spawn(len(SET_NAMES))
    return {name: validation_scene(name, np.random.default_rng(streams[SET_NAMES.index(name)]), n_units)
            for name in names}


def tracking_check(model, scene: Scene) -> dict:
    """ap_tracking (:func:`track_recording`) on a scene with ``model`` as the CNN, scored against the truth.

    Returns
    -------
    dict
        ``n_axon_units`` (visible >= MIN_AXON_FRAMES), ``n_with_direction``, ``n_within_tolerance``
        (both counted over the axon units), ``fraction_within_tolerance``, the per-unit
        ``direction_errors_deg`` (None for no direction), ``onh_error_electrodes``, ``onh_method``
        and the per-voxel ``voxel_metrics`` of the predictions against the scene's labels.
    """
    track = track_recording(scene.eimages, lambda eimage: predict_dense(model, eimage))
    errors = {}
    for unit_id, truth in scene.direction_deg.items():
        if scene.axon_frames[unit_id] < MIN_AXON_FRAMES:
            continue
        found = track.units[unit_id].direction_deg
        errors[unit_id] = round(abs((found - truth + 180) % 360 - 180), 1) if math.isfinite(found) else None
    onh_error = None
    if track.onh is not None:   # the tracker's ONH: x = axis 2, y = axis 1
        onh_error = round(float(math.hypot(track.onh.x - scene.onh_axis2, track.onh.y - scene.onh_axis1)), 2)
    found = [e for e in errors.values() if e is not None]
    within = sum(e <= DIRECTION_TOLERANCE_DEG for e in found)
    return {"n_units": len(scene.eimages), "n_axon_units": len(errors), "n_with_direction": len(found),
            "n_within_tolerance": within,
            "fraction_within_tolerance": round(within / len(errors), 3) if errors else None,
            "direction_errors_deg": errors, "onh_error_electrodes": onh_error,
            "onh_method": None if track.onh is None else track.onh.method,
            "voxel_metrics": voxel_scores((unit.prediction, scene.labels[unit_id]) for unit_id, unit in track.units.items()
                                          if unit.prediction is not None and unit_id in scene.labels)}


def voxel_scores(predicted) -> dict:
    """Per-voxel precision, recall and F1 at each of :data:`THRESHOLDS`; ``predicted`` yields (probability, labels)."""
    counts = np.zeros((len(THRESHOLDS), 3), dtype=np.int64)   # true pos, false pos, false neg
    n_units = 0
    for probability, labels in predicted:
        positive, negative = labels == POSITIVE, labels == NEGATIVE
        for row, threshold in zip(counts, THRESHOLDS):
            hit = probability >= threshold
            row += [np.count_nonzero(hit & positive), np.count_nonzero(hit & negative),
                    np.count_nonzero(~hit & positive)]
        n_units += 1
    return {"n_units": n_units, "n_positive_voxels": int(counts[0, 0] + counts[0, 2]),
            "thresholds": [_scores(threshold, *row) for threshold, row in zip(THRESHOLDS, counts)]}


def _scores(threshold: float, true_pos: int, false_pos: int, false_neg: int) -> dict:
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "true_positives": int(true_pos), "false_positives": int(false_pos),
            "false_negatives": int(false_neg)}


def compare_weights(models: dict, scenes: dict[str, Scene]) -> dict[str, dict[str, dict]]:
    """Every model's :func:`tracking_check` on every scene: ``{set: {model name: check}}``, same scenes for all."""
    return {name: {label: tracking_check(model, scene) for label, model in models.items()}
            for name, scene in scenes.items()}
