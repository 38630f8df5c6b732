"""Cuts and fades: frames in a transition are never key-frames.

Each analysed frame leaves a small signature: its mean luminance and a 32 x 32 luminance
thumbnail. Between neighbouring samples,

* a **cut** is a drop in structure: the correlation of the two thumbnails falls below
  ``cut_corr`` (0.5); the samples on both sides of it, ``margin`` deep, are marked;
* a **fade** is brightness changing fast while the picture stays the same: the log mean
  luminance moves faster than ``fade_rate`` (0.8 per second, i.e. about a 55 % change in a
  second) while the thumbnails stay correlated; those samples and ``margin`` around them are
  marked. Frames darker than ``dark`` (mean luminance 0.04) are marked too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from framescore.io.video import Frame

THUMB = 32


def signature(image: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean luminance in [0, 1], zero-mean unit-norm 32 x 32 luminance thumbnail)."""
    h, w = image.shape[:2]
    stride = max(1, min(h, w) // (4 * THUMB))  # large frames: look at every k-th pixel
    if stride > 1:
        image = image[::stride, ::stride]
        h, w = image.shape[:2]
    if h % THUMB == 0 and w % THUMB == 0:  # the usual case (model input sizes): block means
        bh, bw = h // THUMB, w // THUMB
        rows = image.reshape(THUMB, bh, w * 3).sum(axis=1, dtype=np.uint32)
        blocks = rows.reshape(THUMB, THUMB, bw, 3).sum(axis=2) / (bh * bw)
    else:
        ys = np.linspace(0, h, THUMB + 1).astype(int)
        xs = np.linspace(0, w, THUMB + 1).astype(int)
        sums = np.add.reduceat(np.add.reduceat(image.astype(np.float64), ys[:-1], axis=0),
                               xs[:-1], axis=1)
        blocks = sums / np.outer(np.diff(ys), np.diff(xs))[..., None]
    thumb = (blocks @ np.array([0.299, 0.587, 0.114])) / 255.0
    mean = float(thumb.mean())
    centred = (thumb - mean).ravel()
    norm = float(np.linalg.norm(centred))
    return mean, (centred / norm if norm > 1e-6 else np.zeros_like(centred)).astype(np.float32)


@dataclass
class Signatures:
    """Per-frame scalars of the frames that went by, in order: mean luminance and the
    correlation of each thumbnail with the previous one (1.0 for the first). Only the last
    thumbnail is kept, so memory does not grow with the video's length."""

    means: list[float] = field(default_factory=list)
    corr_prev: list[float] = field(default_factory=list)
    _last: np.ndarray | None = None

    def add(self, image: np.ndarray) -> None:
        mean, thumb = signature(image)
        corr = 1.0 if self._last is None else float(np.dot(thumb, self._last))
        self.means.append(mean)
        self.corr_prev.append(corr)
        self._last = thumb

    def tap(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Pass frames through, recording each one's signature."""
        for frame in frames:
            self.add(frame.image)
            yield frame


def transition_mask(times: np.ndarray, sigs: Signatures, cut_corr: float = 0.5,
                    fade_rate: float = 0.8, dark: float = 0.04, margin: int = 2) -> np.ndarray:
    """Boolean mask of samples that lie in (or next to) a cut or a fade."""
    n = len(sigs.means)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    means = np.asarray(sigs.means)
    mask |= means < dark
    if n > 1:
        corr = np.asarray(sigs.corr_prev[1:])
        dt = np.clip(np.diff(np.asarray(times, dtype=np.float64)), 1e-3, None)
        rate = np.abs(np.diff(np.log(means + 0.01))) / dt
        cut = corr < cut_corr
        fade = (rate > fade_rate) & ~cut
        for k in np.flatnonzero(cut | fade):
            # sample k and k+1 straddle the change
            mask[max(0, k - margin + 1): min(n, k + 1 + margin)] = True
    return mask
