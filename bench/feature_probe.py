"""Which features of framescore-mobile's backbone rank damage on photos they never saw?

    python bench/feature_probe.py HINTS [--faults tilt,overexposure,motion_blur]
                                       [--weights models/mobile_aesthetic.pt]

For each fault, a linear ranker (logistic loss on feature differences, L2 1e-2, standardized
features) is fitted on the hint pairs of the *training* photos of a ``framescore data``
folder — (clean > low), (low > high), (clean > high) of every group of that fault — and then
scored on the held-out photos exactly as :mod:`framescore.train.fault_eval` does (severities
0, ⅓, ⅔, 1, 2 draws, all 6 pairs). A feature set that ranks its training pairs well but the
held-out ones badly is one the network can overfit with.

Feature sets:

* ``exposure``: 8 hand-made luma statistics (mean, std, shares of clipped and crushed pixels,
  1st and 99th percentiles);
* ``imagenet b4`` / ``imagenet b10``: per-channel mean and std of the ImageNet backbone after
  block 4 (40 channels, 1/8 resolution) and block 10 (112 channels);
* ``imagenet pool``: the 1280 pooled head features of the ImageNet backbone;
* ``trained pool``: the same of the trained weights (``--weights``; their deep path), and
  ``trained score``, their own score ‖Φ‖ (no fitting: the model as shipped).

Prints a Markdown table (percent of pairs ranked right) for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
from datetime import date
from pathlib import Path

import numpy as np
import torch

from framescore.models.mobile import SPEC, TAP, MobileEncoder
from framescore.models.weights import load_into
from framescore.preprocess import to_tensor, view
from framescore.train import fault_eval

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def exposure_stats(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32) / 255
    y = x @ LUMA
    top = x.max(axis=-1)
    flat = y.reshape(len(y), -1)
    return np.stack([y.mean((1, 2)), y.std((1, 2)), (top > 0.97).mean((1, 2)),
                     (top > 0.9).mean((1, 2)), (y < 0.03).mean((1, 2)), (y < 0.1).mean((1, 2)),
                     np.percentile(flat, 99, axis=1), np.percentile(flat, 1, axis=1)], axis=1)


def features(images: np.ndarray, imagenet: MobileEncoder, trained: MobileEncoder,
             batch: int = 64) -> dict[str, np.ndarray]:
    """Every feature set for a stack of renders already at the model's input size."""
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(images), batch):
        chunk = np.ascontiguousarray(images[start:start + batch])
        out = {"exposure": exposure_stats(chunk)}
        with torch.inference_mode():
            x = to_tensor(chunk, SPEC, torch.device("cpu"))
            for name, net in (("imagenet", imagenet), ("trained", trained)):
                b = net.backbone
                h, _ = net.stem(x)                                  # block TAP - 1's output
                if name == "imagenet":
                    out[f"imagenet b{TAP - 1}"] = MobileEncoder.channel_stats(h).numpy()
                for i, block in enumerate(b._blocks[TAP:], start=TAP):
                    h = block(h)
                    if name == "imagenet" and i == 10:
                        out["imagenet b10"] = MobileEncoder.channel_stats(h).numpy()
                pooled = b._swish(b._bn1(b._conv_head(h))).mean((2, 3))
                out[f"{name} pool"] = pooled.numpy()
            out["trained score"] = trained(x)["score"].numpy()[:, None]
        parts.append(out)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def fit_ranker(x: np.ndarray, better: np.ndarray, worse: np.ndarray, l2: float = 1e-2):
    """Linear ranker on standardized features; returns (mean, std, w, training accuracy)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = torch.tensor((x - mu) / sd, dtype=torch.float32)
    diff = xs[torch.as_tensor(better)] - xs[torch.as_tensor(worse)]
    w = torch.zeros(x.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-diff @ w).mean() + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    w = w.detach()
    return mu, sd, w, float(((diff @ w) > 0).float().mean())


def pair_accuracy(scores: np.ndarray) -> float:
    """Rows are draws, scored as :func:`framescore.train.fault_eval.ranked_pairs` does."""
    counts = [fault_eval.ranked_pairs(row) for row in scores]
    return sum(c for c, _ in counts) / sum(n for _, n in counts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="folder made by `framescore data`")
    p.add_argument("--faults", default="tilt,overexposure,motion_blur")
    p.add_argument("--weights", default="models/mobile_aesthetic.pt")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    images = np.load(data / "images.npy", mmap_mode="r")
    with open(data / "triplets.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    photos = fault_eval.held_out_photos(data)
    imagenet = MobileEncoder(pretrained=True).eval()
    trained = MobileEncoder().eval()
    load_into(trained, args.weights)

    table: dict[str, dict[str, str]] = {}
    faults = args.faults.split(",")
    for fault in faults:
        groups = np.array([(int(r["clean"]), int(r["low"]), int(r["high"]))
                           for r in rows if r["fault"] == fault])
        if not len(groups):
            raise SystemExit(f"feature_probe: no groups of fault {fault!r} in {data}")
        ids, inverse = np.unique(groups, return_inverse=True)
        local = inverse.reshape(groups.shape)
        better = np.concatenate([local[:, 0], local[:, 1], local[:, 0]])
        worse = np.concatenate([local[:, 1], local[:, 2], local[:, 2]])
        train = features(images[ids], imagenet, trained)
        draws = list(fault_eval.draws(photos, fault_names=[fault]))
        held = features(np.stack([view(im, SPEC) for d in draws for im in d.images]),
                        imagenet, trained)
        for key, x in train.items():
            if key == "trained score":
                acc_train = float((x[better, 0] > x[worse, 0]).mean())
                scores = held[key][:, 0]
            else:
                mu, sd, w, acc_train = fit_ranker(x, better, worse)
                scores = ((held[key] - mu) / sd) @ w.numpy()
            acc = pair_accuracy(scores.reshape(len(draws), -1))
            table.setdefault(f"{key} ({x.shape[1]})", {})[fault] = \
                f"{100 * acc_train:.1f} / {100 * acc:.1f}"
    print(f"feature probe, {date.today()}: training pairs / held-out pairs ranked right (%), "
          f"{len(photos)} held-out photos")
    print("| features (dims) | " + " | ".join(faults) + " |")
    print("|---|" + "---:|" * len(faults))
    for key, cells in table.items():
        print(f"| {key} | " + " | ".join(cells[f] for f in faults) + " |")


if __name__ == "__main__":
    main()
