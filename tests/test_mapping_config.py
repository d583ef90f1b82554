"""Mapping CSV, --path-map, scan, and the config file."""

from pathlib import Path

import pytest

from mea_pipeline.config import PipelineConfig
from mea_pipeline.errors import InputError
from mea_pipeline.mapping import parse_path_map, read_mapping, recording_id, remap_path, scan
from mea_pipeline.steps.registry import Registry, Step

LAB_MAPPING = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mapping" / "pkl_to_cmtr_mapping.csv"


def test_recording_id_strips_trailing_dash():
    assert recording_id("2024.01.17-11.15.41-Rec-.cmtr") == "2024.01.17-11.15.41-Rec"
    assert recording_id(r"M:\x\2024.02.26-10.53.19-Rec-.cmtr") == "2024.02.26-10.53.19-Rec"


def test_path_map_rewrites_windows_drive():
    pairs = parse_path_map(["M:\\=/mnt/m/"])
    assert remap_path(r"M:\20240226_protocol_test\a-Rec-.cmtr", pairs) == Path("/mnt/m/20240226_protocol_test/a-Rec-.cmtr")
    assert remap_path(r"q:\x\b.cmcr", parse_path_map(["Q:\\=/data/q"])) == Path("/data/q/x/b.cmcr")
    with pytest.raises(InputError, match="PREFIX=REPLACEMENT"):
        parse_path_map(["nothing"])


@pytest.mark.skipif(not LAB_MAPPING.is_file(), reason="shared/ reference data not present")
def test_lab_mapping_csv():
    rows = read_mapping(LAB_MAPPING, parse_path_map(["M:\\=/mnt/m/", "Q:\\=/mnt/q/", "R:\\=/mnt/r/", "O:\\=/mnt/o/"]))
    assert len(rows) == 359
    rid, cmcr, cmtr = rows[0]
    assert rid == "2024.02.26-10.53.19-Rec"
    assert cmcr == Path("/mnt/m/20240226_protocol_test/2024.02.26-10.53.19-Rec.cmcr")
    assert all(str(c).startswith("/mnt/") for _, c, _ in rows)


