"""framescore-mobile: size budget, AROD form, shipped weights, the training recipe."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from framescore.train import faults
from framescore.train import hints
from framescore.cli import main
from framescore.errors import DataError, WeightsError
from framescore.models import mobile
from framescore.models.registry import build_module, default_model, get
from framescore.models.weights import sha256_of
from framescore.preprocess import view
from framescore.samples import photo
from framescore.scorers import load_scorer
from framescore.train import hints_recipe

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


def test_triplet_and_hinge_terms_order_the_norms():
    recipe = hints_recipe.Recipe()
    g = 4
    s_low, s_high = torch.full((g,), 0.3), torch.full((g,), 0.9)
    direction = torch.nn.functional.normalize(torch.randn(g, 8), dim=1)
    good = torch.cat([direction * 9.0, direction * 6.0, direction * 3.0])
    bad = torch.cat([direction * 3.0, direction * 6.0, direction * 9.0])
    t_good = hints_recipe.group_losses(good, s_low, s_high, recipe)
    t_bad = hints_recipe.group_losses(bad, s_low, s_high, recipe)
    assert float(t_good["hinge"]) == 0.0 and float(t_good["pair_acc"]) == 1.0
    assert float(t_bad["loss"]) > float(t_good["loss"]) + 3
    assert float(t_bad["pair_acc"]) == 0.0
    assert hints_recipe.lr_at(0, recipe) < hints_recipe.lr_at(recipe.warmup, recipe)
    assert hints_recipe.lr_at(recipe.steps, recipe) == pytest.approx(0.02 * recipe.lr)


def test_recipe_trains_checkpoints_and_resumes(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea", "coffee"):
        im = Image.fromarray(photo(name))
        im.thumbnail((200, 200))
        im.save(photos / f"{name}.png")
    data = tmp_path / "hints"
    hints.build([photos], data, seed=0, variants=1, size=160, long_side=200,
                fault_names=["gaussian_blur", "fade_white"])
    recipe = hints_recipe.Recipe(steps=3, groups_per_batch=2, warmup=1,
                                 checkpoint_every_s=1e9)
    run = tmp_path / "run"
    quiet = lambda msg: None  # noqa: E731
    weights = hints_recipe.train(data, run, recipe, log=quiet)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and len(json.loads(state["history"])) == 1
    _, module = build_module("framescore-mobile", weights)          # loads strictly
    frozen = module.backbone._blocks[0]._depthwise_conv.weight
    fresh = mobile.MobileEncoder(pretrained=True).backbone._blocks[0]._depthwise_conv.weight
    assert torch.equal(frozen, fresh)                                # frozen part untouched
    torch.manual_seed(recipe.seed)
    untrained = hints_recipe.build_model(recipe)
    for name in ("encode", "stats"):                                 # both paths learn
        before, after = getattr(untrained, name).state_dict(), getattr(module, name).state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before if "weight" in k), name
    with pytest.raises(Exception, match="--resume"):
        hints_recipe.train(data, run, recipe, log=quiet)
    longer = hints_recipe.Recipe(**{**recipe.__dict__, "steps": 5})
    messages: list[str] = []
    hints_recipe.train(data, run, longer, resume=True, log=messages.append)
    assert "resumed at step 3" in messages
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 5
    # a feature cache from a model with other statistics is recomputed, not reused
    feats = torch.load(run / hints_recipe.FEATURE_CACHE, weights_only=True)
    assert feats["stats"].shape[1] == module.n_stats
    feats["stats"] = feats["stats"][:, :-2]
    torch.save(feats, run / hints_recipe.FEATURE_CACHE)
    messages.clear()
    hints_recipe.train(data, run, replace(longer, steps=6), resume=True, log=messages.append)
    assert not any("reused" in m for m in messages)
    feats = torch.load(run / hints_recipe.FEATURE_CACHE, weights_only=True)
    assert feats["stats"].shape[1] == module.n_stats
    negative = hints_recipe.Recipe(**{**recipe.__dict__, "cross_weight": -1.0})
    with pytest.raises(DataError, match="cross weight"):
        hints_recipe.train(data, tmp_path / "neg", negative, log=quiet)
    assert not (tmp_path / "neg").exists()                           # refused before any work


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
    out = tmp_path / "demo.framescore"
    assert main([str(demo_clip.path), "--model", "framescore-mobile", "--out", str(out),
                 "--quiet"]) == 0
    frames = json.loads((out / "keyframes.json").read_text())["keyframes"]
    assert len(frames) >= 3
    for k in frames:
        assert demo_clip.kind_at(k["time"]) == "clean", (k, demo_clip.segments)


def test_fault_weights_shift_the_sampling_and_reject_typos():
    faults = ["tilt", "noise", "noise", "overexposure"]
    assert hints_recipe.sampling_probabilities(faults, "") is None
    p = hints_recipe.sampling_probabilities(faults, "tilt=4, overexposure=2")
    np.testing.assert_allclose(p, np.array([4, 1, 1, 2]) / 8)
    rng = np.random.default_rng(0)
    draws = rng.choice(len(faults), 4000, p=p)
    assert abs((draws == 0).mean() - 0.5) < 0.03  # a tilt group every other draw
    for bad in ("tilt", "tilt=x", "tilt=-1", "tlit=2"):
        with pytest.raises(DataError):
            hints_recipe.sampling_probabilities(faults, bad)


def test_cross_photo_hint_leaves_out_the_skipped_faults():
    # two photos in the right order within each, with unit steps (the hinge's δ); photo 0's
    # clean copy lies below photo 1's high-damage (noise) copy: the one cross-photo violation
    recipe = hints_recipe.Recipe(cross_severity=0.6)
    s_low, s_high = torch.tensor([0.3, 0.3]), torch.tensor([0.9, 0.9])
    u = torch.nn.functional.normalize(torch.ones(1, 4), dim=1)
    phi = torch.cat([u * 4.0, u * 12.0, u * 3.0, u * 11.0, u * 2.0, u * 10.0])
    faults = ["tilt", "noise"]
    assert hints_recipe.cross_mask(faults, " tilt ").tolist() == [False, True]

    def hinge(mask):
        return float(hints_recipe.group_losses(phi, s_low, s_high, recipe, mask)["hinge"])

    assert hinge(None) > 0 and hinge(hints_recipe.cross_mask(faults, "tilt")) > 0
    assert hinge(hints_recipe.cross_mask(faults, "noise")) == 0.0
    assert float(hints_recipe.group_losses(phi, s_low, s_high,
                                           hints_recipe.Recipe())["hinge"]) == 0.0
    for bad in ("tlit", "tilt,blur"):
        with pytest.raises(DataError):
            hints_recipe.cross_mask(faults, bad)


def test_cross_weight_weighs_the_cross_photo_pairs_in_the_hinge():
    # as above: six within-photo pairs all at the margin (hinge 0) and two cross-photo pairs,
    # one violated by 7 (photo 0's clean 4 below photo 1's damaged 10), one fine
    s_low, s_high = torch.tensor([0.3, 0.3]), torch.tensor([0.9, 0.9])
    u = torch.nn.functional.normalize(torch.ones(1, 4), dim=1)
    phi = torch.cat([u * 4.0, u * 12.0, u * 3.0, u * 11.0, u * 2.0, u * 10.0])

    def hinge(weight):
        recipe = hints_recipe.Recipe(cross_severity=0.6, cross_weight=weight)
        return float(hints_recipe.group_losses(phi, s_low, s_high, recipe)["hinge"])

    assert hinge(1.0) == pytest.approx(7 / 8)           # the plain mean over 8 pairs
    assert hinge(0.5) == pytest.approx(0.5 * 7 / 7)     # 6 within + 2 × 0.5 cross
    assert hinge(0.0) == 0.0                            # the cross-photo hint switched off
    assert hinge(0.999999) == pytest.approx(hinge(1.0), rel=1e-5)   # the two branches agree


def test_cross_photo_hint_can_stay_off_the_paths_own_terms():
    # the whole encoding orders everything, across photos too; the statistics path alone puts
    # photo 0's clean copy (3) below photo 1's high-damage copy (6): a cross-photo violation
    # only in that path's own terms
    s_low, s_high = torch.tensor([0.3, 0.3]), torch.tensor([0.9, 0.9])
    u = torch.nn.functional.normalize(torch.ones(1, 4), dim=1)
    deep = torch.cat([u * 20.0, u * 9.0, u * 19.0, u * 8.0, u * 18.0, u * 1.0])
    stat = torch.cat([u * 3.0, u * 9.0, u * 2.0, u * 8.0, u * 1.0, u * 6.0])
    on = hints_recipe.Recipe(cross_severity=0.6)
    off = hints_recipe.Recipe(cross_severity=0.6, cross_on_paths=False)
    without = hints_recipe.Recipe()
    loss = {name: float(hints_recipe.batch_losses(deep, stat, s_low, s_high, r)["loss"])
            for name, r in (("on", on), ("off", off), ("without", without))}
    whole = {name: float(hints_recipe.group_losses(torch.cat([deep, stat], 1), s_low, s_high,
                                                   r)["loss"]) for name, r in (("on", on),
                                                                               ("without",
                                                                                without))}
    paths = sum(float(hints_recipe.group_losses(p, s_low, s_high, without)["loss"])
                for p in (deep, stat))
    assert loss["on"] > loss["off"]                       # the violation counts only when on
    assert loss["off"] == pytest.approx(whole["on"] + paths)
    assert loss["without"] == pytest.approx(whole["without"] + paths)
    assert hints_recipe._yes_no(" False ") is False and hints_recipe._yes_no("1") is True
    with pytest.raises(SystemExit):
        hints_recipe.main(["data", "--out", "run", "--cross-on-paths", "maybe"])


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
