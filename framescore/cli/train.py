"""``framescore train MODEL --data ROOT --out RUN``: train one of the papers' models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from framescore.cli.common import Device

if TYPE_CHECKING:
    from types import SimpleNamespace

HELP = "train a paper's model on its dataset (checkpoints, resume, DDP)"
DESCRIPTION = (
    "Train a registered model with its paper's recipe: the paper's hyper-parameters are the "
    "defaults, a TOML/YAML --config file or --set KEY=VALUE change them (`--show-config` lists "
    "them). RUN gets last.pt and best.pt (every epoch), metrics.csv, config.toml and run.json. "
    "Many GPUs: launch with `torchrun --nproc-per-node N --no-python framescore train ...`.")


def command(
    model: Annotated[str, typer.Argument(metavar="MODEL", show_default=False,
                                         help="registry name (see `framescore models`)")],
    data: Annotated[str | None, typer.Option(
        "--data", "-d", metavar="ROOT", show_default=False,
        help="dataset root, in the dataset's own layout (see docs/training.md)")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", metavar="RUN", show_default=False,
                                            help="run folder")] = None,
    recipe: Annotated[str | None, typer.Option(
        metavar="NAME", show_default=False,
        help="train with another of the model's recipes (default: its own; "
             "framescore-mobile: hints, or arod on AROD/AVA data)")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", metavar="FILE", show_default=False,
        help="settings file (.toml, or .yaml with PyYAML) overriding the defaults")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", show_default=False,
        help="one setting (repeatable; after --config)")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume",
        help="continue the run in RUN from its last.pt (its config.toml applies)")] = False,
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="start RUN over, replacing the files of an earlier run there")
    ] = False,
    device: Annotated[Device, typer.Option(help="where to train (auto = CUDA when present)")
                      ] = "auto",
    show_config: Annotated[bool, typer.Option(
        "--show-config",
        help="print the resolved settings (with their meaning) and exit")] = False,
    threads: Annotated[int | None, typer.Option(
        min=1, show_default=False,
        help="CPU threads of torch (default: torch's own choice; on a shared CPU also set "
             "OMP_WAIT_POLICY=PASSIVE)")] = None,
    json: Annotated[bool, typer.Option(
        "--json",
        help="print the summary (and test figures) as JSON on stdout")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                        help="no progress bar, no log lines")] = False,
) -> int:
    from types import SimpleNamespace

    args = SimpleNamespace(model=model, data=data, out=out, config=config, recipe=recipe,
                              overrides=list(overrides or []), resume=resume, force=force,
                              device=device, show_config=show_config, json=json, quiet=quiet,
                              threads=threads)
    return run(args)


def _recipe_name(args: SimpleNamespace, out: Path | None) -> str | None:
    """The recipe asked for, or on ``--resume`` the one the run was started with."""
    asked = getattr(args, "recipe", None)
    if not (args.resume and out is not None):
        return asked
    import json

    from framescore.train.loop import RUN_JSON

    try:
        run = json.loads((out / RUN_JSON).read_text())
    except (OSError, ValueError):
        run = {}
    # a run of another model is refused with its own message (_resolve_config)
    started = run.get("recipe") if run.get("model") == args.model else None
    if asked and started and asked != started:
        from framescore.errors import UsageError

        raise UsageError(f"{out} was trained with recipe {started!r}, not {asked!r}")
    return asked or started


def _resolve_config(args: SimpleNamespace, options: dict, out: Path | None) -> dict:
    from framescore.errors import UsageError
    from framescore.train.config import load_file, resolve
    from framescore.train.loop import CONFIG, RUN_JSON

    base = None
    if args.resume and out is not None:
        run_json = out / RUN_JSON
        if run_json.is_file():
            import json

            try:
                trained = json.loads(run_json.read_text()).get("model")
            except (OSError, ValueError):
                trained = None
            if trained and trained != args.model:
                raise UsageError(f"{out} is a run of {trained}, not {args.model}")
        saved = out / CONFIG
        if saved.is_file():
            base = load_file(saved)
            unknown = [k for k in base if k not in options]
            if unknown:
                raise UsageError(f"{saved}: written for another model (unknown key "
                                 f"'{unknown[0]}')")
    return resolve(options, args.config, args.overrides, what=args.model, base=base)


def run(args: SimpleNamespace) -> int:
    """The training job; ``args`` carries the options by name."""
    from framescore.errors import DataError, UsageError
    from framescore.train import loop
    from framescore.train.config import describe, to_toml
    from framescore.train.recipes import make_recipe, options_for

    out = Path(args.out).expanduser() if args.out else None
    recipe_name = _recipe_name(args, out)
    options = options_for(args.model, recipe_name)
    config = _resolve_config(args, options, out)
    if args.show_config:
        print(f"# settings of {args.model} (KEY = value   meaning)")
        print(describe(options, config))
        return 0
    if args.data is None:
        raise UsageError("--data ROOT is needed (the dataset folder)")
    if out is None:
        raise UsageError("--out RUN is needed (the run folder)")
    root = Path(args.data).expanduser()
    if not root.exists():
        raise DataError(f"data root not found: {root}")

    from framescore import __version__
    from framescore.scoring import resolve_device

    dist_info = loop.dist_from_env()
    if dist_info.main:
        loop.check_run_dir(out, args.resume, args.force)
    device = loop.init_distributed(dist_info, resolve_device(args.device))
    talk = dist_info.main and not args.quiet

    def log(message: str) -> None:
        if talk:
            print(f"framescore: {message}", file=sys.stderr, flush=True)

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    recipe = make_recipe(args.model, config, root, recipe_name)
    recipe.run_dir = out
    recipe.say = log
    recipe.check()
    recipe.ensure_loaded()
    for line in recipe.summary:
        log(line)
    if dist_info.main:
        loop.prepare_run_dir(out, args.resume, args.force)
    _barrier(dist_info)
    loop.seed_everything(loop.epoch_seed(config["seed"], -2))
    model = recipe.build_model()
    meta = {"model": args.model, "recipe": recipe.family, "data": str(root.resolve()),
            "config": config, "spec": {"height": recipe.spec.height,
                                        "width": recipe.spec.width, "view": recipe.spec.view},
            "framescore": __version__}
    if dist_info.main:
        from framescore.outputs import write_text_atomic

        write_text_atomic(out / loop.CONFIG, to_toml(
            config, f"framescore train {args.model}: resolved settings\n"
                    f"repeat with: framescore train {args.model} --config <this file> "
                    "--data ROOT --out RUN"), force=True)
    log(f"training {args.model} on {device} ({sum(p.numel() for p in model.parameters())/1e6:.1f}"
        f" M parameters) into {out}")
    result = loop.fit(model, recipe, config, out, meta=meta, resume=args.resume, device=device,
                      progress=talk, log=log)
    summary = {"model": args.model, "run": str(out), "status": result.status,
               "epochs": result.epochs_done, "best_epoch": result.best_epoch,
               "best_monitor": result.best_value}
    figures = []
    if config["test_at_end"] and dist_info.main and result.epochs_done:
        from framescore.models.weights import load_into
        from framescore.train.evaluate import Evaluation, print_figures

        load_into(model, out / (loop.BEST if (out / loop.BEST).is_file() else loop.LAST))
        model = model.to(device)
        ctx = loop.Context(loop.Dispatch(model), device,
                           bool(config["amp"]) and device.type == "cuda",
                           device.type == "cuda")
        loop.seed_everything(config["seed"])
        figures = recipe.test(model, ctx)
        evaluation = Evaluation(args.model, str(out / loop.BEST), str(root), "paper", figures)
        loop.write_json(out / "test.json", evaluation.as_dict())
        if talk and not args.json:
            print_figures(evaluation)
    if dist_info.active:
        import torch.distributed as tdist

        tdist.destroy_process_group()
    if args.json and dist_info.main:
        from framescore.cli.common import print_json

        print_json({**summary, "figures": [f.as_dict() for f in figures]})
    elif talk:
        log(f"{result.status} after {result.epochs_done} epoch(s); best epoch "
            f"{result.best_epoch}; checkpoints in {out}")
    return 0


def _barrier(dist_info) -> None:
    if dist_info.active:
        import torch.distributed as tdist

        tdist.barrier()
