"""Kong et al. 2016, "Photo Aesthetics Ranking Network with Attributes and Content Adaptation".

A fine-tuned AlexNet (conv1–fc7 from ImageNet) whose fc8 regresses the mean rating rescaled to
[0, 1]. Four registered variants, all 227 x 227 warped input with ImageNet mean/std (the user's
ImageNet weights are torchvision's AlexNet, which expects that normalization):

``kong-reg``           fc7 → 1 (Euclidean loss).
``kong-reg-rank``      the same network trained on Siamese pairs with reg + ω_r·rank hinge.
``kong-reg-rank-att``  the released model's head: fc7 → fc8new (512, ReLU) and 11 attribute
                       branches fc7 → fc 256 (ReLU) → 1; the 512 + 11·256 = 3,328 features
                       concatenated → fc 128 (ReLU) → score. Attributes regressed with ω_a = 0.1.
``kong-full``          + content gating from a *frozen content branch*, as the paper has
                       it: a second AlexNet trunk (``content_trunk``, a copy of the trunk
                       taken before fine-tuning, never trained) gives fc7 features f;
                       either K = 10 k-means centroids of L2-normalized f (AADB: no content
                       labels; a buffer set by :meth:`KongNet.set_centroids` from
                       :func:`kmeans`) with p = softmax(−‖f̂ − c_k‖² / τ), or, where content
                       labels exist (AVA's eight categories), a linear softmax classifier
                       on f fitted before fine-tuning and then frozen
                       (``content_gate = "classifier"``). p weights K content-specific score
                       heads on the fc 128 features: score = Σ_k p_k·s_k.

Our choices where the paper is silent: torchvision's AlexNet stands in for CaffeNet (64-192-
384-256-256 channels instead of 96-256-384-384-256, same fc6/fc7); the gating temperature τ
is 0.1; content heads share the fc 128 layer. The score is the predicted mean rating in
[0, 1] (AADB's scale) — higher is better.

``width`` (default 1: the network above) multiplies every conv channel count and fc size
(fc6/fc7, fc8new, the attribute and fuse layers; at least 1 each) and keeps the layers: a
reduced AlexNet for tests and quick experiments. AlexNet's three 3/2 max-pools need an input of
at least 63 x 63 pixels; above that any size works (the adaptive pool brings conv5 to 6 x 6).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
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
from framescore.models.weights import load_torchvision_part, read_state_dict  # noqa: F401
from framescore.models.width import scaled

SPEC = InputSpec(height=227, width=227, mean=IMAGENET_MEAN, std=IMAGENET_STD, view="warp")

ATTRIBUTES = ("BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur",
              "Object", "Repetition", "RuleOfThirds", "Symmetry", "VividColor")
CONTENT_K = 10


#: torchvision AlexNet: conv (out channels, kernel, stride, padding, max-pool after), fc6/fc7
ALEXNET_CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                 (256, 3, 1, 1, False), (256, 3, 1, 1, True))
ALEXNET_FC = 4096
ALEXNET_POOL = 6  # the adaptive average pool's output side
MIN_SIDE = 63  # the smallest input side the three 3/2 max-pools take


class AlexNetTrunk(nn.Module):
    """AlexNet conv1–fc7 (torchvision layout): ``(N, 3, H, W)`` → fc7 features
    ``(N, out_features)`` (4096 at width 1).

    ``features``, ``avgpool`` and ``fc67`` hold the same layers at the same indices as
    torchvision's ``alexnet`` (``fc67`` = its ``classifier[0:6]``: dropout, fc6, ReLU, dropout,
    fc7, ReLU), so ImageNet weights map by name at width 1. ``width`` scales every channel
    count and fc size (see the module docstring).
    """

    #: fc7 features at width 1 (an instance holds its own width's ``out_features``)
    out_features: int = ALEXNET_FC

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for out, kernel, stride, padding, pool in ALEXNET_CONVS:
            out = scaled(out, width)
            layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=padding),
                       nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            channels = out
        fc = scaled(ALEXNET_FC, width)
        self.width = width
        self.out_features = fc
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((ALEXNET_POOL, ALEXNET_POOL))
        self.fc67 = nn.Sequential(
            nn.Dropout(p=0.5), nn.Linear(channels * ALEXNET_POOL ** 2, fc), nn.ReLU(inplace=True),
            nn.Dropout(p=0.5), nn.Linear(fc, fc), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc67(torch.flatten(self.avgpool(self.features(x)), 1))

    def load_imagenet(self, path: str | Path) -> AlexNetTrunk:
        """Fill conv1–fc7 from a torchvision ``alexnet`` state dict file (fc8 is dropped).

        Only a width-1 trunk has ImageNet's shapes (UsageError otherwise)."""
        if self.width != 1:
            raise UsageError(f"ImageNet AlexNet weights fit the width-1 trunk, not width "
                             f"{self.width:g}")

        def rename(key: str) -> str | None:
            if key.startswith("features."):
                return key
            if key.startswith("classifier."):
                index = int(key.split(".")[1])
                return None if index >= 6 else "fc67." + key.removeprefix("classifier.")
            return key

        return load_torchvision_part(self, path, "alexnet", rename)


