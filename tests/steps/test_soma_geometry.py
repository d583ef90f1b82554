"""soma_geometry on synthetic recordings: the soma is where the generator put it, the footprint as large as it made it.

The generator (:mod:`mea_pipeline.synth.templates`) puts every soma exactly on an electrode and
spreads its spike over the 7 x 7 electrodes around it with the weight ``exp(-(dr^2 + dc^2) / 2)``
(a Gaussian of sigma 1 electrode), the same waveform on every electrode. So, without noise:

* the largest peak-to-peak trace is the soma electrode itself: the centre is exact;
* the max - min over frames 10-14 is that weight times one number, and the lab's rule smooths
  it with a Gaussian of sigma 1: two Gaussians of sigma 1 make one of sigma sqrt(2), whose value
  relative to its peak at offset d is ``exp(-d^2 / 4)``. Above half the maximum means
  ``d^2 < 4 ln 2 = 2.77``: the electrodes at d^2 = 0, 1, 2 (a 3 x 3 square; the nearest ones left
  out, d^2 = 4, sit at exp(-1) = 0.37, the outermost ones kept at exp(-0.5) = 0.61). Area 9,
  extents 3 and 3. A smoothing or footprint sigma off by a factor of 2, or a threshold of 0.25,
  gives 21; an off-by-one frame window or component label gives no 3 x 3 square.

Axes: the truth gives MCS (row, column) 1-based; the eimage is ``[t, column - 1, row - 1]``
(:func:`mea_pipeline.mcs_io.sensor_frame_index`), and the lab's ``center_row`` is axis 1.
"""

from __future__ import annotations

import math

import h5py
import pytest

from mea_pipeline.config import PipelineConfig, RecordingInputs
from mea_pipeline.mcs_io import sensor_frame_index
from mea_pipeline.runner import run_recording
from mea_pipeline.synth import SynthSpec, load_truth, write_recording, write_stimulus_library

HALF_MAX_AREA, HALF_MAX_EXTENT = 9.0, 3.0


@pytest.fixture(scope="module")
def quiet_somas(tmp_path_factory):
    """Steps 1 and 6 on a recording of 8 units with little sensor noise and no axons.

    ``rgc_every=1`` makes no unit a ganglion cell, so no axon adds to the electrical image and
    the footprint is the soma's alone; noise of 1 ADC count (spikes of 80-220) keeps the
    half-max boundary where the analytic footprint puts it.
    """
    root = tmp_path_factory.mktemp("quiet_somas")
    spec = SynthSpec(n_units=8, profile="tiny", sensor_seconds=0.5, noise_adc=1.0, rgc_every=1, seed=5)
    stimuli = write_stimulus_library(root / "stimuli", spec.profile)
    rec = write_recording(root / "recordings", "2024.02.01-10.00.00-Rec", spec, stimuli)
    inputs = RecordingInputs(rec["recording_id"], root / "out.h5", rec["cmcr"], rec["cmtr"])
    run_recording(inputs, PipelineConfig().with_inputs(stimuli=stimuli, playlist=spec.playlist), steps="1,6")
    return inputs.output_path, load_truth(rec["truth"])


def _units_with_spikes(h5, truth) -> list[dict]:
    return [u for u in truth["units"]
            if h5[f"units/{u['unit_id']}/features/eimage_sta/metadata/n_spikes_used"][()] > 0]


def _ids(units: list[dict]) -> set[str]:
    return {u["unit_id"] for u in units}


def _geometry(h5, unit_id: str) -> dict:
    group = h5[f"units/{unit_id}/features/eimage_sta/geometry"]
    return {key: group[key][()] for key in group if key != "diff_map"}


def test_every_soma_is_on_its_true_electrode(processed):
    truth = processed["truth"]
    with h5py.File(processed["inputs"].output_path) as h5:
        with_spikes = _ids(_units_with_spikes(h5, truth))
        assert len(with_spikes) == len(truth["units"]) - 1  # the fixture's one silent unit
        for unit in truth["units"]:
            uid, geometry = unit["unit_id"], _geometry(h5, unit["unit_id"])
            if uid not in with_spikes:
                assert geometry["status"].decode() == "no_data" and geometry["reason"].decode(), uid
                assert all(math.isnan(geometry[k]) for k in ("center_row", "center_col", "area")), uid
                continue
            axis1, axis2 = sensor_frame_index(unit["row"], unit["column"])
            assert geometry["status"].decode() == "ok", uid
            assert (geometry["center_row"], geometry["center_col"]) == (axis1, axis2), uid
            # The sub-electrode centre of a soma sitting on an electrode stays on it (noise aside).
            assert abs(geometry["center_row_subpixel"] - axis1) < 0.25, uid
            assert abs(geometry["center_col_subpixel"] - axis2) < 0.25, uid


def test_half_max_footprint_is_the_analytic_one(quiet_somas):
    path, truth = quiet_somas
    with h5py.File(path) as h5:
        with_spikes = _units_with_spikes(h5, truth)
        assert len(with_spikes) == len(truth["units"]), "every unit of this recording fires"
        for unit in with_spikes:
            uid, geometry = unit["unit_id"], _geometry(h5, unit["unit_id"])
            axis1, axis2 = sensor_frame_index(unit["row"], unit["column"])
            assert (geometry["center_row"], geometry["center_col"]) == (axis1, axis2), uid
            assert abs(geometry["center_row_subpixel"] - axis1) < 0.05, uid
            assert abs(geometry["center_col_subpixel"] - axis2) < 0.05, uid
            assert (geometry["size_x"], geometry["size_y"]) == (HALF_MAX_EXTENT, HALF_MAX_EXTENT), uid
            assert geometry["area"] == HALF_MAX_AREA, uid
            assert geometry["equivalent_diameter"] == pytest.approx(2 * math.sqrt(HALF_MAX_AREA / math.pi)), uid
