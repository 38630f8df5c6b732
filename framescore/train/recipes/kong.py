"""Kong et al.'s recipe: the AlexNet regression net on AADB (or AVA), with rank pairs,
attributes and content gating."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from framescore.errors import DataError
from framescore.models.spec import ModelInfo
from framescore.train import metrics
from framescore.train.config import Option, at_least, fraction
from framescore.train.data import PairDataset, Record, read_aadb
from framescore.train.loop import Context, StepResult, epoch_seed
from framescore.train.recipes.base import Figure, Recipe, cap, reported

log = logging.getLogger("framescore.train")


class KongRecipe(Recipe):
    """Kong et al.'s regression network on AADB (or AVA), with rank pairs and attributes.

    AADB: ``train`` trains, ``validation`` validates, ``TestNew`` tests by default
    (``test_list``; scores in [0, 1]); AVA: the mean rescaled ``(mean − 1) / 9``,
    ``generic_test`` tests. ``kong-reg``: the Euclidean loss on images. The others train on
    pairs drawn afresh every epoch: ``n_pairs`` cross-rater pairs (by mean score, drawn with
    probability proportional to their score gap; a million an epoch by default) and every
    within-rater pair (same worker, labelled by that worker's scores; needs the rating CSV,
    and its absence is said loudly); loss = reg + ω_r·rank (Eq. 1: Σ hinge / 2N; α = 0.02
    AADB / 0.15 AVA, ω_r = 1 AADB / 0.1 AVA) + ω_a·attributes (ω_a = 0.1). ``kong-full``:
    the content gate comes from a frozen copy of the trunk taken before fine-tuning: K = 10
    k-means centroids of its fc7 features on AADB; on AVA, a softmax classifier of the eight
    content categories (read from AVA's semantic tags and content lists) fitted on those
    features and then frozen. AVA has no labels for AADB's 11 attributes: their loss is 0
    there (said in the log and the figures).
    """

    family = "kong"
    formats = ("aadb", "ava", "folder")

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        o = cls._common(info, cls.formats, optimizer="sgd", lr=1e-4, momentum=0.9,
                        weight_decay=1e-5, batch_size=64, lr_schedule="plateau",
                        lr_gamma=0.1, epochs=30, early_stop=10, flip=True)
        o["crop_from"] = Option(256, int, "training views are warped to this size, then a "
                                "random crop of the input size is cut (0: no crop)",
                                check=at_least(0))
        o["ratings"] = Option("", str, "AADB rater CSV for within-rater pairs (path; empty: "
                              "a *.csv in the data root with a WorkerId column, if any)")
        o["n_pairs"] = Option(1_000_000, int, "cross-rater pairs per epoch, drawn with "
                              "probability proportional to their score gap (0: as many as "
                              "training images)", check=at_least(0))
        o["within_pairs"] = Option(0, int, "within-rater pairs per epoch at most (0: every "
                                   "within-rater pair)", check=at_least(0))
        o["test_list"] = Option("testnew", str, "AADB test list: testnew (the release's "
                                "TestNew, 1,000 images) or test", choices=("testnew", "test"))
        o["alpha"] = Option(0.0, float, "rank hinge margin α (0: the paper's, 0.02 AADB / "
                            "0.15 AVA)", check=at_least(0))
        o["omega_r"] = Option(0.0, float, "weight ω_r of the rank loss (0: the paper's, 1 AADB "
                              "/ 0.1 AVA)", check=at_least(0))
        o["omega_a"] = Option(0.1, float, "weight ω_a of the attribute loss",
                              check=at_least(0))
        o["kmeans_images"] = Option(2000, int, "kong-full: training images whose fc7 features "
                                    "make the content centroids", check=at_least(1))
        o["test_fraction"] = Option(0.1, float, "folder data: share held out for the test",
                                    check=fraction)
        return o

    @property
    def pairs_mode(self) -> bool:
        return self.info.training.pairs

    @property
    def content(self) -> bool:
        return "content" in self.info.outputs

    def build_kwargs(self, load_weights: bool = True) -> dict[str, Any]:
        if self.content and self.config["data_format"] == "ava":
            from framescore.train.data.ava import CONTENT

            return {"content_k": len(CONTENT), "content_gate": "classifier"}
        return {}

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.info.training.attributes

    def _paper(self, key: str) -> float:
        fmt = self.config["data_format"]
        value = self.config[key]
        if value:
            return value
        table = {"alpha": {"aadb": 0.02, "ava": 0.15}, "omega_r": {"aadb": 1.0, "ava": 0.1}}
        return table[key].get(fmt, table[key]["aadb"])

    def _ratings_csv(self, root: Path) -> Path | None:
        if self.config["ratings"]:
            path = Path(self.config["ratings"]).expanduser()
            return path if path.is_absolute() else root / path
        from framescore.train.data.aadb import WORKER

        for candidate in sorted(root.glob("*.csv")):
            try:
                with open(candidate, encoding="utf-8", errors="replace") as fh:
                    if WORKER in fh.readline():
                        return candidate
            except OSError:
                continue
        return None

    def load(self) -> None:
        cfg = self.config
        fmt = cfg["data_format"]
        self.scale = (0.0, 1.0)
        if fmt == "aadb":
            root = self.require_root()
            ratings = self._ratings_csv(root) if self.pairs_mode else None
            train = read_aadb(root, "train", image_dir=self.image_dir(), ratings=ratings)
            val = read_aadb(root, "validation", image_dir=self.image_dir())
            test = read_aadb(root, cfg["test_list"], image_dir=self.image_dir())
            for rs in (train, val, test):
                self.note(rs.summary())
            if ratings is not None:
                self.note(f"rater CSV: {ratings}")
            elif self.pairs_mode:
                self.note("WARNING: no AADB rater CSV (set ratings = PATH): NO within-rater "
                          "pairs, cross-rater pairs only; the paper's figures use both, so "
                          "none is printed beside ours")
                log.warning("kong: no rater CSV found under %s: within-rater pairs are "
                            "missing", root)
            train_r, val_r, test_r = train.records, val.records, test.records
        elif fmt == "ava":
            train_r, val_r, test_r = self.ava_generic_split()
            self.scale = (1.0, 10.0)
            if self.attributes:
                self.note("AVA has no labels for AADB's 11 attributes: the attribute "
                          "branches get no supervision (their loss is 0)")
            if self.content:
                from framescore.train.data.ava import content_categories

                self.content_of = content_categories(self.require_root(), train_r)
                n = sum(r.id in self.content_of for r in train_r)
                self.note(f"AVA content categories (semantic tags, content lists): {n} of "
                          f"{len(train_r)} training images labelled")
        else:
            train_r, val_r, test_r = self.folder_splits((cfg["test_fraction"],
                                                         cfg["val_fraction"]))
            scores = np.array([r.score for r in train_r])
            self.scale = (float(scores.min()), float(scores.max())) if len(scores) else (0, 1)
            if self.scale[1] <= self.scale[0]:
                self.scale = (self.scale[0], self.scale[0] + 1.0)
        self.train_records = cap(train_r, cfg["max_images"], cfg["seed"])
        self.val_records, self.test_records = val_r, test_r
        self.note(f"kong: {len(self.train_records)} train, {len(val_r)} val, {len(test_r)} "
                  "test images")
        self.train_images = self.images(self.train_records, train=True, target=self._target)

    def rescale(self, score: float) -> float:
        """The target: the mean rating rescaled to [0, 1]."""
        lo, hi = self.scale
        return (score - lo) / (hi - lo)

    def _target(self, r: Record) -> dict[str, Any]:
        attrs = np.zeros(len(self.attributes), dtype=np.float32)
        mask = np.zeros(len(self.attributes), dtype=np.float32)
        for k, name in enumerate(self.attributes):
            if name in r.attributes:
                attrs[k], mask[k] = r.attributes[name], 1.0
        return {"score": np.float32(self.rescale(r.score)), "attributes": attrs, "mask": mask}

    def train_data(self, epoch: int) -> Dataset:
        if not self.pairs_mode:
            return self.train_images
        from framescore.train.samplers import gap_biased_pairs, within_rater_pairs

        n = len(self.train_records)
        seed = epoch_seed(self.config["seed"], epoch, 7) % 2**32
        cross = gap_biased_pairs(self.train_records, self.config["n_pairs"] or n, seed=seed)
        parts = [cross]
        if any(r.ratings for r in self.train_records):
            parts.append(within_rater_pairs(self.train_records,
                                            self.config["within_pairs"] or None,
                                            seed=seed + 1))
        pairs = np.concatenate(parts)
        if not len(pairs):
            raise DataError("no training pair: every training image has the same score")
        return PairDataset(self.train_images, pairs)

    def start(self, model: nn.Module, ctx: Context) -> None:
        if not getattr(model, "content_k", 0):
            return
        from framescore.models.kong import fit_content_classifier, kmeans

        k = model.content_k
        model.freeze_content_branch()  # the trunk as it starts (ImageNet), frozen from now
        run = lambda m, x: {"f": m.content_features(x)}  # noqa: E731
        if model.content_classifier is not None:
            records = [r for r in self.train_records if r.id in self.content_of]
            if len({self.content_of[r.id] for r in records}) < 2:
                raise DataError("kong-full on AVA needs training images of at least two "
                                "content categories (semantic tags or content lists)")
            idx, out = self.predict(model, records, ctx, run=run)
            labels = torch.tensor([self.content_of[records[i].id] for i in idx])
            weight, bias = fit_content_classifier(torch.from_numpy(out["f"]).float(),
                                                  labels, k)
            model.set_content_classifier(weight, bias)
            self.note(f"content branch: softmax over the {k} AVA categories fitted on "
                      f"{len(idx)} labelled training images, then frozen")
            return
        records = cap(self.train_records, self.config["kmeans_images"], self.config["seed"])
        if len(records) < k:
            raise DataError(f"kong-full needs at least {k} training images for its content "
                            f"clusters, found {len(records)}")
        _, out = self.predict(model, records, ctx, run=run)
        feats = torch.from_numpy(out["f"]).float()
        model.set_centroids(kmeans(feats, k, seed=self.config["seed"]))
        self.note(f"content centroids: k-means (K = {k}) on {len(feats)} training images "
                  "(frozen content branch)")

    def step(self, ctx: Context, batch: dict) -> StepResult:
        from framescore.train.losses import attribute_loss, euclidean_loss, rank_hinge_loss

        if not self.pairs_mode:
            out = ctx.call("forward", self.inputs(ctx, batch["image"]))
            t = batch["target"]
            loss = euclidean_loss(out["score"].float(), t["score"].to(ctx.device))
            return StepResult(loss, int(batch["size"]), {"reg": loss.detach()})
        # both images of every pair in one forward pass (BatchNorm-free AlexNet, DDP-friendly)
        x = torch.cat([self.inputs(ctx, batch["image1"]), self.inputs(ctx, batch["image2"])])
        out = ctx.call("forward", x)
        n = int(batch["size"])
        s = out["score"].float()
        t1, t2 = batch["target1"], batch["target2"]
        reg = euclidean_loss(s, torch.cat([t1["score"], t2["score"]]).to(ctx.device))
        # the order comes from the pair label y: the mean scores for cross-rater pairs, the
        # worker's own scores for within-rater pairs (which may disagree with the means)
        y = batch["y"].to(ctx.device)
        rank = rank_hinge_loss(s[:n], s[n:], (y + 1) / 2, (1 - y) / 2, self._paper("alpha"))
        total = reg + self._paper("omega_r") * rank
        logs = {"reg": reg.detach(), "rank": rank.detach()}
        if self.attributes and "attributes" in out:
            pred = out["attributes"].float()
            target = torch.cat([t1["attributes"], t2["attributes"]]).to(ctx.device)
            mask = torch.cat([t1["mask"], t2["mask"]]).to(ctx.device)
            att = attribute_loss(pred, target, mask)
            total = total + self.config["omega_a"] * att
            logs["attributes"] = att.detach()
        return StepResult(total, 2 * n, logs)

    def _scores(self, model: nn.Module, records: Sequence[Record],
                ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        idx, out = self.predict(model, records, ctx)
        truth = np.array([self.rescale(records[i].score) for i in idx])
        return out["score"], truth

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        if not self.val_records:
            return {}
        pred, truth = self._scores(model, self.val_records, ctx)
        rho = metrics.spearman(pred, truth)
        return {"spearman": rho, "mse": metrics.mse(pred, truth),
                "monitor": rho if math.isfinite(rho) else -1.0}

    def test(self, model: nn.Module, ctx: Context) -> list[Figure]:
        fmt = self.config["data_format"]
        pred, truth = self._scores(model, self.test_records, ctx)
        note = f"{len(pred)} test images"
        paper = reported(self.info, f"{fmt}_spearman")
        if fmt == "aadb":
            listed = "TestNew" if self.config["test_list"] == "testnew" else "Test"
            note += (f" ({listed}; the paper does not name its test list, the release ships "
                     "Test and TestNew)")
            if self.pairs_mode and not any(r.ratings for r in self.train_records):
                paper = None
                note += "; no within-rater pairs (no rater CSV): not the paper's protocol"
        if fmt == "ava" and self.attributes:
            note += "; AVA cannot supervise the 11 attributes (no labels)"
        out = [Figure("spearman", "Spearman ρ", metrics.spearman(pred, truth), paper, "",
                      note),
               Figure("pearson", "Pearson r", metrics.pearson(pred, truth), None, "", note),
               Figure("mse", "MSE (scores in [0, 1])", metrics.mse(pred, truth), None, "",
                      note)]
        if fmt == "ava" and self.val_records:
            vpred, vtruth = self._scores(model, self.val_records, ctx)
            cut = self.rescale(5.0)
            threshold = metrics.best_threshold(vpred, (vtruth >= cut).astype(int))
            acc = metrics.binary_accuracy(pred, (truth >= cut).astype(int), threshold)
            out.append(Figure("ava_accuracy", "binary accuracy (threshold from validation)",
                              100 * acc, reported(self.info, "ava_accuracy"), "%", note))
        return out
