"""The score-curve plot: raw and smoothed scores, key-frames marked, with thumbnails."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402
from PIL import Image  # noqa: E402


def curve_png(times: np.ndarray, raw_norm: np.ndarray, smoothed: np.ndarray,
              peaks: Sequence[int], thumbs: dict[int, np.ndarray] | None = None,
              title: str = "") -> bytes:
    """A PNG of the curve: normalized raw scores (thin), smoothed (thick), numbered key-frames."""
    fig, ax = plt.subplots(figsize=(12, 4.6 if thumbs else 4.0), dpi=110)
    ax.plot(times, raw_norm, color="#9bb7d4", lw=0.8, label="raw (normalized)")
    ax.plot(times, smoothed, color="#1f4e79", lw=2.0, label="smoothed")
    for rank, p in enumerate(peaks, start=1):
        ax.axvline(times[p], color="#d1495b", lw=0.8, alpha=0.6)
        ax.plot(times[p], smoothed[p], "o", color="#d1495b", ms=6)
        ax.annotate(str(rank), (times[p], smoothed[p]), textcoords="offset points",
                    xytext=(0, 7), ha="center", fontsize=9, color="#d1495b", weight="bold")
        if thumbs and p in thumbs:
            thumb = Image.fromarray(thumbs[p])
            thumb.thumbnail((120, 80))
            box = AnnotationBbox(OffsetImage(np.asarray(thumb), zoom=1.0), (times[p], 1.0),
                                 xybox=(0, 50), xycoords=("data", "axes fraction"),
                                 boxcoords="offset points", frameon=True, pad=0.15)
            ax.add_artist(box)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (normalized)")
    ax.set_ylim(-0.05, 1.1)
    if len(times):
        ax.set_xlim(float(times[0]), float(times[-1]) if times[-1] > times[0] else 1.0)
    ax.grid(alpha=0.25)
    ax.legend(loc="lower right", fontsize=8)
    if title:  # above the thumbnails, which stand on the axes' top edge
        ax.set_title(title, fontsize=10, pad=100 if thumbs else 6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
