"""Export benchmark: file sizes, parity and CPU throughput of ONNX (onnxruntime) vs PyTorch.

For each model (default: the smallest of each family, plus the default model) this exports
fp32, fp16 and int8 ONNX files and an fp16 Core ML package into a temporary folder, and prints
one markdown table row:

* sizes of the fp32 / fp16 / int8 ONNX files and of the Core ML package;
* parity on the 8 shipped photographs: max relative error (``max|ort - torch| / max|torch|``
  over all outputs) of fp32 and fp16, "same" when no pair of photos changes order, and the
  Spearman ρ of int8 against fp32 scores over 8 x 4 views;
* CPU images/s at batch ``--batch`` for PyTorch (eval, inference_mode, fp32) and for
  onnxruntime running the fp32 and int8 files, both on every core torch/onnxruntime use.

Weights: the bundled ones when a model has them; otherwise the ImageNet backbone where the
model can start from one offline (``pretrained=True``), else seeded random weights. Sizes,
speed and parity of the conversion do not depend on the weights being trained (int8 ρ does).

    python bench/export.py [--models a,b,...] [--all] [--batch 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
import inspect
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import framescore  # noqa: F401  (first: it sets the OpenMP spin users get, before torch)

# isort: split
import numpy as np
import torch


def _weights_for(name: str, tmp: Path) -> tuple[str | None, str]:
    from framescore.models.registry import REGISTRY

    info = REGISTRY[name]
    if info.build is None:
        return None, "none needed"
    if info.weights_available and info.bundled_path:
        return None, "bundled"
    torch.manual_seed(0)
    if "pretrained" in inspect.signature(info.build).parameters:
        module, label = info.build(pretrained=True), "ImageNet backbone"
    else:
        module, label = info.build(), "random"
    path = tmp / f"{name}.pt"
    torch.save(module.state_dict(), path)
    return str(path), label


def _rate(fn, images: np.ndarray, seconds: float) -> float:
    fn(images)  # warm-up
    n, started = 0, time.perf_counter()
    while True:
        fn(images)
        n += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and n >= 2:
            return n * len(images) / elapsed


def bench_model(name: str, batch: int, seconds: float, coreml_too: bool = True) -> dict:
    from framescore.export import coreml, verify
    from framescore.export import onnx as ox
    from framescore.export.wrap import prepare
    from framescore.scorers.onnx import OnnxScorer

    row: dict = {"model": name}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        weights, row["weights"] = _weights_for(name, tmp)
        exp = prepare(name, weights)
        row["params"] = exp.parameters
        images = verify.photo_batch(exp.spec)
        fp32, fp16, int8 = tmp / "m.onnx", tmp / "m.fp16.onnx", tmp / "m.int8.onnx"
        t = time.perf_counter()
        meta = ox.export_onnx(exp, fp32)
        row["export_s"] = time.perf_counter() - t
        row["exporter"] = meta["framescore.exporter"]
        row["fp32_bytes"] = fp32.stat().st_size
        p32 = verify.verify_onnx(fp32, exp.reference, images, "fp32", exp.reference_label)
        row["fp32_rel"], row["fp32_order"] = p32.rel, p32.flipped == 0
        if exp.parameters:
            ox.to_fp16(fp32, fp16)
            row["fp16_bytes"] = fp16.stat().st_size
            p16 = verify.verify_onnx(fp16, exp.reference, images, "fp16", exp.reference_label)
            row["fp16_rel"], row["fp16_order"] = p16.rel, p16.flipped == 0
            ox.to_int8(fp32, int8, verify.photo_batch(exp.spec, crops_per_photo=3, seed=1))
            row["int8_bytes"] = int8.stat().st_size
            held = verify.photo_batch(exp.spec, crops_per_photo=3, seed=2)
            row["int8_rho"] = verify.int8_agreement(int8, fp32, held).spearman
        if coreml_too:
            pkg = tmp / "m.mlpackage"
            coreml.export_coreml(exp, pkg)
            row["coreml_bytes"] = coreml.check_spec(pkg, exp)["bytes"]
            row["coreml_precision"] = coreml.precision_for(exp)

        sample = np.concatenate([images] * (batch // len(images) + 1))[:batch]
        with torch.inference_mode():
            row["torch_ips"] = _rate(exp.reference.score_batch, sample, seconds)
        row["ort_ips"] = _rate(OnnxScorer(fp32).score_batch, sample, seconds)
        if int8.exists():
            row["ort_int8_ips"] = _rate(OnnxScorer(int8).score_batch, sample, seconds)
    return row


def _mb(n: int | None) -> str:
    return "—" if n is None else (f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB")


def _par(rel: float | None, same: bool | None) -> str:
    if rel is None:
        return "—"
    return f"{rel:.1e}" + ("" if same else " (order!)")


def markdown(rows: list[dict]) -> str:
    head = ("| model | weights | params | ONNX fp32 | fp16 | int8 | Core ML | rel err fp32 | "
            "rel err fp16 | int8 ρ | PyTorch img/s | ORT fp32 img/s | ORT int8 img/s |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('weights', '')} | failed: {r['error']} |"
                         + " |" * 10)
            continue
        coreml = (f"{_mb(r['coreml_bytes'])} ({r['coreml_precision']})"
                  if "coreml_bytes" in r else "—")
        rho = f"{r['int8_rho']:.3f}" if r.get("int8_rho") is not None else "—"
        lines.append(
            f"| {r['model']} | {r['weights']} | {r['params'] / 1e6:.1f} M | "
            f"{_mb(r['fp32_bytes'])} | {_mb(r.get('fp16_bytes'))} | {_mb(r.get('int8_bytes'))} | "
            f"{coreml} | {_par(r['fp32_rel'], r['fp32_order'])} | "
            f"{_par(r.get('fp16_rel'), r.get('fp16_order'))} | {rho} | {r['torch_ips']:.1f} | "
            f"{r['ort_ips']:.1f} | "
            + (f"{r['ort_int8_ips']:.1f}" if "ort_int8_ips" in r else "—") + " |")
    return "\n".join(lines)


def default_models() -> list[str]:
    from framescore.models.registry import REGISTRY, default_model, family_of

    best: dict = {}
    for info in REGISTRY.values():
        fam = family_of(info)
        if fam not in best or info.parameters() < best[fam].parameters():
            best[fam] = info
    names = [m.name for m in best.values()]
    return names + [n for n in [default_model()] if n not in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None, help="comma-separated registry names")
    parser.add_argument("--all", action="store_true", help="every registered model")
    parser.add_argument("--batch", type=int, default=8, help="images per run (default 8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--no-coreml", action="store_true", help="skip the Core ML packages")
    args = parser.parse_args(argv)
    from framescore.models.registry import REGISTRY

    names = (list(REGISTRY) if args.all else
             args.models.split(",") if args.models else default_models())
    rows = []
    for name in names:
        print(f"… {name}", file=sys.stderr, flush=True)
        try:
            rows.append(bench_model(name, args.batch, args.seconds, not args.no_coreml))
        except Exception as exc:  # noqa: BLE001 - one failing model should not end the table
            rows.append({"model": name, "error": str(exc).splitlines()[0][:80]})
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    print(f"framescore export benchmark, {date.today()}: {cpu}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
          f"batch {args.batch}\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
