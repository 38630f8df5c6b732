"""Training recipe of ``framescore-mobile``: AROD's aesthetic space learned from relative hints.

Data: a folder made by ``framescore data`` (:mod:`framescore.train.hints`): renders at the
model's input size and groups (clean, low-damage, high-damage) of one photo and one fault,
with qualities S = 1 − severity.

Model: :class:`framescore.models.mobile.MobileEncoder` from the ImageNet EfficientNet-Lite0
weights. The stem and blocks 0-4 stay frozen (ImageNet's low-level filters already see blur,
noise, blocking and edge orientation; freezing them is what makes CPU training fast): their
output and the channel statistics of every frozen stage are computed once per render and
cached, and only blocks 5-15, the head, ``encode`` and the statistics MLP train.

Loss per group (c, l, h) with Φ the encodings and s = ‖Φ‖ the scores:

* AROD's directional triplet loss (:func:`framescore.train.losses.directional_triplet_loss`,
  ``bounded`` variant: a proper hinge on the norms) on two triplets: (a, p, n) = (c, l, h),
  the odd one out worse, and (h, l, c), the odd one out better;
* the relative hinge loss (:func:`framescore.train.losses.relative_hinge_loss`) on the three
  ordered pairs, ``d = s_better − s_worse``, ``y = +1``: (c > l), (l > h), (c > h);

on the whole encoding Φ = [Φ_deep ; Φ_stats], plus ``path_weight`` × the same terms on each
path alone, so that each is a ranker of its own: through the sum alone, the deep path fits
the training photos by memorizing them and the statistics path, which generalizes better, is
left with little to learn.

With ``cross_severity < 1`` the hinge also gets, across the groups of a batch, (c_i >
h_j) for another photo's high-damage copy of severity ≥ ``cross_severity``: a clean photo
above a badly damaged one, which ties the norms of different photos together.
``cross_skip`` leaves named faults out of that hint: a strongly tilted or badly framed copy
of a fine scene is not plainly worse than another, duller photo taken straight.
``cross_weight`` weighs each such pair against a within-photo pair in the hinge's mean
(1: plain mean over all pairs). ``cross_on_paths=False`` keeps that hint to the whole
encoding: each path's own terms then rank within a photo only.

``terms = triplet(c, l, h) + triplet(h, l, c) + λ · hinge``, ``loss = terms(Φ) +
path_weight · (terms(Φ_deep) + terms(Φ_stats))``. AdamW with a linear warm-up then a
cosine decay; a checkpoint (model, optimizer, step, sampler state) every few minutes, so a run
can be stopped at any time and resumed with ``--resume``; ``weights.pt`` beside it always holds
the latest usable model weights.

Run: ``python -m framescore.train.hints_recipe DATA --out RUN`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from framescore.errors import DataError
from framescore.train import hints
from framescore.train.losses import directional_triplet_loss, relative_hinge_loss


@dataclass
class Recipe:
    """Every knob of a run (recorded in the run folder as ``recipe.json``)."""

    steps: int = 4000
    groups_per_batch: int = 16        # 3 images each
    lr: float = 1e-3
    backbone_lr_scale: float = 0.3    # blocks learn at lr × this; encode and the stats MLP at lr
    weight_decay: float = 1e-4
    warmup: int = 100
    margin: float = 1.0               # triplet margin m (squared distances)
    norm_margin: float = 1.0          # direction margin m̃
    hinge_delta: float = 1.0          # relative hinge δ
    hinge_weight: float = 1.0         # λ
    cross_severity: float = 1.0       # < 1: also clean > other photos' damage ≥ this (hinge)
    cross_skip: str = ""              # "tilt,framing": faults left out of that cross-photo hint
    cross_weight: float = 1.0         # weight of each cross-photo pair against a within-photo one
    cross_on_paths: bool = True       # False: the cross-photo hint on the whole encoding only
    fault_weights: str = ""           # "tilt=3,overexposure=2": sample those faults' groups more
    path_weight: float = 1.0          # weight of each path's own loss terms
    seed: int = 0
    checkpoint_every_s: float = 180.0
    cache_batch: int = 64


FEATURE_CACHE = "features_frozen.pt"


def lr_at(step: int, recipe: Recipe) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 2 % of ``lr``."""
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    t = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _no_such_fault(what: str, faults: Sequence[str]) -> DataError:
    """The error for a fault name (in a recipe option) that the data does not have."""
    return DataError(f"{what}: no such fault in the data ({', '.join(sorted(set(faults)))})")


