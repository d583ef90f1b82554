"""The held-out AP-tracking sets: geometry, speed, noise and truth of the validation generator.

Expectations are worked out by hand from the set's ranges (pitch 16 um, 50 us frames, the
tracker's angle convention 0 = +axis 2, 90 = +axis 1), never with the generator's helpers.
"""

from dataclasses import replace

import numpy as np
import pytest

from mea_pipeline.ap_training.heldout import HELD_OUT_SETS, HeldOutSpec, heldout_scene

QUIET = dict(noise_std=(0.05, 0.05), gain=(1.0, 1.0), rate_hz=(0.0, 0.0), turning_deg=0.0)


def _soma(eimage: np.ndarray) -> np.ndarray:
    """The electrode of the deepest value at frame 10 (the soma trough), as (axis 1, axis 2)."""
    return np.array(np.unravel_index(np.argmin(eimage[10]), eimage.shape[1:]), dtype=float)


def _unit_vector(direction_deg: float) -> np.ndarray:
    """(axis 1, axis 2) of a direction in the tracker's convention."""
    angle = np.radians(direction_deg)
    return np.array([np.sin(angle), np.cos(angle)])


def test_every_named_set_builds_with_its_ranges():
    required = {"nominal", "low_snr", "slow_axons", "fast_axons", "crowded"}
    assert required <= set(HELD_OUT_SETS)
    assert HELD_OUT_SETS["low_snr"].axon_snr[1] <= 2.0
    assert HELD_OUT_SETS["slow_axons"].velocity_m_s[1] <= 0.25 and HELD_OUT_SETS["fast_axons"].velocity_m_s[0] >= 2.5
    assert HELD_OUT_SETS["crowded"].n_units == 60 and HELD_OUT_SETS["crowded"].n_spikes[1] <= 15
    for name, spec in HELD_OUT_SETS.items():
        scene = heldout_scene(replace(spec, n_units=5), np.random.default_rng(1))
        ids = [f"unit_{i:03d}" for i in range(1, 6)]
        assert sorted(scene.eimages) == ids == sorted(scene.direction_deg) == sorted(scene.axon_frames), name
        for eimage in scene.eimages.values():
            assert eimage.shape == (50, 65, 65) and eimage.dtype == np.float32 and np.isfinite(eimage).all()
            # The soma trough is the unit's own spike, at frame 10 (step 1's window starts 10 samples early).
            assert abs(int(np.argmin(eimage.min(axis=(1, 2)))) - 10) <= 1, name
        centre_distance = np.hypot(scene.onh_axis1 - 32, scene.onh_axis2 - 32)
        assert spec.onh_distance[0] - 1e-9 <= centre_distance <= spec.onh_distance[1] + 1e-9


def test_axon_trough_travels_along_axis_2_at_the_set_velocity():
    """ONH straight out along +axis 2: the deepest axon voxel moves to larger axis 2 at v * 50 us / 16 um per frame."""
    snr = 40.0
    for velocity in (0.5, 1.2):
        spec = replace(HELD_OUT_SETS["nominal"], n_units=1, no_axon_fraction=0.0, axon_snr=(snr, snr),
                       velocity_m_s=(velocity, velocity), onh_angle_deg=(0.0, 0.0), onh_distance=(45.0, 45.0),
                       **QUIET)
        for seed in range(100):     # the first soma in the left half: a long stretch of axon on the array
            scene = heldout_scene(spec, np.random.default_rng(seed))
            eimage = scene.eimages["unit_001"]
            soma = _soma(eimage)
            if soma[1] < 25:
                break
        assert (scene.onh_axis1, scene.onh_axis2) == pytest.approx((32.0, 77.0))
        frames, positions = [], []
        for t in range(10, 50):
            frame = eimage[t].copy()
            frame[int(soma[0]) - 8:int(soma[0]) + 9, int(soma[1]) - 8:int(soma[1]) + 9] = 0.0  # clear of the soma
            axis1, axis2 = np.unravel_index(np.argmin(frame), frame.shape)
            if frame[axis1, axis2] < -0.3 * snr * 0.05 and axis2 < 60:   # a real trough, not at the far edge
                frames.append(t)
                positions.append((axis1, axis2))
        positions = np.array(positions, dtype=float)
        expected = velocity * 50e-6 / 16e-6       # electrodes per frame
        along = (positions - soma) @ _unit_vector(scene.direction_deg["unit_001"])
        clear = along > 12          # past the start-up of the line source at the soma
        frames, along, positions = np.array(frames)[clear], along[clear], positions[clear]
        assert len(frames) >= 6, velocity
        assert np.polyfit(frames, along, 1)[0] == pytest.approx(expected, rel=0.2), velocity
        # The axon heads to +axis 2 (toward the ONH); axis 1 drifts only by the ONH's offset from the soma's row.
        assert np.polyfit(frames, positions[:, 1], 1)[0] > 0.8 * expected * abs(np.cos(np.arctan2(32 - soma[0], 77 - soma[1])))


