"""The evaluation metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framescore.train import metrics as M


def test_binary_accuracy() -> None:
    scores = [0.9, 0.2, 0.6, 0.4, 0.5]
    labels = [1, 0, 0, 1, 1]
    # predictions ≥ 0.5: 1, 0, 1, 0, 1 → right, right, wrong, wrong, right
    assert M.binary_accuracy(scores, labels) == pytest.approx(0.6)
    # regression scores on the rating scale, threshold 5
    assert M.binary_accuracy([6.1, 4.9, 5.0], [1, 0, 0], threshold=5.0) == pytest.approx(2 / 3)


def test_best_threshold() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    labels = np.array([0, 0, 1, 1])
    th = M.best_threshold(scores, labels)
    assert 2.0 < th <= 3.0
    assert M.binary_accuracy(scores, labels, th) == 1.0


def test_pair_accuracy() -> None:
    assert M.pair_accuracy([2.0, -1.0, 0.5, 0.0], [1, -1, -1, 1]) == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError):
        M.pair_accuracy([1.0], [0])


def test_pair_ranking_accuracy() -> None:
    s1, s2 = [0.9, 0.1, 0.5, 0.3], [0.2, 0.4, 0.5, 0.9]
    t1, t2 = [6.0, 3.0, 5.0, 4.0], [5.0, 4.0, 4.0, 4.0]
    # pair 4 is a tie (left out); pairs 1, 2 right, pair 3 predicted equal → ½ → 2.5/3
    assert M.pair_ranking_accuracy(s1, s2, t1, t2) == pytest.approx(2.5 / 3)
    with pytest.raises(ValueError, match="tie"):
        M.pair_ranking_accuracy([1.0], [2.0], [3.0], [3.0])


def test_spearman_and_pearson() -> None:
    pred = [1.0, 2.0, 3.0, 4.0]
    # ranks 1 2 4 3: ρ = 1 − 6·(0+0+1+1)/(4·15) = 0.8
    assert M.spearman(pred, [10.0, 20.0, 40.0, 30.0]) == pytest.approx(0.8)
    # r of (1,2,3) vs (1,2,4): Σdxdy = 3, Σdx² = 2, Σdy² = 14/3 → 3 / sqrt(28/3)
    assert M.pearson([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]) == pytest.approx(0.9819805, abs=1e-6)
    assert M.pearson(pred, [2 * p + 1 for p in pred]) == pytest.approx(1.0)
    assert math.isnan(M.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(M.pearson([1.0, 2.0], [3.0, 3.0]))


def test_mse_rmser_range() -> None:
    assert M.mse([5.0, 6.0], [4.0, 6.5]) == pytest.approx((1 + 0.25) / 2)
    # Jin's Eq. 5: sqrt(mean (σ − σ̂)²) / mean σ̂. Errors −0.3, 0.1, 3.0 → squares 0.09,
    # 0.01, 9.0 → mean 9.1 / 3; predicted stds 1.2, 1.1, 3.0 → mean 5.3 / 3
    assert M.rmser([1.2, 1.1, 3.0], [1.5, 1.0, 0.0]) == pytest.approx(
        math.sqrt(9.1 / 3) / (5.3 / 3))
    # not the RMS of per-image relative errors (that would be sqrt((0.2² + 0.1²) / 2) here)
    assert M.rmser([1.2, 1.1], [1.5, 1.0]) == pytest.approx(math.sqrt(0.10 / 2) / 1.15)
    assert M.rmser([1.2, 1.1], [1.5, 1.0]) != pytest.approx(math.sqrt(0.05 / 2))
    assert M.score_range([3.54, 6.46, 5.0]) == (3.54, 6.46)
    with pytest.raises(ValueError):
        M.rmser([0.0], [1.0])
    with pytest.raises(ValueError, match="lengths differ"):
        M.mse([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no values"):
        M.score_range([])


def test_average_precision() -> None:
    scores = [0.9, 0.8, 0.7, 0.6]
    labels = [1, 0, 1, 0]
    # positives at ranks 1 and 3: (1/1 + 2/3) / 2
    assert M.average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(M.average_precision(scores, [0, 0, 0, 0]))


def test_mean_average_precision_skips_empty_classes() -> None:
    scores = np.array([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.7, 0.2, 0.1], [0.6, 0.9, 0.0]])
    labels = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0]])
    ap0 = (1 + 2 / 3) / 2
    ap1 = (1 + 2 / 3) / 2     # order 3, 1, 2, 0: positives at ranks 1 and 3
    assert M.mean_average_precision(scores, labels) == pytest.approx((ap0 + ap1) / 2)
    with pytest.raises(ValueError):
        M.mean_average_precision(scores[:, 0], labels[:, 0])
