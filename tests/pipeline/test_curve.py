"""The score curve: normalization, Kalman/RTS smoothing against hand-computed values, peaks."""

from __future__ import annotations

import numpy as np
import pytest

from framescore.curve import (
    AROD,
    Smoothing,
    find_peaks,
    kalman_random_walk,
    normalize,
    smooth_curve,
)


def test_normalize():
    np.testing.assert_allclose(normalize([2, 4, 3]), [0, 1, 0.5])
    np.testing.assert_allclose(normalize([5, 5, 5]), [0, 0, 0])
    z = normalize([1.0, 2.0, 3.0], "zscore")
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    with pytest.raises(ValueError):
        normalize([1, 2], "bogus")


def test_kalman_filter_matches_hand_computation():
    # x0 = z0, P0 = r; predict P += q; K = P / (P + r); x += K (z - x); P = (1 - K) P
    got = kalman_random_walk(np.array([0.0, 1.0, 1.0]), q=0.1, r=0.5, smooth=False)
    np.testing.assert_allclose(got, [0.0, 0.4270833333, 0.6478873239], rtol=1e-9)


def test_rts_smoother_matches_hand_computation():
    # C_k = P_k|k / P_k+1|k ; x_k|N = x_k|k + C_k (x_k+1|N - x_k+1|k)
    got = kalman_random_walk(np.array([0.0, 1.0, 1.0]), q=0.1, r=0.5, smooth=True)
    np.testing.assert_allclose(got, [0.4225352113, 0.5774647887, 0.6478873239], rtol=1e-9)


def test_process_noise_scales_with_time_step():
    z = np.array([0.0, 1.0, 1.0])
    per_second = kalman_random_walk(z, times=np.array([0.0, 2.0, 4.0]), q=0.05, r=0.5,
                                    smooth=False)
    per_sample = kalman_random_walk(z, q=0.1, r=0.5, smooth=False)
    np.testing.assert_allclose(per_second, per_sample, rtol=1e-9)


def test_arod_preset_is_the_papers_recipe():
    # min-max → forward Kalman (R 0.1, Q 1e-4, x0 = P0 = first sample) → log1p → min-max
    got = smooth_curve(np.array([2.0, 4.0, 3.0]), settings=AROD)
    np.testing.assert_allclose(got, [0.0, 0.5733605957, 1.0], rtol=1e-8)


def test_smoothing_reduces_noise_and_keeps_the_level():
    rng = np.random.default_rng(0)
    t = np.arange(500) / 25
    truth = 0.5 + 0.3 * np.sin(t / 2)
    noisy = truth + rng.normal(0, 0.1, t.size)
    smooth = smooth_curve(noisy, t, Smoothing(normalize="none", q=0.05, r=0.01))
    assert np.abs(smooth - truth).mean() < 0.5 * np.abs(noisy - truth).mean()


def test_rts_does_not_delay_a_peak():
    t = np.arange(200) / 25
    raw = np.exp(-((t - 4.0) ** 2) / 0.5)
    smooth = smooth_curve(raw, t)
    assert abs(t[np.argmax(smooth)] - 4.0) < 0.1


def test_peaks_respect_min_gap_and_top_k():
    t = np.arange(0, 20, 0.1)
    s = np.zeros_like(t)
    for centre, height in [(2, 0.9), (2.8, 1.0), (8, 0.7), (14, 0.8), (18, 0.6)]:
        s += height * np.exp(-((t - centre) ** 2) / 0.05)
    peaks = find_peaks(t, s, top=3, min_gap=2.0, refine=0)
    assert [round(t[p], 1) for p in peaks] == [2.8, 14.0, 8.0]
    times = sorted(t[p] for p in find_peaks(t, s, top=10, min_gap=2.0, refine=0))
    assert all(b - a >= 2.0 for a, b in zip(times, times[1:], strict=False))
    assert len(times) == 4  # 2.0 is too close to 2.8


def test_peak_moves_to_the_best_raw_frame_nearby():
    t = np.arange(0, 4, 0.04)
    smooth = np.exp(-((t - 2.0) ** 2))
    raw = smooth.copy()
    raw[(t > 1.9) & (t < 2.1)] = 0.1     # the smoothed peak lands on a blurred frame
    raw[np.argmin(np.abs(t - 2.3))] = 1.2  # a clean frame 0.3 s later
    (p,) = find_peaks(t, smooth, raw, top=1, min_gap=2.0)
    assert t[p] == pytest.approx(2.28, abs=0.05)


def test_ineligible_frames_never_win():
    t = np.arange(0, 10, 0.1)
    s = 0.2 + 0.8 * np.exp(-((t - 5) ** 2) / 0.1) + 0.5 * np.exp(-((t - 8) ** 2) / 0.1)
    eligible = np.ones_like(t, dtype=bool)
    eligible[(t > 4) & (t < 6)] = False  # the best peak is inside a fade
    peaks = find_peaks(t, s, top=2, min_gap=1.0, eligible=eligible)
    assert all(eligible[p] for p in peaks)
    assert round(t[peaks[0]], 1) == 8.0


def test_curve_ends_and_flat_curves():
    t = np.arange(10.0)
    rising = np.linspace(0, 1, 10)
    assert find_peaks(t, rising, top=1) == [9]
    assert len(find_peaks(t, np.full(10, 0.5), top=3)) == 1  # one plateau, one key-frame
    assert find_peaks(np.zeros(0), np.zeros(0)) == []
