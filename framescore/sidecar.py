"""A second process that imports the slow libraries while this one decodes, then runs the
steps that need them.

filterpy (whose package imports scipy.stats) and matplotlib take about a second of CPU to import
on a small machine: as long as a short clip takes to decode and score. Imported in a thread of
this process they hold the interpreter lock that the decoding and scoring threads need too, so
the wait barely shrinks; imported in a second process they run on another core. The key-frames
job hands that process the two steps that need them, the Kalman smoothing and the plot.

With one usable core, when the process cannot start or dies, or when ``FRAMESCORE_SIDECAR=0``,
every step runs here instead, with the same result: the helper only changes where the work is
done, never what it computes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["Sidecar", "usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _import(*modules: str) -> None:
    for name in modules:
        importlib.import_module(name)


class Sidecar:
    """One helper process; :meth:`warm` queues imports, :meth:`call` runs a function there.

    Calls run one after another in the order they are made. A call whose helper fails for a
    reason of its own (the process died, an argument cannot be sent) runs here instead; an
    error raised by the function itself is raised here as it would be without the helper.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = usable_cores() >= 2 and os.environ.get("FRAMESCORE_SIDECAR", "1") != "0"
        self._pool = None
        if enabled:
            try:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                # spawn, not fork: this process may hold threads (decoder, runtimes) by then
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            except (OSError, ImportError):
                self._pool = None

    @property
    def active(self) -> bool:
        """Whether a helper process is (still) in use."""
        return self._pool is not None

    def warm(self, *modules: str) -> None:
        """Import ``modules`` in the helper, in this order, before any later call runs."""
        self._submit(_import, *modules)

    def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)``, in the helper when there is one (``fn`` must be a module-level
        function and ``args`` picklable), else here."""
        return self.start(fn, *args)()

    def start(self, fn: Callable[..., T], /, *args: Any) -> Callable[[], T]:
        """Start ``fn(*args)`` in the helper now; the function returned waits for its result
        (and computes it here if the helper failed)."""
        future = self._submit(fn, *args)

        def result() -> T:
            if future is not None:
                from concurrent.futures.process import BrokenProcessPool
                from pickle import PicklingError

                try:
                    return future.result()
                except (BrokenProcessPool, PicklingError):
                    self._drop()
            return fn(*args)

        return result

    def close(self) -> None:
        """Stop the helper (it is idle, or its work is no longer wanted)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Sidecar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future | None:
        if self._pool is None:
            return None
        try:
            return self._pool.submit(fn, *args)
        except Exception:  # the pool broke or shut down, or a process could not start
            self._drop()
            return None

    def _drop(self) -> None:
        self.close()
