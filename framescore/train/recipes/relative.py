"""The relative-aesthetics recipe: the Siamese ranking net on AVA pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from framescore.errors import DataError
from framescore.models.spec import ModelInfo
from framescore.train import metrics
from framescore.train.config import Option, at_least, fraction
from framescore.train.data import PairDataset, read_ava
from framescore.train.loop import Context, StepResult
from framescore.train.recipes.base import Figure, Recipe, reported


class RelativeRecipe(Recipe):
    """The Siamese ranking net on AVA pairs (relative-aesthetics protocol).

    Pairs: same first semantic tag, |mean1 − mean2| ≥ ``min_gap`` (1), both rating variances
    < ``max_variance`` (2.6); ``n_train`` + ``n_val`` pairs of all-unique training images,
    ``n_test`` more from unused training images (the paper's own test) and every unique pair
    the ``generic_test`` ids allow (the "standard" pairs). Loss max(0, δ − y·d), δ = 3.
    Test: pair accuracy on both sets and the single column's binary accuracy (sigmoid ≥ 0.5) on
    the AVA test images.
    """

    family = "relative"
    formats = ("ava", "folder")

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        o = cls._common(info, cls.formats, optimizer="sgd", lr=1e-3, momentum=0.9,
                        nesterov=True, weight_decay=1e-6, batch_size=50, lr_schedule="step",
                        lr_step=10, lr_gamma=0.85, early_stop=10, epochs=100)
        o["margin"] = Option(3.0, float, "hinge margin δ of max(0, δ − y·d)", check=at_least(0))
        o["min_gap"] = Option(1.0, float, "pairs need |mean1 − mean2| >= this",
                              check=at_least(0))
        o["max_variance"] = Option(2.6, float, "AVA pairs need both rating variances < this")
        o["n_train"] = Option(20000, int, "training pairs", check=at_least(1))
        o["n_val"] = Option(3000, int, "validation pairs", check=at_least(0))
        o["n_test"] = Option(20000, int, "the paper's own test pairs", check=at_least(0))
        o["test_fraction"] = Option(0.1, float, "folder data: share of images held out for "
                                    "the test", check=fraction)
        return o

    def load(self) -> None:
        from framescore.train.samplers import cross_rater_pairs, relative_protocol

        cfg = self.config
        if cfg["data_format"] == "folder":
            train, val, test = self.folder_splits((cfg["test_fraction"], cfg["val_fraction"]))
            self.records = train + val + test
            a, b = len(train), len(train) + len(val)
            sets = {}
            for key, (lo, hi), n in (("train", (0, a), cfg["n_train"]),
                                     ("val", (a, b), cfg["n_val"]),
                                     ("standard", (b, len(self.records)), cfg["n_test"])):
                part = self.records[lo:hi]
                pairs = cross_rater_pairs(part, n, min_gap=cfg["min_gap"],
                                          seed=cfg["seed"]) if n and len(part) > 1 else \
                    np.zeros((0, 3), dtype=np.int64)
                pairs[:, :2] += lo
                sets[key] = pairs
            sets["test"] = np.zeros((0, 3), dtype=np.int64)
            self.test_ids: set[str] = {r.id for r in test}
        else:
            from framescore.train.data import generic_test_ids

            root = self.require_root()
            rs = read_ava(root, image_dir=self.image_dir())
            self.note(rs.summary())
            self.records = rs.records
            self.test_ids = set(generic_test_ids(root))
            sets = relative_protocol(self.records, self.test_ids, n_train=cfg["n_train"],
                                     n_val=cfg["n_val"], n_test=cfg["n_test"], seed=cfg["seed"],
                                     min_gap=cfg["min_gap"], max_variance=cfg["max_variance"])
        self.pairs = sets
        if cfg["max_images"]:
            self.pairs["train"] = self.pairs["train"][:max(1, cfg["max_images"] // 2)]
        self.note("relative: " + ", ".join(f"{len(v)} {k} pairs" for k, v in sets.items()))
        if not len(self.pairs["train"]) and self.for_training:
            raise DataError("no training pair satisfies the constraints (min_gap, "
                            "max_variance, same tag)")
        self.train_images = self.images(self.records, train=True)

    def train_data(self, epoch: int) -> Dataset:
        return PairDataset(self.train_images, self.pairs["train"])

    def step(self, ctx: Context, batch: dict) -> StepResult:
        from framescore.train.losses import relative_hinge_loss

        a = self.inputs(ctx, batch["image1"])
        b = self.inputs(ctx, batch["image2"])
        y = batch["y"].to(ctx.device)
        if isinstance(a, dict):
            d = ctx.call("compare", a["global"], b["global"], a["local"], b["local"])
        else:
            d = ctx.call("compare", a, b)
        loss = relative_hinge_loss(d.float(), y, self.config["margin"])
        acc = (torch.sign(d.detach().float()) == y).float().mean()
        return StepResult(loss, 2 * int(batch["size"]), {"pair_accuracy": acc})

    def _embed(self, model: nn.Module, indices: np.ndarray,
               ctx: Context) -> dict[int, np.ndarray]:
        uniq = np.unique(indices)
        records = [self.records[i] for i in uniq]

        def run(m: nn.Module, x: Any) -> dict[str, torch.Tensor]:
            if isinstance(x, dict):
                return {"c": m.embed_views(x["global"], x["local"])}
            return {"c": m.embed(x)}

        idx, out = self.predict(model, records, ctx, run=run)
        return {int(uniq[i]): c for i, c in zip(idx, out["c"], strict=True)}

    @torch.no_grad()
    def pair_accuracy(self, model: nn.Module, pairs: np.ndarray,
                      ctx: Context) -> tuple[float, int]:
        """Accuracy of sign(d(I1, I2)) over the pairs whose two images are readable."""
        emb = self._embed(model, pairs[:, :2].ravel(), ctx)
        keep = [k for k, (i, j, _) in enumerate(pairs.tolist()) if i in emb and j in emb]
        if not keep:
            raise DataError("no readable pair to evaluate on")
        c1 = torch.from_numpy(np.stack([emb[int(pairs[k, 0])] for k in keep])).float()
        c2 = torch.from_numpy(np.stack([emb[int(pairs[k, 1])] for k in keep])).float()
        head = model.head
        device = next(model.parameters()).device
        d = head((c1 - c2).to(device)).float().cpu().numpy()
        return metrics.pair_accuracy(d, pairs[keep, 2]), len(keep)

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        if not len(self.pairs["val"]):
            return {}
        acc, _ = self.pair_accuracy(model, self.pairs["val"], ctx)
        return {"pair_accuracy": acc, "monitor": acc}

    def test(self, model: nn.Module, ctx: Context) -> list[Figure]:
        ava = self.config["data_format"] == "ava"
        out: list[Figure] = []
        for key, label, paper in (("test", "pair accuracy, own test pairs", "pair_accuracy_own"),
                                  ("standard", "pair accuracy, standard pairs" if ava else
                                   "pair accuracy, test pairs", "pair_accuracy_standard")):
            if len(self.pairs[key]):
                acc, n = self.pair_accuracy(model, self.pairs[key], ctx)
                out.append(Figure(f"pair_accuracy_{key}", label, 100 * acc,
                                  reported(self.info, paper) if ava else None, "%",
                                  f"{n} pairs"))
        test = [r for r in self.records if r.id in self.test_ids]
        if test:
            idx, res = self.predict(model, test, ctx)
            labels = np.array([int(test[i].score >= 5.0) for i in idx])
            if ava:
                out.append(Figure(
                    "ava_accuracy_single_column", "binary accuracy, one column + sigmoid",
                    100 * metrics.binary_accuracy(res["prob_high"], labels),
                    reported(self.info, "ava_accuracy_single_column"), "%",
                    f"{len(idx)} AVA test images, δ = 0"))
            scores = np.array([test[i].score for i in idx])
            out.append(Figure("spearman", "Spearman ρ of the single-column score",
                              metrics.spearman(res["score"], scores), None, "",
                              f"{len(idx)} test images"))
        return out
