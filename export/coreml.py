"""Registered models to Core ML: an ``.mlpackage`` (ML program) an iOS/macOS app can feed camera
frames to.

* Input ``image``: a Core ML image (RGB, the model's height x width, batch 1: apps batch through
  ``MLBatchProvider``). Core ML applies ``scale * pixel + bias`` with ONE scale for all channels
  and a bias per channel; :func:`framescore.export.wrap.coreml_image_scale` chooses
  ``scale = 1 / (255 std_0)``, ``bias_c = -mean_c / std_0`` and the graph multiplies channel
  ``c`` by ``std_0 / std_c`` (nothing when the stds are equal), which together is the model's
  ``(p / 255 - mean) / std``.
* Outputs ``score`` (shape ``(1,)``) and the model's extras, float32.
* Weights and arithmetic in float16 by default (``precision="fp32"`` keeps float32). A model
  without learned weights (the ``rules`` port) is always converted in float32: there is nothing
  to halve, and its sums over every pixel do not fit float16's range.
* Metadata: author, licence, version, short description (what the score means), and
  ``framescore.*`` user-defined keys (model, paper, input size, view, scale/bias, precision).

Conversion works on any OS. :func:`check_spec` re-reads the written package and checks its
interface, metadata and size; :func:`predict_parity` runs it, which needs macOS.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch

from framescore.export.onnx import _first_line, quiet
from framescore.export.wrap import Exportable, ExportError, Normalized, coreml_image_scale, describe
from framescore.models.spec import Scorer

TARGET = "iOS16"  # ML program with float16 image pipelines: iOS 16 / macOS 13 and later


def _coremltools():
    """Import coremltools without its import-time chatter (untested-torch and missing
    native-runtime warnings on Linux)."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        with quiet():
            import coremltools as ct
    except ImportError:
        from framescore.errors import UsageError

        raise UsageError("coremltools is not installed (pip install 'framescore[export]')") \
            from None
    return ct


def precision_for(exp: Exportable, requested: str = "fp16") -> str:
    """The precision a model is converted in: float32 for a model without weights."""
    return "fp32" if exp.parameters == 0 else requested


def export_coreml(exp: Exportable, path: str | Path, precision: str = "fp16") -> dict[str, str]:
    """Write ``exp`` as an ``.mlpackage`` at ``path``; returns its user-defined metadata."""
    ct = _coremltools()
    path = Path(path)
    precision = precision_for(exp, precision)
    spec = exp.spec
    scale, bias, factor = coreml_image_scale(spec)
    wrapper = Normalized(exp, "coreml").eval()
    x = torch.rand(1, 3, spec.height, spec.width, generator=torch.Generator().manual_seed(0))
    try:
        with quiet(), torch.no_grad():
            traced = torch.jit.trace(wrapper, x, check_trace=False)
            model = ct.convert(
                traced,
                inputs=[ct.ImageType(name="image", shape=(1, 3, spec.height, spec.width),
                                     scale=scale, bias=list(bias),
                                     color_layout=ct.colorlayout.RGB)],
                outputs=[ct.TensorType(name=name, dtype=np.float32) for name in exp.outputs],
                convert_to="mlprogram",
                minimum_deployment_target=getattr(ct.target, TARGET),
                compute_precision=(ct.precision.FLOAT16 if precision == "fp16"
                                   else ct.precision.FLOAT32),
                skip_model_load=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"Core ML conversion of {exp.name!r} failed ({_first_line(exc)})") \
            from None
    meta = describe(exp)
    meta.update({"framescore.precision": precision,
                 "framescore.input": "RGB image; scale/bias below and the per-channel factor "
                                     "inside the graph give (p / 255 - mean) / std",
                 "framescore.coreml_scale": f"{scale:.8g}",
                 "framescore.coreml_bias": ",".join(f"{b:.8g}" for b in bias),
                 "framescore.graph_factor": ",".join(f"{f:.8g}" for f in factor)})
    model.author = "framescore"
    model.license = meta["framescore.license"]
    model.version = meta["framescore.version"] + (
        f"+{exp.weights_sha256[:12]}" if exp.weights_sha256 else "")
    model.short_description = f"{exp.info.paper}: {meta['framescore.score']}"
    model.input_description["image"] = (f"RGB photo or camera frame, {spec.height}x{spec.width} "
                                        f"({spec.view} of the whole image)")
    model.output_description["score"] = "aesthetic score; higher is better"
    for name in exp.outputs[1:]:
        model.output_description[name] = f"{name} (model extra output)"
    for key, value in meta.items():
        model.user_defined_metadata[key] = value
    try:
        model.save(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"cannot save {path.name} ({_first_line(exc)})") from None
    return meta


