"""The score-curve plot: each shot's curve on its own shaded band, transitions marked, and the
key-frames numbered, with thumbnails in a row above the axes that never overlap."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from PIL import Image, ImageDraw

RED, BLUE, PALE = "#d1495b", "#1f4e79", "#9bb7d4"
THUMB_W, THUMB_H = 120, 80


def _numbered(thumb: np.ndarray, rank: int) -> Image.Image:
    """A thumbnail with its rank in a red tab at the top-left corner."""
    image = Image.fromarray(thumb).convert("RGB")
    image.thumbnail((THUMB_W, THUMB_H))
    draw = ImageDraw.Draw(image)
    text = str(rank)
    box = draw.textbbox((0, 0), text)
    draw.rectangle((0, 0, box[2] + 6, box[3] + 4), fill=RED)
    draw.text((3, 1), text, fill="white")
    return image


def curve_png(times: np.ndarray, raw_norm: np.ndarray, smoothed: np.ndarray,
              shot_of: np.ndarray, transitions: Sequence[tuple[str, float, float]],
              picks: Sequence[tuple[int, int, np.ndarray | None]], title: str = "") -> bytes:
    """A PNG of the curve.

    ``shot_of`` numbers each sample's shot (0 in a transition); ``transitions`` are
    ``(kind, start_time, end_time)``; ``picks`` are ``(rank, sample position, thumbnail or
    None)``. Alternate shots are shaded; the smoothed curve is drawn shot by shot (it restarts
    at every boundary); cuts are dashed lines, fades and dissolves hatched spans. Thumbnails
    stand in time order in evenly spaced slots above the plot, each joined to its frame by a
    line and numbered with its rank.
    """
    t = np.asarray(times, dtype=np.float64)
    shot_of = np.asarray(shot_of)
    # the object API and the Agg canvas: no pyplot, no GUI backend, no global figure state
    fig = Figure(figsize=(12, 5.2 if picks else 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    shots = [int(s) for s in np.unique(shot_of[shot_of > 0])]
    for k, s in enumerate(shots):
        rows = np.flatnonzero(shot_of == s)
        lo, hi = t[rows[0]], t[rows[-1]]
        if k % 2:
            ax.axvspan(lo, hi, color="#eef2f7", zorder=0)
        ax.plot(t[rows], smoothed[rows], color=BLUE, lw=2.0,
                label="smoothed (per shot)" if k == 0 else None)
        ax.text((lo + hi) / 2, -0.035, f"shot {s}", ha="center", va="top", fontsize=7,
                color="#555555")
    ax.plot(t, raw_norm, color=PALE, lw=0.8, label="raw (normalized)", zorder=1)
    for n, (kind, a, b) in enumerate(transitions):
        label = None
        if kind == "cut":
            ax.axvline(a, color="#777777", lw=0.9, ls="--", zorder=1)
        else:
            label = "fade / dissolve" if n == next(
                (i for i, x in enumerate(transitions) if x[0] != "cut"), -1) else None
            ax.axvspan(a, b, facecolor="none", edgecolor="#999999", hatch="///", lw=0,
                       zorder=1, label=label)
    ordered = sorted(picks, key=lambda p: t[p[1]])
    n = len(ordered)
    for slot, (rank, row, thumb) in enumerate(ordered):
        x, y = t[row], smoothed[row]
        ax.plot(x, y, "o", color=RED, ms=6, zorder=3)
        ax.annotate(str(rank), (x, y), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=9, color=RED, weight="bold", zorder=3)
        if thumb is None:
            continue
        image = _numbered(thumb, rank)
        # slot centres spread evenly over the axes' width, in time order: never overlapping
        fx = (slot + 0.5) / n
        box = AnnotationBbox(OffsetImage(np.asarray(image), zoom=min(1.0, 10.0 / max(n, 1))),
                             (x, y), xybox=(fx, 1.0), xycoords="data",
                             boxcoords=("axes fraction", "axes fraction"),
                             box_alignment=(0.5, -0.12), frameon=True, pad=0.15,
                             arrowprops={"arrowstyle": "-", "color": RED, "lw": 0.7,
                                         "alpha": 0.6})
        ax.add_artist(box)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (normalized)")
    ax.set_ylim(-0.08, 1.08)
    if len(t):
        ax.set_xlim(float(t[0]), float(t[-1]) if t[-1] > t[0] else float(t[0]) + 1.0)
    ax.grid(alpha=0.25)
    # below the time axis, where it hides neither the curve nor the shot labels
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=3, fontsize=8,
              frameon=False)
    if title:  # above the thumbnails, which stand on the axes' top edge
        ax.set_title(title, fontsize=10, pad=110 if picks else 6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
