"""The QC parts soma_geometry and rf_geometry declare: drawn from the output file through their outputs."""

from __future__ import annotations

import h5py
import pytest

from mea_pipeline.steps import REGISTRY


@pytest.fixture(scope="module")
def output(processed):
    with h5py.File(processed["inputs"].output_path, "r") as h5:
        yield h5


def visible_panels(fig) -> int:
    """Unit panels shown (each titled with its unit); each must have its colour bar beside it."""
    shown = [ax for ax in fig.axes if ax.get_visible()]
    panels = sum(bool(ax.get_title()) for ax in shown)
    assert len(shown) - panels == panels, "a panel without its colour bar"
    return panels


def test_soma_geometry_draws_the_eimages_with_their_soma(output, processed):
    qc = REGISTRY["soma_geometry"].qc
    assert qc.topic == "eimage_soma" and qc.numbers is None
    fig = qc.figure(output)
    units = [u["unit_id"] for u in processed["truth"]["units"] if not u["silent"]]
    assert fig is not None and visible_panels(fig) == min(len(units), 16)
    # Each panel: the trough-depth image, the soma's + at the stored centre and the footprint contour.
    ax = next(ax for ax in fig.axes if ax.get_visible() and ax.get_title())
    geometry = output[f"units/{ax.get_title()}/features/eimage_sta/geometry"]
    (marker,) = ax.lines
    assert list(marker.get_xdata()) == [geometry["center_col"][()]]
    assert list(marker.get_ydata()) == [geometry["center_row"][()]]


def test_rf_geometry_draws_the_first_movie_and_counts_the_fitted_rfs(output):
    qc = REGISTRY["rf_geometry"].qc
    assert qc.topic == "rf"
    movie = output["metadata/rf_sta_geometry/movies"].asstr()[0]
    fits = [output[f"units/{u}/features/sta_{movie}/sta_geometry/gaussian_fit/fit_status"].asstr()[()]
            for u in output["units"]]
    assert qc.numbers(output) == {"rfs_fitted": fits.count("ok")} and fits.count("ok") > 0
    fig = qc.figure(output)
    assert fig is not None and movie in fig.get_suptitle()
    assert visible_panels(fig) == min(sum(
        output[f"units/{u}/features/sta_{movie}/sta_geometry/gaussian_fit_unblurred/fit_status"].asstr()[()] == "ok"
        for u in output["units"]), 16)


def test_nothing_to_draw_without_the_steps_output(tmp_path):
    with h5py.File(tmp_path / "empty.h5", "w") as h5:
        h5.create_group("units/unit_001")
        assert REGISTRY["soma_geometry"].qc.figure(h5) is None
        assert REGISTRY["rf_geometry"].qc.figure(h5) is None
        assert REGISTRY["rf_geometry"].qc.numbers(h5) == {}
