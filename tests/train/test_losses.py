"""Each paper's loss against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from framescore.train import losses as L


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_rapid_cross_entropy_matches_hand_value() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 0.0]])
    # softmax row 0 = (1/4, 3/4), label 1 → −log 3/4; row 1 label 0 → −log(e²/(e²+1))
    expected = (-math.log(0.75) - math.log(math.exp(2) / (math.exp(2) + 1))) / 2
    got = L.rapid_cross_entropy(logits, torch.tensor([1, 0]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_relative_hinge() -> None:
    d = t(4.0, 1.0, -2.0, 0.5)
    y = t(1, 1, -1, -1)
    # max(0, 3 − y·d): 0, 2, 1, 3.5 → mean 1.625
    assert L.relative_hinge_loss(d, y).item() == pytest.approx(1.625)
    assert L.relative_hinge_loss(d, y, delta=1.0).item() == pytest.approx((0 + 0 + 0 + 1.5) / 4)
    # weighted: (1·0 + 1·2 + 2·1 + 0·3.5) / (1 + 1 + 2 + 0)
    assert L.relative_hinge_loss(d, y, weight=t(1, 1, 2, 0)).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="\\+1 or -1"):
        L.relative_hinge_loss(d, t(1, 0, 1, 1))


def test_relative_hinge_gradient_only_on_violations() -> None:
    d = t(4.0, 1.0).requires_grad_()
    L.relative_hinge_loss(d, t(1, 1)).backward()
    assert d.grad.tolist() == pytest.approx([0.0, -0.5])


def test_euclidean_loss_is_caffe_convention() -> None:
    # Σ (ŷ − y)² / 2N = (0.04 + 0.09) / 4
    assert L.euclidean_loss(t(0.5, 0.2), t(0.3, 0.5)).item() == pytest.approx(0.0325)


def test_rank_hinge_hand_values() -> None:
    """Kong's Eq. 1: Σ max(0, α − δ(yi ≥ yj)(ŷi − ŷj)) / 2N over the N pairs."""
    pi, pj = t(0.60, 0.40, 0.50), t(0.50, 0.45, 0.70)
    yi, yj = t(0.70, 0.30, 0.20), t(0.40, 0.60, 0.80)
    # sign: +1, −1, −1; α − s(ŷi−ŷj): 0.02−0.10, 0.02−0.05, 0.02−0.20 → all ≤ 0 → loss 0
    assert L.rank_hinge_loss(pi, pj, yi, yj, alpha=0.02).item() == pytest.approx(0.0)
    # α = 0.15: 0.05, 0.10, 0 → sum 0.15 over 2·3
    assert L.rank_hinge_loss(pi, pj, yi, yj, alpha=0.15).item() == pytest.approx(0.15 / 6)
    # wrong order costs α + gap: ŷi−ŷj = 0.1 but yi < yj → (0.02 + 0.1) / 2
    assert L.rank_hinge_loss(t(0.6), t(0.5), t(0.1), t(0.9)).item() == pytest.approx(0.06)


def test_rank_hinge_ties_count_as_written() -> None:
    pi, pj = t(0.5, 0.6), t(0.5, 0.5)
    yi, yj = t(0.3, 0.7), t(0.3, 0.4)
    # a tie has δ(yi ≥ yj) = +1: max(0, 0.02 − 0) = 0.02; second pair 0 → 0.02 / (2·2)
    assert L.rank_hinge_loss(pi, pj, yi, yj).item() == pytest.approx(0.005)
    # a tie with ŷi < ŷj is pushed the +1 way: max(0, 0.02 + 0.1) / 2
    tie = L.rank_hinge_loss(t(0.4).requires_grad_(), t(0.5), t(1.0), t(1.0))
    assert tie.item() == pytest.approx(0.06)
    tie.backward()


def test_reg_rank_combines_terms() -> None:
    pi, pj, yi, yj = t(0.6), t(0.5), t(0.1), t(0.9)
    reg = ((0.6 - 0.1) ** 2 + (0.5 - 0.9) ** 2) / 4
    rank = 0.12 / 2
    assert L.reg_rank_loss(pi, pj, yi, yj, omega_r=1.0).item() == pytest.approx(reg + rank)
    assert L.reg_rank_loss(pi, pj, yi, yj, alpha=0.15, omega_r=0.1).item() == \
        pytest.approx(reg + 0.1 * (0.15 + 0.1) / 2)


