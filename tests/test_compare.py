"""``mea-pipeline compare``: every key of a lab's file and ours classified, by the schema's marks."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import h5py
import numpy as np
import pytest

from mea_pipeline.cli.main import main
from mea_pipeline.compare import compare_files, format_summary
from mea_pipeline.compare.summary import PATTERNS_PER_CLASS
from mea_pipeline.schema import FIXED, LAB, OURS, Out, find_out
from mea_pipeline.steps import REGISTRY
from mea_pipeline.steps.registry import Registry, Step

LN_REASON = "the lab divides by 1/15 s while binning display frames"


@dataclass(frozen=True)
class ToyParams:
    scale: float = 1.0


TOY = Step(
    name="toy_geometry", position=1, upstream=(), reads=frozenset(), params=ToyParams, version="1",
    run=lambda ctx, p: {}, description="a toy step whose outputs carry every kind of mark",
    outputs=(
        Out("units/{unit}/geometry/{field}", "f", None, "lab geometry", origin=LAB),
        Out("units/{unit}/lnl/{field}", "f", None, "LN model", origin=FIXED, fixed=LN_REASON),
        Out("units/{unit}/mine", "f", 0, "what we add", origin=OURS),
        Out("units/{unit}/section", "group", None, "a lab section with its _attrs", origin=LAB),
    ),
)
TOY_REGISTRY = Registry([TOY])
U = "units/unit_001"


def write(path, datasets: dict, attributes: dict = ()) -> None:
    """An HDF5 file with ``datasets`` (path -> value, or (value, dtype)) and ``attributes``."""
    with h5py.File(path, "w") as h5:
        for key, value in datasets.items():
            value, dtype = value if isinstance(value, tuple) else (value, None)
            h5.create_dataset(key, data=value, dtype=dtype)
        for key, value in dict(attributes).items():
            owner, _, name = key.partition("@")
            h5.require_group(owner).attrs[name] = value


def classes(report) -> dict:
    return {key.path: key.cls for key in report.keys}


@pytest.fixture(scope="module")
def toy_pair(tmp_path_factory):
    """A lab file and ours with one key of every class; returns the two paths."""
    folder = tmp_path_factory.mktemp("toy_compare")
    area = np.linspace(1.0, 50.0, 40)
    trace32 = np.linspace(-1.0, 1.0, 30, dtype=np.float32)
    with_nan = np.array([1.0, np.nan, 3.0])
    vlen = h5py.string_dtype()
    common = {f"{U}/geometry/center": 3.0, f"{U}/geometry/with_nan": with_nan}
    lab = {**common,
           f"{U}/geometry/size": 2.0,
           f"{U}/geometry/area": area,
           f"{U}/geometry/trace": trace32,
           f"{U}/geometry/enabled": np.bool_(True),
           f"{U}/geometry/nan_here": np.array([np.nan, 2.0]),
           f"{U}/geometry/name": np.bytes_(b"ON-OFF"),
           f"{U}/geometry/labels": np.array([b"rgc", b"ac"]),
           f"{U}/geometry/counts": np.arange(3),
           f"{U}/geometry/spikes": np.arange(5),
           f"{U}/lnl/b": 1.0,
           f"{U}/lnl/rate": np.ones(4),
           f"{U}/lnl/a": 0.8,
           f"{U}/section/_attrs/n_trials": 3,
           f"{U}/section/_attrs/pad_margin": np.array([0.5, 0.5]),
           f"{U}/thing/x": 1.0,
           "extras/notes": ("lab only", vlen)}
    ours = {**common,
            f"{U}/geometry/size": 2.5,
            f"{U}/geometry/area": area * (1 + 1e-9),
            f"{U}/geometry/trace": trace32 * np.float32(1 + 2e-5),
            f"{U}/geometry/enabled": np.int64(1),
            f"{U}/geometry/nan_here": np.array([1.0, 2.0]),
            f"{U}/geometry/name": ("ON-OFF", vlen),
            f"{U}/geometry/labels": (["rgc", "ac"], vlen),
            f"{U}/geometry/counts": np.arange(4),
            f"{U}/lnl/b": 1.0 + math.log(4),
            f"{U}/lnl/a": 0.8,
            f"{U}/mine": 7.0,
            f"{U}/thing": 1.0}
    write(folder / "lab.h5", lab, {f"{U}@label": "rgc"})
    write(folder / "ours.h5", ours, {f"{U}@label": "rgc", f"{U}/section@n_trials": 3,
                                     f"{U}/section@pad_margin": np.array([0.5, 0.25])})
    return folder / "lab.h5", folder / "ours.h5"


def test_every_key_of_both_files_gets_its_class(toy_pair):
    report = compare_files(*toy_pair, registry=TOY_REGISTRY)
    G = f"{U}/geometry"
    assert classes(report) == {
        "extras": "missing", "extras/notes": "missing",                      # undeclared: a lab key
        "units": "equal", U: "equal", f"{U}@label": "equal", f"{G}": "equal",
        f"{G}/center": "equal",
        f"{G}/with_nan": "equal",                                            # NaN == NaN
        f"{G}/name": "equal", f"{G}/labels": "equal",                        # bytes vs str: same text
        f"{G}/area": "within_tolerance",                                     # float64, 1e-9 relative
        f"{G}/trace": "within_tolerance",                                    # float32, 2e-5 relative
        f"{G}/size": "differs", f"{G}/nan_here": "differs",
        f"{G}/enabled": "differs",                                           # bool vs int
        f"{G}/counts": "differs",                                            # shape
        f"{G}/spikes": "missing",
        f"{U}/lnl": "equal", f"{U}/lnl/a": "equal",
        f"{U}/lnl/b": "documented", f"{U}/lnl/rate": "documented",           # fixed: changed, or gone
        f"{U}/mine": "extra",
        f"{U}/section": "equal",
        f"{U}/section/_attrs": "differs",                                    # group vs attributes
        f"{U}/section/_attrs/n_trials": "differs", f"{U}/section/_attrs/pad_margin": "differs",
        f"{U}/thing": "differs",                                             # group vs dataset
        f"{U}/thing/x": "missing",
    }
    assert report.exit_code == 1
    assert report.counts == {"equal": 11, "within_tolerance": 2, "documented": 2, "differs": 8, "missing": 4,
                             "extra": 1}


def test_details_say_how_a_key_differs_and_give_the_fixed_reason(toy_pair):
    keys = {key.path: key for key in compare_files(*toy_pair, registry=TOY_REGISTRY).keys}
    G = f"{U}/geometry"
    assert keys[f"{G}/size"].detail == "value: 2.0 in LAB, 2.5 in OURS"
    assert keys[f"{G}/enabled"].detail.startswith("dtype family: bool (bool) in LAB, int (int64) in OURS")
    assert keys[f"{G}/counts"].detail == "shape: (3,) in LAB, (4,) in OURS"
    assert keys[f"{G}/nan_here"].detail.startswith("value: 1 of 2 elements differ (first at 0: nan in LAB, 1.0 in OURS")
    assert "rtol 1e-06" in keys[f"{G}/area"].detail and "rtol 0.0001" in keys[f"{G}/trace"].detail
    assert keys[f"{U}/lnl/b"].mark == f"lab, fixed: {LN_REASON}"
    assert keys[f"{U}/lnl/b"].detail == f"fixed: {LN_REASON}; value: 1.0 in LAB, {1 + math.log(4)!r} in OURS"
    assert keys[f"{U}/lnl/rate"].detail == f"fixed: {LN_REASON}; dataset only in LAB"
    assert (keys[f"{U}/mine"].mark, keys["extras/notes"].mark) == ("ours", None)
    attrs = keys[f"{U}/section/_attrs"]
    assert attrs.detail == (f"structure: group in LAB, attributes of {U}/section in OURS "
                            f"({U}/section@n_trials, {U}/section@pad_margin)")
    assert keys[f"{U}/section/_attrs/n_trials"].detail == \
        f"structure: dataset in LAB, attribute {U}/section@n_trials in OURS; same value"
    assert keys[f"{U}/section/_attrs/n_trials"].ours_path == f"{U}/section@n_trials"
    assert "; value: 1 of 2 elements differ (first at 1: 0.5 in LAB, 0.25 in OURS)" in \
        keys[f"{U}/section/_attrs/pad_margin"].detail
    assert keys[f"{U}/thing"].detail == "structure: group in LAB, dataset in OURS"
    assert f"{U}/section@n_trials" not in keys  # reported once, with the lab's key


def test_rtol_override_and_float32_tolerance(toy_pair):
    strict = {k.path: k.cls for k in compare_files(*toy_pair, registry=TOY_REGISTRY, rtol=1e-12).keys}
    assert strict[f"{U}/geometry/area"] == strict[f"{U}/geometry/trace"] == "differs"
    loose = {k.path: k.cls for k in compare_files(*toy_pair, registry=TOY_REGISTRY, rtol=0.3).keys}
    assert loose[f"{U}/geometry/size"] == "within_tolerance"   # 2.0 vs 2.5: 0.5 <= 0.3 * 2 + 0.3 * 2.5


def test_a_file_against_itself_is_all_equal_and_exits_0(toy_pair):
    report = compare_files(toy_pair[0], toy_pair[0], registry=TOY_REGISTRY)
    assert {key.cls for key in report.keys} == {"equal"} and report.exit_code == 0


def test_cli_exit_codes_json_and_one_line_errors(toy_pair, tmp_path, capsys):
    lab, ours = toy_pair
    assert main(["compare", str(lab), str(lab)]) == 0
    assert "result: nothing differs, nothing missing (exit 0)" in capsys.readouterr().out
    assert main(["compare", str(lab), str(ours), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    by_path = {key["path"]: key for key in report["keys"]}
    assert report["exit_code"] == 1 and report["counts"]["extra"] == 1
    assert len(by_path) == sum(report["counts"].values())
    assert by_path[f"{U}/mine"] == {"path": f"{U}/mine", "class": "extra", "mark": None,
                                    "detail": "dataset only in OURS"}  # the real schema does not declare it
    assert by_path[f"{U}/geometry/size"]["class"] == "differs"

    not_hdf5 = tmp_path / "notes.h5"
    not_hdf5.write_text("not a recording")
    for args, named in ([str(tmp_path / "absent.h5"), str(ours)], "absent.h5"), ([str(lab), str(not_hdf5)], "notes.h5"):
        assert main(["compare", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0] and err[0].startswith("error: ")
    assert "OURS file" in err[0] and "not an HDF5 file" in err[0]
    assert main(["compare", str(lab), str(ours), "--rtol", "-1"]) == 2


def test_summary_groups_keys_by_pattern_and_fits_a_screen(tmp_path):
    """40 units, each with its centre changed and 8 other lab keys of its own missing from ours."""
    units = [f"units/unit_{n:03d}" for n in range(1, 41)]
    lab = {f"{u}/geometry/center": float(n) for n, u in enumerate(units)}
    lab |= {f"{u}/geometry/k{k}": 1.0 for u in units for k in range(8)}
    lab |= {f"{u}/trials/{t}/spikes": np.arange(3) for u in units for t in range(3)}
    ours = {f"{u}/geometry/center": float(n) + 0.5 for n, u in enumerate(units)}
    ours |= {f"{u}/trials/{t}/spikes": np.arange(3) + (t == 2) for u in units for t in range(3)}
    write(tmp_path / "lab.h5", lab)
    write(tmp_path / "ours.h5", ours)
    report = compare_files(tmp_path / "lab.h5", tmp_path / "ours.h5", registry=TOY_REGISTRY)
    text = format_summary(report)
    lines = text.splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 110
    assert "      40 x [lab] units/{unit}/geometry/center" in lines
    assert "      40 x [no mark] units/{unit}/trials/{n}/spikes" in lines        # only trial 2 differs
    assert "           e.g. units/unit_001/geometry/center: value: 0.0 in LAB, 0.5 in OURS" in lines
    assert "missing (320 keys, 8 patterns):" in lines
    assert f"         ... {8 - PATTERNS_PER_CLASS} more patterns ({40 * (8 - PATTERNS_PER_CLASS)} keys): " \
           "--json lists all" in lines
    assert lines[-1] == "result: 80 differ, 320 missing (exit 1)"


# End to end: the real schema on the session's processed recording.

def _keys(h5) -> dict:
    """Every key of an output (written independently of the code under test)."""
    keys = {}

    def visit(name, obj):
        keys[name] = "group" if isinstance(obj, h5py.Group) else "dataset"
        keys.update({f"{name}@{a}": "attribute" for a in obj.attrs})

    h5.visititems(visit)
    keys.update({f"@{a}": "attribute" for a in h5.attrs})
    return keys


def _mark_of(key: str):
    out = find_out(REGISTRY, key)
    return out.origin if out else None


def test_an_output_against_itself_is_all_equal(processed, capsys):
    output = processed["inputs"].output_path
    assert main(["compare", str(output), str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    with h5py.File(output) as h5:
        assert {key["path"] for key in report["keys"] if key["class"] == "equal"} == set(_keys(h5))
    assert report["counts"]["equal"] == sum(report["counts"].values())
    declared = {key["path"]: find_out(REGISTRY, key["path"]) for key in report["keys"]}
    assert {key["path"]: key["mark"] for key in report["keys"]} == \
        {path: out.mark if out else None for path, out in declared.items()}  # each key's own mark


def test_a_lab_layout_file_names_exactly_the_planted_deviations(processed, tmp_path):
    """The lab's keys of our output (marked lab or fixed) written as the lab's file, with five plants."""
    output = processed["inputs"].output_path
    lab_file = tmp_path / "lab_layout.h5"
    with h5py.File(output) as ours, h5py.File(lab_file, "w") as lab:
        keys = _keys(ours)
        lab_keys = sorted(key for key in keys if _mark_of(key) in (LAB, FIXED))
        for key in lab_keys:
            _copy_key(ours, lab, key)
        units = sorted(ours["units"])
        soma = next(f"units/{u}/features/eimage_sta/geometry/center_row" for u in units
                    if np.isfinite(ours[f"units/{u}/features/eimage_sta/geometry/center_row"][()]))
        feature = ours["metadata/rf_sta_geometry/sta_feature_name"].asstr()[()]
        ln_b = next(key for key in (f"units/{u}/features/{feature}/sta_geometry/lnl/b" for u in units)
                    if key in ours and np.isfinite(ours[key][()]))
        floats = [k for k in lab_keys if keys[k] == "dataset" and _mark_of(k) == LAB and k != soma
                  and ours[k].dtype.kind == "f" and np.any(np.isfinite(ours[k][()]) & (ours[k][()] != 0))]
        perturbed = next(k for k in floats if ours[k].ndim >= 1 and ours[k].dtype == np.float64)  # 1e-9 shows
        retyped = next(k for k in floats if k != perturbed)

    # The soma centre is the lab's except where ours is NaN (an empty eimage): a changed number differs.
    assert find_out(REGISTRY, soma).fixed_where_nan and _mark_of(ln_b) == FIXED
    assert not find_out(REGISTRY, ln_b).fixed_where_nan
    with h5py.File(lab_file, "r+") as lab:
        lab[soma][()] = lab[soma][()] + 1                                           # (a) a lab value changed
        lab.create_dataset("pipeline/session_info/completed_steps",                 # (b) only the lab writes it
                           data=["load_recording", "extract_soma_geometry"], dtype=h5py.string_dtype())
        lab[ln_b][()] = lab[ln_b][()] + math.log(4)                                 # (c) the fixed 1/15 s bug
        lab[perturbed][...] = lab[perturbed][()] * (1 + 1e-9)                       # (d) float noise
        value = lab[retyped][()]
        del lab[retyped]
        lab.create_dataset(retyped, data=np.nan_to_num(value).astype(np.int64))     # (e) another dtype family

    report = compare_files(lab_file, output)
    by_class = {cls: {k.path for k in report.keys if k.cls == cls} for cls in report.counts}
    assert by_class["differs"] == {soma, retyped}
    assert by_class["missing"] == {"pipeline/session_info", "pipeline/session_info/completed_steps"}
    assert by_class["documented"] == {ln_b}
    assert by_class["within_tolerance"] == {perturbed}
    with h5py.File(lab_file) as lab:
        lab_file_keys = set(_keys(lab))
    planted = {soma, retyped, perturbed, ln_b, "pipeline/session_info", "pipeline/session_info/completed_steps"}
    assert by_class["equal"] == lab_file_keys - planted        # every other lab key (and their groups)
    assert by_class["extra"] == set(keys) - lab_file_keys      # ours: only extra
    documented = next(k for k in report.keys if k.path == ln_b)
    assert documented.detail.startswith(f"fixed: {find_out(REGISTRY, ln_b).fixed}; value: ")
    retyped_detail = next(k for k in report.keys if k.path == retyped).detail
    assert retyped_detail.startswith("dtype family: int (int64) in LAB, float")
    assert report.exit_code == 1


def _copy_key(source: h5py.File, target: h5py.File, key: str) -> None:
    """Copy one key (group, dataset or attribute) with its dtype; the owner of an attribute too."""
    owner, at, name = key.partition("@")
    if not at:
        if isinstance(source[key], h5py.Group):
            target.require_group(key)
        elif key not in target:
            target.create_dataset(key, data=source[key][()], dtype=source[key].dtype)
        return
    if owner and owner not in target:
        _copy_key(source, target, owner)
    (target[owner] if owner else target).attrs[name] = (source[owner] if owner else source).attrs[name]


def test_compound_values_are_compared_field_by_field(tmp_path):
    row = np.dtype([("channel", "i4"), ("gain", "f8"), ("label", "S8")])
    table = np.array([(1, 0.5, b"ch1"), (2, 0.25, b"ch2")], dtype=row)
    changed = table.copy()
    changed["gain"][1] = 0.75
    write(tmp_path / "lab.h5", {"metadata/table": table, "metadata/same": table})
    write(tmp_path / "ours.h5", {"metadata/table": changed, "metadata/same": table})
    keys = {k.path: k for k in compare_files(tmp_path / "lab.h5", tmp_path / "ours.h5", registry=TOY_REGISTRY).keys}
    assert keys["metadata/same"].cls == "equal"
    assert (keys["metadata/table"].cls, keys["metadata/table"].detail) == \
        ("differs", "field gain: value: 1 of 2 elements differ (first at 1: 0.25 in LAB, 0.75 in OURS), "
                    "max |LAB - OURS| 0.5 (0.667 of the scale 0.75)")


def test_a_fix_that_only_applies_where_ours_is_nan_covers_only_those_values(tmp_path):
    """The lab's sentinel (0, or -5) where we write NaN plus a status is documented; any other
    difference at the same key still differs."""
    registry = Registry([Step(
        name="toy_soma", position=1, upstream=(), reads=frozenset(), params=ToyParams, version="1",
        run=lambda ctx, p: {}, description="toy",
        outputs=(Out("units/{unit}/soma/center_row", "f", 0, "soma row", origin=FIXED, fixed_where_nan=True,
                     fixed="an empty eimage gives NaN plus a status, not (0, 0)"),),
    )])
    lab, ours = tmp_path / "lab.h5", tmp_path / "ours.h5"
    write(lab, {"units/unit_001/soma/center_row": 0.0, "units/unit_002/soma/center_row": 12.0})
    write(ours, {"units/unit_001/soma/center_row": np.nan, "units/unit_002/soma/center_row": 13.0})
    found = classes(compare_files(lab, ours, registry))
    assert found["units/unit_001/soma/center_row"] == "documented"
    assert found["units/unit_002/soma/center_row"] == "differs"


def test_a_key_the_lab_computes_in_float32_is_held_to_that_precision(tmp_path):
    """A float64 key whose lab value carries float32 precision (declared on the key) is within
    tolerance at 1e-5 relative; an undeclared float64 key at the same difference differs."""
    registry = Registry([Step(
        name="toy_ln", position=1, upstream=(), reads=frozenset(), params=ToyParams, version="1",
        run=lambda ctx, p: {}, description="toy",
        outputs=(Out("units/{unit}/lnl/threshold_g", "f", 0, "from float32 sums", origin=LAB, precision=1e-4),
                 Out("units/{unit}/lnl/a", "f", 0, "exact", origin=LAB)),
    )])
    lab, ours = tmp_path / "lab.h5", tmp_path / "ours.h5"
    write(lab, {f"{U}/lnl/threshold_g": 0.5, f"{U}/lnl/a": 0.5})
    write(ours, {f"{U}/lnl/threshold_g": 0.500005, f"{U}/lnl/a": 0.500005})
    found = classes(compare_files(lab, ours, registry))
    assert found[f"{U}/lnl/threshold_g"] == "within_tolerance" and found[f"{U}/lnl/a"] == "differs"
