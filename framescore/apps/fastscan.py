"""The key-frames job's fast path for long videos: decode the key-frames, then only the
stretches the selection needs.

1. **Key-frame pass** (:class:`framescore.io.seek.KeyPass`): every packet is read, only the
   key (intra) frames are decoded; they are scored and leave a shot signature each.
2. **Boundary stretches**: between two consecutive key-frames whose signatures differ
   (``FLAG_CHANGE``, or either one flat as in a fade), and after the last key-frame, every
   frame is decoded — a run of such intervals at once — and goes through the exhaustive
   path's :class:`~framescore.shots.ShotDetector`, which finds and places the cuts, fades and
   dissolves there; the frames the exhaustive run would score there are scored. Between
   key-frames that look alike no boundary is looked for.
3. **Candidate stretches**: in each shot, around its best key-frame (and the runner-up when
   it scores within ``REFINE_CLOSE`` of it), the frames from the key-frame before to the next
   key-frame (at most ``REFINE_SECONDS`` after it) are decoded and scored, GOP by GOP and
   never a GOP decoded already, so that a shot's pick is the best frame near its best
   key-frames, not the key-frame itself.

Frames get the indices and times the exhaustive decoder gives them (their position among all
packets in display order), and the frames scored are those the exhaustive run scores, where
decoded, plus the key-frames. Memory: per frame of the video a timestamp, a size and two flags;
per scored frame, as in the exhaustive run, a score and a thumbnail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from framescore.apps.gathered import Gathered
from framescore.io.seek import KeyPass, NotSeekable, PacketIndex, StretchDecoder, sample_mask
from framescore.io.video import DecodeStats, Frame, Sampling, _snap
from framescore.models.spec import Scorer
from framescore.scoring import ScoredFrames, score_frames
from framescore.shots import (
    Boundary,
    ShotDetector,
    ShotSettings,
    _signatures,
    frame_samples,
    image_thumbs,
    shots_between,
)

if TYPE_CHECKING:
    import av

__all__ = ["AUTO_MAX_SHARE", "FLAG_CHANGE", "Gathered", "NotSeekable", "NotWorthIt", "gather_fast"]

# ``--scan auto`` gives up the fast path after the key-frame pass when the boundary stretches
# alone hold more than this share of the frames (see docs/keyframes.md, "Long videos")
AUTO_MAX_SHARE = 0.5


class NotWorthIt(NotSeekable):
    """The fast path would decode most of the video anyway."""


# Two key-frames whose signature change (the shot detector's d: ½(1 − corr) + ½·histogram
# distance) reaches this may have a boundary between them; below it the interval is taken as
# one shot. The cut detector's own threshold is 0.28 between neighbouring frames.
FLAG_CHANGE = 0.12
# per shot, frames are decoded around its best key-frame, and around the runner-up when
# that scores within this fraction of the best
REFINE_CLOSE = 0.03
# seconds after it, up to the next key-frame; before it, back to the key-frame before
REFINE_SECONDS = 5.0
# a packet stretch is "busy" (a cut without a key-frame, a dissolve) when the largest packet
# of some 4 in a row is this many times the interval's typical such maximum
BUSY_RATIO = 2.5


def _change(thumbs: np.ndarray, hists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signature change between consecutive rows, and each row's luminance spread."""
    centred = thumbs - thumbs.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.mean(centred * centred, axis=1))
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    units = np.where(norm > 1e-6, centred / np.maximum(norm, 1e-12), 0.0)
    corr = np.einsum("ij,ij->i", units[1:], units[:-1])
    both_flat = (sd[1:] <= 1e-3) & (sd[:-1] <= 1e-3)
    corr = np.where(both_flat, 1.0, corr)
    d = 0.5 * (1.0 - corr) + 0.25 * np.abs(hists[1:] - hists[:-1]).sum(axis=1)
    return d, sd