def test_truth_directions_point_at_the_onh_and_the_chords_meet_there():
    spec = replace(HELD_OUT_SETS["nominal"], n_units=8, no_axon_fraction=0.0, min_onh_gap=20.0, **QUIET)
    scene = heldout_scene(spec, np.random.default_rng(5))
    onh = np.array([scene.onh_axis1, scene.onh_axis2])
    somas = {u: _soma(e) for u, e in scene.eimages.items()}
    for unit_id, soma in somas.items():
        by_hand = np.degrees(np.arctan2(onh[0] - soma[0], onh[1] - soma[1])) % 360
        error = abs((scene.direction_deg[unit_id] - by_hand + 180) % 360 - 180)
        assert 0 <= scene.direction_deg[unit_id] < 360 and error < 3.0, unit_id
    # Extend the two most different chords from their somas: they cross at the ONH.
    ids = sorted(somas)
    pairs = [(a, b) for a in ids for b in ids if a < b]
    a, b = max(pairs, key=lambda p: abs(np.sin(np.radians(scene.direction_deg[p[0]] - scene.direction_deg[p[1]]))))
    da, db = _unit_vector(scene.direction_deg[a]), _unit_vector(scene.direction_deg[b])
    ta, _ = np.linalg.solve(np.column_stack([da, -db]), somas[b] - somas[a])
    assert np.hypot(*(somas[a] + ta * da - onh)) < 2.0


def test_curved_axons_still_head_for_the_onh():
    """Turning at most 20 degrees in all: the chord off the soma-ONH line by at most half of it."""
    spec = replace(HELD_OUT_SETS["nominal"], n_units=10, no_axon_fraction=0.0, min_onh_gap=20.0,
                   **(QUIET | {"turning_deg": 20.0}))
    scene = heldout_scene(spec, np.random.default_rng(7))
    for unit_id, eimage in scene.eimages.items():
        soma = _soma(eimage)
        straight = np.degrees(np.arctan2(scene.onh_axis1 - soma[0], scene.onh_axis2 - soma[1]))
        assert abs((scene.direction_deg[unit_id] - straight + 180) % 360 - 180) < 13.0, unit_id


def test_noise_std_far_from_the_soma_matches_the_spec():
    for noise in (0.4, 2.5):
        spec = replace(HELD_OUT_SETS["nominal"], n_units=1, no_axon_fraction=1.0, noise_std=(noise, noise))
        scene = heldout_scene(spec, np.random.default_rng(11))
        eimage = scene.eimages["unit_001"]
        soma = _soma(eimage)
        axis1, axis2 = np.meshgrid(np.arange(65), np.arange(65), indexing="ij")
        far = np.hypot(axis1 - soma[0], axis2 - soma[1]) > 16      # beyond the soma's reach (return disc + kernel)
        assert far.sum() > 1000
        assert eimage[:, far].std() == pytest.approx(noise, rel=0.15), noise


def test_units_without_axon_have_no_axon_frames_and_no_direction():
    spec = replace(HELD_OUT_SETS["nominal"], n_units=12)
    scene = heldout_scene(spec, np.random.default_rng(2))
    no_axon = [u for u, d in scene.direction_deg.items() if np.isnan(d)]
    assert len(no_axon) == 3                                  # 25 % of 12
    assert all(scene.axon_frames[u] == 0 for u in no_axon)
    everyone = heldout_scene(replace(spec, no_axon_fraction=1.0), np.random.default_rng(2))
    assert set(everyone.axon_frames.values()) == {0.0}
    # A strong, slow, straight axon is visible in most of the 40 frames after the spike.
    strong = replace(spec, n_units=4, no_axon_fraction=0.0, axon_snr=(12.0, 12.0), velocity_m_s=(0.3, 0.3))
    assert all(frames >= 12 for frames in heldout_scene(strong, np.random.default_rng(2)).axon_frames.values())


def test_same_seed_same_scene():
    spec = replace(HELD_OUT_SETS["crowded"], n_units=6)
    first, again = (heldout_scene(spec, np.random.default_rng(42)) for _ in range(2))
    other = heldout_scene(spec, np.random.default_rng(43))
    assert all(np.array_equal(first.eimages[u], again.eimages[u]) for u in first.eimages)
    assert first.direction_deg == pytest.approx(again.direction_deg, nan_ok=True)
    assert first.axon_frames == again.axon_frames and first.onh_axis1 == again.onh_axis1
    assert not np.array_equal(first.eimages["unit_001"], other.eimages["unit_001"])


def test_a_spec_that_cannot_place_its_somas_says_so():
    with pytest.raises(ValueError, match="min_soma_gap"):
        heldout_scene(HeldOutSpec("packed", n_units=400, min_soma_gap=6.0), np.random.default_rng(0))
