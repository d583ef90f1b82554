"""The parameter reference, generated from the declarations: every input option and step parameter.

``mea-pipeline params`` prints it and ``docs/output_schema.md`` ends with it. An input option is a
top-level key of the config file and a flag of every processing command; a step parameter is a
key of ``[steps.<step>]``. Defaults are read from the Params dataclasses, where they are written.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

from .inputs import INPUTS


def field_docs(params_type: type) -> dict[str, str]:
    """Descriptions of a Params dataclass's fields from the ``Attributes`` section of its NumPy-style
    docstring, and its base classes' for inherited fields; fields no docstring describes are left out.

    An entry is a ``name : type`` line (or ``name_a, name_b : type``, one description for both)
    at the section's indentation, followed by its description, indented further; the description's
    lines are joined into one.
    """
    docs: dict[str, str] = {}
    for cls in reversed(params_type.__mro__):
        docs |= _docstring_fields(cls)
    return docs


def _docstring_fields(cls: type) -> dict[str, str]:
    # A dataclass without a docstring gets its signature as one: it has no Attributes section.
    lines = inspect.cleandoc(cls.__dict__.get("__doc__") or "").splitlines()
    if "Attributes" not in lines:
        return {}
    docs: dict[str, str] = {}
    names: list[str] = []
    for line in lines[lines.index("Attributes") + 2:]:  # past the header's underline
        if line[:1].isspace():
            for name in names:
                docs[name] = (docs[name] + " " + line.strip()).strip()
        elif match := re.fullmatch(r"(\w+(?:\s*,\s*\w+)*)\s*:\s*.+", line):
            names = re.split(r"\s*,\s*", match[1])
            docs |= dict.fromkeys(names, "")
        elif line:
            break  # the next section
    return docs


def parameter_rows(registry) -> list[dict]:
    """One row per step parameter: step, name, type, default, description."""
    rows = []
    for step in registry:
        docs = field_docs(step.params)
        for field in dataclasses.fields(step.params):
            default = field.default if field.default is not dataclasses.MISSING else (
                field.default_factory() if field.default_factory is not dataclasses.MISSING else None)
            rows.append({"step": step.name, "name": field.name, "type": _type_name(field.type),
                         "default": default, "doc": docs.get(field.name, "")})
    return rows


def input_rows(registry) -> list[dict]:
    """One row per input option: input, config key, flag, default, help, the steps that read it."""
    readers: dict[str, list[str]] = {}
    for step in registry:
        for name in step.reads:
            readers.setdefault(name, []).append(step.name)
    return [{"input": spec.name, "key": option.key, "flag": option.flag, "default": option.default,
             "help": option.help, "read_by": readers.get(spec.name, [])}
            for spec in INPUTS.values() for option in spec.options]


def render_markdown(registry) -> str:
    """Both tables as Markdown."""
    lines = ["## Inputs", "",
             "Top-level keys of the config file; each is also a flag of every processing command.", "",
             "| key | flag | default | read by | meaning |", "|---|---|---|---|---|"]
    lines += [f"| `{r['key']}` | `{r['flag']}` | {_value(r['default'])} | {', '.join(r['read_by']) or '-'} | "
              f"{r['help']} |" for r in input_rows(registry)]
    lines += ["", "## Step parameters", "",
              "Keys of `[steps.<step>]` in the config file; every value used is stored in the step's record.", "",
              "| step | parameter | type | default | meaning |", "|---|---|---|---|---|"]
    lines += [f"| {r['step']} | `{r['name']}` | {r['type']} | {_value(r['default'])} | {r['doc'] or '-'} |"
              for r in parameter_rows(registry)]
    return "\n".join(lines) + "\n"


def render_text(registry) -> str:
    """Both tables as plain text for the terminal."""
    lines = ["Inputs (config key / flag = default; read by)"]
    lines += [f"  {r['key']:<22} {r['flag']:<24} = {_value(r['default'], quote=False):<36} "
              f"{', '.join(r['read_by']) or '-'}" for r in input_rows(registry)]
    lines += ["", "Step parameters ([steps.<step>] key = default)"]
    step = None
    for r in parameter_rows(registry):
        if r["step"] != step:
            step = r["step"]
            lines.append(f"  [steps.{step}]")
        doc = f"  # {r['doc']}" if r["doc"] else ""
        lines.append(f"    {r['name']} = {_value(r['default'], quote=False)}{doc}")
    return "\n".join(lines) + "\n"


def _type_name(annotation) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _value(value, quote: bool = True) -> str:
    if value is None:
        return "-" if quote else "(none)"
    text = repr(list(value)) if isinstance(value, tuple) else repr(value)
    return f"`{text}`" if quote else text
