"""The scorer layer: a registered model (or an exported ``.onnx`` file) made ready to score.

:func:`load_scorer` is the one place a name becomes a :class:`Scorer`:

* ``rules`` → :class:`~framescore.scorers.rules.RulesScorer` (numpy; torch is never imported);
* ``path/to/model.onnx`` → :class:`~framescore.scorers.onnx.OnnxScorer` (onnxruntime);
* a network on the CPU with its bundled weights and a verified ONNX export beside them →
  :class:`~framescore.scorers.onnx.OnnxScorer` on that export (several times faster than
  PyTorch on a CPU, and checked against it by the tests);
* otherwise → :class:`~framescore.scorers.torch.TorchScorer` (CUDA, given weights, or
  ``runtime="torch"``).

Every scorer says what ran it: ``runtime`` (``numpy``, ``onnxruntime`` or ``torch``) and
``source`` (the weights or ONNX file, None for ``rules``). Importing this package is cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from framescore.errors import UsageError, WeightsError
from framescore.hashing import sha256_of
from framescore.models.registry import build_module, default_model, entry
from framescore.models.spec import Scorer
from framescore.scorers.device import check_device, cuda_possible, device_type, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["Runtime", "Scorer", "load_scorer", "provenance", "resolve_device"]

Runtime = Literal["auto", "torch", "onnxruntime"]


def provenance(scorer: Scorer) -> dict[str, str | None]:
    """What scored: the runtime (``numpy``, ``onnxruntime``, ``torch``), the file it ran from
    (None for ``rules``) and the device, as the JSON outputs record them."""
    device = getattr(scorer, "device", None)
    return {"runtime": getattr(scorer, "runtime", None), "source": getattr(scorer, "source", None),
            "device": str(device) if device is not None else "cpu"}


def import_object(path: str) -> object:
    """``"package.module:attribute"`` → the attribute."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def _bundled_onnx(info) -> Path | None:  # noqa: ANN001 - a catalogue entry or a ModelInfo
    """The entry's verified ONNX export when it is present and intact."""
    path = info.onnx_path
    if path is None or not path.is_file() or not _onnxruntime_available():
        return None
    if info.onnx_sha256 and sha256_of(path).lower() != info.onnx_sha256.lower():
        raise WeightsError(f"{path}: checksum mismatch; the bundled ONNX export is corrupt "
                           "(reinstall framescore)")
    return path


def load_scorer(name_or_file: str | Path | None = None, weights: str | Path | None = None,
                device: str | torch.device = "auto", runtime: Runtime = "auto") -> Scorer:
    """A ready scorer for a registry name (the default model when None) or an ``.onnx`` file.

    ``device``: ``auto`` (CUDA when there), ``cpu`` or ``cuda``. ``runtime``: ``auto`` picks
    the fastest verified one for the device (see the module docstring); ``torch`` or
    ``onnxruntime`` insist. Bad names, files and combinations are one-line
    :class:`~framescore.errors.FramescoreError` s.
    """
    if not isinstance(device, str):
        device = str(device)
    check_device(device)
    name = str(name_or_file) if name_or_file is not None else default_model()
    if name.endswith(".onnx"):
        from framescore.scorers.onnx import OnnxScorer

        if weights:
            raise UsageError("an exported .onnx model carries its weights; --weights does not "
                             "apply")
        if runtime == "torch":
            raise UsageError("an exported .onnx model runs in onnxruntime, not torch")
        if device_type(device) == "cuda":
            resolve_device(device)       # a clear error when there is no GPU
        return OnnxScorer(Path(name), device=device)
    info = entry(name)
    if info.scorer is not None:          # a model without a network (rules)
        if weights:
            raise UsageError(f"model {name!r} takes no weights")
        if runtime != "auto":
            raise UsageError(f"model {name!r} has its own scorer; --runtime does not apply")
        return import_object(info.scorer)()
    if device == "auto" and not cuda_possible():
        device = "cpu"                   # no GPU driver: no need to import torch to ask
    dev = resolve_device(device) if device_type(device) != "cpu" else None
    on_cpu = dev is None or dev.type == "cpu"
    if runtime == "onnxruntime" or (runtime == "auto" and on_cpu and weights is None):
        path = _bundled_onnx(info) if weights is None else None
        if path is not None and on_cpu:
            from framescore.scorers.onnx import OnnxScorer

            return OnnxScorer(path, device="cpu", expect=name)
        if runtime == "onnxruntime":
            raise UsageError(f"model {name!r} has no ONNX export bundled for this device"
                             + (" (given weights run in torch)" if weights else "")
                             + "; write one with `framescore export`")
    from framescore.scorers.torch import TorchScorer

    full, module = build_module(name, weights)
    source = Path(weights) if weights else full.bundled_path
    return TorchScorer(name, module, full.spec, device=dev or "cpu", source=source)
