"""``framescore export --all`` and ``--run RUN``: every model with weights in one verified call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from framescore.cli import main
from framescore.models.registry import REGISTRY


def _with_weights() -> set[str]:
    return {m.name for m in REGISTRY.values()
            if not m.needs_weights or (m.weights_available and m.bundled_path is not None)}


def _bundled_network():
    return next(m for m in REGISTRY.values()
                if m.needs_weights and m.weights_available and m.bundled_path is not None)


def _run_folder(root: Path, model: str, weights: Path | None) -> Path:
    """A `framescore train` run folder as the loop leaves it: run.json + best.pt."""
    run = root / f"run-{model}"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "done", "model": model}))
    if weights is not None:
        shutil.copy(weights, run / "best.pt")
    return run


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("framescore: error:"), err
    return err[0]


def test_all_with_a_run_exports_and_verifies_every_model(tmp_path: Path, capsys):
    net = _bundled_network()
    run = _run_folder(tmp_path, net.name, net.bundled_path)
    out = tmp_path / "exported"
    assert main(["export", "--all", "--run", str(run), "--format", "onnx", "--out", str(out),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    models = {m["model"]: m for m in doc["models"]}
    assert set(models) == _with_weights()
    assert models[net.name]["source"] == f"run {run}"          # the run replaces the bundled
    for name, m in models.items():
        assert (out / f"{name}.onnx").is_file() and (out / f"{name}.export.json").is_file()
        fp32 = next(f for f in m["files"] if f["precision"] == "fp32")
        assert fp32["parity"]["rel"] <= 1e-4 and fp32["parity"]["flipped"] == 0, name
    assert not list(out.glob(".*partial"))


def test_all_refuses_before_exporting_anything(tmp_path: Path, capsys):
    out = tmp_path / "exported"
    out.mkdir()
    (out / "rules.onnx").write_bytes(b"earlier")
    assert main(["export", "--all", "--format", "onnx", "--out", str(out)]) == 2
    assert "exists already" in _one_line_error(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["rules.onnx"]
    assert (out / "rules.onnx").read_bytes() == b"earlier"


@pytest.mark.parametrize("case, words", [
    ("no-best", "no best.pt"),
    ("no-model", "does not say which model"),
    ("unknown-model", "unknown model"),
    ("two-runs", "two runs of"),
    ("model-and-all", "not both"),
    ("nothing", "name a MODEL"),
    ("weights-with-all", "--weights goes with one MODEL"),
])
def test_bad_requests_are_one_line(tmp_path: Path, capsys, case: str, words: str):
    net = _bundled_network()
    out = tmp_path / "out"
    argv = ["export", "--format", "onnx", "--out", str(out)]
    if case == "no-best":
        argv += ["--run", str(_run_folder(tmp_path, net.name, None))]
    elif case == "no-model":
        run = _run_folder(tmp_path, net.name, net.bundled_path)
        (run / "run.json").write_text("{}")
        argv += ["--run", str(run)]
    elif case == "unknown-model":
        argv += ["--run", str(_run_folder(tmp_path, "no-such-net", net.bundled_path))]
    elif case == "two-runs":
        a = _run_folder(tmp_path / "a", net.name, net.bundled_path)
        b = _run_folder(tmp_path / "b", net.name, net.bundled_path)
        argv += ["--run", str(a), "--run", str(b)]
    elif case == "model-and-all":
        argv += ["rules", "--all"]
    elif case == "weights-with-all":
        argv += ["--all", "--weights", str(net.bundled_path)]
    assert main(argv) == 2
    assert words in _one_line_error(capsys)
    assert not out.exists()


def test_bad_weights_are_named_even_where_an_export_lies(tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "arod-resnet50.onnx").write_bytes(b"earlier")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", "arod-resnet50", "--weights", str(bad), "--format", "onnx",
                 "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "not a readable PyTorch checkpoint" in err and "exists already" not in err
    assert (out / "arod-resnet50.onnx").read_bytes() == b"earlier"
