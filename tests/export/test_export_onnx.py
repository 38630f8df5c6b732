"""ONNX export: every registered model family, checked with onnxruntime against the model it
came from on the shipped photographs; the exported file used by framescore itself; bad input.

Networks get seeded random weights (no trained weights are needed to test the conversion);
one, the smallest per family, stands for each family to keep the run short.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from framescore.cli import main
from framescore.export import job
from framescore.export.onnx import read_metadata
from framescore.export.verify import TOLERANCE, compare, flipped_pairs, photo_batch, verify_onnx
from framescore.export.wrap import ExportError, prepare
from framescore.models.registry import REGISTRY, default_model, family_of
from framescore.models.spec import ModelInfo, Scorer
from framescore.scorers import load_scorer
from framescore.scorers.onnx import OnnxScorer

PHOTOS = ("astronaut", "coffee")  # two real photos: batch-2 parity keeps the run short


def _smallest_per_family() -> list[str]:
    best: dict[str, ModelInfo] = {}
    for info in REGISTRY.values():
        fam = family_of(info)
        if fam not in best or info.parameters() < best[fam].parameters():
            best[fam] = info
    return sorted(m.name for m in best.values())


def _cases() -> list:
    """One model per family; VGG16-sized ones (> 100 M parameters, 20-40 s each on 2 shared
    cores) are marked slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if REGISTRY[n].parameters() > 100e6 else n
            for n in _smallest_per_family()]


def _random_module(name: str):
    info = REGISTRY[name]
    if info.build is None:
        return None
    torch.manual_seed(0)
    return info.build().eval()


def _smallest_network() -> str:
    nets = [m for m in REGISTRY.values() if m.build is not None]
    return min(nets, key=lambda m: m.parameters()).name


@pytest.fixture(scope="module")
def small_net(tmp_path_factory) -> tuple[str, Path]:
    """The smallest registered network and a checkpoint for it: its ImageNet backbone where it
    can start from one (realistic activations; a random EfficientNet's scores are ~1e-8, below
    what float16 can hold), else seeded random weights."""
    import inspect

    name = _smallest_network()
    info = REGISTRY[name]
    torch.manual_seed(0)
    if "pretrained" in inspect.signature(info.build).parameters:
        module = info.build(pretrained=True)
    else:
        module = info.build()
    path = tmp_path_factory.mktemp("weights") / f"{name}.pt"
    torch.save(module.state_dict(), path)
    return name, path


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory) -> tuple[str, Path]:
    """The default model exported (with its bundled weights, or none needed) to ONNX."""
    name = default_model()
    out = tmp_path_factory.mktemp("default")
    job.run(job.Request(model=name, out=out, formats=("onnx",), photos=PHOTOS))
    return name, out / f"{name}.onnx"


def test_every_model_has_a_known_family():
    from framescore.models.registry import FAMILIES

    # the recorded family is the module that builds the net, also through functools.partial
    # (kong-*, rapid-rdcnn-*)
    assert {family_of(m) for m in REGISTRY.values()} <= set(FAMILIES)
    for m in REGISTRY.values():
        fn = m.build
        while hasattr(fn, "func"):
            fn = fn.func
        if fn is not None:
            assert fn.__module__ == f"framescore.models.{family_of(m)}", m.name
    assert {family_of(REGISTRY[n]) for n in _smallest_per_family()} >= {"rules", "arod"}


