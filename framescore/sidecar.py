"""A second process that imports the slow libraries while this one decodes, then runs the
steps that need them.

filterpy (whose package imports scipy.stats), scipy.signal and matplotlib take about a second
of CPU to import on a small machine: as long as a short clip takes to decode and score.
Imported in a thread of this process they hold the interpreter lock that the decoding and
scoring threads need too, so the wait barely shrinks; imported in a second process they run on
another core. The key-frames job hands that process the steps that need them: the Kalman
smoothing, the selection and the plot.

The helper is ``python -m framescore.sidecar``: it reads pickled ``(function, arguments)``
requests on its standard input and answers each, in order, on its standard output. It ignores
Ctrl-C (the command line handles it) and ends when its input closes, so it never outlives
the command. With one usable core, when it cannot start or dies, or with
``FRAMESCORE_SIDECAR=0``, every step runs here instead with the same result: the helper only
changes where the work is done, never what it computes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")

__all__ = ["Sidecar", "usable_cores"]

_STOP = None  # the request that ends the helper's loop


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _import(*modules: str) -> None:
    for name in modules:
        importlib.import_module(name)


class _Failed(Exception):
    """The helper could not answer (it died, or a request could not be sent)."""


class Sidecar:
    """One helper process; :meth:`warm` queues imports, :meth:`start` and :meth:`call` run a
    module-level function there, in the order they are made.

    A call whose helper fails for a reason of its own (the process died, an argument cannot be
    pickled) runs here instead; an error raised by the function itself is raised here as it
    would be without the helper.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = usable_cores() >= 2 and os.environ.get("FRAMESCORE_SIDECAR", "1") != "0"
        self._proc: subprocess.Popen | None = None
        self._sent = 0          # requests queued
        self._answered = 0      # answers read
        self._answers: dict[int, tuple[str, Any]] = {}
        self._lock = threading.Lock()
        self._warmed: set[str] = set()   # modules already queued for import
        if not enabled:
            return
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "framescore.sidecar"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            self._proc = None
            return
        # requests are written by a thread: a large one (frames for the plot) must not block
        # this one while the helper is still importing
        self._outbox: queue.Queue = queue.Queue()
        self._writer = threading.Thread(target=self._write, name="framescore-sidecar",
                                        daemon=True)
        self._writer.start()

    @property
    def active(self) -> bool:
        """Whether a helper process is (still) in use."""
        return self._proc is not None

    def warm(self, *modules: str) -> None:
        """Import ``modules`` in the helper, in this order, before any later request runs
        (those queued by an earlier call are not asked for again)."""
        new = tuple(dict.fromkeys(m for m in modules if m not in self._warmed))
        if new and self._send(_import, new) is not None:
            self._warmed.update(new)

    def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)``, in the helper when there is one, else here."""
        return self.start(fn, *args)()

    def start(self, fn: Callable[..., T], /, *args: Any) -> Callable[[], T]:
        """Start ``fn(*args)`` in the helper now; the function returned waits for its result
        (and computes it here if the helper failed)."""
        ticket = self._send(fn, args)

        def result() -> T:
            if ticket is not None:
                try:
                    status, value = self._answer(ticket)
                except _Failed:
                    self.close()
                else:
                    if status == "ok":
                        return value
                    if status == "error":
                        raise value
                    # "unreadable": the helper could not load this request; run it here
            return fn(*args)

        return result

    def close(self) -> None:
        """Stop the helper at once (every answer wanted has been read, or none is wanted any
        more: an error in the job must not wait for an import to finish there)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._outbox.put(_STOP)
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Sidecar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the parent's side of the pipe

    def _send(self, fn: Callable[..., Any], args: tuple) -> int | None:
        if self._proc is None:
            return None
        try:
            payload = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - not picklable: this call runs here
            return None
        self._outbox.put(payload)
        self._sent += 1
        return self._sent

    def _write(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            while (payload := self._outbox.get()) is not _STOP:
                proc.stdin.write(len(payload).to_bytes(8, "little") + payload)
                proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the helper is gone: the reader sees it too
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def _answer(self, ticket: int) -> tuple[str, Any]:
        with self._lock:
            proc = self._proc
            while ticket not in self._answers:
                if proc is None or proc.stdout is None:
                    raise _Failed
                try:
                    answer = _read(proc.stdout)
                except (EOFError, OSError, pickle.UnpicklingError) as exc:
                    raise _Failed from exc
                self._answered += 1
                self._answers[self._answered] = answer
            return self._answers.pop(ticket)


def _read(stream: BinaryIO) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    size = int.from_bytes(head, "little")
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return pickle.loads(body)


def serve(inbox: BinaryIO, outbox: BinaryIO) -> None:
    """The helper's loop: answer each request ``(fn, args)`` with ``("ok", fn(*args))`` or
    ``("error", the exception)`` (``("unreadable", None)`` when the request or its answer
    cannot be unpickled or pickled), until the input ends."""
    while True:
        try:
            fn, args = _read(inbox)
        except EOFError:
            return
        except Exception:  # noqa: BLE001 - e.g. a function this process cannot import
            answer: tuple[str, Any] = ("unreadable", None)
        else:
            try:
                answer = ("ok", fn(*args))
            except Exception as exc:  # noqa: BLE001 - sent back, raised in the parent
                answer = ("error", exc)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an answer that cannot be sent
            data = pickle.dumps(("unreadable", None))
        outbox.write(len(data).to_bytes(8, "little") + data)
        outbox.flush()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the command line's to handle
    serve(sys.stdin.buffer, sys.stdout.buffer)
