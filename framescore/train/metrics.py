"""The papers' evaluation metrics, on plain arrays (numpy or anything ``np.asarray`` takes).

Binary accuracy (RAPID, AROD, Kong on AVA), pair-ranking accuracy (relative aesthetics),
Spearman ρ and Pearson r (Kong), MSE, RMSER of the predicted std and the predicted score
range (Jin), mean average precision over the 14 AVA styles (RAPID's style column).
Every function returns plain Python floats.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "average_precision",
    "best_threshold",
    "binary_accuracy",
    "mean_average_precision",
    "mse",
    "pair_accuracy",
    "pair_ranking_accuracy",
    "pearson",
    "rmser",
    "score_range",
    "spearman",
]


def _vec(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name}: no values")
    return arr


def _pair(a: object, b: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _vec(a, name), _vec(b, name)
    if x.shape != y.shape:
        raise ValueError(f"{name}: lengths differ ({x.size} vs {y.size})")
    return x, y


def binary_accuracy(scores: object, labels: object, threshold: float = 0.5) -> float:
    """Fraction of images whose ``score ≥ threshold`` agrees with their 0/1 ``labels``.

    For RAPID the score is P(high) and the threshold 0.5; for a regression model the
    threshold is chosen on validation data (:func:`best_threshold`), e.g. 5 on AVA means.
    """
    s, y = _pair(scores, labels, "binary_accuracy")
    return float(np.mean((s >= threshold) == (y > 0.5)))


def best_threshold(scores: object, labels: object) -> float:
    """The threshold maximizing :func:`binary_accuracy` (Kong: chosen on validation).

    Candidates are the midpoints between consecutive distinct scores plus both ends; ties
    go to the smallest such threshold.
    """
    s, y = _pair(scores, labels, "best_threshold")
    u = np.unique(s)
    candidates = np.concatenate([[u[0]], (u[:-1] + u[1:]) / 2, [u[-1] + 1.0]])
    pos = y > 0.5
    accs = [np.mean((s >= c) == pos) for c in candidates]
    return float(candidates[int(np.argmax(accs))])


def pair_accuracy(d: object, y: object) -> float:
    """Fraction of pairs with ``sign(d) == y`` for the Siamese output d(I1, I2), y = ±1.

    A prediction of exactly 0 counts as half right (no order given).
    """
    dd, yy = _pair(d, y, "pair_accuracy")
    if not np.all(np.abs(yy) == 1):
        raise ValueError("pair_accuracy: y must be +1 or -1")
    return float(np.mean(np.where(dd == 0, 0.5, (np.sign(dd) == yy).astype(np.float64))))


def pair_ranking_accuracy(score_1: object, score_2: object, target_1: object,
                          target_2: object) -> float:
    """Fraction of pairs the predicted scores order like the targets (mean ratings).

    Pairs with equal targets are left out; equal predictions count as half right.
    """
    s1, s2 = _pair(score_1, score_2, "pair_ranking_accuracy")
    t1, t2 = _pair(target_1, target_2, "pair_ranking_accuracy")
    if s1.shape != t1.shape:
        raise ValueError("pair_ranking_accuracy: as many targets as scores expected")
    truth = np.sign(t1 - t2)
    keep = truth != 0
    if not keep.any():
        raise ValueError("pair_ranking_accuracy: every pair is a tie")
    return pair_accuracy((s1 - s2)[keep], truth[keep])


def spearman(pred: object, target: object) -> float:
    """Spearman's rank correlation ρ (ties get average ranks); NaN if either is constant."""
    p, t = _pair(pred, target, "spearman")
    if p.size < 2 or np.all(p == p[0]) or np.all(t == t[0]):
        return float("nan")
    return float(stats.spearmanr(p, t).statistic)


def pearson(pred: object, target: object) -> float:
    """Pearson's linear correlation r; NaN if either is constant."""
    p, t = _pair(pred, target, "pearson")
    if p.size < 2 or np.all(p == p[0]) or np.all(t == t[0]):
        return float("nan")
    return float(stats.pearsonr(p, t).statistic)


def mse(pred: object, target: object) -> float:
    """Mean squared error ``mean (ŷ − y)²`` (Jin et al. report it on mean ratings)."""
    p, t = _pair(pred, target, "mse")
    return float(np.mean((p - t) ** 2))


def rmser(pred_std: object, true_std: object) -> float:
    """Jin et al.'s RMSER (their Eq. 5) of the predicted rating std, as a fraction:
    ``sqrt(mean_i (σ_i − σ̂_i)²) / mean_i σ̂_i`` — the root-mean-square error of the std
    divided by the mean of the *predicted* std ``σ̂`` (not an RMS of per-image relative
    errors). Multiply by 100 for the paper's percentages.
    """
    p, t = _pair(pred_std, true_std, "rmser")
    mean_pred = float(np.mean(p))
    if mean_pred <= 0:
        raise ValueError("rmser: the mean predicted std is 0")
    return float(np.sqrt(np.mean((t - p) ** 2)) / mean_pred)


def score_range(pred: object) -> tuple[float, float]:
    """``(min, max)`` of the predictions (Jin: 3.54–6.46 unweighted vs 2.06–7.53 weighted)."""
    p = _vec(pred, "score_range")
    return float(p.min()), float(p.max())


def average_precision(scores: object, labels: object) -> float:
    """Non-interpolated average precision of one class.

    Images sorted by descending score (stable for ties); AP = mean over the positives of
    the precision at each positive's rank. NaN when the class has no positive.
    """
    s, y = _pair(scores, labels, "average_precision")
    pos = y > 0.5
    if not pos.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    hits = pos[order]
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision[hits].mean())


def mean_average_precision(scores: object, labels: object) -> float:
    """Mean of :func:`average_precision` over the classes (columns) that have a positive.

    ``scores``/``labels`` (N, C): e.g. the style column's 14 probabilities against AVA's
    ``test.multilab`` (2,809 × 14 binary).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"mean_average_precision: (N, C) scores and labels expected, got "
                         f"{s.shape} and {y.shape}")
    aps = [average_precision(s[:, c], y[:, c]) for c in range(s.shape[1])]
    aps = [a for a in aps if not np.isnan(a)]
    if not aps:
        raise ValueError("mean_average_precision: no class has a positive")
    return float(np.mean(aps))
