"""``framescore export --all`` / ``--run RUN``: every model that has weights, in one call.

The models are those of the registry that need no weights (``rules``) or ship them (bundled),
plus any training run folders named: a ``framescore train`` run holds ``run.json`` (which model
it trained) and ``best.pt``. A run of a model that also ships weights takes its place: the
files of one model have one name in the output folder.

Every model is planned and checked (names, run folders, option combinations, outputs that
exist already) before the first one is exported; then each export is the usual verified
:func:`framescore.export.job.run`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from framescore.errors import OutputError, UsageError
from framescore.export import job

RUN_JSON = "run.json"   # framescore.train.loop.RUN_JSON
BEST = "best.pt"        # framescore.train.loop.BEST


@dataclass(frozen=True)
class Target:
    """One model to export and where its weights come from."""

    model: str
    weights: str | None
    source: str            # "none needed", "bundled" or "run <folder>"


def read_run(run: str | Path) -> Target:
    """The model a training run folder holds, with its ``best.pt``."""
    from framescore.models.registry import get

    run = Path(run)
    if not run.is_dir():
        raise UsageError(f"{run}: no such run folder")
    best = run / BEST
    if not best.is_file():
        raise UsageError(f"{run}: no {BEST} (not a finished `framescore train` run)")
    try:
        model = json.loads((run / RUN_JSON).read_text(encoding="utf-8")).get("model")
    except (OSError, ValueError, AttributeError):
        model = None
    if not isinstance(model, str) or not model:
        raise UsageError(f"{run}: {RUN_JSON} does not say which model was trained")
    get(model)  # an unknown model is a one-line error
    return Target(model, str(best), f"run {run}")


def plan(include_registry: bool, runs: Sequence[str | Path] = ()) -> list[Target]:
    """Registry models that have weights (when ``include_registry``), then the runs' models."""
    from framescore.models.registry import REGISTRY

    chosen: dict[str, Target] = {}
    if include_registry:
        for info in REGISTRY.values():
            if not info.needs_weights:
                chosen[info.name] = Target(info.name, None, "none needed")
            elif info.weights_available and info.bundled_path is not None:
                chosen[info.name] = Target(info.name, None, "bundled")
    from_runs: dict[str, Target] = {}
    for run in runs:
        target = read_run(run)
        if target.model in from_runs:
            raise UsageError(f"two runs of {target.model}: {from_runs[target.model].source[4:]} "
                             f"and {run} (their files would have one name; export one)")
        from_runs[target.model] = chosen[target.model] = target
    if not chosen:
        raise UsageError("nothing to export (no model with weights)")
    return list(chosen.values())


def requests(targets: Sequence[Target], template: job.Request) -> list[job.Request]:
    """One request per target; fp16/int8 copies only for models with learned weights."""
    from framescore.models.registry import get

    out = []
    for t in targets:
        learned = get(t.model).parameters() > 0
        out.append(replace(template, model=t.model, weights=t.weights,
                           fp16=template.fp16 and learned, int8=template.int8 and learned))
    return out


def check(reqs: Sequence[job.Request]) -> None:
    """Refuse before any work: bad option combinations, outputs that exist already."""
    for req in reqs:
        job.validate(req)
        for path in job.targets(req).values():
            if path.exists() and not req.force:
                raise OutputError(f"{path}: exists already (use --force to replace it)")


def run_all(reqs: Sequence[job.Request],
            log: Callable[[str], None] = lambda _msg: None) -> list[job.Report]:
    """Export and verify each request in turn (the first failure stops, one line)."""
    check(reqs)
    reports = []
    for i, req in enumerate(reqs, 1):
        log(f"[{i}/{len(reqs)}] {req.model}")
        reports.append(job.run(req, log=log))
    return reports
