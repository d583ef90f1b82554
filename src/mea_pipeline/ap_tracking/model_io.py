"""Loading the AP-tracking CNN weights: the lab's file or the packaged default, once per process.

A weight file is a plain state_dict of :class:`~mea_pipeline.ap_tracking.cnn.APTrackingCNN`
(the lab's ``CNN_3d_with_velocity_model*.pth`` or our ``ap_cnn_default.pth``), read with
``torch.load(..., weights_only=True)`` so that no pickled code runs, and loaded with
``strict=True``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from ..errors import InputError
from .packaged import default_model_path
from .cnn import APTrackingCNN

ARCHITECTURE = "the lab's CNN_3d_with_velocity architecture"
PACKAGED, GIVEN = "packaged", "given"   # where the weights of a run come from (weights_source)
_CACHE_SIZE = 4  # models kept per process (a handful of weight files x devices at most)

_cache: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
_cache_lock = threading.Lock()


class ModelError(InputError):
    """A weight file is missing, unreadable or made for another architecture."""



def weights_source(path: str | Path | None) -> str:
    """``'packaged'`` for the packaged default weights (``None``, or a file with their content, a copy
    included), else ``'given'``."""
    if path is None or model_fingerprint(path) == model_fingerprint(None):
        return PACKAGED
    return GIVEN


def resolve_device(device: str = "auto") -> torch.device:
    """Torch device for ``'auto'`` (CUDA when available, else CPU), ``'cpu'`` or ``'cuda'``.

    Raises
    ------
    InputError
        Unknown name, or ``'cuda'`` requested on a machine without CUDA.
    """
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device: {device!r} requested but this torch build/machine has no CUDA; "
                             f"use 'cpu' or 'auto'")
        return torch.device(name)
    raise InputError(f"device: unknown value {device!r}; use 'auto', 'cpu' or 'cuda'")


def model_fingerprint(path: str | Path | None = None) -> str:
    """SHA-256 (hex) of a weight file's bytes (``None``: the packaged default), for cache keys."""
    path = _existing(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(path: str | Path | None = None, device: str = "auto") -> torch.nn.Module:
    """The CNN with the given weights, in eval mode, loaded once per process.

    Parameters
    ----------
    path : str, Path or None
        State_dict file; ``None`` = the packaged default weights.
    device : str
        ``'auto'``, ``'cpu'`` or ``'cuda'`` (see :func:`resolve_device`).

    Returns
    -------
    APTrackingCNN
        Shared between callers with the same file (path, modification time and size) and
        device: do not modify it.

    Raises
    ------
    ModelError
        The file is missing, unreadable or not a state_dict of the lab's architecture.
    """
    path = _existing(path)
    target = resolve_device(device)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, str(target))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        model = _read(path, target)
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return model


def _existing(path: str | Path | None) -> Path:
    path = default_model_path() if path is None else Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"{path}: AP-tracking model file not found; give the lab's "
                         f"CNN_3d_with_velocity .pth or leave the model path empty for the packaged default")
    return path.resolve()


def _read(path: Path, device: torch.device) -> APTrackingCNN:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises many types (zip, pickle, EOF, runtime) for bad files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: not a readable torch weight file ({reason})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: holds a {type(state).__name__}, expected a plain state_dict of tensors "
                         f"of {ARCHITECTURE}")
    model = APTrackingCNN()
    problem = _architecture_mismatch(model.state_dict(), state)
    if problem:
        raise ModelError(f"{path}: {problem}; expected {ARCHITECTURE}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval().requires_grad_(False)


def _architecture_mismatch(expected: dict, found: dict) -> str:
    """One-line description of key and shape differences ('' when the state_dict fits)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} {tuple(found[k].shape)} instead of {tuple(v.shape)}"
             for k, v in expected.items() if k in found and found[k].shape != v.shape]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            shown = ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")
            parts.append(f"{label} {shown}")
    return "; ".join(parts)
