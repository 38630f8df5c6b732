"""What a model expects as input, and the interface every scorer offers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent

View = Literal["warp", "center", "pad", "patch"]
# how images are shrunk to the input: "antialias", the training resize of every learned model
# (framescore.preprocess.resize); "area", swscale's box filter in one step (cheaper; for the
# untrained rules scorer, which reads every frame of a video)
Resample = Literal["antialias", "area"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """How images become a model's input tensor.

    ``x = (rgb / 255 - mean) / std`` per channel, after the image is brought to
    ``height`` x ``width`` by ``view`` (warp: resize the whole image ignoring aspect;
    center: resize the short side then centre-crop; pad: letterbox; patch: a crop of the
    full-resolution image). ``resample``: the resize of every path, on every device (see
    :func:`framescore.preprocess.resize`).
    """

    height: int
    width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    view: View = "warp"
    resample: Resample = "antialias"

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)


@runtime_checkable
class Scorer(Protocol):
    """Anything that turns a batch of images into scores.

    ``score_batch`` takes RGB uint8 images of shape ``(N, H, W, 3)`` already brought to
    ``spec.size`` by ``spec.view`` and returns a dict with at least ``"score"`` (shape ``(N,)``,
    higher is better) plus the model's extras (``"std"``, ``"histogram"``, ``"encoding"``...).
    """

    name: str
    spec: InputSpec

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class ModelInfo:
    """One registered model: what it is, what it takes, where its weights are.

    A neural model has ``build`` (``() -> torch.nn.Module``). A model without a network names
    the scorer that computes it in ``scorer`` and, when it can be exported, a torch module
    computing the same function in ``port`` (both ``"module:attribute"`` import paths, resolved
    by the scorer layer and the exporters; the zoo imports neither).
    """

    name: str
    paper: str
    summary: str
    spec: InputSpec
    build: Callable[[], Any] | None = None          # () -> torch.nn.Module
    scorer: str | None = None           # import path of the scorer of a model without a network
    port: str | None = None             # import path of its torch port (for export)
    weights: str | None = None          # bundled weights file, relative to models/
    sha256: str | None = None
    onnx: str | None = None             # verified ONNX export of the bundled weights (models/)
    onnx_sha256: str | None = None
    needs_weights: bool = True
    default_rank: int = 0               # highest available rank is the default model
    outputs: tuple[str, ...] = ("score",)
    score_meaning: str | None = None    # what the score means, when more than "higher is better"
    license: str | None = None          # the weights' licence, when known
    family: str = ""                    # the zoo module the entry comes from (set by the registry)
    # training recipe settings (the recipes' contract, read by framescore.train)
    extra: dict = field(default_factory=dict)
    card: str | None = None             # model card file, relative to models/
    # frames a second the key-frames job scores when the user does not say (None: every frame)
    video_fps: float | None = 5.0

    @property
    def bundled_path(self) -> Path | None:
        return MODELS_DIR / self.weights if self.weights else None

    @property
    def onnx_path(self) -> Path | None:
        return MODELS_DIR / self.onnx if self.onnx else None

    @property
    def weights_available(self) -> bool:
        if not self.needs_weights:
            return True
        return self.bundled_path is not None and self.bundled_path.is_file()

    def parameters(self) -> int:
        """Number of parameters (counted on the meta device: nothing is allocated)."""
        if self.build is None:
            return 0
        import torch

        with torch.device("meta"):
            module = self.build()
        return sum(p.numel() for p in module.parameters())
