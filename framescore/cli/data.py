"""``framescore data PHOTOS --out DIR --seed S``: relative-hint triplets from good photos."""

from __future__ import annotations

import argparse

from framescore.cli.common import positive_int


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def _severity_range(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        low, high = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers): {text!r}") from None
    return low, high


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data", help="build training triplets from good photos (graded faults)",
        description="Hold out a share of the photos for evaluation, then render every "
                    "training photo clean and with each fault at a low and a high severity: "
                    "the clean photo ranks above the less damaged copy, which ranks above "
                    "the more damaged one. Same photos + same seed = same data.")
    p.add_argument("photos", nargs="*", default=[],
                   help="folders (searched recursively), image files, or .txt lists of paths")
    p.add_argument("--samples", action="store_true",
                   help="add the photographs scikit-image ships (framescore.samples)")
    p.add_argument("--out", "-o", required=True, help="output folder (must not exist yet)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the faults")
    p.add_argument("--holdout", type=_fraction, default=0.2,
                   help="share of photos kept out of training (default: 0.2)")
    p.add_argument("--variants", type=positive_int, default=10,
                   help="mirrored/cropped copies of each training photo (default: 10)")
    p.add_argument("--size", type=positive_int, default=160,
                   help="side of the stored renders = the model input (default: 160)")
    p.add_argument("--long-side", type=positive_int, default=480,
                   help="photos are resized to this long side before the faults (default: 480)")
    p.add_argument("--low-severity", type=_severity_range, default=(0.15, 0.55),
                   metavar="LOW,HIGH",
                   help="range of the less damaged copy's severity; the more damaged one lies "
                        "at least 0.3 above it, up to 1 (default: 0.15,0.55)")
    p.add_argument("--workers", type=positive_int, default=1, help="render processes")
    p.add_argument("--force", "-f", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from framescore.apps import hints
    from framescore.cli.common import progress_bar
    from framescore.errors import UsageError
    from framescore.samples import photo_paths

    sources = list(args.photos)
    if args.samples:
        sources.extend(photo_paths().values())
    if not sources:
        raise UsageError("no photos given (name folders/files, or pass --samples)")
    out = Path(args.out)
    if out.exists():
        if not args.force:
            raise UsageError(f"{out} exists (use --force to replace it)")
        if not (out / hints.MANIFEST).is_file() and any(out.iterdir()):
            raise UsageError(f"{out} is not a hints folder; refusing to delete it")
        shutil.rmtree(out)
    with progress_bar("rendering", enabled=not args.quiet) as (start, advance):
        last = [0]

        def on_progress(done: int, total: int) -> None:
            if last[0] == 0:
                start(total)
            advance(done - last[0])
            last[0] = done

        manifest = hints.build(sources, out, args.seed, variants=args.variants, size=args.size,
                               long_side=args.long_side, holdout=args.holdout,
                               workers=args.workers, low_severity=args.low_severity,
                               on_progress=on_progress)
    if not args.quiet:
        print(f"{out}: {manifest['n_train_photos']} training photos, "
              f"{manifest['n_test_photos']} held out; {manifest['n_images']} images, "
              f"{manifest['n_groups']} triplet groups ({len(manifest['faults'])} faults)")
    return 0
