"""``framescore evaluate MODEL --weights FILE --data ROOT``: the paper's metrics, ours beside
theirs (or the fault-type table on held-out photos with ``--protocol faults``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from framescore.cli.common import positive_int

    p = sub.add_parser(
        "evaluate", help="the paper's metrics of a trained model, beside the paper's figures",
        description="Evaluate trained weights on a dataset's test split with the paper's "
                    "protocol (accuracy, pair accuracy, Spearman, Pearson, MSE, RMSER, score "
                    "range) and print our figures beside the paper's. The split and settings "
                    "are those stored in a `framescore train` checkpoint. --protocol faults: "
                    "pair accuracy per fault type on held-out photos (a `framescore data` "
                    "folder or any folder of photos), beside the rules scorer.")
    p.add_argument("model", metavar="MODEL", help="registry name (see `framescore models`)")
    p.add_argument("--weights", "-w", default=None, metavar="FILE",
                   help="checkpoint (best.pt / last.pt of `framescore train`, or a state "
                        "dict); default: the weights that ship with the model, if any")
    p.add_argument("--data", "-d", required=True, metavar="ROOT", help="dataset root")
    p.add_argument("--protocol", default="paper", choices=["paper", "faults"],
                   help="paper: the paper's test split and metrics (default); faults: the "
                        "fault-type table on held-out photos")
    p.add_argument("--config", "-c", default=None, metavar="FILE",
                   help="settings file changing the stored training settings (data_format, "
                        "test_views...)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="one setting (repeatable)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the model runs (default: CUDA when present)")
    f = p.add_argument_group("faults protocol")
    f.add_argument("--compare", action="append", default=None, metavar="NAME",
                   help="other scorers in the table (repeatable; default: rules)")
    f.add_argument("--repeats", type=positive_int, default=2,
                   help="draws of each fault per photo: whole, then mirrored crops (default: 2)")
    f.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no log lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from framescore.train.evaluate import evaluate, print_figures

    def log(message: str) -> None:
        if not (args.quiet or args.json):
            print(f"framescore: {message}", file=sys.stderr, flush=True)

    compare = args.compare if args.compare is not None else ["rules"]
    weights = args.weights or _bundled(args.model)
    result = evaluate(args.model, weights, args.data, config_file=args.config,
                      overrides=args.overrides, device=args.device, protocol=args.protocol,
                      seed=args.seed, repeats=args.repeats, compare=compare, log=log)
    if args.json:
        from framescore.cli.common import print_json

        print_json(result.as_dict())
        return 0
    if result.protocol == "faults":
        from framescore.train.fault_eval import print_table

        print_table(result.fault_tables)
    else:
        print_figures(result)
    log(f"{result.seconds:.1f} s")
    return 0


def _bundled(model: str) -> str:
    from framescore.errors import WeightsError
    from framescore.models.registry import get

    path = get(model).bundled_path
    if path is None or not path.is_file():
        raise WeightsError(f"model {model!r} ships no weights: pass --weights FILE")
    return str(path)
