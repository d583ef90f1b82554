"""Pipeline configuration: every external input and every step parameter, from one file.

A config file (TOML or YAML) holds the external inputs' options at the top level (each also a
flag: ``--stimuli``, ``--gsheet-csv``, ...; see :mod:`mea_pipeline.inputs`) and one table per step::

    stimuli = "/data/stimuli"
    playlist = "play_optimization_set6_ipRGC_manual"

    [steps.load_recording]
    duration_s = 120.0

    [steps.nwb_export]
    enabled = true     # an optional step runs only where enabled (or named in --steps)

Command-line flags override the file. The values actually used are recorded in each output
file's step records.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError
from .inputs import PATH
from .inputs import options as input_options

@dataclass(frozen=True)
class RecordingInputs:
    """One recording: its raw files (may be None once they went offline) and its output."""

    recording_id: str
    output_path: Path
    cmcr_path: Path | None = None
    cmtr_path: Path | None = None


@dataclass
class PipelineConfig:
    """The inputs and step parameters of a run.

    ``inputs`` holds the values of the input options (:func:`mea_pipeline.inputs.options`: each
    a config key and a flag), as given; read them as attributes (``config.stimuli`` is a Path,
    ``config.playlist`` its default when not given). The whole config stays plain JSON, so it
    can be a flow run's parameter on another machine (``--via-deployment``).
    """

    inputs: dict[str, Any] = field(default_factory=dict)
    # Set by the batch flow: the sheet snapshot it fetched once for every recording of the batch.
    sheet_snapshot: Path | None = None
    sheet_source: str | None = None
    # Plain values (``[steps.<name>]`` as read), checked at load.
    step_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    # Optional steps the config enables (``[steps.<name>] enabled = true``): 'all' includes them.
    enabled_steps: tuple[str, ...] = ()

    def __getattr__(self, name: str):
        # Only reached for names that are not fields: the input options.
        if name.startswith("_") or name == "inputs":
            raise AttributeError(name)
        option = input_options().get(name)
        if option is None:
            raise AttributeError(f"PipelineConfig has no input option {name!r}")
        return option.parse(self.inputs.get(name, option.default))

    def with_inputs(self, **values) -> "PipelineConfig":
        """A copy with these input options set (``config.with_inputs(stimuli=folder)``)."""
        unknown = set(values) - set(input_options())
        if unknown:
            raise KeyError(f"unknown input option(s) {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, inputs=self.inputs | values)

    def sheet_table(self) -> Path | None:
        """The sheet table recordings read: this batch's snapshot, else the ``--gsheet-csv`` export."""
        return self.sheet_snapshot or self.gsheet_csv

    def timeout_for(self, step) -> float | None:
        """Seconds after which the step's task is stopped: ``[timeouts] <step> = s``, else the step's
        own ``timeout_s``; None = no limit."""
        return self.timeouts.get(step.name, step.timeout_s)

    def params_for(self, step) -> Any:
        """The parameter dataclass instance for ``step`` (defaults for the values not configured)."""
        return build_params(step.params, self.step_params.get(step.name) or {}, f"[steps.{step.name}]")

    @classmethod
    def load(cls, path: str | Path | None, registry, overrides: dict | None = None) -> "PipelineConfig":
        """Read a TOML/YAML file (optional) and apply non-None ``overrides`` (flag values)."""
        raw: dict = read_config_file(path) if path else {}
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        keys = input_options()
        unknown = set(raw) - set(keys) - {"steps", "batch", "timeouts"}
        if unknown:
            raise InputError(
                f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                f"{', '.join(sorted(keys))}, [steps.<name>], [timeouts], [batch]"
            )
        unknown = set(overrides) - set(keys)
        if unknown:
            raise InputError(f"unknown input(s) {', '.join(sorted(unknown))}; inputs are {', '.join(keys)}")
        values = {key: raw[key] for key in keys if key in raw} | overrides
        config = cls(inputs={k: str(v) if keys[k].kind == PATH else v for k, v in values.items()})
        timeouts = raw.get("timeouts") or {}
        bad = [k for k, v in timeouts.items() if k not in registry.by_name or not isinstance(v, (int, float))]
        if bad:
            raise InputError(f"{path}: [timeouts] {', '.join(bad)}: use '<step name> = seconds'")
        config.timeouts = {k: float(v) for k, v in timeouts.items()}
        step_tables = raw.get("steps") or {}
        if not isinstance(step_tables, dict):
            raise InputError(f"{path}: 'steps' must be a table of step-name tables")
        enabled = []
        for name, table in step_tables.items():
            if name not in registry.by_name:
                raise InputError(f"{path}: [steps.{name}] is not a step; steps are {', '.join(registry.names())}")
            table = dict(table or {})
            if "enabled" in table:
                if _enabled(registry[name], table.pop("enabled"), f"{path}: [steps.{name}]"):
                    enabled.append(name)
            build_params(registry[name].params, table, f"{path}: [steps.{name}]")  # names a bad value now
            config.step_params[name] = table
        config.enabled_steps = tuple(enabled)
        return config


def _enabled(step, value, where: str) -> bool:
    """The value of an ``enabled`` key, which only an optional step takes."""
    if not step.optional:
        raise InputError(f"{where}: enabled: only optional steps can be enabled or disabled; "
                         f"{step.name} always runs (choose steps for one run with --steps)")
    if not isinstance(value, bool):
        raise InputError(f"{where}: enabled = {value!r}; give true or false")
    return value


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"config file {path} cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a table of keys")
    return data


def build_params(params_type: type, values: dict, where: str):
    """Instantiate a parameter dataclass, converting lists to tuples and naming bad fields."""
    names = {f.name: f for f in dataclasses.fields(params_type)}
    unknown = set(values) - set(names)
    if unknown:
        raise InputError(f"{where}: unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(names)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    for key, value in converted.items():
        expected = _expected_kind(names[key], value)
        if expected:
            raise InputError(f"{where}: {key} = {values[key]!r}; give {expected}")
    try:
        return params_type(**converted)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from exc


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expected_kind(field: dataclasses.Field, value) -> str | None:
    """What the parameter needs when ``value`` does not fit its default's type (None: it fits).

    A string where a number belongs would otherwise reach the step and fail it, or worse.
    """
    default = field.default
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if isinstance(default, float):
        return None if _is_number(value) else "a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a text in quotes"
    if isinstance(default, tuple) and all(_is_number(v) for v in default):
        any_length = "..." in str(field.type)
        fits = isinstance(value, tuple) and all(_is_number(v) for v in value) and (
            any_length or len(value) == len(default))
        return None if fits else (f"a list of numbers like {list(default)}" if any_length
                                  else f"a list of {len(default)} numbers like {list(default)}")
    return None


def params_json(params) -> dict:
    """Parameters as plain JSON values (tuples -> lists), stable for hashing."""
    return json.loads(json.dumps(dataclasses.asdict(params), default=str))
