"""The scorer layer: one load_scorer, the layer order of the imports, what start-up imports,
the bundled ONNX export of the default model and the numpy rules against their torch port."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framescore.errors import UsageError, WeightsError
from framescore.models import catalogue, registry
from framescore.models.spec import MODELS_DIR
from framescore.samples import photo
from framescore.scorers import load_scorer

ROOT = Path(__file__).resolve().parents[2]
# source folder → package it is installed as (see pyproject's package-dir)
PACKAGES = {ROOT / "framescore": "framescore", ROOT / "models": "framescore.models",
            ROOT / "export": "framescore.export"}


# --------------------------------------------------------------------------- import layers

def _module_name(path: Path) -> str:
    for folder, package in PACKAGES.items():
        if path.is_relative_to(folder):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join([package, *parts])
    raise AssertionError(path)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[str, str]]:
    """(imported module, enclosing function or "<module>") of every import that runs, at
    module level or inside functions; ``if TYPE_CHECKING:`` blocks never run."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for sub in child.orelse:
                    visit(sub, where)
                continue
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) \
                else where
            if isinstance(child, ast.Import):
                found.extend((a.name, where) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.rsplit(".", child.level - 1)[0] if child.level > 1 \
                        else package
                    base = f"{anchor}.{base}" if base else anchor
                found.append((base, where))
                found.extend((f"{base}.{a.name}", where) for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def _sources() -> list[Path]:
    return sorted(p for folder in PACKAGES for p in folder.rglob("*.py"))


def _graph() -> dict[str, list[tuple[str, str]]]:
    return {_module_name(p): _imports(p) for p in _sources()}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_zoo_imports_no_layer_above_it():
    graph = _graph()
    above = ("framescore.scorers", "framescore.scoring", "framescore.export",
             "framescore.apps", "framescore.cli", "framescore.train", "framescore.api")
    bad = [(m, i, where) for m, imports in graph.items() if _within(m, "framescore.models")
           for i, where in imports if any(_within(i, a) for a in above)]
    assert not bad, bad


def test_the_scorer_layer_imports_no_layer_above_it():
    graph = _graph()
    above = ("framescore.scoring", "framescore.export", "framescore.apps", "framescore.cli",
             "framescore.train", "framescore.api")
    bad = [(m, i) for m, imports in graph.items()
           if _within(m, "framescore.scorers") or m == "framescore.preprocess"
           for i, _ in imports if any(_within(i, a) for a in above)]
    assert not bad, bad
    # preprocess is below the zoo and the scorers: it imports neither
    assert not [i for i, _ in graph["framescore.preprocess"]
                if _within(i, "framescore.models") or _within(i, "framescore.scorers")]


def test_no_import_cycle_between_the_layers():
    """Between the components (framescore.models, .scorers, .scoring, .preprocess, .export...),
    counting imports inside functions, there is no cycle."""
    graph = _graph()

    def component(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if parts[0] == "framescore" else parts[0]

    edges: dict[str, set[str]] = {}
    for m, imports in graph.items():
        for i, _ in imports:
            if not i.startswith("framescore."):
                continue
            a, b = component(m), component(i)
            if a != b and b in {component(x) for x in graph}:
                edges.setdefault(a, set()).add(b)
    layers = ("framescore.models", "framescore.scorers", "framescore.scoring",
              "framescore.preprocess", "framescore.export")

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for nxt in edges.get(node, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = [(a, b) for a in layers for b in edges.get(a, ()) if reaches(b, a)]
    assert not cycles, cycles


def test_the_walk_sees_imports_inside_functions():
    found = dict(_imports(ROOT / "framescore" / "scorers" / "__init__.py"))
    assert found["framescore.scorers.torch"] == "load_scorer"
    assert "torch" not in found   # only under TYPE_CHECKING there


# --------------------------------------------------------------------------- catalogue

def test_the_catalogue_matches_the_family_modules():
    on_disk = json.loads(catalogue.CATALOGUE_FILE.read_text(encoding="utf-8"))
    assert on_disk == catalogue.records(), (
        "models/catalogue.json is stale: run python -c 'from framescore.models import "
        "catalogue; catalogue.write()'")
    for name, entry in registry.REGISTRY.items():
        info = registry.get(name)
        assert (entry.spec, entry.parameters(), entry.family) == \
            (info.spec, info.parameters(), info.family)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_listing_and_checking_names_import_no_network_code():
    done = _run(
        "import sys\n"
        "from framescore.models.registry import REGISTRY, default_model, entry\n"
        "from framescore.errors import UsageError\n"
        "rows = [(m.name, m.paper, m.parameters(), m.weights_available) for m in "
        "REGISTRY.values()]\n"
        "assert default_model() == 'framescore-mobile' and len(rows) > 10\n"
        "try:\n    entry('nope')\nexcept UsageError:\n    pass\n"
        "heavy = [m for m in ('torch', 'torchvision', 'framescore.models.rapid', "
        "'framescore.models.mobile') if m in sys.modules]\n"
        "assert not heavy, heavy\n")
    assert done.returncode == 0, done.stderr


def test_rules_keyframes_run_without_torch(tmp_path, demo_clip):
    out = tmp_path / "kf"
    done = _run(
        "import sys\n"
        "from framescore.cli import main\n"
        f"rc = main([{str(demo_clip.path)!r}, '--model', 'rules', '--out', {str(out)!r}, "
        "'--quiet'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    assert done.returncode == 0, done.stderr
    assert (out / "keyframes.json").is_file()


def test_the_default_model_on_the_cpu_needs_no_torch():
    done = _run(
        "import sys\n"
        "from framescore.scorers import load_scorer\n"
        "s = load_scorer(None, device='cpu')\n"
        "assert s.runtime == 'onnxruntime', s\n"
        "assert 'torch' not in sys.modules\n"
        "s = load_scorer(None, device='cpu', runtime='torch')\n"
        "assert s.runtime == 'torch' and 'torch' in sys.modules\n"
        "assert 'torchvision' not in sys.modules, 'torchvision is for the models built on it'\n")
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- rules

def test_numpy_rules_score_as_their_torch_port():
    torch = pytest.importorskip("torch")
    from framescore.preprocess import view
    from framescore.scorers.rules import RulesScorer
    from framescore.scorers.rules_torch import RulesNet

    scorer = RulesScorer()
    images = np.stack([view(photo(n), scorer.spec)
                       for n in ("astronaut", "coffee", "chelsea", "rocket")])
    images = np.concatenate([images, np.zeros_like(images[:1])])   # a flat frame too
    got = scorer.score_batch(images)
    with torch.inference_mode():
        ref = RulesNet()(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
    assert set(got) == set(ref)
    for key, value in ref.items():
        np.testing.assert_allclose(got[key], value.numpy(), atol=1e-5, err_msg=key)
    assert scorer.runtime == "numpy" and scorer.source is None


# --------------------------------------------------------------------------- load_scorer

def test_load_scorer_records_runtime_and_source(tmp_path):
    info = registry.get("framescore-mobile")
    cpu = load_scorer("framescore-mobile", device="cpu")
    assert (cpu.runtime, cpu.source, cpu.name) == ("onnxruntime", str(info.onnx_path),
                                                    "framescore-mobile")
    torch_cpu = load_scorer("framescore-mobile", device="cpu", runtime="torch")
    assert (torch_cpu.runtime, torch_cpu.source) == ("torch", str(info.bundled_path))
    given = load_scorer("framescore-mobile", info.bundled_path, device="cpu")
    assert given.runtime == "torch"      # given weights are not the bundled export's
    copy = tmp_path / "mine.onnx"
    copy.write_bytes(info.onnx_path.read_bytes())
    file = load_scorer(str(copy), device="cpu")
    assert (file.runtime, file.source, file.name) == ("onnxruntime", str(copy),
                                                       "framescore-mobile")
    with pytest.raises(UsageError, match="torch"):
        load_scorer(str(copy), runtime="torch")
    with pytest.raises(UsageError, match="no ONNX export"):
        load_scorer("framescore-mobile", info.bundled_path, device="cpu",
                    runtime="onnxruntime")
    with pytest.raises(UsageError, match="unknown device"):
        load_scorer("rules", device="tpu")
    with pytest.raises(UsageError, match="unknown model"):
        load_scorer("nope")


def test_a_corrupt_bundled_export_is_refused(monkeypatch):
    entry = registry.REGISTRY["framescore-mobile"]
    monkeypatch.setitem(registry.REGISTRY, "framescore-mobile",
                        dataclasses.replace(entry, onnx_sha256="0" * 64))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_scorer("framescore-mobile", device="cpu")


def test_the_bundled_export_matches_the_weights_and_a_fresh_export(tmp_path):
    pytest.importorskip("onnx")
    from framescore.export.onnx import export_onnx, read_metadata
    from framescore.export.verify import TOLERANCE, compare, photo_batch
    from framescore.export.wrap import prepare
    from framescore.hashing import sha256_of
    from framescore.scorers.onnx import OnnxScorer

    info = registry.get("framescore-mobile")
    assert info.onnx_path.parent == MODELS_DIR
    assert sha256_of(info.onnx_path) == info.onnx_sha256
    meta = read_metadata(info.onnx_path)
    assert meta["framescore.weights"] == f"{info.weights} sha256:{info.sha256}"
    exp = prepare("framescore-mobile")
    fresh = tmp_path / "fresh.onnx"
    export_onnx(exp, fresh)
    images = photo_batch(info.spec, crops_per_photo=1)
    shipped = OnnxScorer(info.onnx_path).score_batch(images)
    tolerance = TOLERANCE["fp32"]
    against_fresh = compare(OnnxScorer(fresh).score_batch(images), shipped, "shipped",
                            tolerance, "a fresh export")
    assert against_fresh.passed, against_fresh
    against_torch = compare(exp.reference.score_batch(images), shipped, "shipped", tolerance)
    assert against_torch.passed, against_torch


def test_without_onnxruntime_the_cpu_falls_back_to_torch(monkeypatch):
    import framescore.scorers as scorers

    monkeypatch.setattr(scorers, "_onnxruntime_available", lambda: False)
    scorer = load_scorer(None, device="cpu")
    assert scorer.runtime == "torch" and scorer.name == "framescore-mobile"


def test_device_names_are_checked_without_the_hardware():
    from framescore.scorers.device import check_device, device_type

    for name in ("auto", "cpu", "cuda", "cuda:1"):
        assert check_device(name) == name
    for bad in ("tpu", "cuda:x", "gpu", ""):
        with pytest.raises(UsageError, match="unknown device"):
            check_device(bad)
    assert device_type("cuda:1") == "cuda" and device_type("cpu") == "cpu"


def test_onnx_on_cuda_runs_there_or_says_it_cannot(monkeypatch):
    """--device cuda with an ONNX model never runs on the CPU silently: with an onnxruntime
    that has no CUDA provider (the CPU package) it is one line."""
    import onnxruntime as ort

    from framescore.errors import UsageError
    from framescore.models.registry import get
    from framescore.scorers.onnx import OnnxScorer

    path = get("framescore-mobile").onnx_path
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert OnnxScorer(path, device="cuda").providers[0] == "CUDAExecutionProvider"
        return
    with pytest.raises(UsageError, match="cannot run on CUDA"):
        OnnxScorer(path, device="cuda")
    # and it falls back with a word when the provider is listed but does not start
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(UsageError, match="could not start its CUDA provider"):
        OnnxScorer(path, device="cuda")
    assert OnnxScorer(path, device="cpu").providers == ["CPUExecutionProvider"]


def test_normalization_constants_are_made_once():
    from framescore.models.spec import InputSpec
    from framescore.preprocess import _norm_constants, to_tensor

    spec = InputSpec(8, 8)
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    x = to_tensor(images, spec)
    first = _norm_constants(spec.mean, spec.std, "cpu")
    to_tensor(images, spec)
    assert _norm_constants(spec.mean, spec.std, "cpu")[0] is first[0]
    expect = (0 - np.array(spec.mean) * 255) / (np.array(spec.std) * 255)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), expect, rtol=1e-6)
