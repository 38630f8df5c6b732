"""Core ML export: the default encoder and one model per paper family converted to an
``.mlpackage`` whose written spec is checked (input, outputs, shapes, metadata, size); the
image scale/bias folding; running the package where Core ML exists (macOS only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from framescore.cli import main
from framescore.export import coreml
from framescore.export.verify import TOLERANCE, photo_batch
from framescore.export.wrap import (
    Exportable,
    ExportError,
    Normalized,
    coreml_image_scale,
    describe,
    prepare,
)
from framescore.models.registry import REGISTRY, default_model, family_of
from framescore.models.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, ModelInfo

ct = coreml._coremltools()


def _cases() -> list:
    """The default model, the mobile encoder, and the smallest model of each paper family."""
    best: dict[str, ModelInfo] = {}
    for info in REGISTRY.values():
        fam = family_of(info)
        if fam not in best or info.parameters() < best[fam].parameters():
            best[fam] = info
    names = {default_model()}
    names.update(m.name for fam, m in best.items() if fam != "rules")
    # VGG16-sized models (> 100 M parameters: 20-30 s each on 2 shared cores) are marked slow
    return [pytest.param(n, marks=pytest.mark.slow) if REGISTRY[n].parameters() > 100e6 else n
            for n in sorted(names)]


def _prepare(name: str) -> Exportable:
    info = REGISTRY[name]
    module = None
    if info.build is not None:
        torch.manual_seed(0)
        module = info.build()
    return prepare(name, module=module)


@pytest.mark.parametrize("name", _cases())
def test_convert_and_check_spec(name: str, tmp_path: Path):
    exp = _prepare(name)
    path = tmp_path / f"{name}.mlpackage"
    coreml.export_coreml(exp, path)
    precision = coreml.precision_for(exp)
    checks = coreml.check_spec(path, exp)
    assert checks["precision"] == precision == ("fp32" if exp.parameters == 0 else "fp16")

    # read the written spec independently of check_spec
    spec = ct.utils.load_spec(str(path))
    assert spec.WhichOneof("Type") == "mlProgram"
    (image,) = spec.description.input
    assert image.name == "image" and image.type.WhichOneof("Type") == "imageType"
    assert (image.type.imageType.height, image.type.imageType.width) == exp.spec.size
    assert [o.name for o in spec.description.output] == list(exp.outputs)
    score = spec.description.output[0].type.multiArrayType
    assert list(score.shape) == [1]
    for out in spec.description.output[1:]:
        assert list(out.type.multiArrayType.shape) == [1, *exp.shapes[out.name]]
    meta = spec.description.metadata
    user = dict(meta.userDefined)
    assert user["framescore.model"] == name
    assert user["framescore.precision"] == precision
    assert (int(user["framescore.height"]), int(user["framescore.width"])) == exp.spec.size
    assert meta.shortDescription and meta.license and meta.author == "framescore"
    assert meta.versionString.startswith(user["framescore.version"])
    assert "higher is better" in user["framescore.score"]

    scale, bias, _ = coreml_image_scale(exp.spec)
    assert checks["scale"] == pytest.approx(scale, rel=1e-6)
    assert checks["bias"] == pytest.approx(list(bias), rel=1e-6, abs=1e-6)
    weights = sum(p.stat().st_size for p in path.rglob("weight*.bin"))
    per = 2 if precision == "fp16" else 4
    assert weights == checks["weights_bytes"]
    if exp.parameters:
        assert 0.9 <= weights / (exp.parameters * per) <= 1.25


def test_fp32_precision_doubles_the_weights(tmp_path: Path):
    name = min((m for m in REGISTRY.values() if m.build is not None),
               key=lambda m: m.parameters()).name
    exp = _prepare(name)
    half, full = tmp_path / "half.mlpackage", tmp_path / "full.mlpackage"
    coreml.export_coreml(exp, half, "fp16")
    coreml.export_coreml(exp, full, "fp32")
    a = coreml.check_spec(half, exp, "fp16")["weights_bytes"]
    b = coreml.check_spec(full, exp, "fp32")["weights_bytes"]
    assert 1.8 < b / a < 2.2


def test_check_spec_catches_a_wrong_package(tmp_path: Path):
    rules = _prepare("rules")
    path = tmp_path / "rules.mlpackage"
    coreml.export_coreml(rules, path)
    other = prepare("rules", size=(128, 128))  # same model, other input size
    with pytest.raises(ExportError, match="input is 256x256, expected 128x128"):
        coreml.check_spec(path, other)


class _Channels(torch.nn.Module):
    """Hands its normalized input back, to look at what the graph computes."""

    def forward(self, x):
        return {"score": x.mean(dim=(1, 2, 3)), "pixels": x.flatten(1)}


@pytest.mark.parametrize("mean, std", [
    (IMAGENET_MEAN, IMAGENET_STD),                             # per-channel std: a factor left
    ((123.15 / 255, 115.9 / 255, 103.06 / 255), (1 / 255,) * 3),  # AROD: all in scale/bias
])
def test_image_scale_bias_and_factor_fold_the_normalization(mean, std):
    spec = InputSpec(8, 8, mean=mean, std=std)
    info = ModelInfo(name="probe", paper="-", summary="-", spec=spec, build=_Channels)
    exp = Exportable(info=info, module=_Channels(), spec=spec, outputs=("score", "pixels"),
                     reference=None, shapes={"score": (), "pixels": (192,)})
    pixels = torch.randint(0, 256, (2, 3, 8, 8)).float()
    want = (pixels / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    onnx_side = Normalized(exp, "pixels")(pixels)[1]
    scale, bias, factor = coreml_image_scale(spec)
    core_ml_input = scale * pixels + torch.tensor(bias).view(1, 3, 1, 1)  # what ImageType does
    core_ml_side = Normalized(exp, "coreml")(core_ml_input)[1]
    torch.testing.assert_close(onnx_side, want.flatten(1), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(core_ml_side, want.flatten(1), rtol=1e-5, atol=1e-4)
    assert (len(set(std)) == 1) == all(f == 1.0 for f in factor)


def test_cli_coreml_report(tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main(["export", "rules", "--format", "coreml", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (art,) = report["files"]
    assert art["file"] == "rules.mlpackage" and art["format"] == "coreml"
    assert art["spec"]["outputs"]["score"] == [1]
    assert sorted(p.name for p in out.iterdir()) == ["rules.export.json", "rules.mlpackage"]
    if sys.platform != "darwin":
        assert art["parity"] is None and "macOS" in art["note"]
    describe_keys = set(describe(_prepare("rules")))
    spec = ct.utils.load_spec(str(out / "rules.mlpackage"))
    assert describe_keys <= set(spec.description.metadata.userDefined)


@pytest.mark.skipif(not coreml.can_predict()[0], reason=coreml.can_predict()[1])
@pytest.mark.parametrize("name", _cases())
def test_coreml_predictions_match_pytorch(name: str, tmp_path: Path):
    exp = _prepare(name)
    path = tmp_path / f"{name}.mlpackage"
    coreml.export_coreml(exp, path)
    precision = coreml.precision_for(exp)
    images = photo_batch(exp.spec, ["astronaut", "coffee"])
    parity = coreml.predict_parity(path, exp.reference, images, precision, exp.reference_label)
    assert parity.rel <= TOLERANCE[precision] and parity.passed, parity.problem()


def test_predict_refused_off_macos(tmp_path: Path):
    if coreml.can_predict()[0]:
        pytest.skip("Core ML can run here")
    exp = _prepare("rules")
    with pytest.raises(ExportError, match="macOS only"):
        coreml.predict_parity(tmp_path / "x.mlpackage", exp.reference,
                              np.zeros((1, 256, 256, 3), np.uint8))
