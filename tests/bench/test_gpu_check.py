"""bench/gpu_check.py: its CUDA parts run here with the device swapped to the CPU (so the first
GPU machine does not meet a typo), and the script says which parts it skipped."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def _rows(rep) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in rep.lines
        if line.startswith("| ") and not line.startswith("| what")
    ]


def test_model_parity_and_throughput_run_with_the_device_swapped(gpu_check):
    rep = gpu_check.Report(600)
    gpu_check.model_parity(rep, device="cpu")
    rows = _rows(rep)
    assert rows[0][0] == "model"
    assert float(rows[1][2]) < 1e-4 and float(rows[1][3]) > 0.999  # cpu against itself
    rep = gpu_check.Report(600)
    gpu_check.model_throughput(rep, device="cpu", batches=(4,), seconds=0.2)
    rows = _rows(rep)[1:]
    assert [r[:2] for r in rows] == [["fp16", "4"], ["fp32", "4"]]
    assert all(float(r[2]) > 0 for r in rows)


def test_amp_training_steps_run_with_the_device_swapped(gpu_check):
    rep = gpu_check.Report(600)
    gpu_check.amp_training(rep, device="cpu", batch_size=4, steps=2)
    rows = _rows(rep)[1:]
    assert [r[0] for r in rows] == ["AMP fp16", "fp32"]
    assert all(r[-1] == "True" for r in rows)  # finite losses


def test_without_a_gpu_the_cuda_parts_say_they_were_skipped(gpu_check):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here")
    rep = gpu_check.Report(600)
    for part in (
        gpu_check.model_parity,
        gpu_check.pipeline_parity,
        gpu_check.model_throughput,
        gpu_check.amp_training,
    ):
        part(rep)
    skipped = [line for line in rep.lines if line.startswith("- SKIPPED")]
    assert len(skipped) == 4 and all("no CUDA GPU" in line for line in skipped)
