"""Learnability: a few hundred CPU steps of each family's recipe must beat chance on held-out
fixture images.

The fixtures (``datasets_fixtures``) are real photographs degraded by blur and noise in
proportion to how bad their score is, written in each dataset's own format, so the score is a
known function of the image. Each test runs a family's real recipe (dataset reader, split,
sampler, views, loss) through the real training loop, then the recipe's own test protocol on
the images it held out. A wrong loss sign, a sampler that pairs the wrong images or labels them
the wrong way round, or a split that leaks, fails these tests (checked by flipping each).

To stay fast on two shared cores: one torch thread (small nets on a busy machine run several
times faster than with two), tiny inputs (``size``), Adam instead of the papers' SGD.

* RAPID, the relative Siamese net and AROD's triplets run on registered models: ``rapid-scnn``
  and ``relative-siamese`` from scratch at 32 px, and ``framescore-mobile`` (AROD's aesthetic
  space on EfficientNet-Lite0) with its ImageNet backbone frozen.
* Kong's and Jin's networks are ImageNet-sized (AlexNet 57 M, VGG16 134 M parameters), and the
  papers fine-tune them from ImageNet weights, which cannot be fetched here. Their recipes
  therefore train each family's own architecture built through its registry entry at a reduced
  ``width`` (every conv, pool and fc layer kept, channels and fc units scaled down), from
  scratch: ``kong-reg-rank`` on AlexNet at width 1/8 (1.1 M parameters) at 64 px (AlexNet's
  smallest input is 63 px), ``jin-wmse`` on VGG16 at width 1/16 (0.5 M) at 32 px.
* Jin's sample weights (rare scores weigh more) are checked by training: on a fixture where most
  images sit near the mean score, ``jin-wmse`` and ``jin-mse`` are fine-tuned alike from the
  balanced run's weights (trunk frozen, as the paper fine-tunes both from one ImageNet VGG16)
  and the weighted one must predict the rare extremes clearly better (weights inverted or
  dropped fail it).
* ``kong-reg-rank-att`` on its full-size AlexNet is the ``slow`` test.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from framescore.models.registry import get
from framescore.models.spec import ModelInfo
from framescore.train import loop, metrics
from framescore.train.config import resolve
from framescore.train.recipes import recipe_class
from tests.datasets_fixtures import imbalanced_targets, make_aadb, make_arod, make_ava

KONG_WIDTH = 1 / 8  # AlexNet at 1/8 width: 1.1 M parameters
JIN_WIDTH = 1 / 16  # VGG16 at 1/16 width: 0.5 M parameters
FAST = ["workers=0", "early_stop=0", "lr_schedule=\"none\"", "weight_decay=0.0",
        "optimizer=\"adam\"", "test_at_end=false", "eval_batch_size=64"]


# training runs: minutes each on two shared cores, so they run in CI's second step
# (`pytest -m slow`, see .ci/run), not in README's test command
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


def reduced(name: str, width: float) -> ModelInfo:
    """``name``'s registry entry with its network built at ``width`` (a channel multiplier: the
    same layers, fewer channels and fc units)."""
    info = get(name)
    return replace(info, build=partial(info.build, width=width))


def learn(name: str, root: Path, run: Path, *overrides: str, info: ModelInfo | None = None,
          recipe: str | None = None):
    """Train ``name`` on ``root`` with the fast settings (its recipe ``recipe``, default its
    own); returns (recipe, model, ctx, figures by key, fit result)."""
    base, cls = recipe_class(name, recipe)
    info = info or base
    config = resolve(cls.options(info), overrides=[*FAST, *overrides])
    recipe = cls(name, info, config, root)
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
        "lr=1e-3", "test_fraction=0.2", recipe="arod")
    rho = figures["spearman"].ours
    pair = figures["pair_accuracy"].ours
    print(f"arod recipe (mobile): rho {rho:.3f}, pair accuracy {pair:.1f} %")
    assert rho >= 0.5  # 60 held-out images: chance sd ≈ 0.13
    assert pair >= 65.0


def test_kong_recipe_learns_the_aadb_score(tmp_path):
    """Kong's Reg + Rank recipe on AADB (cross-rater pairs by the mean score, within-rater pairs
    from the rater CSV, Euclidean + rank hinge) on AlexNet at 1/8 width, 64 px: Spearman ρ on
    TestNew."""
    root = make_aadb(tmp_path / "aadb", n=640, seed=24, size=64).root
    recipe, model, _, figures, _ = learn(
        "kong-reg-rank", root, tmp_path / "run", "size=64", "epochs=6", "steps_per_epoch=100",
        "batch_size=8", "lr=3e-4", info=reduced("kong-reg-rank", KONG_WIDTH))
    assert type(model.trunk).__name__ == "AlexNetTrunk" and model.trunk.width == KONG_WIDTH
    assert any(r.ratings for r in recipe.train_records)  # within-rater pairs were drawn
    rho = figures["spearman"].ours
    print(f"kong recipe (AlexNet x{KONG_WIDTH:g}): TestNew rho {rho:.3f} "
          f"({figures['spearman'].note})")
    assert rho >= 0.4  # 96 TestNew images: chance sd ≈ 0.1
    assert figures["spearman"].paper == 0.6515


@pytest.fixture(scope="module")
def jin_balanced(tmp_path_factory):
    """``jin-wmse`` (VGG16 at 1/16 width, 32 px, from scratch) trained on a balanced AVA
    fixture: (recipe, model, ctx, figures, its weights file)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the autouse one
    try:
        tmp = tmp_path_factory.mktemp("jin")
        root = make_ava(tmp / "ava", n=1600, seed=15, size=32).root
        recipe, model, ctx, figures, _ = learn(
            "jin-wmse", root, tmp / "run", "size=32", "epochs=8", "steps_per_epoch=100",
            "batch_size=16", "lr=5e-4", "rs_size=150", "ed_per_bin=40",
            info=reduced("jin-wmse", JIN_WIDTH))
        weights = tmp / "jin-wmse.pt"
        torch.save(model.state_dict(), weights)
    finally:
        torch.set_num_threads(before)
    return recipe, model, ctx, figures, weights


