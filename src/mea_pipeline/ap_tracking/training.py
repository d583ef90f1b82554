"""Training the AP-tracking CNN on synthetic electrical images: the project's default weights.

:func:`train_model` fits :class:`~mea_pipeline.ap_tracking.cnn.APTrackingCNN` (the lab's
architecture, so the weights are a plain state_dict loadable like the lab's) on cubes cut from
synthetic units with known axon voxels (:mod:`~mea_pipeline.ap_tracking.training_data`), then
validates it on units drawn apart: per-voxel precision, recall and F1 of the dense prediction,
and the whole step-10 tracking on a synthetic scene (axon directions and the optic-nerve head).
:func:`write_weights` saves ``<name>.pth`` and ``<name>.validation.json`` side by side.

Determinism: one seed drives the data (NumPy), the initial weights and the batch order
(torch); torch runs with deterministic algorithms and a fixed thread count, so the same seed,
spec, torch build and CPU give the same weights bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .cnn import N_AUX, APTrackingCNN
from .dense import predict_dense
from .track import track_recording
from .training_data import NEGATIVE, POSITIVE, SceneSpec, UnitDataSpec, make_units, onh_scene, training_cubes

DIRECTION_TOLERANCE_DEG = 20.0   # the pipeline's step-10 test: direction within this ...
MIN_AXON_FRAMES = 12             # ... for units whose axon crosses the array for this many frames
THRESHOLDS = (0.5, 0.05)         # network decision and the post-processing's noise threshold


@dataclass(frozen=True)
class TrainingSpec:
    """What :func:`train_model` does (recorded in the validation JSON).

    Attributes
    ----------
    n_train_units, n_validation_units : int
        Synthetic units rendered for training and, from a separate stream, for validation.
    cubes_per_unit : int
        Most positive cubes taken per training unit (see ``training_data.sample_cubes``).
    negatives_per_positive : float
        Negative cubes per positive one (two thirds next to the axon or to a distractor).
    epochs, batch_size : int
        Passes over the training cubes, cubes per optimiser step.
    learning_rate, weight_decay : float
        AdamW peak learning rate (one-cycle schedule) and decoupled weight decay.
    threads : int
        torch CPU threads while training and validating (fixed, for reproducible sums). One by
        default: on a machine shared with other work, two OpenMP threads on two cores wait on
        each other far more than they gain.
    scene : SceneSpec
        The tracking check's synthetic recording.
    data : UnitDataSpec
        Ranges the synthetic units are drawn from.
    """

    n_train_units: int = 1000
    n_validation_units: int = 24
    cubes_per_unit: int = 200
    negatives_per_positive: float = 3.0
    epochs: int = 6
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    threads: int = 1
    scene: SceneSpec = field(default_factory=SceneSpec)
    data: UnitDataSpec = field(default_factory=UnitDataSpec)

    def as_dict(self) -> dict:
        return asdict(self)


def fit_model(spec: TrainingSpec = TrainingSpec(), seed: int = 0, log=None) -> tuple[APTrackingCNN, dict]:
    """Render the training cubes and fit the CNN to them (bit-for-bit repeatable for a spec and seed).

    Returns
    -------
    model : APTrackingCNN
        Trained, in eval mode, on the CPU.
    info : dict
        Cube counts and per-epoch losses.
    """
    log = log or (lambda line: None)
    started = time.perf_counter()
    with _deterministic(spec.threads):
        torch.manual_seed(seed)
        cubes, targets = training_cubes(spec.n_train_units, _streams(seed)[0], spec.data, spec.cubes_per_unit,
                                        spec.negatives_per_positive)
        log(f"{len(cubes)} training cubes ({int(targets.sum())} axon) from {spec.n_train_units} units "
            f"in {time.perf_counter() - started:.0f} s")
        model = APTrackingCNN()
        losses = _fit(model, torch.from_numpy(cubes), torch.from_numpy(targets), spec, seed, log)
    return model.eval().requires_grad_(False), {
        "n_training_cubes": len(cubes), "n_positive_cubes": int(targets.sum()),
        "epoch_losses": [round(v, 5) for v in losses]}


def train_model(spec: TrainingSpec = TrainingSpec(), seed: int = 0, log=None) -> tuple[APTrackingCNN, dict]:
    """Train the CNN on synthetic units (:func:`fit_model`) and validate it on others.

    Parameters
    ----------
    spec : TrainingSpec
    seed : int
        Drives everything random (data, initial weights, batch order, validation units).
    log : callable or None
        Called with one progress line per stage and epoch.

    Returns
    -------
    model : APTrackingCNN
        Trained, in eval mode, on the CPU.
    report : dict
        Spec, seed, epochs, timings, training losses, validation metrics and the tracking check.
    """
    log = log or (lambda line: None)
    started = time.perf_counter()
    model, info = fit_model(spec, seed, log)
    trained = time.perf_counter()
    _, validation_rng, scene_rng = _streams(seed)
    with _deterministic(spec.threads):
        validation = voxel_metrics(model, make_units(spec.n_validation_units, validation_rng, spec.data))
        log("validation: " + ", ".join(f"p>={m['threshold']}: precision {m['precision']:.3f} recall {m['recall']:.3f}"
                                       for m in validation["thresholds"]))
        tracking = tracking_check(model, onh_scene(scene_rng, spec.scene))
    log(f"tracking check: {tracking['fraction_within_tolerance']} of {tracking['n_units_visible_axon']} directions "
        f"within {DIRECTION_TOLERANCE_DEG:g} deg, ONH off by {tracking['onh_error_electrodes']} electrodes")
    report = {
        "architecture": "CNN_3d_with_velocity (the lab's layer names and shapes)",
        "seed": seed, "epochs": spec.epochs, "spec": spec.as_dict(), "torch": torch.__version__, **info,
        "training_seconds": round(trained - started, 1), "total_seconds": round(time.perf_counter() - started, 1),
        "validation": validation, "tracking_check": tracking,
    }
    return model, report


def voxel_metrics(model: APTrackingCNN, units) -> dict:
    """Per-voxel precision, recall and F1 of the dense prediction over labelled voxels of ``units``."""
    counts = np.zeros((len(THRESHOLDS), 3), dtype=np.int64)   # true pos, false pos, false neg
    for unit in units:
        probability = predict_dense(model, unit.eimage)
        positive, negative = unit.labels == POSITIVE, unit.labels == NEGATIVE
        for row, threshold in zip(counts, THRESHOLDS):
            hit = probability >= threshold
            row += [np.count_nonzero(hit & positive), np.count_nonzero(hit & negative),
                    np.count_nonzero(~hit & positive)]
    return {"n_units": len(units), "n_positive_voxels": int(counts[0, 0] + counts[0, 2]),
            "thresholds": [_scores(threshold, *row) for threshold, row in zip(THRESHOLDS, counts)]}


def tracking_check(model: APTrackingCNN, scene) -> dict:
    """Step 10 (:func:`track_recording`) on a synthetic scene: direction and ONH errors against the truth."""
    track = track_recording(scene.eimages, lambda eimage: predict_dense(model, eimage))
    errors = {}
    for unit_id, truth in scene.direction_deg.items():
        if scene.axon_frames[unit_id] < MIN_AXON_FRAMES:
            continue
        found = track.units[unit_id].direction_deg
        errors[unit_id] = round(abs((found - truth + 180) % 360 - 180), 1) if math.isfinite(found) else 180.0
    onh_error = None
    if track.onh is not None:   # the tracker's ONH: x = axis 2, y = axis 1
        onh_error = round(float(math.hypot(track.onh.x - scene.onh_axis2, track.onh.y - scene.onh_axis1)), 2)
    within = [e <= DIRECTION_TOLERANCE_DEG for e in errors.values()]
    return {"n_units": len(scene.eimages), "n_units_visible_axon": len(errors),
            "fraction_within_tolerance": round(float(np.mean(within)), 3) if within else None,
            "direction_errors_deg": errors, "onh_error_electrodes": onh_error,
            "onh_method": None if track.onh is None else track.onh.method}


def write_weights(model: APTrackingCNN, report: dict, out: str | Path) -> tuple[Path, Path]:
    """Save the plain state_dict to ``out`` and the report to ``<stem>.validation.json`` beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, out)
    report_path = out.with_name(out.stem + ".validation.json")
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return out, report_path


