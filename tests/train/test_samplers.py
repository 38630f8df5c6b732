"""Sampler properties: split rules, pair constraints, triplet ratios, weights, fixed-seed sets."""

from __future__ import annotations

import logging
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from framescore.errors import DataError
from framescore.train.data import Record, read_aadb, read_ava
from framescore.train.samplers import (
    TripletSampler,
    binary_label,
    complement,
    cross_rater_pairs,
    delta_split,
    ed_test,
    gap_biased_pairs,
    jin_weights,
    relative_pairs,
    relative_protocol,
    rs_test,
    score_bins,
    within_rater_pairs,
)
from tests.datasets_fixtures import make_aadb, make_ava


def synthetic(n: int, seed: int = 0, n_tags: int = 4) -> list[Record]:
    """AVA-like records: means 2..8.5, variances 1..4, tags 0..n_tags (0 = untagged)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        tag = int(rng.integers(0, n_tags + 1))
        out.append(Record(path=Path(f"{k}.jpg"), score=float(rng.uniform(2, 8.5)), id=str(k),
                          variance=float(rng.uniform(1, 4)), tags=(tag,) if tag else ()))
    return out


# ---------------------------------------------------------------------------------------------
# δ-split


@pytest.mark.parametrize(("mean", "delta", "label"), [
    (5.0, 0, 1), (4.999, 0, 0), (7.2, 0, 1), (6.0, 1, 1), (4.0, 1, 0), (5.99, 1, None),
    (4.01, 1, None), (5.0, 1, None)])
def test_binary_label(mean, delta, label):
    assert binary_label(mean, delta) == label


def test_delta_split_on_ava_fixture(tmp_path):
    fx = make_ava(tmp_path, n=60, seed=2)
    rs = read_ava(fx.root)
    test_ids = set(fx.meta["test_ids"])
    for delta in (0.0, 1.0):
        train, test = delta_split(rs, test_ids, delta)
        assert {r.id for r in test} <= test_ids and not {r.id for r in train} & test_ids
        kept = train + test
        assert all(r.label == int(r.score >= 5 + delta) for r in kept)
        assert not any(5 - delta < r.score < 5 + delta for r in kept)
        dropped = [r for r in rs if 5 - delta < r.score < 5 + delta]
        assert len(kept) + len(dropped) == len(rs)
    assert len(dropped) > 0  # δ = 1 dropped something on this fixture
    with pytest.raises(DataError):
        delta_split(rs, test_ids, -1)


# ---------------------------------------------------------------------------------------------
# relative-aesthetics pairs


def _check_relative(pairs: np.ndarray, records: list[Record]) -> None:
    for i, j, y in pairs.tolist():
        a, b = records[i], records[j]
        assert abs(a.score - b.score) >= 1.0 - 1e-12
        assert a.variance < 2.6 and b.variance < 2.6
        assert a.tags and b.tags and a.tags[0] == b.tags[0]
        assert y == (1 if a.score > b.score else -1)


def test_relative_pairs_unique_constraints():
    records = synthetic(3000, seed=1)
    pairs = relative_pairs(records, 400, seed=7)
    assert pairs.shape == (400, 3) and pairs.dtype == np.int64
    _check_relative(pairs, records)
    used = pairs[:, :2].ravel()
    assert len(np.unique(used)) == len(used)  # all-unique images
    assert 0.35 < (pairs[:, 2] == 1).mean() < 0.65  # both orientations occur
    assert np.array_equal(pairs, relative_pairs(records, 400, seed=7))
    assert not np.array_equal(pairs, relative_pairs(records, 400, seed=8))


def test_relative_pairs_with_repeats_and_exclusions():
    records = synthetic(500, seed=2)
    banned = set(range(0, 500, 3))
    pairs = relative_pairs(records, 800, unique=False, exclude=banned, seed=1)
    assert len(pairs) == 800
    _check_relative(pairs, records)
    keys = {(min(i, j), max(i, j)) for i, j, _ in pairs.tolist()}
    assert len(keys) == 800  # distinct pairs
    assert not set(pairs[:, :2].ravel().tolist()) & banned
    with pytest.raises(DataError, match="n_pairs"):
        relative_pairs(records, None, unique=False)


def test_relative_matching_uses_the_whole_pool(caplog):
    # 40 images at 3.0 and 40 at 7.0, one category: a perfect matching has 40 pairs
    records = [Record(path=Path(f"{k}"), score=3.0 if k < 40 else 7.0, variance=1.0, tags=(5,))
               for k in range(80)]
    assert len(relative_pairs(records, None, seed=0)) == 40
    with caplog.at_level(logging.WARNING, logger="framescore.train.samplers"):
        assert len(relative_pairs(records, 50, seed=0)) == 40
    assert "only 40 of the 50" in caplog.text
    high_var = [Record(path=Path("a"), score=3.0, variance=2.6, tags=(1,)),
                Record(path=Path("b"), score=7.0, variance=1.0, tags=(1,))]
    assert relative_pairs(high_var, None).shape == (0, 3)


def test_relative_protocol_sets_are_disjoint():
    records = synthetic(4000, seed=3)
    test_ids = {str(k) for k in range(0, 4000, 5)}
    sets = relative_protocol(records, test_ids, n_train=300, n_val=60, n_test=200, seed=4)
    assert (len(sets["train"]), len(sets["val"]), len(sets["test"])) == (300, 60, 200)
    for name, pairs in sets.items():
        _check_relative(pairs, records)
        ids = {records[i].id for i in pairs[:, :2].ravel()}
        assert (ids <= test_ids) if name == "standard" else not ids & test_ids
    own = np.concatenate([sets["train"], sets["val"], sets["test"]])[:, :2].ravel()
    assert len(np.unique(own)) == len(own)
    assert len(sets["standard"]) > 100


# ---------------------------------------------------------------------------------------------
# Kong: cross-rater and within-rater pairs


def test_cross_rater_pairs():
    scores = np.round(np.random.default_rng(0).uniform(0, 1, 300), 2)
    pairs = cross_rater_pairs(scores, 1000, min_gap=0.1, seed=3)
    assert pairs.shape == (1000, 3)
    i, j, y = pairs.T
    assert np.all(np.abs(scores[i] - scores[j]) > 0.1)
    assert np.all(y == np.where(scores[i] > scores[j], 1, -1))
    assert len({(min(a, b), max(a, b)) for a, b in zip(i, j, strict=True)}) == 1000
    # ties never pair: two distinct values give at most 1·1 pair between 2 images
    assert len(cross_rater_pairs(np.array([0.5, 0.5, 0.7]), 10)) == 2


def test_within_rater_pairs_follow_each_workers_scores(tmp_path):
    fx = make_aadb(tmp_path, n=40, seed=8)
    records = list(read_aadb(fx.root, "train", ratings=fx.meta["ratings_csv"]))
    pairs = within_rater_pairs(records, seed=1)
    by_image = {k: dict(r.ratings) for k, r in enumerate(records)}
    expected = set()
    for a, b in combinations(range(len(records)), 2):
        for w in by_image[a].keys() & by_image[b].keys():
            if by_image[a][w] != by_image[b][w]:
                expected.add((a, b))
                break
    got = {(min(i, j), max(i, j)) for i, j, _ in pairs.tolist()}
    assert got == expected and len(got) == len(pairs) > 20
    for i, j, y in pairs.tolist():
        shared = by_image[i].keys() & by_image[j].keys()
        assert any(np.sign(by_image[i][w] - by_image[j][w]) == y for w in shared)
    sub = within_rater_pairs(records, max_pairs=10, seed=1)
    assert len(sub) == 10 and {(min(i, j), max(i, j)) for i, j, _ in sub.tolist()} <= got


# ---------------------------------------------------------------------------------------------
# AROD triplets


def test_triplets_keep_the_ratio_inside_alpha_beta():
    scores = np.random.default_rng(0).uniform(0.1, 0.9, 500)
    sampler = TripletSampler(scores, alpha=0.3, beta=0.7)
    rng = np.random.default_rng(1)
    trip = sampler.batch(400, rng)
    a, p, n = scores[trip[:, 0]], scores[trip[:, 1]], scores[trip[:, 2]]
    r1 = np.abs(a - p) / np.abs(a - n)
    r2 = np.abs(a - p) / np.abs(p - n)
    assert np.all((r1 > 0.3) & (r1 < 0.7)) and np.all((r2 > 0.3) & (r2 < 0.7))
    better = n > np.maximum(a, p)
    worse = n < np.minimum(a, p)
    assert np.all(better | worse)  # n is the odd one out
    assert better.sum() == worse.sum() == 200  # balanced
    assert all(sampler.valid(*t) for t in trip.tolist())
    assert np.array_equal(trip, sampler.batch(400, np.random.default_rng(1)))


def test_triplets_one_ratio_and_errors():
    scores = np.linspace(0, 1, 200)
    sampler = TripletSampler(scores, alpha=0.1, beta=0.5, both=False)
    rng = np.random.default_rng(2)
    for _ in range(100):
        a, p, n = sampler.sample(rng, better=False)
        assert 0.1 < abs(scores[a] - scores[p]) / abs(scores[a] - scores[n]) < 0.5
        assert scores[n] < min(scores[a], scores[p])
    with pytest.raises(DataError, match="alpha < beta"):
        TripletSampler(scores, alpha=0.7, beta=0.3)
    with pytest.raises(DataError, match="three different scores"):
        TripletSampler(np.array([0.2, 0.2, 0.5]))
    # 3 scores 0, 0.5, 1: |a−p| / |a−n| is 0.5 or 1 — nothing fits inside (0.6, 0.7)
    with pytest.raises(DataError, match="no triplet"):
        TripletSampler(np.array([0.0, 0.5, 1.0]), 0.6, 0.7, tries=20).sample(rng)


# ---------------------------------------------------------------------------------------------
# Jin: weights, RS/ED tests


def test_kong_cross_rater_pairs_favour_large_gaps():
    """Pairs drawn with probability ∝ |s_i − s_j|: with equal groups at 0, 0.1 and 1.0 the
    three kinds of pair come in proportion 0.1 : 1.0 : 0.9 (uniform pairs: 1 : 1 : 1), and no
    tie is ever drawn."""
    scores = np.repeat([0.0, 0.1, 1.0], 50)
    pairs = gap_biased_pairs(scores, 200_000, seed=3)
    assert pairs.shape == (200_000, 3)
    a, b = scores[pairs[:, 0]], scores[pairs[:, 1]]
    assert np.all(a != b)
    assert np.array_equal(pairs[:, 2], np.where(a > b, 1, -1))
    kinds = {frozenset(k): 0 for k in ((0.0, 0.1), (0.0, 1.0), (0.1, 1.0))}
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        kinds[frozenset((x, y))] += 1
    shares = [kinds[frozenset(k)] / len(pairs) for k in ((0.0, 0.1), (0.0, 1.0), (0.1, 1.0))]
    assert shares == pytest.approx([0.05, 0.5, 0.45], abs=0.01)
    assert 0.45 < np.mean(pairs[:, 2] == 1) < 0.55  # orientation is random
    assert np.array_equal(pairs, gap_biased_pairs(scores, 200_000, seed=3))
    assert len(gap_biased_pairs(np.full(5, 0.5), 10)) == 0


def test_jin_weights_normalize_and_balance_bins():
    scores = np.concatenate([np.full(90, 5.05), np.full(9, 7.55), [9.99]])
    w = jin_weights(scores)
    assert w.mean() == pytest.approx(1.0)
    bins = score_bins(scores)
    totals = [w[bins == b].sum() for b in np.unique(bins)]
    assert totals == pytest.approx([totals[0]] * 3)  # every occupied bin weighs the same
    freq = np.bincount(bins, minlength=90) / len(scores)
    assert w * freq[bins] == pytest.approx(np.full(len(w), w[0] * freq[bins[0]]))  # w ∝ 1/freq
    assert w[-1] == pytest.approx(90 * w[0])


def test_score_bins_edges():
    assert score_bins(np.array([1.0, 1.1, 1.3, 5.55, 9.95, 10.0, 0.5, 11.0])).tolist() == \
        [0, 1, 3, 45, 89, 89, 0, 89]


def test_rs_and_ed_tests_fixed_seed(caplog):
    scores = np.random.default_rng(0).normal(5.4, 1.2, 20_000)
    rs = rs_test(scores, 3000, seed=0)
    assert len(rs) == len(np.unique(rs)) == 3000 and np.all(np.diff(rs) > 0)
    assert np.array_equal(rs, rs_test(scores, 3000, seed=0))
    assert not np.array_equal(rs, rs_test(scores, 3000, seed=1))
    with caplog.at_level(logging.WARNING, logger="framescore.train.samplers"):
        ed = ed_test(scores, 1000, seed=0)
    s = scores[ed]
    low, high = (scores < 4).sum(), (scores > 7).sum()
    assert low > 1000  # enough of those
    assert (s < 4).sum() == 1000 and ((s >= 4) & (s <= 7)).sum() == 1000
    assert (s > 7).sum() == min(1000, high)
    assert np.array_equal(ed, ed_test(scores, 1000, seed=0))
    rest = complement(len(scores), rs, ed)
    assert len(rest) == len(scores) - len(np.union1d(rs, ed))
    assert not np.intersect1d(rest, ed).size and not np.intersect1d(rest, rs).size


def test_ed_test_with_a_thin_bin_takes_all(caplog):
    scores = np.concatenate([np.full(50, 3.0), np.full(50, 5.0), np.full(5, 8.0)])
    with caplog.at_level(logging.WARNING, logger="framescore.train.samplers"):
        ed = ed_test(scores, 10, seed=0)
    assert len(ed) == 25 and (scores[ed] == 8.0).sum() == 5
    assert "only 5 images in the high bin" in caplog.text
