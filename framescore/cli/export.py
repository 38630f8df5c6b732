"""``framescore export MODEL --out DIR``: ONNX and Core ML files, verified right after export."""

from __future__ import annotations

import argparse

from framescore.cli.common import add_output_options


def batch_arg(text: str) -> int | None:
    """``dynamic`` → None, else a whole number ≥ 1."""
    if text.lower() == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'dynamic', got {text!r}") \
            from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a model as ONNX and Core ML files, verified",
        description="Export a registered model (see `framescore models`) to ONNX and/or Core ML. "
                    "The ONNX graph takes float32 RGB 0..255 images (N, 3, H, W) with the "
                    "model's normalization inside and names its outputs (score and extras); "
                    "it is checked with onnxruntime against PyTorch on real photographs "
                    "(fp32 within 1e-4 relative, fp16 within 1e-2, same ranking) before it "
                    "is written. The Core ML package takes an RGB image. Files: MODEL.onnx, "
                    "MODEL.fp16.onnx, MODEL.int8.onnx, MODEL.mlpackage, MODEL.export.json.",
        epilog="An exported .onnx file works wherever --model does: "
               "`framescore keyframes clip.mp4 --model out/MODEL.onnx`.")
    p.add_argument("model", help="registry name of the model")
    p.add_argument("--weights", "-w", default=None, help="checkpoint file for the model")
    p.add_argument("--format", choices=["onnx", "coreml", "all"], default="all",
                   help="what to write (default: all)")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output folder (created if needed)")
    p.add_argument("--fp16", action="store_true",
                   help="ONNX: also write a float16 copy (MODEL.fp16.onnx)")
    p.add_argument("--int8", action="store_true",
                   help="ONNX: also write an int8 copy (onnxruntime static quantization, "
                        "calibrated on the shipped photos; Spearman ρ vs fp32 reported)")
    p.add_argument("--batch", type=batch_arg, default=None, metavar="N|dynamic",
                   help="ONNX batch axis (default: dynamic)")
    p.add_argument("--size", default=None, metavar="S|HxW",
                   help="input size, when the model can take another one (default: its own)")
    p.add_argument("--coreml-precision", choices=["fp16", "fp32"], default="fp16",
                   help="Core ML weights and arithmetic (default: fp16)")
    p.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript",
                   help="ONNX exporter tried first; the other is the fallback (default: "
                        "torchscript, much faster on small networks; same parity)")
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from framescore.cli.common import print_json
    from framescore.export import job
    from framescore.export.wrap import parse_size

    formats = ("onnx", "coreml") if args.format == "all" else (args.format,)
    req = job.Request(model=args.model, out=Path(args.out), weights=args.weights,
                      formats=formats, fp16=args.fp16, int8=args.int8, batch=args.batch,
                      size=parse_size(args.size), coreml_precision=args.coreml_precision,
                      force=args.force, exporter=args.exporter)
    job.validate(req)
    chatty = not (args.quiet or args.json)

    def log(message: str) -> None:
        if chatty:
            print(f"framescore: {message}", file=sys.stderr, flush=True)

    report = job.run(req, log=log)
    if args.json:
        print_json(report.to_dict())
    elif not args.quiet:
        _print_table(report)
    return 0


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    inp = report.input
    table = Table(title=f"{report.model}: {inp['height']}x{inp['width']} {inp['view']} → "
                        f"{', '.join(report.outputs)}")
    table.add_column("file", no_wrap=True)
    for col in ("prec", "size", "rel err", "order"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("checked against")
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
    console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"written to {report.out}/ ({report.model}.export.json has the figures)")
