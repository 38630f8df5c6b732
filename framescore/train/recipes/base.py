"""One training recipe per paper family: data, views, loss, optimizer defaults, evaluation.

A :class:`Recipe` is made for one registered model, its resolved settings and a dataset root.
It reads the dataset in its own format (labels only: no image is opened until training),
splits it as the paper does, and then serves as the :class:`~framescore.train.loop.Task` of
the training loop (the data of each epoch, one step, validation) and as the test protocol of
``framescore evaluate`` (the paper's metrics with the paper's figures beside ours).

========================  =========================================================  ========
family (models)           data, sampling and loss                                    monitor
========================  =========================================================  ========
rapid (rapid-scnn*,       AVA, standard split, binary labels high if mean ≥ 5 + δ,   val acc
rapid-dcnn, rapid-rdcnn*) low if ≤ 5 − δ; view at 256, random 224 crop + flip;
                          softmax cross-entropy; test: P(high) averaged over 50
                          random views
rapid (rapid-style)       AVA style lists (14 styles); cross-entropy; test mAP        val mAP
relative                  AVA pairs (|Δmean| ≥ 1, variances < 2.6, same tag), unique  val pair
(relative-siamese)        images; hinge max(0, 3 − y·d); SGD Nesterov, ×0.85 every    acc
                          10 epochs, early stop after 10
kong (kong-*)             AADB train / validation / TestNew (or AVA, scores rescaled  val ρ
                          to [0, 1]); Euclidean loss; pairs (cross-rater + within-
                          rater) with the rank hinge; 11 attribute regressors; k-means
                          content gating (K = 10, centroids from the starting fc7)
arod (arod-resnet50,      AROD list.txt (S = log faves / log views), random test /    val ρ of
framescore-mobile)        val split; triplets on the fly (α < ratios < β); AROD's     ‖Φ‖ vs S
                          directional triplet loss; score = ‖Φ‖
jin (jin-*)               AVA minus RS-test (3,000 random) and ED-test (1,000 per     −val
                          band); whole image warped; (weighted) MSE or weighted χ²    loss
                          on the vote histogram
========================  =========================================================  ========

Where a paper is silent the choice is ours and written in the option's help (see
``framescore train MODEL --show-config``). Besides each family's own dataset, every family but
the style column also trains on a plain folder + ``scores.csv`` (``data_format = "folder"``).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from framescore.errors import DataError, UsageError
from framescore.models.spec import InputSpec, ModelInfo
from framescore.train import metrics
from framescore.train.config import COMMON, Option, at_least, fraction, with_defaults
from framescore.train.data import (
    ImageDataset,
    PairDataset,
    Record,
    TripletDataset,
    collate_skip,
    read_aadb,
    read_arod,
    read_ava,
    read_folder,
    read_style,
)
from framescore.train.loop import Context, StepResult, epoch_seed

log = logging.getLogger("framescore.train")


# ---------------------------------------------------------------------------------------------
# evaluation figures


@dataclass
class Figure:
    """One line of an evaluation table: our value and, where the paper reports one, theirs.

    ``ours``/``paper`` are numbers (or ``(low, high)`` for a score range) in ``unit``.
    """

    key: str
    metric: str
    ours: float | tuple[float, float]
    paper: float | tuple[float, float] | None = None
    unit: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "metric": self.metric, "ours": _plain(self.ours),
                "paper": _plain(self.paper), "unit": self.unit, "note": self.note}


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _reported(info: ModelInfo, key: str) -> Any:
    return (info.extra.get("reported") or {}).get(key)


# ---------------------------------------------------------------------------------------------
# views


ViewFn = Callable[[np.ndarray, np.random.Generator], Any]


def sized(spec: InputSpec, size: int) -> InputSpec:
    """``spec`` at ``size`` x ``size`` (unchanged for size 0)."""
    return spec if not size else replace(spec, height=size, width=size)


def train_view(spec: InputSpec, crop_from: int = 0, flip: bool = False) -> ViewFn:
    """A random training view: ``spec.view`` at ``crop_from`` x ``crop_from`` and a random
    ``spec.size`` crop of it (RAPID, Kong: 256 → 224/227), or ``spec.view`` straight at the
    input size when ``crop_from`` is 0; then a horizontal flip half of the time."""
    from framescore.preprocess import view

    big = sized(spec, crop_from) if crop_from > spec.height else None

    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if big is None:
            out = view(image, spec, rng)
        else:
            base = view(image, big, rng)
            top = int(rng.integers(0, big.height - spec.height + 1))
            left = int(rng.integers(0, big.width - spec.width + 1))
            out = base[top:top + spec.height, left:left + spec.width]
        if flip and rng.random() < 0.5:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    return apply


def test_view(spec: InputSpec) -> ViewFn:
    """The deterministic view: ``spec.view`` at the input size (a patch view: the centre)."""
    from framescore.preprocess import view

    return lambda image, rng: np.ascontiguousarray(view(image, spec, None))


def multi_view(views: Mapping[str, ViewFn]) -> ViewFn:
    """Several views of one image as a dict (two-column nets: ``global`` and ``local``)."""
    return lambda image, rng: {name: fn(image, rng) for name, fn in views.items()}


def repeated_view(fn: ViewFn, n: int) -> ViewFn:
    """``n`` draws of a random view stacked on a new first axis (test-time averaging)."""

    def apply(image: np.ndarray, rng: np.random.Generator) -> Any:
        draws = [fn(image, rng) for _ in range(n)]
        if isinstance(draws[0], dict):
            return {k: np.stack([d[k] for d in draws]) for k in draws[0]}
        return np.stack(draws)

    return apply


def _draft(specs: Sequence[InputSpec], crop_from: int) -> tuple[int, int] | None:
    """How far JPEG decoding may reduce images (None when a view needs full resolution)."""
    if any(s.view == "patch" for s in specs):
        return None
    side = max([crop_from] + [max(s.size) for s in specs])
    return (side, side)


# ---------------------------------------------------------------------------------------------
# splits


def random_split(records: Sequence[Record], fractions: Sequence[float],
                 seed: int) -> list[list[Record]]:
    """``records`` cut at random into parts of the given ``fractions`` plus the rest (last)."""
    order = np.random.default_rng(seed).permutation(len(records))
    parts: list[list[Record]] = []
    start = 0
    for f in fractions:
        n = int(round(len(records) * f))
        if f > 0:
            n = max(1, n)
        parts.append([records[i] for i in sorted(order[start:start + n])])
        start += n
    parts.append([records[i] for i in sorted(order[start:])])
    return parts


def cap(records: list[Record], limit: int, seed: int) -> list[Record]:
    """At most ``limit`` records (a random subset, order kept); all when ``limit`` is 0."""
    if not limit or len(records) <= limit:
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), limit, replace=False))
    return [records[i] for i in keep]


# ---------------------------------------------------------------------------------------------
# building models


def accepts(fn: Callable, name: str) -> bool:
    """Whether ``fn`` (a class, function or partial) takes a keyword ``name``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD
                                 for p in params.values())


