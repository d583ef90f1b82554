"""Training the AP-tracking CNN on synthetic electrical images: the project's default weights.

:func:`train_model` fits :class:`~mea_pipeline.ap_tracking.cnn.APTrackingCNN` (the lab's
architecture, so the weights are a plain state_dict loadable like the lab's) on cubes cut from
units of the broad training distribution (:mod:`~mea_pipeline.ap_training.broad_units`), and
chooses the checkpoint by what ap_tracking does with it: after each epoch from ``select_from_epoch``
on, the tracker runs on small scenes of every validation set (:mod:`~mea_pipeline.ap_training.
validation_sets`: our synth recordings and the held-out generator's sets, never trained on) and
the epoch whose weights put the most axon directions within 20 degrees (then: ONH found within 5
electrodes, then lower training loss) is kept. The report gives, for the chosen weights, the
tracking results on full-size scenes of every set and the per-voxel precision and recall on
held-apart training-distribution units and on the held-out sets.
:func:`write_weights` saves ``<name>.pth`` and ``<name>.validation.json`` side by side.

Determinism: one seed drives the data (NumPy), the initial weights and the batch order
(torch); torch runs with deterministic algorithms and a fixed thread count, so the same seed,
spec, torch build and CPU give the same weights bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..ap_tracking.cnn import N_AUX, APTrackingCNN
from ..ap_tracking.dense import predict_dense
from .broad_units import BroadSpec, broad_units, training_cubes
from .validation_sets import SET_NAMES, tracking_check, validation_scenes, voxel_scores

ONH_TOLERANCE_EL = 5.0           # an optic-nerve head counts as found within this many electrodes


@dataclass(frozen=True)
class TrainingSpec:
    """What :func:`train_model` does (recorded in the validation JSON).

    Attributes
    ----------
    n_train_units, n_validation_units : int
        Units of the training distribution rendered for training and, from a separate stream,
        for the per-voxel validation.
    cubes_per_unit : int
        Most positive cubes taken per training unit (see ``training_data.sample_cubes``).
    negatives_per_positive : float
        Negative cubes per positive one (two thirds next to the axon or to a distractor).
    offset_sd, frame_offset_sd : float
        Augmentation: each cube is shifted as a whole and frame by frame by normal multiples
        (these standard deviations) of its own noise scale.
    positive_weight : float
        Weight of a positive cube in the loss. An eimage holds a few hundred axon voxels among
        171,166, and ap_tracking keeps every probability from 0.05 up: weighting the positives down
        keeps noise that merely resembles an axon below that threshold.
    epochs, batch_size : int
        Passes over the training cubes, cubes per optimiser step.
    learning_rate, weight_decay : float
        AdamW peak learning rate (one-cycle schedule) and decoupled weight decay.
    threads : int
        torch CPU threads while training and validating (fixed, for reproducible sums).
    select_from_epoch : int
        First epoch (1-based) whose weights may be chosen; each from there on is scored.
    selection_units, report_units : int
        Units per validation scene when choosing the checkpoint, and in the final report.
    sets : tuple[str, ...]
        Validation sets (``validation_sets.SET_NAMES``).
    data : BroadSpec
        Ranges the training units are drawn from.
    """

    n_train_units: int = 3000
    n_validation_units: int = 40
    cubes_per_unit: int = 150
    negatives_per_positive: float = 3.0
    positive_weight: float = 0.3
    offset_sd: float = 1.5
    frame_offset_sd: float = 0.5
    epochs: int = 6
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    threads: int = 2
    select_from_epoch: int = 3
    selection_units: int = 16
    report_units: int = 30
    sets: tuple[str, ...] = SET_NAMES
    data: BroadSpec = field(default_factory=BroadSpec)

    def as_dict(self) -> dict:
        return asdict(self)


def fit_model(spec: TrainingSpec, seed: int, log=None) -> tuple[APTrackingCNN, dict]:
    """Render the training cubes, fit the CNN and keep the epoch that tracks best (repeatable for a spec and seed).

    Returns
    -------
    model : APTrackingCNN
        The chosen weights, in eval mode, on the CPU.
    info : dict
        Cube counts, per-epoch losses, per-epoch selection scores and the chosen epoch.
    """
    log = log or (lambda line: None)
    started = time.perf_counter()
    with _deterministic(spec.threads):
        torch.manual_seed(seed)
        cubes, targets = training_cubes(spec.n_train_units, _streams(seed)[0], spec.data, spec.cubes_per_unit,
                                        spec.negatives_per_positive)
        log(f"{len(cubes)} training cubes ({int(targets.sum())} axon) from {spec.n_train_units} units "
            f"in {time.perf_counter() - started:.0f} s")
        scenes = validation_scenes(seed, spec.sets, spec.selection_units)
        model = APTrackingCNN()
        # A spec with fewer epochs than select_from_epoch still gets its last epoch scored and kept.
        chooser = _Chooser(scenes, min(spec.select_from_epoch, spec.epochs), log)
        losses = _fit(model, torch.from_numpy(cubes), torch.from_numpy(targets), spec, seed, log, chooser)
        model.load_state_dict(chooser.best_state)
    return model.eval().requires_grad_(False), {
        "n_training_cubes": len(cubes), "n_positive_cubes": int(targets.sum()),
        "epoch_losses": [round(v, 5) for v in losses], "selection": chooser.record(),
        "chosen_epoch": chooser.best_epoch}


def train_model(spec: TrainingSpec, seed: int, log=None) -> tuple[APTrackingCNN, dict]:
    """Train the CNN (:func:`fit_model`) and report how the chosen weights do on data they never saw.

    Parameters
    ----------
    spec : TrainingSpec
    seed : int
        Drives everything random (data, initial weights, batch order, validation scenes).
    log : callable or None
        Called with one progress line per stage and epoch.

    Returns
    -------
    model : APTrackingCNN
        The chosen weights, in eval mode, on the CPU.
    report : dict
        Spec, seed, timings, losses, the selection, per-voxel metrics and the tracking results per set.
    """
    log = log or (lambda line: None)
    started = time.perf_counter()
    model, info = fit_model(spec, seed, log)
    trained = time.perf_counter()
    with _deterministic(spec.threads):
        units = broad_units(spec.n_validation_units, _streams(seed)[1], spec.data)
        voxels = {"training_distribution": voxel_metrics(model, ((u.eimage, u.labels) for u in units))}
        scenes = validation_scenes(seed + 1, spec.sets, spec.report_units)
        tracking = {}
        for name, scene in scenes.items():
            tracking[name] = tracking_check(model, scene)
            voxels[name] = tracking[name].pop("voxel_metrics")
            log(f"{name}: {_summary(tracking[name])}")
    report = {
        "architecture": "CNN_3d_with_velocity (the lab's layer names and shapes)",
        "seed": seed, "epochs": spec.epochs, "spec": spec.as_dict(), "torch": torch.__version__, **info,
        "training_seconds": round(trained - started, 1), "total_seconds": round(time.perf_counter() - started, 1),
        "voxel_metrics": voxels, "tracking": tracking,
    }
    return model, report


def voxel_metrics(model: APTrackingCNN, labelled) -> dict:
    """Per-voxel precision, recall and F1 of the dense prediction; ``labelled`` yields (eimage, labels) pairs."""
    return voxel_scores((predict_dense(model, eimage), labels) for eimage, labels in labelled)


def write_weights(model: APTrackingCNN, report: dict, out: str | Path) -> tuple[Path, Path]:
    """Save the plain state_dict to ``out`` and the report to ``<stem>.validation.json`` beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, out)
    report_path = out.with_name(out.stem + ".validation.json")
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return out, report_path


