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
from framescore.train.recipes.base import Figure, Recipe, cap, reported

#: the paper's one column + sigmoid on the images of its own test pairs
OWN_TEST_SINGLE_COLUMN = 59.41
#: the paper's baseline: a RAPID classifier's P(high) ranking the own / standard test pairs
RAPID_PAIR_BASELINE = {"test": 62.21, "standard": 65.87}


class RelativeRecipe(Recipe):
    """The Siamese ranking net on AVA pairs (relative-aesthetics protocol).

    Pairs: same first semantic tag, |mean1 − mean2| ≥ ``min_gap`` (1), both rating variances
    < ``max_variance`` (2.6); ``n_train`` + ``n_val`` pairs of all-unique training images,
    ``n_test`` more from unused training images (the paper's own test) and every unique pair
    the ``generic_test`` ids allow (the "standard" pairs). Loss max(0, δ − y·d), δ = 3.
    Test: pair accuracy on both sets; the single column's binary accuracy (sigmoid ≥ 0.5,
    images high when their mean ≥ ``class_threshold``, 5.5) on the AVA test images and on the
    images of the own test pairs; with ``rapid_weights`` (a trained RAPID checkpoint) the
    paper's baseline, a RAPID classifier's P(high) ranking the same pairs. Before training,
    the training images' mean RGB is measured (``mean_images`` of them) and subtracted.
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
        o["class_threshold"] = Option(5.5, float, "one column + sigmoid: images are high when "
                                      "their mean is at least this (the paper: 5.5)")
        o["mean_images"] = Option(2000, int, "training images whose mean RGB is subtracted "
                                  "(0: keep the ImageNet means)", check=at_least(0))
        o["rapid_weights"] = Option("", str, "a trained RAPID checkpoint (framescore train "
                                    "rapid-*): its P(high) ranks the test pairs, the paper's "
                                    "baseline (path; empty: skipped)")
        return o

    WEIGHT_KEYS = (*Recipe.WEIGHT_KEYS, "rapid_weights")

    def start(self, model: nn.Module, ctx: Context) -> None:
        """Measure the training images' mean RGB (of the normalized input) and install it."""
        n = self.config["mean_images"]
        if not n or not hasattr(model, "set_mean_rgb"):
            return
        used = np.unique(self.pairs["train"][:, :2])
        records = [self.records[i] for i in cap(list(used), n, self.config["seed"])]

        def run(m: nn.Module, x: Any) -> dict[str, torch.Tensor]:
            first = x["global"] if isinstance(x, dict) else x
            return {"mean": first.float().mean(dim=(2, 3))}

        _, out = self.predict(model, records, ctx, run=run)
        offset = torch.from_numpy(out["mean"].mean(0)).float()
        model.set_mean_rgb(offset)
        self.note(f"mean RGB of {len(out['mean'])} training images subtracted (offset from "
                  f"the ImageNet means: {', '.join(f'{v * 255:.1f}' for v in offset.tolist())})")

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
        cut = self.config["class_threshold"]
        test = [r for r in self.records if r.id in self.test_ids]
        own = [self.records[i] for i in np.unique(self.pairs["test"][:, :2])] \
            if len(self.pairs["test"]) else []
        for key, images, paper, where in (
                ("ava_accuracy_single_column", test,
                 reported(self.info, "ava_accuracy_single_column"), "AVA test images"),
                ("own_accuracy_single_column", own, OWN_TEST_SINGLE_COLUMN,
                 "images of the own test pairs")):
            if not (ava and images):
                continue
            idx, res = self.predict(model, images, ctx)
            labels = np.array([int(images[i].score >= cut) for i in idx])
            out.append(Figure(
                key, "binary accuracy, one column + sigmoid",
                100 * metrics.binary_accuracy(res["prob_high"], labels),
                paper if cut == 5.5 else None, "%",
                f"{len(idx)} {where}, high if mean ≥ {cut:g}"))
        if ava and self.config["rapid_weights"]:
            out += self.rapid_baseline(ctx)
        if test:
            idx, res = self.predict(model, test, ctx)
            scores = np.array([test[i].score for i in idx])
            out.append(Figure("spearman", "Spearman ρ of the single-column score",
                              metrics.spearman(res["score"], scores), None, "",
                              f"{len(idx)} test images"))
        return out

    @torch.no_grad()
    def rapid_baseline(self, ctx: Context) -> list[Figure]:
        """The paper's baseline: a trained RAPID classifier ranks the test pairs by P(high)."""
        from framescore.train.evaluate import prepare
        from framescore.train.loop import Context as LoopContext
        from framescore.train.loop import Dispatch, checkpoint_meta

        path = self.config["rapid_weights"]
        name = checkpoint_meta(path).get("model") or "rapid-scnn"
        if not str(name).startswith("rapid-") or name == "rapid-style":
            raise DataError(f"rapid_weights: {path} is a {name} checkpoint, not a RAPID "
                            "aesthetics classifier")
        recipe, model = prepare(name, path, None, overrides=["test_views=1"])
        model = model.to(ctx.device)
        rctx = LoopContext(Dispatch(model), ctx.device, False, False)
        out: list[Figure] = []
        for key, label in (("test", "own test pairs"), ("standard", "standard pairs")):
            pairs = self.pairs[key]
            if not len(pairs):
                continue
            uniq = np.unique(pairs[:, :2])
            idx, res = recipe.predict(model, [self.records[i] for i in uniq], rctx)
            p = {int(uniq[i]): v for i, v in zip(idx, res["prob_high"], strict=True)}
            keep = [k for k, (i, j, _) in enumerate(pairs.tolist()) if i in p and j in p]
            d = np.array([p[int(pairs[k, 0])] - p[int(pairs[k, 1])] for k in keep])
            out.append(Figure(f"rapid_pair_accuracy_{key}", f"pair accuracy of {name} "
                              f"(P(high)), {label}", 100 * metrics.pair_accuracy(
                                  d, pairs[keep, 2]), RAPID_PAIR_BASELINE[key], "%",
                              f"{len(keep)} pairs, the paper's RAPID baseline; one view"))
        return out
