"""``framescore crop IMAGE --aspect W:H``: the best-scoring crop of a photo for an aspect ratio."""

from __future__ import annotations

import argparse

from framescore.cli.common import add_model_options, add_output_options, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crop", help="the best crop of a photo for an aspect ratio",
        description="Score many candidate crops with the target aspect ratio and write the best "
                    "one (the aesthetic crop of Jin et al.).")
    p.add_argument("image", help="the photo")
    p.add_argument("--aspect", "-a", required=True, metavar="W:H",
                   help="target aspect ratio, e.g. 16:9, 1:1, 4:5")
    p.add_argument("--out", "-o", default=None, metavar="FILE",
                   help="where to write the crop (.jpg, .png, .webp, .tif; default: "
                        "<stem>.crop.jpg beside the photo)")
    s = p.add_argument_group("search")
    s.add_argument("--search", choices=["random", "coarse-to-fine"], default="random",
                   help="random: the paper's random crops (default); coarse-to-fine: a grid "
                        "then local refinement, about 4x faster")
    s.add_argument("--candidates", type=positive_int, default=1000, metavar="N",
                   help="random search: how many crops to score (default: 1000)")
    s.add_argument("--min-scale", type=float, default=0.5, metavar="S",
                   help="smallest crop, as a fraction of the largest one with that aspect "
                        "(default: 0.5)")
    s.add_argument("--seed", type=int, default=0, help="random search seed (default: 0)")
    add_model_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from framescore.apps import crop
    from framescore.cli.common import print_json, progress_bar
    from framescore.io.video import check_regular_file
    from framescore.models.registry import load_scorer
    from framescore.outputs import check_free
    from framescore.scoring import resolve_device

    crop.parse_aspect(args.aspect)          # bad input fails before the model loads
    check_regular_file(Path(args.image), "a photo")  # missing, a folder, a FIFO: one line
    out = Path(args.out) if args.out else crop.default_out(args.image)
    crop.output_format(out)
    check_free(out, args.force)
    scorer = load_scorer(args.model, args.weights, device=resolve_device(args.device))
    with progress_bar("cropping", enabled=not (args.quiet or args.json)) as (start, advance):
        result = crop.best_crop(args.image, args.aspect, scorer, search=args.search,
                                candidates=args.candidates, min_scale=args.min_scale,
                                seed=args.seed, batch_size=args.batch_size,
                                on_start=start, on_batch=advance)
    crop.write_crop(result, out, force=args.force)
    if args.json:
        print_json(result.summary())
    elif not args.quiet:
        b = result.box
        print(f"{result.path.name}: {b.width}x{b.height} crop at ({b.left}, {b.top}) of "
              f"{result.size[0]}x{result.size[1]}, score {result.score:.4g} (centred largest "
              f"crop {result.full_score:.4g}; {result.scored} crops scored by {result.model} "
              f"in {result.elapsed:.1f} s) -> {out}")
    return 0
