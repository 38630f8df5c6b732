"""A short clip built from real photographs, for ``framescore demo`` and the tests.

The clip pans a virtual camera across photos that scikit-image ships, with the trouble real
footage has: a shaky, motion-blurred stretch, a fade to black and back, and a cut. Motion blur
is made physically: each blurred frame is the mean of the crops the camera window passes
through during the exposure. ``DemoClip.segments`` records which stretches are clean, so a
test can check that key-frames come from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from framescore.io.writer import write_clip
from framescore.samples import photo

WIDTH, HEIGHT, FPS = 480, 320, 25


@dataclass(frozen=True)
class Segment:
    """A stretch of the clip: which photo, what happens, from/to time in seconds."""

    photo: str
    kind: str  # "clean", "shaky", "fade"
    start: float
    end: float


@dataclass
class DemoClip:
    path: Path
    segments: list[Segment] = field(default_factory=list)

    def kind_at(self, t: float) -> str:
        for s in self.segments:
            if s.start <= t < s.end:
                return s.kind
        return self.segments[-1].kind if self.segments else "clean"


# (photo, kind, seconds)
SCRIPT = (
    ("coffee", "clean", 3.0),
    ("astronaut", "shaky", 2.0),
    ("astronaut", "clean", 2.5),
    ("astronaut", "fade", 1.6),
    ("rocket", "clean", 3.0),
    ("motorcycle_left", "shaky", 2.0),
    ("chelsea", "clean", 2.5),
)


def _canvas(name: str, scale: float = 1.45) -> np.ndarray:
    """The photo resized so the camera window (WIDTH x HEIGHT) can pan across it."""
    img = Image.fromarray(photo(name))
    s = max(WIDTH * scale / img.width, HEIGHT * scale / img.height)
    return np.asarray(img.resize((round(img.width * s), round(img.height * s)),
                                 Image.Resampling.LANCZOS))


def _crop(canvas: np.ndarray, x: float, y: float) -> np.ndarray:
    h, w = canvas.shape[:2]
    xi = int(np.clip(round(x), 0, w - WIDTH))
    yi = int(np.clip(round(y), 0, h - HEIGHT))
    return canvas[yi:yi + HEIGHT, xi:xi + WIDTH]


def _segment_frames(name: str, kind: str, seconds: float, rng: np.random.Generator,
                    fade_from: float = 1.0) -> Iterator[np.ndarray]:
    canvas = _canvas(name)
    h, w = canvas.shape[:2]
    n = round(seconds * FPS)
    x0, x1 = 0.1 * (w - WIDTH), 0.9 * (w - WIDTH)
    y = 0.5 * (h - HEIGHT)
    for i in range(n):
        u = i / max(n - 1, 1)
        x = x0 + (x1 - x0) * u
        if kind == "shaky":
            # hand shake: a random exposure path of 12-30 px in a random direction
            length = rng.uniform(12, 30)
            angle = rng.uniform(0, np.pi)
            jx, jy = rng.normal(0, 6, size=2)
            steps = np.linspace(-0.5, 0.5, 9)
            crops = [_crop(canvas, x + jx + s * length * np.cos(angle),
                           y + jy + s * length * np.sin(angle)).astype(np.float32)
                     for s in steps]
            yield np.clip(np.mean(crops, axis=0), 0, 255).astype(np.uint8)
        elif kind == "fade":
            # down to black over the first 40 %, hold, back up over the last 40 %
            a = max(0.0, 1 - u / 0.4) if u < 0.5 else max(0.0, (u - 0.6) / 0.4)
            yield (_crop(canvas, x, y).astype(np.float32) * a).astype(np.uint8)
        else:
            yield _crop(canvas, x, y)


def build_demo_clip(path: str | Path, seed: int = 0) -> DemoClip:
    """Write the demo clip (about 17 s, 480 x 320, 25 fps, H.264) to ``path``."""
    rng = np.random.default_rng(seed)
    clip = DemoClip(path=Path(path))
    t = 0.0
    for name, kind, seconds in SCRIPT:
        clip.segments.append(Segment(name, kind, t, t + seconds))
        t += seconds

    def frames() -> Iterator[np.ndarray]:
        for name, kind, seconds in SCRIPT:
            yield from _segment_frames(name, kind, seconds, rng)

    write_clip(clip.path, frames(), fps=FPS, crf=18)
    return clip
