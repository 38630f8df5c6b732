"""``framescore rank DIR``: sort a photo collection by score (CSV + HTML contact sheet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from framescore.cli.common import (
    BatchSizeOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    ModelOpt,
    QuietOpt,
    WeightsOpt,
    exclusive,
)

HELP = "sort a photo collection by score (CSV and HTML contact sheet)"
DESCRIPTION = ("Score every photo under DIR (sub-folders included) and write ranking.csv, "
               "index.html (thumbnails in score order) and thumbs/ to the output folder. "
               "Scores are cached, so a second run only scores new or changed photos.")
CACHE = "Cache"


def default_out_dir(folder: str) -> Path:
    path = Path(folder).resolve()
    return path.with_name(path.name + ".ranking")


def command(
    folder: Annotated[str, typer.Argument(metavar="DIR", help="the folder of photos",
                                          show_default=False)],
    out: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="DIR", show_default=False,
        help="output folder (default: <DIR>.ranking/ beside DIR)")] = None,
    top: Annotated[int, typer.Option(
        min=1, metavar="N", help="how many of the best to list on the terminal")] = 10,
    cache: Annotated[str | None, typer.Option(
        metavar="FILE", rich_help_panel=CACHE, show_default=False,
        help="score cache file (default: scores.sqlite in $FRAMESCORE_CACHE_DIR, "
             "$XDG_CACHE_HOME/framescore or ~/.cache/framescore)")] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", rich_help_panel=CACHE, help="score everything, cache nothing")] = False,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = 32,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> int:
    from framescore.apps import rank
    from framescore.cli.common import check_model_name, make_scorer, print_json, progress_bar, warn
    from framescore.io.images import skipped_message

    exclusive(cache=cache, no_cache=no_cache)
    photos = Path(folder)
    out_dir = Path(out) if out else default_out_dir(folder)
    check_model_name(model)
    rank.check_folder(photos)
    scorer = make_scorer(model, weights, device)
    rank.check_out(out_dir, force)
    weights_id = rank.weights_id(model or scorer.name, weights)
    cache_path = None if no_cache else (Path(cache) if cache else rank.default_cache_path())
    with progress_bar("ranking", enabled=not (quiet or json)) as (start, advance):
        result = rank.rank_folder(photos, out_dir, scorer, weights_id, batch_size=batch_size,
                                  cache_path=cache_path, force=force, on_start=start,
                                  on_batch=advance)
    for line in result.warnings:
        warn(line)
    if result.skipped:
        warn(skipped_message(result.skipped))
    if json:
        print_json(result.summary())
    elif not quiet:
        _print_table(result, top)
    return 0


def _print_table(result, top: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    has_std = any(r.entry.extras.get("std") is not None for r in result.ranking[:top])
    table = Table(title=f"{escape(str(result.folder))}: best {min(top, len(result.ranking))} "
                        f"of {len(result.ranking)} ({result.model})")
    for col in ("rank", "file", "score", *(["± std"] if has_std else [])):
        table.add_column(col, justify="left" if col == "file" else "right")
    for r in result.ranking[:top]:
        row = [str(r.rank), escape(r.file), f"{r.entry.score:.4g}"]
        if has_std:
            std = r.entry.extras.get("std")
            row.append("" if std is None else f"{std:.3g}")
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(f"{len(result.ranking)} photos ({result.cached} from the cache) in "
                  f"{result.elapsed:.1f} s; written to {escape(str(result.out_dir))}/ "
                  "(ranking.csv, index.html)")
