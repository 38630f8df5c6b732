"""The model registry: a name → how to build the model, its input spec, weights and paper.

Every family module contributes its entries here; ``load_scorer`` turns a name (or an exported
``.onnx`` file) into a ready :class:`~framescore.models.spec.Scorer`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from framescore.errors import UsageError, WeightsError
from framescore.models.spec import ModelInfo, Scorer
from framescore.models.weights import load_into

# Each family module offers ``entries() -> list[ModelInfo]``; a module not written yet is skipped.
FAMILIES = ("rules", "arod", "rapid", "relative", "kong", "weighted", "mobile")


def _entries() -> list[ModelInfo]:
    out: list[ModelInfo] = []
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"framescore.models.{family}")
        except ModuleNotFoundError as exc:
            if exc.name == f"framescore.models.{family}":
                continue
            raise
        out.extend(module.entries())
    return out


REGISTRY: dict[str, ModelInfo] = {m.name: m for m in _entries()}


def get(name: str) -> ModelInfo:
    """The registry entry called ``name``; an unknown name is a one-line :class:`UsageError`."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UsageError(f"unknown model {name!r} (known: {known}; "
                         "or a path to an exported .onnx file)") from None


def default_model() -> str:
    """The highest-ranked model whose weights are available."""
    usable = [m for m in REGISTRY.values() if m.weights_available and m.default_rank > 0]
    return max(usable, key=lambda m: m.default_rank).name


def build_module(name: str, weights: str | Path | None = None) -> tuple[ModelInfo, nn.Module]:
    """Build a torch model and load its weights (``weights`` or the bundled file)."""
    info = get(name)
    if info.build is None:
        raise UsageError(f"model {name!r} has no neural network (nothing to load)")
    module = info.build()
    path = Path(weights) if weights else info.bundled_path
    if path is None or not path.is_file():
        if weights:
            raise WeightsError(f"{weights}: weights file not found")
        if info.needs_weights:
            raise WeightsError(f"model {name!r} needs weights: pass --weights FILE "
                               "(a checkpoint from `framescore train` or a converted release)")
    else:
        load_into(module, path, sha256=None if weights else info.sha256)
    return info, module.eval()


def load_scorer(name: str | None = None, weights: str | Path | None = None,
                device: str | torch.device = "cpu") -> Scorer:
    """A ready scorer for a registry name (default model when None) or an ``.onnx`` file."""
    name = name or default_model()
    if name.endswith(".onnx"):
        from framescore.export.runtime import OnnxScorer

        if weights:
            raise UsageError("an exported .onnx model carries its weights; --weights does not "
                             "apply")
        return OnnxScorer(Path(name), device=torch.device(device).type)
    info = get(name)
    if info.make_scorer is not None:
        if weights:
            raise UsageError(f"model {name!r} takes no weights")
        return info.make_scorer()
    from framescore.scoring import TorchScorer

    _, module = build_module(name, weights)
    return TorchScorer(name, module, info.spec, device=device)