def freeze(model: nn.Module, prefixes: Sequence[str]) -> list[nn.Module]:
    """Fix the parameters whose name starts with one of ``prefixes``; returns the modules
    that are entirely frozen (kept in eval mode while training, so their BatchNorm statistics
    and dropout stay fixed too). A prefix that names nothing is a :class:`UsageError`."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n == prefix or n.startswith(prefix.rstrip(".") + ".") for n in names):
            raise UsageError(f"freeze: no parameter of {type(model).__name__} starts with "
                             f"{prefix!r}")
    def hit(name: str) -> bool:
        return any(name == p or name.startswith(p.rstrip(".") + ".") for p in prefixes)

    for name, param in model.named_parameters():
        if hit(name):
            param.requires_grad_(False)
    modules = [m for name, m in model.named_modules()
               if name and hit(name) and not any(p.requires_grad for p in m.parameters())]
    return modules


# ---------------------------------------------------------------------------------------------
# prediction


def _to_model(ctx: Context, image: Any, specs: Mapping[str, InputSpec]) -> Any:
    if isinstance(image, dict):
        return {k: ctx.tensor(v, specs[k]) for k, v in image.items()}
    return ctx.tensor(image, specs["global"])


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, ctx: Context, specs: Mapping[str, InputSpec],
            batch_size: int, workers: int, run: Callable[[nn.Module, Any], dict]) -> tuple[
                np.ndarray, dict[str, np.ndarray]]:
    """``run(model, inputs)`` over a dataset of :class:`ImageDataset` items in eval mode.

    ``inputs`` is a tensor (or ``{"global", "local"}`` tensors) per batch; with repeated views
    (items of shape ``(V, H, W, 3)``) the outputs are averaged over the V views. Returns the
    indices of the readable items and the outputs as float64 arrays in that order.
    """
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=collate_skip)
    indices: list[np.ndarray] = []
    outs: dict[str, list[np.ndarray]] = {}
    try:
        for batch in loader:
            if not batch.get("size"):
                continue
            image = batch["image"]
            first = next(iter(image.values())) if isinstance(image, dict) else image
            if first.ndim == 5:  # (N, V, H, W, 3): average over the views
                total: dict[str, torch.Tensor] = {}
                n_views = first.shape[1]
                for v in range(n_views):
                    part = ({k: t[:, v] for k, t in image.items()} if isinstance(image, dict)
                            else image[:, v])
                    with ctx.autocast():
                        out = run(model, _to_model(ctx, part, specs))
                    for k, t in out.items():
                        total[k] = total[k] + t.float() if k in total else t.float()
                out = {k: t / n_views for k, t in total.items()}
            else:
                with ctx.autocast():
                    out = run(model, _to_model(ctx, image, specs))
            for k, t in out.items():
                outs.setdefault(k, []).append(t.float().cpu().numpy().astype(np.float64))
            indices.append(np.asarray(batch["index"]))
    finally:
        model.train(was_training)
    if not indices:
        raise DataError("no readable image to evaluate on")
    return np.concatenate(indices), {k: np.concatenate(v) for k, v in outs.items()}


def _forward(model: nn.Module, x: Any) -> dict[str, torch.Tensor]:
    if isinstance(x, dict):
        return model.forward_views(x["global"], x["local"])
    return model(x)


# ---------------------------------------------------------------------------------------------
# the recipe base


class Recipe:
    """The common part of every family's recipe (see the module docstring for the families).

    Subclasses set :attr:`family`, :attr:`formats`, :meth:`options` (paper defaults and their
    own keys) and implement :meth:`load`, :meth:`train_data`, :meth:`step`, :meth:`validate`
    and :meth:`test`.
    """

    family: ClassVar[str] = ""
    formats: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, info: ModelInfo, config: Mapping[str, Any],
                 root: str | Path | None) -> None:
        self.name = name
        self.info = info
        self.config = dict(config)
        self.root = Path(root).expanduser() if root is not None else None
        self.specs = self._specs()
        self.loaded = False
        self.for_training = True  # False: evaluation only (training-only checks skipped)
        self.summary: list[str] = []
        self.workers = int(self.config["workers"])

    # ---- settings
    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        """Every setting of this family for ``info``, with the paper's defaults."""
        raise NotImplementedError

    @staticmethod
    def _common(info: ModelInfo, formats: tuple[str, ...], **paper: Any) -> dict[str, Option]:
        """COMMON with ``paper`` defaults (updated from the model's own RECIPE where it says
        so), plus ``data_format`` and ``image_dir``."""
        recipe = info.extra.get("recipe") or {}
        for key in ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "nesterov",
                    "epochs"):
            if key in recipe and isinstance(recipe[key], type(COMMON[key].default)):
                paper[key] = recipe[key]
        options = with_defaults(COMMON, **paper)
        options["data_format"] = Option(formats[0], str, "dataset layout under --data",
                                        choices=formats)
        options["image_dir"] = Option("", str, "image folder when not the dataset's usual "
                                      "place (path; empty: the default)")
        return options

    def _specs(self) -> dict[str, InputSpec]:
        size = self.config["size"]
        views = self.info.extra.get("views")
        if views:
            return {"global": sized(views["global"], size), "local": sized(views["local"], size)}
        return {"global": sized(self.info.spec, size)}

    @property
    def spec(self) -> InputSpec:
        return self.specs["global"]

    @property
    def two_views(self) -> bool:
        return "local" in self.specs

    def crop_from(self) -> int:
        """The training resize before the random crop, scaled with ``size``."""
        base = int(self.config.get("crop_from", 0) or 0)
        if not base:
            return 0
        return round(base * self.spec.height / self.info.spec.height)

    # ---- views
    def view(self, train: bool) -> ViewFn:
        flip = bool(self.config["flip"]) and train
        crop = self.crop_from() if train else 0

        def one(spec: InputSpec) -> ViewFn:
            return train_view(spec, crop, flip) if train else test_view(spec)

        if self.two_views:
            return multi_view({k: one(s) for k, s in self.specs.items()})
        return one(self.spec)

    def images(self, records: Sequence[Record], train: bool,
               target: Callable[[Record], Any] | None = None,
               view: ViewFn | None = None) -> ImageDataset:
        draft = _draft(list(self.specs.values()), self.crop_from() if train else 0)
        return ImageDataset(records, view=view or self.view(train), target=target, draft=draft)

    def inputs(self, ctx: Context, image: Any) -> Any:
        return _to_model(ctx, image, self.specs)

    # ---- model
    def build_model(self, load_weights: bool = True) -> nn.Module:
        """The model, at ``size`` when set; with ``load_weights``, the ImageNet / init weights
        of the settings are loaded (evaluation loads a whole checkpoint instead)."""
        build = self.info.build
        if build is None:
            raise UsageError(f"model {self.name!r} has no neural network to train")
        if load_weights:
            self.check()
        kwargs = self.build_kwargs(load_weights)
        size = self.config["size"]
        resized = bool(size) and size != self.info.spec.height
        if resized and accepts(build, "size"):
            kwargs["size"] = size
        model = build(**kwargs)
        if resized:
            self._check_size(model, sized="size" in kwargs)
        if load_weights and self.config["imagenet_weights"]:
            self.load_imagenet(model, Path(self.config["imagenet_weights"]).expanduser())
        if load_weights and self.config["init_weights"]:
            from framescore.models.weights import load_into

            load_into(model, Path(self.config["init_weights"]).expanduser())
        if self.config["freeze"]:
            self.frozen = freeze(model, self.config["freeze"])
        return model

    def build_kwargs(self, load_weights: bool = True) -> dict[str, Any]:
        """Extra keyword arguments of the model's builder (``load_weights``: False when a whole
        checkpoint will be loaded over the model)."""
        return {}

    #: settings that name weight files
    WEIGHT_KEYS: ClassVar[tuple[str, ...]] = ("imagenet_weights", "init_weights",
                                              "style_weights")

    def check(self) -> None:
        """Fail early (before any data is read) on settings that cannot work: weight files
        that do not exist, weights a model needs but was not given."""
        from framescore.errors import WeightsError

        for key in self.WEIGHT_KEYS:
            value = self.config.get(key)
            if value and not Path(value).expanduser().is_file():
                raise WeightsError(f"{key}: file not found: {value}")

    def _check_size(self, model: nn.Module, sized: bool) -> None:
        """The model must take the asked size: built for it (``sized``: its builder has a size
        option) or fully convolutional with adaptive pooling; else one clear line. (A sized
        net can still have a part that needs more, e.g. RDCNN-semantic's AlexNet column.)"""
        h, w = self.spec.size
        x = torch.zeros(2, 3, h, w)
        try:
            with torch.no_grad():
                model.eval()
                if self.two_views:
                    model.forward_views(x, x)
                else:
                    model(x)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0][:100]
            why = "" if sized else "its builder has no size option: "
            raise UsageError(f"{self.name} cannot take {h}x{w} input ({why}{first}); leave "
                             "size at 0 or set a larger one") from None
        finally:
            model.train()

    def load_imagenet(self, model: nn.Module, path: Path) -> None:
        import importlib

        module = importlib.import_module(type(model).__module__)
        loader = getattr(module, "load_imagenet_backbone", None)
        if loader is None:
            raise UsageError(f"{self.name} takes no ImageNet backbone weights")
        loader(model, path)

    def train_mode(self, model: nn.Module) -> None:
        """Training mode, with frozen parts (``freeze``) left in eval mode."""
        model.train()
        for module in getattr(self, "frozen", ()):
            module.eval()

    def trainable(self, model: nn.Module) -> list:
        if hasattr(model, "trainable_parameters"):
            return list(model.trainable_parameters())
        return [p for p in model.parameters() if p.requires_grad]

    # ---- data
    def require_root(self) -> Path:
        if self.root is None:
            raise UsageError("--data ROOT is needed")
        if not self.root.exists():
            raise DataError(f"data root not found: {self.root}")
        return self.root

    def image_dir(self) -> Path | None:
        d = self.config["image_dir"]
        if not d:
            return None
        path = Path(d).expanduser()
        return path if path.is_absolute() else self.require_root() / path

    def load(self) -> None:
        """Read the labels and make the splits (no image is decoded here)."""
        raise NotImplementedError

    def ava_generic_split(self) -> tuple[list[Record], list[Record], list[Record]]:
        """AVA's standard split: test = ``generic_test.jpgl``; validation = ``val_fraction`` of
        the rest (seeded); train = the remainder. Returns ``(train, val, test)``."""
        from framescore.train.data import generic_test_ids

        root = self.require_root()
        rs = read_ava(root, image_dir=self.image_dir())
        self.note(rs.summary())
        ids = set(generic_test_ids(root))
        test = [r for r in rs.records if r.id in ids]
        val, train = random_split([r for r in rs.records if r.id not in ids],
                                  [self.config["val_fraction"]], self.config["seed"])
        return train, val, test

    def ensure_loaded(self) -> None:
        if not self.loaded:
            self.load()
            self.loaded = True

    def note(self, line: str) -> None:
        self.summary.append(line)
        log.info("%s", line)

    # ---- Task protocol
    collate = staticmethod(collate_skip)

    def start(self, model: nn.Module, ctx: Context) -> None:
        """Nothing by default (Kong's content model computes its centroids here)."""

    def train_data(self, epoch: int) -> Dataset:
        raise NotImplementedError

    def step(self, ctx: Context, batch: dict) -> StepResult:
        raise NotImplementedError

    def validate(self, model: nn.Module, ctx: Context) -> dict[str, float]:
        raise NotImplementedError

    def test(self, model: nn.Module, ctx: Context) -> list[Figure]:
        raise NotImplementedError

    # ---- helpers
    def predict(self, model: nn.Module, records: Sequence[Record], ctx: Context,
                run: Callable[[nn.Module, Any], dict] = _forward,
                view: ViewFn | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        dataset = self.images(records, train=False, view=view)
        return predict(model, dataset, ctx, self.specs, self.config["eval_batch_size"],
                       self.workers, run)

    def folder_splits(self, fractions: tuple[float, float]) -> tuple[list[Record], ...]:
        """A folder + CSV cut at random into train / val / test (test_fraction, val_fraction)."""
        rs = read_folder(self.require_root(), image_dir=self.image_dir())
        self.note(rs.summary())
        test, val, train = random_split(rs.records, fractions, self.config["seed"])
        return train, val, test


# ---------------------------------------------------------------------------------------------
# RAPID


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
                p, labels), _reported(self.info, "style_map"), "%", note)]
        labels = np.array([self.test_records[i].label for i in idx])
        paper = _reported(self.info, "ava_accuracy") if (
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


# ---------------------------------------------------------------------------------------------
# relative aesthetics


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
                                  _reported(self.info, paper) if ava else None, "%",
                                  f"{n} pairs"))
        test = [r for r in self.records if r.id in self.test_ids]
        if test:
            idx, res = self.predict(model, test, ctx)
            labels = np.array([int(test[i].score >= 5.0) for i in idx])
            if ava:
                out.append(Figure(
                    "ava_accuracy_single_column", "binary accuracy, one column + sigmoid",
                    100 * metrics.binary_accuracy(res["prob_high"], labels),
                    _reported(self.info, "ava_accuracy_single_column"), "%",
                    f"{len(idx)} AVA test images, δ = 0"))
            scores = np.array([test[i].score for i in idx])
            out.append(Figure("spearman", "Spearman ρ of the single-column score",
                              metrics.spearman(res["score"], scores), None, "",
                              f"{len(idx)} test images"))
        return out