def kmeans(features: torch.Tensor, k: int = CONTENT_K, iters: int = 50,
           seed: int = 0) -> torch.Tensor:
    """Centroids ``(k, D)`` of the L2-normalized rows of ``features`` (k-means++ start, Lloyd).

    This is how Kong's content clusters are found (K = 10 on fc7 features). Deterministic for
    a given ``seed``; an emptied cluster is re-seeded with the point farthest from its centroid.
    """
    x = F.normalize(features.detach().float(), dim=1)
    n = x.shape[0]
    if n < k:
        raise ValueError(f"kmeans: {n} feature rows for {k} clusters")
    gen = torch.Generator().manual_seed(seed)
    centroids = x[torch.randint(n, (1,), generator=gen)]
    for _ in range(1, k):
        d2 = torch.cdist(x, centroids).pow(2).min(dim=1).values
        probs = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full((n,), 1.0 / n)
        centroids = torch.cat([centroids, x[torch.multinomial(probs, 1, generator=gen)]])
    for _ in range(iters):
        dist = torch.cdist(x, centroids)
        assign = dist.argmin(dim=1)
        new = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        new = new / counts.clamp_min(1).unsqueeze(1)
        if bool(empty.any()):
            far = dist.gather(1, assign.unsqueeze(1)).squeeze(1).argsort(descending=True)
            new[empty] = x[far[: int(empty.sum())]]
        if torch.allclose(new, centroids):
            centroids = new
            break
        centroids = new
    return centroids


