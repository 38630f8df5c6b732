"""What every training recipe shares: evaluation figures, views, splits, building models,
prediction, and the :class:`Recipe` base class the families' recipes extend (see
:mod:`framescore.train.recipes` for the families).
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
from framescore.train.config import COMMON, Option, with_defaults
from framescore.train.data import ImageDataset, Record, collate_skip, read_ava, read_folder
from framescore.train.loop import Context, StepResult

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


def reported(info: ModelInfo, key: str) -> Any:
    """The paper's figure ``key`` for ``info`` (None where the paper reports none)."""
    return info.training.reported.get(key) if info.training else None


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
    """The common part of every family's recipe (see :mod:`framescore.train.recipes` for the
    families).

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
        #: the run folder while training (a recipe may keep a cache there); None otherwise
        self.run_dir: Path | None = None
        #: where progress lines go while training (the CLI's log)
        self.say: Callable[[str], None] = lambda _line: None

    # ---- settings
    @classmethod
    def options(cls, info: ModelInfo) -> dict[str, Option]:
        """Every setting of this family for ``info``, with the paper's defaults."""
        raise NotImplementedError

    @staticmethod
    def _common(info: ModelInfo, formats: tuple[str, ...], **paper: Any) -> dict[str, Option]:
        """COMMON with ``paper`` defaults (updated from the model's own paper settings,
        ``TrainingSpec.paper_settings``, where they say so), plus ``data_format`` and
        ``image_dir``."""
        settings = info.training.paper_settings if info.training else {}
        for key in ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "nesterov",
                    "epochs"):
            if key in settings and isinstance(settings[key], type(COMMON[key].default)):
                paper[key] = settings[key]
        options = with_defaults(COMMON, **paper)
        options["data_format"] = Option(formats[0], str, "dataset layout under --data",
                                        choices=formats)
        options["image_dir"] = Option("", str, "image folder when not the dataset's usual "
                                      "place (path; empty: the default)")
        return options

    def _specs(self) -> dict[str, InputSpec]:
        size = self.config["size"]
        views = self.info.training.views if self.info.training else None
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

    def prepare(self, model: nn.Module, ctx: Context) -> None:
        """Nothing by default (before training, fresh or resumed: the hints recipe caches its
        frozen part's outputs here)."""

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
