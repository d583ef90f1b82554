"""The synthetic generator's stimulus -> electrode transform: the default is the old transpose, bit for bit."""

import numpy as np
import pytest

from mea_pipeline.synth import SynthSpec
from mea_pipeline.synth.stimulus_frame import electrode_direction, rf_center_of_soma, stimulus_to_electrode


def test_the_default_places_receptive_fields_exactly_as_before():
    spec = SynthSpec()
    for soma in [(6, 6), (33, 20), (59, 41), (12, 58)]:
        # The generator's formula before the transform existed: (soma - 1) * (15 - 1) / (65 - 1).
        expected = (np.array(soma) - 1) * 14 / 64
        np.testing.assert_array_equal(rf_center_of_soma(spec, np.array(soma)), expected)


def test_the_recorded_matrix_maps_each_receptive_field_back_onto_its_soma():
    spec = SynthSpec(stimulus_rotation_deg=30.0, stimulus_scale=1.5, stimulus_offset=(2.0, -3.0))
    matrix, offset = stimulus_to_electrode(spec)
    # Transposed, rotated by 30 deg, 1.5 * (64 / 14) / 20 electrodes per pixel (written out by hand).
    k = 1.5 * 64 / 14 / 20
    np.testing.assert_allclose(matrix, k * np.array([[-0.5, 0.8660254038], [0.8660254038, 0.5]]), atol=1e-9)
    for soma in [(6, 6), (33, 20), (59, 41), (12, 58)]:
        row, col = rf_center_of_soma(spec, np.array(soma))
        pixel_xy = np.array([col, row]) * 20 + 9.5             # checker centre -> pixel index
        np.testing.assert_allclose(matrix @ pixel_xy + offset, [soma[0] - 1, soma[1] - 1], atol=1e-9)


def test_screen_directions_on_the_chip():
    assert electrode_direction(SynthSpec(), 0.0) == pytest.approx(90.0)           # transpose: +column -> +row
    assert electrode_direction(SynthSpec(stimulus_rotation_deg=30.0), 200.0) == pytest.approx(280.0)
    unmirrored = SynthSpec(stimulus_mirror=False, stimulus_rotation_deg=30.0)
    assert electrode_direction(unmirrored, 350.0) == pytest.approx(20.0)


def test_the_synth_command_sets_the_transform(tmp_path):
    import json

    from mea_pipeline.cli.main import main

    assert main(["synth", "--out", str(tmp_path), "--n-recordings", "1", "--n-units", "3", "--profile", "tiny",
                 "--sensor-seconds", "0.05", "--no-stimulus-mirror", "--stimulus-rotation", "30",
                 "--stimulus-scale", "1.2", "--stimulus-offset", "2", "-3"]) == 0
    truth = json.loads(next((tmp_path / "recordings").glob("*.truth.json")).read_text())
    transform = truth["stimulus_transform"]
    assert (transform["mirror"], transform["rotation_deg"], transform["scale"]) == (False, 30.0, 1.2)
    assert transform["offset_electrodes"] == [2.0, -3.0]
    tuned = [u for u in truth["units"] if u["tuned"]]
    assert tuned
    for unit in tuned:
        expected = (unit["preferred_direction_deg"] + 30) % 360         # not mirrored: the angle only turns
        assert unit["preferred_direction_electrode_deg"] == pytest.approx(expected)
