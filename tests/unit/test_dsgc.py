"""Step 11 science: sweep layout, bar crossings, the lab's pickle, sectioning and direction selectivity."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mea_pipeline.dsgc import crossings, pickle_table, selectivity
from mea_pipeline.dsgc.sectioning import section_by_direction, spike_movie_frames, trial_spike_counts
from mea_pipeline.dsgc.segments import DirectionLayout, direction_segments
from mea_pipeline.errors import InputError
from mea_pipeline.steps.dsgc import DsgcParams, sweep_layout
from mea_pipeline.stimulus_library import StimulusLibrary
from mea_pipeline.synth.bar_geometry import bar_crossings, sweep_start
from mea_pipeline.synth.bar_movie import render_bar_movie
from mea_pipeline.synth.movies import movie_configs, movie_length
from mea_pipeline.synth.spec import MOVING_BAR

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LAB_BAR_JSON = SHARED / "reference" / "stimuli" / "moving_h_bar_s5_d8_3x.json"
# The science functions with the step's parameter values, but those given.
P = DsgcParams()


def crossing_table(movie, pixels, layout, **given):
    rule = dict(area_box=P.area_box, prominence_fraction=P.prominence_fraction, off_fraction=P.off_fraction,
                off_floor=P.off_floor)
    return crossings.crossing_table(movie, pixels, layout, **(rule | given))


def load_on_off_table(path, **given):
    return pickle_table.load_on_off_table(path, **({"size": P.stimulus_px} | given))


def pixel_rule(center_x_col, center_y_row):
    """The rule for the lab's 15 x 15 checkers of 20 pixels."""
    return pickle_table.pixel_rule(center_x_col, center_y_row, checker_px=20, size=P.stimulus_px)


def direction_selectivity(counts, directions, **given):
    return selectivity.direction_selectivity(counts, directions,
                                             **({"n_permutations": P.n_permutations, "seed": P.seed} | given))


@pytest.fixture(scope="module")
def tiny_bar(tmp_path_factory):
    """The 'tiny' profile's bar config and its movie, opened as a read-only memmap like the step does."""
    config = movie_configs("tiny")[MOVING_BAR]
    path = tmp_path_factory.mktemp("bar") / f"{MOVING_BAR}.npy"
    render_bar_movie(config, path)
    return config, np.load(path, mmap_mode="r")


# --- segments ---------------------------------------------------------------------------------------

def test_segments_match_the_synthetic_sweeps():
    config = movie_configs("tiny")[MOVING_BAR]
    layout = direction_segments(config, 8, movie_length(config))
    g = config["generate_kwargs"]
    assert layout.n_trials == 3 * 8 and layout.n_repetitions == 3
    np.testing.assert_array_equal(layout.directions, g["directions_deg"])
    for i, (start, end) in enumerate(layout.segments):
        rep, d = divmod(i, 8)
        assert (layout.trial_rep[i], layout.trial_direction[i]) == (rep, d)
        assert start == sweep_start(config, rep, d) and end - start == g["frames_per_direction"]


def _lab_generator_segments(trial_length: int, pre_pad: int, per_direction: int, repeat: int = 3) -> np.ndarray:
    """The sweeps the lab's ON/OFF generator cuts from its movie file (ref-steps-6-11 6.2), by its loop."""
    segments, counter = [], 0
    for _ in range(repeat):
        counter += pre_pad
        for _ in range(8):
            segments.append([counter, counter + per_direction])
            counter += per_direction
    assert counter == repeat * trial_length
    return np.array(segments)


def test_segments_of_the_lab_json_are_where_the_labs_generator_cuts_them():
    if not LAB_BAR_JSON.exists():
        pytest.skip("shared reference files absent")
    lab = json.loads(LAB_BAR_JSON.read_text())
    # The lab's movie file holds 3 x 4520 frames, no 60-frame start_frame lead-in.
    layout = direction_segments(lab, 8, movie_frames=13560)
    np.testing.assert_array_equal(layout.directions, [0, 45, 90, 135, 180, 225, 270, 315])
    np.testing.assert_array_equal(layout.segments, _lab_generator_segments(4520, 120, 550))
    assert layout.lead_in == 0
    # A file holding the lead-in (as the synthetic ones do) puts every sweep start_frame later.
    with_lead_in = direction_segments(lab, 8, movie_frames=60 + 13560)
    np.testing.assert_array_equal(with_lead_in.segments, layout.segments + 60)
    with pytest.raises(InputError, match="13000 frames, fewer than its 3 trials"):
        direction_segments(lab, 8, movie_frames=13000)


