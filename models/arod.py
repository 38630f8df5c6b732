"""AROD aesthetic space (Schwarz, Wieschollek & Lensch, 2018).

ResNet-50 up to pool5, then a linear map to a 1000-D encoding Φ; an image's score is ‖Φ‖₂.
Inputs are warped to 224 x 224 and, as in the authors' release, only the per-channel mean is
subtracted from 0..255 pixels (B 103.06, G 115.90, R 123.15), no division by a std.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet50

from framescore.models.spec import InputSpec, ModelInfo, TrainingSpec, register_model
from framescore.models.weights import load_torchvision_part

SPEC = InputSpec(height=224, width=224, mean=(123.15 / 255, 115.90 / 255, 103.06 / 255),
                 std=(1 / 255, 1 / 255, 1 / 255), view="warp")


class ArodEncoder(nn.Module):
    """ResNet-50 → 1000-D aesthetic encoding; ``forward`` returns score (the norm) and encoding.

    ``classes`` > 0 adds the paper's fine-tuning head for AVA's discrete labels: a linear
    softmax classifier on Φ (``classes`` = 2: {low, high}); ``forward`` then also returns
    ``logits`` and ``prob_high``. The paper does not describe the head; one linear layer on
    the encoding is our choice.
    """

    def __init__(self, dim: int = 1000, classes: int = 0) -> None:
        super().__init__()
        self.backbone = resnet50(weights=None)
        self.backbone.fc = nn.Identity()
        self.encode = nn.Linear(2048, dim)
        self.classify = nn.Linear(dim, classes) if classes else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding Φ of a normalized batch ``(N, 3, 224, 224)``."""
        return self.encode(self.backbone(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        phi = self.embed(x)
        out = {"score": phi.norm(dim=1), "encoding": phi}
        if self.classify is not None:
            logits = self.classify(phi)
            out["logits"] = logits
            out["prob_high"] = torch.softmax(logits.float(), dim=1)[:, -1]
        return out


@register_model
def entries() -> list[ModelInfo]:
    return [ModelInfo(
        name="arod-resnet50", paper="Schwarz et al. 2018, AROD aesthetic space",
        summary="ResNet-50 pool5 → 1000-D encoding; score = L2 norm",
        spec=SPEC, build=ArodEncoder, outputs=("score", "encoding"), card="cards/arod.md",
        training=TrainingSpec(("arod",), task="triplets", loss="directional_triplet_loss",
                              imagenet="resnet50", reported={"ava_accuracy": 75.83}))]


def load_imagenet_backbone(module: ArodEncoder, path: str | Path) -> ArodEncoder:
    """Fill the ResNet-50 trunk from a torchvision ``resnet50`` ImageNet state dict (fc dropped).

    The encoding layer keeps its initialization; it is what AROD training learns from scratch.
    """
    load_torchvision_part(module.backbone, path, "resnet50",
                          lambda k: None if k.startswith("fc.") else k)
    return module
