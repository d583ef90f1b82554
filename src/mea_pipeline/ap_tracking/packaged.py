"""Where the packaged AP-tracking weights are, without importing torch.

A cache-key check (a skip, ``--recheck``) fingerprints the weights and must not pay seconds for torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_model_path() -> Path:
    """Path of the packaged default weights (trained on synthetic data, see ``ap_training.training``)."""
    return Path(str(resources.files("mea_pipeline").joinpath("data", "ap_cnn_default.pth")))
