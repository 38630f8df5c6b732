"""``framescore bestshot PATH...``: the best photo of a burst (or of each burst in a folder)."""

from __future__ import annotations

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
    finite,
)

HELP = "the best photo of a burst, or the best frame of a short clip"
DESCRIPTION = ("Score every candidate (photos from folders, files or globs, or the frames of "
               "one short clip) and print them ranked, best first.")
BURSTS = "Bursts"


def command(
    paths: Annotated[list[str], typer.Argument(
        metavar="PATH...", show_default=False,
        help="photos, folders, globs (quoted), or one video clip")],
    top: Annotated[int | None, typer.Option(
        min=1, metavar="N", show_default=False,
        help="how many of the best to list and copy (default: 5; 1 per burst with --group)")
    ] = None,
    copy_to: Annotated[str | None, typer.Option(
        metavar="DIR", show_default=False,
        help="copy the best photos (or the best clip frames as JPEG) into DIR")] = None,
    group: Annotated[bool, typer.Option(
        "--group",
        rich_help_panel=BURSTS,
        help="split the photos into bursts by capture time and appearance, and pick the best "
             "of each")] = False,
    gap: Annotated[float | None, typer.Option(
        min=0, metavar="S", callback=finite, rich_help_panel=BURSTS, show_default=False,
        help="seconds between two shots that start a new burst (default: 3)")] = None,
    similarity: Annotated[float | None, typer.Option(
        min=0, max=1, metavar="X", rich_help_panel=BURSTS, show_default=False,
        help="how alike photos of one burst must look, 0..1 (default: 0.75)")] = None,
    every: Annotated[int, typer.Option(min=1, metavar="N",
                                       help="clips: score every N-th frame (1 = all)")] = 1,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = 32,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> int:
    from framescore.apps import bestshot as bs
    from framescore.apps.groups import GAP_SECONDS, MIN_SIMILARITY
    from framescore.cli.common import make_scorer, print_json, progress_bar, warn
    from framescore.errors import UsageError
    from framescore.io.images import skipped_message

    if (gap is not None or similarity is not None) and not group:
        raise UsageError("--gap and --similarity only apply with --group")
    settings = bs.Settings(
        model=model, weights=weights, device=device, batch_size=batch_size, top=top,
        group=group, gap=GAP_SECONDS if gap is None else gap,
        min_similarity=MIN_SIMILARITY if similarity is None else similarity, every=every)
    scorer = make_scorer(model, weights, device)
    with progress_bar("scoring", enabled=not (quiet or json)) as (start, advance):
        result = bs.best_shot(paths, settings, scorer=scorer, on_start=start,
                              on_batch=advance)
    if result.skipped:
        warn(skipped_message(result.skipped))
    if copy_to:
        bs.copy_best(result, copy_to, force=force)
    if json:
        print_json(result.summary())
    elif not quiet:
        _print_table(result, copy_to)
    return 0


def _common_folder(result) -> str | None:
    import os

    if result.kind == "video":
        return str(result.source)
    try:
        return os.path.commonpath([os.path.abspath(c.path.parent) for c in result.candidates])
    except ValueError:
        return None


def _print_table(result, copy_to: str | None) -> None:
    import os

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    best = result.best()
    has_std = any(c.std is not None for c in best)
    grouped = result.settings.group
    where = _common_folder(result)
    what = "frames" if result.kind == "video" else "photos"
    title = f"best {what}" + (f" in {escape(where)}" if where else "")
    title += f" ({result.model}, {len(result.candidates)} scored"
    title += f", {result.bursts} bursts)" if grouped else ")"
    table = Table(title=title)
    if grouped:
        table.add_column("burst", justify="right")
    table.add_column("rank", justify="right")
    table.add_column("time" if result.kind == "video" else "file", overflow="fold")
    table.add_column("score", justify="right")
    if has_std:
        table.add_column("± std", justify="right")
    for c in best:
        row = [str(c.burst)] if grouped else []
        label = c.label()
        if c.time is None and where:
            label = os.path.relpath(os.path.abspath(c.path), where)
        row += [str(c.rank), escape(label), f"{c.score:.4g}"]
        if has_std:
            row.append("" if c.std is None else f"{c.std:.3g}")
        table.add_row(*row)
    console = Console()
    console.print(table)
    if copy_to:
        console.print(f"copied {sum(c.copied_to is not None for c in best)} to "
                      f"{escape(copy_to)}/")
