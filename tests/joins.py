"""Clips joined from stretches of real footage, with known transitions, and the scoring of a
shot-boundary detector against them.

``join_clips`` decodes each stretch with PyAV, brings it to one size and frame rate, joins
neighbours by a hard cut, a dissolve or a fade through black, encodes the result as H.264
(``framescore.io.writer.write_clip``) and returns where every transition lies in the output.
``match_boundaries`` pairs what a detector found with that truth, one to one.

Conventions (times are player times in the output, seconds = frame index / fps):

* a **cut** at frame ``k`` (the first frame of the new shot): ``start_time == end_time ==
  k / fps``;
* a **dissolve** of ``m`` frames overlaps the two stretches: output frames ``s .. s+m-1`` are
  ``(1 - a) * A + a * B`` with ``a = (i + 1) / (m + 1)`` for the ``i``-th of them, where ``A``
  is the last ``m`` frames of the outgoing stretch and ``B`` the first ``m`` of the incoming
  one; so the clip is ``m`` frames shorter than its stretches together, and with ``m`` odd the
  middle frame is the plain mean of its two sources;
* a **fade** of ``m`` frames goes out to black over the last ``a = m // 2`` frames of the
  outgoing stretch (gain ``1 - (i + 1) / a``, so its last frame is black) and in from black over
  the first ``b = m - a`` frames of the incoming one (gain ``i / b``, so its first is black);
  it takes no time away.

For both gradual kinds ``start_time`` is the time of the first transition frame and
``end_time`` that of the first clean frame of the new shot, so ``end_time - start_time`` is
the transition's length and a cut is the limit of a gradual transition with ``m = 0``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

from framescore.io.writer import write_clip

KINDS = ("cut", "dissolve", "fade")

Source = tuple[str | Path, float, float]  # path, start (s), duration (s)
Transition = tuple[str, float]  # kind, length (s); ("cut", 0)


@dataclass(frozen=True)
class TrueBoundary:
    """One transition of a joined clip; frames are output frame indices (``end_frame`` is the
    first clean frame of the new shot)."""

    kind: str
    start_time: float
    end_time: float
    start_frame: int
    end_frame: int


def read_stretch(path: str | Path, start_s: float, duration_s: float,
                 size: tuple[int, int], fps: float = 25.0) -> list[np.ndarray]:
    """``round(duration_s * fps)`` RGB frames of ``path`` from ``start_s`` on, at ``fps``.

    Output frame ``j`` shows the source frame on screen at ``start_s + j / fps`` (the latest
    one that started by then). Sources are taken in decoding order and timed by index over
    their average frame rate, so they must have a constant frame rate (AVI files such as
    ``Megamind.avi`` carry out-of-order pts that this sidesteps). Each frame is cropped
    centrally to the aspect of ``size = (width, height)`` and resized to it.
    """
    w, h = size
    n = round(duration_s * fps)
    if n < 1:
        raise ValueError(f"stretch of {duration_s} s has no frame at {fps} fps")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        if rate <= 0:
            raise ValueError(f"{path}: no frame rate")
        wanted = np.floor((start_s + np.arange(n) / fps) * rate + 1e-6).astype(int)
        need = {int(i) for i in wanted}
        last = int(wanted[-1])
        picked: dict[int, np.ndarray] = {}
        for index, frame in enumerate(container.decode(stream)):
            if index in need:
                picked[index] = _fit(frame.to_ndarray(format="rgb24"), w, h)
            if index >= last:
                break
    if last not in picked:
        raise ValueError(f"{path} ends before {start_s + duration_s:.3f} s")
    return [picked[int(i)] for i in wanted]


def _fit(image: np.ndarray, w: int, h: int) -> np.ndarray:
    ih, iw = image.shape[:2]
    if iw * h > ih * w:  # wider than the target: crop the sides
        cw = round(ih * w / h)
        x0 = (iw - cw) // 2
        image = image[:, x0:x0 + cw]
    else:
        ch = round(iw * h / w)
        y0 = (ih - ch) // 2
        image = image[y0:y0 + ch]
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def _frames_of(transition: Transition, fps: float) -> tuple[str, int]:
    kind, length = transition
    if kind not in KINDS:
        raise ValueError(f"unknown transition {kind!r} (one of {', '.join(KINDS)})")
    m = 0 if kind == "cut" else round(length * fps)
    if kind != "cut" and m < 2:
        raise ValueError(f"a {kind} needs at least 2 frames, got {length} s at {fps} fps")
    return kind, m


def _head_tail(kind: str, m: int) -> tuple[int, int]:
    """Frames of the outgoing stretch's tail and the incoming stretch's head a transition
    takes."""
    if kind == "dissolve":
        return m, m
    if kind == "fade":
        return m // 2, m - m // 2
    return 0, 0


def _render(sources: Sequence[Source], joins: Sequence[tuple[str, int]],
            size: tuple[int, int], fps: float,
            truth: list[TrueBoundary]) -> Iterator[np.ndarray]:
    emitted = 0
    pending: list[np.ndarray] = []
    for j, (path, start, duration) in enumerate(sources):
        stretch = read_stretch(path, start, duration, size, fps)
        takes_in = _head_tail(*joins[j - 1])[1] if j > 0 else 0
        takes_out = _head_tail(*joins[j])[0] if j < len(joins) else 0
        if len(stretch) < takes_in + takes_out + 1:
            raise ValueError(f"stretch {j} ({path}, {duration} s) is too short for its "
                             f"transitions: no clean frame left")
        if j == 0:
            pending = stretch
            continue
        kind, m = joins[j - 1]
        out_n, in_n = _head_tail(kind, m)
        keep = len(pending) - out_n
        yield from pending[:keep]
        emitted += keep
        tail, head = pending[keep:], stretch[:in_n]
        start_frame = emitted
        if kind == "dissolve":
            for i in range(m):
                a = (i + 1) / (m + 1)
                mixed = (1 - a) * tail[i].astype(np.float32) + a * head[i].astype(np.float32)
                yield np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        elif kind == "fade":
            for i, image in enumerate(tail):
                yield _gain(image, 1 - (i + 1) / out_n)
            for i, image in enumerate(head):
                yield _gain(image, i / in_n)
        emitted += m  # a dissolve's m frames mix out_n = in_n = m; a fade's are out_n + in_n
        truth.append(TrueBoundary(kind, start_frame / fps, emitted / fps, start_frame,
                                  emitted))
        pending = stretch[in_n:]
    yield from pending


def _gain(image: np.ndarray, g: float) -> np.ndarray:
    return np.clip(np.rint(image.astype(np.float32) * g), 0, 255).astype(np.uint8)


def join_clips(sources: Sequence[Source], out_path: str | Path,
               transitions: Sequence[Transition], size: tuple[int, int] = (640, 360),
               fps: float = 25.0) -> list[TrueBoundary]:
    """Render ``sources`` (``(path, start_s, duration_s)`` each) joined by ``transitions``
    (one per junction: ``("cut", 0)``, ``("dissolve", seconds)`` or ``("fade", seconds)``)
    into the H.264 clip ``out_path`` and return its transitions, in order.

    The output is deterministic for the same inputs. Every stretch must keep at least one
    frame outside its transitions.
    """
    if len(sources) < 1 or len(transitions) != len(sources) - 1:
        raise ValueError(f"{len(sources)} sources need {max(len(sources) - 1, 0)} "
                         f"transitions, got {len(transitions)}")
    w, h = size
    if w % 2 or h % 2:
        raise ValueError(f"size {w}x{h} must be even for H.264 4:2:0")
    joins = [_frames_of(t, fps) for t in transitions]
    truth: list[TrueBoundary] = []
    write_clip(out_path, _render(sources, joins, size, fps, truth), fps=fps)
    return truth


# -- scoring a detector ---------------------------------------------------------------------

@dataclass
class MatchCounts:
    """Counts for one group of boundaries ("hard" = cuts, "gradual" = dissolves and fades).

    ``tp``/``fn``: true boundaries of the group found / missed (recall = tp / (tp + fn));
    ``hits``/``fp``: reported boundaries of the group that matched a true one (of any group)
    / matched none (precision = hits / (hits + fp)); ``kind_right``: true boundaries of the
    group found by a report of the same group."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    hits: int = 0
    kind_right: int = 0

    @property
    def precision(self) -> float:
        return self.hits / (self.hits + self.fp) if self.hits + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    def __iadd__(self, other: MatchCounts) -> MatchCounts:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.hits += other.hits
        self.kind_right += other.kind_right
        return self


