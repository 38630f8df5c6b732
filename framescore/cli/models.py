"""``framescore models``: the registry."""

from __future__ import annotations

from framescore.cli.common import JsonOpt

HELP = "list the models framescore knows"
DESCRIPTION = ("List the registered models: paper, parameters, input size, whether weights are "
               "available, the default.")


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


def command(json: JsonOpt = False) -> int:
    from framescore.cli.common import print_json

    data = rows()
    if json:
        print_json(data)
        return 0
    from rich.console import Console

    Console().print(table(data))
    return 0


def table(data: list[dict]):
    """The registry as a rich table that fits 80 columns: each model's paper is written under
    its name and wraps there, never cut."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="framescore models", box=box.SIMPLE_HEAD, expand=False, leading=1)
    t.add_column("model / paper", overflow="fold", ratio=1, min_width=20)
    t.add_column("params", justify="right", no_wrap=True)
    t.add_column("input", no_wrap=True)
    t.add_column("weights", no_wrap=True)
    t.add_column("default", justify="center", no_wrap=True)
    for r in data:
        params = f"{r['parameters'] / 1e6:.1f} M" if r["parameters"] else "—"
        t.add_row(f"[bold]{escape(r['name'])}[/]\n[dim]{escape(r['paper'])}[/]", params,
                  r["input"], r["weights"], "✓" if r["default"] else "")
    return t
