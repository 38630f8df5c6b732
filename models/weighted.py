"""Jin, Segovia & Süsstrunk 2016, "Image aesthetic predictors based on weighted CNNs".

VGG16 (conv1_1–fc7 from ImageNet) with fc8 replaced:

``jin-mse``        one output, the mean rating (1..10), plain MSE.
``jin-wmse``       the same network trained with the weighted MSE Σ wᵢ(yᵢ − ŷᵢ)² / Σ wᵢ,
                   w = 1 / normalized frequency of the image's bin (90 bins over 1..10), so
                   rare very good and very bad images count more and the predictions spread.
``jin-histogram``  ten softmax outputs, the rating histogram, trained with the weighted χ²
                   distance; score = the histogram's mean Σ k·p_k, uncertainty = its standard
                   deviation sqrt(Σ p_k (k − mean)²).

Input: the whole image warped to 224 x 224 (no crop, no augmentation), ImageNet mean/std (the
user's ImageNet weights are torchvision's VGG16). Our choice: the regression output's bias
starts at 5.5 (the middle of the 1..10 scale) so fine-tuning at lr 1e-5 does not spend its
first epochs climbing from 0.

``width`` (default 1: VGG16) multiplies every conv channel count and the fc6/fc7 size (at least
1 each) and keeps the 13 convs, 5 max-pools and 2 hidden fc layers: a reduced VGG16 for tests
and quick experiments. Any input of at least 32 x 32 pixels works (the adaptive pool brings
conv5_3 to 7 x 7).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from framescore.errors import UsageError
from framescore.models.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    ModelInfo,
    TrainingSpec,
    register_model,
)
from framescore.models.weights import load_torchvision_part
from framescore.models.width import scaled

SPEC = InputSpec(height=224, width=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, view="warp")
RATINGS = 10
#: torchvision's VGG16 ("D"): conv channels by block, each block closed by a 2/2 max-pool
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG16_FC = 4096
VGG16_POOL = 7  # the adaptive average pool's output side
MIN_SIDE = 32  # the smallest input side the five 2/2 max-pools take


class VGG16Trunk(nn.Module):
    """VGG16 conv1_1–fc7 (torchvision layout): ``(N, 3, H, W)`` → ``(N, out_features)``
    (4096 at width 1).

    ``features``, ``avgpool`` and ``fc67`` hold the same layers at the same indices as
    torchvision's ``vgg16`` (``fc67`` = its ``classifier[0:6]``: fc6, ReLU, dropout, fc7, ReLU,
    dropout), so ImageNet weights map by name at width 1, and start from torchvision's random
    initialization (He-normal convs, N(0, 0.01) fc layers, zero biases). ``width`` scales every
    channel count and fc size (see the module docstring).
    """

    #: fc7 features at width 1 (an instance holds its own width's ``out_features``)
    out_features: int = VGG16_FC

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for block in VGG16_BLOCKS:
            for out in block:
                out = scaled(out, width)
                layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1),
                           nn.ReLU(inplace=True)]
                channels = out
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        fc = scaled(VGG16_FC, width)
        self.width = width
        self.out_features = fc
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((VGG16_POOL, VGG16_POOL))
        self.fc67 = nn.Sequential(
            nn.Linear(channels * VGG16_POOL ** 2, fc), nn.ReLU(inplace=True), nn.Dropout(p=0.5),
            nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(p=0.5))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc67(torch.flatten(self.avgpool(self.features(x)), 1))

    def load_imagenet(self, path: str | Path) -> VGG16Trunk:
        """Fill conv1_1–fc7 from a torchvision ``vgg16`` state dict file (fc8 is dropped).

        Only a width-1 trunk has ImageNet's shapes (UsageError otherwise)."""
        if self.width != 1:
            raise UsageError(f"ImageNet VGG16 weights fit the width-1 trunk, not width "
                             f"{self.width:g}")

        def rename(key: str) -> str | None:
            if key.startswith("classifier."):
                index = int(key.split(".")[1])
                return None if index >= 6 else "fc67." + key.removeprefix("classifier.")
            return key

        return load_torchvision_part(self, path, "vgg16", rename)


