"""The project's default AP-tracking weights: synthetic training data, repeatable training, the shipped file's quality."""

import json

import numpy as np
import pytest
import torch

from mea_pipeline.ap_training import training_data as td
from mea_pipeline.ap_training.broad_units import broad_units
from mea_pipeline.ap_tracking.cnn import APTrackingCNN
from mea_pipeline.ap_tracking.model_io import default_model_path, load_model
from mea_pipeline.ap_training.training import TrainingSpec, fit_model, voxel_metrics
from mea_pipeline.ap_training.training_data import IGNORED, NEGATIVE, POSITIVE, SceneSpec
from mea_pipeline.ap_training.validation_sets import DIRECTION_TOLERANCE_DEG, SET_NAMES, tracking_check
from mea_pipeline.cli.main import main as cli_main

TINY = TrainingSpec(n_train_units=6, cubes_per_unit=20, epochs=1, batch_size=32, n_validation_units=1,
                    select_from_epoch=1, selection_units=2, report_units=2, sets=("synth",))


def test_labels_follow_the_axon_in_eimage_axes():
    """A cell at (row 20, column 40) with its axon running toward +column: positives along axis 1 (= column - 1)."""
    cell = td._cell(np.array([20.0, 40.0]), 150.0)
    cell.axon_amplitude_adc, cell.axon_velocity_m_s = 30.0, 0.8
    cell.axon_path = td.straight_axon(np.array([20.0, 40.0]), np.pi / 2, 20)   # +column
    assert np.allclose(cell.axon_path[-1], [20, 60])
    unit = td.render_unit(cell, 10, 12 / np.sqrt(10), np.random.default_rng(0))
    t, axis1, axis2 = np.nonzero(unit.labels == POSITIVE)
    assert len(t) > 30
    assert np.all(np.abs(axis2 - 19) <= 1) and axis1.min() >= 39 and axis1.max() >= 55
    # The signal travels outward in time: 0.8 m/s is 2.5 electrodes (16 um) per 50-us frame.
    assert np.corrcoef(t, axis1)[0, 1] > 0.8 and np.polyfit(axis1, t, 1)[0] == pytest.approx(1 / 2.5, rel=0.3)
    assert np.all(unit.labels[:, 39, 19] != POSITIVE)             # the soma's own trough is not axon
    assert (unit.labels[2:-2, 36:43, 16:23] == NEGATIVE).mean() > 0.8     # the 7 x 7 footprint
    assert np.all(unit.labels[:2] == IGNORED) and np.all(unit.labels[:, :, -2:] == IGNORED)
    assert unit.eimage.dtype == np.float32 and unit.eimage[10, 39, 19] < -100   # raw counts, soma trough


def test_foreign_spikes_land_at_their_lag_and_their_axons_are_ignored():
    own = td._cell(np.array([10.0, 10.0]), 100.0)
    other = td._cell(np.array([50.0, 50.0]), 120.0)
    other.axon_amplitude_adc, other.axon_velocity_m_s = 40.0, 1.0
    other.axon_path = td.straight_axon(np.array([50.0, 50.0]), 0.0, 10)
    template = td.cell_template(other)
    quiet = td.render_unit(own, 2, 1e-6, np.random.default_rng(0))
    crowded = td.render_unit(own, 2, 1e-6, np.random.default_rng(0), foreign=[(template, 15)])
    extra = crowded.eimage - quiet.eimage
    t, axis1, axis2 = np.unravel_index(np.argmin(extra), extra.shape)
    assert (t, axis1, axis2) == (10 + 15, 49, 49) and extra.min() == pytest.approx(-60, rel=0.1)  # halved (2 spikes)
    assert crowded.distractor[t, axis1, axis2] and not quiet.distractor[t, axis1, axis2]
    assert np.any((crowded.labels == IGNORED) & (quiet.labels == NEGATIVE))   # the foreign axon


def test_training_is_repeatable_for_a_seed():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    first, info = fit_model(TINY, seed=3)
    again, _ = fit_model(TINY, seed=3)
    other, _ = fit_model(TINY, seed=4)
    assert info["n_training_cubes"] > 100 and len(info["epoch_losses"]) == 1 and info["chosen_epoch"] == 1
    for key, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert not torch.equal(first.conv1.weight, other.conv1.weight)
    assert not first.training
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, deterministic)


def test_train_ap_model_command_writes_loadable_weights_and_a_report(tmp_path, capsys):
    out = tmp_path / "tiny.pth"
    code = cli_main(["train-ap-model", "--out", str(out), "--seed", "5", "--epochs", "1", "--units", "4",
                     "--validation-units", "1", "--selection-units", "2", "--report-units", "2", "--sets", "synth"])
    assert code == 0, capsys.readouterr()
    model = load_model(out, "cpu")
    assert isinstance(model, APTrackingCNN)
    report = json.loads(out.with_name("tiny.validation.json").read_text())
    assert report["seed"] == 5 and report["epochs"] == 1 and report["spec"]["n_train_units"] == 4
    scores = report["voxel_metrics"]["synth"]["thresholds"][0]
    assert {"precision", "recall", "f1", "threshold"} <= set(scores) and report["training_seconds"] > 0
    assert set(report["tracking"]) == {"synth"} and report["chosen_epoch"] == 1
    assert "weights" in capsys.readouterr().out


@pytest.fixture(scope="module")
def default_model():
    return load_model(None, "cpu")


def test_shipped_weights_come_with_their_validation():
    """The packaged file's report: every validation set scored, the epoch chosen by tracking, our recordings tracked."""
    report = json.loads(default_model_path().with_name("ap_cnn_default.validation.json").read_text())
    assert set(report["tracking"]) == set(SET_NAMES) and set(report["voxel_metrics"]) == {"training_distribution",
                                                                                          *SET_NAMES}
    selection = report["selection"]["per_epoch"]
    chosen = selection[str(report["chosen_epoch"])]
    assert all(chosen["within_tolerance"] >= other["within_tolerance"] for other in selection.values())
    synth = report["tracking"]["synth"]
    assert synth["n_within_tolerance"] >= 0.8 * synth["n_axon_units"] and synth["onh_error_electrodes"] <= 5
    assert report["spec"]["n_train_units"] >= 1000 and report["total_seconds"] < 3600


def test_default_weights_recover_axon_directions_and_the_onh(default_model):
    """The pipeline's step-10 bar on a short synthetic recording: 3-12 spikes per unit, neighbours' spikes."""
    scene = td.onh_scene(np.random.default_rng(5), SceneSpec(n_units=9))
    check = tracking_check(default_model, scene)
    assert check["n_axon_units"] == sum(frames >= 12 for frames in scene.axon_frames.values()) >= 6
    assert check["n_within_tolerance"] >= 0.8 * check["n_axon_units"], check["direction_errors_deg"]
    assert check["onh_error_electrodes"] <= 5
    assert DIRECTION_TOLERANCE_DEG == 20


def test_voxel_metrics_count_against_the_labels(default_model):
    units = list(broad_units(3, np.random.default_rng(9)))
    metrics = voxel_metrics(default_model, ((u.eimage, u.labels) for u in units))
    at_half = metrics["thresholds"][0]
    assert metrics["n_units"] == 3
    assert metrics["n_positive_voxels"] == sum(int((u.labels == POSITIVE).sum()) for u in units)
    assert at_half["true_positives"] + at_half["false_negatives"] == metrics["n_positive_voxels"]