def fit_content_classifier(features: torch.Tensor, labels: torch.Tensor, k: int,
                           weight_decay: float = 1e-4,
                           iters: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear softmax classifier ``(weight (k, D), bias (k,))`` of ``labels`` (0..k−1) on
    ``features`` (N, D): multinomial logistic regression, L2 ``weight_decay``, fitted by
    L-BFGS (deterministic). Kong's content branch where content labels exist (AVA)."""
    x = features.detach().float()
    y = labels.long()
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError("fit_content_classifier: one label per feature row expected")
    scale = x.std(0).mean().clamp_min(1e-6)
    w = torch.zeros(k, x.shape[1], requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy((x / scale) @ w.T + b, y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return (w.detach() / scale), b.detach()


class KongNet(nn.Module):
    """AlexNet regression with optional attribute branches and content gating.

    ``forward(x)`` → ``{"score": (N,)}`` plus ``"attributes"`` (N, 11) with attributes and
    ``"content"`` (N, K) gating probabilities with content. ``features(x)`` gives fc7 (for
    k-means); ``set_centroids`` installs the content clusters. ``width`` scales the trunk and
    the head's hidden layers (1: the paper's sizes).
    """

    def __init__(self, attributes: bool = False, content_k: int = 0,
                 temperature: float = 0.1, width: float = 1.0,
                 content_gate: str = "kmeans") -> None:
        super().__init__()
        if content_k and not attributes:
            raise ValueError("the content branch sits on the attribute model's features")
        if content_gate not in ("kmeans", "classifier"):
            raise ValueError(f"content_gate must be kmeans or classifier, not {content_gate!r}")
        self.trunk = AlexNetTrunk(width)
        self.use_attributes = attributes
        self.content_k = content_k
        d = self.trunk.out_features
        if not attributes:
            self.head = nn.Linear(d, 1)
            return
        aesthetic, branch, fused = scaled(512, width), scaled(256, width), scaled(128, width)
        self.aesthetic = nn.Sequential(nn.Linear(d, aesthetic), nn.ReLU(inplace=True))
        self.attr_hidden = nn.ModuleList(
            nn.Sequential(nn.Linear(d, branch), nn.ReLU(inplace=True)) for _ in ATTRIBUTES)
        self.attr_out = nn.ModuleList(nn.Linear(branch, 1) for _ in ATTRIBUTES)
        self.fuse = nn.Sequential(nn.Linear(aesthetic + branch * len(ATTRIBUTES), fused),
                                  nn.ReLU(inplace=True))
        self.head = nn.Linear(fused, content_k or 1)
        self.content_gate = content_gate
        if content_k:
            self.register_buffer("centroids", torch.zeros(content_k, d))
            self.register_buffer("temperature", torch.tensor(float(temperature)))
            # the frozen content branch (its own trunk, filled by freeze_content_branch)
            self.content_trunk = AlexNetTrunk(width)
            self.content_classifier = (nn.Linear(d, content_k)
                                       if content_gate == "classifier" else None)
            for p in self.content_branch_parameters():
                p.requires_grad_(False)

    def content_branch_parameters(self) -> list[nn.Parameter]:
        """The frozen content branch's parameters (never trained with the aesthetic loss)."""
        if not self.content_k:
            return []
        params = list(self.content_trunk.parameters())
        if self.content_classifier is not None:
            params += list(self.content_classifier.parameters())
        return params

    def train(self, mode: bool = True) -> KongNet:
        super().train(mode)
        if self.content_k:
            self.content_trunk.eval()  # frozen: no dropout in its fc layers, ever
        return self

    def freeze_content_branch(self) -> None:
        """Copy the trunk (as it is before fine-tuning: ImageNet) into the content branch."""
        if not self.content_k:
            raise ValueError("this model has no content branch")
        self.content_trunk.load_state_dict(self.trunk.state_dict())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7 features ``(N, 4096)`` at width 1 (before any head)."""
        return self.trunk(x)

    def content_features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen content branch's fc7 features (what the gate and k-means see)."""
        return self.content_trunk(x)

    def set_content_classifier(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Install the content classifier fitted on :meth:`content_features` (K, D) / (K,)."""
        if self.content_classifier is None:
            raise ValueError("this model's content gate is not a classifier")
        with torch.no_grad():
            self.content_classifier.weight.copy_(weight)
            self.content_classifier.bias.copy_(bias)

    def set_centroids(self, centroids: torch.Tensor) -> None:
        """Install the K content centroids (``(K, 4096)`` at width 1, e.g. from
        :func:`kmeans`)."""
        if not self.content_k:
            raise ValueError("this model has no content branch")
        if tuple(centroids.shape) != tuple(self.centroids.shape):
            raise ValueError(f"centroids of shape {tuple(self.centroids.shape)} expected, "
                             f"got {tuple(centroids.shape)}")
        self.centroids.copy_(centroids.to(self.centroids))

    def content_probs(self, fc7: torch.Tensor) -> torch.Tensor:
        """Gating probabilities from the content branch's fc7: the content classifier's
        softmax, or ``softmax(−‖f̂ − c_k‖² / τ)`` over the K centroids, f̂ = fc7 / ‖fc7‖."""
        if self.content_classifier is not None:
            return torch.softmax(self.content_classifier(fc7), dim=1)
        f = F.normalize(fc7, dim=1)
        d2 = (f.unsqueeze(1) - self.centroids.unsqueeze(0)).pow(2).sum(-1)
        return torch.softmax(-d2 / self.temperature, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        fc7 = self.trunk(x)
        if not self.use_attributes:
            return {"score": self.head(fc7).squeeze(1)}
        hidden = [branch(fc7) for branch in self.attr_hidden]
        attrs = torch.cat([out(h) for out, h in zip(self.attr_out, hidden, strict=True)], dim=1)
        z = self.fuse(torch.cat([self.aesthetic(fc7), *hidden], dim=1))
        heads = self.head(z)
        if not self.content_k:
            return {"score": heads.squeeze(1), "attributes": attrs}
        with torch.no_grad():
            probs = self.content_probs(self.content_trunk(x))
        return {"score": (heads * probs).sum(1), "attributes": attrs, "content": probs}


def load_imagenet_backbone(module: nn.Module, path: str | Path) -> nn.Module:
    """Initialize a :class:`KongNet`'s conv1–fc7 from a torchvision ``alexnet`` state dict."""
    if not isinstance(module, KongNet):
        raise TypeError(f"a KongNet expected, got {type(module).__name__}")
    module.trunk.load_imagenet(path)
    return module


PAPER_SETTINGS = {
    "input": "warp to 256, random 227 crop (+ horizontal flip); test: warp to 227",
    "optimizer": "sgd", "lr": 1e-4, "momentum": 0.9, "weight_decay": 1e-5,
    "lr_schedule": "x0.1 on plateau (annealed)", "batch_size": 64,
    "our_choices": ("batch_size", "lr_schedule trigger", "content temperature 0.1"),
    "target": "mean rating rescaled to [0, 1] (AADB score; AVA: (mean - 1) / 9)",
    "alpha": {"aadb": 0.02, "ava": 0.15}, "omega_r": {"aadb": 1.0, "ava": 0.1},
    "omega_a": 0.1, "pairs": "within-rater + cross-rater", "content_k": CONTENT_K,
}

_VARIANTS = (
    ("kong-reg", "Reg: AlexNet fc7 → 1, Euclidean loss on the mean rating", False, 0,
     "euclidean", {"aadb_spearman": 0.6239, "ava_spearman": 0.4995}),
    ("kong-reg-rank", "Reg+Rank: Siamese pairs, Euclidean + ω_r·rank hinge", False, 0,
     "reg_rank", {"aadb_spearman": 0.6515}),
    ("kong-reg-rank-att", "Reg+Rank+Att: 11 attribute branches fused with the score", True, 0,
     "reg_rank+attributes", {"aadb_spearman": 0.6656}),
    ("kong-full", "Reg+Rank+Att+Cont: content-gated (k-means, K = 10) score heads", True,
     CONTENT_K, "reg_rank+attributes",
     {"aadb_spearman": 0.6782, "aadb_spearman_cont_only": 0.6737, "ava_spearman": 0.5581,
      "ava_accuracy": 77.33}),
)


@register_model
def entries() -> list[ModelInfo]:
    out = []
    for name, summary, att, k, loss, reported in _VARIANTS:
        outputs = ("score",) + (("attributes",) if att else ()) + (("content",) if k else ())
        out.append(ModelInfo(
            name=name, paper="Kong et al. 2016, aesthetics ranking network (ECCV)",
            summary=summary, spec=SPEC, build=partial(KongNet, attributes=att, content_k=k),
            needs_weights=True, outputs=outputs, card="cards/kong.md",
            training=TrainingSpec(
                ("kong",), task="regression", loss=loss, pairs=name != "kong-reg",
                imagenet="alexnet", score_scale=(0.0, 1.0), paper_settings=PAPER_SETTINGS,
                reported=reported, attributes=tuple(ATTRIBUTES) if att else ())))
    return out
