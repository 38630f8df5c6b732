"""``framescore demo``: the whole key-frames job on a clip made from real photographs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="build a short clip from real photos and find its key-frames",
        description="Build a 17-second clip from photographs that scikit-image ships (a camera "
                    "pan, a shaky stretch, a fade and cuts) and run key-frames on it, so you "
                    "can see the whole job without a video of your own.")
    p.add_argument("--out", "-o", default="framescore-demo",
                   help="folder for the clip and its results (default: ./framescore-demo)")
    p.add_argument("--model", "-m", default=None, help="model to use (default: the default)")
    p.add_argument("--force", "-f", action="store_true", help="replace an earlier demo")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from framescore.apps import keyframes as kf
    from framescore.cli.common import progress_bar
    from framescore.cli.keyframes import print_table
    from framescore.demo import build_demo_clip
    from framescore.outputs import check_free

    out = Path(args.out)
    results = out / "demo.framescore"
    check_free(results, args.force)
    console = Console(stderr=True, quiet=args.quiet)
    console.print("building the demo clip from real photographs …")
    clip = build_demo_clip(out / "demo.mp4")
    with progress_bar("scoring", enabled=not args.quiet) as (start, advance):
        result = kf.analyze(clip.path, kf.Settings(model=args.model), on_start=start,
                            on_batch=advance)
    kf.write(result, results, force=args.force)
    if not args.quiet:
        print_table(result)
        Console().print("stretches: " + ", ".join(
            f"{s.start:.1f}–{s.end:.1f}s {s.kind}" for s in clip.segments))
    return 0
