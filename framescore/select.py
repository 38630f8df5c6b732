"""Choosing key-frames that cover the video: every shot first, then diversity.

The rule (also in README):

1. **One per shot, best shots first.** Each shot's best moment is the highest point of its
   smoothed curve, moved to the best *raw* frame within ``refine`` seconds (so a blurred frame
   next to a sharp one gives way). Shots are taken in the order of those frames' smoothed
   scores. A shot whose best frame stands in the lowest fifth (``SHOT_FLOOR``) of the range
   from the video's worst usable frame to its best (a shaky, dark or blurred shot) gets no
   pick of its own: its frames compete in step 2 like
   any other, so two good frames of a good shot beat the best frame of a bad one. A shot's
   best that is a near-duplicate of a frame already taken also waits for step 2.
2. **Then the most useful extra frame, one at a time** (maximal marginal relevance): among the
   frames left, the one with the highest ``quality − λ · similarity`` to the frames already
   taken (λ = 1). Within a shot, similarity is closeness in time, ``exp(−Δt / τ)`` with
   ``τ = max(min_gap, usable duration / (2 · top))`` (in one long static shot every frame
   looks alike, so time is what tells moments apart); across shots it is half the
   correlation of the two frames' thumbnails (a shot that looks like one already taken is
   worth less). Peaks of the smoothed curve (with ``prominence``) within the stretches still
   free are offered first; when none of them fits, any frame.
3. Never a frame inside a transition or a flat (black, white, one-colour) frame; never two
   frames of one shot closer than ``min_gap`` seconds; never a near-duplicate of a frame already
   taken (most of the thumbnail unchanged). So ``top`` frames come out whenever the video has
   that many such frames; fewer only when it has not, and then :attr:`Selection.reason` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from framescore.curve import local_maxima

# a frame is a near-duplicate of another when fewer than DUP_CHANGED of its thumbnail cells
# differ by more than DUP_DELTA in luminance (0..1) and the pictures correlate at DUP_CORR
DUP_DELTA, DUP_CHANGED, DUP_CORR = 0.06, 0.02, 0.95
LAMBDA = 1.0
# Where a shot's best must stand, between the video's worst usable frame (0) and its best (1),
# to get a pick of its own. Measured with the default model: the demo clip's two shaky shots
# stand at 0.16 and 0.09, the soft but sound sources of a five-clip join (bikes, carphone) at
# 0.25 and 0.28.
SHOT_FLOOR = 0.2


@dataclass(frozen=True)
class Candidates:
    """What selection reads, one row per scored frame (all arrays of the same length)."""

    times: np.ndarray        # seconds
    raw: np.ndarray          # the model's scores
    smoothed: np.ndarray     # the per-shot smoothed curve (0..1 over the video)
    shot: np.ndarray         # shot number (1..), 0 for frames in a transition
    eligible: np.ndarray     # bool: may be a key-frame at all
    thumbs: np.ndarray       # (N, D) luminance thumbnails in 0..1, for duplicates and diversity


@dataclass
class Selection:
    picks: list[int]                     # rows, best first
    reason: str | None = None            # why fewer than asked, when fewer
    shot_best: dict[int, int] = field(default_factory=dict)   # shot → row of its best frame


def shot_bests(c: Candidates, refine: float) -> dict[int, int]:
    """Each shot's best frame (row): the top of its smoothed curve, moved to the best raw
    frame within ``refine`` seconds."""
    out: dict[int, int] = {}
    for s in np.unique(c.shot[c.shot > 0]):
        rows = np.flatnonzero((c.shot == s) & c.eligible)
        if rows.size == 0:
            continue
        top = rows[int(np.argmax(c.smoothed[rows]))]
        out[int(s)] = _refine(c, top, rows, refine)
    return out


def _refine(c: Candidates, row: int, rows: np.ndarray, refine: float) -> int:
    near = rows[np.abs(c.times[rows] - c.times[row]) <= refine + 1e-9]
    return int(near[int(np.argmax(c.raw[near]))]) if near.size else int(row)


def _unit(thumbs: np.ndarray) -> np.ndarray:
    x = thumbs - thumbs.mean(axis=1, keepdims=True)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(n > 1e-6, x / np.maximum(n, 1e-12), 0.0)


def near_duplicates(thumbs: np.ndarray, unit: np.ndarray, row: int,
                    rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` look the same as ``row`` (bool array)."""
    if rows.size == 0:
        return np.zeros(0, dtype=bool)
    changed = np.mean(np.abs(thumbs[rows] - thumbs[row]) > DUP_DELTA, axis=1)
    corr = unit[rows] @ unit[row]
    return (changed < DUP_CHANGED) & (corr >= DUP_CORR)


