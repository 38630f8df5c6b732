"""Options and helpers the commands share: typed option declarations, the one place the CLI
builds a scorer, JSON and progress output.

Only light modules are imported here (typer, the standard library): ``framescore --help`` and
usage errors must not pay for PyTorch, PyAV or matplotlib.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from framescore.scoring import Scorer

MODEL_PANEL = "Model"
OUTPUT_PANEL = "Output"


# ---- value checks typer cannot declare (it declares ranges, not finiteness) -----------------

def finite(value: float | None) -> float | None:
    """Refuse ``nan`` and ``inf`` (Python's float() accepts both)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def above_zero(value: float | None) -> float | None:
    """A finite number > 0 (typer's ``min`` is inclusive)."""
    finite(value)
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be greater than 0, not {value:g}")
    return value


def strictly_inside(value: float) -> float:
    """A number strictly between the bounds typer declared inclusive (``min=0, max=1``)."""
    if value in (0.0, 1.0):
        raise typer.BadParameter(f"must be strictly between 0 and 1, not {value:g}")
    return value


# ---- options several commands take ----------------------------------------------------------

Device = Literal["auto", "cpu", "cuda"]

ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", show_default=False, rich_help_panel=MODEL_PANEL,
    help="registry name (see `framescore models`) or an exported .onnx file; "
         "default: the default model")]
WeightsOpt = Annotated[str | None, typer.Option(
    "--weights", "-w", metavar="FILE", show_default=False, rich_help_panel=MODEL_PANEL,
    help="checkpoint file for the model")]
DeviceOpt = Annotated[Device, typer.Option(
    "--device", rich_help_panel=MODEL_PANEL,
    help="where the model runs (auto = CUDA when present)")]
BatchSizeOpt = Annotated[int, typer.Option(
    "--batch-size", min=1, metavar="N", rich_help_panel=MODEL_PANEL,
    help="images scored at once")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", rich_help_panel=OUTPUT_PANEL, help="print the result as JSON on stdout")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", rich_help_panel=OUTPUT_PANEL, help="no progress bar, no table")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", "-f", rich_help_panel=OUTPUT_PANEL, help="replace outputs that exist already")]


def exclusive(**given: object) -> None:
    """A usage error when more than one of the named options was given (not None/False)."""
    names = [f"'--{k.replace('_', '-')}'" for k, v in given.items() if v not in (None, False)]
    if len(names) > 1:
        raise typer.BadParameter("they exclude each other, give one",
                                 param_hint=" / ".join(names))


# ---- the scorer ------------------------------------------------------------------------------

def make_scorer(model: str | None, weights: str | None, device: str) -> Scorer:
    """The scorer a command runs: registry name (or ``.onnx`` file), weights, device.

    Every command that scores builds it here and nowhere else.
    """
    from framescore.scorers import load_scorer

    return load_scorer(model, weights, device=device)


def check_model_name(model: str | None) -> None:
    """Refuse an unknown registry name before any file is looked at (cheap; no weights load)."""
    if model is None or model.endswith(".onnx"):
        return
    from framescore.models.registry import get

    get(model)


# ---- output ----------------------------------------------------------------------------------

def warn(text: str) -> None:
    print(f"framescore: warning: {text}", file=sys.stderr)


def print_json(obj: object) -> None:
    from framescore.outputs import json_text

    sys.stdout.write(json_text(obj))


@contextmanager
def progress_bar(description: str, enabled: bool) -> Iterator[tuple]:
    """A rich progress bar on stderr (frames/s and ETA); inert when disabled or not a terminal.

    Yields ``(start(total), advance(n))`` callbacks.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    active = enabled and console.is_terminal
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        TaskProgressColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=console, disable=not active, transient=False)
    task = progress.add_task(description, total=None, rate="")

    def start(total: int | None) -> None:
        progress.update(task, total=total)

    def advance(n: int) -> None:
        progress.advance(task, n)
        speed = progress.tasks[0].speed
        if speed:
            progress.update(task, rate=f"{speed:6.1f} frames/s")

    with progress:
        yield start, advance