class _Chooser:
    """Scores the weights after each epoch by the ap_tracking step's tracking on the selection scenes; keeps the best."""

    def __init__(self, scenes: dict, from_epoch: int, log):
        self.scenes, self.from_epoch, self.log = scenes, from_epoch, log
        self.scores: dict[int, dict] = {}
        self.best_epoch, self.best_key, self.best_state = None, None, None

    def __call__(self, model: APTrackingCNN, epoch: int, loss: float) -> None:
        if epoch < self.from_epoch:
            return
        model.eval()
        checks = {name: tracking_check(model, scene) for name, scene in self.scenes.items()}
        model.train()
        within = sum(c["n_within_tolerance"] for c in checks.values())
        onh = sum(c["onh_error_electrodes"] is not None and c["onh_error_electrodes"] <= ONH_TOLERANCE_EL
                  for c in checks.values())
        self.scores[epoch] = {"within_tolerance": within, "onh_found": onh, "loss": round(loss, 5),
                              "per_set": {name: c["n_within_tolerance"] for name, c in checks.items()}}
        self.log(f"epoch {epoch}: {within} of {sum(c['n_axon_units'] for c in checks.values())} directions within "
                 f"20 deg, ONH within {ONH_TOLERANCE_EL:g} el on {onh} of {len(checks)} sets")
        key = (within, onh, -loss)
        if self.best_key is None or key > self.best_key:
            self.best_epoch, self.best_key = epoch, key
            self.best_state = copy.deepcopy(model.state_dict())

    def record(self) -> dict:
        return {"rule": "most directions within 20 deg over the selection scenes, then ONH found within "
                        f"{ONH_TOLERANCE_EL:g} el on most sets, then lower training loss",
                "scenes": {name: len(scene.eimages) for name, scene in self.scenes.items()},
                "per_epoch": self.scores}


