"""Shot boundaries: hard cuts, fades and dissolves, found while the video decodes.

Every decoded frame (not only the sampled ones) leaves a small signature, read straight from
its planes in the decoding thread: a 24 x 32 luminance thumbnail (block means of a strided
sample) and a joint histogram of luminance and chroma. Three detectors read the signatures:

* **cut** — the change from the previous frame, ``d = ½(1 − corr) + ½·hist_distance``, is
  large in absolute terms (``cut_min``) and ``cut_ratio`` times the median change of the frames
  around it (an adaptive threshold: a shaky or busy shot changes a lot from frame to frame
  everywhere, a cut only once);
* **fade** — a run of flat frames (almost no contrast: black, white or one colour) together
  with the ramps into and out of it, over which the picture keeps its structure and only its
  contrast falls and rises;
* **dissolve** — a stretch whose middle frame is a blend of the frames at its ends:
  the least-squares fit ``mid ≈ a·first + b·last`` explains the middle frame well (R² ≥
  ``blend_r2``), both weights are real (``0.25 ≤ a, b``) and neither end alone explains it,
  while the two ends differ (their correlation is below ``dissolve_corr``). A pan or a zoom
  changes as much, but its middle frame is not a blend of its ends.

Boundaries closer than ``min_shot`` seconds to the previous one are merged into it (a
dissolve found right beside a cut gives way to the cut: it is the cut's doing), so a
flash or a glitch does not make a one-frame shot. Memory is bounded: per frame, a few scalars;
thumbnails only for the last couple of seconds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

Kind = Literal["cut", "fade", "dissolve"]

ROWS, COLS = 24, 32
_BINS_Y, _BINS_C = 8, 4
# a fade's ramp: each frame's contrast at least this much above its neighbour's towards the
# flat run (a linear fade over 100 frames still grows by 1 % a frame; a steady shot does not)
RAMP_GROWTH = 1.01
# frames whose samples may wait for a flush (about 6 KB each at 720p)
PENDING_MAX = 512
# formats whose first three planes are 8-bit Y, U, V (any chroma subsampling)
_PLANAR_8BIT = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                "yuv411p", "yuv410p", "yuv440p", "yuvj440p"}


@dataclass(frozen=True)
class Boundary:
    """A transition between two shots, in decoded-frame indices and player seconds.

    A cut has ``start == end`` = the first frame of the new shot. A fade or a dissolve covers
    frames ``start..end`` (inclusive), which belong to neither shot.
    """

    kind: Kind
    start: int
    end: int
    start_time: float
    end_time: float

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": self.start, "end": self.end,
                "start_time": round(self.start_time, 6), "end_time": round(self.end_time, 6)}


@dataclass(frozen=True)
class Shot:
    """A stretch of the video between two boundaries (frames ``start..end`` inclusive)."""

    number: int
    start: int
    end: int
    start_time: float
    end_time: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end_time - self.start_time)


@dataclass(frozen=True)
class ShotSettings:
    cut_min: float = 0.28
    cut_ratio: float = 3.0
    window: int = 4           # frames each side for the adaptive median
    flat_std: float = 0.025   # a frame with a luminance spread below this is flat
    fade_max: float = 3.0     # seconds a ramp into or out of a flat run may last
    blend_spans: tuple[float, ...] = (0.4, 0.6, 0.8, 1.2, 1.6)   # seconds between a dissolve's ends
    blend_r2: float = 0.85
    dissolve_corr: float = 0.6
    min_shot: float = 0.5     # seconds; closer boundaries merge


def frame_samples(frame: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strided samples of an ``av.VideoFrame``'s Y, U and V planes (small copies, about 3 x 3
    a thumbnail cell), read from its own planes when they are 8-bit YUV (no colour
    conversion), else from a small RGB copy. Cheap enough for the decoding thread."""
    fmt = frame.format.name  # type: ignore[attr-defined]
    if fmt in _PLANAR_8BIT or fmt in ("gray", "nv12"):
        planes = frame.planes  # type: ignore[attr-defined]
        y = _plane(planes[0], frame.height, frame.width)  # type: ignore[attr-defined]
        if fmt == "gray":
            u = v = np.full((2, 2), 128, np.uint8)
        elif fmt == "nv12":
            uv = _plane(planes[1], (frame.height + 1) // 2, 2 * ((frame.width + 1) // 2))
            u, v = uv[:, 0::2], uv[:, 1::2]
        else:
            ch, cw = planes[1].height, planes[1].width
            u, v = _plane(planes[1], ch, cw), _plane(planes[2], ch, cw)
        return _strided(y, ROWS, COLS), _strided(u, ROWS // 2, COLS // 2), \
            _strided(v, ROWS // 2, COLS // 2)
    rgb = frame.reformat(width=4 * COLS, height=4 * ROWS, format="rgb24").to_ndarray()  # type: ignore[attr-defined]
    return image_samples(rgb)


def image_samples(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same samples from an RGB uint8 image (BT.601 luma and chroma)."""
    f = rgb.astype(np.float32)
    y = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    u = 128 + (f[..., 2] - y) * 0.564
    v = 128 + (f[..., 0] - y) * 0.713
    return _strided(y, ROWS, COLS), _strided(u, ROWS // 2, COLS // 2), \
        _strided(v, ROWS // 2, COLS // 2)


def _plane(plane: object, height: int, width: int) -> np.ndarray:
    line = plane.line_size  # type: ignore[attr-defined]
    buf = np.frombuffer(plane, dtype=np.uint8)  # type: ignore[call-overload]
    rows = min(height, buf.size // line)
    return buf[: rows * line].reshape(rows, line)[:, :width]


def _strides(h: int, w: int, rows: int, cols: int) -> tuple[int, int]:
    return max(1, h // (3 * rows)), max(1, w // (3 * cols))


def _strided(plane: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """About 3 x 3 samples a block of a ``rows`` x ``cols`` grid (tiny planes: repeated)."""
    h, w = plane.shape
    if h < rows or w < cols:
        return np.ascontiguousarray(plane[np.arange(rows) * h // rows][:, np.arange(cols) * w
                                                                       // cols])
    sy, sx = _strides(h, w, rows, cols)
    return np.ascontiguousarray(plane[::sy, ::sx])


@lru_cache(maxsize=32)
def _edges(h: int, w: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block edges and areas for :func:`_block_means` on ``h`` x ``w`` samples (cached: a
    video's frames all have one size)."""
    ys = np.linspace(0, h, rows + 1).astype(int)
    xs = np.linspace(0, w, cols + 1).astype(int)
    return ys[:-1], xs[:-1], np.outer(np.diff(ys), np.diff(xs)).astype(np.float32)


def _block_means(samples: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``(N, h, w)`` samples → ``(N, rows, cols)`` block means, float32, in one pass."""
    n, h, w = samples.shape
    ys, xs, area = _edges(h, w, rows, cols)
    s = samples.astype(np.float32)
    return np.add.reduceat(np.add.reduceat(s, ys, axis=1), xs, axis=2) / area


def _signatures(ys: np.ndarray, us: np.ndarray, vs: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Batch of samples → ``(N, ROWS * COLS)`` thumbnails in [0, 1] and ``(N, bins)`` joint
    Y/U/V histograms of the thumbnail cells (chroma cells repeated to luma's grid)."""
    n = len(ys)
    ty = _block_means(ys, ROWS, COLS) / 255.0
    tu = _block_means(us, ROWS // 2, COLS // 2) / 255.0
    tv = _block_means(vs, ROWS // 2, COLS // 2) / 255.0
    uy = np.repeat(np.repeat(tu, 2, axis=1), 2, axis=2)[:, :ROWS, :COLS]
    vy = np.repeat(np.repeat(tv, 2, axis=1), 2, axis=2)[:, :ROWS, :COLS]
    iy = np.clip((ty * _BINS_Y).astype(np.int64), 0, _BINS_Y - 1)
    iu = np.clip((uy * _BINS_C).astype(np.int64), 0, _BINS_C - 1)
    iv = np.clip((vy * _BINS_C).astype(np.int64), 0, _BINS_C - 1)
    bins = _BINS_Y * _BINS_C * _BINS_C
    cell = ((iy * _BINS_C + iu) * _BINS_C + iv).reshape(n, -1)
    hist = np.bincount((cell + bins * np.arange(n)[:, None]).ravel(),
                       minlength=n * bins).reshape(n, bins).astype(np.float32)
    return ty.reshape(n, -1).astype(np.float32), hist / hist.sum(axis=1, keepdims=True)


def _unit(thumb: np.ndarray) -> tuple[np.ndarray, float]:
    """Zero-mean, unit-norm copy of a thumbnail and its standard deviation."""
    c = thumb - thumb.mean()
    sd = float(np.sqrt(np.mean(c * c)))
    n = float(np.linalg.norm(c))
    return (c / n if n > 1e-6 else np.zeros_like(c)), sd


@dataclass
class _Entry:
    index: int
    time: float
    unit: np.ndarray
    std: float
    change: float        # d, the change from the previous frame


@dataclass
class ShotDetector:
    """Feed it every decoded frame in order (:meth:`add_frame`, or :meth:`add_image`), then
    call :meth:`boundaries`. Keeps scalars per frame and the last few seconds of thumbnails."""

    settings: ShotSettings = field(default_factory=ShotSettings)
    fps: float = 25.0
    indices: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    change: list[float] = field(default_factory=list)    # d, the change from the previous frame
    stds: list[float] = field(default_factory=list)
    blends: list[int] = field(default_factory=list)   # positions of frames found to be blends
    _recent: deque = field(default_factory=deque)
    _prev_hist: np.ndarray | None = None
    _pending: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _flushing: threading.Lock = field(default_factory=threading.Lock)

    def add_frame(self, index: int, time: float, frame: object) -> None:
        """Take a decoded frame's samples (cheap: the decoding thread calls this); the
        signatures are worked out in batches by :meth:`flush`."""
        self._queue(index, time, frame_samples(frame))

    def add_image(self, index: int, time: float, rgb: np.ndarray) -> None:
        self._queue(index, time, image_samples(rgb))

    def _queue(self, index: int, time: float,
               samples: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        with self._lock:
            self._pending.append((index, time, samples))
            full = len(self._pending) >= PENDING_MAX
        if full:  # nobody flushed for a while: keep memory bounded
            self.flush()

    def flush(self) -> None:
        """Work out the signatures of the frames queued so far, a batch at once (numpy), and
        feed them to the detectors in order. Safe to call from another thread than
        :meth:`add_frame`'s (the key-frames job calls it from the scoring thread)."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, []
            start = 0
            while start < len(pending):  # runs of one sample shape (one frame size)
                shape = tuple(x.shape for x in pending[start][2])
                end = start + 1
                while end < len(pending) and tuple(x.shape for x in pending[end][2]) == shape:
                    end += 1
                run = pending[start:end]
                thumbs, hists = _signatures(*(np.stack([p[2][c] for p in run])
                                              for c in range(3)))
                for (index, time, _), thumb, hist in zip(run, thumbs, hists, strict=True):
                    self._add(index, time, thumb, hist)
                start = end

    def _add(self, index: int, time: float, thumb: np.ndarray, hist: np.ndarray) -> None:
        unit, sd = _unit(thumb)
        pos = len(self.indices)
        if self._recent:
            prev = self._recent[-1]
            corr = float(np.dot(unit, prev.unit)) if sd > 1e-3 and prev.std > 1e-3 else (
                1.0 if abs(sd - prev.std) < 0.01 else 0.0)
            hd = 0.5 * float(np.abs(hist - self._prev_hist).sum())
            d = 0.5 * (1.0 - corr) + 0.5 * hd
        else:
            d = 0.0
        self.indices.append(index)
        self.times.append(time)
        self.change.append(d)
        self.stds.append(sd)
        self._prev_hist = hist
        entry = _Entry(index, time, unit, sd, d)
        self._recent.append(entry)
        horizon = max(self.settings.blend_spans) * 1.05
        while len(self._recent) > 2 and time - self._recent[0].time > horizon:
            self._recent.popleft()
        self._check_blend(pos)

    def _check_blend(self, pos: int) -> None:
        """Is the frame half a span back a blend of the frames a whole span back and now?"""
        s = self.settings
        recent = self._recent
        last = recent[-1]
        if last.std < s.flat_std:
            return
        n = len(recent)
        for span in s.blend_spans:
            # the entry about `span` seconds back, and the one in the middle
            k = n - 1 - round(span * self.fps)
            if k < 0 or n - 1 - k < 4:
                continue
            first = recent[k]
            mid = recent[(k + n - 1) // 2]
            if first.std < s.flat_std or mid.std < s.flat_std:
                continue
            if float(np.dot(first.unit, last.unit)) >= s.dissolve_corr:
                continue
            if any(e.change >= s.cut_min for e in list(recent)[k + 1:]):
                continue   # a cut in between: two shots, not a blend
            if _is_blend(first.unit, last.unit, mid.unit, s.blend_r2):
                self.blends.append(pos - (n - 1) + (k + n - 1) // 2)
                return

    def boundaries(self) -> list[Boundary]:
        """The boundaries found so far, in time order."""
        self.flush()
        n = len(self.indices)
        if n < 2:
            return []
        s = self.settings
        spans: list[tuple[Kind, int, int]] = []   # (kind, first pos, last pos)
        spans += [("fade", a, b) for a, b in self._fades()]
        spans += [("dissolve", a, b) for a, b in self._dissolves()]
        covered = np.zeros(n, dtype=bool)
        for _, a, b in spans:
            covered[a:b + 1] = True
        d = np.asarray(self.change)
        w = s.window
        for i in range(1, n):
            if covered[i] or covered[i - 1] or d[i] < s.cut_min:
                continue
            around = np.concatenate([d[max(1, i - w):i], d[i + 1:i + 1 + w]])
            if around.size and d[i] < s.cut_ratio * float(np.median(around)):
                continue
            spans.append(("cut", i, i))
        spans.sort(key=lambda x: (x[1], x[2]))
        return self._to_boundaries(self._enforce_min_shot(spans))

    def _fades(self) -> list[tuple[int, int]]:
        """Runs of flat frames widened by the ramps of falling and rising contrast."""
        s = self.settings
        sd = np.asarray(self.stds)
        flat = sd < s.flat_std
        out: list[tuple[int, int]] = []
        i, n = 0, len(sd)
        while i < n:
            if not flat[i]:
                i += 1
                continue
            j = i
            while j + 1 < n and flat[j + 1]:
                j += 1
            a = i
            a = self._ramp(i, -1)
            b = self._ramp(j, +1)
            out.append((a, b))
            i = j + 1
        return out

    def _ramp(self, edge: int, step: int) -> int:
        """Walk from a flat run's ``edge`` outward (``step`` = ±1) while contrast keeps rising as
        a fade's does: by at least RAMP_GROWTH a frame, and by steps not much smaller than the
        ramp's own typical step (a fade is about linear; a pan or a slow change of light that
        follows it is not part of it). Stops at a cut and after ``fade_max`` seconds."""
        sd, t = self.stds, self.times
        n = len(sd)
        steps: list[float] = []
        k = edge
        while 0 <= k + step < n and abs(t[k + step] - t[edge]) <= self.settings.fade_max:
            nxt = k + step
            inc = sd[nxt] - sd[k]
            if sd[nxt] <= sd[k] * RAMP_GROWTH or self._cut_at(max(k, nxt)):
                break
            if len(steps) >= 3 and inc < 0.25 * float(np.median(steps)):
                break
            steps.append(inc)
            k = nxt
        return k

    def _dissolves(self) -> list[tuple[int, int]]:
        """Runs of blended frames (gaps under ``gap`` seconds closed), widened by ``pad``
        seconds each side: a blend's weights must both be ≥ 0.25, so the first and last few
        frames of a dissolve are not found as blends themselves."""
        t = self.times
        n = len(t)
        gap, pad = 0.3, 0.25
        runs: list[tuple[int, int]] = []
        for p in sorted(set(self.blends)):
            if runs and t[p] - t[runs[-1][1]] <= gap:
                runs[-1] = (runs[-1][0], p)
            else:
                runs.append((p, p))
        out = []
        for a0, b0 in runs:
            a, b = a0, b0
            while a > 0 and t[a0] - t[a - 1] <= pad and not self._cut_at(a):
                a -= 1
            while b + 1 < n and t[b + 1] - t[b0] <= pad and not self._cut_at(b + 1):
                b += 1
            out.append((a, b))
        return out

    def _cut_at(self, pos: int) -> bool:
        return self.change[pos] >= self.settings.cut_min

    def _enforce_min_shot(self, spans: list[tuple[Kind, int, int]]) -> list[tuple[Kind, int, int]]:
        """Merge a boundary that starts within ``min_shot`` seconds of the last one into it
        (two cuts: the first stays, e.g. into and out of a flash; with a gradual one: one span
        covering both), and drop a cut within ``min_shot`` of the start."""
        t = self.times
        kept: list[tuple[Kind, int, int]] = []
        for kind, a, b in spans:
            if kept and (a <= kept[-1][2] or t[a] - t[kept[-1][2]] < self.settings.min_shot):
                pk, pa, pb = kept[-1]
                if {pk, kind} == {"cut", "dissolve"}:
                    # a blend found beside a cut is the cut's doing (a dissolve is not
                    # followed or preceded by a cut within min_shot): keep the cut
                    kept[-1] = ("cut", a, b) if kind == "cut" else kept[-1]
                    continue
                if kind != "cut" or pk != "cut":
                    # a fade's flat run is the surer sign; else the gradual one of the two
                    merged: Kind = "fade" if "fade" in (pk, kind) else (
                        pk if pk != "cut" else kind)
                    kept[-1] = (merged, min(pa, a), max(pb, b))
                continue
            if kind == "cut" and t[a] - t[0] < self.settings.min_shot:
                continue
            kept.append((kind, a, b))
        return kept

    def _to_boundaries(self, spans: Sequence[tuple[Kind, int, int]]) -> list[Boundary]:
        idx, t = self.indices, self.times
        return [Boundary(kind, idx[a], idx[b], t[a], t[b]) for kind, a, b in spans]

    def shots(self) -> list[Shot]:
        """The shots between the boundaries (at least one: the whole video)."""
        return shots_between(self.boundaries(), self.indices, self.times)


def shots_between(boundaries: Sequence[Boundary], indices: Sequence[int],
                  times: Sequence[float]) -> list[Shot]:
    """The stretches of frames ``indices`` (with ``times``) that no boundary covers."""
    if not indices:
        return []
    pos = {int(i): k for k, i in enumerate(indices)}
    out: list[Shot] = []
    start = 0
    for b in boundaries:
        last = pos[b.start] - 1
        if last >= start:
            out.append(Shot(len(out) + 1, int(indices[start]), int(indices[last]),
                            float(times[start]), float(times[last])))
        start = pos[b.start] if b.kind == "cut" else pos[b.end] + 1
    if start < len(indices):
        out.append(Shot(len(out) + 1, int(indices[start]), int(indices[-1]),
                        float(times[start]), float(times[-1])))
    return out


def _is_blend(a: np.ndarray, b: np.ndarray, m: np.ndarray, r2_min: float) -> bool:
    """Does ``m`` ≈ x·a + y·b with both weights real, and better than either alone?
    (all three zero-mean, unit-norm)."""
    # the 2 x 2 normal equations solved in closed form (no LAPACK call per frame: its thread
    # pool would spin on the cores the decoder needs); |a| = |b| = |m| = 1
    ab, am, bm = float(np.dot(a, b)), float(np.dot(a, m)), float(np.dot(b, m))
    det = 1.0 - ab * ab
    if det < 1e-6:
        return False
    x, y = (am - ab * bm) / det, (bm - ab * am) / det
    r2 = x * am + y * bm          # explained share of |m|² = 1 for a least-squares fit
    alone = max(am, bm) ** 2      # R² of the better end alone
    return r2 >= r2_min and min(x, y) >= 0.25 and alone < r2 - 0.05


def detect_boundaries(path: str | Path, settings: ShotSettings | None = None) -> list[Boundary]:
    """Decode ``path`` and return its shot boundaries (a pass of its own, nothing scored)."""
    from framescore.io.video import Sampling, iter_frames, probe

    info = probe(path)
    det = ShotDetector(settings or ShotSettings(), fps=info.fps or 25.0)
    # keep no frame: every one still goes through on_decoded
    for _ in iter_frames(path, Sampling(every=1 << 30), size=(16, 16),
                         on_decoded=det.add_frame):
        pass
    return det.boundaries()


def image_thumbs(images: np.ndarray) -> np.ndarray:
    """``(N, ROWS * COLS)`` float32 luminance thumbnails in [0, 1] of RGB uint8 images
    ``(N, H, W, 3)`` (the key-frames job keeps one per scored frame, for near-duplicates)."""
    n, h, w = images.shape[:3]
    if h < ROWS or w < COLS:
        f = images.astype(np.float32)
        luma = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
        samples = np.stack([_strided(y, ROWS, COLS) for y in luma])
    else:  # sample first, then convert only the samples (a batch is 32 x 256 x 256 x 3)
        sy, sx = _strides(h, w, ROWS, COLS)
        s = images[:, ::sy, ::sx]
        samples = (s[..., 0] * np.float32(0.299) + s[..., 1] * np.float32(0.587)
                   + s[..., 2] * np.float32(0.114))
    return (_block_means(samples, ROWS, COLS) / 255.0).reshape(n, -1).astype(np.float32)
