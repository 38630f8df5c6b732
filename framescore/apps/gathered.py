"""What a key-frames run's decoding and scoring passes hand to selection, whichever path
(every frame, or key-frames first) produced it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from framescore.scoring import ScoredFrames
from framescore.shots import Boundary, Shot


@dataclass
class Gathered:
    """The scored frames (in frame order) with their thumbnails, the boundaries and shots
    found, and the ``scan`` section of keyframes.json (which path ran, what it decoded)."""

    scored: ScoredFrames
    thumbs: np.ndarray
    boundaries: list[Boundary]
    shots: list[Shot]
    scan: dict = field(default_factory=dict)