def sampling_probabilities(faults: list[str], spec: str) -> np.ndarray | None:
    """Per-group sampling probabilities from ``"fault=weight,..."`` (others weigh 1); None for
    uniform sampling. Unknown fault names are an error, so a typo cannot silently do nothing."""
    if not spec.strip():
        return None
    weights: dict[str, float] = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or weight < 0:
            raise DataError(f"fault weight {item.strip()!r}: expected FAULT=WEIGHT (WEIGHT >= 0)")
        if name not in faults:
            raise _no_such_fault(f"fault weight {name!r}", faults)
        weights[name] = weight
    w = np.array([weights.get(f, 1.0) for f in faults], dtype=np.float64)
    if w.sum() <= 0:
        raise DataError("fault weights: every group has weight 0")
    return w / w.sum()


def cross_mask(faults: Sequence[str], spec: str) -> torch.Tensor:
    """Which groups' high-damage copies may stand in the cross-photo hint: all but the faults
    named in ``spec`` (comma-separated). Unknown names are an error, as for fault weights."""
    skip = {name.strip() for name in spec.split(",") if name.strip()}
    unknown = skip - set(faults)
    if unknown:
        raise _no_such_fault(f"cross skip {', '.join(sorted(unknown))!r}", faults)
    return torch.tensor([f not in skip for f in faults], dtype=torch.bool)


