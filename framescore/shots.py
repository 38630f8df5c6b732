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


@dataclass
class ShotDetector:
    """Feed it every decoded frame in order (:meth:`add_frame`, or :meth:`add_image`), then
    call :meth:`boundaries`. Keeps scalars per frame and the last few seconds of thumbnails."""

    settings: ShotSettings = field(default_factory=ShotSettings)
    fps: float = 25.0
    # the first frame fed is the video's first (a stretch decoded from the middle is not: a cut
    # right after its start is a real one, not a flash at the video's start)
    video_start: bool = True
    indices: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    change: list[float] = field(default_factory=list)    # d, the change from the previous frame
    stds: list[float] = field(default_factory=list)
    blends: list[int] = field(default_factory=list)   # positions of frames found to be blends
    # the last frames' unit thumbnails, spreads and changes (as far back as a blend looks)
    _tail_units: np.ndarray = field(default_factory=lambda: np.zeros((0, ROWS * COLS),
                                                                      np.float32))
    _tail_std: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _tail_change: np.ndarray = field(default_factory=lambda: np.zeros(0))
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
                self._add([p[0] for p in run], [p[1] for p in run], thumbs, hists)
                start = end

    def _add(self, indices: list[int], times: list[float], thumbs: np.ndarray,
             hists: np.ndarray) -> None:
        """Feed a batch of consecutive frames' signatures to the detectors (vectorized)."""
        s = self.settings
        n = len(indices)
        centred = thumbs - thumbs.mean(axis=1, keepdims=True)
        sd = np.sqrt(np.mean(centred * centred, axis=1))
        norm = np.sqrt(np.sum(centred * centred, axis=1))
        units = np.where(norm[:, None] > 1e-6, centred / np.maximum(norm, 1e-12)[:, None],
                         0.0).astype(np.float32)
        tail = len(self._tail_std)
        a = np.concatenate([self._tail_units, units])      # the tail, then this batch
        spread = np.concatenate([self._tail_std, sd])
        # d: the change from the previous frame (0 for the video's first)
        prev_u, prev_sd = a[tail - 1:tail - 1 + n], spread[tail - 1:tail - 1 + n]
        if tail == 0:
            prev_u, prev_sd = np.vstack([units[:1], units[:-1]]), np.concatenate([sd[:1],
                                                                                    sd[:-1]])
        corr = np.where((sd > 1e-3) & (prev_sd > 1e-3), _rowdot(units, prev_u),
                        np.where(np.abs(sd - prev_sd) < 0.01, 1.0, 0.0))
        prev_h = np.vstack([hists[:1] if self._prev_hist is None else self._prev_hist[None],
                            hists[:-1]])
        change = 0.5 * (1.0 - corr) + 0.5 * 0.5 * np.abs(hists - prev_h).sum(axis=1)
        if tail == 0:
            change[0] = 0.0
        changes = np.concatenate([self._tail_change, change])
        base = len(self.indices) - tail          # global position of a[0]
        self.indices.extend(int(i) for i in indices)
        self.times.extend(float(t) for t in times)
        self.change.extend(change.tolist())
        self.stds.extend(sd.tolist())
        self._prev_hist = hists[-1]
        # dissolves: is the frame half a span back a blend of the frames a span back and now?
        q = np.arange(tail, tail + n)
        cuts = np.concatenate([[0], np.cumsum(changes >= s.cut_min)])   # cuts before a row
        found = np.full(n, -1)
        for span in s.blend_spans:
            back = round(span * self.fps)
            if back < 4:
                continue
            first, mid = q - back, q - (back + 1) // 2
            ok = (first >= 0) & (found < 0) & (spread[q] >= s.flat_std)
            first, mid = np.maximum(first, 0), np.maximum(mid, 0)
            ok &= (spread[first] >= s.flat_std) & (spread[mid] >= s.flat_std)
            ok &= _rowdot(a[first], a[q]) < s.dissolve_corr
            ok &= cuts[q + 1] - cuts[first + 1] == 0   # no cut in between: not two shots
            ok &= _blends(a[first], a[q], a[mid], s.blend_r2)
            found[ok] = base + mid[ok]
        self.blends.extend(int(p) for p in found[found >= 0])
        keep = round(max(s.blend_spans) * self.fps) + 1
        self._tail_units, self._tail_std = a[-keep:], spread[-keep:].astype(np.float32)
        self._tail_change = changes[-keep:]

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
            if kind == "cut" and self.video_start and t[a] - t[0] < self.settings.min_shot:
                continue
            kept.append((kind, a, b))
        return kept

    def _to_boundaries(self, spans: Sequence[tuple[Kind, int, int]]) -> list[Boundary]:
        idx, t = self.indices, self.times
        return [Boundary(kind, idx[a], idx[b], t[a], t[b]) for kind, a, b in spans]


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


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products (no BLAS call: its thread pool would spin on the decoder's
    cores)."""
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def _blends(a: np.ndarray, b: np.ndarray, m: np.ndarray, r2_min: float) -> np.ndarray:
    """Row by row: does ``m`` ≈ x·a + y·b with both weights real, and better than either end
    alone? (rows zero-mean and unit-norm: the 2 x 2 normal equations in closed form, and
    the explained share of |m|² = 1 is x·(a·m) + y·(b·m))."""
    ab, am, bm = _rowdot(a, b), _rowdot(a, m), _rowdot(b, m)
    det = 1.0 - ab * ab
    safe = np.where(det < 1e-6, 1.0, det)
    x, y = (am - ab * bm) / safe, (bm - ab * am) / safe
    r2 = x * am + y * bm
    alone = np.maximum(am, bm) ** 2
    return (det >= 1e-6) & (r2 >= r2_min) & (np.minimum(x, y) >= 0.25) & (alone < r2 - 0.05)


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
