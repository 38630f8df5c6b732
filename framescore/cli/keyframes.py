"""``framescore keyframes VIDEO`` (or just ``framescore VIDEO``)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from framescore.cli.common import (
    BatchSizeOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    ModelOpt,
    QuietOpt,
    WeightsOpt,
    above_zero,
    exclusive,
    finite,
)

HELP = "the best moments of a video (the default command)"
DESCRIPTION = ("Score the frames of a video, find its shots (cuts, fades, dissolves), smooth "
               "each shot's score curve with a Kalman filter and write key-frames that cover "
               "the video with the curve (CSV, JSON, plot).")

SAMPLING = "Sampling"
CURVE = "Curve and selection"


def command(
    video: Annotated[str, typer.Argument(metavar="VIDEO", help="the video file",
                                         show_default=False)],
    out: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="DIR", show_default=False,
        help="output folder (default: <video stem>.framescore/ beside the video)")] = None,
    every: Annotated[int | None, typer.Option(
        min=1, metavar="N", rich_help_panel=SAMPLING, show_default=False,
        help="score every N-th frame (1 = all)")] = None,
    fps: Annotated[float | None, typer.Option(
        min=0, metavar="F", callback=above_zero, rich_help_panel=SAMPLING, show_default=False,
        help="score about F frames a second instead (default: the model's: every frame for "
             "rules, 5 a second for learned models)")] = None,
    top: Annotated[int, typer.Option(
        min=1, metavar="K", rich_help_panel=CURVE,
        help="how many key-frames: each shot's best first, best shots first, then the most "
             "different good frames; exactly K unless the video lacks them (the reason is "
             "printed)")] = 5,
    per_shot: Annotated[bool, typer.Option(
        "--per-shot", rich_help_panel=CURVE, show_default=False,
        help="the best frame of every shot instead (--top is ignored)")] = False,
    min_gap: Annotated[float, typer.Option(
        min=0, metavar="S", callback=finite, rich_help_panel=CURVE,
        help="seconds between two key-frames of the same shot at least")] = 2.0,
    prominence: Annotated[float, typer.Option(
        min=0, metavar="P", callback=finite, rich_help_panel=CURVE,
        help="how far a peak must stand above its surroundings, on the 0..1 curve")] = 0.02,
    smoothing: Annotated[Literal["rts", "arod", "none"], typer.Option(
        rich_help_panel=CURVE,
        help="rts: Kalman filter + RTS smoother; arod: the AROD paper's video recipe; "
             "none: the normalized raw curve")] = "rts",
    process_noise: Annotated[float, typer.Option(
        metavar="Q", callback=above_zero, rich_help_panel=CURVE,
        help="rts: process-noise variance per second (larger follows the raw scores more "
             "closely)")] = 0.05,
    measurement_noise: Annotated[float, typer.Option(
        metavar="R", callback=above_zero, rich_help_panel=CURVE,
        help="rts: measurement-noise variance (larger smooths more)")] = 0.05,
    scan: Annotated[Literal["auto", "fast", "full"], typer.Option(
        rich_help_panel=SAMPLING,
        help="fast: decode the key-frames, then only the stretches around shot boundaries "
             "and each shot's best key-frames; full: decode every frame; auto: fast for "
             "videos of a minute or more (files that cannot be sought fall back to full, "
             "with a note)")] = "auto",
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = 32,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> int:
    from pathlib import Path

    from framescore.apps import keyframes as kf
    from framescore.cli.common import check_model_name, make_scorer, print_json, progress_bar
    from framescore.curve import AROD, Smoothing
    from framescore.io.video import Sampling, probe
    from framescore.outputs import check_free
    from framescore.sidecar import Sidecar

    exclusive(every=every, fps=fps)
    smoothing_ = AROD if smoothing == "arod" else Smoothing(
        preset=smoothing, q=process_noise, r=measurement_noise)
    settings = kf.Settings(model=model, weights=weights, device=device, batch_size=batch_size,
                           sampling=None if every is None and fps is None
                           else Sampling(every=every or 1, fps=fps),
                           smoothing=smoothing_, top=top, min_gap=min_gap,
                           prominence=prominence, per_shot=per_shot, scan=scan)
    with Sidecar() as sidecar:
        # the helper imports what smoothing, selection and the plot need from the start: on
        # a short clip those imports, not the decoding, are what the user waits for
        sidecar.warm(*kf.SIDECAR_IMPORTS)
        # everything the user gave is checked before the output folder is: the model name,
        # the video, the weights (a folder that exists already is the last thing to report)
        check_model_name(model)
        probe(video)
        scorer = make_scorer(model, weights, device)
        out_dir = Path(out) if out else kf.default_out_dir(video)
        check_free(out_dir, force)
        with progress_bar("scoring", enabled=not (quiet or json)) as (start, advance):
            result = kf.analyze(video, settings, scorer=scorer, on_start=start,
                                on_batch=advance, sidecar=sidecar)
            kf.write(result, out_dir, force=force, sidecar=sidecar)
    import sys

    if result.scan.get("note"):
        print(f"framescore: note: {result.scan['note']}", file=sys.stderr)
    if result.stats.warning():
        print(f"framescore: warning: {result.stats.warning()}", file=sys.stderr)
    if json:
        print_json(result.summary())
    elif not quiet:
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
    if result.scan.get("mode") == "fast":
        decoded = f", fast scan: {st.decoded} of {result.scan['frames']} frames decoded"
    table = Table(title=f"{escape(result.info.path.name)}: {len(result.keyframes)} key-frames "
                        f"from {len(result.shots)} shots ({result.model}, "
                        f"{len(result.scored)} frames scored{decoded}, {fps:.0f} frames/s)")
    for col in ("rank", "time", "shot", "frame", "score", "smoothed", "file"):
        table.add_column(col, justify="right" if col != "file" else "left")
    for k in result.keyframes:
        m, s = divmod(k.time, 60)
        table.add_row(str(k.rank), f"{int(m)}:{s:06.3f}", str(k.shot), str(k.index),
                      f"{k.raw:.4g}", f"{k.smoothed:.3f}", k.file or "")
    console.print(table)
    if result.selection is not None and result.selection.reason:
        console.print(f"[yellow]note:[/] {result.settings.top} asked for, "
                      f"{len(result.keyframes)} given: {result.selection.reason}")
    if st.skipped_packets:
        console.print(f"[yellow]warning:[/] {st.skipped_packets} corrupt packet(s) skipped")
    console.print(f"written to {result.out_dir}/ (scores.csv, shots.csv, keyframes.json, "
                  "curve.png)")
