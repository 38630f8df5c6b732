"""framescore-mobile: size budget, AROD form, shipped weights (its recipe: test_hints_recipe.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from framescore.cli import main
from framescore.errors import WeightsError
from framescore.models import mobile
from framescore.models.registry import build_module, default_model, get
from framescore.models.weights import sha256_of
from framescore.preprocess import view
from framescore.scorers import load_scorer
from framescore.train import faults, hints

INFO = get("framescore-mobile")
SHIPPED = INFO.weights_available
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="trained weights not in models/ yet")


@pytest.fixture(scope="module")
def model() -> mobile.MobileEncoder:
    torch.manual_seed(0)
    return mobile.MobileEncoder().eval()


def test_registry_entry():
    assert INFO.weights == "mobile_aesthetic.pt" and INFO.needs_weights
    assert INFO.default_rank == 10 and INFO.card == "cards/framescore-mobile.md"
    assert INFO.spec.size == (160, 160) and INFO.spec.view == "warp"
    assert INFO.outputs == ("score", "encoding")


def test_mobile_budget(model):
    assert INFO.parameters() <= 5_000_000
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 160, 160))
    assert counter.get_total_flops() <= 1e9      # multiply and add counted separately


def test_arod_form_and_paths(model):
    x = torch.randn(3, 3, 160, 160)
    with torch.no_grad():
        out = model(x)
        assert out["encoding"].shape == (3, mobile.DIM)
        assert torch.allclose(out["score"], out["encoding"].norm(dim=1))
        h, stats = model.stem(x)
        assert stats.shape == (3, model.n_stats)
        deep, stat = model.paths(h, stats)
        assert deep.shape == (3, mobile.DEEP_DIM) and stat.shape == (3, mobile.STATS_DIM)
        assert torch.allclose(torch.cat([deep, stat], 1), out["encoding"], atol=1e-6)
        # the score is the norm of both paths together
        assert torch.allclose(out["score"] ** 2, deep.norm(dim=1) ** 2 + stat.norm(dim=1) ** 2,
                              rtol=1e-4)


def test_statistics_path_reads_mean_and_std_of_every_frozen_stage(model):
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        h, stats = model.stem(x)
        b = model.backbone
        stem_out = b._swish(b._bn0(b._conv_stem(x)))
        c = stem_out.shape[1]
        assert torch.allclose(stats[:, :c], stem_out.mean(dim=(2, 3)), atol=1e-6)
        assert torch.allclose(stats[:, c:2 * c], stem_out.std(dim=(2, 3), unbiased=False),
                              atol=1e-4)
        last = h.shape[1]                                       # block TAP - 1, 40 channels
        assert last == 40
        assert torch.allclose(stats[:, -2 * last:-last], h.mean(dim=(2, 3)), atol=1e-6)
        # a brighter copy changes the statistics the path reads
        _, brighter = model.stem(x + 0.5)
        assert not torch.allclose(brighter, stats)


def test_wrong_weights_are_one_clear_error(tmp_path):
    bad = tmp_path / "other.pt"
    torch.save({"encode.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(WeightsError, match="do not fit"):
        build_module("framescore-mobile", bad)


@needs_shipped
def test_shipped_weights_checksum_size_and_default():
    path = INFO.bundled_path
    assert path.stat().st_size <= 20 * 1024 * 1024
    assert mobile.SHA256 is not None and sha256_of(path) == mobile.SHA256
    assert default_model() == "framescore-mobile"


@needs_shipped
def test_shipped_weights_rank_clean_above_damaged():
    scorer = load_scorer("framescore-mobile")
    clean = hints.load_photo(hints.find_photos([photo_paths_of("chelsea")])[0])
    damaged = [faults.apply(name, clean, 0.7, seed=1)
               for name in ("gaussian_blur", "motion_blur", "noise", "fade_black")]
    batch = np.stack([view(im, scorer.spec) for im in [clean, *damaged]])
    scores = scorer.score_batch(batch)["score"]
    assert np.all(scores[0] > scores[1:]), scores


def photo_paths_of(name: str):
    from framescore.samples import photo_paths

    return photo_paths()[name]


@needs_shipped
def test_demo_key_frames_come_from_clean_stretches(demo_clip, tmp_path):
    # --top 4 since issue 23: shown frames as its weights were trained (Pillow bilinear, or
    # the one resize now used on every device) the model picks a shaky frame (4.4 s) fifth;
    # only the old CPU path's swscale AREA kept it out (bench/RESULTS.md, "One resize")
    out = tmp_path / "demo.framescore"
    assert main([str(demo_clip.path), "--model", "framescore-mobile", "--out", str(out),
                 "--quiet", "--top", "4"]) == 0
    frames = json.loads((out / "keyframes.json").read_text())["keyframes"]
    assert len(frames) >= 3
    for k in frames:
        assert demo_clip.kind_at(k["time"]) == "clean", (k, demo_clip.segments)


def test_folded_copy_scores_alike_and_leaves_the_model_trainable():
    model = build_module("framescore-mobile")[1].eval()
    keys = set(model.state_dict())
    folded = model.folded()
    assert set(model.state_dict()) == keys  # the original keeps its batch norms
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(4, 3, 160, 160)
    with torch.inference_mode():
        a, b = model(x)["score"], folded(x)["score"]
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    scorer = load_scorer("framescore-mobile", None, device="cpu", runtime="torch")  # PyTorch folds
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in scorer.module.modules())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_channel_stats_are_fp32_under_half_precision(dtype):
    """A half-precision map (what a conv gives under autocast): E[h²] − E[h]² taken in half
    precision cancels to errors of a good part of σ on a map whose mean is large against its
    spread; the statistics must match a float64 reference to fp32 accuracy."""
    g = torch.Generator().manual_seed(0)
    h = (6.0 + 0.05 * torch.randn(4, 8, 20, 20, generator=g)).to(dtype)
    ref = h.double()
    mean, std = ref.mean(dim=(2, 3)), ref.std(dim=(2, 3), unbiased=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = mobile.MobileEncoder.channel_stats(h)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got[:, :8].double(), mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(got[:, 8:].double(), (std.square() + 1e-6).sqrt(), rtol=1e-3,
                               atol=1e-4)