def _fit(model: APTrackingCNN, cubes: torch.Tensor, targets: torch.Tensor, spec: TrainingSpec, seed: int,
         log) -> list[float]:
    """AdamW with a one-cycle schedule on logits; spatial flips and transposes as augmentation."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    steps_per_epoch = math.ceil(len(cubes) / spec.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=spec.learning_rate,
                                                   total_steps=spec.epochs * steps_per_epoch)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    aux = torch.zeros(spec.batch_size, N_AUX)
    losses = []
    model.train()
    for epoch in range(spec.epochs):
        started, total = time.perf_counter(), 0.0
        order = torch.randperm(len(cubes), generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * spec.batch_size:(step + 1) * spec.batch_size]
            batch = _augment(cubes[index], generator)
            loss = loss_fn(model.logits(batch, aux[:len(index)])[:, 0], targets[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        losses.append(total / len(cubes))
        log(f"epoch {epoch + 1}/{spec.epochs}: loss {losses[-1]:.4f} ({time.perf_counter() - started:.0f} s)")
    return losses


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The electrode grid has no preferred direction: random flips of both spatial axes and a transpose."""
    flip_1, flip_2, transpose = torch.randint(0, 2, (3,), generator=generator).tolist()
    dims = [d for d, flip in ((3, flip_1), (4, flip_2)) if flip]
    if dims:
        batch = batch.flip(dims)
    return batch.transpose(3, 4).contiguous() if transpose else batch


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent NumPy streams for the training data, the validation units and the scene."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def _scores(threshold: float, true_pos: int, false_pos: int, false_neg: int) -> dict:
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "true_positives": int(true_pos), "false_positives": int(false_pos),
            "false_negatives": int(false_neg)}


@contextlib.contextmanager
def _deterministic(threads: int):
    """torch with deterministic algorithms and ``threads`` threads, restored afterwards."""
    fill = torch.utils.deterministic
    previous = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), fill.fill_uninitialized_memory
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    # Filling every new tensor with NaN (a debugging aid of deterministic mode) costs 10x in time here.
    fill.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])
        fill.fill_uninitialized_memory = previous[2]