def package_size(path: str | Path) -> int:
    """Bytes of all files in a package folder."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _weights_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("weight*.bin"))


def _image_preprocessing(spec) -> tuple[float, list[float]]:
    """The scale and bias the program applies to its image input (1 and 0 where it has no
    such op): coremltools writes them as the first constants, ``image__scaled__`` and
    ``image__biased__``."""
    scale, bias = 1.0, [0.0, 0.0, 0.0]
    main = spec.mlProgram.functions["main"]
    block = next(iter(main.block_specializations.values()))
    for op in list(block.operations)[:8]:
        if op.type != "const" or "val" not in op.attributes:
            continue
        name = op.outputs[0].name
        values = list(op.attributes["val"].immediateValue.tensor.floats.values)
        if name.startswith("image__scaled__") and values:
            scale = float(values[0])
        elif name.startswith("image__biased__") and values:
            bias = [float(v) for v in values]
            if len(bias) == 1:
                bias = bias * 3
    return scale, bias


def check_spec(path: str | Path, exp: Exportable, precision: str = "fp16") -> dict:
    """Re-read a written package and check it: an ML program; one RGB image input of the
    model's size whose scale and bias are those of :func:`coreml_image_scale`; the model's
    outputs, named and shaped, as float32; the metadata; and a
    weight file whose size fits the parameter count at the precision (2 or 4 bytes each).

    Returns the figures; a mismatch is an :class:`ExportError`.
    """
    ct = _coremltools()
    path = Path(path)
    precision = precision_for(exp, precision)
    with quiet():
        spec = ct.utils.load_spec(str(path))
    problems: list[str] = []
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"not an ML program ({spec.WhichOneof('Type')})")
    desc = spec.description
    inputs = list(desc.input)
    if len(inputs) != 1 or inputs[0].name != "image" \
            or inputs[0].type.WhichOneof("Type") != "imageType":
        problems.append("the input is not one image called 'image'")
    else:
        image = inputs[0].type.imageType
        if (image.height, image.width) != (exp.spec.height, exp.spec.width):
            problems.append(f"input is {image.height}x{image.width}, expected "
                            f"{exp.spec.height}x{exp.spec.width}")
        if image.colorSpace != ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB:
            problems.append("input colour space is not RGB")
    outputs = {o.name: o for o in desc.output}
    shapes: dict[str, list[int]] = {}
    if list(outputs) != list(exp.outputs):
        problems.append(f"outputs {list(outputs)}, expected {list(exp.outputs)}")
    for name, expected in exp.shapes.items():
        if name not in outputs:
            continue
        array = outputs[name].type.multiArrayType
        shapes[name] = list(array.shape)
        want = [1, *expected] if expected else [1]
        if array.shape and list(array.shape) != want:
            problems.append(f"output {name!r} has shape {list(array.shape)}, expected {want}")
        if array.dataType != ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32:
            problems.append(f"output {name!r} is not float32")
    scale, bias = _image_preprocessing(spec)
    want_scale, want_bias, _ = coreml_image_scale(exp.spec)
    if not (np.isclose(scale, want_scale, rtol=1e-6) and
            np.allclose(bias, want_bias, rtol=1e-6, atol=1e-6)):
        problems.append(f"image preprocessing is scale {scale:g} bias {list(bias)}, expected "
                        f"{want_scale:g} {list(want_bias)}")
    meta = dict(desc.metadata.userDefined)
    for key, value in describe(exp).items():
        if meta.get(key) != value:
            problems.append(f"metadata {key} is {meta.get(key)!r}, expected {value!r}")
    if meta.get("framescore.precision") != precision:
        problems.append(f"precision {meta.get('framescore.precision')!r}, expected {precision}")
    if not desc.metadata.shortDescription or not desc.metadata.license:
        problems.append("description or licence missing")
    weights = _weights_bytes(path)
    per = 2 if precision == "fp16" else 4
    expected_bytes = exp.parameters * per
    if exp.parameters and not (0.9 * expected_bytes <= weights <= 1.25 * expected_bytes + 65536):
        problems.append(f"weight file holds {weights} bytes, expected about {expected_bytes} "
                        f"({exp.parameters} parameters at {precision})")
    if problems:
        raise ExportError(f"{path.name}: " + "; ".join(problems))
    return {"input": [exp.spec.height, exp.spec.width], "scale": scale, "bias": bias,
            "outputs": shapes,
            "precision": precision, "weights_bytes": weights, "bytes": package_size(path),
            "parameters": exp.parameters, "metadata_keys": len(meta)}


def can_predict() -> tuple[bool, str]:
    """Whether Core ML can run here, and why not."""
    if sys.platform != "darwin":
        return False, f"Core ML runs on macOS only (this is {sys.platform})"
    return True, ""


def predict_parity(path: str | Path, reference: Scorer, images: np.ndarray,
                   precision: str = "fp16", reference_label: str = "PyTorch"):
    """Run the package on ``images`` (macOS only) and compare with ``reference``."""
    from PIL import Image

    from framescore.export.verify import TOLERANCE, compare

    ok, why = can_predict()
    if not ok:
        raise ExportError(why)
    ct = _coremltools()
    model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
    rows: list[dict[str, np.ndarray]] = []
    for image in images:
        rows.append(model.predict({"image": Image.fromarray(image)}))
    got = {k: np.concatenate([np.asarray(r[k]).reshape(1, -1) for r in rows]) for k in rows[0]}
    got["score"] = got["score"].reshape(-1)
    return compare(reference.score_batch(images), got, f"coreml {precision}",
                   TOLERANCE.get(precision), reference_label)
