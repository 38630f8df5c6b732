"""One ``framescore export`` run: build, convert, verify, then move the files into place.

Everything is written into a hidden staging folder inside the output folder and checked there
(ONNX parity against PyTorch on the shipped photographs, Core ML spec checks); only when every
file has passed are they renamed to their final names, the report ``<model>.export.json`` last.
A failure anywhere leaves no file behind that could look complete.

Files, for a model ``M`` in ``--out DIR``: ``M.onnx`` (fp32, always written with ONNX),
``M.fp16.onnx`` (``--fp16``), ``M.int8.onnx`` (``--int8``), ``M.mlpackage`` (Core ML),
``M.export.json`` (what was written, with the parity figures).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from framescore.errors import OutputError, UsageError
from framescore.export.wrap import ExportError, prepare
from framescore.outputs import replace_into

FORMATS = ("onnx", "coreml")
SCHEMA = "framescore.export/1"


@dataclass(frozen=True)
class Request:
    """What to export and how (the command line's options)."""

    model: str
    out: Path
    weights: str | None = None
    formats: tuple[str, ...] = ("onnx",)
    fp16: bool = False
    int8: bool = False
    batch: int | None = None            # ONNX batch axis; None = dynamic
    size: tuple[int, int] | None = None
    coreml_precision: str = "fp16"
    force: bool = False
    photos: tuple[str, ...] | None = None  # shipped photos to verify on (default: all)
    int8_crops: int = 3                 # random crops per photo for int8 calibration / ρ
    exporter: str = "torchscript"       # ONNX exporter tried first (the other is the fallback)


@dataclass
class Artifact:
    """One written file and how it was checked."""

    file: str
    format: str
    precision: str
    bytes: int = 0
    parity: dict | None = None
    spec: dict | None = None
    note: str | None = None


@dataclass
class Report:
    model: str
    out: Path
    input: dict
    outputs: list[str]
    artifacts: list[Artifact] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def to_dict(self) -> dict:
        from framescore import __version__

        return {"schema": SCHEMA, "framescore": __version__, "model": self.model,
                "out": str(self.out), "input": self.input, "outputs": self.outputs,
                "verified_on": self.photos,
                "files": [a.__dict__ for a in self.artifacts], "notes": self.notes,
                "elapsed_s": round(self.elapsed, 2)}


def validate(req: Request) -> None:
    """Option combinations that cannot work, refused before any work is done."""
    if not req.formats or any(f not in FORMATS for f in req.formats):
        raise UsageError(f"--format must be onnx, coreml or all (got {','.join(req.formats)})")
    if "onnx" not in req.formats:
        if req.int8:
            raise UsageError("--int8 is an ONNX option (Core ML int8 is not supported); "
                             "use --format onnx or all")
        if req.fp16:
            raise UsageError("--fp16 is an ONNX option (Core ML packages are float16 already; "
                             "--coreml-precision fp32 keeps float32)")
        if req.batch not in (None, 1):
            raise UsageError("--batch applies to ONNX; a Core ML image input takes one frame "
                             "(apps batch with MLBatchProvider)")
    if req.coreml_precision not in ("fp16", "fp32"):
        raise UsageError("--coreml-precision must be fp16 or fp32")
    if req.exporter not in ("torchscript", "dynamo"):
        raise UsageError("--exporter must be torchscript or dynamo")


def targets(req: Request) -> dict[str, Path]:
    """Final path of every file the request writes (key: a label)."""
    stem = req.model
    out: dict[str, Path] = {}
    if "onnx" in req.formats:
        out["onnx"] = req.out / f"{stem}.onnx"
        if req.fp16:
            out["onnx-fp16"] = req.out / f"{stem}.fp16.onnx"
        if req.int8:
            out["onnx-int8"] = req.out / f"{stem}.int8.onnx"
    if "coreml" in req.formats:
        out["coreml"] = req.out / f"{stem}.mlpackage"
    out["report"] = req.out / f"{stem}.export.json"
    return out


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def run(req: Request, log: Callable[[str], None] = lambda _msg: None) -> Report:
    """Export, verify and write; returns the report (also written as ``M.export.json``)."""
    from framescore.export import onnx as onnx_export
    from framescore.export import verify
    from framescore.outputs import json_text

    started = time.perf_counter()
    validate(req)
    paths = targets(req)
    # the model, its weights and the options are checked before the outputs, so a bad name or
    # weights file is what gets reported even where an earlier export lies
    exp = prepare(req.model, req.weights, req.size)  # bad names/weights fail before any output
    if exp.parameters == 0 and (req.fp16 or req.int8):
        raise UsageError(f"model {req.model!r} has no learned weights: fp16/int8 copies would "
                         "not be smaller, and its per-pixel sums need float32")
    for path in paths.values():
        if path.exists() and not req.force:
            raise OutputError(f"{path}: exists already (use --force to replace it)")
    if req.out.exists() and not req.out.is_dir():
        raise OutputError(f"{req.out}: not a folder")
    report = Report(model=exp.name, out=req.out, outputs=list(exp.outputs),
                    input={"name": "image", "height": exp.spec.height, "width": exp.spec.width,
                           "view": exp.spec.view, "mean": list(exp.spec.mean),
                           "std": list(exp.spec.std), "range": "RGB 0..255",
                           "batch": "dynamic" if req.batch is None else req.batch})
    images = verify.photo_batch(exp.spec, list(req.photos) if req.photos else None)
    from framescore.samples import photo_paths

    report.photos = list(req.photos) if req.photos else list(photo_paths())

    try:
        req.out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{req.model}.export.", suffix=".partial",
                                      dir=req.out))
    except OSError as exc:
        raise OutputError(f"{req.out}: cannot write there ({exc.strerror})") from None
    try:
        staged: dict[str, Path] = {}
        if "onnx" in req.formats:
            p = stage / paths["onnx"].name
            log("exporting ONNX (fp32)")
            meta = onnx_export.export_onnx(exp, p, req.batch, req.exporter)
            log(f"exported with {meta['framescore.exporter']}")
            log(f"checking ONNX fp32 against {exp.reference_label}")
            parity = verify.verify_onnx(p, exp.reference, images, "fp32",
                                        exp.reference_label)
            if not parity.passed:
                raise ExportError(f"{p.name}: {parity.problem()}")
            staged["onnx"] = p
            report.artifacts.append(Artifact(paths["onnx"].name, "onnx", "fp32", _size(p),
                                             parity=parity.to_dict(),
                                             note=f"exported with {meta['framescore.exporter']}"))
            if req.fp16:
                q = stage / paths["onnx-fp16"].name
                log("converting ONNX to fp16")
                onnx_export.to_fp16(p, q)
                parity = verify.verify_onnx(q, exp.reference, images, "fp16",
                                            exp.reference_label)
                if not parity.passed:
                    raise ExportError(f"{q.name}: {parity.problem()}")
                staged["onnx-fp16"] = q
                report.artifacts.append(Artifact(q.name, "onnx", "fp16", _size(q),
                                                 parity=parity.to_dict()))
            if req.int8:
                q = stage / paths["onnx-int8"].name
                log("quantizing ONNX to int8")
                calib = verify.photo_batch(exp.spec, list(req.photos) if req.photos else None,
                                           crops_per_photo=req.int8_crops, seed=1)
                onnx_export.to_int8(p, q, calib)
                held_out = verify.photo_batch(exp.spec, list(req.photos) if req.photos else None,
                                              crops_per_photo=req.int8_crops, seed=2)
                parity = verify.int8_agreement(q, p, held_out)
                note = None
                if parity.spearman is not None and parity.spearman < 0.95:
                    note = (f"int8 ranks differently from fp32 (Spearman {parity.spearman:.3f}); "
                            "prefer fp16")
                    report.notes.append(note)
                staged["onnx-int8"] = q
                report.artifacts.append(Artifact(q.name, "onnx", "int8", _size(q),
                                                 parity=parity.to_dict(), note=note))
        if "coreml" in req.formats:
            from framescore.export import coreml

            p = stage / paths["coreml"].name
            precision = coreml.precision_for(exp, req.coreml_precision)
            log(f"converting to Core ML ({precision})")
            coreml.export_coreml(exp, p, precision)
            checks = coreml.check_spec(p, exp, precision)
            art = Artifact(p.name, "coreml", precision, _size(p), spec=checks)
            ok, why = coreml.can_predict()
            if ok:
                log(f"checking Core ML against {exp.reference_label}")
                parity = coreml.predict_parity(p, exp.reference, images, precision,
                                               exp.reference_label)
                if not parity.passed:
                    raise ExportError(f"{p.name}: {parity.problem()}")
                art.parity = parity.to_dict()
            else:
                art.note = f"spec checked; not run: {why}"
            staged["coreml"] = p
            report.artifacts.append(art)
        report.elapsed = time.perf_counter() - started
        staged_report = stage / paths["report"].name
        staged_report.write_text(json_text(report.to_dict()), encoding="utf-8")
        for label, src in staged.items():
            replace_into(src, paths[label], req.force)
        replace_into(staged_report, paths["report"], req.force)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return report
