"""Keys of the artifacts the pipeline makes (a batch's summary, a recording's QC report)."""

from __future__ import annotations

import re


def artifact_key(prefix: str, name: str) -> str:
    """``<prefix>-<name>`` as an artifact key: Prefect takes lowercase letters, digits and dashes only."""
    return f"{prefix}-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
