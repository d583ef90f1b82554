"""Shared fixtures, built once per test session."""

import os

import pytest

# Tests never report to a server a developer runs on this machine (mea-pipeline server records it
# under MEA_PIPELINE_HOME): each session gets an empty home.
os.environ["MEA_PIPELINE_HOME"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mea-pipeline-test-{os.getpid()}")

from mea_pipeline.synth import SynthSpec, write_dataset


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """Two 'tiny' synthetic recordings (10 units, 0.5 s of sensor data) with library and mapping CSV.

    The dict of :func:`mea_pipeline.synth.write_dataset`: ``out_dir``, ``stimuli_dir``,
    ``recordings_dir``, ``mapping_csv``, ``playlist``, ``recordings`` (``recording_id``,
    ``cmcr``, ``cmtr``, ``truth`` per recording). Treat the files as read-only.
    """
    spec = SynthSpec(n_units=10, profile="tiny", sensor_seconds=0.5)
    return write_dataset(tmp_path_factory.mktemp("synth"), n_recordings=2, spec=spec)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """Three 'demo' recordings (10 units, one of them silent, 0.5 s of sensor data) for the pipeline tests.

    The 'demo' profile's 60 s of dense noise give enough spikes to locate receptive fields.
    """
    spec = SynthSpec(n_units=10, profile="demo", sensor_seconds=0.5, n_silent_units=1, seed=3)
    return write_dataset(tmp_path_factory.mktemp("pipeline"), n_recordings=3, spec=spec)


@pytest.fixture(scope="session")
def processed(dataset, tmp_path_factory):
    """Recording 0 of ``dataset`` through every step with the plain runner, once per session.

    ``inputs``, ``config``, ``result`` (of that first run) and ``truth``. The config enables the
    optional steps (nwb_export: the ``.nwb`` is beside the ``.h5``), so every step has run. Treat the
    output as read-only; copy it first (``output_copy.copy_output``) to change anything.
    """
    from mea_pipeline.config import PipelineConfig, RecordingInputs
    from mea_pipeline.runner import run_recording
    from mea_pipeline.steps import REGISTRY
    from mea_pipeline.synth import load_truth

    rec = dataset["recordings"][0]
    out = tmp_path_factory.mktemp("processed") / f"{rec['recording_id']}.h5"
    inputs = RecordingInputs(rec["recording_id"], out, rec["cmcr"], rec["cmtr"])
    config = PipelineConfig.load(dataset["config_file"], REGISTRY)  # stimuli, playlist, labels, sheet CSV
    config.enabled_steps = tuple(step.name for step in REGISTRY if step.optional)
    result = run_recording(inputs, config)
    return {"inputs": inputs, "config": config, "result": result, "truth": load_truth(rec["truth"])}


@pytest.fixture(scope="session")
def registered(tmp_path_factory):
    """One 'demo' recording (12 units) whose stimulus is mirrored, rotated and scaled on the chip, through every step.

    The stimulus -> electrode transform: transposed, rotated by 30 deg, magnified 1.5 x, shifted by
    (2, -3) electrodes. ``inputs``, ``truth`` (with ``stimulus_transform``). Read-only.
    """
    from mea_pipeline.config import PipelineConfig, RecordingInputs
    from mea_pipeline.runner import run_recording
    from mea_pipeline.steps import REGISTRY
    from mea_pipeline.synth import load_truth

    spec = SynthSpec(n_units=12, profile="demo", sensor_seconds=0.5, seed=7, stimulus_mirror=True,
                     stimulus_rotation_deg=30.0, stimulus_scale=1.5, stimulus_offset=(2.0, -3.0))
    data = write_dataset(tmp_path_factory.mktemp("registered"), n_recordings=1, spec=spec)
    rec = data["recordings"][0]
    out = tmp_path_factory.mktemp("registered_output") / f"{rec['recording_id']}.h5"
    inputs = RecordingInputs(rec["recording_id"], out, rec["cmcr"], rec["cmtr"])
    run_recording(inputs, PipelineConfig.load(data["config_file"], REGISTRY))
    return {"inputs": inputs, "truth": load_truth(rec["truth"])}


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
