"""The CNN's training distribution: its physics, its labels and its repeatability, checked against hand-made truth."""

from dataclasses import replace

import numpy as np
import pytest

from mea_pipeline.ap_training import broad_units as bu
from mea_pipeline.ap_training.training_data import IGNORED, NEGATIVE, POSITIVE, sample_cubes, trough_labels

STRAIGHT = replace(bu.BroadSpec(), velocity_m_s_log=(0.5, 0.5), max_turn_deg=0.0, branch_fraction=0.0,
                   no_axon_fraction=0.0, ais_delay_ms=(0.0, 0.0), ais_offset_el=(0.0, 0.0),
                   axon_length_el=(25.0, 25.0), lateral_spread_el_log=(0.5, 0.5))


def test_a_straight_axon_carries_its_trough_at_the_drawn_velocity():
    """0.5 m/s is 25 um per 50-us frame, i.e. 1.5625 electrodes of 16 um per frame, along a straight line."""
    source = bu.random_source(np.random.default_rng(3), STRAIGHT, noise_std=1.0, edge=30)   # stays on the chip
    axon = source.axon[bu.FOREIGN_PAD:bu.FOREIGN_PAD + bu.FRAMES]
    soma = np.array(source.soma_rc, float)
    frames, distances, points = [], [], []
    for frame in range(bu.SPIKE_FRAME + 2, bu.FRAMES):
        if axon[frame].min() < 0.5 * axon.min():
            where = np.array(np.unravel_index(np.argmin(axon[frame]), axon[frame].shape), float)
            frames.append(frame)
            distances.append(np.hypot(*(where - soma)))
            points.append(where)
    assert len(frames) >= 6
    speed = np.polyfit(frames, distances, 1)[0]
    assert speed == pytest.approx(0.5e-3 / 16e-6 * 0.05, rel=0.15)            # electrodes per frame
    points = np.array(points) - soma
    # All troughs on one ray from the soma (a straight axon): within an electrode of the mean direction's line.
    direction = points[-1] / np.hypot(*points[-1])
    off_line = np.abs(points[:, 0] * direction[1] - points[:, 1] * direction[0])
    assert off_line.max() <= 1.0 and np.all(points @ direction > 0)


def test_noise_has_the_drawn_std_whatever_its_mixture():
    for seed in range(4):
        noise = bu.random_noise(np.random.default_rng(seed), 2.5)
        assert noise.shape == (50, 65, 65)
        assert noise.std() == pytest.approx(2.5, rel=0.12)


def test_the_waveform_is_a_unit_trough_at_the_spike_time():
    t = np.linspace(-1, 1, 2001)
    for seed in range(10):
        shape = bu.Waveform(np.random.default_rng(seed), 0.1)(t)
        assert shape.min() == pytest.approx(-1.0, abs=1e-3)
        assert abs(t[np.argmin(shape)]) < 0.025          # within half a 50-us frame
        assert shape.max() < 1.0                          # positive phases smaller than the trough


def test_labels_mark_the_axon_trough_ignore_the_soma_and_the_border():
    axon = np.zeros((12, 20, 20))
    soma = np.zeros_like(axon)
    axon[6, 10, 12] = -10.0          # the axon's trough at this electrode
    axon[7, 10, 12] = -2.0           # its fading tail: 0.2 x the trough, neither clear nor silent
    axon[8, 10, 12] = -0.5
    axon[6, 10, 5] = -10.0
    soma[6, 10, 5] = -40.0           # where the soma outweighs the axon
    axon[6, 1, 10] = -10.0           # on the border no cube is centred
    labels = trough_labels(axon, soma, noise=1.0)
    assert labels[6, 10, 12] == POSITIVE
    assert labels[7, 10, 12] == IGNORED
    assert labels[8, 10, 12] == NEGATIVE
    assert labels[6, 10, 5] == IGNORED
    assert labels[6, 1, 10] == IGNORED
    assert labels[5, 10, 12] == NEGATIVE and labels[6, 12, 14] == NEGATIVE
    # A trough shallower than 1.5 noise stds is not a clear positive.
    assert trough_labels(axon, soma, noise=8.0)[6, 10, 12] == IGNORED


def test_units_are_repeatable_and_their_positives_are_dark_voxels():
    first = list(bu.broad_units(6, np.random.default_rng(11)))
    again = list(bu.broad_units(6, np.random.default_rng(11)))
    for a, b in zip(first, again):
        assert np.array_equal(a.eimage, b.eimage) and np.array_equal(a.labels, b.labels)
    with_axon = [u for u in first if (u.labels == POSITIVE).any()]
    assert with_axon
    for unit in with_axon:
        # The noise-free axon is a clear trough at every positive voxel: the eimage is dark there on average.
        assert unit.axon[unit.labels == POSITIVE].max() < 0
        assert unit.eimage[unit.labels == POSITIVE].mean() < -1.0 * unit.noise_std
        cubes, targets = sample_cubes(unit, np.random.default_rng(0), per_unit=10)
        centres = cubes[targets == 1][:, 0, 2, 2, 2]
        assert np.isin(centres, unit.eimage[unit.labels == POSITIVE]).all()