def test_mapping_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="mapping CSV not found"):
        read_mapping(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("cmcr_path,cmtr\n")
    with pytest.raises(InputError, match="missing column.*cmtr_path"):
        read_mapping(bad)


def test_scan_pairs_and_reports_unmatched(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("2024.01.01-10.00.00-Rec.cmcr", "2024.01.01-10.00.00-Rec-.cmtr", "2024.01.02-10.00.00-Rec-.cmtr",
                 "2024.01.03-10.00.00-Rec.cmcr"):
        (tmp_path / "d" / name).write_bytes(b"")
    table, problems = scan([tmp_path])
    assert table["matched"].tolist() == [True, False]
    assert len(problems) == 2


def _toy_registry():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class P:
        gain: float = 1.0
        window: tuple = (-1, 2)

    def step(name, position, upstream=()):
        return Step(name, upstream, frozenset(), P, "1", lambda ctx, p: {}, (), name, position=position)
    return Registry([step("a", 1), step("b", 2, ("a",)), step("c", 3, ("b",)), step("d", 4)])


def test_registry_selection_and_dependents():
    registry = _toy_registry()
    assert [s.name for s in registry.select("1-2")] == ["a", "b"]
    assert [s.name for s in registry.select("4,a")] == ["a", "d"]
    assert registry.dependents("a") == ["b", "c"]
    with pytest.raises(InputError, match="unknown step 'x'"):
        registry.select("x")


def test_order_follows_dependencies_and_positions_only_break_ties():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class P:
        gain: float = 1.0

    def step(name, position, upstream=(), reads=frozenset()):
        return Step(name, upstream, reads, P, "1", lambda ctx, p: {}, (), name, position=position)

    # 'late' is declared first by position but reads 'b', which reads 'a' (positioned last).
    registry = Registry([step("late", 1, ("b",)), step("b", 2, ("a",)), step("a", 9), step("free", 3)])
    assert registry.names() == ["free", "a", "b", "late"]
    assert [registry.number(n) for n in registry.names()] == [1, 2, 3, 4]
    assert [s.name for s in registry.select("2-3")] == ["a", "b"]
    raw = Registry([step("reader", 1, reads={"cmcr"}), step("after", 2, ("reader",))])
    assert [s.name for s in raw.select("raw")] == ["reader"]
    assert [s.name for s in raw.select("offline")] == ["after"]
    with pytest.raises(ValueError, match="cycle"):
        Registry([step("x", 1, ("y",)), step("y", 2, ("x",))])
    with pytest.raises(ValueError, match="unknown upstream"):
        Registry([step("x", 1, ("nowhere",))])


def _with_optional_export():
    """The toy registry plus an optional step 'export' that reads 'c'."""
    import dataclasses

    registry = _toy_registry()
    registry.register(dataclasses.replace(registry["c"], name="export", upstream=("c",), position=5, optional=True))
    return registry


def test_an_optional_step_runs_only_where_enabled_or_named():
    registry = _with_optional_export()
    names = lambda spec, enabled=(): [s.name for s in registry.select(spec, enabled)]  # noqa: E731
    assert names(None) == names("all") == names("offline") == ["a", "b", "c", "d"]
    assert names(None, ("export",)) == names("offline", ("export",)) == ["a", "b", "c", "d", "export"]
    assert names("all,export") == ["a", "b", "c", "d", "export"]
    assert names("export") == names("5") == ["export"]
    assert registry.dependents("a") == ["b", "c", "export"]  # an upstream change reruns it where it runs
    with pytest.raises(InputError, match=r"5=export \(optional\)"):
        registry.select("nothing")


def test_config_enables_an_optional_step_and_refuses_enabled_elsewhere(tmp_path):
    registry = _with_optional_export()
    toml = tmp_path / "c.toml"
    toml.write_text("[steps.export]\nenabled = true\ngain = 2.0\n")
    config = PipelineConfig.load(toml, registry)
    assert config.enabled_steps == ("export",)
    assert config.params_for(registry["export"]).gain == 2.0  # 'enabled' is no parameter: not in the cache key
    assert config.step_params["export"] == {"gain": 2.0}
    toml.write_text("[steps.export]\nenabled = false\n")
    assert PipelineConfig.load(toml, registry).enabled_steps == ()
    toml.write_text("[steps.b]\nenabled = true\n")
    with pytest.raises(InputError, match=r"\[steps.b\]: enabled: only optional steps"):
        PipelineConfig.load(toml, registry)
    toml.write_text('[steps.export]\nenabled = "yes"\n')
    with pytest.raises(InputError, match=r"enabled = 'yes'; give true or false"):
        PipelineConfig.load(toml, registry)


def test_config_file_toml_and_yaml(tmp_path):
    registry = _toy_registry()
    toml = tmp_path / "c.toml"
    toml.write_text('stimuli = "/s"\nplaylist = "p"\n[steps.b]\ngain = 2.5\nwindow = [-3, 4]\n[timeouts]\na = 60\n')
    config = PipelineConfig.load(toml, registry, {"playlist": "flag wins"})
    assert config.stimuli == Path("/s") and config.playlist == "flag wins"
    assert config.params_for(registry["b"]).window == (-3, 4) and config.timeout_for(registry["a"]) == 60
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("steps:\n  b:\n    gain: 3\n")
    assert PipelineConfig.load(yaml_file, registry).params_for(registry["b"]).gain == 3


def test_config_errors_name_key(tmp_path):
    registry = _toy_registry()
    bad = tmp_path / "c.toml"
    bad.write_text("[steps.b]\ngainz = 1\n")
    with pytest.raises(InputError, match=r"\[steps.b\]: unknown parameter\(s\) gainz"):
        PipelineConfig.load(bad, registry)
    bad.write_text("stimulus = 1\n")
    with pytest.raises(InputError, match="unknown key.*stimulus"):
        PipelineConfig.load(bad, registry)
