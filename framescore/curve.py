"""The score curve: normalization, Kalman smoothing (filterpy) and peak extraction.

Smoothing models the normalized score as a random walk observed with noise:
``x_t = x_{t-1} + w``, ``w ~ N(0, q·Δt)`` (``q`` per second, so variable frame rates and
sparse sampling are handled), ``z_t = x_t + v``, ``v ~ N(0, r)``. The forward Kalman pass is
followed by a Rauch–Tung–Striebel smoother, so a peak is not delayed by the filter.

The ``arod`` preset is the recipe of Schwarz et al.'s video tool: min-max → forward-only scalar
random-walk Kalman (R = 0.1, Q = 1e-4 per frame, initial state and variance = first sample) →
log(1 + x) → min-max.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Preset = Literal["rts", "arod", "none"]


def normalize(values: np.ndarray, method: str = "minmax") -> np.ndarray:
    """Scale a curve: ``minmax`` to [0, 1], ``zscore`` to mean 0 / std 1, or ``none``.

    A constant curve becomes all zeros (minmax, zscore).
    """
    x = np.asarray(values, dtype=np.float64)
    if method == "none" or x.size == 0:
        return x.copy()
    if method == "minmax":
        lo, hi = float(np.min(x)), float(np.max(x))
        return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if method == "zscore":
        sd = float(np.std(x))
        return (x - float(np.mean(x))) / sd if sd > 0 else np.zeros_like(x)
    raise ValueError(f"unknown normalization {method!r}")


def kalman_random_walk(values: np.ndarray, times: np.ndarray | None = None, q: float = 0.05,
                       r: float = 0.05, smooth: bool = True, x0: float | None = None,
                       p0: float | None = None) -> np.ndarray:
    """Filter (and RTS-smooth when ``smooth``) a 1-D curve with a random-walk Kalman model.

    ``q`` is the process-noise variance per second when ``times`` is given, else per sample;
    ``r`` the measurement-noise variance. ``x0``/``p0`` default to the first sample and ``r``.
    """
    z = np.asarray(values, dtype=np.float64)
    n = z.size
    if n == 0:
        return z.copy()
    if times is None:
        dts = np.ones(n)
    else:
        t = np.asarray(times, dtype=np.float64)
        dts = np.diff(t, prepend=t[0])
        dts[0] = np.median(np.diff(t)) if n > 1 else 1.0
        dts = np.clip(dts, 1e-6, None)
    from filterpy.kalman import KalmanFilter  # imported on use: it pulls in scipy.stats

    kf = KalmanFilter(dim_x=1, dim_z=1)
    kf.x = np.array([[z[0] if x0 is None else x0]])
    kf.P = np.array([[r if p0 is None else p0]])
    kf.F = np.array([[1.0]])
    kf.H = np.array([[1.0]])
    kf.R = np.array([[r]])
    qs = [np.array([[q * dt]]) for dt in dts]
    means, covs, _, _ = kf.batch_filter(z.reshape(n, 1, 1), Qs=qs)
    if smooth:
        means, _, _, _ = kf.rts_smoother(means, covs, Qs=qs)
    return means.reshape(n)


@dataclass(frozen=True)
class Smoothing:
    """How raw scores become the smoothed curve."""

    preset: Preset = "rts"
    normalize: str = "minmax"
    q: float = 0.05
    r: float = 0.05

    def to_dict(self) -> dict:
        return asdict(self)


AROD = Smoothing(preset="arod", normalize="minmax", q=1e-4, r=0.1)


def smooth_curve(raw: np.ndarray, times: np.ndarray | None = None,
                 settings: Smoothing = Smoothing()) -> np.ndarray:
    """The smoothed score curve of ``raw`` under ``settings`` (see the module docstring)."""
    raw = np.asarray(raw, dtype=np.float64)
    if settings.preset == "arod":
        x = normalize(raw, "minmax")
        if x.size == 0:
            return x
        # the authors' tool: Q and R per frame, state and variance start at the first sample
        x = kalman_random_walk(x, None, q=settings.q, r=settings.r, smooth=False,
                               x0=float(x[0]), p0=float(x[0]))
        return normalize(np.log1p(x), "minmax")
    x = normalize(raw, settings.normalize)
    if settings.preset == "none":
        return x
    if settings.preset == "rts":
        return kalman_random_walk(x, times, q=settings.q, r=settings.r, smooth=True)
    raise ValueError(f"unknown smoothing preset {settings.preset!r}")


def smooth_shots(raw: np.ndarray, times: np.ndarray, shot: np.ndarray,
                 settings: Smoothing = Smoothing()) -> np.ndarray:
    """The smoothed curve with the smoother restarted at every shot boundary.

    ``shot`` numbers each sample's shot (0 for samples inside a transition). The raw scores are
    normalized over the whole video first, so shots stay comparable; each shot's stretch is then
    smoothed on its own, so one shot's scores never bleed into the next. Samples in a
    transition keep their normalized raw score.
    """
    raw = np.asarray(raw, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    shot = np.asarray(shot)
    x = normalize(raw, "minmax" if settings.preset == "arod" else settings.normalize)
    out = x.copy()
    for s in np.unique(shot[shot > 0]):
        rows = np.flatnonzero(shot == s)
        if settings.preset == "none" or rows.size < 2:
            continue
        if settings.preset == "arod":
            # the authors' recipe on this stretch, kept on the video's scale
            part = kalman_random_walk(x[rows], None, q=settings.q, r=settings.r, smooth=False,
                                      x0=float(x[rows][0]), p0=float(x[rows][0]))
            out[rows] = np.log1p(part) / np.log(2.0)
        elif settings.preset == "rts":
            out[rows] = kalman_random_walk(x[rows], times[rows], q=settings.q, r=settings.r,
                                           smooth=True)
        else:
            raise ValueError(f"unknown smoothing preset {settings.preset!r}")
    return out


def local_maxima(y: np.ndarray, prominence: float) -> np.ndarray:
    """Positions of the local maxima of ``y`` with at least ``prominence``; its ends count
    when the curve falls away from them (as if it dropped to nothing beyond them)."""
    from scipy.signal import find_peaks as _scipy_find_peaks  # scipy.signal on use only

    floor = float(np.min(y)) - 1.0
    found, _ = _scipy_find_peaks(np.concatenate([[floor], y, [floor]]), prominence=prominence)
    return found - 1


def find_peaks(times: np.ndarray, smoothed: np.ndarray, raw: np.ndarray | None = None,
               top: int = 5, min_gap: float = 2.0, prominence: float = 0.02,
               refine: float | None = None, eligible: np.ndarray | None = None) -> list[int]:
    """Positions of the key-frames, best first.

    Candidates are the local maxima of ``smoothed`` (curve ends included) with at least
    ``prominence``; they are taken best-first, each at least ``min_gap`` seconds from those
    already taken, up to ``top``. Each is then moved to the frame with the best *raw* score
    within ``refine`` seconds (default: a quarter of ``min_gap``, at most 0.5 s), so a peak of
    the smoothed curve that lands on a blurred, faded or cut frame gives way to the clean frame
    beside it. ``eligible`` (a boolean mask) excludes frames outright, e.g. those in a cut or
    a fade: a peak with no eligible frame within ``refine`` is passed over. A curve with no peak
    gives its single best frame.
    """
    t = np.asarray(times, dtype=np.float64)
    s = np.asarray(smoothed, dtype=np.float64)
    if s.size == 0 or top <= 0:
        return []
    r = s if raw is None else np.asarray(raw, dtype=np.float64)
    ok = np.ones(s.size, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if not ok.any():
        ok = np.ones(s.size, dtype=bool)
    r = np.where(ok, r, -np.inf)
    cand = local_maxima(s, prominence)
    if cand.size == 0:
        cand = np.array([int(np.argmax(s))])
    order = cand[np.argsort(-s[cand], kind="stable")]
    window = min(min_gap / 4.0, 0.5) if refine is None else refine
    chosen: list[int] = []
    for c in order:
        lo, hi = np.searchsorted(t, t[c] - window), np.searchsorted(t, t[c] + window, "right")
        best = lo + int(np.argmax(r[lo:hi])) if hi > lo else int(c)
        if not ok[best]:
            continue
        if all(abs(t[best] - t[k]) >= min_gap for k in chosen):
            chosen.append(best)
        if len(chosen) == top:
            break
    return chosen