def histogram_moments(hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of rating histograms ``(N, 10)`` over the scores 1..10.

    ``hist`` needs not be normalized (vote counts work too).
    """
    p = hist / hist.sum(dim=1, keepdim=True).clamp_min(torch.finfo(hist.dtype).tiny)
    k = torch.arange(1, hist.shape[1] + 1, dtype=hist.dtype, device=hist.device)
    mean = (p * k).sum(1)
    var = (p * (k.unsqueeze(0) - mean.unsqueeze(1)).pow(2)).sum(1)
    return mean, var.clamp_min(0).sqrt()


class JinRegression(nn.Module):
    """VGG16 → one output, the mean rating: ``forward(x)`` → ``{"score": (N,)}``.

    ``width`` scales the trunk (1: VGG16)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.trunk = VGG16Trunk(width)
        self.head = nn.Linear(self.trunk.out_features, 1)
        nn.init.constant_(self.head.bias, 5.5)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7 features ``(N, 4096)`` at width 1."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"score": self.head(self.trunk(x)).squeeze(1)}


class JinHistogram(nn.Module):
    """VGG16 → 10-bin rating histogram; score = its mean, std = its standard deviation.

    ``forward(x)`` → ``{"score": (N,), "histogram": (N, 10), "std": (N,)}``;
    ``logits(x)`` gives the pre-softmax outputs; ``width`` scales the trunk (1: VGG16).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.trunk = VGG16Trunk(width)
        self.head = nn.Linear(self.trunk.out_features, RATINGS)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7 features ``(N, 4096)`` at width 1."""
        return self.trunk(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hist = torch.softmax(self.logits(x), dim=1)
        mean, std = histogram_moments(hist)
        return {"score": mean, "histogram": hist, "std": std}


def load_imagenet_backbone(module: nn.Module, path: str | Path) -> nn.Module:
    """Initialize a Jin model's conv1_1–fc7 from a torchvision ``vgg16`` state dict file."""
    if not isinstance(module, JinRegression | JinHistogram):
        raise TypeError(f"a Jin model expected, got {type(module).__name__}")
    module.trunk.load_imagenet(path)
    return module


PAPER_SETTINGS = {
    "input": "whole image warped to 224 x 224, no crop, no augmentation",
    "optimizer": "sgd", "lr": 1e-5, "momentum": 0.9, "epochs": 20, "batch_size": 32,
    "our_choices": ("momentum", "batch_size"),
    "sample_weights": "1 / normalized frequency of the mean's bin, 90 bins over 1..10",
    "test_sets": {"RS-test": "3,000 random test images",
                  "ED-test": "1,000 each with mean < 4, 4..7, > 7"},
}

_PAPER = "Jin et al. 2016, weighted CNNs (ICIP)"


@register_model
def entries() -> list[ModelInfo]:
    common = {"paper": _PAPER, "spec": SPEC, "needs_weights": True, "card": "cards/weighted.md"}
    jin = {"imagenet": "vgg16", "score_scale": (1.0, 10.0), "paper_settings": PAPER_SETTINGS}
    return [
        ModelInfo(name="jin-wmse", summary="VGG16 regression of the mean rating, weighted MSE",
                  build=JinRegression,
                  training=TrainingSpec(
                      ("jin",), task="regression", loss="weighted_mse", weighted=True,
                      reported={"mse_rs": 0.4847, "mse_ed": 0.9754, "range": (2.06, 7.53)},
                      **jin),
                  **common),
        ModelInfo(name="jin-mse", summary="VGG16 regression of the mean rating, plain MSE",
                  build=JinRegression,
                  training=TrainingSpec(
                      ("jin",), task="regression", loss="mse", weighted=False,
                      reported={"mse_rs": 0.3373, "mse_ed": 1.3951, "range": (3.54, 6.46)},
                      **jin),
                  **common),
        ModelInfo(name="jin-histogram",
                  summary="VGG16 → 10-bin rating histogram (weighted χ²); score = mean, std",
                  build=JinHistogram, outputs=("score", "histogram", "std"),
                  training=TrainingSpec(
                      ("jin",), task="histogram", loss="weighted_chi2", weighted=True,
                      reported={"mse_rs": 0.6358, "mse_ed": 1.0109, "rmser_rs": 26.75,
                                "rmser_ed": 19.57},
                      **jin),
                  **common),
    ]