def group_losses(phi: torch.Tensor, s_low: torch.Tensor, s_high: torch.Tensor,
                 recipe: Recipe, cross_ok: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    """The loss terms for a batch of groups; ``phi`` is (3G, D) ordered clean, low, high.
    ``cross_ok`` (G,) marks the groups whose high copy may serve in the cross-photo hint
    (default: all)."""
    g = phi.shape[0] // 3
    pc, pl, ph = phi[:g], phi[g:2 * g], phi[2 * g:]
    q_clean = torch.ones_like(s_low)
    q_high = 1.0 - s_high
    worse = directional_triplet_loss(pc, pl, ph, q_clean, q_high, recipe.margin,
                                     recipe.norm_margin, variant="bounded")
    better = directional_triplet_loss(ph, pl, pc, q_high, q_clean, recipe.margin,
                                      recipe.norm_margin, variant="bounded")
    sc, sl, sh = pc.norm(dim=1), pl.norm(dim=1), ph.norm(dim=1)
    pairs = [sc - sl, sl - sh, sc - sh]
    weights = [torch.ones_like(p) for p in pairs]
    if recipe.cross_severity < 1.0 and g > 1:
        # across photos: a clean photo above another photo's heavily damaged copy
        other = torch.roll(sh, 1)
        keep = torch.roll(s_high, 1) >= recipe.cross_severity
        if cross_ok is not None:
            keep = keep & torch.roll(cross_ok, 1)
        pairs.append((sc - other)[keep])
        weights.append(torch.full_like(pairs[-1], recipe.cross_weight))
    d = torch.cat(pairs)
    # each cross-photo pair counts cross_weight within-photo pairs (1: the plain mean)
    w = None if recipe.cross_weight == 1.0 else torch.cat(weights)
    hinge = relative_hinge_loss(d, torch.ones_like(d), recipe.hinge_delta, w)
    total = worse + better + recipe.hinge_weight * hinge
    return {"loss": total, "triplet": worse + better, "hinge": hinge,
            "pair_acc": (d > 0).float().mean()}


def batch_losses(deep: torch.Tensor, stat: torch.Tensor, s_low: torch.Tensor,
                 s_high: torch.Tensor, recipe: Recipe, cross_ok: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    """The training loss of a batch from its two paths' encodings, each (3G, ·) ordered clean,
    low, high: :func:`group_losses` on the whole encoding plus ``path_weight`` × the same on
    each path alone (without the cross-photo hint unless ``cross_on_paths``)."""
    terms = group_losses(torch.cat([deep, stat], dim=1), s_low, s_high, recipe, cross_ok)
    if recipe.path_weight > 0:
        own = recipe if recipe.cross_on_paths else replace(recipe, cross_severity=1.0)
        for path in (deep, stat):
            terms["loss"] = terms["loss"] + recipe.path_weight * group_losses(
                path, s_low, s_high, own, cross_ok)["loss"]
    return terms


def build_model(recipe: Recipe, pretrained: bool = True) -> nn.Module:
    from framescore.models.mobile import TAP, MobileEncoder

    model = MobileEncoder(pretrained=pretrained)
    frozen = [model.backbone._conv_stem, model.backbone._bn0, *model.backbone._blocks[:TAP]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return model


def _frozen_eval(model: nn.Module) -> None:
    """Train mode for the trainable part, eval mode (fixed BN statistics) for the frozen one."""
    from framescore.models.mobile import TAP

    model.train()
    model.backbone._bn0.eval()
    for block in model.backbone._blocks[:TAP]:
        block.eval()


def cache_features(model: nn.Module, images: np.ndarray, recipe: Recipe, spec,
                   device: torch.device, log: Callable[[str], None]) -> dict[str, torch.Tensor]:
    """The frozen part's outputs for every render, computed in batches: ``h`` (block 4's
    output, fp16) and ``stats`` (the channel statistics of the frozen stages, fp32)."""
    from framescore.preprocess import to_tensor

    model.eval()
    hs, stats = [], []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(images), recipe.cache_batch):
            x = to_tensor(np.array(images[start:start + recipe.cache_batch]), spec, device)
            h, st = model.stem(x)
            hs.append(h.half())
            stats.append(st)
            done = start + len(x)
            if (start // recipe.cache_batch) % 20 == 0 or done == len(images):
                rate = done / (time.perf_counter() - t0)
                log(f"cache {done}/{len(images)} ({rate:.0f} img/s)")
    return {"h": torch.cat(hs), "stats": torch.cat(stats)}


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    rng: np.random.Generator, history: list) -> None:
    """Checkpoint (atomic): tensors and plain data only, so it loads with weights_only=True."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "rng": json.dumps(rng.bit_generator.state), "history": json.dumps(history)}
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    tmp.replace(path)
    weights = path.with_name("weights.pt")
    tmp = weights.with_name(weights.name + ".part")
    torch.save({k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu()
                .contiguous() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(weights)


def train(data: str | Path, out: str | Path, recipe: Recipe | None = None, *,
          resume: bool = False, device: str = "cpu", threads: int | None = None,
          max_minutes: float | None = None, init: str | Path | None = None,
          log: Callable[[str], None] = print) -> Path:
    """Run the recipe on a hints folder; returns the path of the final ``weights.pt``.

    ``max_minutes`` stops early (after a checkpoint) when the wall-clock budget is spent; the
    run can be continued later with ``resume=True`` and the same ``out``.
    """
    recipe = recipe or Recipe()
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    data, out = Path(data), Path(out)
    manifest = hints.read_manifest(data)
    groups = hints.read_groups(data)
    try:
        images = np.load(data / "images.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{data}/images.npy: cannot read ({exc})") from None
    with open(data / "triplets.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    s_low = torch.tensor([float(r["s_low"]) for r in rows])
    s_high = torch.tensor([float(r["s_high"]) for r in rows])
    probs = sampling_probabilities([r["fault"] for r in rows], recipe.fault_weights)
    crossable = cross_mask([r["fault"] for r in rows], recipe.cross_skip)
    if not recipe.cross_weight >= 0:
        raise DataError(f"cross weight {recipe.cross_weight}: must be 0 or more")
    if images.shape[1] != images.shape[2] or images.shape[1] != manifest["size"]:
        raise DataError(f"{data}: renders are {images.shape[1:3]}, manifest says "
                        f"{manifest['size']}")
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not resume:
        raise DataError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
    (out / "recipe.json").write_text(json.dumps(
        {"recipe": asdict(recipe), "data": str(data), "manifest_seed": manifest["seed"]},
        indent=1) + "\n")

    torch.manual_seed(recipe.seed)
    model = build_model(recipe).to(dev)
    if init is not None:
        from framescore.models.weights import load_into

        load_into(model, init)
        log(f"initialised from {init}")
    from framescore.models.mobile import SPEC

    # the frozen part is always ImageNet's, so its outputs can be kept for later runs/resumes
    cache = out / FEATURE_CACHE
    feats = None
    if cache.is_file():
        feats = torch.load(cache, map_location=dev, weights_only=True)
        ok = (isinstance(feats, dict) and len(feats.get("h", ())) == len(images)
              and getattr(feats.get("stats"), "shape", ())[1:] == (model.n_stats,))
        if not ok:
            feats = None    # another data folder's, or an older model's statistics
        else:
            log(f"feature cache {cache} reused")
    if feats is None:
        feats = cache_features(model, images, recipe, SPEC, dev, log)
        torch.save(feats, cache.with_name(cache.name + ".part"))
        cache.with_name(cache.name + ".part").replace(cache)
    trainable = [p for p in model.parameters() if p.requires_grad]
    enc = [*model.encode.parameters(), *model.stats.parameters()]    # the new layers
    enc_ids = {id(p) for p in enc}
    body = [p for p in trainable if id(p) not in enc_ids]
    optimizer = torch.optim.AdamW([
        {"params": body, "lr_scale": recipe.backbone_lr_scale},
        {"params": enc, "lr_scale": 1.0}], lr=recipe.lr, weight_decay=recipe.weight_decay)
    rng = np.random.default_rng(recipe.seed)
    step, history = 0, []
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=dev, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        rng.bit_generator.state = json.loads(state["rng"])
        history = json.loads(state["history"])
        log(f"resumed at step {step}")

    t_start = time.perf_counter()
    last_ckpt = t_start
    run_loss = run_acc = 0.0
    n_run = 0
    while step < recipe.steps:
        lr = lr_at(step, recipe)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        pick = torch.from_numpy(rng.choice(len(groups), recipe.groups_per_batch, replace=False,
                                           p=probs))
        ids = torch.from_numpy(groups)[pick].T.reshape(-1)    # clean..., low..., high...
        _frozen_eval(model)
        deep, stat = model.paths(feats["h"][ids].float(), feats["stats"][ids])
        terms = batch_losses(deep, stat, s_low[pick].to(dev), s_high[pick].to(dev), recipe,
                             crossable[pick].to(dev))
        phi = torch.cat([deep, stat], dim=1)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        step += 1
        run_loss += float(terms["loss"].detach())
        run_acc += float(terms["pair_acc"])
        n_run += 1
        now = time.perf_counter()
        if step % 25 == 0 or step == recipe.steps:
            elapsed = now - t_start
            history.append({"step": step, "loss": run_loss / n_run, "pair_acc": run_acc / n_run,
                            "lr": lr, "elapsed_s": round(elapsed, 1)})
            log(f"step {step}/{recipe.steps} loss {run_loss / n_run:.4f} "
                f"pair-acc {run_acc / n_run:.3f} lr {lr:.2e} "
                f"norms {float(phi.detach().norm(dim=1).mean()):.2f} {elapsed / 60:.1f} min")
            run_loss = run_acc = 0.0
            n_run = 0
        out_of_time = max_minutes is not None and now - t_start > max_minutes * 60
        if now - last_ckpt > recipe.checkpoint_every_s or step == recipe.steps or out_of_time:
            save_checkpoint(ckpt, model, optimizer, step, rng, history)
            last_ckpt = now
            log(f"checkpoint at step {step}")
        if out_of_time:
            log(f"stopping: {max_minutes} min budget spent")
            break
    return out / "weights.pt"


def _yes_no(text: str) -> bool:
    """A boolean option's value: true/false, yes/no, on/off or 1/0."""
    value = {"true": True, "yes": True, "on": True, "1": True,
             "false": False, "no": False, "off": False, "0": False}.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m framescore.train.hints_recipe",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="folder made by `framescore data`")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, weights.pt, log)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget")
    p.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    for name, field in Recipe.__dataclass_fields__.items():
        kind = _yes_no if isinstance(field.default, bool) else type(field.default)
        p.add_argument("--" + name.replace("_", "-"), type=kind,
                       default=field.default, help=f"(default: {field.default})")
    args = p.parse_args(argv)
    recipe = Recipe(**{k: getattr(args, k) for k in Recipe.__dataclass_fields__})
    from framescore.errors import FramescoreError

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    try:
        path = train(args.data, args.out, recipe, resume=args.resume, device=args.device,
                     threads=args.threads, max_minutes=args.max_minutes, init=args.init,
                     log=log)
    except FramescoreError as exc:
        print(f"hints_recipe: error: {exc}", file=sys.stderr)
        return 2
    log(f"weights: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
