"""Registered models to ONNX: fp32 (the reference file), fp16 and int8 variants.

The graph (see :mod:`framescore.export.wrap`) takes ``image``: float32 ``(N, 3, H, W)``, RGB
pixels in 0..255, and does the model's normalization itself; its outputs are named ``score``
(``(N,)``, higher is better) and the model's extras. The batch axis is dynamic unless a fixed
batch is asked for. The opset is pinned (:data:`OPSET`). What an :class:`OnnxScorer
<framescore.scorers.onnx.OnnxScorer>` needs to use the file (model name, input size, view,
precision...) is written into the file's ``metadata_props``.

Exporter: both of torch's exporters write files that pass the same parity checks for every
registered family. The TorchScript exporter (``dynamo=False``) is tried first because it is
several times faster on the small networks (measured on 2 CPU cores: rules 1 s vs 11 s,
framescore-mobile 2 s vs 10 s; the same within noise on ResNet-50/VGG16); the torch.export
based one (``dynamo=True``, torch's default since 2.9) is the fallback, and the first choice
with ``exporter="dynamo"``. The metadata records which one wrote the file.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from framescore.export.wrap import Exportable, ExportError, Normalized, describe

OPSET = 18
INPUT = "image"
INPUT_DOC = "float32 (N, 3, H, W) RGB pixels in 0..255; normalization is inside the graph"


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Silence the converters' progress lines, warnings and C++-level dumps (the TorchScript
    exporter prints its whole IR graph to the stderr *file descriptor* when it fails), so a
    failure reads as one line. Python-level output is kept in the yielded buffer."""
    buf = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved: list[int] = []
        try:
            saved = [os.dup(1), os.dup(2)]
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
        except OSError:  # no real descriptors (embedded interpreter): Python level only
            for fd in saved:
                os.close(fd)
            saved = []
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(buf), \
                    contextlib.redirect_stderr(buf):
                warnings.simplefilter("ignore")
                yield buf
        finally:
            if saved:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return type(exc).__name__


def _export_dynamo(wrapper: torch.nn.Module, x: torch.Tensor, path: Path,
                   outputs: tuple[str, ...], dynamic: bool) -> None:
    shapes = ({0: torch.export.Dim("batch", min=1, max=65536)},) if dynamic else None
    torch.onnx.export(wrapper, (x,), str(path), dynamo=True, external_data=False,
                      input_names=[INPUT], output_names=list(outputs), opset_version=OPSET,
                      dynamic_shapes=shapes, verbose=False)


def _export_torchscript(wrapper: torch.nn.Module, x: torch.Tensor, path: Path,
                        outputs: tuple[str, ...], dynamic: bool) -> None:
    axes = {name: {0: "batch"} for name in (INPUT, *outputs)} if dynamic else None
    torch.onnx.export(wrapper, (x,), str(path), dynamo=False, input_names=[INPUT],
                      output_names=list(outputs), opset_version=OPSET, dynamic_axes=axes,
                      do_constant_folding=True)


EXPORTERS = ("torchscript", "dynamo")


def export_onnx(exp: Exportable, path: str | Path, batch: int | None = None,
                exporter: str = "torchscript") -> dict[str, str]:
    """Write the fp32 ONNX file of ``exp`` to ``path``; returns the metadata written.

    ``batch=None``: dynamic batch axis; an int fixes it. ``exporter`` is tried first, the other
    one if it fails. The file is checked with ``onnx.checker`` before it is written; any
    failure is one :class:`ExportError` line.
    """
    import onnx

    path = Path(path)
    wrapper = Normalized(exp, "pixels").eval()
    n = batch or 2
    seed = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, exp.spec.height, exp.spec.width, generator=seed) * 255
    tmp = path.with_name(path.name + ".raw")
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}")
    order = (exporter, *[e for e in EXPORTERS if e != exporter])
    functions = {"dynamo": _export_dynamo, "torchscript": _export_torchscript}
    errors: list[str] = []
    used = None
    for label in order:
        try:
            with quiet(), torch.no_grad():
                functions[label](wrapper, x, tmp, exp.outputs, batch is None)
            used = label
            break
        except Exception as exc:  # noqa: BLE001 - try the other exporter, then report both
            errors.append(f"{label}: {_first_line(exc)}")
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".data").unlink(missing_ok=True)
    if used is None:
        raise ExportError(f"ONNX export of {exp.name!r} failed ({'; '.join(errors)})")
    try:
        model = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".data").unlink(missing_ok=True)
    meta = describe(exp)
    meta.update({"framescore.input": INPUT_DOC, "framescore.precision": "fp32",
                 "framescore.exporter": f"torch {torch.__version__} ({used})",
                 "framescore.opset": str(OPSET),
                 "framescore.batch": "dynamic" if batch is None else str(batch)})
    model.doc_string = f"framescore {exp.name}: {exp.info.summary}"
    model.producer_name = "framescore"
    _set_metadata(model, meta)
    _name_batch_axis(model, batch)
    _strip_node_metadata(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"ONNX export of {exp.name!r} is not a valid model "
                          f"({_first_line(exc)})") from None
    onnx.save(model, str(path))
    return meta


def _set_metadata(model, meta: dict[str, str]) -> None:
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def _strip_node_metadata(model) -> None:
    """Drop per-node annotations (the dynamo exporter records Python stack traces with the
    exporting machine's file paths): they are most of a small model's bytes and no use to it."""
    for node in model.graph.node:
        del node.metadata_props[:]
    for value in (*model.graph.value_info, *model.graph.input, *model.graph.output):
        del value.metadata_props[:]
    for init in model.graph.initializer:
        del init.metadata_props[:]


def _name_batch_axis(model, batch: int | None) -> None:
    """Call the dynamic first axis of every input and output ``batch`` (exporters differ)."""
    if batch is not None:
        return
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (without loading its weights)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def to_fp16(src: str | Path, dst: str | Path) -> None:
    """An fp16 copy of an fp32 file: weights and arithmetic in float16, input and outputs kept
    float32 (so callers feed the same tensor), metadata kept with ``precision=fp16``."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    try:
        with quiet():
            half = convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"fp16 conversion failed ({_first_line(exc)})") from None
    _set_metadata(half, {"framescore.precision": "fp16"})
    onnx.save(half, str(dst))


class _Calibration:
    """onnxruntime's CalibrationDataReader over a uint8 NHWC batch, one image at a time."""

    def __init__(self, images: np.ndarray) -> None:
        self._it = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self._it, None)
        if image is None:
            return None
        return {INPUT: image.transpose(2, 0, 1)[None].astype(np.float32)}


def to_int8(src: str | Path, dst: str | Path, calibration: np.ndarray) -> None:
    """An int8 copy: onnxruntime static quantization (QDQ, int8 weights per output channel,
    uint8 activations), activation ranges from ``calibration``: uint8 ``(N, H, W, 3)`` images
    at the model's input size (views of the shipped photos)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dst = Path(dst)
    pre = dst.with_name(dst.name + ".pre")
    try:
        with quiet():
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(dst), _Calibration(calibration),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
    except Exception as exc:  # noqa: BLE001
        dst.unlink(missing_ok=True)
        raise ExportError(f"int8 quantization failed ({_first_line(exc)})") from None
    finally:
        pre.unlink(missing_ok=True)
        for extra in dst.parent.glob(dst.name + ".pre*"):
            extra.unlink(missing_ok=True)
    model = onnx.load(str(dst))
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    meta["framescore.precision"] = "int8"
    _set_metadata(model, meta)
    onnx.save(model, str(dst))
