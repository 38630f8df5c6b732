"""Options and output helpers the subcommands share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def add_model_options(p: argparse.ArgumentParser, batch: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", default=None,
                   help="registry name (see `framescore models`) or an exported .onnx file; "
                        "default: the default model")
    g.add_argument("--weights", "-w", default=None, help="checkpoint file for the model")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the model runs (default: auto = CUDA when present)")
    if batch:
        g.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                       help="images scored at once (default: 32)")


def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no table")
    p.add_argument("--force", "-f", action="store_true",
                   help="replace outputs that exist already")


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
