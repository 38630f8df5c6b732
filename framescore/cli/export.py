"""``framescore export MODEL --out DIR``: ONNX and Core ML files, verified right after export."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from framescore.cli.common import ForceOpt, JsonOpt, QuietOpt

HELP = "write models as ONNX and Core ML files, verified"
DESCRIPTION = (
    "Export a registered model (see `framescore models`) to ONNX and/or Core ML; with --all, "
    "every model that has weights (bundled, or the training runs named with --run). The ONNX "
    "graph takes float32 RGB 0..255 images (N, 3, H, W) with the model's normalization inside "
    "and names its outputs (score and extras); it is checked with onnxruntime against PyTorch "
    "on real photographs (fp32 within 1e-4 relative, fp16 within 1e-2, same ranking) before it "
    "is written. The Core ML package takes an RGB image. Files: MODEL.onnx, MODEL.fp16.onnx, "
    "MODEL.int8.onnx, MODEL.mlpackage, MODEL.export.json.")
EPILOG = ("An exported .onnx file works wherever --model does: "
          "`framescore keyframes clip.mp4 --model out/MODEL.onnx`.")
ONNX = "ONNX"


def batch_value(text: str) -> int | None:
    """``dynamic`` → None, else a whole number ≥ 1 (typer cannot declare "int or a word")."""
    if str(text).lower() == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'dynamic', got {text!r}") from None
    if value < 1:
        raise typer.BadParameter(f"must be at least 1: {text}")
    return value


def command(
    model: Annotated[str | None, typer.Argument(
        metavar="[MODEL]", show_default=False,
        help="registry name of the model (or --all / --run)")] = None,
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", show_default=False,
                                     help="output folder (created if needed)")] = ...,
    all_: Annotated[bool, typer.Option(
        "--all", help="every registered model that has weights (bundled or none needed)")
    ] = False,
    run: Annotated[list[str] | None, typer.Option(
        "--run", metavar="RUN", show_default=False,
        help="a `framescore train` run folder (run.json + best.pt): export its model with "
             "its best.pt (repeatable; with --all it replaces the bundled weights)")] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", "-w", metavar="FILE", show_default=False,
        help="checkpoint file for the model")] = None,
    format: Annotated[Literal["onnx", "coreml", "all"], typer.Option(
        "--format", help="what to write")] = "all",
    fp16: Annotated[bool, typer.Option(
        "--fp16",
        rich_help_panel=ONNX, help="also write a float16 copy (MODEL.fp16.onnx)")] = False,
    int8: Annotated[bool, typer.Option(
        "--int8",
        rich_help_panel=ONNX,
        help="also write an int8 copy (onnxruntime static quantization, calibrated on the "
             "shipped photos; Spearman ρ vs fp32 reported)")] = False,
    batch: Annotated[int | None, typer.Option(
        metavar="N|dynamic", parser=batch_value, rich_help_panel=ONNX, show_default=False,
        help="batch axis (default: dynamic)")] = None,
    size: Annotated[str | None, typer.Option(
        metavar="S|HxW", show_default=False,
        help="input size, when the model can take another one (default: its own)")] = None,
    coreml_precision: Annotated[Literal["fp16", "fp32"], typer.Option(
        help="Core ML weights and arithmetic")] = "fp16",
    exporter: Annotated[Literal["torchscript", "dynamo"], typer.Option(
        rich_help_panel=ONNX,
        help="ONNX exporter tried first; the other is the fallback (torchscript is much "
             "faster on small networks; same parity)")] = "torchscript",
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> int:
    import sys
    from pathlib import Path

    from framescore.cli.common import print_json
    from framescore.errors import UsageError

    runs = list(run or [])
    if model is not None and (all_ or runs):
        raise UsageError("name one MODEL, or use --all / --run, not both")
    if model is None and not (all_ or runs):
        raise UsageError("name a MODEL to export (see `framescore models`), or use --all")
    if weights is not None and model is None:
        raise UsageError("--weights goes with one MODEL (--all uses the bundled weights and "
                         "each --run its best.pt)")

    from framescore.export import batch as many
    from framescore.export import job
    from framescore.export.wrap import parse_size

    formats = ("onnx", "coreml") if format == "all" else (format,)
    template = job.Request(model=model or "", out=Path(out), weights=weights, formats=formats,
                           fp16=fp16, int8=int8, batch=batch, size=parse_size(size),
                           coreml_precision=coreml_precision, force=force, exporter=exporter)
    chatty = not (quiet or json)

    def log(message: str) -> None:
        if chatty:
            print(f"framescore: {message}", file=sys.stderr, flush=True)

    if model is not None:
        job.validate(template)
        report = job.run(template, log=log)
        if json:
            print_json(report.to_dict())
        elif not quiet:
            _print_table([report])
        return 0
    targets = many.plan(all_, runs)
    reports = many.run_all(many.requests(targets, template), log=log)
    if json:
        print_json({"schema": "framescore.export-all/1", "out": str(out),
                    "models": [{**r.to_dict(), "source": t.source}
                               for t, r in zip(targets, reports, strict=True)]})
    elif not quiet:
        _print_table(reports)
    return 0


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _print_table(reports) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    several = len(reports) > 1
    if several:
        title = f"{len(reports)} models exported and verified"
    else:
        inp = reports[0].input
        title = (f"{reports[0].model}: {inp['height']}x{inp['width']} {inp['view']} → "
                 f"{', '.join(reports[0].outputs)}")
    table = Table(title=title)
    table.add_column("file", no_wrap=True)
    for col in ("prec", "size", "rel err", "order"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("checked against")
    for report in reports:
        for a in report.artifacts:
            par = a.parity or {}
            rel = f"{par['rel']:.1e}" if par else "—"
            if not par:
                order = "—"
            elif a.precision == "int8":
                order = f"ρ {par['spearman']:.3f}"
            else:
                order = "same" if par["flipped"] == 0 else f"{par['flipped']} flips"
            against = f"{par['reference']}, {par['images']} images" if par else ""
            if a.note and not par:
                against = a.note
            table.add_row(a.file, a.precision, _fmt_bytes(a.bytes), rel, order, against)
        if several:
            table.add_section()
    console.print(table)
    for report in reports:
        for note in report.notes:
            console.print(f"[yellow]note:[/] {report.model}: {note}" if several
                          else f"[yellow]note:[/] {note}")
    names = ", ".join(f"{r.model}.export.json" for r in reports) if several \
        else f"{reports[0].model}.export.json"
    console.print(f"written to {reports[0].out}/ ({names} {'have' if several else 'has'} "
                  "the figures)")
