"""Cuts and fades are found from the frames themselves."""

from __future__ import annotations

import numpy as np

from framescore.samples import photo
from framescore.transitions import Signatures, transition_mask


def run(frames: list[np.ndarray], fps: float = 25.0) -> np.ndarray:
    sigs = Signatures()
    for f in frames:
        sigs.add(f)
    return transition_mask(np.arange(len(frames)) / fps, sigs)


def pan(image: np.ndarray, n: int, step: int = 2) -> list[np.ndarray]:
    return [image[:200, i * step: i * step + 300] for i in range(n)]


def test_a_steady_pan_has_no_transition():
    assert not run(pan(photo("coffee"), 30)).any()


def test_a_cut_marks_both_sides():
    frames = pan(photo("coffee"), 15) + pan(photo("astronaut"), 15)
    mask = run(frames)
    assert mask[13:17].all()
    assert not mask[:11].any() and not mask[19:].any()


def test_a_fade_to_black_is_marked():
    base = pan(photo("chelsea"), 40, step=1)
    alpha = np.concatenate([np.ones(10), np.linspace(1, 0, 15), np.zeros(5), np.ones(10)])
    frames = [(f * a).astype(np.uint8) for f, a in zip(base, alpha, strict=True)]
    mask = run(frames)
    assert mask[12:30].all()      # fading and black
    assert not mask[:8].any()     # before the fade


def test_memory_does_not_grow_with_length():
    sigs = Signatures()
    for f in pan(photo("coffee"), 50, step=1):
        sigs.add(f)
    assert all(isinstance(v, float) for v in sigs.corr_prev)


def test_batches_and_single_frames_give_the_same_signatures():
    frames = pan(photo("coffee"), 12) + pan(photo("astronaut"), 12)
    one = Signatures()
    for f in frames:
        one.add(f)
    batched = Signatures()
    for start in range(0, len(frames), 5):  # batch edges inside the pan and at the cut
        batched.add_batch(np.stack(frames[start:start + 5]))
    np.testing.assert_allclose(batched.means, one.means, rtol=1e-6)
    np.testing.assert_allclose(batched.corr_prev, one.corr_prev, atol=1e-6)
    assert min(batched.corr_prev) < 0.5  # the cut is seen across a batch edge


def test_tiny_and_flat_frames_have_finite_signatures():
    rng = np.random.default_rng(0)
    sigs = Signatures()
    sigs.add_batch(rng.integers(0, 256, (3, 7, 20, 3), dtype=np.uint8))
    sigs.add_batch(np.full((2, 7, 20, 3), 128, dtype=np.uint8))
    assert np.isfinite(sigs.corr_prev).all() and np.isfinite(sigs.means).all()
    assert sigs.corr_prev[-1] == 0.0  # a flat frame correlates with nothing
