"""``framescore bestshot PATH...``: the best photo of a burst (or of each burst in a folder)."""

from __future__ import annotations

import argparse

from framescore.cli.common import (
    add_model_options,
    add_output_options,
    non_negative_float,
    positive_int,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bestshot", help="the best photo of a burst, or the best frame of a short clip",
        description="Score every candidate (photos from folders, files or globs, or the frames "
                    "of one short clip) and print them ranked, best first.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="photos, folders, globs (quoted), or one video clip")
    p.add_argument("--top", type=positive_int, default=None, metavar="N",
                   help="how many of the best to list and copy (default: 5; 1 per burst "
                        "with --group)")
    p.add_argument("--copy-to", default=None, metavar="DIR",
                   help="copy the best photos (or the best clip frames as JPEG) into DIR")
    g = p.add_argument_group("bursts")
    g.add_argument("--group", action="store_true",
                   help="split the photos into bursts by capture time and appearance, and "
                        "pick the best of each")
    g.add_argument("--gap", type=non_negative_float, default=None, metavar="S",
                   help="seconds between two shots that start a new burst (default: 3)")
    g.add_argument("--similarity", type=float, default=None, metavar="X",
                   help="how alike photos of one burst must look, 0..1 (default: 0.75)")
    p.add_argument("--every", type=positive_int, default=1, metavar="N",
                   help="clips: score every N-th frame (default: 1 = all)")
    add_model_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from framescore.apps import bestshot as bs
    from framescore.apps.groups import GAP_SECONDS, MIN_SIMILARITY
    from framescore.cli.common import print_json, progress_bar
    from framescore.errors import UsageError
    from framescore.io.images import skipped_message

    if (args.gap is not None or args.similarity is not None) and not args.group:
        raise UsageError("--gap and --similarity only apply with --group")
    if args.similarity is not None and not 0.0 <= args.similarity <= 1.0:
        raise UsageError(f"--similarity must be between 0 and 1, not {args.similarity}")
    settings = bs.Settings(
        model=args.model, weights=args.weights, device=args.device,
        batch_size=args.batch_size, top=args.top, group=args.group,
        gap=GAP_SECONDS if args.gap is None else args.gap,
        min_similarity=MIN_SIMILARITY if args.similarity is None else args.similarity,
        every=args.every)
    with progress_bar("scoring", enabled=not (args.quiet or args.json)) as (start, advance):
        result = bs.best_shot(args.paths, settings, on_start=start, on_batch=advance)
    if result.skipped:
        _warn(skipped_message(result.skipped))
    if args.copy_to:
        bs.copy_best(result, args.copy_to, force=args.force)
    if args.json:
        print_json(result.summary())
    elif not args.quiet:
        _print_table(result, args.copy_to)
    return 0


def _warn(text: str) -> None:
    import sys

    print(f"framescore: warning: {text}", file=sys.stderr)


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
