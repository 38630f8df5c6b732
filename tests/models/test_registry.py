"""The registry, weight loading and the torch scoring path."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time

import numpy as np
import pytest
import torch

from framescore.errors import UsageError, WeightsError
from framescore.io.video import Frame
from framescore.models.arod import ArodEncoder
from framescore.models.registry import REGISTRY, build_module, default_model, get
from framescore.models.weights import read_state_dict
from framescore.preprocess import view
from framescore.samples import photo
from framescore.scorers import load_scorer
from framescore.scorers.torch import TorchScorer
from framescore.scoring import (
    CONSUMER_NICE,
    prefetch,
    resolve_device,
    score_frames,
)


@pytest.fixture(scope="module")
def arod_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "arod.pt"
    torch.save(ArodEncoder().state_dict(), path)
    return path


def test_every_entry_is_complete():
    for name, info in REGISTRY.items():
        assert info.name == name and info.paper and info.summary
        assert info.spec.height > 0 and info.spec.width > 0
        assert (info.build is None) != (info.scorer is None)
        assert "score" in info.outputs


def test_default_model_is_available():
    assert get(default_model()).weights_available


def test_unknown_model():
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        get("nope")


def test_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="needs weights"):
        load_scorer("arod-resnet50")
    with pytest.raises(WeightsError, match="not found"):
        load_scorer("arod-resnet50", tmp_path / "missing.pt")


def test_arod_scores_real_photos_with_weights(arod_weights):
    scorer = load_scorer("arod-resnet50", arod_weights, device="cpu")
    images = np.stack([view(photo(n), scorer.spec) for n in ("coffee", "chelsea")])
    out = scorer.score_batch(images)
    assert out["score"].shape == (2,) and out["encoding"].shape == (2, 1000)
    np.testing.assert_allclose(out["score"], np.linalg.norm(out["encoding"], axis=1), rtol=1e-5)
    again = load_scorer("arod-resnet50", arod_weights).score_batch(images)
    np.testing.assert_allclose(out["score"], again["score"], rtol=1e-6)  # deterministic


def test_nested_and_ddp_checkpoints_load(arod_weights, tmp_path):
    state = torch.load(arod_weights, weights_only=True)
    wrapped = tmp_path / "ddp.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    _, module = build_module("arod-resnet50", wrapped)
    assert torch.equal(module.encode.weight, state["encode.weight"])


def test_wrong_checkpoint_is_refused(tmp_path):
    small = tmp_path / "small.pt"
    torch.save({"encode.weight": torch.zeros(3, 3)}, small)
    with pytest.raises(WeightsError, match="do not fit ArodEncoder"):
        build_module("arod-resnet50", small)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        build_module("arod-resnet50", junk)


def test_pickled_objects_are_not_loaded(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "obj": argparse.Namespace(run="rm -rf")}, evil)
    with pytest.raises(WeightsError):
        read_state_dict(evil)


def test_checksum_sidecar(arod_weights, tmp_path):
    copy = tmp_path / "a.pt"
    copy.write_bytes(arod_weights.read_bytes())
    good = hashlib.sha256(copy.read_bytes()).hexdigest()
    (tmp_path / "a.pt.sha256").write_text(good + "  a.pt\n")
    assert read_state_dict(copy)
    (tmp_path / "a.pt.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(WeightsError, match="checksum mismatch"):
        read_state_dict(copy)


def test_rules_takes_no_weights(tmp_path):
    with pytest.raises(UsageError, match="takes no weights"):
        load_scorer("rules", tmp_path / "x.pt")


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetch(iter(range(100)))) == list(range(100))

    def broken():
        yield 1
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        list(prefetch(broken()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_matches_cpu(arod_weights):
    _, module = build_module("arod-resnet50", arod_weights)
    spec = get("arod-resnet50").spec
    images = np.stack([view(photo(n), spec) for n in ("coffee", "chelsea", "rocket")])
    cpu = TorchScorer("a", module, spec, "cpu").score_batch(images)["score"]
    _, module = build_module("arod-resnet50", arod_weights)
    gpu = TorchScorer("a", module, spec, "cuda").score_batch(images)["score"]
    np.testing.assert_allclose(gpu, cpu, rtol=2e-2)
    assert list(np.argsort(gpu)) == list(np.argsort(cpu))


# the resize on every device and the decode size: tests/pipeline/test_preprocess.py


def test_to_tensor_warps_and_normalizes():
    from framescore.models.spec import InputSpec
    from framescore.preprocess import to_tensor

    spec = InputSpec(8, 8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    images = np.full((2, 30, 50, 3), 191, np.uint8)  # 0.749 → (0.749 - 0.5) / 0.25
    x = to_tensor(images, spec)
    assert x.shape == (2, 3, 8, 8)
    assert torch.allclose(x, torch.full_like(x, (191 / 255 - 0.5) / 0.25), atol=1e-4)


def test_arod_imagenet_trunk_loads_from_a_torchvision_file(tmp_path):
    from torchvision.models import resnet50

    from framescore.models.arod import load_imagenet_backbone

    torch.manual_seed(1)
    reference = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    model = load_imagenet_backbone(ArodEncoder(), path)
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    with pytest.raises(WeightsError, match="not a torchvision resnet50"):
        load_imagenet_backbone(ArodEncoder(), _alexnet_file(tmp_path))


def _alexnet_file(tmp_path):
    from torchvision.models import alexnet

    path = tmp_path / "alexnet.pth"
    torch.save(alexnet(weights=None).state_dict(), path)
    return path


def test_onnx_model_takes_no_weights(tmp_path):
    with pytest.raises(UsageError, match="carries its weights"):
        load_scorer(str(tmp_path / "m.onnx"), tmp_path / "w.pt")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class _RecordingScorer:
    """Scores by the mean pixel; records the nice value of the thread it scores in."""

    name = "recording"

    def __init__(self, fail_on: int | None = None, seconds: float = 0.0) -> None:
        self.nice: list[int] = []
        self.calls = 0
        self.fail_on = fail_on
        self.seconds = seconds

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.nice.append(_nice())
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("model failed")
        time.sleep(self.seconds)
        return {"score": images.reshape(len(images), -1).mean(axis=1)}


def _frames(n: int, seen: list[int], seconds: float = 0.0):
    for i in range(n):
        seen.append(_nice())
        time.sleep(seconds)
        yield Frame(index=i, time=i / 25, image=np.full((4, 4, 3), i, dtype=np.uint8))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities: Linux")
def test_a_scorer_that_waits_for_the_decoder_yields_to_it():
    caller = _nice()
    decoder: list[int] = []
    scorer = _RecordingScorer()
    out = score_frames(_frames(80, decoder, seconds=0.002), scorer, batch_size=8)
    assert out.scores.tolist() == [float(i) for i in range(80)]   # every frame, in order
    assert out.indices.tolist() == list(range(80))
    assert set(decoder) == {caller}                               # decoding at our priority
    lowered = min(19, caller + CONSUMER_NICE)
    assert scorer.nice[:6] == [caller] * 6                        # probing who waits
    assert scorer.nice[6:] == [lowered] * 4                       # then below the decoder
    assert _nice() == caller                                      # the caller's thread as it was

    plain = _RecordingScorer()
    score_frames(_frames(80, [], seconds=0.002), plain, batch_size=8, yield_to_decoder=False)
    assert set(plain.nice) == {caller}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities: Linux")
def test_a_scorer_that_is_the_bottleneck_keeps_its_priority():
    caller = _nice()
    scorer = _RecordingScorer(seconds=0.02)
    score_frames(_frames(80, []), scorer, batch_size=8)
    assert set(scorer.nice) == {caller}


def test_scoring_errors_reach_the_caller():
    with pytest.raises(RuntimeError, match="model failed"):
        score_frames(_frames(40, []), _RecordingScorer(fail_on=2), batch_size=8)

    def broken():
        yield from _frames(3, [])
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        score_frames(broken(), _RecordingScorer(), batch_size=2)
