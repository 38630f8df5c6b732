"""The ``framescore`` command line.

``framescore video.mp4`` runs key-frames; every job also has its subcommand. Each subcommand
lives in its own module here with ``register(subparsers)``; heavy imports happen only when a
command runs, so ``--help`` is instant. Known errors become one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from framescore import __version__

# subcommand → module in framescore.cli (the order is the order --help lists them)
COMMANDS = {
    "keyframes": "keyframes", "bestshot": "bestshot", "rank": "rank", "crop": "crop",
    "export": "export", "train": "train", "evaluate": "evaluate", "data": "data",
    "models": "models", "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framescore",
        description="Find the most beautiful moments in videos and photo bursts.",
        epilog="`framescore VIDEO` is short for `framescore keyframes VIDEO`. "
               "`framescore COMMAND --help` tells more.")
    parser.add_argument("--version", action="version", version=f"framescore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        try:
            module = importlib.import_module(f"framescore.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"framescore.cli.{module_name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def _route(argv: list[str]) -> list[str]:
    """``framescore clip.mp4 ...`` → ``framescore keyframes clip.mp4 ...``."""
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        return ["keyframes", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    from framescore import signals
    from framescore.errors import FramescoreError
    from framescore.outputs import safe_streams

    safe_streams()

    args_list = _route(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with signals.handle_signals():
            return int(args.func(args) or 0)
    except FramescoreError as exc:
        print(f"framescore: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, signals.Terminated) as exc:
        code = signals.EXIT_SIGTERM if isinstance(exc, signals.Terminated) else signals.EXIT_SIGINT
        print(f"framescore: {'terminated' if code == signals.EXIT_SIGTERM else 'interrupted'}",
              file=sys.stderr)
        if argv is None:  # the real command line: exit before finalizers (see signals)
            signals.exit_now(code)
        return code
    except BrokenPipeError:
        return 1
