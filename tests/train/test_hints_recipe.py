"""framescore-mobile's recipe (relative hints from graded faults) as a task on loop.fit:
the loss terms, the schedule, the sampling, and `framescore train` / `framescore evaluate` on a
tiny rendered hints set (checkpoints, resume, the feature cache, the held-out fault table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from framescore.cli import main
from framescore.cli.app import app
from framescore.errors import DataError
from framescore.models import mobile
from framescore.models.registry import build_module
from framescore.samples import photo
from framescore.train import hints, loop
from framescore.train.recipes.hints import (
    FEATURE_CACHE,
    LossSettings,
    batch_losses,
    cross_mask,
    group_losses,
    sampling_probabilities,
)

FAULTS = ["gaussian_blur", "fade_white"]
# 4 steps in 2 epochs of 2, 2 groups a step, no test at the end unless asked
TINY = ["--set", "epochs=2", "--set", "steps_per_epoch=2", "--set", "batch_size=2",
        "--set", "warmup_steps=1", "--set", "test_at_end=false", "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Four real photos (two held out), two faults, one variant each: 4 groups."""
    root = tmp_path_factory.mktemp("hints")
    photos = root / "photos"
    photos.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        im = Image.fromarray(photo(name))
        im.thumbnail((200, 200))
        im.save(photos / f"{name}.png")
    out = root / "hints"
    hints.build([photos], out, seed=0, variants=1, size=160, long_side=200, holdout=0.5,
                fault_names=FAULTS)
    return out


def train(data: Path, run: Path, *extra: str):
    return CliRunner().invoke(app, ["train", "framescore-mobile", "--data", str(data),
                                    "--out", str(run), *TINY, *extra])


