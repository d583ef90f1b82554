"""track_recording end to end on synthetic eimages, with a stand-in for the CNN."""

import math

import numpy as np
import pytest

from mea_pipeline.ap_tracking.lanes import parse_bad_lanes
from mea_pipeline.ap_tracking.orientation import parse_center_xy
from mea_pipeline.ap_tracking.params import APTrackingParams
from mea_pipeline.ap_tracking.track import track_recording

CENTER = np.array([32.5, 32.5])                                          # (col, row)
ONH = CENTER + 40 * np.array([math.cos(math.radians(45)), math.sin(math.radians(45))])   # off the array
RR, CC = np.mgrid[0:65, 0:65]


def _eimage(soma_rc, rng, axon_to=ONH, axon_frames=40):
    """Soma trough at frame 10 plus a negative axon blob moving one electrode per frame toward ``axon_to``."""
    row, col = soma_rc
    image = rng.normal(0, 0.3, (50, 65, 65)).astype(np.float32)
    wave = -np.exp(-(np.arange(50) - 10) ** 2 / 4.0) + 0.3 * np.exp(-(np.arange(50) - 16) ** 2 / 8.0)
    image += 40 * wave[:, None, None] * np.exp(-((RR - row) ** 2 + (CC - col) ** 2) / 2.0)[None]
    if axon_to is not None:
        heading = (axon_to - np.array([col, row])) / np.hypot(*(axon_to - np.array([col, row])))
        for step in range(1, axon_frames):
            x, y = np.array([col, row]) + step * heading
            image[10 + step] -= 10 * np.exp(-((RR - y) ** 2 + (CC - x) ** 2) / (2 * 0.7 ** 2))
    return image


def fake_cnn(eimage):
    """Like the lab's network: probability ~1 for local negative deflections of a few counts."""
    return 1.0 / (1.0 + np.exp(np.clip(2.0 * (eimage + 4.0), -50, 50)))


RGC_SOMAS = [(8, 12), (12, 30), (20, 8), (30, 16), (10, 20), (24, 26), (35, 6), (6, 36)]


@pytest.fixture(scope="module")
def recording():
    rng = np.random.default_rng(0)
    eimages = {f"unit_{i + 1:03d}": _eimage(soma, rng) for i, soma in enumerate(RGC_SOMAS)}
    labels = {uid: "RGC" for uid in eimages}
    eimages["unit_020"], labels["unit_020"] = _eimage((45, 45), rng, axon_to=None), "ac"
    eimages["unit_021"] = _eimage((50, 20), rng, axon_to=None)           # no label
    eimages["unit_022"], labels["unit_022"] = np.full((50, 65, 65), np.nan, np.float32), "rgc"
    partial = _eimage((16, 40), rng)
    partial[:, 0, :5] = np.nan
    eimages["unit_023"], labels["unit_023"] = partial, "rgc"
    eimages["unit_024"], labels["unit_024"] = _eimage((28, 40), rng, axon_frames=8), "rgc"   # short axon
    return eimages, labels


def _true_direction(soma_rc):
    return math.degrees(math.atan2(ONH[1] - soma_rc[0], ONH[0] - soma_rc[1])) % 360


def test_labelled_recording_end_to_end(recording):
    eimages, labels = recording
    before = {k: v.copy() for k, v in eimages.items()}
    result = track_recording(eimages, fake_cnn, labels, bad_lanes=parse_bad_lanes("60, 18. 38"),
                             retina=parse_center_xy("L, 5, -5"))
    for key, array in eimages.items():
        np.testing.assert_array_equal(array, before[key])

    for i, soma in enumerate(RGC_SOMAS):
        unit = result.units[f"unit_{i + 1:03d}"]
        assert unit.status == "tracked", (unit.unit_id, unit.reason)
        assert unit.refined_soma[1:] == soma
        assert abs((unit.direction_deg - _true_direction(soma) + 180) % 360 - 180) < 20
    assert result.onh is not None and result.onh.method == "iterative_refinement"
    assert np.hypot(result.onh.x - ONH[0], result.onh.y - ONH[1]) < 5

    assert result.units["unit_022"].status == "no_eimage"
    assert result.units["unit_023"].status == "tracked" and "replaced by 0" in result.units["unit_023"].notes[0]
    short = result.units["unit_024"]
    assert short.status == "no_pathway" and short.reason.startswith("too_few_centroids: ")
    assert short.reason.endswith("< 10") and short.prediction is not None and short.polar is not None
    for unit_id in ("unit_020", "unit_021"):
        unit = result.units[unit_id]
        assert unit.status == "second_pass" and not unit.first_pass and unit.prediction is None
        assert unit.refined_soma is not None and unit.polar is not None

    assert result.bad_lanes == [59] and result.rejected_lane_tokens == ["18. 38"]
    assert any("18. 38" in w for w in result.warnings)
    assert result.retina == ("L", -5.0, -5.0) and result.angle_correction_deg is not None
    assert result.filter_by_cell_type and "11 of 13" in result.selection_note
    assert result.selection == "rgc units: labels"