@pytest.mark.parametrize("name", _cases())
def test_family_exports_with_parity(name: str, tmp_path: Path):
    exp = prepare(name, module=_random_module(name))
    path = tmp_path / f"{name}.onnx"
    from framescore.export.onnx import OPSET, export_onnx

    export_onnx(exp, path)
    images = photo_batch(exp.spec, list(PHOTOS))
    ref = exp.reference.score_batch(images)
    assert np.ptp(ref["score"]) > 0, "degenerate reference: parity would prove nothing"
    parity = verify_onnx(path, exp.reference, images, "fp32", exp.reference_label)
    assert parity.passed, parity.problem()
    assert parity.rel <= TOLERANCE["fp32"]
    assert parity.flipped == 0 and parity.same_order

    import onnx

    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == list(exp.outputs)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    meta = read_metadata(path)
    assert meta["framescore.model"] == name
    assert (int(meta["framescore.height"]), int(meta["framescore.width"])) == exp.spec.size
    assert meta["framescore.view"] == exp.spec.view and meta["framescore.precision"] == "fp32"

    # dynamic batch: the file ran the pair at once; one image alone gives the same
    scorer = OnnxScorer(path)
    assert isinstance(scorer, Scorer)
    assert scorer.name == name and scorer.spec == exp.spec and scorer.batch is None
    pair, alone = scorer.score_batch(images), scorer.score_batch(images[1:])
    for key in exp.outputs:
        np.testing.assert_allclose(alone[key], pair[key][1:], rtol=1e-5,
                                   atol=1e-6 * float(np.abs(pair[key]).max()))


