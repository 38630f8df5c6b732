"""Learnability: a few hundred CPU steps of each family's recipe must beat chance on held-out
fixture images.

The fixtures (``datasets_fixtures``) are real photographs degraded by blur and noise in
proportion to how bad their score is, written in each dataset's own format, so the score is a
known function of the image. Each test runs the family's real recipe (dataset reader, split,
sampler, views, loss) through the real training loop, then the recipe's own test protocol on
the images it held out. A wrong loss sign, a sampler that pairs the wrong images or labels them
the wrong way round, or a split that leaks, fails these tests.

To stay fast on two shared cores: one torch thread (small nets on a busy machine run several
times faster than with two), tiny inputs where the model takes them (``size``), Adam instead of
the papers' SGD, and for the mobile encoder its ImageNet backbone frozen (the setting the
shipped model trains with). The big ImageNet-sized families (Kong's AlexNet, Jin's VGG16,
AROD's ResNet-50) train from scratch here (no ImageNet weights offline) and take minutes:
they are marked ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets_fixtures import make_aadb, make_arod, make_ava

from framescore.train import loop, metrics
from framescore.train.config import resolve
from framescore.train.recipes import make_recipe, options_for

FAST = ["workers=0", "early_stop=0", "lr_schedule=\"none\"", "weight_decay=0.0",
        "optimizer=\"adam\"", "test_at_end=false", "eval_batch_size=64"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def learn(name: str, root: Path, run: Path, *overrides: str):
    """Train ``name`` on ``root`` with the fast settings and return (recipe, model, figures)."""
    config = resolve(options_for(name), overrides=[*FAST, *overrides])
    recipe = make_recipe(name, config, root)
    recipe.ensure_loaded()
    loop.seed_everything(loop.epoch_seed(config["seed"], -2))
    model = recipe.build_model()
    loop.prepare_run_dir(run, False, False)
    result = loop.fit(model, recipe, config, run, meta={"model": name})
    assert result.status == "finished"
    ctx = loop.Context(loop.Dispatch(model), torch.device("cpu"), False, False)
    loop.seed_everything(config["seed"])
    figures = {f.key: f for f in recipe.test(model, ctx)}
    return recipe, model, ctx, figures, result


# ---------------------------------------------------------------------------------------------
# fast families


def test_rapid_scnn_learns_high_versus_low(tmp_path):
    """RAPID on AVA's δ = 0 labels: held-out accuracy well above the majority class, and
    P(high) ordered like the mean votes."""
    root = make_ava(tmp_path / "ava", n=800, seed=21, size=32).root
    recipe, model, ctx, figures, _ = learn(
        "rapid-scnn", root, tmp_path / "run", "size=32", "epochs=6", "steps_per_epoch=100",
        "batch_size=16", "lr=5e-4", "test_views=4")
    labels = np.array([r.label for r in recipe.test_records])
    majority = max(labels.mean(), 1 - labels.mean())
    accuracy = figures["ava_accuracy"].ours / 100
    idx, out = recipe.predict(model, recipe.test_records, ctx)
    rho = metrics.spearman(out["prob_high"], [recipe.test_records[i].score for i in idx])
    print(f"rapid-scnn: accuracy {accuracy:.3f} (majority {majority:.3f}), rho {rho:.3f}")
    assert accuracy >= max(0.65, majority + 0.1)  # 200 held-out images: chance sd ≈ 3.5 %
    assert rho >= 0.4  # chance sd ≈ 0.07


def test_relative_siamese_learns_to_rank_pairs(tmp_path):
    """The Siamese hinge on AVA protocol pairs: the standard (held-out) pairs are ordered
    right, and the single column's score follows the mean votes."""
    # every image in at most one training pair (the paper's protocol) needs many images
    root = make_ava(tmp_path / "ava", n=1600, seed=12, size=32).root
    _, _, _, figures, _ = learn(
        "relative-siamese", root, tmp_path / "run", "size=32", "epochs=3",
        "steps_per_epoch=100", "batch_size=8", "lr=3e-4", "max_variance=10.0",
        "n_train=500", "n_val=20")
    pair = figures["pair_accuracy_standard"]
    rho = figures["spearman"].ours
    print(f"relative: standard pair accuracy {pair.ours:.1f} % ({pair.note}), rho {rho:.3f}")
    assert pair.ours >= 65.0  # ~170 held-out pairs: chance sd ≈ 4 %
    assert rho >= 0.4  # 400 held-out images: chance sd ≈ 0.05


def test_arod_triplets_order_the_norms(tmp_path):
    """AROD's directional triplet loss on on-the-fly triplets (AROD list.txt), on the mobile
    encoder with its ImageNet backbone frozen: ‖Φ‖ orders the held-out images like S."""
    root = make_arod(tmp_path / "arod", n=300, seed=13, size=64).root
    _, _, _, figures, _ = learn(
        "framescore-mobile", root, tmp_path / "run", "size=64", "pretrained=true",
        "freeze=[\"backbone\"]", "epochs=3", "steps_per_epoch=50", "batch_size=8",
        "lr=1e-3", "test_fraction=0.2")
    rho = figures["spearman"].ours
    pair = figures["pair_accuracy"].ours
    print(f"arod recipe (mobile): rho {rho:.3f}, pair accuracy {pair:.1f} %")
    assert rho >= 0.5  # 60 held-out images: chance sd ≈ 0.13
    assert pair >= 65.0


# ---------------------------------------------------------------------------------------------
# ImageNet-sized families, from scratch: minutes on two cores


@pytest.mark.slow
def test_kong_reg_rank_att_learns_the_aadb_score(tmp_path):
    """Kong's Reg + Rank (cross- and within-rater pairs) + attributes on AADB: Spearman ρ on
    TestNew."""
    root = make_aadb(tmp_path / "aadb", n=320, seed=14, size=64).root
    _, _, _, figures, _ = learn(
        "kong-reg-rank-att", root, tmp_path / "run", "size=64", "epochs=4",
        "steps_per_epoch=50", "batch_size=8", "lr=1e-4", "flip=false")
    rho = figures["spearman"].ours
    print(f"kong-reg-rank-att: TestNew rho {rho:.3f}")
    assert rho >= 0.35  # 48 TestNew images: chance sd ≈ 0.15


@pytest.mark.slow
def test_jin_wmse_learns_the_mean_vote(tmp_path):
    """Jin's weighted MSE on AVA (RS/ED test sets held out): the predicted means follow the
    votes."""
    root = make_ava(tmp_path / "ava", n=480, seed=15, size=32).root
    _, _, _, figures, _ = learn(
        "jin-wmse", root, tmp_path / "run", "size=32", "epochs=4", "steps_per_epoch=100",
        "batch_size=8", "lr=1e-4", "rs_size=60", "ed_per_bin=20")
    print("jin-wmse:", {k: f.ours for k, f in figures.items()})
    assert figures["mse_rs"].ours < 2.0


@pytest.mark.slow
def test_arod_resnet50_learns_from_scratch(tmp_path):
    """The paper's AROD encoder (ResNet-50) on AROD list.txt triplets, from scratch."""
    root = make_arod(tmp_path / "arod", n=300, seed=16, size=32).root
    _, _, _, figures, _ = learn(
        "arod-resnet50", root, tmp_path / "run", "size=32", "epochs=4", "steps_per_epoch=75",
        "batch_size=4", "lr=1e-3", "test_fraction=0.2", "variant=\"bounded\"")
    rho = figures["spearman"].ours
    print(f"arod-resnet50: rho {rho:.3f}")
    assert rho >= 0.4
