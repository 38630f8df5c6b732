"""``framescore evaluate MODEL --weights FILE --data ROOT``: the paper's metrics, ours beside
theirs (or the fault-type table on held-out photos with ``--protocol faults``)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from framescore.cli.common import Device

HELP = "the paper's metrics of a trained model, beside the paper's figures"
DESCRIPTION = (
    "Evaluate trained weights on a dataset's test split with the paper's protocol (accuracy, "
    "pair accuracy, Spearman, Pearson, MSE, RMSER, score range) and print our figures beside "
    "the paper's. The split and settings are those stored in a `framescore train` checkpoint. "
    "--faults (= --protocol faults): pair accuracy per fault type on held-out photos (a "
    "`framescore data` folder or any folder of photos), beside the rules scorer or the "
    "--compare scorers; --cross adds the cross-photo row.")
FAULTS = "Faults protocol"


def command(
    model: Annotated[str, typer.Argument(metavar="MODEL", show_default=False,
                                         help="registry name (see `framescore models`)")],
    data: Annotated[str, typer.Option("--data", "-d", metavar="ROOT", show_default=False,
                                      help="dataset root")],
    weights: Annotated[str | None, typer.Option(
        "--weights", "-w", metavar="FILE", show_default=False,
        help="checkpoint (best.pt / last.pt of `framescore train`, or a state dict); "
             "default: the weights that ship with the model, if any")] = None,
    protocol: Annotated[Literal["paper", "faults"], typer.Option(
        help="paper: the paper's test split and metrics; faults: the fault-type table on "
             "held-out photos")] = "paper",
    faults: Annotated[bool, typer.Option(
        "--faults", rich_help_panel=FAULTS, help="the same as --protocol faults")] = False,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", metavar="FILE", show_default=False,
        help="settings file changing the stored training settings (data_format, "
             "test_views...)")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", show_default=False, help="one setting (repeatable)")
    ] = None,
    device: Annotated[Device, typer.Option(help="where the model runs (auto = CUDA when "
                                                "present)")] = "auto",
    compare: Annotated[list[str] | None, typer.Option(
        "--compare", "-m", metavar="NAME[=WEIGHTS]", rich_help_panel=FAULTS,
        show_default=False,
        help="another scorer in the table: a registry name or .onnx file, with =FILE for "
             "other weights than its own (repeatable; default: rules)")] = None,
    cross: Annotated[bool, typer.Option(
        "--cross", rich_help_panel=FAULTS,
        help="also: each held-out photo's clean image against every other one at full "
             "damage (faults other than tilt and framing)")] = False,
    markdown: Annotated[bool, typer.Option(
        "--markdown", rich_help_panel=FAULTS,
        help="print the table as Markdown (for model cards)")] = False,
    repeats: Annotated[int, typer.Option(
        min=1, rich_help_panel=FAULTS,
        help="draws of each fault per photo: whole, then mirrored crops")] = 2,
    seed: Annotated[int, typer.Option(rich_help_panel=FAULTS,
                                      help="seed of the fault draws")] = 0,
    json: Annotated[bool, typer.Option("--json",
                                       help="print the result as JSON on stdout")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no log lines")] = False,
) -> int:
    import sys

    from framescore.train.evaluate import evaluate, print_figures

    def log(message: str) -> None:
        if not (quiet or json):
            print(f"framescore: {message}", file=sys.stderr, flush=True)

    from framescore.errors import UsageError
    from framescore.train.evaluate import compared

    if faults:
        protocol = "faults"
    if (cross or markdown or compare) and protocol != "faults":
        raise UsageError("--compare, --cross and --markdown belong to the faults protocol "
                         "(add --faults)")
    others = compare if compare else ["rules"]
    for text in others:
        compared(text)     # a malformed value fails before any work
    result = evaluate(model, weights or _bundled(model), data, config_file=config,
                      overrides=list(overrides or []), device=device, protocol=protocol,
                      seed=seed, repeats=repeats, compare=others, cross=cross, log=log)
    if json:
        from framescore.cli.common import print_json

        print_json(result.as_dict())
        return 0
    if result.protocol == "faults":
        from framescore.train.fault_eval import markdown_table, print_table

        if markdown:
            print(markdown_table(result.fault_tables), end="")
        else:
            print_table(result.fault_tables)
        for c in result.cross_tables:
            print(f"cross-photo {c.name}: {100 * c.accuracy:.1f} % of {c.pairs} pairs")
    else:
        print_figures(result)
    log(f"{result.seconds:.1f} s")
    return 0


def _bundled(model: str) -> str:
    from framescore.errors import WeightsError
    from framescore.models.registry import get

    path = get(model).bundled_path
    if path is None or not path.is_file():
        raise WeightsError(f"model {model!r} ships no weights: pass --weights FILE")
    return str(path)