# ---------------------------------------------------------------------------------------------
# Kong et al.


class KongRecipe(Recipe):
    """Kong et al.'s regression network on AADB (or AVA), with rank pairs and attributes.

    AADB: ``train`` trains, ``validation`` validates, ``TestNew`` tests (scores in [0, 1]);
    AVA: the mean rescaled ``(mean − 1) / 9``, ``generic_test`` tests. ``kong-reg``: the
    Euclidean loss on images. The others train on pairs: ``n_pairs`` cross-rater pairs (by
    mean score) and up to ``within_pairs`` within-rater pairs (same worker; needs the rating
    CSV) drawn afresh every epoch; loss = reg + ω_r·rank (α = 0.02 AADB / 0.15 AVA, ω_r = 1
    AADB / 0.1 AVA) + ω_a·attributes (ω_a = 0.1). ``kong-full``: the K = 10 content centroids
    come from k-means on the fc7 features of the training images before training starts.
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
        o["n_pairs"] = Option(0, int, "cross-rater pairs per epoch (0: as many as training "
                              "images)", check=at_least(0))
        o["within_pairs"] = Option(0, int, "within-rater pairs per epoch at most (0: as many "
                                   "as training images)", check=at_least(0))
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
        return bool(self.info.extra.get("pairs"))

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.info.extra.get("attributes") or ())

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
            test = read_aadb(root, "testnew", image_dir=self.image_dir())
            for rs in (train, val, test):
                self.note(rs.summary())
            if ratings is not None:
                self.note(f"rater CSV: {ratings}")
            train_r, val_r, test_r = train.records, val.records, test.records
        elif fmt == "ava":
            train_r, val_r, test_r = self.ava_generic_split()
            self.scale = (1.0, 10.0)
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
        from framescore.train.samplers import cross_rater_pairs, within_rater_pairs

        n = len(self.train_records)
        seed = epoch_seed(self.config["seed"], epoch, 7) % 2**32
        cross = cross_rater_pairs(self.train_records, self.config["n_pairs"] or n, seed=seed)
        parts = [cross]
        if any(r.ratings for r in self.train_records):
            parts.append(within_rater_pairs(self.train_records,
                                            self.config["within_pairs"] or n, seed=seed + 1))
        pairs = np.concatenate(parts)
        if not len(pairs):
            raise DataError("no training pair: every training image has the same score")
        return PairDataset(self.train_images, pairs)

    def start(self, model: nn.Module, ctx: Context) -> None:
        if not getattr(model, "content_k", 0):
            return
        from framescore.models.kong import kmeans

        k = model.content_k
        records = cap(self.train_records, self.config["kmeans_images"], self.config["seed"])
        if len(records) < k:
            raise DataError(f"kong-full needs at least {k} training images for its content "
                            f"clusters, found {len(records)}")
        _, out = self.predict(model, records, ctx, run=lambda m, x: {"f": m.features(x)})
        feats = torch.from_numpy(out["f"]).float()
        model.set_centroids(kmeans(feats, k, seed=self.config["seed"]))
        self.note(f"content centroids: k-means (K = {k}) on {len(feats)} training images")

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
        note = f"{len(pred)} test images" + (" (TestNew)" if fmt == "aadb" else "")
        out = [Figure("spearman", "Spearman ρ", metrics.spearman(pred, truth),
                      _reported(self.info, f"{fmt}_spearman"), "", note),
               Figure("pearson", "Pearson r", metrics.pearson(pred, truth), None, "", note),
               Figure("mse", "MSE (scores in [0, 1])", metrics.mse(pred, truth), None, "",
                      note)]
        if fmt == "ava" and self.val_records:
            vpred, vtruth = self._scores(model, self.val_records, ctx)
            cut = self.rescale(5.0)
            threshold = metrics.best_threshold(vpred, (vtruth >= cut).astype(int))
            acc = metrics.binary_accuracy(pred, (truth >= cut).astype(int), threshold)
            out.append(Figure("ava_accuracy", "binary accuracy (threshold from validation)",
                              100 * acc, _reported(self.info, "ava_accuracy"), "%", note))
        return out


# ---------------------------------------------------------------------------------------------
# AROD


class ArodRecipe(Recipe):
    """AROD's aesthetic space: directional triplet loss on on-the-fly triplets; score = ‖Φ‖.

    AROD data: ``list.txt`` (S = log faves / log views; lines with views ≤ 1 or no faves
    dropped), cut at random into test (``test_fraction``), validation and training images
    (the paper gives no split). AVA data (the paper's fine-tuning to AVA): S = the mean vote,
    ``generic_test`` tests, and the binary accuracy thresholds ‖Φ‖ at the value that is best on
    validation. Triplets: α < |S(a) − S(p)| / |S(•) − S(n)| < β, half with the odd one out
    better, half worse. ``preset`` ``paper``: SGD 1e-3 ÷ 10 on plateau, 1000-D, m = m̃ = 1;
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
        return kwargs

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

        if self.for_training:
            self.sampler = TripletSampler(self.train_records,
                                          self.setting("triplet_alpha", "alpha"),
                                          self.setting("triplet_beta", "beta"))
        self.train_images = self.images(self.train_records, train=True)

    def train_data(self, epoch: int) -> Dataset:
        n = self.config["triplets_per_epoch"] or len(self.train_records)
        return TripletDataset(self.train_images, self.sampler, n)

    def variant(self) -> str:
        return self.config["variant"] or self.preset().variant

    def step(self, ctx: Context, batch: dict) -> StepResult:
        from framescore.train.losses import directional_triplet_terms

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
        if self.config["data_format"] == "ava" and self.val_records:
            vpred, vtruth = self._scores(model, self.val_records, ctx)
            threshold = metrics.best_threshold(vpred, (vtruth >= 5.0).astype(int))
            acc = metrics.binary_accuracy(pred, (truth >= 5.0).astype(int), threshold)
            out.append(Figure("ava_accuracy", "AVA binary accuracy (threshold from validation)",
                              100 * acc, 75.83 if self.name == "arod-resnet50" else None, "%",
                              note))
        return out


# ---------------------------------------------------------------------------------------------
# Jin et al.


class JinRecipe(Recipe):
    """Jin et al.'s weighted CNNs on AVA: RS-test (3,000 random images) and ED-test (1,000
    each with mean < 4, 4..7, > 7) are set aside, everything else trains (``val_fraction``
    held out). Sample weights w = 1 / normalized frequency of the mean's bin (90 bins over
    1..10). Losses: MSE (``jin-mse``), weighted MSE (``jin-wmse``), weighted χ² between the
    predicted and the voted histograms (``jin-histogram``). Test: MSE of the mean on RS and
    ED, the predicted score range, RMSER of the predicted std (histogram model)."""

    family = "jin"
    formats = ("ava", "folder")

    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        o = cls._common(info, cls.formats, optimizer="sgd", lr=1e-5, momentum=0.9,
                        batch_size=32, lr_schedule="none", epochs=20, early_stop=0)
        o["rs_size"] = Option(3000, int, "RS-test: random test images", check=at_least(1))
        o["ed_per_bin"] = Option(1000, int, "ED-test: images per band (< 4, 4..7, > 7)",
                                 check=at_least(1))
        o["bins"] = Option(90, int, "bins of the sample weights over 1..10", check=at_least(1))
        return o

    @property
    def histogram(self) -> bool:
        return self.info.extra.get("task") == "histogram"

    @property
    def weighted(self) -> bool:
        return bool(self.info.extra.get("weighted"))

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
                                      w)
        else:
            loss = weighted_mse_loss(out["score"].float(), t["score"].to(ctx.device), w)
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
                              _reported(self.info, f"mse_{tag}"), "", note))
            if self.histogram:
                true_std = np.array([math.sqrt(r.variance or 0.0) for r in recs])
                out.append(Figure(f"rmser_{tag}", f"RMSER of the std, {tag.upper()}-test",
                                  100 * metrics.rmser(res["std"], true_std),
                                  _reported(self.info, f"rmser_{tag}"), "%", note))
            preds.append(res["score"])
        if preds:
            low, high = metrics.score_range(np.concatenate(preds))
            out.append(Figure("range", "predicted score range", (low, high),
                              _reported(self.info, "range"), "", "RS + ED test images"))
        return out


