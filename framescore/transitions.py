"""Cuts and fades: frames in a transition are never key-frames.

Each analysed frame leaves a small signature: its mean luminance and a 32 x 32 luminance
thumbnail, taken for a whole batch at once. Between neighbouring samples,

* a **cut** is a drop in structure: the correlation of the two thumbnails falls below
  ``cut_corr`` (0.5); the samples on both sides of it, ``margin`` deep, are marked;
* a **fade** is brightness changing fast while the picture stays the same: the log mean
  luminance moves faster than ``fade_rate`` (0.8 per second, i.e. about a 55 % change in a
  second) while the thumbnails stay correlated; those samples and ``margin`` around them are
  marked. Frames darker than ``dark`` (mean luminance 0.04) are marked too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

THUMB = 32


_LUMA = (np.array([0.299, 0.587, 0.114]) / 255.0).astype(np.float32)


def signatures(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a batch ``(N, H, W, 3)``: mean luminances ``(N,)`` in [0, 1] and zero-mean, unit-norm
    32 x 32 luminance thumbnails ``(N, 1024)`` (all zeros for a flat frame).

    The thumbnail's blocks are averaged over every k-th pixel, k chosen so that at least two
    samples each way fall in a block (k = 4 for a 256 x 256 frame).
    """
    n, h, w = images.shape[:3]
    stride = max(1, min(h, w) // (2 * THUMB))
    y = images[:, ::stride, ::stride].astype(np.float32) @ _LUMA
    h, w = y.shape[1:]
    if h < THUMB or w < THUMB:  # tiny frames: repeat pixels up to the thumbnail's size
        y = y[:, np.arange(max(h, THUMB)) * h // max(h, THUMB)]
        y = y[:, :, np.arange(max(w, THUMB)) * w // max(w, THUMB)]
        h, w = y.shape[1:]
    if h % THUMB == 0 and w % THUMB == 0:  # the usual case (model input sizes): block means
        bh, bw = h // THUMB, w // THUMB
        thumbs = y.reshape(n, THUMB, bh, w).sum(axis=2).reshape(n, THUMB, THUMB, bw).sum(
            axis=3) / (bh * bw)
    else:
        ys = np.linspace(0, h, THUMB + 1).astype(int)
        xs = np.linspace(0, w, THUMB + 1).astype(int)
        sums = np.add.reduceat(np.add.reduceat(y, ys[:-1], axis=1), xs[:-1], axis=2)
        thumbs = sums / np.outer(np.diff(ys), np.diff(xs))[None]
    thumbs = thumbs.reshape(n, -1).astype(np.float64)
    means = thumbs.mean(axis=1)
    centred = thumbs - means[:, None]
    norms = np.linalg.norm(centred, axis=1)
    flat = norms <= 1e-6
    centred /= np.where(flat, 1.0, norms)[:, None]
    centred[flat] = 0.0
    return means, centred.astype(np.float32)


@dataclass
class Signatures:
    """Per-frame scalars of the frames that went by, in order: mean luminance and the
    correlation of each thumbnail with the previous one (1.0 for the first). Only the last
    thumbnail is kept, so memory does not grow with the video's length."""

    means: list[float] = field(default_factory=list)
    corr_prev: list[float] = field(default_factory=list)
    _last: np.ndarray | None = None

    def add_batch(self, images: np.ndarray) -> None:
        """Record a batch ``(N, H, W, 3)`` of consecutive frames (one vectorized pass)."""
        if len(images) == 0:
            return
        means, thumbs = signatures(images)
        first = 1.0 if self._last is None else float(np.dot(thumbs[0], self._last))
        corr = np.einsum("ij,ij->i", thumbs[1:], thumbs[:-1])
        self.means.extend(means.tolist())
        self.corr_prev.append(first)
        self.corr_prev.extend(corr.tolist())
        self._last = thumbs[-1].copy()

    def add(self, image: np.ndarray) -> None:
        self.add_batch(image[None])


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
