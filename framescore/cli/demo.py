"""``framescore demo``: the whole key-frames job on a clip made from real photographs.

It writes into one folder that it names on the terminal: ``--out DIR``, by default ``demo/`` in
framescore's cache folder (never loose files in the current folder or a source checkout), and
replaces an earlier demo there only with ``--force``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from framescore.cli.common import ModelOpt, QuietOpt

HELP = "build a short clip from real photos and find its key-frames"
DESCRIPTION = ("Build a 17-second clip from photographs that scikit-image ships (a camera pan, "
               "a shaky stretch, a fade and cuts) and run key-frames on it, so you can see the "
               "whole job without a video of your own.")
CLIP = "demo.mp4"
RESULTS = "demo.framescore"


def default_dir() -> Path:
    """``demo/`` beside the score cache: $FRAMESCORE_CACHE_DIR, $XDG_CACHE_HOME/framescore or
    ~/.cache/framescore."""
    from framescore.apps.rank import default_cache_path

    return default_cache_path().parent / "demo"


def command(
    out: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="DIR", show_default=False,
        help="folder for the clip and its results (default: demo/ in framescore's cache "
             "folder: $FRAMESCORE_CACHE_DIR, $XDG_CACHE_HOME/framescore or "
             "~/.cache/framescore)")] = None,
    model: ModelOpt = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="replace an earlier demo")
                     ] = False,
    quiet: QuietOpt = False,
) -> int:
    from rich.console import Console
    from rich.markup import escape

    from framescore.apps import keyframes as kf
    from framescore.cli.common import check_model_name, make_scorer, progress_bar
    from framescore.cli.keyframes import print_table
    from framescore.demo import build_demo_clip
    from framescore.outputs import check_free

    folder = (Path(out) if out else default_dir()).expanduser().absolute()
    clip_path, results = folder / CLIP, folder / RESULTS
    check_model_name(model)
    scorer = make_scorer(model, None, "auto")
    check_free(clip_path, force)
    check_free(results, force)
    console = Console(stderr=True, quiet=quiet)
    console.print(f"building the demo clip from real photographs in {escape(str(folder))}/ …")
    clip = build_demo_clip(clip_path)
    with progress_bar("scoring", enabled=not quiet) as (start, advance):
        result = kf.analyze(clip.path, kf.Settings(model=model), scorer=scorer, on_start=start,
                            on_batch=advance)
    kf.write(result, results, force=force)
    if not quiet:
        print_table(result)
        Console().print("stretches: " + ", ".join(
            f"{s.start:.1f}–{s.end:.1f}s {s.kind}" for s in clip.segments))
        Console().print(f"the demo is in {escape(str(folder))}/ ({CLIP}, {RESULTS}/)")
    return 0