# ---------------------------------------------------------------------------------------------
# choosing a recipe


FAMILIES: dict[str, type[Recipe]] = {
    "rapid": RapidRecipe, "relative": RelativeRecipe, "kong": KongRecipe, "arod": ArodRecipe,
    "jin": JinRecipe,
}
#: Models whose registry entry names no family, by their module.
BY_MODULE = {"framescore.models.arod": "arod", "framescore.models.mobile": "arod"}


def _family(info: ModelInfo) -> str | None:
    family = info.extra.get("family")
    if family in FAMILIES:
        return family
    build = info.build
    target = getattr(build, "func", build)
    return BY_MODULE.get(getattr(target, "__module__", ""))


def family_of(info: ModelInfo) -> str:
    """The recipe family of a registered model (UsageError when nothing can train it)."""
    family = _family(info)
    if family is None:
        raise UsageError(f"model {info.name!r} has no training recipe (trainable: "
                         f"{', '.join(trainable_models())})")
    return family


def trainable_models() -> list[str]:
    """The registered models a recipe can train."""
    from framescore.models.registry import REGISTRY

    return [name for name, info in REGISTRY.items() if _family(info) is not None]


def recipe_class(name: str) -> tuple[ModelInfo, type[Recipe]]:
    """The registry entry and recipe class of model ``name``."""
    from framescore.models.registry import get

    info = get(name)
    return info, FAMILIES[family_of(info)]


def options_for(name: str) -> dict[str, Option]:
    """Every setting (with the paper's default) of model ``name``'s recipe."""
    info, cls = recipe_class(name)
    return cls.options(info)


def make_recipe(name: str, config: Mapping[str, Any], root: str | Path | None) -> Recipe:
    """The configured recipe of model ``name`` on the dataset at ``root``."""
    info, cls = recipe_class(name)
    return cls(name, info, config, root)


__all__ = [
    "ArodRecipe", "Figure", "JinRecipe", "KongRecipe", "RapidRecipe", "Recipe", "RelativeRecipe",
    "family_of", "make_recipe", "options_for", "predict", "random_split", "recipe_class",
    "trainable_models", "train_view",
]

