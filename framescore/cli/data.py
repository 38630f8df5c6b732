"""``framescore data PHOTOS --out DIR --seed S``: relative-hint triplets from good photos."""

from __future__ import annotations

from typing import Annotated, NamedTuple

import typer

from framescore.cli.common import strictly_inside

HELP = "build training triplets from good photos (graded faults)"
DESCRIPTION = (
    "Hold out a share of the photos for evaluation, then render every training photo clean "
    "and with each fault at a low and a high severity: the clean photo ranks above the less "
    "damaged copy, which ranks above the more damaged one. Same photos + same seed = same data.")


class Severity(NamedTuple):
    """The ``--low-severity`` range: one word ``LOW,HIGH``."""

    low: float
    high: float


LOW_SEVERITY = Severity(0.15, 0.55)


def severity_range(text: str) -> Severity:
    """``LOW,HIGH`` → two finite numbers (typer cannot declare a pair in one word)."""
    import math

    if isinstance(text, tuple):
        return Severity(*text)
    try:
        low, high = (float(v) for v in str(text).split(","))
    except ValueError:
        raise typer.BadParameter(f"expected LOW,HIGH (two numbers): {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise typer.BadParameter(f"expected two finite numbers: {text!r}")
    return Severity(low, high)


def command(
    photos: Annotated[list[str] | None, typer.Argument(
        metavar="[PHOTOS]...", show_default=False,
        help="folders (searched recursively), image files, or .txt lists of paths")] = None,
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", show_default=False,
                                     help="output folder (must not exist yet)")] = ...,
    samples: Annotated[bool, typer.Option(
        "--samples",
        help="add the photographs scikit-image ships (framescore.samples)")] = False,
    seed: Annotated[int, typer.Option(help="seed of the split and the faults")] = 0,
    holdout: Annotated[float, typer.Option(
        min=0, max=1, callback=strictly_inside,
        help="share of photos kept out of training, between 0 and 1")] = 0.2,
    variants: Annotated[int, typer.Option(
        min=1, help="mirrored/cropped copies of each training photo")] = 10,
    size: Annotated[int, typer.Option(
        min=1, help="side of the stored renders = the model input")] = 160,
    long_side: Annotated[int, typer.Option(
        min=1, help="photos are resized to this long side before the faults")] = 480,
    low_severity: Annotated[Severity, typer.Option(
        metavar="LOW,HIGH", parser=severity_range,
        help="range of the less damaged copy's severity; the more damaged one lies at least "
             "0.3 above it, up to 1")] = LOW_SEVERITY,
    faults: Annotated[str | None, typer.Option(
        "--faults", metavar="NAME,...", show_default=False,
        help="render only these faults (default: all of framescore.train.faults.FAULTS); they are "
             "drawn in that list's order whatever the order given, so the same names give "
             "the same data")] = None,
    workers: Annotated[int, typer.Option(min=1, help="render processes")] = 1,
    force: Annotated[bool, typer.Option("--force", "-f", help="replace an existing --out")
                     ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar, no summary")
                     ] = False,
) -> int:
    import shutil
    from pathlib import Path

    from framescore.cli.common import progress_bar
    from framescore.errors import UsageError
    from framescore.samples import photo_paths
    from framescore.train import faults as faultlib
    from framescore.train import hints

    sources = list(photos or [])
    if samples:
        sources.extend(photo_paths().values())
    if not sources:
        raise UsageError("no photos given (name folders/files, or pass --samples)")
    fault_names = None
    if faults is not None:
        asked = {f.strip() for f in faults.split(",") if f.strip()}
        unknown = sorted(asked - set(faultlib.FAULTS))
        if unknown or not asked:
            raise UsageError(f"--faults: unknown fault(s) {', '.join(unknown) or '(none given)'}"
                             f" (known: {', '.join(faultlib.FAULTS)})")
        fault_names = [f for f in faultlib.FAULTS if f in asked]
    out = Path(out)
    if out.exists():
        if not force:
            raise UsageError(f"{out} exists (use --force to replace it)")
        if not (out / hints.MANIFEST).is_file() and any(out.iterdir()):
            raise UsageError(f"{out} is not a hints folder; refusing to delete it")
        shutil.rmtree(out)
    with progress_bar("rendering", enabled=not quiet) as (start, advance):
        last = [0]

        def on_progress(done: int, total: int) -> None:
            if last[0] == 0:
                start(total)
            advance(done - last[0])
            last[0] = done

        manifest = hints.build(sources, out, seed, variants=variants, size=size,
                               long_side=long_side, holdout=holdout,
                               fault_names=fault_names, workers=workers,
                               low_severity=low_severity,
                               on_progress=on_progress)
    if not quiet:
        print(f"{out}: {manifest['n_train_photos']} training photos, "
              f"{manifest['n_test_photos']} held out; {manifest['n_images']} images, "
              f"{manifest['n_groups']} triplet groups ({len(manifest['faults'])} faults)")
    return 0