def test_result_holds_what_the_step_writes(recording):
    eimages, labels = recording
    result = track_recording(eimages, fake_cnn, labels, retina=parse_center_xy("L, 5, -5"))
    tracked = result.units["unit_001"]
    assert tracked.has_output and tracked.refined_soma[1:] == RGC_SOMAS[0]   # (t, row, col)
    assert tracked.prediction.shape == (50, 65, 65)
    assert tracked.axon_centroids.shape[1] == 3 and tracked.pathway is not None
    assert tracked.polar.anatomical_quadrant == "ventral-temporal" and tracked.polar.angle_correction_applied is not None
    second = result.units["unit_020"]
    assert second.prediction is None and second.pathway is None and math.isnan(second.direction_deg)
    # The lab writes nothing for a unit without a usable eimage: its status goes to the metadata.
    assert not result.units["unit_022"].has_output

    assert result.units_processed == 10 and result.non_rgc_processed == 2
    assert [(u.unit_id, u.status) for u in result.unwritten] == [("unit_022", "no_eimage")]
    assert result.retina == ("L", -5.0, -5.0)
    assert result.onh.r2_threshold == 0.8 and "unit_024" not in result.onh.kept_unit_ids


@pytest.mark.parametrize("labels", [None, "step 9 without a label folder"])
def test_without_labels_every_unit_is_tracked(recording, labels):
    eimages, _ = recording
    if labels is not None:
        labels = {uid: "no_label" for uid in eimages}  # what step 9 writes when the folder is missing
    result = track_recording(eimages, fake_cnn, labels)
    assert result.selection == "all units: no labels"
    assert "tracking all 13 units" in result.selection_note and not result.filter_by_cell_type
    assert all(u.first_pass for u in result.units.values())
    assert not any(u.status == "second_pass" for u in result.units.values())
    assert result.units["unit_020"].status == "no_pathway"   # no axon: tracked, but no track
    assert result.onh is not None


def test_no_rgc_label_and_no_fallback_tracks_nothing(recording):
    eimages, labels = recording
    others = {uid: "ac" for uid in labels}
    result = track_recording(eimages, fake_cnn, others, params=APTrackingParams(track_all_when_unlabelled=False))
    assert "no unit tracked" in result.selection_note and result.onh is None
    assert result.selection == "no units: no unit labelled rgc"
    assert all(u.status in ("not_tracked", "no_eimage") for u in result.units.values())
    assert result.onh_reason
    assert not any(u.has_output for u in result.units.values())
    assert sorted(u.unit_id for u in result.unwritten) == sorted(eimages)


def test_cell_type_filter_off_tracks_every_labelled_unit(recording):
    eimages, labels = recording
    result = track_recording(eimages, fake_cnn, labels, params=APTrackingParams(filter_by_cell_type=False))
    assert result.selection == "all units: cell-type filter off" and not result.filter_by_cell_type
    assert all(u.first_pass for u in result.units.values())
    assert result.filter_by_cell_type is False


def test_angles_are_corrected_only_with_the_sheets_orientation(recording):
    eimages, labels = recording
    oriented = track_recording(eimages, fake_cnn, labels, retina=parse_center_xy("L, 5, -5"))
    polar = oriented.units["unit_001"].polar
    assert polar.corrected and polar.angle_correction_applied == pytest.approx(oriented.angle_correction_deg)
    # Without the sheet's orientation nothing is corrected: the "corrected" angles are the raw ones.
    unoriented = track_recording(eimages, fake_cnn, labels)
    polar = unoriented.units["unit_001"].polar
    assert not polar.corrected and unoriented.angle_correction_deg is None
    assert polar.theta_deg == polar.theta_deg_corrected == polar.theta_deg_raw


def test_bad_lanes_are_fixed_on_copies_before_the_cnn():
    rng = np.random.default_rng(1)
    eimages = {"unit_001": _eimage((20, 20), rng), "unit_002": _eimage((12, 30), rng)}
    seen = []

    def recording_cnn(eimage):
        seen.append(eimage.copy())
        return fake_cnn(eimage)

    original = eimages["unit_001"].copy()
    result = track_recording(eimages, recording_cnn, {"unit_001": "rgc", "unit_002": "rgc"}, bad_lanes=parse_bad_lanes("53, 59, 99"))
    assert result.bad_lanes == [52, 58] and any("99" in w for w in result.warnings)
    np.testing.assert_array_equal(eimages["unit_001"], original)
    fixed = seen[0]
    assert np.allclose(fixed[..., 52], original.mean(), atol=1e-4)
    np.testing.assert_array_equal(fixed[..., 51], original[..., 51])
    # Two pathways are fewer than the 5 cells of the refinement: the legacy intersection.
    assert result.onh.method == "legacy" and "2 usable cells, need 5" in result.onh.attempts[0]
    assert result.onh.mse > 0


def test_bad_lanes_are_left_alone_when_the_fix_is_off():
    rng = np.random.default_rng(1)
    eimages = {"unit_001": _eimage((20, 20), rng)}
    seen = []
    result = track_recording(eimages, lambda e: seen.append(e.copy()) or fake_cnn(e), {"unit_001": "rgc"},
                             bad_lanes=parse_bad_lanes("53"), params=APTrackingParams(fix_bad_lanes=False))
    assert result.bad_lanes == [] and not any("Bad_lanes" in w for w in result.warnings)
    np.testing.assert_array_equal(seen[0], eimages["unit_001"])


def test_a_single_pathway_gives_no_onh_and_no_second_pass():
    rng = np.random.default_rng(2)
    eimages = {"unit_001": _eimage((20, 20), rng), "unit_002": _eimage((40, 40), rng, axon_to=None)}
    result = track_recording(eimages, fake_cnn, {"unit_001": "rgc", "unit_002": "ac"})
    assert result.onh is None and "at least 2" in result.onh_reason
    assert result.units["unit_001"].polar is None
    assert result.units["unit_002"].status == "not_tracked" and "no ONH" in result.units["unit_002"].reason
    assert any("no optic-nerve head" in w for w in result.warnings)
