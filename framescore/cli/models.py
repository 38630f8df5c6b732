"""``framescore models``: the registry."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models framescore knows",
                       description="List the registered models: paper, parameters, input "
                                   "size, whether weights are available, the default.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def rows() -> list[dict]:
    from framescore.models.registry import REGISTRY, default_model

    default = default_model()
    out = []
    for m in REGISTRY.values():
        out.append({"name": m.name, "paper": m.paper, "parameters": m.parameters(),
                    "input": f"{m.spec.height}x{m.spec.width} {m.spec.view}",
                    "weights": "bundled" if m.weights_available and m.weights else
                               ("none needed" if not m.needs_weights else "--weights FILE"),
                    "outputs": list(m.outputs), "default": m.name == default,
                    "summary": m.summary})
    return out


def run(args: argparse.Namespace) -> int:
    from framescore.cli.common import print_json

    data = rows()
    if args.json:
        print_json(data)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="framescore models", expand=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("input", no_wrap=True)
    table.add_column("weights", no_wrap=True)
    table.add_column("", no_wrap=True)  # default
    table.add_column("paper", overflow="fold", ratio=1)
    for r in data:
        params = f"{r['parameters'] / 1e6:.1f} M" if r["parameters"] else "—"
        table.add_row(r["name"], params, r["input"], r["weights"],
                      "default" if r["default"] else "", r["paper"])
    Console().print(table)
    return 0
