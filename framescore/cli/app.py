"""The Typer app: the root options and one command per module of this package."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from framescore import __version__

# command → module in framescore.cli (the order is the order --help lists them)
COMMANDS = ("keyframes", "bestshot", "rank", "crop", "export", "train", "evaluate", "data",
            "models", "demo")
# options of the root command (anything else first on the line belongs to keyframes)
ROOT_OPTIONS = frozenset({"--help", "-h", "--version", "--install-completion",
                          "--show-completion"})

app = typer.Typer(
    name="framescore",
    help="Find the most beautiful moments in videos and photo bursts.",
    epilog="`framescore VIDEO` is short for `framescore keyframes VIDEO`. "
           "`framescore COMMAND --help` tells more.",
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"framescore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="print the version and exit")] = False) -> None:
    """Find the most beautiful moments in videos and photo bursts."""


for _name in COMMANDS:
    _module = importlib.import_module(f"framescore.cli.{_name}")
    app.command(_name, help=_module.DESCRIPTION, short_help=_module.HELP,
                epilog=getattr(_module, "EPILOG", None))(_module.command)
