"""framescore: find the most beautiful moments in videos and photo bursts.

The Python API mirrors the command line::

    import framescore
    result = framescore.keyframes("clip.mp4", top=5)        # shots, curve, selection
    framescore.write_keyframes(result, "clip.framescore")   # frames, CSV, JSON, plot
    scored = framescore.score_video("clip.mp4", model="rules", every=2)
    smooth = framescore.smooth_curve(scored.scores, scored.times)   # one curve, no shots
    cuts = framescore.detect_boundaries("clip.mp4")        # cuts, fades, dissolves
    peaks = framescore.find_peaks(scored.times, smooth, scored.scores, top=3, min_gap=2.0)
    best = framescore.best_shot(["burst/"], top=1)
    ranking = framescore.rank("photos/", "photos.ranked")
    crop = framescore.crop("photo.jpg", "16:9")

Names are imported on first use, so ``import framescore`` (and the command line's ``--help``)
does not pay for PyTorch.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# PyTorch's OpenMP threads spin for about 300,000 iterations before they sleep. Beside another
# busy process on a small CPU (a second framescore job, a training run) that spinning steals the
# cores: the default model scored 18 images/s there instead of 65. A short spin costs nothing
# on an idle CPU (bench/RESULTS.md). Set here, before PyTorch and its OpenMP runtime load; a
# user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
SPIN_COUNT = "10000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT

__version__ = "0.1.0"

_LAZY = {
    "keyframes": "framescore.api", "write_keyframes": "framescore.api",
    "score_video": "framescore.api", "best_shot": "framescore.api", "rank": "framescore.api",
    "crop": "framescore.api", "Smoothing": "framescore.curve",
    "find_peaks": "framescore.curve", "smooth_curve": "framescore.curve",
    "smooth_shots": "framescore.curve", "detect_boundaries": "framescore.shots",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'framescore' has no attribute {name!r}")
