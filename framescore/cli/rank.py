"""``framescore rank DIR``: sort a photo collection by score (CSV + HTML contact sheet)."""

from __future__ import annotations

import argparse
from pathlib import Path

from framescore.cli.common import add_model_options, add_output_options, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rank", help="sort a photo collection by score (CSV and HTML contact sheet)",
        description="Score every photo under DIR (sub-folders included) and write ranking.csv, "
                    "index.html (thumbnails in score order) and thumbs/ to the output folder. "
                    "Scores are cached, so a second run only scores new or changed photos.")
    p.add_argument("folder", metavar="DIR", help="the folder of photos")
    p.add_argument("--out", "-o", default=None,
                   help="output folder (default: <DIR>.ranking/ beside DIR)")
    p.add_argument("--top", type=positive_int, default=10, metavar="N",
                   help="how many of the best to list on the terminal (default: 10)")
    c = p.add_argument_group("cache")
    x = c.add_mutually_exclusive_group()
    x.add_argument("--cache", default=None, metavar="FILE",
                   help="score cache file (default: scores.sqlite in $FRAMESCORE_CACHE_DIR, "
                        "$XDG_CACHE_HOME/framescore or ~/.cache/framescore)")
    x.add_argument("--no-cache", action="store_true", help="score everything, cache nothing")
    add_model_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def default_out_dir(folder: str) -> Path:
    path = Path(folder).resolve()
    return path.with_name(path.name + ".ranking")


def run(args: argparse.Namespace) -> int:
    import sys

    from framescore.apps import rank
    from framescore.cli.common import print_json, progress_bar
    from framescore.io.images import skipped_message
    from framescore.models.registry import load_scorer
    from framescore.scoring import resolve_device

    folder = Path(args.folder)
    out = Path(args.out) if args.out else default_out_dir(args.folder)
    rank.check_folder(folder)
    rank.check_out(out, args.force)
    scorer = load_scorer(args.model, args.weights, device=resolve_device(args.device))
    weights = rank.weights_id(args.model or scorer.name, args.weights)
    cache = None if args.no_cache else (Path(args.cache) if args.cache
                                        else rank.default_cache_path())
    with progress_bar("ranking", enabled=not (args.quiet or args.json)) as (start, advance):
        result = rank.rank_folder(folder, out, scorer, weights, batch_size=args.batch_size,
                                  cache_path=cache, force=args.force, on_start=start,
                                  on_batch=advance)
    for line in result.warnings:
        print(f"framescore: warning: {line}", file=sys.stderr)
    if result.skipped:
        print(f"framescore: warning: {skipped_message(result.skipped)}", file=sys.stderr)
    if args.json:
        print_json(result.summary())
    elif not args.quiet:
        _print_table(result, args.top)
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
