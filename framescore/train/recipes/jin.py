"""Jin et al.'s recipe: the weighted CNNs on AVA (RS-test and ED-test set aside)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from framescore.errors import DataError, UsageError
from framescore.models.spec import ModelInfo
from framescore.train import metrics
from framescore.train.config import Option, at_least
from framescore.train.data import Record, read_ava, read_folder
from framescore.train.loop import Context, StepResult
from framescore.train.recipes.base import Figure, Recipe, cap, random_split, reported


class JinRecipe(Recipe):
    """Jin et al.'s weighted CNNs on AVA: RS-test (3,000 random images) and ED-test (1,000
    each with mean < 4, 4..7, > 7) are set aside, everything else trains: the paper holds out
    no validation set (``val_fraction`` 0), so the model kept is the last epoch's (the paper
    reports the 20th). Sample weights w = 1 / normalized frequency of the mean's bin (90 bins
    over 1..10), normalized over the whole training set (not per batch). The rate is divided
    by 10 when the training loss stops falling (``plateau-train``). Losses: MSE
    (``jin-mse``), weighted MSE (``jin-wmse``), weighted χ² between the predicted and the
    voted histograms (``jin-histogram``). Test: MSE of the mean on RS and ED, the predicted
    score range, RMSER of the predicted std (histogram model, Jin's Eq. 5)."""

    family = "jin"
    formats = ("ava", "folder")

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        o = cls._common(info, cls.formats, optimizer="sgd", lr=1e-5, momentum=0.9,
                        batch_size=32, lr_schedule="plateau-train", plateau_patience=0,
                        epochs=20, early_stop=0, val_fraction=0.0)
        o["rs_size"] = Option(3000, int, "RS-test: random test images", check=at_least(1))
        o["ed_per_bin"] = Option(1000, int, "ED-test: images per band (< 4, 4..7, > 7)",
                                 check=at_least(1))
        o["bins"] = Option(90, int, "bins of the sample weights over 1..10", check=at_least(1))
        return o

    @property
    def histogram(self) -> bool:
        return self.info.training.task == "histogram"

    @property
    def weighted(self) -> bool:
        return self.info.training.weighted

    def load(self) -> None:
        from framescore.train.samplers import complement, ed_test, jin_weights, rs_test

        cfg = self.config
        if cfg["data_format"] == "folder":
            if self.histogram:
                raise UsageError("jin-histogram needs AVA's vote histograms (data_format ava)")
            rs = read_folder(self.require_root(), image_dir=self.image_dir())
        else:
            rs = read_ava(self.require_root(), image_dir=self.image_dir())
        self.note(rs.summary())
        records = rs.records
        rs_idx = rs_test(records, cfg["rs_size"], seed=cfg["seed"])
        rest = complement(len(records), rs_idx)
        ed_local = ed_test([records[i] for i in rest], cfg["ed_per_bin"], seed=cfg["seed"])
        ed_idx = rest[ed_local]
        train_idx = complement(len(records), rs_idx, ed_idx)
        self.rs_records = [records[i] for i in rs_idx]
        self.ed_records = [records[i] for i in ed_idx]
        val, train = random_split([records[i] for i in train_idx], [cfg["val_fraction"]],
                                  cfg["seed"])
        self.train_records = cap(train, cfg["max_images"], cfg["seed"])
        self.val_records = val
        weights = jin_weights(self.train_records, cfg["bins"])
        self.weight = {id(r): float(w) for r, w in zip(self.train_records, weights, strict=True)}
        val_w = jin_weights(val, cfg["bins"]) if val else []
        self.val_weight = {id(r): float(w) for r, w in zip(val, val_w, strict=True)}
        self.note(f"jin: {len(self.train_records)} train, {len(val)} val, "
                  f"{len(self.rs_records)} RS-test, {len(self.ed_records)} ED-test images")
        if not self.train_records and self.for_training:
            raise DataError("no training images left after RS-test and ED-test: lower "
                            "rs_size / ed_per_bin")
        self.train_images = self.images(self.train_records, train=True, target=self._target)

    def _target(self, r: Record) -> dict[str, Any]:
        out = {"score": np.float32(r.score), "weight": np.float32(self.weight.get(id(r), 1.0))}
        if self.histogram:
            h = np.asarray(r.histogram, dtype=np.float32)
            out["histogram"] = h / max(float(h.sum()), 1.0)
        return out

    def train_data(self, epoch: int) -> Dataset:
        return self.train_images

    def step(self, ctx: Context, batch: dict) -> StepResult:
        from framescore.train.losses import weighted_chi2_loss, weighted_mse_loss

        out = ctx.call("forward", self.inputs(ctx, batch["image"]))
        t = batch["target"]
        w = t["weight"].to(ctx.device) if self.weighted else None
        if self.histogram:
            loss = weighted_chi2_loss(out["histogram"].float(), t["histogram"].to(ctx.device),
                                      w, per_batch=False)
        else:
            loss = weighted_mse_loss(out["score"].float(), t["score"].to(ctx.device), w,
                                     per_batch=False)
        return StepResult(loss, int(batch["size"]))

    def _predict(self, model: nn.Module, records: Sequence[Record],
                 ctx: Context) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self.predict(model, records, ctx)

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        if not self.val_records:
            return {}
        idx, out = self._predict(model, self.val_records, ctx)
        recs = [self.val_records[i] for i in idx]
        truth = np.array([r.score for r in recs])
        w = np.array([self.val_weight.get(id(r), 1.0) for r in recs]) if self.weighted \
            else np.ones(len(recs))
        if self.histogram:
            from framescore.train.losses import chi2_distance

            target = np.stack([np.asarray(r.histogram, float) / max(r.histogram.sum(), 1)
                               for r in recs])
            chi = chi2_distance(torch.from_numpy(out["histogram"]),
                                torch.from_numpy(target)).numpy()
            loss = float((w * chi).sum() / w.sum())
        else:
            loss = float((w * (out["score"] - truth) ** 2).sum() / w.sum())
        return {"mse": metrics.mse(out["score"], truth), "loss": loss, "monitor": -loss}

    def test(self, model: nn.Module, ctx: Context) -> list[Figure]:
        out: list[Figure] = []
        preds = []
        for tag, records in (("rs", self.rs_records), ("ed", self.ed_records)):
            if not records:
                continue
            idx, res = self._predict(model, records, ctx)
            recs = [records[i] for i in idx]
            truth = np.array([r.score for r in recs])
            note = f"{len(recs)} {tag.upper()}-test images"
            out.append(Figure(f"mse_{tag}", f"MSE, {tag.upper()}-test",
                              metrics.mse(res["score"], truth),
                              reported(self.info, f"mse_{tag}"), "", note))
            if self.histogram:
                true_std = np.array([math.sqrt(r.variance or 0.0) for r in recs])
                out.append(Figure(f"rmser_{tag}", f"RMSER of the std, {tag.upper()}-test",
                                  100 * metrics.rmser(res["std"], true_std),
                                  reported(self.info, f"rmser_{tag}"), "%", note))
            preds.append(res["score"])
        if preds:
            low, high = metrics.score_range(np.concatenate(preds))
            out.append(Figure("range", "predicted score range", (low, high),
                              reported(self.info, "range"), "", "RS + ED test images"))
        return out
