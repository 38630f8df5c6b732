"""framescore: find the most beautiful moments in videos and photo bursts.

The Python API mirrors the command line::

    import framescore
    result = framescore.keyframes("clip.mp4", top=5)        # score, smooth, pick peaks
    framescore.write_keyframes(result, "clip.framescore")   # frames, CSV, JSON, plot
    scored = framescore.score_video("clip.mp4", model="rules", every=2)
    smooth = framescore.smooth_curve(scored.scores, scored.times)
    peaks = framescore.find_peaks(scored.times, smooth, scored.scores, top=3, min_gap=2.0)
"""

from __future__ import annotations

__version__ = "0.1.0"

from framescore.api import keyframes, score_video, write_keyframes  # noqa: E402
from framescore.curve import Smoothing, find_peaks, smooth_curve  # noqa: E402

__all__ = ["Smoothing", "__version__", "find_peaks", "keyframes", "score_video",
           "smooth_curve", "write_keyframes"]