def select(c: Candidates, top: int | None, min_gap: float, prominence: float = 0.02,
           refine: float | None = None, per_shot: bool = False) -> Selection:
    """Key-frame rows, best first (see the module docstring). ``top=None`` with ``per_shot``
    gives every shot's best frame."""
    n = len(c.times)
    refine = min(min_gap / 4.0, 0.5) if refine is None else refine
    bests = shot_bests(c, refine)
    if n == 0 or not bests:
        return Selection([], "the video has no frame outside transitions and flat frames",
                         bests)
    unit = _unit(c.thumbs)
    order = sorted(bests.values(), key=lambda r: (-c.smoothed[r], c.times[r]))
    if per_shot:
        picks = order if top is None else order[:top]
        return Selection(picks, None, bests)
    assert top is not None
    picks: list[int] = []
    # a frame is "free" while it keeps the gap within its shot and is no near-duplicate
    usable = c.eligible & (c.shot > 0)
    free = usable.copy()
    low = float(c.smoothed[usable].min())
    tau = max(min_gap, 1e-3,
              sum(float(np.ptp(c.times[c.shot == s])) for s in bests) / (2.0 * max(top, 1)))

    def blocked_by(row: int, mask: np.ndarray) -> None:
        """Clear in ``mask`` what taking ``row`` rules out."""
        same = c.shot == c.shot[row]
        mask[same & (np.abs(c.times - c.times[row]) < min_gap)] = False
        mask[row] = False
        rest = np.flatnonzero(mask)
        mask[rest[near_duplicates(c.thumbs, unit, row, rest)]] = False

    def take(row: int) -> None:
        picks.append(row)
        blocked_by(row, free)

    def keeps_enough(row: int) -> bool:
        """After taking ``row``, can the picks still reach ``top`` (gap-wise)?"""
        trial = free.copy()
        blocked_by(row, trial)
        return len(picks) + 1 + _capacity(c, trial, min_gap) >= min(top, reachable)

    def first_feasible(ranked: np.ndarray) -> int | None:
        """The first of ``ranked`` (or its refined neighbour) that keeps ``top`` reachable."""
        for row in ranked[:64]:
            rows = np.flatnonzero(free & (c.shot == c.shot[row]))
            for r in (_refine(c, int(row), rows, refine), int(row)):
                if free[r] and keeps_enough(r):
                    return r
        return None

    reachable = _capacity(c, usable, min_gap)
    floor = low + SHOT_FLOOR * (float(c.smoothed[order[0]]) - low)
    for best in order:
        if len(picks) == top:
            break
        if not free[best] or c.smoothed[best] < floor:
            continue
        if keeps_enough(best):
            take(best)
            continue
        # the best frame would crowd out frames needed to reach `top`: the shot's best
        # frame that does not
        rows = np.flatnonzero(free & (c.shot == c.shot[best]))
        row = first_feasible(rows[np.argsort(-c.smoothed[rows], kind="stable")])
        if row is not None:
            take(row)
    while len(picks) < top:
        chosen, fallback = None, None
        for pool in (_peak_rows(c, prominence, free), np.flatnonzero(free)):
            if pool.size == 0:
                continue
            value = c.smoothed[pool] - LAMBDA * _similarity(c, unit, pool, picks, tau)
            ranked = pool[np.argsort(-value, kind="stable")]
            fallback = int(ranked[0]) if fallback is None else fallback
            chosen = first_feasible(ranked)
            if chosen is not None:
                break
        if fallback is None:
            break
        take(fallback if chosen is None else chosen)
    reason = None
    if len(picks) < top:
        reason = (f"only {len(picks)} frame(s) qualify: outside transitions and flat frames, "
                  f"at least {min_gap:g} s apart within a shot, and no two near-duplicates")
    return Selection(picks, reason, bests)


def _similarity(c: Candidates, unit: np.ndarray, pool: np.ndarray, picks: list[int],
                tau: float) -> np.ndarray:
    """For each row of ``pool``, its similarity to the closest pick: within a shot closeness
    in time, ``exp(−Δt / τ)``; across shots half the thumbnails' correlation."""
    sim = np.zeros(pool.size)
    for p in picks:
        same = c.shot[pool] == c.shot[p]
        closeness = np.exp(-np.abs(c.times[pool] - c.times[p]) / tau)
        alike = 0.5 * np.clip(unit[pool] @ unit[p], 0.0, 1.0)
        sim = np.maximum(sim, np.where(same, closeness, alike))
    return sim


def _capacity(c: Candidates, free: np.ndarray, min_gap: float) -> int:
    """How many more frames could still be taken from ``free`` keeping ``min_gap`` within each
    shot (taking the earliest free frame, then the next one a gap later, is the most)."""
    total = 0
    for s in np.unique(c.shot[free]):
        last = -np.inf
        for t in c.times[free & (c.shot == s)]:
            if t - last >= min_gap:
                total += 1
                last = t
    return total


def _peak_rows(c: Candidates, prominence: float, free: np.ndarray) -> np.ndarray:
    """Free rows at local maxima of the smoothed curve with at least ``prominence``, within
    each run of consecutive free frames of a shot (a run's ends count as peaks when the curve
    falls away from them, as a curve's ends do)."""
    rows = np.flatnonzero(free)
    if rows.size == 0:
        return rows
    # runs: consecutive rows of the same shot
    breaks = np.flatnonzero((np.diff(rows) != 1) | (np.diff(c.shot[rows]) != 0)) + 1
    out: list[np.ndarray] = []
    for run in np.split(rows, breaks):
        out.append(run[local_maxima(c.smoothed[run], prominence)])
    return np.concatenate(out)