def _scenecut_keys(key_idx: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per key-frame: did the encoder place it early, at a scene cut? An encoder writes a
    key-frame every ``keyint`` frames (the longest spacing, seen at least twice) and, with
    scene-cut detection (x264's default), one where the picture changes completely."""
    gaps = np.diff(key_idx)
    out = np.zeros(len(key_idx), dtype=bool)
    if gaps.size < 2:
        return out
    keyint = int(gaps.max())
    if int(np.sum(gaps >= 0.95 * keyint)) < 2:
        return out
    out[1:] = gaps < 0.9 * keyint
    return out


def _busy(sizes: np.ndarray) -> bool:
    """Does the stretch of packets hold a burst of large ones (a cut the encoder gave no
    key-frame, a dissolve)? Maxima over 4 packets (so P and B frames are compared alike)
    against their median."""
    if sizes.size < 8:
        return False
    peaks = np.lib.stride_tricks.sliding_window_view(sizes, 4).max(axis=1)
    return bool(peaks.max() > BUSY_RATIO * np.median(peaks))


def _runs(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join overlapping or touching ``(first, last)`` spans."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _undecoded(
    spans: list[tuple[int, int]], key_idx: np.ndarray, done: np.ndarray
) -> list[tuple[int, int]]:
    """The parts of ``spans`` still to decode, GOP by GOP: within each GOP (key-frame to the
    frame before the next), from its key-frame to the last frame not decoded yet, and nothing
    where every frame is decoded already. A seek lands on a GOP's key-frame, so a stretch that
    starts inside a GOP decodes it from there: a GOP decoded for a boundary is never decoded
    a second time for a candidate."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        g = max(int(np.searchsorted(key_idx, a, side="right")) - 1, 0)
        while g < len(key_idx) and key_idx[g] <= b:
            lo = max(a, int(key_idx[g]))
            hi = min(b, int(key_idx[g + 1]) - 1 if g + 1 < len(key_idx) else len(done) - 1)
            todo = np.flatnonzero(~done[lo : hi + 1])
            if todo.size:
                out.append((lo, lo + int(todo[-1])))
            g += 1
    return _runs(out)


class _Stretches:
    """Decode ``spans`` at full rate; yield the frames to score (on the sample grid, not
    scored before); optionally feed every new frame to a shot detector per span."""

    def __init__(
        self,
        path: Path,
        index: PacketIndex,
        spans: list[tuple[int, int]],
        want: np.ndarray,
        done: np.ndarray,
        scored: np.ndarray,
        convert: Callable[[av.VideoFrame, int], np.ndarray],
        stats: DecodeStats,
        fps: float,
        detect: bool,
        shot_settings: ShotSettings,
    ) -> None:
        self.path, self.index, self.spans = path, index, spans
        self.want, self.done, self.scored = want, done, scored
        self.convert, self.stats, self.fps = convert, stats, fps
        self.detect, self.shot_settings = detect, shot_settings
        self.boundaries: list[Boundary] = []
        self.fed = np.zeros(len(index), dtype=bool)

    def __iter__(self) -> Iterator[Frame]:
        with StretchDecoder(self.path, self.index, self.stats) as dec:
            for first, last in self.spans:
                det = ShotDetector(self.shot_settings, fps=self.fps) if self.detect else None
                prev = -1
                last_fed = -2
                for i, t, frame in dec.frames(first, last):
                    if i <= prev:
                        continue
                    prev = i
                    if det is not None and not self.fed[i]:
                        if last_fed >= 0 and i != last_fed + 1:
                            # frames before were fed in an earlier span: start afresh
                            self.boundaries += det.boundaries()
                            det = ShotDetector(self.shot_settings, fps=self.fps)
                        if last_fed < 0:
                            det.video_start = i == 0
                        det.add_frame(i, t, frame)
                        self.fed[i] = True
                        last_fed = i
                    self.done[i] = True
                    if self.want[i] and not self.scored[i]:
                        self.scored[i] = True
                        rot = _snap(frame.rotation) or dec.rotation
                        yield Frame(index=i, time=t, image=self.convert(frame, rot))
                if det is not None:
                    self.boundaries += det.boundaries()


def gather_fast(
    path: str | Path,
    sampling: Sampling,
    scorer: Scorer,
    convert: Callable[[av.VideoFrame, int], np.ndarray],
    batch_size: int,
    stats: DecodeStats,
    fps: float,
    on_batch: Callable[[int], None] | None = None,
    shot_settings: ShotSettings | None = None,
    max_share: float | None = None,
) -> Gathered:
    """Score and cut ``path`` key-frame first (see the module docstring). Raises
    :class:`NotSeekable` when the file does not allow it, and :class:`NotWorthIt` when the
    boundary stretches alone would hold more than ``max_share`` of the frames (short shots
    between sparse key-frames: decoding every frame costs less than seeking to most of them)."""
    path = Path(path)
    shot_settings = shot_settings or ShotSettings()
    fps = fps or 25.0
    parts: list[tuple[ScoredFrames, np.ndarray]] = []

    def scored_pass(frames) -> None:
        thumbs: list[np.ndarray] = []
        sc = score_frames(
            frames,
            scorer,
            batch_size,
            on_batch=on_batch,
            observe=lambda images: thumbs.append(image_thumbs(images)),
        )
        if len(sc):
            parts.append((sc, np.concatenate(thumbs)))

    # 1. key-frames: scored, and a signature each
    samples: list[tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]] = []
    keys = KeyPass(
        path, convert, stats, on_decoded=lambda pts, t, f: samples.append((pts, frame_samples(f)))
    )
    scored_pass(keys)
    index = keys.index
    assert index is not None
    n = len(index)
    key_sc, key_th = parts[0]
    key_sc.indices = np.asarray([index.index_of(int(p)) for p in key_sc.indices])
    order = np.argsort(key_sc.indices, kind="stable")
    parts[0] = (
        ScoredFrames(key_sc.indices[order], key_sc.times[order], key_sc.scores[order]),
        key_th[order],
    )
    samples.sort(key=lambda s: s[0])
    key_idx = np.asarray([index.index_of(p) for p, _ in samples])
    sig_t, sig_h = _signatures(*(np.stack([s[1][c] for s in samples]) for c in range(3)))
    change, spread = _change(sig_t, sig_h)
    flat = spread < shot_settings.flat_std

    # 2. full-rate runs where a boundary may lie
    scenecut = _scenecut_keys(key_idx, index.sizes)
    spans, hinted = [], []
    for g in range(len(key_idx) - 1):
        a, b = int(key_idx[g]), int(key_idx[g + 1])
        if not (change[g] >= FLAG_CHANGE or flat[g] or flat[g + 1]):
            continue
        if (
            scenecut[g + 1]
            and not flat[g]
            and not flat[g + 1]
            and not _busy(index.sizes[a + 1 : b])
        ):
            hinted.append(b)  # the encoder's scene-cut key-frame: the cut is there
        else:
            spans.append((a, b))
    spans.append((int(key_idx[-1]), n - 1))  # after the last key-frame: to the end
    if key_idx[0] > 0:
        spans.append((0, int(key_idx[0])))
    runs = _runs(spans)
    share = sum(b - a + 1 for a, b in runs) / max(n, 1)
    if max_share is not None and share > max_share:
        raise NotWorthIt(
            f"the stretches between differing key-frames hold {share:.0%} of the frames"
        )
    want = sample_mask(index.times, sampling)
    done = np.zeros(n, dtype=bool)
    scored = np.zeros(n, dtype=bool)
    scored[key_idx] = True
    done[key_idx] = True
    def stretches(spans: list[tuple[int, int]], detect: bool) -> _Stretches:
        """Both passes share the masks: what is decoded, scored, wanted."""
        return _Stretches(path, index, spans, want, done, scored, convert, stats, fps,
                          detect=detect, shot_settings=shot_settings)

    boundary_pass = stretches(runs, detect=True)
    scored_pass(boundary_pass)
    found = boundary_pass.boundaries
    covered = [(b.start, b.end) for b in found]
    found += [
        Boundary("cut", k, k, float(index.times[k]), float(index.times[k]))
        for k in hinted
        if not any(a - 1 <= k <= b + 1 for a, b in covered)
    ]
    boundaries = sorted(found, key=lambda b: (b.start, b.end))
    shots = shots_between(boundaries, range(n), index.times.tolist())

    # 3. around each shot's best key-frames
    idx = np.concatenate([p[0].indices for p in parts])
    raw = np.concatenate([p[0].scores for p in parts])
    is_key = np.zeros(n, dtype=bool)
    is_key[key_idx] = True
    is_key_any = is_key.copy()
    is_key[key_idx[flat]] = False
    reach = max(1, round(REFINE_SECONDS * fps))
    around: list[tuple[int, int]] = []
    for shot in shots:
        rows = np.flatnonzero((idx >= shot.start) & (idx <= shot.end) & is_key[idx])
        if rows.size == 0:
            continue
        ranked = rows[np.argsort(-raw[rows], kind="stable")]
        # the runner-up too when it scores close to the best: the best frame of the shot
        # may lie near either, and only key-frames were seen between the stretches
        top = ranked[
            : 1
            + int(
                ranked.size > 1
                and raw[ranked[1]] >= raw[ranked[0]] - REFINE_CLOSE * abs(raw[ranked[0]])
            )
        ]
        for r in top:
            i = int(idx[r])
            k = int(np.searchsorted(key_idx, i))
            before = int(key_idx[k - 1]) if k > 0 else 0
            after = int(key_idx[k + 1]) if k + 1 < len(key_idx) else n - 1
            # before it, the frames back to the key-frame before are decoded anyway (the
            # seek lands there): all of them are offered, within the shot
            a = max(shot.start, before)
            b = min(shot.end, after, i + reach)
            around.append((a, b))
    refine_runs = _undecoded(_runs(around), key_idx, done)
    if refine_runs:
        scored_pass(stretches(refine_runs, detect=False))

    # a key-frame off the sampling grid inside a decoded stretch is left out: the frames the
    # exhaustive run scores there are scored, and the curve should not see an extra one
    idx = np.concatenate([p[0].indices for p in parts])
    keep = np.ones(idx.size, dtype=bool)
    off_grid = ~want[idx] & is_key_any[idx]
    keep[off_grid] = done[np.minimum(idx[off_grid] + 1, n - 1)] & (idx[off_grid] + 1 < n)
    keep = ~keep | ~off_grid
    order = np.flatnonzero(keep)[np.argsort(idx[keep], kind="stable")]
    sc = ScoredFrames(
        indices=idx[order].astype(np.int64),
        times=np.concatenate([p[0].times for p in parts])[order],
        scores=np.concatenate([p[0].scores for p in parts])[order],
    )
    thumbs = np.concatenate([p[1] for p in parts])[order]
    scan = {
        "mode": "fast",
        "frames": n,
        "keyframes": int(len(key_idx)),
        "boundary_stretches": len(runs),
        "boundary_share": round(share, 4),
        "candidate_stretches": len(refine_runs),
        "decoded_share": round(float(stats.decoded) / max(n, 1), 4),
    }
    return Gathered(scored=sc, thumbs=thumbs, boundaries=boundaries, shots=shots, scan=scan)
