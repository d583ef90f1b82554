"""Step 6 on a synthetic recording: the soma centre is where the generator put the soma."""

from __future__ import annotations

import h5py
import numpy as np

from mea_pipeline.mcs_io import sensor_frame_index


def test_soma_centre_within_one_electrode_of_the_truth(processed):
    out, truth = processed["inputs"].output_path, processed["truth"]
    located = 0
    with h5py.File(out) as h5:
        for unit in truth["units"]:
            geometry = h5[f"units/{unit['unit_id']}/features/eimage_sta/geometry"]
            if h5[f"units/{unit['unit_id']}/features/eimage_sta/metadata/n_spikes_used"][()] == 0:
                assert np.isnan(geometry["center_row"][()]) and geometry["status"][()].decode() == "no_data"
                assert geometry["reason"][()].decode()
                continue
            axis1, axis2 = sensor_frame_index(unit["row"], unit["column"])
            assert abs(geometry["center_row"][()] - axis1) <= 1, unit["unit_id"]
            assert abs(geometry["center_col"][()] - axis2) <= 1, unit["unit_id"]
            assert abs(geometry["center_row_subpixel"][()] - axis1) <= 1
            assert geometry["area"][()] > 0
            located += 1
    assert located >= len(truth["units"]) - 2
