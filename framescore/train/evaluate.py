"""``framescore evaluate``: a trained model on a dataset's test split, beside the paper.

Two protocols:

``paper`` (default)
    The model's recipe (:mod:`framescore.train.recipes`) reads the dataset, rebuilds the same
    test split as training did (same seed, same settings: they are stored in the checkpoint) and
    computes the paper's metrics — accuracy, pair accuracy, Spearman ρ, Pearson r, MSE, RMSER,
    score range — each as a :class:`~framescore.train.recipes.Figure` with the paper's number.
``faults``
    The fault-type table of :mod:`framescore.train.fault_eval`: on held-out photos (the
    held-out part of a ``framescore data`` folder, or every photo of a folder), how often the
    model ranks the less damaged of two renders of one photo and one fault first, per fault,
    beside other scorers (``rules`` by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from framescore.errors import DataError, UsageError
from framescore.train.recipes import Figure, Recipe

PROTOCOLS = ("paper", "faults")


@dataclass
class Evaluation:
    """What ``evaluate`` measured: the figures (paper protocol) or fault tables."""

    model: str
    weights: str
    data: str
    protocol: str
    figures: list[Figure] = field(default_factory=list)
    fault_tables: list[Any] = field(default_factory=list)
    cross_tables: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "weights": self.weights, "data": self.data,
                               "protocol": self.protocol, "seconds": round(self.seconds, 2),
                               "notes": self.notes}
        if self.protocol == "paper":
            out["figures"] = [f.as_dict() for f in self.figures]
        else:
            out["fault_tables"] = [t.as_dict() for t in self.fault_tables]
            for row, cross in zip(out["fault_tables"], self.cross_tables, strict=False):
                row["cross_photo"] = {"accuracy": cross.accuracy, "pairs": cross.pairs}
        return out


def trained_config(name: str, weights: str | Path) -> dict[str, Any] | None:
    """The settings a checkpoint of ``framescore train`` was trained with (None for other
    files, or when it was trained for another model)."""
    from framescore.train.loop import checkpoint_meta

    meta = checkpoint_meta(weights)
    config = meta.get("config")
    if meta.get("model") == name and isinstance(config, dict):
        return config
    return None


def trained_recipe(name: str, weights: str | Path) -> str | None:
    """The recipe a checkpoint of ``framescore train`` was trained with (None for other files,
    or when it was trained for another model: the model's own recipe then)."""
    from framescore.train.loop import checkpoint_meta
    from framescore.train.recipes import RECIPES

    meta = checkpoint_meta(weights)
    recipe = meta.get("recipe", meta.get("family"))    # "family": checkpoints before 2026-12
    return recipe if meta.get("model") == name and recipe in RECIPES else None


def prepare(name: str, weights: str | Path, root: str | Path | None,
            config_file: str | Path | None = None, overrides: Sequence[str] = ()) -> tuple[
                Recipe, torch.nn.Module]:
    """The recipe (configured as the model was trained, then the file / overrides) and the
    model with the checkpoint loaded."""
    from framescore.models.weights import load_into
    from framescore.train.config import resolve
    from framescore.train.recipes import recipe_class

    weights = Path(weights).expanduser()
    if not weights.is_file():
        from framescore.errors import WeightsError

        raise WeightsError(f"{weights}: weights file not found")
    info, cls = recipe_class(name, trained_recipe(name, weights))
    config = resolve(cls.options(info), config_file, overrides, what=name,
                     base=trained_config(name, weights))
    recipe = cls(name, info, config, root)
    recipe.for_training = False
    model = recipe.build_model(load_weights=False)
    load_into(model, weights)
    return recipe, model.eval()


def evaluate(name: str, weights: str | Path, root: str | Path, *,
             config_file: str | Path | None = None, overrides: Sequence[str] = (),
             device: str = "auto", protocol: str = "paper", seed: int = 0, repeats: int = 2,
             compare: Sequence[str] = ("rules",), cross: bool = False,
             log: Callable[[str], None] | None = None,
             on_draw: Callable[[int], None] | None = None) -> Evaluation:
    """Evaluate model ``name`` with ``weights`` on the dataset at ``root``."""
    from framescore.scoring import resolve_device
    from framescore.train.loop import Context, Dispatch, seed_everything

    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r} (use {', '.join(PROTOCOLS)})")
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise DataError(f"data root not found: {root_path}")
    log = log or (lambda _m: None)
    started = time.perf_counter()
    dev = resolve_device(device)
    recipe, model = prepare(name, weights, root_path if protocol == "paper" else None,
                            config_file, overrides)
    result = Evaluation(name, str(weights), str(root_path), protocol)
    if protocol == "faults":
        result.fault_tables, result.cross_tables = fault_tables(
            recipe, model, root_path, dev, seed, repeats, compare, on_draw, cross,
            label=_label(name, weights, compare))
        result.seconds = time.perf_counter() - started
        return result
    recipe.ensure_loaded()
    for line in recipe.summary:
        log(line)
    result.notes = list(recipe.summary)
    model = model.to(dev)
    cuda = dev.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    ctx = Context(Dispatch(model), dev, bool(recipe.config["amp"]) and cuda, cuda)
    seed_everything(recipe.config["seed"])
    result.figures = recipe.test(model, ctx)
    result.seconds = time.perf_counter() - started
    return result


