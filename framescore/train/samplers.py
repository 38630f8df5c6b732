"""The papers' ways of drawing training and test data from a dataset's records.

Everything here works on a sequence of :class:`~framescore.train.data.records.Record` s (or on
their scores) and returns either records (splits) or integer index arrays into that sequence:

* pairs are ``int64`` arrays of shape ``(N, 3)``: ``(i, j, y)`` with ``y = +1`` when record
  ``i`` is the better one and ``-1`` when ``j`` is (orientation is randomized, so both signs
  occur about equally);
* triplets are ``(a, p, n)`` index triples drawn on the fly by :class:`TripletSampler`.

All randomness comes from ``numpy.random.default_rng(seed)``: the same seed gives the same sets.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from framescore.errors import DataError
from framescore.train.data.records import Record

log = logging.getLogger("framescore.train.samplers")

Pairs = np.ndarray  # (N, 3) int64: i, j, y


def _scores(data: Sequence[Record] | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.astype(np.float64, copy=False)
    return np.array([r.score for r in data], dtype=np.float64)


def _empty_pairs() -> Pairs:
    return np.zeros((0, 3), dtype=np.int64)


def _orient(i: np.ndarray, j: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> Pairs:
    """Pairs with a random order inside each and ``y`` = sign of the score difference."""
    swap = rng.random(len(i)) < 0.5
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    y = np.where(scores[a] > scores[b], 1, -1)
    return np.stack([a, b, y], axis=1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# AVA: δ-split (RAPID, AROD fine-tuning)


def binary_label(mean: float, delta: float = 0.0) -> int | None:
    """1 (high) when ``mean ≥ 5 + δ``, 0 (low) when ``mean ≤ 5 − δ``, None in between.

    With δ = 0 nothing is dropped and a mean of exactly 5 counts as high.
    """
    if mean >= 5.0 + delta:
        return 1
    if mean <= 5.0 - delta:
        return 0
    return None


def delta_split(records: Sequence[Record], test_ids: Iterable[str],
                delta: float = 0.0) -> tuple[list[Record], list[Record]]:
    """The standard AVA aesthetic split with binary labels.

    test = records whose id is in ``test_ids`` (``generic_test.jpgl``), train = all others; in
    both, images with a mean in (5 − δ, 5 + δ) are dropped and the rest get ``label`` 1/0.
    """
    if delta < 0:
        raise DataError(f"delta must be >= 0, not {delta}")
    test = set(test_ids)
    train_out: list[Record] = []
    test_out: list[Record] = []
    dropped = 0
    for r in records:
        label = binary_label(r.score, delta)
        if label is None:
            dropped += 1
            continue
        (test_out if r.id in test else train_out).append(replace(r, label=label))
    log.info("delta split (δ=%g): %d train, %d test, %d dropped between %g and %g",
             delta, len(train_out), len(test_out), dropped, 5 - delta, 5 + delta)
    return train_out, test_out


# ---------------------------------------------------------------------------------------------
# Relative aesthetics: pairs from AVA


def primary_tag(record: Record) -> int | None:
    """The semantic category used to pair images: the first non-zero AVA tag (None: untagged,
    never paired)."""
    return record.tags[0] if record.tags else None


def relative_pairs(records: Sequence[Record], n_pairs: int | None = None, *,
                   min_gap: float = 1.0, max_variance: float = 2.6, unique: bool = True,
                   category: Callable[[Record], Hashable | None] = primary_tag,
                   exclude: Iterable[int] = (), seed: int = 0) -> Pairs:
    """Pairs under the relative-aesthetics protocol.

    A pair needs ``|mean_i − mean_j| ≥ min_gap`` (1), both rating variances ``< max_variance``
    (2.6) and the same ``category`` (default: first semantic tag). ``unique``: every image is
    used at most once (a greedy random matching, so as many pairs as the pool allows when
    ``n_pairs`` is None); otherwise ``n_pairs`` distinct pairs may share images. Indices in
    ``exclude`` are never used.
    """
    rng = np.random.default_rng(seed)
    scores = _scores(records)
    banned = set(int(i) for i in exclude)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if i in banned or not math.isfinite(r.score):
            continue
        if r.variance is None or not r.variance < max_variance:
            continue
        key = category(r)
        if key is not None:
            groups[key].append(i)
    sorted_groups = {}
    for key, members in groups.items():
        idx = np.array(members, dtype=np.int64)
        idx = idx[np.argsort(scores[idx], kind="stable")]
        sorted_groups[key] = (idx, scores[idx])
    if unique:
        i, j = _unique_matching(sorted_groups, scores, n_pairs, min_gap, rng)
    else:
        if n_pairs is None:
            raise DataError("relative_pairs needs n_pairs when images may repeat (unique=False)")
        i, j = _sample_pairs(sorted_groups, scores, n_pairs, min_gap, rng)
    if n_pairs is not None and len(i) < n_pairs:
        log.warning("relative pairs: only %d of the %d asked for fit the constraints",
                    len(i), n_pairs)
    return _orient(i, j, scores, rng) if len(i) else _empty_pairs()


def _partner_ranges(s: np.ndarray, value: float, gap: float) -> tuple[int, int]:
    """Positions ``[0, lo)`` and ``[hi, len)`` of a sorted array at least ``gap`` from value."""
    lo = int(np.searchsorted(s, value - gap, side="right"))
    hi = int(np.searchsorted(s, value + gap, side="left"))
    return lo, hi


def _draw_position(lo: int, hi: int, n: int, rng: np.random.Generator) -> int:
    """A uniform position in ``[0, lo) ∪ [hi, n)`` (which must not be empty)."""
    k = int(rng.integers(0, lo + n - hi))
    return k if k < lo else hi + (k - lo)


def _unique_matching(groups: dict, scores: np.ndarray, n_pairs: int | None, gap: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    used_pos = {key: np.zeros(len(idx), dtype=bool) for key, (idx, _) in groups.items()}
    pool = [(key, p) for key, (idx, _) in groups.items() for p in range(len(idx))]
    order = rng.permutation(len(pool))
    first: list[int] = []
    second: list[int] = []
    for k in order:
        if n_pairs is not None and len(first) >= n_pairs:
            break
        key, p = pool[k]
        used = used_pos[key]
        if used[p]:
            continue
        idx, s = groups[key]
        lo, hi = _partner_ranges(s, s[p], gap)
        if lo + len(s) - hi == 0:
            continue
        partner = -1
        for _ in range(8):  # cheap random tries, then an exact scan of what is left
            q = _draw_position(lo, hi, len(s), rng)
            if not used[q]:
                partner = q
                break
        if partner < 0:
            free = np.concatenate([np.flatnonzero(~used[:lo]), hi + np.flatnonzero(~used[hi:])])
            if len(free) == 0:
                continue
            partner = int(free[rng.integers(0, len(free))])
        used[p] = used[partner] = True
        first.append(int(idx[p]))
        second.append(int(idx[partner]))
    return np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)


def _sample_pairs(groups: dict, scores: np.ndarray, n_pairs: int, gap: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    members = [(key, p) for key, (idx, _) in groups.items() for p in range(len(idx))]
    seen: set[tuple[int, int]] = set()
    first: list[int] = []
    second: list[int] = []
    attempts = 0
    while len(first) < n_pairs and members and attempts < 20 * n_pairs + 1000:
        attempts += 1
        key, p = members[int(rng.integers(0, len(members)))]
        idx, s = groups[key]
        lo, hi = _partner_ranges(s, s[p], gap)
        if lo + len(s) - hi == 0:
            continue
        q = _draw_position(lo, hi, len(s), rng)
        a, b = int(idx[p]), int(idx[q])
        pair = (min(a, b), max(a, b))
        if pair in seen:
            continue
        seen.add(pair)
        first.append(a)
        second.append(b)
    return np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)


def relative_protocol(records: Sequence[Record], test_ids: Iterable[str], *,
                      n_train: int = 20_000, n_val: int = 3_000, n_test: int = 20_000,
                      seed: int = 0, **constraints) -> dict[str, Pairs]:
    """The relative-aesthetics pair sets, all indexing ``records``:

    * ``train`` / ``val``: ``n_train`` + ``n_val`` pairs of all-unique images from the training
      ids (everything not in ``test_ids``), split at random;
    * ``test``: our reading of the paper's own 20k test pairs — ``n_test`` unique pairs from
      the training-id images that no train/val pair uses;
    * ``standard``: as many unique pairs as the ``generic_test`` ids allow (7,670 in the paper).

    ``constraints`` go to :func:`relative_pairs` (min_gap, max_variance, category).
    """
    test = set(test_ids)
    test_idx = [i for i, r in enumerate(records) if r.id in test]
    train_idx = [i for i, r in enumerate(records) if r.id not in test]
    tv = relative_pairs(records, n_train + n_val, unique=True, exclude=test_idx, seed=seed,
                        **constraints)
    perm = np.random.default_rng(seed + 1).permutation(len(tv))
    tv = tv[perm]
    n_tr = round(len(tv) * n_train / (n_train + n_val)) if len(tv) < n_train + n_val else n_train
    used = set(tv[:, :2].ravel().tolist())
    own_test = relative_pairs(records, n_test, unique=True, exclude=used | set(test_idx),
                              seed=seed + 2, **constraints)
    standard = relative_pairs(records, None, unique=True, exclude=train_idx, seed=seed + 3,
                              **constraints)
    return {"train": tv[:n_tr], "val": tv[n_tr:], "test": own_test, "standard": standard}


# ---------------------------------------------------------------------------------------------
# Kong et al.: cross-rater and within-rater pairs


def cross_rater_pairs(records: Sequence[Record] | np.ndarray, n_pairs: int, *,
                      min_gap: float = 0.0, seed: int = 0) -> Pairs:
    """``n_pairs`` distinct random pairs labelled by the mean scores (all raters together).

    A pair needs ``|score_i − score_j| > min_gap`` (ties carry no ranking signal). Fewer pairs
    come back (logged) when the records cannot give that many.
    """
    rng = np.random.default_rng(seed)
    scores = _scores(records)
    n = len(scores)
    seen: set[tuple[int, int]] = set()
    first: list[int] = []
    second: list[int] = []
    for _ in range(50):
        if len(first) >= n_pairs or n < 2:
            break
        need = n_pairs - len(first)
        i = rng.integers(0, n, size=2 * need + 16)
        j = rng.integers(0, n, size=2 * need + 16)
        ok = (i != j) & (np.abs(scores[i] - scores[j]) > min_gap)
        for a, b in zip(i[ok].tolist(), j[ok].tolist(), strict=True):
            key = (min(a, b), max(a, b))
            if key in seen:
                continue
            seen.add(key)
            first.append(a)
            second.append(b)
            if len(first) >= n_pairs:
                break
    if len(first) < n_pairs:
        log.warning("cross-rater pairs: only %d of the %d asked for", len(first), n_pairs)
    if not first:
        return _empty_pairs()
    return _orient(np.array(first), np.array(second), scores, rng)


def gap_biased_pairs(records: Sequence[Record] | np.ndarray, n_pairs: int, *,
                     seed: int = 0) -> Pairs:
    """``n_pairs`` cross-rater pairs drawn with probability proportional to their score gap
    ``|s_i − s_j|`` (Kong et al. favour pairs far apart in score; a tie is never drawn).

    Pairs may repeat (with millions of draws over thousands of images, repeats are part of
    the distribution); labelled and randomly oriented like :func:`cross_rater_pairs`.
    Vectorized rejection sampling: uniform pairs kept with probability gap / largest gap.
    """
    rng = np.random.default_rng(seed)
    scores = _scores(records)
    n = len(scores)
    finite = scores[np.isfinite(scores)]
    if n < 2 or len(finite) < 2 or finite.max() == finite.min() or n_pairs <= 0:
        return _empty_pairs()
    top = float(finite.max() - finite.min())
    first: list[np.ndarray] = []
    got = 0
    while got < n_pairs:
        m = max(2 * (n_pairs - got), 1024)
        i, j = rng.integers(0, n, size=m), rng.integers(0, n, size=m)
        gap = np.abs(scores[i] - scores[j])
        keep = np.isfinite(gap) & (gap > 0) & (rng.random(m) * top < gap)
        pairs = np.stack([i[keep], j[keep]], axis=1)[:n_pairs - got]
        first.append(pairs)
        got += len(pairs)
    both = np.concatenate(first)
    return _orient(both[:, 0], both[:, 1], scores, rng)


def within_rater_pairs(records: Sequence[Record], max_pairs: int | None = None, *,
                       seed: int = 0) -> Pairs:
    """Pairs of images rated by the same worker, labelled by that worker's own scores.

    Uses each record's ``ratings`` (``(worker, score)``, filled by ``read_aadb(ratings=...)``).
    Every pair of images a worker rated differently is a candidate (ties are skipped; a pair
    two workers both rated counts once, with the first worker's order); ``max_pairs`` keeps a
    random subset.
    """
    rng = np.random.default_rng(seed)
    by_worker: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for i, r in enumerate(records):
        for worker, score in r.ratings:
            by_worker[worker].append((i, score))
    chunks_i: list[np.ndarray] = []
    chunks_j: list[np.ndarray] = []
    chunks_y: list[np.ndarray] = []
    for items in by_worker.values():
        if len(items) < 2:
            continue
        idx = np.array([i for i, _ in items], dtype=np.int64)
        s = np.array([v for _, v in items], dtype=np.float64)
        a, b = np.triu_indices(len(items), k=1)
        keep = (s[a] != s[b]) & (idx[a] != idx[b])
        a, b = a[keep], b[keep]
        chunks_i.append(idx[a])
        chunks_j.append(idx[b])
        chunks_y.append(np.where(s[a] > s[b], 1, -1))
    if not chunks_i:
        log.warning("within-rater pairs: no worker rated two images differently")
        return _empty_pairs()
    i, j, y = np.concatenate(chunks_i), np.concatenate(chunks_j), np.concatenate(chunks_y)
    key = np.minimum(i, j) * (len(records) + 1) + np.maximum(i, j)
    _, first = np.unique(key, return_index=True)
    first.sort()
    i, j, y = i[first], j[first], y[first]
    if max_pairs is not None and len(i) > max_pairs:
        pick = np.sort(rng.choice(len(i), size=max_pairs, replace=False))
        i, j, y = i[pick], j[pick], y[pick]
    swap = rng.random(len(i)) < 0.5
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    return np.stack([a, b, np.where(swap, -y, y)], axis=1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# AROD: on-the-fly triplets


class TripletSampler:
    """Draws AROD triplets ``(a, p, n)`` on the fly from scores ``S``.

    A triplet is valid when ``α < |S(a) − S(p)| / |S(a) − S(n)| < β`` and, with ``both`` (the
    paper's ``S(•)``: the anchor and the positive), also ``α < |S(a) − S(p)| / |S(p) − S(n)| <
    β``. With β ≤ 1 this puts ``n`` outside the pair's score range: the odd one out. ``better``
    picks whether ``n`` scores above the pair or below it (balance the two, as
    :class:`~framescore.train.data.records.TripletDataset` and :meth:`batch` do).

    Defaults α = 0.3, β = 0.7 are the authors' released training values (the paper gives none).
    """

    def __init__(self, scores: Sequence[Record] | np.ndarray, alpha: float = 0.3,
                 beta: float = 0.7, both: bool = True, tries: int = 50) -> None:
        self.scores = _scores(scores)
        if not 0.0 <= alpha < beta:
            raise DataError(f"triplets need 0 <= alpha < beta (got alpha={alpha}, beta={beta})")
        if len(np.unique(self.scores[np.isfinite(self.scores)])) < 3:
            raise DataError("triplets need at least three different scores")
        self.alpha, self.beta, self.both, self.tries = alpha, beta, both, tries
        order = np.argsort(self.scores, kind="stable")
        finite = order[np.isfinite(self.scores[order])]
        self._up = (finite, self.scores[finite])  # ascending S
        down = finite[::-1]
        self._down = (down, -self.scores[down])  # ascending −S

    def valid(self, a: int, p: int, n: int) -> bool:
        """Whether ``(a, p, n)`` satisfies the ratio constraint(s)."""
        s = self.scores
        d_ap = abs(s[a] - s[p])
        ok = len({a, p, n}) == 3 and self.alpha < d_ap / max(abs(s[a] - s[n]), 1e-12) < self.beta
        if self.both:
            ok = ok and self.alpha < d_ap / max(abs(s[p] - s[n]), 1e-12) < self.beta
        return bool(ok)

    def sample(self, rng: np.random.Generator, better: bool | None = None) -> tuple[int, int, int]:
        """One valid triplet; ``better``: n above the pair (True), below (False), either (None)."""
        if better is None:
            better = bool(rng.random() < 0.5)
        idx, s = self._up if better else self._down
        m = len(s)
        for _ in range(self.tries):
            pa = int(rng.integers(0, m))
            above = int(np.searchsorted(s, s[pa], side="right"))
            if above >= m:
                continue
            pn = int(rng.integers(above, m))
            d = s[pn] - s[pa]
            lo_a, hi_a = (int(np.searchsorted(s, s[pa] - self.beta * d, side="left")),
                          int(np.searchsorted(s, s[pa] - self.alpha * d, side="right")))
            lo_b, hi_b = (int(np.searchsorted(s, s[pa] + self.alpha * d, side="left")),
                          int(np.searchsorted(s, s[pa] + self.beta * d, side="right")))
            count = (hi_a - lo_a) + (hi_b - lo_b)
            for _ in range(min(count, 8)):
                k = int(rng.integers(0, count))
                pp = lo_a + k if k < hi_a - lo_a else lo_b + k - (hi_a - lo_a)
                a, p, n = int(idx[pa]), int(idx[pp]), int(idx[pn])
                if self.valid(a, p, n):
                    return a, p, n
        raise DataError(f"no triplet with {self.alpha} < ratio < {self.beta} found in "
                        f"{self.tries} draws: the scores are too few or too uniform")

    def batch(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` triplets as a ``(k, 3)`` int64 array, half with n better, half worse, shuffled."""
        rows = [self.sample(rng, better=(t % 2 == 0)) for t in range(k)]
        out = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return out[rng.permutation(len(out))]


# ---------------------------------------------------------------------------------------------
# Jin et al.: sample weights and test sets


def score_bins(scores: Sequence[Record] | np.ndarray, bins: int = 90, low: float = 1.0,
               high: float = 10.0) -> np.ndarray:
    """The bin (0..bins−1) of each score on ``bins`` equal bins over ``[low, high]``."""
    s = _scores(scores)
    width = (high - low) / bins
    b = np.floor((s - low) / width + 1e-9).astype(np.int64)
    return np.clip(b, 0, bins - 1)


def jin_weights(scores: Sequence[Record] | np.ndarray, bins: int = 90, low: float = 1.0,
                high: float = 10.0) -> np.ndarray:
    """Jin et al.'s sample weights: ``w = 1 / (normalized frequency of the sample's bin)``.

    Bins: 90 equal bins over scores 1..10. Frequencies are normalized to sum to 1 over the
    training set; the weights are then scaled to mean 1 (WMSE divides by Σw, so the scale does
    not change the loss), which gives every occupied bin the same total weight.
    """
    b = score_bins(scores, bins, low, high)
    if len(b) == 0:
        return np.zeros(0, dtype=np.float64)
    counts = np.bincount(b, minlength=bins).astype(np.float64)
    freq = counts / counts.sum()
    w = 1.0 / freq[b]
    return w / w.mean()


def rs_test(scores: Sequence[Record] | np.ndarray, n: int = 3000, seed: int = 0) -> np.ndarray:
    """RS-test: ``n`` indices drawn uniformly without replacement (sorted), fixed ``seed``."""
    total = len(_scores(scores))
    if n > total:
        log.warning("RS-test: only %d images to draw %d from; using all", total, n)
        n = total
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def ed_test(scores: Sequence[Record] | np.ndarray, per_bin: int = 1000,
            edges: tuple[float, float] = (4.0, 7.0), seed: int = 0) -> np.ndarray:
    """ED-test: ``per_bin`` indices each with mean < 4, 4 ≤ mean ≤ 7 and mean > 7 (sorted).

    A bin with fewer images gives all it has (logged).
    """
    s = _scores(scores)
    rng = np.random.default_rng(seed)
    low, high = edges
    parts = []
    for name, mask in (("low", s < low), ("middle", (s >= low) & (s <= high)),
                       ("high", s > high)):
        idx = np.flatnonzero(mask)
        if len(idx) < per_bin:
            log.warning("ED-test: only %d images in the %s bin (asked %d)", len(idx), name,
                        per_bin)
            parts.append(idx)
        else:
            parts.append(rng.choice(idx, size=per_bin, replace=False))
    return np.sort(np.concatenate(parts)).astype(np.int64)


def complement(total: int, *used: Iterable[int] | np.ndarray) -> np.ndarray:
    """The indices ``0..total−1`` in none of ``used`` (e.g. Jin's training set)."""
    mask = np.ones(total, dtype=bool)
    for u in used:
        mask[u if isinstance(u, np.ndarray) else np.fromiter(u, dtype=np.int64)] = False
    return np.flatnonzero(mask)
