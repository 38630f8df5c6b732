"""RAPID's recipe: SCNN / DCNN / RDCNN on AVA's binary labels, and the style column."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from framescore.errors import UsageError
from framescore.models.spec import ModelInfo
from framescore.train import metrics
from framescore.train.config import Option, at_least, fraction
from framescore.train.data import Record, read_ava, read_style
from framescore.train.loop import Context, StepResult
from framescore.train.recipes.base import Figure, Recipe, cap, random_split, repeated_view, reported


class RapidRecipe(Recipe):
    """RAPID's SCNN / DCNN / RDCNN on AVA's binary labels, and the style column.

    Binary: AVA ``generic_test`` ids are the test set; the rest trains (``val_fraction`` held
    out); labels high if mean ≥ 5 + δ, low if ≤ 5 − δ, in between dropped (δ = 0: nothing
    dropped). Views: ``view`` at 256 x 256, random 224 crop, random flip; test: P(high)
    averaged over ``test_views`` random views (50 in the paper). Style (``rapid-style``): the
    14-way column on AVA's style lists, local patches, mAP over the 14 styles on ``test``.
    RDCNN-style needs ``style_weights`` (a trained ``rapid-style`` checkpoint); RDCNN-semantic
    needs ``imagenet_weights`` (a torchvision AlexNet state dict).
    """

    family = "rapid"
    formats = ("ava", "folder")

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        style = info.extra.get("task") == "style"
        formats = ("ava",) if style else cls.formats
        o = cls._common(info, formats, optimizer="sgd", lr=1e-3, momentum=0.9,
                        weight_decay=5e-4, batch_size=128, lr_schedule="plateau",
                        lr_gamma=0.1, epochs=30, early_stop=10, flip=True)
        o["crop_from"] = Option(256, int, "training views are made at this size, then a "
                                "random crop of the input size is cut (0: no crop)",
                                check=at_least(0))
        o["test_views"] = Option(50, int, "random views averaged per test image (paper: 50)",
                                 check=at_least(1))
        if not style:
            o["delta"] = Option(0.0, float, "AVA binary labels: high if mean >= threshold + "
                                "delta, low if <= threshold - delta", check=at_least(0))
            o["threshold"] = Option(5.0, float, "score splitting low from high (AVA: 5)")
            o["test_fraction"] = Option(0.1, float, "folder data: share held out for the test",
                                        check=fraction)
            o["style_weights"] = Option("", str, "rapid-rdcnn-style: the trained rapid-style "
                                        "checkpoint of its frozen column (path)")
        return o

    @property
    def style(self) -> bool:
        return self.info.extra.get("task") == "style"

    def check(self) -> None:
        super().check()
        frozen = self.info.extra.get("frozen", "")
        given = self.config.get("init_weights")
        if frozen.startswith("style") and not (self.config["style_weights"] or given):
            raise UsageError(f"{self.name} needs style_weights = a trained rapid-style "
                             "checkpoint (its frozen third column)")
        if frozen.startswith("semantic") and not (self.config["imagenet_weights"] or given):
            raise UsageError(f"{self.name} needs imagenet_weights = a torchvision alexnet "
                             "state dict (its frozen third column)")

    def build_model(self, load_weights: bool = True) -> nn.Module:
        model = super().build_model(load_weights)
        path = self.config.get("style_weights")
        if load_weights and path:
            from framescore.models.rapid import load_style_column

            load_style_column(model, Path(path).expanduser())
        return model

    def load(self) -> None:
        cfg = self.config
        if self.style:
            root = self.require_root()
            train = read_style(root, "train", image_dir=self.image_dir())
            test = read_style(root, "test", image_dir=self.image_dir())
            self.note(train.summary())
            self.note(test.summary())
            val, rest = random_split(train.records, [cfg["val_fraction"]], cfg["seed"])
            self.train_records = cap(rest, cfg["max_images"], cfg["seed"])
            self.val_records, self.test_records = val, test.records
            return
        if cfg["data_format"] == "folder":
            train, val, test = self.folder_splits((cfg["test_fraction"], cfg["val_fraction"]))
            label = _threshold_label(cfg["threshold"], cfg["delta"])
            train, val, test = ([replace(r, label=label(r.score)) for r in part
                                 if label(r.score) is not None] for part in (train, val, test))
        else:
            from framescore.train.data import generic_test_ids
            from framescore.train.samplers import delta_split

            root = self.require_root()
            rs = read_ava(root, image_dir=self.image_dir())
            self.note(rs.summary())
            train, test = _delta_split(rs.records, generic_test_ids(root), cfg["threshold"],
                                       cfg["delta"], delta_split)
            val, train = random_split(train, [cfg["val_fraction"]], cfg["seed"])
        self.train_records = cap(train, cfg["max_images"], cfg["seed"])
        self.val_records, self.test_records = val, test
        self.note(f"rapid: {len(self.train_records)} train, {len(val)} val, {len(test)} test "
                  f"images")
        for name, part in (("train", self.train_records), ("test", test)):
            if part and len({r.label for r in part}) < 2:
                self.note(f"warning: the {name} images are all of one class")

    def _target(self, r: Record) -> np.int64:
        return np.int64(r.label)

    def train_data(self, epoch: int) -> Dataset:
        return self.images(self.train_records, train=True, target=self._target)

    def _logits(self, model_call: Callable, x: Any) -> torch.Tensor:
        if isinstance(x, dict):
            return model_call("forward_views", x["global"], x["local"])["logits"]
        return model_call("forward", x)["logits"]

    def step(self, ctx: Context, batch: dict) -> StepResult:
        from framescore.train.losses import rapid_cross_entropy

        x = self.inputs(ctx, batch["image"])
        labels = batch["target"].to(ctx.device)
        logits = self._logits(ctx.call, x)
        loss = rapid_cross_entropy(logits.float(), labels)
        acc = (logits.argmax(1) == labels).float().mean()
        return StepResult(loss, int(batch["size"]), {"accuracy": acc})

    def _scores(self, model: nn.Module, records: Sequence[Record], ctx: Context,
                views: int) -> tuple[np.ndarray, np.ndarray]:
        view = None
        if views > 1:
            view = repeated_view(self.view(train=True), views)
        key = "style_probs" if self.style else "prob_high"
        idx, out = self.predict(model, records, ctx, view=view)
        return idx, out[key]

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        if not self.val_records:
            return {}
        idx, p = self._scores(model, self.val_records, ctx, 1)
        if self.style:
            labels = np.array([self.val_records[i].labels for i in idx])
            m = metrics.mean_average_precision(p, labels)
            return {"map": m, "monitor": m}
        labels = np.array([self.val_records[i].label for i in idx])
        acc = metrics.binary_accuracy(p, labels)
        return {"accuracy": acc, "monitor": acc}

    def test(self, model: nn.Module, ctx: Context) -> list[Figure]:
        views = self.config["test_views"]
        idx, p = self._scores(model, self.test_records, ctx, views)
        note = f"{len(idx)} test images, {views} random view(s) averaged"
        if self.style:
            labels = np.array([self.test_records[i].labels for i in idx])
            return [Figure("style_map", "AVA style mAP", 100 * metrics.mean_average_precision(
                p, labels), reported(self.info, "style_map"), "%", note)]
        labels = np.array([self.test_records[i].label for i in idx])
        paper = reported(self.info, "ava_accuracy") if (
            self.config["data_format"] == "ava" and self.config["delta"] == 0) else None
        delta = self.config["delta"]
        return [Figure("ava_accuracy", f"binary accuracy (δ = {delta:g})",
                       100 * metrics.binary_accuracy(p, labels), paper, "%", note)]


def _threshold_label(threshold: float, delta: float) -> Callable[[float], int | None]:
    def label(score: float) -> int | None:
        if score >= threshold + delta:
            return 1
        if score <= threshold - delta:
            return 0
        return None

    return label


def _delta_split(records: Sequence[Record], test_ids: Sequence[str], threshold: float,
                 delta: float, delta_split: Callable) -> tuple[list[Record], list[Record]]:
    """AVA's δ split (samplers.delta_split), shifted when the threshold is not 5."""
    if threshold == 5.0:
        return delta_split(records, test_ids, delta)
    label = _threshold_label(threshold, delta)
    test = set(test_ids)
    train_out, test_out = [], []
    for r in records:
        lab = label(r.score)
        if lab is not None:
            (test_out if r.id in test else train_out).append(replace(r, label=lab))
    return train_out, test_out
