"""The ``framescore`` command line (a Typer app; one module per command).

``framescore VIDEO [options]`` and ``framescore [options] VIDEO`` are short for
``framescore keyframes ...``. Heavy modules (PyTorch, PyAV, matplotlib, the model registry) are
imported only inside a command's body, so ``--help`` and usage errors are instant.

Exit codes: 0 done; 2 bad input — one line on stderr, ``framescore: error: ...``; 130
interrupted. :func:`main` returns the code of a run and, as argparse did, raises
``SystemExit`` for ``--help``/``--version`` (0) and for usage errors (2).
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Sequence

from framescore.cli.app import COMMANDS, ROOT_OPTIONS, app

__all__ = ["COMMANDS", "app", "main", "route"]

PROG = "framescore"


class _Typo(Exception):
    """A first word that looks like a mistyped command, not a video."""


def route(argv: Sequence[str]) -> list[str]:
    """Put ``keyframes`` in front when the command line starts with a video or an option of it.

    A first word that is no file but close to a command name is a mistyped command
    (:class:`_Typo`), not a video that does not exist.
    """
    args = list(argv)
    if not args or args[0] in COMMANDS or args[0] in ROOT_OPTIONS:
        return args
    first = args[0]
    if not first.startswith("-") and not os.path.lexists(first) and \
            not any(c in first for c in "./\\"):
        close = difflib.get_close_matches(first, COMMANDS, n=1, cutoff=0.6)
        if close:
            raise _Typo(f"no such command '{first}' (did you mean '{close[0]}'?)")
    return ["keyframes", *args]


def _usage_line(exc: Exception) -> str:
    """A click usage error as one line, with where to look for help."""
    text = " ".join(exc.format_message().split()).rstrip(".")
    text = text[:1].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else PROG
    return f"{text} (see `{where} --help`)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    import typer

    from framescore import signals
    from framescore.errors import FramescoreError
    from framescore.outputs import safe_streams

    safe_streams()

    raw = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    if os.environ.get("_FRAMESCORE_COMPLETE"):      # shell completion asks; typer answers
        return int(command.main(raw, prog_name=PROG) or 0)
    try:
        args = route(raw)
    except _Typo as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not args:
        args = ["--help"]
    try:
        try:
            with signals.handle_signals(), command.make_context(PROG, args) as ctx:
                return int(command.invoke(ctx) or 0)
        except typer.Exit as exc:                   # --help, --version
            if not raw:
                return 0
            raise SystemExit(exc.exit_code) from None
        except typer.TyperException as exc:         # click's usage errors
            print(f"{PROG}: error: {_usage_line(exc)}", file=sys.stderr)
            raise SystemExit(getattr(exc, "exit_code", 2)) from None
        except typer.Abort:
            print(f"{PROG}: interrupted", file=sys.stderr)
            if argv is None:
                signals.exit_now(signals.EXIT_SIGINT)
            return signals.EXIT_SIGINT
    except FramescoreError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, signals.Terminated) as exc:
        code = signals.EXIT_SIGTERM if isinstance(exc, signals.Terminated) else signals.EXIT_SIGINT
        print(f"{PROG}: {'terminated' if code == signals.EXIT_SIGTERM else 'interrupted'}",
              file=sys.stderr)
        if argv is None:  # the real command line: exit before finalizers (see signals)
            signals.exit_now(code)
        return code
    except BrokenPipeError:
        return 1