def test_attribute_loss_and_mask() -> None:
    pred = torch.tensor([[0.5, -0.5], [0.0, 1.0]])
    target = torch.tensor([[1.0, -1.0], [0.0, 0.0]])
    # (0.25 + 0.25 + 0 + 1) / (2·2)
    assert L.attribute_loss(pred, target).item() == pytest.approx(0.375)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert L.attribute_loss(pred, target, mask).item() == pytest.approx(0.125)


def test_kong_loss_compositions() -> None:
    si, yi, sj, yj = t(0.6), t(0.1), t(0.5), t(0.9)
    assert L.kong_loss(si, yi).item() == pytest.approx(0.25 / 2)
    full = L.kong_loss(si, yi, sj, yj, attr_i=torch.tensor([[0.5, 0.0]]),
                       attr_target_i=torch.tensor([[1.0, 0.0]]), omega_a=0.1)
    reg_rank = ((0.5 ** 2 + 0.4 ** 2) / 4) + 0.12 / 2
    assert full.item() == pytest.approx(reg_rank + 0.1 * 0.25 / 2)
    with pytest.raises(ValueError):
        L.kong_loss(si, yi, sj)
    with pytest.raises(ValueError):
        L.kong_loss(si, yi, attr_i=torch.zeros(1, 2))


def _triplet() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    phi_a = torch.tensor([[3.0, 4.0]])    # ‖a‖ = 5
    phi_p = torch.tensor([[3.0, 3.0]])    # ‖a − p‖² = 1
    phi_n = torch.tensor([[0.0, 2.0]])    # ‖a − n‖² = 9 + 4 = 13, ‖n‖ = 2
    return phi_a, phi_p, phi_n


def test_directional_triplet_paper_formula() -> None:
    a, p, n = _triplet()
    # triplet: [m + 1 − 13]₊ = 0 for m = 1; = 3 for m = 15
    # n better (S(n) > S(a)): +[‖a‖ − ‖n‖ + m̃]₊ = 5 − 2 + 1 = 4
    better = L.directional_triplet_loss(a, p, n, t(0.2), t(0.8), margin=15.0, norm_margin=1.0)
    assert better.item() == pytest.approx(3.0 + 4.0)
    # n worse: −[5 − 2 + 1]₊ = −4 (the literal formula is unbounded below)
    worse = L.directional_triplet_loss(a, p, n, t(0.8), t(0.2), margin=15.0, norm_margin=1.0)
    assert worse.item() == pytest.approx(3.0 - 4.0)
    # equal scores: no direction term
    tie = L.directional_triplet_loss(a, p, n, t(0.5), t(0.5), margin=15.0)
    assert tie.item() == pytest.approx(3.0)


def test_directional_triplet_bounded_and_release() -> None:
    a, p, n = _triplet()
    # bounded, n worse: [m̃ − (−1)(‖n‖ − ‖a‖)]₊ = [1 + (2 − 5)]₊ = 0
    worse = L.directional_triplet_terms(a, p, n, t(0.8), t(0.2), variant="bounded")
    assert worse[1].item() == pytest.approx(0.0)
    # bounded, n better: [1 − (2 − 5)]₊ = 4 (same as the paper)
    better = L.directional_triplet_terms(a, p, n, t(0.2), t(0.8), variant="bounded")
    assert better[1].item() == pytest.approx(4.0)
    # release: unit vectors ua = (.6,.8), up = (1,1)/√2, un = (0,1);
    # ‖ua − up‖² = 2 − 2·1.4/√2, ‖ua − un‖² = 2 − 2·0.8 = 0.4
    trip = 0.5 + (2 - 1.4 * math.sqrt(2)) - 0.4
    # direction, S(a) > S(n): mean_k [ (a − n)_k + 0.2 ]₊ = mean(3.2, 2.2) = 2.7
    got = L.directional_triplet_terms(a, p, n, t(0.8), t(0.2), margin=0.5, norm_margin=0.2,
                                      variant="release")
    assert got[0].item() == pytest.approx(trip, abs=1e-6)
    assert got[1].item() == pytest.approx(2.7)
    with pytest.raises(ValueError, match="variant"):
        L.directional_triplet_loss(a, p, n, t(0.1), t(0.2), variant="nope")  # type: ignore[arg-type]