def test_segments_reject_a_trial_that_does_not_split_into_directions():
    config = {"name": "bar", "section_kwargs": {"start_frame": 0, "trial_length_frame": 123, "repeat": 3},
              "generate_kwargs": {"pre_pad_frame": 10}}
    with pytest.raises(InputError, match="trial_length_frame"):
        direction_segments(config, 8, 10_000)
    del config["section_kwargs"]["repeat"]
    with pytest.raises(InputError, match="section_kwargs.repeat is missing"):
        direction_segments(config, 8, 10_000)


# --- one sweep layout for both crossing sources ----------------------------------------------------

def _library(folder: Path, movie_frames: int | None, lead_in: int = 6) -> StimulusLibrary:
    """A small moving-bar library: 3 trials of 12 pre-pad + 8 x 5 sweep frames, JSON start_frame 6.

    ``movie_frames``: frames of its ``bar.npy`` (None: no ``.npy``); ``movie_length.csv`` gives
    the trials' frames plus ``lead_in``.
    """
    folder.mkdir()
    config = {"name": "bar", "section_kwargs": {"start_frame": 6, "trial_length_frame": 52, "repeat": 3},
              "generate_kwargs": {"pre_pad_frame": 12}}
    (folder / "bar.json").write_text(json.dumps(config))
    (folder / "movie_length.csv").write_text(f"movie_name,movie_length\nbar,{lead_in + 3 * 52}\n")
    if movie_frames is not None:
        np.save(folder / "bar.npy", np.zeros((movie_frames, 4, 4), dtype=np.uint8))
    return StimulusLibrary(folder)


def test_a_pickle_run_gets_the_sweeps_a_movie_run_gets(tmp_path):
    """The lab's file starts at its first trial; a run with its pickle must not assume a lead-in."""
    params = DsgcParams(movie="bar", stimulus_px=4)
    expected = _lab_generator_segments(52, 12, 5)
    lab_file = _library(tmp_path / "with_npy", movie_frames=3 * 52, lead_in=0)
    movie_run, movie, _ = sweep_layout(lab_file, params, need_movie=True)
    pickle_run, _, _ = sweep_layout(lab_file, params, need_movie=False)
    no_npy = _library(tmp_path / "no_npy", movie_frames=None, lead_in=0)
    pickle_without_npy, absent, source = sweep_layout(no_npy, params, need_movie=False)
    assert movie.shape == (156, 4, 4) and absent is None and "movie_length.csv gives 156 frames" in source
    for layout in (movie_run, pickle_run, pickle_without_npy):
        np.testing.assert_array_equal(layout.segments, expected)
    # A file holding the JSON's 6-frame lead-in, with or without its .npy at hand.
    synthetic = _library(tmp_path / "lead_in", movie_frames=6 + 3 * 52)
    np.testing.assert_array_equal(sweep_layout(synthetic, params, need_movie=True)[0].segments, expected + 6)
    (tmp_path / "lead_in" / "bar.npy").unlink()
    np.testing.assert_array_equal(sweep_layout(synthetic, params, need_movie=False)[0].segments, expected + 6)


