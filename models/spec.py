"""What a model expects as input, and the interface every scorer offers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

View = Literal["warp", "center", "pad", "patch"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """How images become a model's input tensor.

    ``x = (rgb / 255 - mean) / std`` per channel, after the image is brought to
    ``height`` x ``width`` by ``view`` (warp: resize the whole image ignoring aspect;
    center: resize the short side then centre-crop; pad: letterbox; patch: a crop of the
    full-resolution image).
    """

    height: int
    width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    view: View = "warp"

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


@dataclass
class ScoreBatch:
    """Scores of a batch of frames, with the model's extras."""

    score: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