def test_directional_triplet_gradient_pushes_better_norm_up() -> None:
    a, p, n = _triplet()
    n = n.clone().requires_grad_()
    L.directional_triplet_loss(a, p, n, t(0.2), t(0.9), margin=0.0).backward()
    # descending the gradient grows ‖Φn‖ (n is the better image)
    assert float((n.grad * n.detach()).sum()) < 0


def test_arod_presets() -> None:
    assert L.AROD_PRESETS["release"].margin == 0.5
    assert L.AROD_PRESETS["release"].norm_margin == 0.2
    assert L.AROD_PRESETS["release"].embedding_dim == 1024
    assert L.AROD_PRESETS["paper"].embedding_dim == 1000


def test_weighted_mse() -> None:
    pred, target = t(5.0, 6.0, 3.0), t(5.5, 4.0, 3.0)
    # unweighted: (0.25 + 4 + 0) / 3
    assert L.weighted_mse_loss(pred, target).item() == pytest.approx(4.25 / 3)
    # weights 1, 3, 4: (0.25 + 12 + 0) / 8
    assert L.weighted_mse_loss(pred, target, t(1, 3, 4)).item() == pytest.approx(12.25 / 8)


def test_weights_normalized_over_the_training_set_not_the_batch() -> None:
    """Jin's WMSE divides by Σw over the training set: batch losses with dataset-normalized
    weights (mean 1) average to the whole set's WMSE; per-batch normalization does not."""
    pred, target = t(5.0, 6.0, 3.0, 7.0), t(5.5, 4.0, 3.0, 8.0)  # squared errors .25 4 0 1
    w = t(0.5, 0.5, 1.5, 1.5)  # mean 1 over the "training set" of four
    whole = L.weighted_mse_loss(pred, target, w).item()
    assert whole == pytest.approx((0.125 + 2 + 0 + 1.5) / 4)
    halves = [(slice(0, 2)), (slice(2, 4))]
    dataset = [L.weighted_mse_loss(pred[s], target[s], w[s], per_batch=False).item()
               for s in halves]
    assert dataset == pytest.approx([(0.125 + 2) / 2, (0 + 1.5) / 2])
    assert sum(dataset) / 2 == pytest.approx(whole)
    per_batch = [L.weighted_mse_loss(pred[s], target[s], w[s]).item() for s in halves]
    assert sum(per_batch) / 2 == pytest.approx((2.125 / 1 + 1.5 / 3) / 2)
    assert sum(per_batch) / 2 != pytest.approx(whole)
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    q = torch.tensor([[0.25, 0.75], [0.0, 1.0]])  # χ² 1/15 and 1
    assert L.weighted_chi2_loss(p, q, t(3, 1), per_batch=False).item() == pytest.approx(
        (3 / 15 + 1) / 2)


def test_chi2_and_weighted_chi2() -> None:
    p = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.0, 1.0]])
    # row 0: ½(0.0625/0.75 + 0.0625/1.25) = ½(1/12 + 1/20) = 1/15; row 1: ½(1 + 1) = 1
    chi = L.chi2_distance(p, q)
    assert chi.tolist() == pytest.approx([1 / 15, 1.0])
    assert L.weighted_chi2_loss(p, q).item() == pytest.approx((1 / 15 + 1) / 2)
    assert L.weighted_chi2_loss(p, q, t(3, 1)).item() == pytest.approx((3 / 15 + 1) / 4)
    assert L.chi2_distance(q, q).tolist() == pytest.approx([0.0, 0.0])


def test_shape_mismatch_is_value_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        L.weighted_mse_loss(t(1, 2), t(1, 2, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        L.chi2_distance(torch.zeros(2, 10), torch.zeros(2, 9))