def refused(capsys, *argv: str) -> str:
    """The one error line of a command that must fail with exit 2 (as `framescore` runs it:
    errors become one line there, not in the Typer app)."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("framescore: error: "), err
    return err[0]


# ---------------------------------------------------------------------------------------------
# the loss, the schedule, the sampling


def test_triplet_and_hinge_terms_order_the_norms():
    settings = LossSettings()
    g = 4
    s_low, s_high = torch.full((g,), 0.3), torch.full((g,), 0.9)
    direction = torch.nn.functional.normalize(torch.randn(g, 8), dim=1)
    good = torch.cat([direction * 9.0, direction * 6.0, direction * 3.0])
    bad = torch.cat([direction * 3.0, direction * 6.0, direction * 9.0])
    t_good = group_losses(good, s_low, s_high, settings)
    t_bad = group_losses(bad, s_low, s_high, settings)
    assert float(t_good["hinge"]) == 0.0 and float(t_good["pair_acc"]) == 1.0
    assert float(t_bad["loss"]) > float(t_good["loss"]) + 3
    assert float(t_bad["pair_acc"]) == 0.0


def test_warmup_cosine_schedule_scales_each_group():
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW([{"params": [net.weight], "lr_scale": 0.1},
                             {"params": [net.bias]}], lr=1e-3)
    sched = loop.WarmupCosine(opt, 1e-3, warmup=50, total=1600)
    assert sched.rate(0) < sched.rate(49) == pytest.approx(1e-3)
    assert sched.rate(1600) == pytest.approx(0.02 * 1e-3)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * sched.rate(0))
    assert opt.param_groups[1]["lr"] == pytest.approx(sched.rate(0))
    for _ in range(60):
        sched.step()
    again = loop.WarmupCosine(opt, 1e-3, warmup=50, total=1600)
    again.load_state_dict(sched.state_dict())
    assert opt.param_groups[1]["lr"] == pytest.approx(sched.rate(60))
    with pytest.raises(Exception, match="steps_per_epoch"):
        loop.make_scheduler(opt, {"lr_schedule": "warmup-cosine", "steps_per_epoch": 0,
                                  "lr": 1e-3, "epochs": 2})


def test_fault_weights_shift_the_sampling_and_reject_typos():
    faults = ["tilt", "noise", "noise", "overexposure"]
    assert sampling_probabilities(faults, "") is None
    p = sampling_probabilities(faults, "tilt=4, overexposure=2")
    np.testing.assert_allclose(p, np.array([4, 1, 1, 2]) / 8)
    rng = np.random.default_rng(0)
    draws = rng.choice(len(faults), 4000, p=p)
    assert abs((draws == 0).mean() - 0.5) < 0.03  # a tilt group every other draw
    for bad in ("tilt", "tilt=x", "tilt=-1", "tlit=2"):
        with pytest.raises(DataError):
            sampling_probabilities(faults, bad)


def test_cross_photo_hint_leaves_out_the_skipped_faults():
    # two photos in the right order within each, with unit steps (the hinge's δ); photo 0's
    # clean copy lies below photo 1's high-damage (noise) copy: the one cross-photo violation
    settings = LossSettings(cross_severity=0.6)
    s_low, s_high = torch.tensor([0.3, 0.3]), torch.tensor([0.9, 0.9])
    u = torch.nn.functional.normalize(torch.ones(1, 4), dim=1)
    phi = torch.cat([u * 4.0, u * 12.0, u * 3.0, u * 11.0, u * 2.0, u * 10.0])
    faults = ["tilt", "noise"]
    assert cross_mask(faults, " tilt ").tolist() == [False, True]

    def hinge(mask):
        return float(group_losses(phi, s_low, s_high, settings, mask)["hinge"])

    assert hinge(None) > 0 and hinge(cross_mask(faults, "tilt")) > 0
    assert hinge(cross_mask(faults, "noise")) == 0.0
    assert float(group_losses(phi, s_low, s_high, LossSettings())["hinge"]) == 0.0
    for bad in ("tlit", "tilt,blur"):
        with pytest.raises(DataError):
            cross_mask(faults, bad)


def test_cross_weight_weighs_the_cross_photo_pairs_in_the_hinge():
    # as above: six within-photo pairs all at the margin (hinge 0) and two cross-photo pairs,
    # one violated by 7 (photo 0's clean 4 below photo 1's damaged 10), one fine
    s_low, s_high = torch.tensor([0.3, 0.3]), torch.tensor([0.9, 0.9])
    u = torch.nn.functional.normalize(torch.ones(1, 4), dim=1)
    phi = torch.cat([u * 4.0, u * 12.0, u * 3.0, u * 11.0, u * 2.0, u * 10.0])

    def hinge(weight):
        settings = LossSettings(cross_severity=0.6, cross_weight=weight)
        return float(group_losses(phi, s_low, s_high, settings)["hinge"])

    assert hinge(1.0) == pytest.approx(7 / 8)           # the plain mean over 8 pairs
    assert hinge(0.5) == pytest.approx(0.5 * 7 / 7)     # 6 within + 2 × 0.5 cross
    assert hinge(0.0) == 0.0                            # the cross-photo hint switched off
    assert hinge(0.999999) == pytest.approx(hinge(1.0), rel=1e-5)   # the two branches agree


def test_cross_photo_hint_can_stay_off_the_paths_own_terms(data, tmp_path, capsys):
    # the whole encoding orders everything, across photos too; the statistics path alone puts
    # photo 0's clean copy (3) below photo 1's high-damage copy (6): a cross-photo violation
    # only in that path's own terms
    s_low, s_high = torch.tensor([0.3, 0.3]), torch.tensor([0.9, 0.9])
    u = torch.nn.functional.normalize(torch.ones(1, 4), dim=1)
    deep = torch.cat([u * 20.0, u * 9.0, u * 19.0, u * 8.0, u * 18.0, u * 1.0])
    stat = torch.cat([u * 3.0, u * 9.0, u * 2.0, u * 8.0, u * 1.0, u * 6.0])
    on = LossSettings(cross_severity=0.6)
    off = LossSettings(cross_severity=0.6, cross_on_paths=False)
    without = LossSettings()
    loss = {name: float(batch_losses(deep, stat, s_low, s_high, r)["loss"])
            for name, r in (("on", on), ("off", off), ("without", without))}
    whole = {name: float(group_losses(torch.cat([deep, stat], 1), s_low, s_high, r)["loss"])
             for name, r in (("on", on), ("without", without))}
    paths = sum(float(group_losses(p, s_low, s_high, without)["loss"]) for p in (deep, stat))
    assert loss["on"] > loss["off"]                       # the violation counts only when on
    assert loss["off"] == pytest.approx(whole["on"] + paths)
    assert loss["without"] == pytest.approx(whole["without"] + paths)
    # the option is a checked setting: a word that is not a boolean is one line, exit 2
    assert "cross_on_paths" in refused(capsys, "train", "framescore-mobile", "--data", str(data),
                                       "--out", str(tmp_path / "run"), "--set",
                                       "cross_on_paths=maybe")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# framescore train framescore-mobile: loop.fit, checkpoints, resume, the feature cache


def test_recipe_trains_checkpoints_and_resumes(data, tmp_path, capsys):
    run = tmp_path / "run"
    result = train(data, run)
    assert result.exit_code == 0, result.output
    state = loop.read_checkpoint(run / loop.LAST)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert state["meta"]["recipe"] == "hints" and state["scheduler"]["last_step"] == 4
    assert json.loads((run / loop.RUN_JSON).read_text())["status"] == "finished"
    _, module = build_module("framescore-mobile", run / loop.LAST)      # loads strictly
    frozen = module.backbone._blocks[0]._depthwise_conv.weight
    fresh = mobile.MobileEncoder(pretrained=True).backbone._blocks[0]._depthwise_conv.weight
    assert torch.equal(frozen, fresh)                                # frozen part untouched
    torch.manual_seed(0)
    untrained = mobile.MobileEncoder(pretrained=True)
    for name in ("encode", "stats"):                                 # both paths learn
        before, after = getattr(untrained, name).state_dict(), getattr(module, name).state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before if "weight" in k), name
    args = ["train", "framescore-mobile", "--data", str(data), "--out", str(run)]
    assert "--resume" in refused(capsys, *args)                      # never over a run
    longer = train(data, run, "--resume", "--set", "epochs=3")
    assert longer.exit_code == 0, longer.output
    assert loop.read_checkpoint(run / loop.LAST)["epoch"] == 3
    # a feature cache from a model with other statistics is recomputed, not reused
    feats = torch.load(run / FEATURE_CACHE, weights_only=True)
    assert feats["stats"].shape[1] == module.n_stats
    feats["stats"] = feats["stats"][:, :-2]
    torch.save(feats, run / FEATURE_CACHE)
    messages = CliRunner().invoke(app, ["train", "framescore-mobile", "--data", str(data),
                                        "--out", str(run), "--resume", "--set", "epochs=4",
                                        "--threads", "1"])
    assert messages.exit_code == 0, messages.output
    assert "cache" in messages.output and "reused" not in messages.output
    feats = torch.load(run / FEATURE_CACHE, weights_only=True)
    assert feats["stats"].shape[1] == module.n_stats
    args[-1] = str(tmp_path / "neg")
    assert "cross_weight" in refused(capsys, *args, "--set", "cross_weight=-1.0")
    assert not (tmp_path / "neg").exists()                           # refused before any work


def test_a_resumed_run_ends_with_the_uninterrupted_runs_weights(data, tmp_path):
    """Every step's groups come from one generator for the whole run, the schedule is per
    step and checkpointed: stopping after epoch 1 and resuming changes nothing."""
    whole = train(data, tmp_path / "whole", "--set", "epochs=3")
    assert whole.exit_code == 0, whole.output
    part = train(data, tmp_path / "part", "--set", "epochs=1")
    assert part.exit_code == 0, part.output
    rest = train(data, tmp_path / "part", "--resume", "--set", "epochs=3")
    assert rest.exit_code == 0, rest.output
    a = loop.read_checkpoint(tmp_path / "whole" / loop.LAST)["state_dict"]
    b = loop.read_checkpoint(tmp_path / "part" / loop.LAST)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_feature_cache_follows_the_data(data, tmp_path):
    """A cache made from other data (another manifest) is not reused."""
    run = tmp_path / "run"
    assert train(data, run, "--set", "epochs=1").exit_code == 0
    feats = torch.load(run / FEATURE_CACHE, weights_only=True)
    assert isinstance(feats["data"], str)
    feats["data"] = "another data folder"
    torch.save(feats, run / FEATURE_CACHE)
    result = CliRunner().invoke(app, ["train", "framescore-mobile", "--data", str(data),
                                      "--out", str(run), "--resume", "--set", "epochs=2",
                                      "--set", "steps_per_epoch=2", "--set", "batch_size=2",
                                      "--set", "test_at_end=false", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "reused" not in result.output
    assert torch.load(run / FEATURE_CACHE, weights_only=True)["data"] != "another data folder"


# ---------------------------------------------------------------------------------------------
# the held-out fault table: at the end of training, and with framescore evaluate


def test_training_ends_with_the_held_out_fault_table_beside_the_shipped(data, tmp_path):
    run = tmp_path / "run"
    result = train(data, run, "--set", "test_at_end=true", "--set", "repeats=1", "--json")
    assert result.exit_code == 0, result.output
    figures = {f["key"]: f for f in json.loads(result.stdout)["figures"]}
    assert set(figures) == ({f"faults/{f}" for f in FAULTS} |
                            {"faults/overall", "faults/cross_photo"})
    for fault in FAULTS:
        assert 0 <= figures[f"faults/{fault}"]["ours"] <= 100
        assert figures[f"faults/{fault}"]["paper"] == mobile.SHIPPED_FIGURES[fault]
    test = json.loads((run / "test.json").read_text())
    assert {f["key"] for f in test["figures"]} == set(figures)


def test_evaluate_faults_columns_and_weights(data, tmp_path, capsys):
    """``--compare NAME=WEIGHTS`` names its own weights; two columns of one model are told
    apart by their weights file; ``--cross`` adds the cross-photo row."""
    run = tmp_path / "run"
    assert train(data, run, "--set", "epochs=1").exit_code == 0
    trained = str(run / loop.LAST)
    result = CliRunner().invoke(app, [
        "evaluate", "framescore-mobile", "--data", str(data), "-w", trained, "--faults",
        "-m", "rules", "-m", f"framescore-mobile={trained}", "-m", "framescore-mobile",
        "--repeats", "1", "--json", "--cross"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["fault_tables"]
    assert [r["model"] for r in rows] == [f"framescore-mobile ({trained})", "rules",
                                          f"framescore-mobile ({trained})",
                                          "framescore-mobile"]
    assert rows[0]["per_fault"] == rows[2]["per_fault"]          # the same weights, twice
    assert rows[0]["cross_photo"] == rows[2]["cross_photo"]
    assert rows[1]["per_fault"] != rows[0]["per_fault"]
    assert rows[3]["cross_photo"]["pairs"] == rows[0]["cross_photo"]["pairs"] > 0
    md = CliRunner().invoke(app, ["evaluate", "framescore-mobile", "--data", str(data),
                                  "--faults", "--repeats", "1", "--markdown"])
    assert md.exit_code == 0, md.output
    assert md.stdout.startswith("| fault | pairs | framescore-mobile | rules |")
    for bad in (["--faults", "-m", "rules="], ["--cross"], ["--markdown"]):
        refused(capsys, "evaluate", "framescore-mobile", "--data", str(data), *bad)