def test_cli_fp16_int8_with_weights(small_net, tmp_path: Path, capsys):
    name, weights = small_net
    out = tmp_path / "out"
    rc = main(["export", name, "--weights", str(weights), "--format", "onnx", "--out",
               str(out), "--fp16", "--int8", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    files = {f["precision"]: f for f in report["files"]}
    assert set(files) == {"fp32", "fp16", "int8"}
    assert files["fp32"]["parity"]["rel"] <= 1e-4 and files["fp32"]["parity"]["passed"]
    assert files["fp16"]["parity"]["rel"] <= 1e-2 and files["fp16"]["parity"]["flipped"] == 0
    rho = files["int8"]["parity"]["spearman"]
    from framescore.samples import photo_paths

    assert -1.0 <= rho <= 1.0 and files["int8"]["parity"]["images"] == len(photo_paths()) * 4
    size = {p: (out / f["file"]).stat().st_size for p, f in files.items()}
    assert size["fp32"] == files["fp32"]["bytes"]
    assert 0.4 < size["fp16"] / size["fp32"] < 0.6     # weights halve
    assert size["int8"] / size["fp32"] < 0.4            # weights quarter (plus scales)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.onnx", f"{name}.fp16.onnx", f"{name}.int8.onnx", f"{name}.export.json"])
    sha = read_metadata(out / f"{name}.onnx")["framescore.weights"]
    assert sha.startswith(f"{weights.name} sha256:")
    for precision in ("fp16", "int8"):
        scorer = OnnxScorer(out / files[precision]["file"])
        assert scorer.precision == precision and scorer.input_dtype == np.float32


def test_fixed_batch_pads_and_resizes_like_torch(small_net, tmp_path: Path):
    name, weights = small_net
    job.run(job.Request(model=name, out=tmp_path, weights=str(weights), formats=("onnx",),
                        batch=3, photos=PHOTOS))
    scorer = OnnxScorer(tmp_path / f"{name}.onnx")
    assert scorer.batch == 3
    torch_scorer = load_scorer(name, weights, device="cpu")
    # five photos not at the input size: the runtime warps them as TorchScorer does
    from framescore.samples import photo

    images = np.stack([np.asarray(Image.fromarray(photo(n)).resize((200, 150)))
                       for n in ("astronaut", "coffee", "chelsea", "rocket", "retina")])
    parity = compare(torch_scorer.score_batch(images), scorer.score_batch(images), "fixed", 1e-4)
    assert parity.passed, parity.problem()


def test_onnx_default_model_same_keyframes(default_onnx, tmp_path: Path):
    from framescore.apps.keyframes import Settings, analyze
    from framescore.io.writer import write_clip
    from framescore.samples import photo

    name, path = default_onnx
    frames = []
    for photo_name in ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left"):
        base = Image.fromarray(photo(photo_name)).convert("RGB").resize((192, 144))
        for radius in (3.0, 1.5, 0.0, 0.0, 1.0, 2.5):  # focus pulls: a sharp moment per shot
            frames.append(np.asarray(base.filter(ImageFilter.GaussianBlur(radius))))
    clip = write_clip(tmp_path / "clip.mp4", frames, fps=6)
    settings = Settings(top=4, min_gap=0.5, batch_size=8)
    ref = analyze(clip, settings, scorer=load_scorer(name, device="cpu"))
    got = analyze(clip, settings, scorer=OnnxScorer(path))
    assert len(ref.keyframes) >= 2
    assert [k.index for k in got.keyframes] == [k.index for k in ref.keyframes]
    np.testing.assert_allclose(got.scored.scores, ref.scored.scores,
                               rtol=0, atol=1e-4 * float(np.abs(ref.scored.scores).max()))

    # and through the command line, the file given as --model
    rc = main(["keyframes", str(clip), "--model", str(path), "--out", str(tmp_path / "kf"),
               "--top", "4", "--min-gap", "0.5", "--quiet"])
    assert rc == 0
    written = json.loads((tmp_path / "kf" / "keyframes.json").read_text())
    assert [k["index"] for k in written["keyframes"]] == [k.index for k in ref.keyframes]
    assert written["model"]["name"] == name


def _photo_folder(root: Path) -> Path:
    from framescore.samples import photo_paths

    root.mkdir()
    for n, src in photo_paths().items():
        Image.open(src).convert("RGB").save(root / f"{n}.jpg", quality=95)
    return root


def test_onnx_model_in_bestshot_and_rank(default_onnx, tmp_path: Path, capsys):
    name, path = default_onnx
    folder = _photo_folder(tmp_path / "photos")
    photos = sorted(str(p) for p in folder.iterdir())
    best, ranked = [], []
    for i, model in enumerate((name, str(path))):
        assert main(["bestshot", *photos, "--model", model, "--device", "cpu", "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["model"]["name"] == name
        best.append(summary["ranking"])
        assert main(["rank", str(folder), "--model", model, "--device", "cpu", "--out",
                     str(tmp_path / f"rank{i}"), "--no-cache", "--json"]) == 0
        ranked.append(json.loads(capsys.readouterr().out)["ranking"])
    for ref, got in (best, ranked):
        assert len(ref) == len(got) == len(photos)
        assert [r["file"] for r in got] == [r["file"] for r in ref]
        scale = max(abs(r["score"]) for r in ref)
        assert all(abs(g["score"] - r["score"]) <= 1e-4 * scale
                   for r, g in zip(ref, got, strict=True))


def test_onnx_model_in_crop(default_onnx, tmp_path: Path, capsys):
    crop = pytest.importorskip("framescore.apps.crop")
    from framescore.samples import photo_paths

    name, path = default_onnx
    src = photo_paths()["chelsea"]
    ref = crop.best_crop(src, "1:1", load_scorer(name, device="cpu"), candidates=24)
    got = crop.best_crop(src, "1:1", OnnxScorer(path), candidates=24)
    assert got.box == ref.box
    assert got.score == pytest.approx(ref.score, rel=1e-4)
    # and through the command line
    assert main(["crop", str(src), "--aspect", "1:1", "--candidates", "24", "--model",
                 str(path), "--out", str(tmp_path / "crop.jpg"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == name
    assert summary["score"] == pytest.approx(ref.score, rel=1e-4)


# ---- verification logic -----------------------------------------------------------------

def test_flipped_pairs_ignores_ties_within_resolution():
    ref = np.array([1.0, 2.0, 2.00001, 5.0])
    assert flipped_pairs(ref, np.array([1.0, 2.00001, 2.0, 5.0]), 1e-3) == 0
    assert flipped_pairs(ref, np.array([2.5, 2.0, 2.00001, 5.0]), 1e-3) == 2
    parity = compare({"score": ref}, {"score": ref * (1 + 2e-4)}, "x", 1e-4)
    assert not parity.passed and "differs" in parity.problem()


# ---- bad input ----------------------------------------------------------------------------

def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("framescore: error:"), err
    return err[0]


@pytest.mark.parametrize("argv, words", [
    (["no-such-model"], "unknown model"),
    (["arod-resnet50", "--format", "onnx"], "needs weights"),
    (["arod-resnet50", "--weights", "/nonexistent/w.pt"], "not found"),
    (["rules", "--format", "coreml", "--int8"], "--int8"),
    (["rules", "--format", "coreml", "--fp16"], "--fp16"),
    (["rules", "--format", "coreml", "--batch", "4"], "--batch"),
    (["rules", "--format", "onnx", "--fp16"], "no learned weights"),
    (["rules", "--size", "big"], "--size"),
])
def test_bad_input_one_line(argv, words, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main(["export", *argv, "--out", str(out)]) == 2
    assert words in _one_line_error(capsys)
    assert not out.exists() or not any(out.iterdir())


def test_other_sizes(tmp_path: Path, capsys):
    name = next((m.name for m in REGISTRY.values() if family_of(m) == "kong"), None)
    if name is None:
        pytest.skip("no kong model registered")
    weights = tmp_path / "w.pt"
    torch.save(_random_module(name).state_dict(), weights)
    # AlexNet's strided convolutions and pools shrink a 40 px input to nothing before fc6
    assert main(["export", name, "-w", str(weights), "--size", "40", "--format", "onnx",
                 "--out", str(tmp_path / "o")]) == 2
    assert "cannot take a 40x40 input" in _one_line_error(capsys)
    # at 64 px its adaptive pool has to upsample 1x1 to 6x6, which the TorchScript exporter
    # cannot write: the torch.export-based exporter takes over, and the file still matches
    assert main(["export", name, "-w", str(weights), "--size", "64", "--format", "onnx",
                 "--out", str(tmp_path / "o"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"]["height"] == report["input"]["width"] == 64
    (art,) = [f for f in report["files"] if f["format"] == "onnx"]
    assert art["parity"]["passed"] and "(dynamo)" in art["note"]
    assert OnnxScorer(tmp_path / "o" / f"{name}.onnx").spec.size == (64, 64)


def test_existing_output_needs_force(tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "rules.onnx"
    mine.write_bytes(b"my own file")
    assert main(["export", "rules", "--format", "onnx", "--out", str(out)]) == 2
    assert "exists already" in _one_line_error(capsys)
    assert mine.read_bytes() == b"my own file"
    assert main(["export", "rules", "--format", "onnx", "--out", str(out), "--force",
                 "--quiet"]) == 0
    assert OnnxScorer(mine).name == "rules"


class _Noisy(torch.nn.Module):
    """A network that PyTorch and onnxruntime cannot agree on: it adds fresh noise."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        score = self.conv(x).mean(dim=(1, 2, 3))
        return {"score": score + torch.randn_like(score)}


class _OrNet(torch.nn.Module):
    """Exports to ONNX, but Core ML's converter has no boolean 'or'."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        mask = (y > 0.5) | (y < -0.5)
        return {"score": (y * mask.float()).mean(dim=(1, 2, 3))}


@pytest.mark.parametrize("module, fmt, words", [
    (_Noisy, "onnx", "differs from PyTorch"),
    (_OrNet, "all", "Core ML conversion"),
])
def test_failed_export_leaves_nothing(module, fmt, words, monkeypatch, tmp_path: Path, capsys):
    from framescore.models.spec import InputSpec

    weights = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save(module().state_dict(), weights)
    info = ModelInfo(name="test-net", paper="test", summary="a test network",
                     spec=InputSpec(32, 32), build=module)
    monkeypatch.setitem(REGISTRY, "test-net", info)
    out = tmp_path / "out"
    assert main(["export", "test-net", "-w", str(weights), "--format", fmt, "--out",
                 str(out), "--quiet"]) == 2
    assert words in _one_line_error(capsys)
    assert list(out.iterdir()) == []  # not even the staging folder


def test_not_a_framescore_onnx(tmp_path: Path):
    import onnx
    from onnx import TensorProto, helper

    from framescore.errors import WeightsError

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    with pytest.raises(WeightsError, match="not a framescore export"):
        load_scorer(str(foreign))
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(WeightsError, match="not a usable ONNX model"):
        OnnxScorer(tmp_path / "junk.onnx")
    with pytest.raises(WeightsError, match="not found"):
        OnnxScorer(tmp_path / "missing.onnx")


def test_export_error_is_framescore_error():
    from framescore.errors import FramescoreError

    assert issubclass(ExportError, FramescoreError)