def held_out(root: Path) -> list[str]:
    """The evaluation photos of ``root``: the held-out photos of a ``framescore data`` folder
    (it has a manifest), else every photo under the folder."""
    from framescore.train import fault_eval, hints

    if (root / "manifest.json").is_file():
        return fault_eval.held_out_photos(root)
    photos = [str(p) for p in hints.find_photos([root])]
    if not photos:
        raise DataError(f"no photos found under {root}")
    return photos


def compared(text: str) -> tuple[str, str | None]:
    """A ``--compare`` value: ``NAME`` (a registry name or .onnx file, its own weights) or
    ``NAME=WEIGHTS``."""
    name, sep, weights = text.partition("=")
    if not name.strip() or (sep and not weights.strip()):
        raise UsageError(f"--compare {text!r}: expected NAME or NAME=WEIGHTS")
    return name.strip(), weights.strip() if sep else None


def _label(name: str, weights: str | Path, compare: Sequence[str]) -> str:
    """The model's column: its name, with its weights file where a compared scorer has the
    same name."""
    if any(compared(c)[0] == name for c in compare):
        return f"{name} ({weights})"
    return name


def fault_tables(recipe: Recipe, model: torch.nn.Module, root: Path, device: torch.device,
                 seed: int, repeats: int, compare: Sequence[str],
                 on_draw: Callable[[int], None] | None = None, cross: bool = False,
                 label: str | None = None) -> tuple[list[Any], list[Any]]:
    """The fault-type tables of the model (at its trained input size) and the ``compare``
    scorers (``NAME`` or ``NAME=WEIGHTS``) on the held-out photos of ``root``, and with
    ``cross`` their cross-photo tables (:func:`framescore.train.fault_eval.cross_photo`)."""
    from framescore.scorers import load_scorer
    from framescore.scorers.torch import TorchScorer
    from framescore.train import fault_eval

    photos = held_out(root)
    scorers = [TorchScorer(label or recipe.name, model, recipe.spec, device=device)]
    names = [label or recipe.name]
    for text in compare:
        other, weights = compared(text)
        scorers.append(load_scorer(other, weights, device))
        names.append(f"{other} ({weights})" if weights else other)
    tables = fault_eval.evaluate(scorers, photos, seed, repeats, on_draw=on_draw)
    crosses = fault_eval.cross_photo(scorers, photos, seed) if cross else []
    for table, name in zip(tables, names, strict=True):
        table.name = name
    for table, name in zip(crosses, names, strict=False):
        table.name = name
    return tables, crosses


# ---------------------------------------------------------------------------------------------
# printing


def _number(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple | list):
        return "–".join(_number(v, "") for v in value)
    if isinstance(value, float) and value != value:
        return "n/a"
    if unit == "%":
        return f"{value:.2f} %"
    return f"{value:.4f}"


def figure_rows(figures: Sequence[Figure]) -> list[list[str]]:
    """Rows (header first) of the figures table: metric, ours, paper, note."""
    rows = [["metric", "ours", "paper", "note"]]
    for f in figures:
        rows.append([f.metric, _number(f.ours, f.unit), _number(f.paper, f.unit), f.note])
    return rows


def print_figures(evaluation: Evaluation) -> None:
    """The figures as a rich table on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    rows = figure_rows(evaluation.figures)
    table = Table(title=f"{escape(evaluation.model)} on {escape(evaluation.data)}")
    for k, head in enumerate(rows[0]):
        table.add_column(head, justify="right" if k in (1, 2) else "left")
    for row in rows[1:]:
        table.add_row(*[escape(c) for c in row])
    Console().print(table)


def markdown_figures(figures: Sequence[Figure]) -> str:
    """The figures as a Markdown table (for model cards and docs)."""
    rows = figure_rows(figures)
    lines = ["| " + " | ".join(rows[0]) + " |", "|---|---:|---:|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"