def test_jin_recipe_learns_the_mean_vote(jin_balanced):
    """Jin's weighted-MSE recipe on AVA (RS-test and ED-test held out, bin weights) on VGG16 at
    1/16 width: the RS-test means are predicted far better than by a constant."""
    recipe, model, ctx, figures, _ = jin_balanced
    assert type(model.trunk).__name__ == "VGG16Trunk" and model.trunk.width == JIN_WIDTH
    truth = np.array([r.score for r in recipe.rs_records])
    idx, out = recipe.predict(model, recipe.rs_records, ctx)
    rho = metrics.spearman(out["score"], truth[idx])
    mse = figures["mse_rs"].ours
    low, high = figures["range"].ours
    print(f"jin recipe (VGG16 x{JIN_WIDTH:g}): RS-test MSE {mse:.3f} (variance "
          f"{truth.var():.3f}), rho {rho:.3f}, range {low:.2f}..{high:.2f}")
    assert mse < 0.5 * truth.var()  # a constant prediction scores the variance
    assert rho >= 0.6  # 150 RS-test images: chance sd ≈ 0.08
    assert high - low > 2.0


def test_jin_sample_weights_spread_the_rare_extremes(tmp_path, jin_balanced):
    """Jin's point: on AVA's crowded middle, plain MSE predicts the rare very bad and very good
    images towards the mean; the weights 1 / (bin frequency) undo that. On a fixture where 88 %
    of the means sit near 5.5, ``jin-wmse`` and ``jin-mse`` are fine-tuned alike from the
    balanced run's weights (trunk frozen: the comparison is the loss's, not two from-scratch
    runs' luck); on the held-out ED-test extremes (< 4, > 7) the weighted one must err far less
    and spread its predictions far more. Inverting or dropping the weights fails this."""
    n, seed = 1000, 31
    targets = imbalanced_targets(n, seed=seed, extreme_fraction=0.12)
    root = make_ava(tmp_path / "ava", n=n, seed=seed, size=32, targets=targets).root
    init = jin_balanced[-1]
    found = {}
    for name in ("jin-wmse", "jin-mse"):
        recipe, model, ctx, figures, _ = learn(
            name, root, tmp_path / name, "size=32", "epochs=3", "steps_per_epoch=100",
            "batch_size=16", "lr=1e-3", "rs_size=100", "ed_per_bin=25",
            f"init_weights=\"{init}\"", "freeze=[\"trunk\"]", info=reduced(name, JIN_WIDTH))
        records = recipe.ed_records
        train = np.array([r.score for r in recipe.train_records])
        assert ((train < 4) | (train > 7)).mean() < 0.15  # the extremes are rare
        idx, out = recipe.predict(model, records, ctx)
        truth = np.array([records[i].score for i in idx])
        pred = out["score"]
        low, high = truth < 4, truth > 7
        assert low.sum() >= 20 and high.sum() >= 20
        found[name] = {"mse": float(((pred - truth)[low | high] ** 2).mean()),
                       "gap": float(pred[high].mean() - pred[low].mean()),
                       "true_gap": float(truth[high].mean() - truth[low].mean()),
                       "rs": figures["mse_rs"].ours}
    w, u = found["jin-wmse"], found["jin-mse"]
    print(f"jin weights: extremes MSE {w['mse']:.3f} weighted vs {u['mse']:.3f} plain; "
          f"high - low prediction gap {w['gap']:.2f} vs {u['gap']:.2f} (truth "
          f"{w['true_gap']:.2f}); RS-test MSE {w['rs']:.3f} vs {u['rs']:.3f}")
    assert w["mse"] < 0.6 * u["mse"]
    assert w["gap"] > u["gap"] + 0.75


# ---------------------------------------------------------------------------------------------
# an ImageNet-sized network from scratch: minutes on two cores


@pytest.mark.slow
def test_kong_reg_rank_att_on_alexnet_learns_the_aadb_score(tmp_path):
    """``kong-reg-rank-att`` on its real AlexNet, from scratch at 64 px, with the attribute
    branches: Spearman ρ on TestNew (about four minutes on two busy cores)."""
    root = make_aadb(tmp_path / "aadb", n=320, seed=14, size=64).root
    _, _, _, figures, _ = learn(
        "kong-reg-rank-att", root, tmp_path / "run", "size=64", "epochs=4",
        "steps_per_epoch=50", "batch_size=8", "lr=1e-4", "flip=false")
    rho = figures["spearman"].ours
    print(f"kong-reg-rank-att: TestNew rho {rho:.3f}")
    assert rho >= 0.35  # 48 TestNew images: chance sd ≈ 0.15
