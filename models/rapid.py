"""RAPID (Lu, Lin, Jin, Yang & Wang 2014): SCNN, DCNN and RDCNN aesthetics classifiers.

SCNN column (trained from scratch): conv1 64 x 11 x 11 stride 2 → ReLU → max-pool 3/2 → LRN;
conv2 64 x 5 x 5 → ReLU → max-pool 3/2 → LRN; conv3 64 x 3 x 3; conv4 64 x 3 x 3; fc 1000;
fc 256 (ReLU and dropout 0.5 after each fc); a softmax over {low, high} on top. At 224 x 224
the last conv map is 64 x 26 x 26, so fc 1000 holds 43.3 M of the column's 43.7 M parameters.

Registered models (all 224 x 224, ImageNet mean/std, trained with :func:`rapid_cross_entropy`
on AVA's δ = 0 binary labels; score = P(high)):

``rapid-scnn`` (global warp), ``rapid-scnn-center``, ``rapid-scnn-pad``, ``rapid-scnn-patch``
    one column on the named view.
``rapid-style``
    the style column (the SCNN column with 32 filters in conv1 and conv4) with a 14-way
    softmax over AVA's styles, on local patches (the view the paper's style mAP 56.81 comes
    from); its column regularizes ``rapid-rdcnn-style``.
``rapid-dcnn``
    a global-warp column and a local-patch column, independent up to fc256, concatenated
    (512) → one 2-way classifier.
``rapid-rdcnn-style`` / ``rapid-rdcnn-semantic``
    DCNN plus a frozen third column whose features join the concatenation; only the
    aesthetic columns and the classifier train. Style: the ``rapid-style`` column (fc256; half
    the filters in conv1 and conv4, Table IV) on the local patch, loaded with
    :func:`load_style_column`. Semantic: an ImageNet AlexNet (torchvision weights via
    :func:`load_imagenet_backbone`) + fc256, fine-tuned to aesthetics first
    (:meth:`RDCNN.tune_semantic`) and installed frozen (:func:`load_semantic_column`), on the
    global warp. Biases learn at twice the weights' rate (the recipe's parameter groups).

Two views, one tensor. Multi-column nets take the two views through ``forward_views(global,
local)`` — that is what training and test-time averaging call. ``forward(x)`` takes ONE batch
(what scoring and export need) and feeds the global warp to both columns: a deployment
approximation (the local column then sees a down-sampled whole image rather than a
full-resolution patch). A crop of the warped tensor would be no closer to the training
distribution (it is neither full resolution nor the whole image), so we keep the simplest,
export-friendly choice and say so in the model card.

Our choices where the paper is silent: pool 3 x 3 stride 2, AlexNet's LRN constants (size 5,
α 1e-4, β 0.75, k 2), ImageNet mean/std normalization, 256 → random 224 crops for training;
for scoring the whole image is warped straight to 224 (no 256 → 224 centre crop), and
:func:`random_views` + :func:`average_over_views` give the paper's averaging over random
views (50 in the paper).

Every net takes a ``size`` (default 224, the paper's): the side of the square input its columns
are built for. Only the fc1000 layers depend on it (their input is the last conv map,
64 x s x s); a smaller size gives a much smaller net for tests and quick experiments, and the
registry's nets and their weights are the 224 ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from framescore.errors import UsageError, WeightsError
from framescore.models.kong import AlexNetTrunk
from framescore.models.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    ModelInfo,
    TrainingSpec,
    View,
    register_model,
)
from framescore.models.weights import read_state_dict

SIZE = 224
TRAIN_RESIZE = 256
TEST_VIEWS = 50
STYLES = ("Complementary_Colors", "Duotones", "HDR", "Image_Grain", "Light_On_White",
          "Long_Exposure", "Macro", "Motion_Blur", "Negative_Image", "Rule_of_Thirds",
          "Shallow_DOF", "Silhouettes", "Soft_Focus", "Vanishing_Point")


def spec_for(view: View) -> InputSpec:
    """The 224 x 224 input spec of a RAPID column on ``view``."""
    return InputSpec(height=SIZE, width=SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD, view=view)


GLOBAL_SPEC = spec_for("warp")
LOCAL_SPEC = spec_for("patch")


def _conv_out(size: int, conv1_padding: int) -> int:
    size = (size + 2 * conv1_padding - 11) // 2 + 1      # conv1, stride 2
    size = (size - 3) // 2 + 1                            # pool1
    return (size - 3) // 2 + 1                            # conv2 keeps the size; pool2


class ScnnColumn(nn.Module):
    """One RAPID column: ``(N, 3, size, size)`` → fc256 features ``(N, 256)``.

    ``conv1_padding`` = 3 gives the relative-aesthetics variant ("224 padded by 3"); ``size``
    (224) is the input side the fc1000 layer is built for; ``conv1`` / ``conv4`` are those
    layers' filter counts (64; the style column has half, 32, in both: Table IV).
    """

    out_features = 256

    def __init__(self, conv1_padding: int = 0, size: int = SIZE, conv1: int = 64,
                 conv4: int = 64) -> None:
        super().__init__()
        side = _conv_out(size, conv1_padding)
        self.convs = nn.Sequential(
            nn.Conv2d(3, conv1, 11, stride=2, padding=conv1_padding), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(conv1, 64, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(64, conv4, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(conv4 * side * side, 1000), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(1000, 256), nn.ReLU(inplace=True), nn.Dropout(0.5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x))


def _binary(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    prob = torch.softmax(logits, dim=1)[:, 1]
    return {"score": prob, "prob_high": prob, "logits": logits}


class SCNN(nn.Module):
    """Single-column RAPID net: ``forward(x)`` → score = prob_high = P(high), logits (N, 2).

    Training: ``rapid_cross_entropy(model(x)["logits"], labels)``; ``features(x)`` → fc256.
    ``size``: the input side (224, the paper's).
    """

    def __init__(self, classes: int = 2, size: int = SIZE, half: bool = False) -> None:
        super().__init__()
        self.column = style_column(size) if half else ScnnColumn(size=size)
        self.classifier = nn.Linear(ScnnColumn.out_features, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.column(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.column(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return _binary(self.logits(x))


class StyleSCNN(SCNN):
    """The SCNN column with a 14-way softmax over AVA's photographic styles.

    ``forward(x)`` → ``style_probs`` (N, 14) in :data:`STYLES` order, ``logits``, and
    ``score`` = the top style's probability (a confidence, not an aesthetic score).
    """

    def __init__(self, size: int = SIZE) -> None:
        super().__init__(classes=len(STYLES), size=size, half=True)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.logits(x)
        probs = torch.softmax(logits, dim=1)
        return {"score": probs.max(dim=1).values, "style_probs": probs, "logits": logits}


class DCNN(nn.Module):
    """Double-column RAPID net: global warp column + local patch column → one classifier.

    ``forward_views(global, local)`` for training and test-time averaging; ``forward(x)``
    feeds ``x`` to both columns (deployment approximation, see the module docstring).
    ``size``: the input side of both views (224, the paper's).
    """

    def __init__(self, size: int = SIZE) -> None:
        super().__init__()
        self.global_column = ScnnColumn(size=size)
        self.local_column = ScnnColumn(size=size)
        self.classifier = nn.Linear(2 * ScnnColumn.out_features, 2)

    def features_views(self, global_x: torch.Tensor,
                       local_x: torch.Tensor | None = None) -> torch.Tensor:
        """The concatenated fc256 features ``(N, 512)`` of both columns."""
        local_x = global_x if local_x is None else local_x
        return torch.cat([self.global_column(global_x), self.local_column(local_x)], dim=1)

    def forward_views(self, global_x: torch.Tensor,
                      local_x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return _binary(self.classifier(self.features_views(global_x, local_x)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_views(x, x)


Regularizer = Literal["style", "semantic"]


def style_column(size: int = SIZE) -> ScnnColumn:
    """The style column of Table IV: an SCNN column with half the filters in conv1 and conv4
    (32 each)."""
    return ScnnColumn(size=size, conv1=32, conv4=32)


class SemanticColumn(nn.Module):
    """RDCNN-semantic's third column: ImageNet AlexNet (conv1–fc7) + fc256 (ReLU, dropout
    0.5), fine-tuned to the aesthetic labels first (with :attr:`RDCNN.semantic_head`), then
    frozen. ``(N, 3, H, W)`` → ``(N, 256)``."""

    out_features = 256

    def __init__(self) -> None:
        super().__init__()
        self.trunk = AlexNetTrunk()
        self.fc = nn.Sequential(nn.Linear(self.trunk.out_features, 256), nn.ReLU(inplace=True),
                                nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(x))


class RDCNN(DCNN):
    """DCNN regularized by a frozen third column (style column or semantic column).

    The frozen column stays in eval mode and out of the optimizer
    (:meth:`trainable_parameters`). Style: fc256 of the ``rapid-style`` column (half filters
    in conv1 / conv4) on the local view; semantic: the fc256 of an ImageNet AlexNet fine-tuned
    to aesthetics (:class:`SemanticColumn`) on the global view — :meth:`tune_semantic` trains
    that column alone (with ``semantic_head``, a 2-way softmax) before it is frozen.
    ``size``: the input side of the aesthetic columns and the style column (224, the
    paper's); the AlexNet column is sized by its adaptive pool and takes any input of at
    least 63 x 63.
    """

    def __init__(self, regularizer: Regularizer = "style", size: int = SIZE) -> None:
        super().__init__(size=size)
        self.regularizer = regularizer
        self.tuning = False
        if regularizer == "style":
            self.reg_column: nn.Module = style_column(size)
        elif regularizer == "semantic":
            self.reg_column = SemanticColumn()
            self.semantic_head = nn.Linear(SemanticColumn.out_features, 2)
            self.semantic_head.requires_grad_(False)
        else:
            raise ValueError(f"unknown regularizer {regularizer!r} (style or semantic)")
        self.classifier = nn.Linear(3 * ScnnColumn.out_features, 2)
        self.reg_column.requires_grad_(False)
        self.reg_column.eval()

    def train(self, mode: bool = True) -> RDCNN:
        super().train(mode)
        if not self.tuning:
            self.reg_column.eval()
        return self

    def tune_semantic(self, on: bool = True) -> RDCNN:
        """The first stage of RDCNN-semantic: train only the semantic column and its 2-way
        head (``on``), or freeze them again for the RDCNN stage (``off``)."""
        if self.regularizer != "semantic":
            raise UsageError("only rapid-rdcnn-semantic has a semantic column to fine-tune")
        self.tuning = on
        for p in self.parameters():
            p.requires_grad_(not on)
        self.reg_column.requires_grad_(on)
        self.semantic_head.requires_grad_(on)
        return self.train(self.training)

    def forward_semantic(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The semantic column alone as an aesthetic classifier (the first stage)."""
        return _binary(self.semantic_head(self.reg_column(x)))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the optimizer gets: the aesthetic columns and the classifier."""
        return [p for p in self.parameters() if p.requires_grad]

    def features_views(self, global_x: torch.Tensor,
                       local_x: torch.Tensor | None = None) -> torch.Tensor:
        local_x = global_x if local_x is None else local_x
        reg_in = local_x if self.regularizer == "style" else global_x
        with torch.no_grad():
            reg = self.reg_column(reg_in).detach()
        return torch.cat([super().features_views(global_x, local_x), reg], dim=1)


def load_scnn_column(column: ScnnColumn, path: str | Path, prefix: str = "column.") -> ScnnColumn:
    """Fill ``column`` from a trained SCNN / style-SCNN checkpoint (its ``column.*`` tensors).

    Used to start a DCNN's columns from trained SCNNs and to install the style column.
    """
    state = read_state_dict(path)
    part = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    own = column.state_dict()
    if set(part) != set(own) or any(part[k].shape != own[k].shape for k in own):
        raise WeightsError(f"{path}: not an SCNN checkpoint (no matching {prefix}* column)")
    column.load_state_dict(part, strict=True)
    return column


def load_style_column(module: RDCNN, path: str | Path) -> RDCNN:
    """Install a trained ``rapid-style`` checkpoint as an RDCNN-style's frozen column."""
    if not isinstance(module, RDCNN) or module.regularizer != "style":
        raise UsageError("only rapid-rdcnn-style takes a style column")
    load_scnn_column(module.reg_column, path)
    module.reg_column.requires_grad_(False)
    return module


def load_imagenet_backbone(module: nn.Module, path: str | Path) -> nn.Module:
    """ImageNet init: only RDCNN-semantic has an ImageNet column (torchvision ``alexnet``).

    The other RAPID nets train from scratch; asking for ImageNet weights is a usage error.
    """
    if not isinstance(module, RDCNN) or module.regularizer != "semantic":
        raise UsageError(f"{type(module).__name__} trains from scratch: only "
                         "rapid-rdcnn-semantic takes ImageNet (alexnet) weights")
    assert isinstance(module.reg_column, SemanticColumn)
    module.reg_column.trunk.load_imagenet(path)
    if not module.tuning:
        module.reg_column.requires_grad_(False)
    return module


def load_semantic_column(module: RDCNN, path: str | Path) -> RDCNN:
    """Install the semantic column (and its head) of a first-stage checkpoint (a
    ``rapid-rdcnn-semantic`` run with ``semantic_stage = true``), frozen."""
    if not isinstance(module, RDCNN) or module.regularizer != "semantic":
        raise UsageError("only rapid-rdcnn-semantic takes a semantic column")
    state = read_state_dict(path)
    part = {k: v for k, v in state.items() if k.startswith(("reg_column.", "semantic_head."))}
    own = {k: v for k, v in module.state_dict().items()
           if k.startswith(("reg_column.", "semantic_head."))}
    if set(part) != set(own) or any(part[k].shape != own[k].shape for k in own):
        raise WeightsError(f"{path}: not a rapid-rdcnn-semantic checkpoint (no matching "
                           "semantic column)")
    module.load_state_dict({**module.state_dict(), **part}, strict=True)
    module.tune_semantic(False)
    return module


def random_views(image: np.ndarray, spec: InputSpec, n: int, rng: np.random.Generator,
                    resize: int = TRAIN_RESIZE) -> np.ndarray:
    """``n`` random views ``(n, h, w, 3)`` uint8 of one image, as RAPID trains and tests.

    The image is first brought to ``resize`` x ``resize`` by ``spec.view`` (a patch view takes
    a random full-resolution crop), then a random ``spec.size`` crop is cut from it.
    """
    from framescore.preprocess import view

    if n < 1:
        raise ValueError("random_views: n must be at least 1")
    h, w = spec.size
    if resize < max(h, w):
        raise ValueError(f"random_views: resize {resize} is smaller than the crop {h}x{w}")
    big = InputSpec(height=resize, width=resize, mean=spec.mean, std=spec.std, view=spec.view)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        base = view(image, big, rng)
        top, left = int(rng.integers(0, resize - h + 1)), int(rng.integers(0, resize - w + 1))
        out[i] = base[top:top + h, left:left + w]
    return out


@torch.no_grad()
def average_over_views(model: nn.Module, views: torch.Tensor | Sequence[torch.Tensor],
                       local_views: torch.Tensor | Sequence[torch.Tensor] | None = None
                       ) -> dict[str, torch.Tensor]:
    """Average every output of ``model`` over V views: ``views`` ``(V, N, 3, H, W)``.

    Two-view nets get ``local_views`` (same shape) through ``forward_views``. The averaged
    ``prob_high`` is the paper's test-time prediction (``score`` is averaged the same way).
    """
    views = list(views)
    locals_ = list(local_views) if local_views is not None else [None] * len(views)
    if not views or len(locals_) != len(views):
        raise ValueError("average_over_views: as many local views as global views expected")
    total: dict[str, torch.Tensor] = {}
    for g, loc in zip(views, locals_, strict=True):
        out = model.forward_views(g, loc) if loc is not None else model(g)
        for key, value in out.items():
            total[key] = total[key] + value if key in total else value.clone()
    return {k: v / len(views) for k, v in total.items()}


PAPER_SETTINGS = {
    "input": "view at 256 x 256, random 224 crop (+ horizontal flip); test: average of "
             "50 random views",
    "labels": "AVA binary, delta = 0 (high if mean >= 5)",
    "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 128,
    "lr_schedule": "x0.1 on plateau",
    "our_choices": ("optimizer settings", "batch_size", "lr_schedule", "normalization"),
}

_PAPER = "Lu et al. 2014, RAPID (ACM MM)"


def _info(name: str, summary: str, build, spec: InputSpec, task: str, reported: dict,
          outputs: tuple[str, ...] = ("score", "prob_high", "logits"), **extra) -> ModelInfo:
    return ModelInfo(name=name, paper=_PAPER, summary=summary, spec=spec, build=build,
                     needs_weights=True, outputs=outputs, card="cards/rapid.md",
                     training=TrainingSpec(
                         ("rapid",), task=task, loss="rapid_cross_entropy",
                         paper_settings=PAPER_SETTINGS, reported=reported,
                         train_resize=TRAIN_RESIZE, test_views=TEST_VIEWS, **extra))


@register_model
def entries() -> list[ModelInfo]:
    two = {"views": {"global": GLOBAL_SPEC, "local": LOCAL_SPEC}}
    return [
        _info("rapid-scnn", "SCNN on the global warped view; score = P(high)", SCNN,
              GLOBAL_SPEC, "binary", {"ava_accuracy": 67.79}, imagenet=None),
        _info("rapid-scnn-center", "SCNN on the centre-cropped view", SCNN, spec_for("center"),
              "binary", {}, imagenet=None),
        _info("rapid-scnn-pad", "SCNN on the padded (letterboxed) view", SCNN, spec_for("pad"),
              "binary", {}, imagenet=None),
        _info("rapid-scnn-patch", "SCNN on a local full-resolution patch", SCNN, LOCAL_SPEC,
              "binary", {"ava_accuracy": 71.20}, imagenet=None),
        _info("rapid-style", "SCNN style column: 14 AVA styles on local patches", StyleSCNN,
              LOCAL_SPEC, "style", {"style_map": 56.81},
              outputs=("score", "style_probs", "logits"), imagenet=None, styles=tuple(STYLES)),
        _info("rapid-dcnn", "DCNN: global warp + local patch columns, one classifier", DCNN,
              GLOBAL_SPEC, "binary", {"ava_accuracy": 73.25}, imagenet=None, **two),
        _info("rapid-rdcnn-style", "RDCNN: DCNN + frozen style column (from rapid-style)",
              partial(RDCNN, "style"), GLOBAL_SPEC, "binary", {"ava_accuracy": 74.46},
              imagenet=None, frozen="style column: rapid-style checkpoint", **two),
        _info("rapid-rdcnn-semantic", "RDCNN: DCNN + frozen ImageNet AlexNet column",
              partial(RDCNN, "semantic"), GLOBAL_SPEC, "binary", {"ava_accuracy": 75.42},
              imagenet="alexnet", frozen="semantic column: ImageNet alexnet", **two),
    ]
