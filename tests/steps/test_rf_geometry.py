"""Step 7 on a synthetic recording: RF centres and sizes against the generator's receptive fields."""

from __future__ import annotations

import h5py
import numpy as np



def test_rf_gaussian_centre_and_sigma_match_the_truth(processed):
    out, truth = processed["inputs"].output_path, processed["truth"]
    noise = next(m for m in truth["movies"] if "dense_noise" in m)
    clear = 0
    with h5py.File(out) as h5:
        for unit in truth["units"]:
            geometry = h5[f"units/{unit['unit_id']}/features/sta_{noise}/sta_geometry"]
            fit = geometry["gaussian_fit"]
            if unit["silent"]:
                assert np.isnan(fit["center_x"][()]) and fit["fit_status"][()].decode() != "ok"
                assert geometry["status"][()].decode() != "ok"
                continue
            if fit["fit_status"][()].decode() != "ok" or fit["r_squared"][()] < 0.3:
                continue  # no clear RF in 60 s of noise
            row, col = unit["rf_center"]
            assert abs(fit["center_y"][()] - row) <= 0.5 and abs(fit["center_x"][()] - col) <= 0.5, unit["unit_id"]
            sigma = np.sqrt(fit["sigma_x"][()] * fit["sigma_y"][()])
            assert abs(sigma - unit["rf_sigma"]) <= 0.25 * unit["rf_sigma"], unit["unit_id"]
            assert "lnl" in geometry and np.isfinite(geometry["lnl/a_norm"][()])
            clear += 1
    assert clear >= 2