def _summary(check: dict) -> str:
    onh = check["onh_error_electrodes"]
    return (f"{check['n_within_tolerance']} of {check['n_axon_units']} axon units within 20 deg "
            f"({check['n_with_direction']} with a direction); ONH "
            + ("none" if onh is None else f"{onh} el off ({check['onh_method']})"))


def _fit(model: APTrackingCNN, cubes: torch.Tensor, targets: torch.Tensor, spec: TrainingSpec, seed: int,
         log, after_epoch) -> list[float]:
    """AdamW with a one-cycle schedule on logits; spatial flips and transposes as augmentation.

    ``after_epoch(model, epoch, loss)`` runs after each epoch (1-based).
    """
    optimiser = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    steps_per_epoch = math.ceil(len(cubes) / spec.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=spec.learning_rate,
                                                   total_steps=spec.epochs * steps_per_epoch)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(spec.positive_weight))
    generator = torch.Generator().manual_seed(seed)
    aux = torch.zeros(spec.batch_size, N_AUX)
    losses = []
    model.train()
    for epoch in range(spec.epochs):
        started, total = time.perf_counter(), 0.0
        order = torch.randperm(len(cubes), generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * spec.batch_size:(step + 1) * spec.batch_size]
            batch = _augment(cubes[index], generator, spec.offset_sd, spec.frame_offset_sd)
            loss = loss_fn(model.logits(batch, aux[:len(index)])[:, 0], targets[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        losses.append(total / len(cubes))
        log(f"epoch {epoch + 1}/{spec.epochs}: loss {losses[-1]:.4f} ({time.perf_counter() - started:.0f} s)")
        after_epoch(model, epoch + 1, losses[-1])
    return losses


def _augment(batch: torch.Tensor, generator: torch.Generator, offset_sd: float, frame_offset_sd: float) -> torch.Tensor:
    """Random flips of both spatial axes and a transpose (the grid has no preferred direction), and shifts.

    A cube moved as a whole, or frame by frame, by a multiple of its own noise scale (median
    absolute deviation) is still what it was: a slow baseline or a common mode is not an axon, and
    an axon on a shifted baseline is still one.
    """
    flip_1, flip_2, transpose = torch.randint(0, 2, (3,), generator=generator).tolist()
    dims = [d for d, flip in ((3, flip_1), (4, flip_2)) if flip]
    if dims:
        batch = batch.flip(dims)
    if transpose:
        batch = batch.transpose(3, 4).contiguous()
    flat = batch.reshape(len(batch), -1)
    centre = flat.median(dim=1, keepdim=True).values
    scale = 1.4826 * (flat - centre).abs().median(dim=1).values
    whole = torch.randn(len(batch), generator=generator) * offset_sd
    per_frame = torch.randn(len(batch), batch.shape[2], generator=generator) * frame_offset_sd
    shift = (whole[:, None] + per_frame) * scale[:, None]
    return batch + shift[:, None, :, None, None]


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent NumPy streams for the training data and the held-apart units."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]


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
