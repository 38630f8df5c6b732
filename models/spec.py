"""What a model expects as input, and the interface every scorer offers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
class TrainingSpec:
    """How :mod:`framescore.train` trains a model, and what its paper reports: the contract
    between the zoo and the recipes (one recipe per paper family, ``framescore.train.recipes``).

    ``recipes`` names the recipes that can train the model, the first being the one
    ``framescore train MODEL`` uses (``--recipe`` picks another). The other fields say what
    the paper's model is, for the recipe to build the matching data, loss and test.
    """

    recipes: tuple[str, ...]
    task: str = ""                      # binary, style, pairs, regression, histogram, triplets...
    loss: str = ""                      # the paper's loss, named as in framescore.train.losses
    #: the paper's training settings (optimizer, lr, batch size...), the recipe's defaults
    paper_settings: Mapping[str, Any] = field(default_factory=dict)
    #: the paper's figures by key (``framescore evaluate`` prints ours beside them)
    reported: Mapping[str, Any] = field(default_factory=dict)
    #: two-column nets: the input of each column ("global", "local"); None: ``spec`` alone
    views: Mapping[str, InputSpec] | None = None
    weighted: bool = False              # Jin: the loss weighs rare ratings up
    pairs: bool = False                 # Kong: Siamese pairs with the rank loss
    attributes: tuple[str, ...] = ()    # Kong: the attribute regressors
    frozen: str = ""                    # RDCNN: the column kept fixed, in words
    imagenet: str | None = None         # the ImageNet backbone the paper starts from
    score_scale: tuple[float, float] | None = None   # the range of the paper's score
    styles: tuple[str, ...] = ()        # RAPID's style column: the style names
    train_resize: int = 0               # RAPID: the resize before the random crop
    test_views: int = 0                 # RAPID: random views averaged per test image

    @property
    def recipe(self) -> str:
        """The recipe ``framescore train`` uses by default."""
        return self.recipes[0]


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
    # how framescore.train trains it (None: not trainable)
    training: TrainingSpec | None = None
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


#: zoo module (``rules``, ``mobile``...) → the functions that build its registry entries
BUILDERS: dict[str, list[Callable[[], ModelInfo | list[ModelInfo]]]] = {}


def register_model(fn: Callable[[], ModelInfo | list[ModelInfo]]
                   ) -> Callable[[], ModelInfo | list[ModelInfo]]:
    """Decorator: ``fn`` builds registry entries (one :class:`ModelInfo` or a list) of the zoo
    module it is defined in. The catalogue (:mod:`framescore.models.catalogue`) is written from
    every registered builder of the modules it lists, and a test checks ``catalogue.json``
    against them."""
    family = fn.__module__.rsplit(".", 1)[-1]
    BUILDERS.setdefault(family, []).append(fn)
    return fn


def registered(family: str) -> list[ModelInfo]:
    """The entries of zoo module ``family`` (imported by the caller), in registration order."""
    out: list[ModelInfo] = []
    for fn in BUILDERS.get(family, ()):
        made = fn()
        out.extend(made if isinstance(made, list) else [made])
    return out
