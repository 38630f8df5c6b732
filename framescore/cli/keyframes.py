"""``framescore keyframes VIDEO`` (or just ``framescore VIDEO``)."""

from __future__ import annotations

import argparse

from framescore.cli.common import (
    add_model_options,
    add_output_options,
    non_negative_float,
    positive_float,
    positive_int,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keyframes", help="the best moments of a video (the default command)",
        description="Score the frames of a video, smooth the score curve with a Kalman filter "
                    "and write the peak frames with the curve (CSV, JSON, plot).")
    p.add_argument("video", help="the video file")
    p.add_argument("--out", "-o", default=None,
                   help="output folder (default: <video stem>.framescore/ beside the video)")
    s = p.add_argument_group("sampling")
    x = s.add_mutually_exclusive_group()
    x.add_argument("--every", type=positive_int, default=None, metavar="N",
                   help="score every N-th frame (1 = all)")
    x.add_argument("--fps", type=positive_float, default=None, metavar="F",
                   help="score about F frames a second instead (default: the model's: every "
                        "frame for rules, 5 a second for learned models)")
    c = p.add_argument_group("curve and peaks")
    c.add_argument("--top", type=positive_int, default=5, metavar="K",
                   help="how many key-frames (default: 5)")
    c.add_argument("--min-gap", type=non_negative_float, default=2.0, metavar="S",
                   help="seconds between two key-frames at least (default: 2)")
    c.add_argument("--prominence", type=non_negative_float, default=0.02,
                   help="how far a peak must stand above its surroundings, on the 0..1 "
                        "curve (default: 0.02)")
    c.add_argument("--smoothing", choices=["rts", "arod", "none"], default="rts",
                   help="rts: Kalman filter + RTS smoother (default); arod: the AROD paper's "
                        "video recipe; none: the normalized raw curve")
    c.add_argument("--process-noise", type=positive_float, default=0.05, metavar="Q",
                   help="rts: process-noise variance per second (default: 0.05; larger "
                        "follows the raw scores more closely)")
    c.add_argument("--measurement-noise", type=positive_float, default=0.05, metavar="R",
                   help="rts: measurement-noise variance (default: 0.05; larger smooths more)")
    add_model_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from framescore.apps import keyframes as kf
    from framescore.cli.common import print_json, progress_bar
    from framescore.curve import AROD, Smoothing
    from framescore.io.video import Sampling
    from framescore.outputs import check_free

    smoothing = AROD if args.smoothing == "arod" else Smoothing(
        preset=args.smoothing, q=args.process_noise, r=args.measurement_noise)
    settings = kf.Settings(model=args.model, weights=args.weights, device=args.device,
                           batch_size=args.batch_size,
                           sampling=None if args.every is None and args.fps is None
                           else Sampling(every=args.every or 1, fps=args.fps),
                           smoothing=smoothing, top=args.top, min_gap=args.min_gap,
                           prominence=args.prominence)
    out = Path(args.out) if args.out else kf.default_out_dir(args.video)
    check_free(out, args.force)
    with progress_bar("scoring", enabled=not (args.quiet or args.json)) as (start, advance):
        result = kf.analyze(args.video, settings, on_start=start, on_batch=advance)
    kf.write(result, out, force=args.force)
    if result.stats.warning():
        import sys

        print(f"framescore: warning: {result.stats.warning()}", file=sys.stderr)
    if args.json:
        print_json(result.summary())
    elif not args.quiet:
        print_table(result)
    return 0


def print_table(result) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    st = result.stats
    fps = len(result.scored) / result.elapsed if result.elapsed > 0 else 0.0
    header = result.info.frames
    decoded = (f", {st.decoded} decoded of {header} in the header"
               if header and header != st.decoded else "")
    table = Table(title=f"{escape(result.info.path.name)}: {len(result.keyframes)} key-frames "
                        f"({result.model}, {len(result.scored)} frames scored{decoded}, "
                        f"{fps:.0f} frames/s)")
    for col in ("rank", "time", "frame", "score", "smoothed", "file"):
        table.add_column(col, justify="right" if col != "file" else "left")
    for k in result.keyframes:
        m, s = divmod(k.time, 60)
        table.add_row(str(k.rank), f"{int(m)}:{s:06.3f}", str(k.index), f"{k.raw:.4g}",
                      f"{k.smoothed:.3f}", k.file or "")
    console.print(table)
    if st.skipped_packets:
        console.print(f"[yellow]warning:[/] {st.skipped_packets} corrupt packet(s) skipped")
    console.print(f"written to {result.out_dir}/ (scores.csv, keyframes.json, curve.png)")
