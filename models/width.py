"""Reduced-width networks: the channel multiplier of the AlexNet (Kong) and VGG16 (Jin) models.

``width`` multiplies every conv channel count and fc size of a network and keeps its layers; 1
is the paper's network (and the only width ImageNet weights fit).
"""

from __future__ import annotations

import math


def scaled(n: int, width: float) -> int:
    """``n`` channels (or fc units) at ``width``: rounded, at least 1."""
    if not (math.isfinite(width) and width > 0):
        raise ValueError(f"width must be a positive number, got {width}")
    return max(1, round(n * width))
