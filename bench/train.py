"""Training-step throughput of each model family: images per second of one optimizer step.

    python bench/train.py                         # CPU (and CUDA + AMP when a GPU is present)
    python bench/train.py --models rapid-scnn,kong-reg-rank-att --steps 5 --device cpu
    python bench/train.py --size 112              # a smaller input (where the model takes it)

Each row runs the family's real recipe step (:meth:`framescore.train.recipes.Recipe.step`:
views already made, normalization on the device, forward, the paper's loss, backward and the
optimizer update with the recipe's defaults) on random uint8 batches of the model's own input
size, so data loading (JPEG decoding, augmentation) is not counted: on a real run it happens in
``workers`` processes beside the step. "images" counts every image through the network (a pair
is 2, a triplet 3). CUDA rows use fp16 autocast with gradient scaling and channels-last, as
``framescore train`` does. Prints one markdown table to paste into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import framescore  # noqa: F401  (first: it sets the OpenMP spin users get, before torch)

# isort: split
import numpy as np
import torch

from framescore.train import loop
from framescore.train.config import resolve
from framescore.train.recipes import Recipe, make_recipe, options_for

#: One model per family (and the two-column RAPID net): what the table shows by default.
MODELS = ("rapid-scnn", "rapid-dcnn", "relative-siamese", "kong-reg", "kong-reg-rank-att",
          "arod-resnet50", "jin-wmse", "jin-histogram", "framescore-mobile")


def _images(recipe: Recipe, n: int, rng: np.random.Generator) -> object:
    h, w = recipe.spec.size

    def one() -> torch.Tensor:
        return torch.from_numpy(rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8))

    return {k: one() for k in recipe.specs} if recipe.two_views else one()


def synthetic_batch(recipe: Recipe, n: int, rng: np.random.Generator) -> tuple[dict, int]:
    """A collated batch of ``n`` samples shaped as the family's dataset gives them, and the
    number of images it holds."""
    family = recipe.family
    size = {"size": n, "skipped": 0}
    if family == "rapid":
        classes = 14 if recipe.info.training.task == "style" else 2
        return {"image": _images(recipe, n, rng),
                "target": torch.from_numpy(rng.integers(0, classes, n)), **size}, n
    if family in ("relative", "kong"):
        y = torch.from_numpy(rng.choice([-1.0, 1.0], n).astype(np.float32))

        def target() -> dict:
            k = len(recipe.info.training.attributes)
            return {"score": torch.rand(n), "attributes": torch.rand(n, k) * 2 - 1,
                    "mask": torch.ones(n, k)}

        if family == "kong" and not recipe.pairs_mode:
            return {"image": _images(recipe, n, rng), "target": target(), **size}, n
        return {"image1": _images(recipe, n, rng), "image2": _images(recipe, n, rng),
                "target1": target(), "target2": target(), "y": y, **size}, 2 * n
    if family == "arod":
        s = np.sort(rng.random((n, 3)), axis=1).astype(np.float32)
        return {"anchor": _images(recipe, n, rng), "positive": _images(recipe, n, rng),
                "negative": _images(recipe, n, rng), "scores": torch.from_numpy(s), **size}, 3 * n
    hist = torch.softmax(torch.randn(n, 10), dim=1)
    return {"image": _images(recipe, n, rng),
            "target": {"score": torch.rand(n) * 9 + 1, "weight": torch.rand(n) + 0.5,
                       "histogram": hist}, **size}, n


def bench_step(name: str, device: torch.device, batch: int, steps: int, size: int,
               warmup: int = 2) -> dict:
    """Images/s of ``steps`` training steps of ``name`` (after ``warmup`` untimed ones)."""
    overrides = ["workers=0", f"batch_size={batch}", f"size={size}"]
    if name == "framescore-mobile":
        overrides.append("pretrained=false")
    # framescore-mobile: the AROD recipe (its own, hints, steps on cached features)
    recipe_name = "arod" if name == "framescore-mobile" else None
    config = resolve(options_for(name, recipe_name), overrides=overrides)
    recipe = make_recipe(name, config, None, recipe_name)
    torch.manual_seed(0)
    model = recipe.build_model(load_weights=False).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    ctx = loop.Context(loop.Dispatch(model), device, cuda and config["amp"], cuda)
    optimizer = loop.make_optimizer(recipe.trainable(model), config)
    scaler = torch.amp.GradScaler("cuda", enabled=ctx.amp)
    rng = np.random.default_rng(0)
    data, images = synthetic_batch(recipe, batch, rng)
    recipe.train_mode(model)

    def step() -> None:
        with ctx.autocast():
            result = recipe.step(ctx, data)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(result.loss.float()).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"model": name, "device": "cuda+amp" if ctx.amp else device.type, "batch": batch,
            "images_per_step": images, "input": f"{recipe.spec.height}x{recipe.spec.width}",
            "ms_per_step": 1000 * seconds / steps, "images_per_s": images * steps / seconds,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated registry names")
    p.add_argument("--device", default="all", choices=["all", "cpu", "cuda"],
                   help="all: the CPU, and CUDA when present")
    p.add_argument("--cpu-batch", type=int, default=8, help="samples per CPU step")
    p.add_argument("--cuda-batch", type=int, default=64, help="samples per CUDA step")
    p.add_argument("--steps", type=int, default=3, help="timed steps (CPU); CUDA times 5x")
    p.add_argument("--size", type=int, default=0, help="input side (0: each model's own)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rows = []
    for device in devices:
        cuda = device.type == "cuda"
        for name in args.models.split(","):
            row = bench_step(name.strip(), device, args.cuda_batch if cuda else args.cpu_batch,
                             args.steps * (5 if cuda else 1), args.size)
            rows.append(row)
            print(f"  {row['model']:<20} {row['device']:<9} {row['images_per_s']:8.1f} img/s",
                  flush=True)
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"\n### Training step, {date.today()} — CPU: {cpu}, {torch.get_num_threads()} "
          f"threads; GPU: {gpu}; torch {torch.__version__}\n")
    print("| model | device | input | params (M) | batch | images/step | ms/step | images/s "
          "| peak GPU GiB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "—"
        print(f"| {r['model']} | {r['device']} | {r['input']} | {r['params_m']:.1f} | "
              f"{r['batch']} | {r['images_per_step']} | {r['ms_per_step']:.0f} | "
              f"{r['images_per_s']:.1f} | {peak} |")


if __name__ == "__main__":
    main()
