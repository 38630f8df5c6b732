"""Ending cleanly on Ctrl-C (SIGINT) and SIGTERM.

:func:`handle_signals` makes both signals raise an exception in the main thread —
:class:`KeyboardInterrupt` for SIGINT, :class:`Terminated` for SIGTERM — so the ``finally``
blocks and context managers on the way out run: a staged output folder is removed, worker
threads are stopped. :func:`deferred` holds both signals back while a few renames that must not
be cut in half run (replacing an old output folder), and raises them when they are done.

:func:`exit_now` ends the command-line process after an interrupt, once the cleanup has run,
with ``os._exit`` after flushing stdout and stderr: no interpreter finalization. A thread still
inside native code at finalization (FFmpeg's decoder, a PyTorch op) is killed in the middle of
C++ code ("terminate called without an active exception", exit 134, or a fatal "GIL released"
error); the scoring worker is stopped and waited for (see :func:`framescore.scoring.score_frames`),
but a batch of a large model may outlast that wait, and finalizing buys nothing here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_SIGINT = 128 + signal.SIGINT    # 130, what a shell reports for Ctrl-C
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, like KeyboardInterrupt, so ``except Exception`` lets
    it through and cleanup code that catches BaseException sees it)."""


_state = threading.local()
_pending: list[int] = []


def _is_deferred() -> bool:
    return getattr(_state, "depth", 0) > 0


def _raise_for(signum: int) -> None:
    if signum == signal.SIGTERM:
        raise Terminated("terminated")
    raise KeyboardInterrupt


def _handler(signum: int, frame: FrameType | None) -> None:
    if _is_deferred():
        _pending.append(signum)
        return
    _raise_for(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT → KeyboardInterrupt and SIGTERM → :class:`Terminated` inside the block (main
    thread only; elsewhere, or where a signal is ignored, it changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if current == signal.SIG_IGN:  # e.g. started with nohup or in the background
            continue
        old[signum] = current
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back (as installed by :func:`handle_signals`) until the block ends;
    a signal that came meanwhile is raised then."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth and _pending and \
                threading.current_thread() is threading.main_thread():
            signum = _pending.pop(0)
            _pending.clear()
            _raise_for(signum)


def exit_now(code: int) -> None:
    """End the process with ``code`` at once, flushing stdout and stderr but running no
    finalizers (see the module docstring). For the command line after an interrupt only."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
