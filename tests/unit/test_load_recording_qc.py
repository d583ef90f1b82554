"""load_recording's key numbers in the QC report, read through its declaration."""

from __future__ import annotations

import h5py
import numpy as np

from mea_pipeline.steps import REGISTRY


def test_the_qc_numbers_count_units_and_spikes(tmp_path):
    with h5py.File(tmp_path / "r.h5", "w") as h5:
        numbers = REGISTRY["load_recording"].qc.numbers
        assert numbers(h5) == {"units": 0, "spikes": 0}
        h5["units/unit_001/spike_times"] = np.arange(5, dtype=np.uint64)
        h5["units/unit_002/spike_times"] = np.zeros(0, dtype=np.uint64)
        h5["units/unit_003/spike_times"] = np.arange(7, dtype=np.uint64)
        assert numbers(h5) == {"units": 3, "spikes": 12}
