"""The AP-tracking CNN weights (``--ap-model``; default: the packaged weights) and the device they run on.

Fingerprint: the weights' content and the device. Pre-flight loads them strictly into the lab's
architecture on the configured device.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .declaration import PATH, TEXT, ExternalInput, InputOption, content_fingerprint


def default_ap_model_path() -> Path:
    """The packaged default CNN weights. Named here, not in ``ap_tracking``, whose import loads
    torch: a cache-key check (a skip, ``--recheck``) must not pay seconds for it."""
    return Path(str(resources.files("mea_pipeline").joinpath("data", "ap_cnn_default.pth")))


def _check_batch(report, config) -> None:
    # torch is imported only when a selected step reads the weights.
    from ..ap_tracking.model_io import load_model

    report.attempt(load_model, config.ap_model, config.device)


AP_MODEL = ExternalInput(
    "ap_model", "AP-tracking CNN weights (--ap-model; default: the packaged weights) and --device",
    fingerprint=lambda rec, config: content_fingerprint(config.ap_model or default_ap_model_path())
    | {"device": config.device},
    options=(InputOption("ap_model", PATH, "AP-tracking CNN weights (default: the packaged weights)"),
             InputOption("device", TEXT, "auto, cpu or cuda (AP-tracking CNN)", "auto")),
    check_batch=_check_batch)