def group(kind: str) -> str:
    """"hard" for a cut, "gradual" for anything else (dissolve, fade, wipe, ...)."""
    return "hard" if kind == "cut" else "gradual"


def match_pairs(truth: Sequence, found: Sequence, fps: float = 25.0, cut_frames: int = 2,
                gradual_pad_s: float = 0.25) -> list[tuple[int, int]]:
    """The one-to-one pairing ``(truth index, found index)`` that ``match_boundaries`` counts.

    Both sequences hold objects with ``kind``, ``start_time`` and ``end_time`` (seconds). A
    report matches a true cut when its span comes within ``cut_frames`` frames of the cut's
    time; it matches a true gradual transition when its span overlaps the true span widened
    by ``gradual_pad_s`` on each side. Among all one-to-one pairings the largest is taken
    (then the one whose pairs lie closest), so a report is never counted twice.
    """
    if not len(truth) or not len(found):
        return []
    big = 1e9
    cost = np.full((len(truth), len(found)), big)
    for i, t in enumerate(truth):
        if group(t.kind) == "hard":
            lo = hi = t.start_time
            tol = cut_frames / fps + 1e-6
        else:
            lo, hi = t.start_time, t.end_time
            tol = gradual_pad_s + 1e-6
        for j, f in enumerate(found):
            gap = max(lo - f.end_time, f.start_time - hi, 0.0)
            if gap <= tol:
                centre = abs((lo + hi) - (f.start_time + f.end_time)) / 2
                cost[i, j] = gap + 1e-3 * centre
    rows, cols = linear_sum_assignment(cost)
    return sorted((int(i), int(j)) for i, j in zip(rows, cols, strict=True) if cost[i, j] < big)


def match_boundaries(truth: Sequence, found: Sequence, fps: float = 25.0,
                     cut_frames: int = 2, gradual_pad_s: float = 0.25
                     ) -> dict[str, MatchCounts]:
    """Pair detected boundaries with true ones (``match_pairs``) and count per group,
    ``{"hard": MatchCounts, "gradual": MatchCounts}``."""
    pairs = match_pairs(truth, found, fps, cut_frames, gradual_pad_s)
    counts = {"hard": MatchCounts(), "gradual": MatchCounts()}
    for i, j in pairs:
        tg, fg = group(truth[i].kind), group(found[j].kind)
        counts[tg].tp += 1
        counts[fg].hits += 1
        counts[tg].kind_right += tg == fg
    matched_t = {i for i, _ in pairs}
    matched_f = {j for _, j in pairs}
    for i, t in enumerate(truth):
        if i not in matched_t:
            counts[group(t.kind)].fn += 1
    for j, f in enumerate(found):
        if j not in matched_f:
            counts[group(f.kind)].fp += 1
    return counts
