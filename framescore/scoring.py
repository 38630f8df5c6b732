"""Batched scoring: a decoding thread feeds batches to the model while it scores the last one.

The scorers themselves live in :mod:`framescore.scorers`; this module takes any
:class:`~framescore.models.spec.Scorer` and imports no torch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from framescore.io.video import Frame
from framescore.models.spec import Scorer
from framescore.scorers.device import resolve_device

__all__ = ["Prefetch", "ScoredFrames", "lower_thread_priority", "prefetch", "resolve_device",
           "score_frames"]


@dataclass
class ScoredFrames:
    """Per-frame results of a scoring pass, in decode order."""

    indices: np.ndarray
    times: np.ndarray
    scores: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.indices)


_END = object()


def _batches(frames: Iterable[Frame], batch_size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    try:
        for frame in frames:
            batch.append(frame)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        close = getattr(frames, "close", None)
        if close is not None:  # a decoder stopped early closes its file now
            close()


class Prefetch:
    """Iterate ``items`` in a background thread, at most ``depth`` ahead; errors re-raise in
    the consumer. The thread starts at once (so it runs at the priority its creator has now)
    and is stopped by :meth:`close`, which iterating to the end calls."""

    def __init__(self, items: Iterable, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._items = items
        self.waited = 0.0     # seconds the consumer spent waiting for the next item
        self._thread = threading.Thread(target=self._work, name="framescore-decode",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        """Hand ``item`` to the consumer; False once :meth:`close` was called."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)
        finally:
            # close a generator source here (a video's decoder and its FFmpeg threads), not
            # whenever the garbage collector gets to it, possibly at interpreter exit
            close = getattr(self._items, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def __iter__(self) -> Iterator:
        try:
            while True:
                t0 = time.perf_counter()
                item = self._queue.get()
                self.waited += time.perf_counter() - t0
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` ahead; errors re-raise here."""
    yield from Prefetch(items, depth)


# How much the scoring thread yields to the decoding threads (a nice increment, Linux only),
# when decoding is what limits the speed. FFmpeg decodes a frame in several threads that wait
# on each other; when the scorer takes a core from one of them, the others stall with it. A
# scorer below the decoder's priority runs on the time the decoder leaves idle: on 2 cores,
# 720p H.264 with `rules`, 77 → 81 % of the decode-only rate at +10 (84 % at +19, which would
# starve the scorer on a machine busy with other work; see bench/RESULTS.md). A scorer that
# is itself the bottleneck (a network on the CPU) keeps its priority: lowered, it lost 7 %.
# Only the scoring thread of a call is lowered, never the caller's thread.
CONSUMER_NICE = 10
# batches [_PROBE_FROM, _PROBE_TO) tell who waits for whom; the scorer yields when it spent
# more than _PROBE_WAIT of that time waiting for decoded frames
_PROBE_FROM, _PROBE_TO, _PROBE_WAIT = 2, 6, 0.3


def lower_thread_priority(increment: int | None = None) -> bool:
    """Raise the calling thread's nice value by ``increment`` (default :data:`CONSUMER_NICE`;
    Linux; a no-op elsewhere or where it is not allowed). True when it was lowered."""
    if increment is None:
        increment = CONSUMER_NICE
    if increment <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except (OSError, AttributeError):
        return False
    return True


# seconds an interrupted call waits for its worker to finish the batch in hand
_CANCEL_WAIT = 30.0

# extras worth keeping per frame; big per-frame arrays (encodings, histograms) are dropped
_KEEP_EXTRA_MAX_DIM = 16


def score_frames(frames: Iterable[Frame], scorer: Scorer, batch_size: int = 32,
                 on_batch: Callable[[int], None] | None = None,
                 observe: Callable[[np.ndarray], None] | None = None,
                 yield_to_decoder: bool = True) -> ScoredFrames:
    """Score every frame, decoding the next batch in a background thread meanwhile.

    ``observe`` sees each stacked batch ``(N, H, W, 3)`` before the model does (the key-frames
    job takes its cut/fade signatures there). Memory stays bounded: two batches of images in
    flight, scalars kept per frame. With ``yield_to_decoder`` the batches are scored in a
    worker thread, which lowers its priority below the decoding thread's
    (:data:`CONSUMER_NICE`) when it finds itself waiting for decoded frames; ``on_batch`` and
    ``observe`` are then called from that thread, and the call returns (or raises) when it is
    done, as without it.
    """
    if not yield_to_decoder:
        return _score_all(Prefetch(_batches(frames, batch_size)), scorer, on_batch, observe)
    box: dict[str, object] = {}
    cancel, done = threading.Event(), threading.Event()

    def work() -> None:
        # the decoding thread is started first, so it keeps the caller's priority
        batches = Prefetch(_batches(frames, batch_size))
        try:
            box["result"] = _score_all(batches, scorer, on_batch, observe, cancel,
                                       yield_when_waiting=True)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            batches.close()
            done.set()

    worker = threading.Thread(target=work, name="framescore-score", daemon=True)
    worker.start()
    # Wait on an Event, not on Thread.join: on Python 3.11 a join cut short by Ctrl-C marks
    # the thread as finished while it still runs (threading's bpo-45274 handling releases the
    # running thread's lock), so a second join returned at once and the interpreter exited
    # under a thread inside PyTorch or FFmpeg: "terminate called without an active exception".
    try:
        done.wait()
    except BaseException:
        cancel.set()          # Ctrl-C or SIGTERM: stop after the batch in hand
        done.wait(timeout=_CANCEL_WAIT)
        box.clear()           # its traceback holds the decoder; free it here, not at exit
        raise
    if "error" in box:
        error = box.pop("error")
        raise error  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def _score_all(batches: Prefetch, scorer: Scorer, on_batch: Callable[[int], None] | None,
               observe: Callable[[np.ndarray], None] | None,
               cancel: threading.Event | None = None,
               yield_when_waiting: bool = False) -> ScoredFrames:
    indices: list[int] = []
    times: list[float] = []
    scores: list[np.ndarray] = []
    extras: dict[str, list[np.ndarray]] = {}
    probe = (0.0, 0.0)    # (time, seconds waited) when the probe began
    for n, batch in enumerate(batches):
        if cancel is not None and cancel.is_set():
            batches.close()
            raise KeyboardInterrupt
        if yield_when_waiting and n == _PROBE_FROM:
            probe = (time.perf_counter(), batches.waited)
        elif yield_when_waiting and n == _PROBE_TO:
            elapsed, waited = time.perf_counter() - probe[0], batches.waited - probe[1]
            if waited > _PROBE_WAIT * elapsed:   # the decoder is the bottleneck: yield to it
                lower_thread_priority()
        images = np.stack([f.image for f in batch])
        if observe is not None:
            observe(images)
        out = scorer.score_batch(images)
        indices.extend(f.index for f in batch)
        times.extend(f.time for f in batch)
        scores.append(np.asarray(out["score"], dtype=np.float64).reshape(-1))
        for key, value in out.items():
            if key == "score":
                continue
            value = np.asarray(value)
            if value.ndim == 1 or (value.ndim == 2 and value.shape[1] <= _KEEP_EXTRA_MAX_DIM):
                extras.setdefault(key, []).append(value)
        if on_batch is not None:
            on_batch(len(batch))
    return ScoredFrames(
        indices=np.asarray(indices, dtype=np.int64),
        times=np.asarray(times, dtype=np.float64),
        scores=np.concatenate(scores) if scores else np.zeros(0),
        extras={k: np.concatenate(v) for k, v in extras.items()},
    )
