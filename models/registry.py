"""The model registry: a name → how to build the model, its input spec, weights and paper.

Every family module contributes its entries here; ``load_scorer`` turns a name (or an exported
``.onnx`` file) into a ready :class:`~framescore.models.spec.Scorer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from framescore.errors import UsageError, WeightsError
from framescore.models import arod
from framescore.models.rules import RulesScorer
from framescore.models.spec import InputSpec, Scorer
from framescore.models.weights import load_into

MODELS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelInfo:
    """One registered model."""

    name: str
    paper: str
    summary: str
    spec: InputSpec
    build: Callable[[], nn.Module] | None = None
    make_scorer: Callable[[], Scorer] | None = None
    weights: str | None = None          # bundled weights file, relative to models/
    sha256: str | None = None
    needs_weights: bool = True
    default_rank: int = 0               # highest available rank is the default model
    outputs: tuple[str, ...] = ("score",)
    extra: dict = field(default_factory=dict)

    @property
    def bundled_path(self) -> Path | None:
        return MODELS_DIR / self.weights if self.weights else None

    @property
    def weights_available(self) -> bool:
        if not self.needs_weights:
            return True
        return self.bundled_path is not None and self.bundled_path.is_file()

    def parameters(self) -> int:
        """Number of parameters (counted on the meta device: nothing is allocated)."""
        if self.build is None:
            return 0
        with torch.device("meta"):
            module = self.build()
        return sum(p.numel() for p in module.parameters())


def _entries() -> list[ModelInfo]:
    return [
        ModelInfo(
            name="rules", paper="photographic rules (no learning)",
            summary="sharpness, exposure, contrast, colourfulness, noise; documented formula",
            spec=RulesScorer.spec, make_scorer=RulesScorer, needs_weights=False,
            default_rank=1,
            outputs=("score", "sharpness", "exposure", "contrast", "colourfulness",
                     "cleanliness")),
        ModelInfo(
            name="arod-resnet50", paper="Schwarz et al. 2018, AROD aesthetic space",
            summary="ResNet-50 pool5 → 1000-D encoding; score = L2 norm",
            spec=arod.SPEC, build=arod.ArodEncoder, outputs=("score", "encoding")),
    ]


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

        return OnnxScorer(Path(name))
    info = get(name)
    if info.make_scorer is not None:
        if weights:
            raise UsageError(f"model {name!r} takes no weights")
        return info.make_scorer()
    from framescore.scoring import TorchScorer

    _, module = build_module(name, weights)
    return TorchScorer(name, module, info.spec, device=device)
