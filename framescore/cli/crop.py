"""``framescore crop IMAGE --aspect W:H``: the best-scoring crop of a photo for an aspect ratio."""

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
    finite,
)

HELP = "the best crop of a photo for an aspect ratio"
DESCRIPTION = ("Score many candidate crops with the target aspect ratio and write the best one "
               "(the aesthetic crop of Jin et al.).")
SEARCH = "Search"


def command(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="the photo",
                                         show_default=False)],
    aspect: Annotated[str, typer.Option(
        "--aspect", "-a", metavar="W:H", show_default=False,
        help="target aspect ratio, e.g. 16:9, 1:1, 4:5")],
    out: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="FILE", show_default=False,
        help="where to write the crop (.jpg, .png, .webp, .tif; default: <stem>.crop.jpg "
             "beside the photo)")] = None,
    search: Annotated[Literal["random", "coarse-to-fine"], typer.Option(
        rich_help_panel=SEARCH,
        help="random: the paper's random crops; coarse-to-fine: a grid then local "
             "refinement, about 4x faster")] = "random",
    candidates: Annotated[int, typer.Option(
        min=1, metavar="N", rich_help_panel=SEARCH,
        help="random search: how many crops to score")] = 1000,
    min_scale: Annotated[float, typer.Option(
        metavar="S", callback=finite, rich_help_panel=SEARCH,
        help="smallest crop, as a fraction (0..1] of the largest one with that aspect")] = 0.5,
    seed: Annotated[int, typer.Option(rich_help_panel=SEARCH,
                                      help="random search seed")] = 0,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchSizeOpt = 32,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> int:
    from pathlib import Path

    from framescore.apps import crop
    from framescore.cli.common import make_scorer, print_json, progress_bar
    from framescore.io.video import check_regular_file
    from framescore.outputs import check_free

    crop.parse_aspect(aspect)          # bad input fails before the model loads
    check_regular_file(Path(image), "a photo")  # missing, a folder, a FIFO: one line
    out_file = Path(out) if out else crop.default_out(image)
    crop.output_format(out_file)
    scorer = make_scorer(model, weights, device)
    check_free(out_file, force)
    with progress_bar("cropping", enabled=not (quiet or json)) as (start, advance):
        result = crop.best_crop(image, aspect, scorer, search=search,
                                candidates=candidates, min_scale=min_scale,
                                seed=seed, batch_size=batch_size,
                                on_start=start, on_batch=advance)
    crop.write_crop(result, out_file, force=force)
    if json:
        print_json(result.summary())
    elif not quiet:
        b = result.box
        print(f"{result.path.name}: {b.width}x{b.height} crop at ({b.left}, {b.top}) of "
              f"{result.size[0]}x{result.size[1]}, score {result.score:.4g} (centred largest "
              f"crop {result.full_score:.4g}; {result.scored} crops scored by {result.model} "
              f"in {result.elapsed:.1f} s) -> {out_file}")
    return 0
