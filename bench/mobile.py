"""Images per second of ``framescore-mobile`` (and others) on the CPU, batch 32.

    python bench/mobile.py                          # framescore-mobile, 2 threads
    python bench/mobile.py --models framescore-mobile,rules --threads 1,2,4 --batches 10

The input is a real photograph already at the model's input size (what the key-frames
pipeline hands the scorer), so the figure is preprocessing (normalization) + the network.
Prints a Markdown table with the date, the CPU and torch's version, for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

import framescore  # noqa: F401  (first: it sets the OpenMP spin users get, before torch)

# isort: split
import numpy as np
import torch
from machine import cpu_name  # bench/machine.py, beside this script

from framescore.models.registry import get
from framescore.preprocess import view
from framescore.samples import photo
from framescore.scorers import load_scorer


def images_per_second(model: str, threads: int, batch: int = 32, batches: int = 8,
                      warmup: int = 2, weights: str | None = None) -> float:
    """Median-of-batches throughput of one scorer with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    # the PyTorch runtime of a network (its threads are what this measures)
    runtime = "torch" if get(model).build is not None else "auto"
    scorer = load_scorer(model, weights, device="cpu", runtime=runtime)
    image = view(photo("coffee"), scorer.spec)
    images = np.stack([image] * batch)
    for _ in range(warmup):
        scorer.score_batch(images)
    times = []
    for _ in range(batches):
        t = time.perf_counter()
        scorer.score_batch(images)
        times.append(time.perf_counter() - t)
    return batch / float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="framescore-mobile")
    p.add_argument("--threads", default="2", help="comma-separated thread counts")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--weights", default=None, help="weights file (for a single --models)")
    args = p.parse_args(argv)
    load = f" · load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") \
        else ""
    print(f"{date.today()} · {cpu_name()} · torch {torch.__version__} · batch {args.batch}"
          f"{load}\n")
    print("| model | threads | input | images/s |")
    print("|---|---:|---|---:|")
    for model in args.models.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            rate = images_per_second(model, threads, args.batch, args.batches,
                                     weights=args.weights)
            spec = get(model).spec
            print(f"| {model} | {threads} | {spec.height}x{spec.width} | {rate:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
