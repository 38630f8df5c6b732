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
from framescore.train.data.ava import CONTENT
from framescore.train.loop import Context, StepResult
from framescore.train.recipes.base import Figure, Recipe, cap, random_split, repeated_view, reported


class RapidRecipe(Recipe):
    """RAPID's SCNN / DCNN / RDCNN on AVA's binary labels, and the style column.

    Binary: AVA ``generic_test`` ids are the test set; the rest trains (``val_fraction`` held
    out); labels high if mean ≥ 5 + δ, low if ≤ 5 − δ, in between dropped (δ = 0: nothing
    dropped). Views: ``view`` at 256 x 256, random 224 crop, random flip; test: P(high)
    averaged over ``test_views`` random views (50 in the paper). Style (``rapid-style``): the
    14-way column on AVA's style lists, local patches, mAP over the 14 styles on ``test``.
    RDCNN-style needs ``style_weights`` (a trained ``rapid-style`` checkpoint). RDCNN-semantic
    is two runs, as in the paper: ``semantic_stage = true`` with ``imagenet_weights`` (a
    torchvision AlexNet state dict) fine-tunes the semantic column (AlexNet + fc256, a 2-way
    softmax) to the aesthetic labels; then ``semantic_weights`` = that run's checkpoint
    installs it frozen and the RDCNN trains. Biases learn at twice the weights' rate.
    ``content`` (one of AVA's eight categories) trains and tests on that category's lists
    only: the paper's content adaptation (start from a generic run with ``init_weights``).
    """

    family = "rapid"
    formats = ("ava", "folder")
    WEIGHT_KEYS = (*Recipe.WEIGHT_KEYS, "semantic_weights")

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        style = info.training.task == "style"
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
            o["semantic_stage"] = Option(False, bool, "rapid-rdcnn-semantic: train only its "
                                         "semantic column (ImageNet AlexNet + fc256) on the "
                                         "aesthetic labels (the first stage)")
            o["semantic_weights"] = Option("", str, "rapid-rdcnn-semantic: the first stage's "
                                           "checkpoint (path), installed frozen")
            o["content"] = Option("", str, "content adaptation: train and test on one AVA "
                                  "content category's lists (empty: all images)",
                                  choices=("", *CONTENT))
        o["bias_lr_mult"] = Option(2.0, float, "learning-rate factor of the biases (the "
                                   "paper: 2)", check=at_least(0))
        return o

    @property
    def style(self) -> bool:
        return self.info.training.task == "style"

    def check(self) -> None:
        super().check()
        frozen = self.info.training.frozen
        given = self.config.get("init_weights")
        if frozen.startswith("style") and not (self.config["style_weights"] or given):
            raise UsageError(f"{self.name} needs style_weights = a trained rapid-style "
                             "checkpoint (its frozen third column)")
        if frozen.startswith("semantic"):
            if self.config["semantic_stage"] and not (self.config["imagenet_weights"] or
                                                      given):
                raise UsageError(f"{self.name} semantic_stage needs imagenet_weights = a "
                                 "torchvision alexnet state dict")
            if not self.config["semantic_stage"] and not (self.config["semantic_weights"] or
                                                          given):
                raise UsageError(f"{self.name} needs semantic_weights = the checkpoint of a "
                                 "semantic_stage run (its frozen third column)")

    def build_model(self, load_weights: bool = True) -> nn.Module:
        model = super().build_model(load_weights)
        path = self.config.get("style_weights")
        if load_weights and path:
            from framescore.models.rapid import load_style_column

            load_style_column(model, Path(path).expanduser())
        path = self.config.get("semantic_weights")
        if load_weights and path and not self.semantic_stage:
            from framescore.models.rapid import load_semantic_column

            load_semantic_column(model, Path(path).expanduser())
        if self.semantic_stage:
            model.tune_semantic(True)
        return model

    @property
    def semantic_stage(self) -> bool:
        return bool(self.config.get("semantic_stage"))

    def trainable(self, model: nn.Module) -> list:
        """Two parameter groups: weights at ``lr``, biases at ``bias_lr_mult`` × ``lr``."""
        params = super().trainable(model)
        names = {id(p): n for n, p in model.named_parameters()}
        biases = [p for p in params if names.get(id(p), "").endswith("bias")]
        weights = [p for p in params if not names.get(id(p), "").endswith("bias")]
        groups = [{"params": weights}]
        if biases:
            groups.append({"params": biases,
                           "lr": self.config["lr"] * self.config["bias_lr_mult"]})
        return groups

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
            test_ids = generic_test_ids(root)
            records = rs.records
            if cfg["content"]:
                from framescore.train.data import read_content

                train_ids = set(read_content(root, "train", (cfg["content"],))[cfg["content"]])
                test_ids = read_content(root, "test", (cfg["content"],))[cfg["content"]]
                keep = train_ids | set(test_ids)
                records = [r for r in records if r.id in keep]
                self.note(f"content adaptation: {cfg['content']} lists only "
                          f"({len(records)} images)")
            train, test = _delta_split(records, test_ids, cfg["threshold"], cfg["delta"],
                                       delta_split)
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
        if self.semantic_stage:
            return model_call("forward_semantic", x["global"] if isinstance(x, dict) else x)[
                "logits"]
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
        run = None
        if self.semantic_stage:
            def run(m: nn.Module, x: Any) -> dict[str, torch.Tensor]:
                return m.forward_semantic(x["global"] if isinstance(x, dict) else x)
        if run is None:
            idx, out = self.predict(model, records, ctx, view=view)
        else:
            idx, out = self.predict(model, records, ctx, run=run, view=view)
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
        delta = self.config["delta"]
        standard = (self.config["data_format"] == "ava" and not self.config["content"] and
                    self.config["threshold"] == 5.0 and not self.semantic_stage)
        paper = reported(self.info, "ava_accuracy") if standard and delta == 0 else None
        if standard and delta != 0:
            note += "; the paper's δ = 1 figures are not in our notes"
        if self.config["content"]:
            note += f"; {self.config['content']} only (content adaptation)"
        if self.semantic_stage:
            note += "; the semantic column alone (first stage)"
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
