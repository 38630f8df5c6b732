"""Relative aesthetics: a Siamese ranking network (Chandakkar, Gattupalli & Li, ICPR 2016).

Each image of a pair goes through one channel of two columns (the warped image and a local
patch), giving C = [fc256_global, fc256_local] (512-D). Both images share the weights. The
column follows the paper's Section III-A and Table I, not RAPID's column: input 224 padded by 3;
conv1 64 x 11 x 11 stride 2 → ReLU → max-pool 2 x 2 / 2 (halves it); conv2 64 x 5 x 5 (pad 2)
→ ReLU → max-pool 2 x 2 / 2; conv3, conv4 64 x 3 x 3 (pad 1) → ReLU; fc 1000 → ReLU →
dropout 0.5; fc 256 → ReLU → dropout 0.5. No normalization layer. At 224 x 224 the last conv
map is 64 x 27 x 27. The pair's output is

    d(I1, I2) = w2ᵀ relu(w1ᵀ (C1 − C2))        (w1: 512 → hidden, w2: hidden → 1, no biases)

trained with the hinge max(0, δ − y·d), δ = 3 (``relative_hinge_loss``), y = +1 when I1 is the
better image. d(I, I) = 0 exactly; d is not antisymmetric in general (the ReLU), but
d(I1, I2) − d(I2, I1) = w2ᵀ w1ᵀ (C1 − C2).

A single channel scores one image (to rank many images and for export):
``forward(x)`` → score s(I) = w2ᵀ relu(w1ᵀ C(I)) and ``prob_high`` = sigmoid(s) — the paper's
"one column + sigmoid, no retraining" binary classifier.

Input: 224 x 224, mean-RGB subtraction only. The paper subtracts the training set's mean RGB:
the spec subtracts the ImageNet channel means from 0..255 pixels (no std), and the buffer
``mean_shift`` (set by the recipe from the training images, :meth:`RelativeNet.set_mean_rgb`)
moves that to the training set's mean. As for RAPID's DCNN, ``forward_views(global, local)`` /
``compare(x1, x2, local1, local2)`` take both views; with one tensor the warped image feeds both
columns (deployment approximation). Our choices: the width of w1 (256: the paper does not give
it); the paddings of conv2–conv4 ("same", our reading of Table I). ``size`` (224, the paper's)
is the input side the columns' fc1000 layers are built for; a smaller one gives a smaller net
(tests, quick experiments).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from framescore.errors import UsageError
from framescore.models.spec import IMAGENET_MEAN, InputSpec, ModelInfo, TrainingSpec, register_model

SIZE = 224
_UNIT = (1 / 255, 1 / 255, 1 / 255)
SPEC = InputSpec(height=SIZE, width=SIZE, mean=IMAGENET_MEAN, std=_UNIT, view="warp")
LOCAL_SPEC = InputSpec(height=SIZE, width=SIZE, mean=IMAGENET_MEAN, std=_UNIT, view="patch")
HIDDEN = 256


def _side(size: int) -> int:
    size = (size + 2 * 3 - 11) // 2 + 1      # conv1, padded by 3, stride 2
    size //= 2                                # pool1 halves
    return size // 2                          # conv2 keeps the size; pool2 halves


class RelativeColumn(nn.Module):
    """One column of Table I: ``(N, 3, size, size)`` → fc256 features ``(N, 256)``."""

    out_features = 256

    def __init__(self, size: int = SIZE) -> None:
        super().__init__()
        side = _side(size)
        if side < 1:
            raise ValueError(f"relative column: input {size} is too small")
        self.convs = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=2, padding=3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 1000), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(1000, 256), nn.ReLU(inplace=True), nn.Dropout(0.5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x))


class RelativeNet(nn.Module):
    """The Siamese two-channel, two-column net; one channel scores one image.

    ``hidden``: the width of w1 (256, our choice); ``size``: the input side of both views
    (224).
    """

    def __init__(self, hidden: int = HIDDEN, size: int = SIZE) -> None:
        super().__init__()
        self.global_column = RelativeColumn(size=size)
        self.local_column = RelativeColumn(size=size)
        dim = 2 * RelativeColumn.out_features
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, 1, bias=False)
        # added to the (ImageNet-mean-subtracted) input: moves it to the training set's mean
        self.register_buffer("mean_shift", torch.zeros(1, 3, 1, 1))

    def set_mean_rgb(self, offset: torch.Tensor) -> None:
        """Subtract ``offset`` (3,) more from every input: the training set's mean of the
        normalized input, so that the net sees pixels minus the training set's mean RGB."""
        self.mean_shift.copy_(-offset.reshape(1, 3, 1, 1).to(self.mean_shift))

    def embed_views(self, global_x: torch.Tensor,
                    local_x: torch.Tensor | None = None) -> torch.Tensor:
        """C = [global fc256, local fc256] ``(N, 512)``; the global view feeds both if alone."""
        local_x = global_x if local_x is None else local_x
        return torch.cat([self.global_column(global_x + self.mean_shift),
                          self.local_column(local_x + self.mean_shift)], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """C of one batch (the warped image feeds both columns)."""
        return self.embed_views(x, x)

    def head(self, c: torch.Tensor) -> torch.Tensor:
        """``w2ᵀ relu(w1ᵀ c)`` → ``(N,)``."""
        return self.w2(torch.relu(self.w1(c))).squeeze(1)

    def compare(self, x1: torch.Tensor, x2: torch.Tensor, local1: torch.Tensor | None = None,
                local2: torch.Tensor | None = None) -> torch.Tensor:
        """d(I1, I2) ``(N,)``: positive when the first image is judged better."""
        return self.head(self.embed_views(x1, local1) - self.embed_views(x2, local2))

    def forward_views(self, global_x: torch.Tensor,
                      local_x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        s = self.head(self.embed_views(global_x, local_x))
        return {"score": s, "prob_high": torch.sigmoid(s)}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_views(x, x)


def load_imagenet_backbone(module: nn.Module, path: str | Path) -> nn.Module:
    """The relative net trains from scratch: ImageNet weights are a usage error."""
    raise UsageError("relative-siamese trains from scratch and takes no ImageNet weights")


PAPER_SETTINGS = {
    "input": "warp to 224 and a local 224 patch, the training set's mean RGB subtracted",
    "pairs": "AVA: |mean1 - mean2| >= 1, both rating variances < 2.6, same semantic tag; "
             "20k train / 3k val pairs of unique images, 20k test pairs; standard: 7,670 "
             "pairs from the 20k generic test ids",
    "optimizer": "sgd", "nesterov": True, "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-6,
    "lr_schedule": "x0.85 every 10 epochs", "batch_size": 50,
    "early_stop": "10 epochs without validation gain", "delta": 3.0,
}


@register_model
def entries() -> list[ModelInfo]:
    return [ModelInfo(
        name="relative-siamese",
        paper="Chandakkar et al. 2016, relative aesthetics (ICPR)",
        summary="Siamese two-channel, two-column RAPID-like net; d = w2·relu(w1·(C1 − C2)); "
                "one channel scores one image",
        spec=SPEC, build=RelativeNet, needs_weights=True, outputs=("score", "prob_high"),
        card="cards/relative.md",
        training=TrainingSpec(
            ("relative",), task="pairs", loss="relative_hinge_loss", imagenet=None,
            views={"global": SPEC, "local": LOCAL_SPEC}, paper_settings=PAPER_SETTINGS,
            reported={"pair_accuracy_own": 70.51, "pair_accuracy_standard": 76.77,
                            "rapid_pair_accuracy_own": 62.21,
                            "rapid_pair_accuracy_standard": 65.87,
                            "ava_accuracy_single_column": 71.60}))]
