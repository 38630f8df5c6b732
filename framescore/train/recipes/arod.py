"""AROD's recipe: the aesthetic space trained with the directional triplet loss; score = ‖Φ‖."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from framescore.models.spec import ModelInfo
from framescore.train import metrics
from framescore.train.config import Option, at_least, fraction
from framescore.train.data import Record, TripletDataset, read_arod
from framescore.train.loop import Context, StepResult
from framescore.train.recipes.base import Figure, Recipe, accepts, cap, random_split


class ArodRecipe(Recipe):
    """AROD's aesthetic space: directional triplet loss on on-the-fly triplets; score = ‖Φ‖.

    AROD data: ``list.txt`` (S = log faves / log views; lines with views ≤ 1 or no faves
    dropped), cut at random into test (``test_fraction``), validation and training images
    (the paper gives no split). AVA data (the paper's fine-tuning to AVA): S = the mean vote,
    ``generic_test`` tests, and the binary accuracy thresholds ‖Φ‖ at the value that is best on
    validation. The paper's 75.83 % comes from fine-tuning the triplet model to AVA's
    discrete labels: ``ava_protocol = "finetune"`` (default, for models whose builder takes
    ``classes``) adds a 2-way softmax on Φ, trains it and the whole net with cross-entropy on
    the δ = 0 labels (start from the triplet run with ``init_weights``) and prints the paper's
    figure beside that accuracy only; ``"norm"`` thresholds ‖Φ‖ at the validation-best value
    (no paper figure: the paper has no such protocol). Triplets: α < |S(a) − S(p)| /
    |S(•) − S(n)| < β, half with the odd one out better, half worse. ``preset`` ``paper``:
    SGD 1e-3 ÷ 10 on plateau, 1000-D, m = m̃ = 1;
    ``release``: the authors' code (1024-D, normalized triplet term, margins 0.5 / 0.2; their
    optimizer, Adam at 0.1, is not applied: set optimizer and lr to use it).
    """

    family = "arod"
    formats = ("arod", "ava", "folder")

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        o = cls._common(info, cls.formats, optimizer="sgd", lr=1e-3, momentum=0.9,
                        weight_decay=1e-4, batch_size=32, lr_schedule="plateau",
                        lr_gamma=0.1, epochs=30, early_stop=10)
        o["preset"] = Option("paper", str, "loss settings: paper or release (authors' code)",
                             choices=("paper", "release"))
        o["variant"] = Option("", str, "direction term: paper, bounded or release (empty: "
                              "the preset's)", choices=("", "paper", "bounded", "release"))
        o["margin"] = Option(-1.0, float, "triplet margin m (-1: the preset's)")
        o["norm_margin"] = Option(-1.0, float, "direction margin m̃ (-1: the preset's)")
        o["triplet_alpha"] = Option(-1.0, float, "lower bound α of the triplet score ratios "
                                    "(-1: the preset's, 0.3)")
        o["triplet_beta"] = Option(-1.0, float, "upper bound β (-1: the preset's, 0.7)")
        o["triplets_per_epoch"] = Option(0, int, "triplets an epoch (0: as many as training "
                                         "images)", check=at_least(0))
        o["test_fraction"] = Option(0.1, float, "AROD / folder data: share held out for the "
                                    "test", check=fraction)
        o["ava_protocol"] = Option("finetune", str, "AVA data: finetune (the paper: a 2-way "
                                   "softmax on Φ trained on the δ = 0 labels) or norm (the "
                                   "triplet loss, ‖Φ‖ thresholded; not the paper's protocol)",
                                   choices=("finetune", "norm"))
        if accepts(info.build, "pretrained"):
            o["pretrained"] = Option(True, bool, "start from the ImageNet weights the "
                                     "backbone's package ships (no download)")
        return o

    def preset(self) -> Any:
        from framescore.train.losses import AROD_PRESETS

        return AROD_PRESETS[self.config["preset"]]

    def setting(self, key: str, preset_key: str) -> float:
        v = self.config[key]
        return float(getattr(self.preset(), preset_key)) if v < 0 else float(v)

    def build_kwargs(self, load_weights: bool = True) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        build = self.info.build
        if self.config["preset"] != "paper" and accepts(build, "dim"):
            kwargs["dim"] = self.preset().embedding_dim
        if "pretrained" in self.config and accepts(build, "pretrained"):
            kwargs["pretrained"] = bool(self.config["pretrained"]) and load_weights
        if self.finetune:
            kwargs["classes"] = 2
        return kwargs

    @property
    def finetune(self) -> bool:
        """The paper's AVA protocol: a softmax on Φ trained on AVA's binary labels."""
        return (self.config["data_format"] == "ava" and self.config["ava_protocol"] ==
                "finetune" and accepts(self.info.build, "classes"))

    def build_model(self, load_weights: bool = True) -> nn.Module:
        if not (self.finetune and load_weights and self.config["init_weights"]):
            return super().build_model(load_weights)
        # a triplet checkpoint has no classifier yet: load it, keep the new head's init
        from pathlib import Path

        from framescore.errors import WeightsError
        from framescore.models.weights import mismatch, read_state_dict

        path = Path(self.config["init_weights"]).expanduser()
        self.config["init_weights"] = ""
        try:
            model = super().build_model(load_weights)
        finally:
            self.config["init_weights"] = str(path)
        state = read_state_dict(path)
        own = model.state_dict()
        if not any(k.startswith("classify.") for k in state):
            state = {**state, **{k: v for k, v in own.items() if k.startswith("classify.")}}
        problem = mismatch(model, state)
        if problem:
            raise WeightsError(f"{path}: weights do not fit {type(model).__name__}: {problem}")
        model.load_state_dict(state, strict=True)
        return model

    def load(self) -> None:
        cfg = self.config
        fmt = cfg["data_format"]
        if fmt == "ava":
            train, val, test = self.ava_generic_split()
        elif fmt == "arod":
            rs = read_arod(self.require_root(), image_dir=self.image_dir())
            self.note(rs.summary())
            test, val, train = random_split(rs.records, [cfg["test_fraction"],
                                                         cfg["val_fraction"]], cfg["seed"])
        else:
            train, val, test = self.folder_splits((cfg["test_fraction"], cfg["val_fraction"]))
        self.train_records = cap(train, cfg["max_images"], cfg["seed"])
        self.val_records, self.test_records = val, test
        self.note(f"arod: {len(self.train_records)} train, {len(val)} val, {len(test)} test "
                  "images")
        from framescore.train.samplers import TripletSampler

        if self.finetune:
            self.note("arod on AVA: the paper's protocol, a softmax on Φ fine-tuned to the "
                      "δ = 0 labels (high if mean ≥ 5)")
        elif fmt == "ava":
            self.note("arod on AVA: ‖Φ‖ thresholded (ava_protocol = norm): not the paper's "
                      "protocol, no paper figure is printed")
        if self.for_training and not self.finetune:
            self.sampler = TripletSampler(self.train_records,
                                          self.setting("triplet_alpha", "alpha"),
                                          self.setting("triplet_beta", "beta"))
        self.train_images = self.images(self.train_records, train=True)

    def _label(self, r: Record) -> np.int64:
        return np.int64(r.score >= 5.0)

    def train_data(self, epoch: int) -> Dataset:
        if self.finetune:
            return self.images(self.train_records, train=True, target=self._label)
        n = self.config["triplets_per_epoch"] or len(self.train_records)
        return TripletDataset(self.train_images, self.sampler, n)

    def variant(self) -> str:
        return self.config["variant"] or self.preset().variant

    def step(self, ctx: Context, batch: dict) -> StepResult:
        from framescore.train.losses import directional_triplet_terms

        if self.finetune:
            from framescore.train.losses import rapid_cross_entropy

            labels = batch["target"].to(ctx.device)
            logits = ctx.call("forward", self.inputs(ctx, batch["image"]))["logits"].float()
            loss = rapid_cross_entropy(logits, labels)
            return StepResult(loss, int(batch["size"]),
                              {"accuracy": (logits.argmax(1) == labels).float().mean()})
        n = int(batch["size"])
        x = torch.cat([self.inputs(ctx, batch[k]) for k in ("anchor", "positive", "negative")])
        phi = ctx.call("embed", x).float()
        s = batch["scores"].to(ctx.device)
        triplet, direction = directional_triplet_terms(
            phi[:n], phi[n:2 * n], phi[2 * n:], s[:, 0], s[:, 2],
            self.setting("margin", "margin"), self.setting("norm_margin", "norm_margin"),
            self.variant())
        norms = phi.detach().norm(dim=1)
        order = (torch.sign(norms[2 * n:] - norms[:n]) == torch.sign(s[:, 2] - s[:, 0]))
        return StepResult(triplet + direction, 3 * n,
                          {"triplet": triplet.detach(), "direction": direction.detach(),
                           "norm_order": order.float().mean()})

    def _scores(self, model: nn.Module, records: Sequence[Record],
                ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        idx, out = self.predict(model, records, ctx)
        return out["score"], np.array([records[i].score for i in idx])

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        if not self.val_records:
            return {}
        if self.finetune:
            idx, out = self.predict(model, self.val_records, ctx)
            labels = np.array([self._label(self.val_records[i]) for i in idx])
            acc = metrics.binary_accuracy(out["prob_high"], labels)
            return {"accuracy": acc, "monitor": acc}
        pred, truth = self._scores(model, self.val_records, ctx)
        rho = metrics.spearman(pred, truth)
        return {"spearman": rho, "monitor": rho if math.isfinite(rho) else -1.0}

    def test(self, model: nn.Module, ctx: Context) -> list[Figure]:
        from framescore.train.samplers import cross_rater_pairs

        pred, truth = self._scores(model, self.test_records, ctx)
        note = f"{len(pred)} test images"
        out = [Figure("spearman", "Spearman ρ of ‖Φ‖ vs S", metrics.spearman(pred, truth),
                      None, "", note),
               Figure("pearson", "Pearson r", metrics.pearson(pred, truth), None, "", note)]
        pairs = cross_rater_pairs(truth, min(20000, len(truth) * 10), seed=self.config["seed"])
        if len(pairs):
            out.append(Figure("pair_accuracy", "pair accuracy (ranking by ‖Φ‖)",
                              100 * metrics.pair_ranking_accuracy(
                                  pred[pairs[:, 0]], pred[pairs[:, 1]],
                                  truth[pairs[:, 0]], truth[pairs[:, 1]]), None, "%",
                              f"{len(pairs)} random test pairs"))
        if self.finetune:
            idx, res = self.predict(model, self.test_records, ctx)
            labels = np.array([self._label(self.test_records[i]) for i in idx])
            out.append(Figure("ava_accuracy", "AVA binary accuracy (fine-tuned softmax on Φ, "
                              "δ = 0)", 100 * metrics.binary_accuracy(res["prob_high"], labels),
                              AROD_PAPER_ACCURACY if self.name == "arod-resnet50" else None,
                              "%", f"{len(idx)} generic_test images, the paper's protocol"))
        elif self.config["data_format"] == "ava" and self.val_records:
            vpred, vtruth = self._scores(model, self.val_records, ctx)
            threshold = metrics.best_threshold(vpred, (vtruth >= 5.0).astype(int))
            acc = metrics.binary_accuracy(pred, (truth >= 5.0).astype(int), threshold)
            out.append(Figure("ava_accuracy_norm", "AVA binary accuracy (‖Φ‖ thresholded on "
                              "validation)", 100 * acc, None, "%",
                              note + "; not the paper's protocol (it fine-tunes to the labels)"))
        return out


#: AROD's AVA accuracy after fine-tuning to AVA's discrete labels (the paper's only AVA figure)
AROD_PAPER_ACCURACY = 75.83