def test_sweep_layout_refuses_directions_the_labs_int64_list_cannot_hold(tmp_path):
    library = _library(tmp_path / "lib", movie_frames=None)
    config = json.loads((tmp_path / "lib" / "bar.json").read_text())
    config["generate_kwargs"]["directions_deg"] = [0, 45, 90, 135, 180, 225, 270, 337.5]
    (tmp_path / "lib" / "bar.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"bar\.json: directions .* whole degrees"):
        sweep_layout(library, DsgcParams(movie="bar"), need_movie=False)


# --- crossings --------------------------------------------------------------------------------------

def test_crossing_table_recovers_the_ground_truth_crossings(tiny_bar):
    config, movie = tiny_bar
    rng = np.random.default_rng(7)
    edges = [(0, 0), (0, 299), (299, 0), (299, 299), (0, 150), (150, 0), (299, 137), (212, 299),
             (24, 25), (25, 24), (275, 276), (276, 275), (1, 298), (150, 150), (149, 149)]
    pixels = edges + [tuple(p) for p in rng.integers(0, 300, size=(40, 2))]
    table = crossing_table(movie, pixels, direction_segments(config, 8, len(movie)))
    assert set(table) == {(int(r), int(c)) for r, c in pixels}
    for (row, col), (on, off) in table.items():
        expected_on, expected_off = bar_crossings(config, row, col)
        np.testing.assert_array_equal(on, expected_on, err_msg=f"ON at {(row, col)}")
        np.testing.assert_array_equal(off, expected_off, err_msg=f"OFF at {(row, col)}")


def _one_segment(length: int) -> DirectionLayout:
    return DirectionLayout(directions=np.array([0.0]), n_repetitions=1, lead_in=0, segments=np.array([[0, length]]),
                           trial_direction=np.array([0]), trial_rep=np.array([0]))


def test_on_follows_the_neighbourhood_not_a_one_pixel_flicker():
    movie = np.zeros((60, 40, 40), dtype=np.uint8)
    movie[10, 20, 20] = 255          # the pixel alone flickers at frame 10
    movie[30:45] = 200               # the whole neighbourhood brightens at 30, darkens at 45
    on, off = crossing_table(movie, [(20, 20)], _one_segment(60), area_box=10)[(20, 20)]
    assert (on[0], off[0]) == (30, 45)


def test_off_falls_back_to_the_steepest_fall_when_no_fall_is_significant():
    movie = np.zeros((40, 20, 20), dtype=np.uint8)
    movie[10:] = 200
    movie[20:] = 160                 # falls of 40 never reach the -100 (half of ON) threshold
    movie[30:] = 150
    on, off = crossing_table(movie, [(5, 5)], _one_segment(40), area_box=10)[(5, 5)]
    assert (on[0], off[0]) == (10, 20)


def test_off_takes_the_first_fall_past_its_fraction_of_on():
    movie = np.zeros((40, 20, 20), dtype=np.uint8)
    movie[10:] = 200
    movie[20:] = 140                 # a fall of 60: past 0.25 x 200 and the -50 floor, not past 0.5 x 200
    movie[30:] = 0
    for off_fraction, expected_off in ((0.5, 30), (0.25, 20)):
        on, off = crossing_table(movie, [(5, 5)], _one_segment(40), area_box=10, off_fraction=off_fraction)[(5, 5)]
        assert (on[0], off[0]) == (10, expected_off)


def test_crossing_table_refuses_a_movie_shorter_than_the_layout(tiny_bar):
    config, movie = tiny_bar
    with pytest.raises(InputError, match="frames"):
        crossing_table(movie[:100], [(0, 0)], direction_segments(config, 8, movie_length(config)))


# --- the lab's pickle -------------------------------------------------------------------------------

def _table(n_trials=3):
    """Pixels (0..1, 0..1), sweep t in frames [10 t, 10 t + 10); column 1's OFF comes before its ON."""
    return {(r, c): {"on_peak_location": [10 * t + r + 2 for t in range(n_trials)],
                     "off_peak_location": [10 * t + r + 7 - 6 * (c == 1) for t in range(n_trials)]}
            for r in range(2) for c in range(2)}


THREE_SWEEPS = np.array([[0, 10], [10, 20], [20, 30]])


def test_a_valid_table_round_trips(tmp_path):
    path = tmp_path / "table.pkl"
    path.write_bytes(pickle.dumps(_table(), protocol=pickle.HIGHEST_PROTOCOL))
    loaded = load_on_off_table(path, segments=THREE_SWEEPS)
    assert loaded["n_pixels"] == 4 and loaded["n_trials"] == 3
    assert loaded["n_off_not_after_on"] == 2 * 3      # the col 1 entries end before they start
    on, off = loaded["crossings"][(1, 0)]
    np.testing.assert_array_equal(on, [3, 13, 23])
    np.testing.assert_array_equal(off, [8, 18, 28])
    assert on.dtype == np.int64


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "was_run"
    table = _table()
    table[(0, 0)]["on_peak_location"] = _RunsAShellCommand(marker)
    for payload in (_RunsAShellCommand(marker), table):
        path = tmp_path / "evil.pkl"
        path.write_bytes(pickle.dumps(payload))
        with pytest.raises(InputError, match=r"evil\.pkl: refused: .*system"):
            load_on_off_table(path)
        assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "expected a non-empty dict"),
    ({(0, 0, 0): {}}, "not a \\(row, col\\) pixel"),
    ({(0, 300): {"on_peak_location": [1], "off_peak_location": [2]}}, "not a \\(row, col\\) pixel"),
    ({(True, 0): {"on_peak_location": [1], "off_peak_location": [2]}}, "not a \\(row, col\\) pixel"),
    ({(0, 0): {"on_peak_location": [1]}}, "must be a dict with"),
    ({(0, 0): {"on_peak_location": [1, 2], "off_peak_location": [2, 3]},
      (0, 1): {"on_peak_location": [1], "off_peak_location": [2]}}, "has 1 values"),
    ({(0, 0): {"on_peak_location": [1.5], "off_peak_location": [2]}}, "integer frame numbers"),
    ({(0, 0): {"on_peak_location": "12", "off_peak_location": [2]}}, "not a list"),
    ({(0, 0): {"on_peak_location": [1], "off_peak_location": [2, 3]}}, "on_peak_location has 1"),
])
def test_a_malformed_table_is_an_input_error(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(InputError, match=message):
        load_on_off_table(path)


def test_unreadable_files_and_wrong_trial_counts_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_on_off_table(tmp_path / "missing.pkl")
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(InputError, match="garbage.pkl: not a readable pickle"):
        load_on_off_table(tmp_path / "garbage.pkl")
    (tmp_path / "short.pkl").write_bytes(pickle.dumps(_table(3)))
    with pytest.raises(InputError, match="lists 3 sweeps per pixel .* 24"):
        load_on_off_table(tmp_path / "short.pkl", segments=np.zeros((24, 2), dtype=np.int64))


@pytest.mark.parametrize("field, frame", [("on_peak_location", 9), ("off_peak_location", 20)])
def test_an_entry_outside_its_sweep_names_the_file_pixel_and_trial(tmp_path, field, frame):
    table = _table()
    table[(1, 0)][field][0] = frame          # trial 0's sweep is [0, 10): 9 is inside, 20 is not
    table[(1, 1)][field][2] = 35             # trial 2's sweep is [20, 30)
    path = tmp_path / "other_layout.pkl"
    path.write_bytes(pickle.dumps(table))
    if frame == 9:
        with pytest.raises(InputError, match=r"other_layout\.pkl: pixel \(1, 1\) trial 2: on_peak_location = 35 "
                                             r"lies outside its sweep, frames \[20, 30\).*see the JSON"):
            load_on_off_table(path, segments=THREE_SWEEPS, layout_note=" (see the JSON)")
    else:
        with pytest.raises(InputError, match=r"pixel \(1, 0\) trial 0: off_peak_location = 20 .* \[0, 10\)"):
            load_on_off_table(path, segments=THREE_SWEEPS)


def test_pixel_rule_is_the_labs_checker_centre_truncated_and_clipped():
    assert pixel_rule(7.0, 7.0) == (150, 150)
    assert pixel_rule(center_x_col=3.26, center_y_row=0.2) == (14, 75)
    assert pixel_rule(-0.4, -5.0) == (0, 2)         # int() truncates -0.4*20+10 = 2.0 to 2; -90 clips to 0
    assert pixel_rule(20.0, 14.99) == (299, 299)
    assert pixel_rule(float("nan"), 3.0) is None


# --- sectioning -------------------------------------------------------------------------------------

def _two_by_two() -> DirectionLayout:
    """2 directions (0, 180) x 2 repetitions, repetition-major."""
    return DirectionLayout(directions=np.array([0.0, 180.0]), n_repetitions=2, lead_in=0,
                           segments=np.array([[0, 100], [100, 200], [200, 300], [300, 400]]),
                           trial_direction=np.array([0, 1, 0, 1]), trial_rep=np.array([0, 0, 1, 1]))


def test_spikes_land_in_their_direction_and_repetition_windows_bounds_included():
    on, off = np.array([50, 150, 250, 350]), np.array([60, 160, 260, 360])
    frames = np.array([355, 9, 10, 20, 100, 101, 109, 110, 199, 210, 250, 299, 300, 400, 401])
    samples = frames * 100 + 7
    sections = section_by_direction(frames, on, off, _two_by_two(), padding=40, spike_samples=samples)
    assert list(sections) == ["0", "180"]
    zero, back = sections["0"], sections["180"]
    np.testing.assert_array_equal(zero.bounds, [[10, 100], [210, 300]])
    np.testing.assert_array_equal(back.bounds, [[110, 200], [310, 400]])
    np.testing.assert_array_equal(zero.trials[0], [10, 20, 100])
    np.testing.assert_array_equal(zero.trials[1], [210, 250, 299, 300])
    np.testing.assert_array_equal(back.trials[0], [110, 199])
    np.testing.assert_array_equal(back.trials[1], [355, 400])
    np.testing.assert_array_equal(back.trial_samples[1], [35507, 40007])
    assert zero.trials[0].dtype == np.int64
    np.testing.assert_array_equal(trial_spike_counts(sections, _two_by_two()), [[3, 4], [2, 2]])


def test_spike_frames_are_the_frame_on_screen_relative_to_the_movie():
    frame_timestamps = np.array([100, 200, 300, 400])
    frames = spike_movie_frames(np.array([99, 100, 150, 200, 450]), frame_timestamps, movie_frame0=1)
    np.testing.assert_array_equal(frames, [-2, -1, -1, 0, 2])


# --- selectivity ------------------------------------------------------------------------------------

DIRECTIONS = np.arange(0, 360, 45.0)


def test_a_tuned_cell_is_found_with_its_preferred_direction():
    rng = np.random.default_rng(1)
    preferred = 100.0
    rate = 2 + 30 * np.exp(2.0 * (np.cos(np.deg2rad(DIRECTIONS - preferred)) - 1))
    counts = rng.poisson(rate[:, None], size=(8, 3))
    result = direction_selectivity(counts, DIRECTIONS)
    difference = (result.preferred_direction_deg - preferred + 180) % 360 - 180
    assert abs(difference) < 10
    assert result.dsi_vector > 0.4 and result.dsi_classic > 0.8
    assert result.p_value < 0.01 and result.reason is None
    assert result.n_spikes == counts.sum()


def test_an_untuned_cell_has_a_low_dsi_and_no_significance():
    counts = np.random.default_rng(2).poisson(10, size=(8, 3))
    result = direction_selectivity(counts, DIRECTIONS, seed=5)
    assert result.dsi_vector < 0.15
    assert result.p_value > 0.05


def test_classic_dsi_osi_and_vector_sum_on_a_hand_example():
    counts = np.zeros((8, 2))
    counts[2] = [6, 10]      # 90 deg: mean 8
    counts[6] = [2, 2]       # 270 deg (null): mean 2
    result = direction_selectivity(counts, DIRECTIONS, n_permutations=50)
    np.testing.assert_allclose(result.spike_counts[[2, 6]], [8, 2])
    assert result.dsi_classic == pytest.approx((8 - 2) / (8 + 2))
    assert result.dsi_vector == pytest.approx(6 / 10)
    assert result.osi == pytest.approx(1.0)      # both responses lie on one axis
    assert result.preferred_direction_deg == pytest.approx(90.0)


def test_the_p_value_depends_only_on_the_seed():
    counts = np.random.default_rng(3).poisson(5, size=(8, 3))
    first = direction_selectivity(counts, DIRECTIONS, seed=11).p_value
    assert direction_selectivity(counts, DIRECTIONS, seed=11).p_value == first
    assert 1 / 1001 <= first <= 1


def test_no_spikes_gives_nan_with_a_reason():
    result = direction_selectivity(np.zeros((8, 3)), DIRECTIONS)
    assert np.isnan(result.dsi_vector) and np.isnan(result.p_value) and result.n_spikes == 0
    assert "no spikes" in result.reason


# --- the library check (pre-flight) -----------------------------------------------------------------

class _Check:
    """A stand-in for pre-flight's LibraryCheck: records findings; attempt turns InputError into an error."""

    def __init__(self, library, movies, params, on_off_dict=None):
        self.library, self.movies, self.params = library, movies, params
        self.config = type("Config", (), {"playlist": "playlist.csv", "on_off_dict": on_off_dict})()
        self.errors, self.warnings = [], []

    def attempt(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, OSError) as error:
            self.errors.append(str(error))
            return None

    def warning(self, message):
        self.warnings.append(message)

    def error(self, message):
        self.errors.append(message)


def test_library_check_reads_the_bar_as_the_step_does(tmp_path):
    from mea_pipeline.steps.dsgc import STEP

    library = _library(tmp_path / "lib", movie_frames=3 * 52)
    fine = _Check(library, ["bar"], DsgcParams(movie="bar", stimulus_px=4))
    STEP.library_check(fine)
    assert fine.errors == [] and fine.warnings == []

    wrong_size = _Check(library, ["bar"], DsgcParams(movie="bar", stimulus_px=300))
    STEP.library_check(wrong_size)
    assert len(wrong_size.errors) == 1 and "bar.npy: frames are (4, 4)" in wrong_size.errors[0]
    assert "parameter stimulus_px" in wrong_size.errors[0]

    no_bar = _Check(library, ["noise"], DsgcParams(movie="bar"))
    STEP.library_check(no_bar)
    assert no_bar.errors == [] and "has no 'bar'" in no_bar.warnings[0] and "no_moving_bar" in no_bar.warnings[0]


def test_library_check_with_the_labs_pickle_checks_it_against_the_sweeps(tmp_path):
    from mea_pipeline.steps.dsgc import STEP

    library = _library(tmp_path / "lib", movie_frames=None, lead_in=0)
    table = tmp_path / "table.pkl"
    table.write_bytes(pickle.dumps(_table()))        # 3 sweeps per pixel; the bar has 24
    check = _Check(library, ["bar"], DsgcParams(movie="bar", stimulus_px=4), on_off_dict=table)
    STEP.library_check(check)
    assert len(check.errors) == 1 and "table.pkl" in check.errors[0] and "24" in check.errors[0]
