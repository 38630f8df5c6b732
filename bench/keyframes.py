"""Key-frames throughput and memory: decode-only ceiling vs the full pipeline, per model.

    python bench/keyframes.py                   # 720p + 1080p, rules and the default model
    python bench/keyframes.py --models rules,arod-resnet50 --seconds 10 --no-memory

Prints one table (markdown, to paste into bench/RESULTS.md); each figure is the median of
``--repeats`` runs, interleaved so that a change in the machine's load hits every row alike.
Clips are H.264, made from a pan across a real photograph, and cached in bench/.cache/.
Frames/s are *video* frames per second of wall time (every frame is decoded whatever the
sampling). Peak memory is the maximum RSS of a fresh process running the whole job on a
1-minute and a 10-minute clip.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import framescore  # noqa: F401  (first: it sets the OpenMP spin users get, before torch)

# isort: split
import numpy as np
import torch
from PIL import Image

from framescore.apps import keyframes as kf
from framescore.io.video import (
    DecodeStats,
    Sampling,
    _frames,
    _open,
    _video_stream,
    probe,
)
from framescore.io.writer import write_clip
from framescore.models.registry import REGISTRY, default_model
from framescore.preprocess import video_frames
from framescore.samples import photo
from framescore.scorers import load_scorer

CACHE = Path(__file__).resolve().parent / ".cache"


def make_clip(width: int, height: int, seconds: float, fps: int = 25) -> Path:
    path = CACHE / f"grainpan_{width}x{height}_{seconds:g}s.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    src = Image.fromarray(photo("hubble_deep_field"))
    scale = max(width * 1.6 / src.width, height * 1.2 / src.height)
    canvas = np.asarray(src.resize((round(src.width * scale), round(src.height * scale))))
    n = int(seconds * fps)
    span = canvas.shape[1] - width

    # sensor grain, so the bitrate (and the decoder's work) is that of camera footage
    rng = np.random.default_rng(0)
    grain = [rng.normal(0, 4, (height, width, 3)).astype(np.int16) for _ in range(6)]

    def frames():
        for i in range(n):
            x = int(span * (0.5 - 0.5 * np.cos(2 * np.pi * i / max(n, 1) * 3)))
            view = canvas[:height, x:x + width].astype(np.int16) + grain[i % len(grain)]
            yield np.clip(view, 0, 255).astype(np.uint8)

    return write_clip(path, frames(), fps=fps, crf=20)


def bitrate_mbps(path: Path) -> float:
    info = probe(path)
    return path.stat().st_size * 8 / 1e6 / (info.duration or 1.0)


def decode_only(path: Path, spec=None) -> float:
    """Video frames/s of PyAV alone (threaded decode; with ``spec``, and the resize to its
    input that the scoring path makes, :func:`framescore.preprocess.video_frames`)."""
    start = time.perf_counter()
    n = 0
    if spec is None:
        with _open(path) as container:
            stream = _video_stream(container, path)
            for _ in _frames(container, stream, DecodeStats()):
                n += 1
    else:
        for _ in video_frames(path, spec, Sampling()):
            n += 1
    return n / (time.perf_counter() - start)


def pipeline(path: Path, model: str, weights: str | None, sampling: Sampling | None) -> float:
    """Video frames/s of the whole analysis (decode, preprocess, score, curve, peaks);
    ``sampling`` None is the model's default."""
    scorer = load_scorer(model, weights, device="cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    result = kf.analyze(path, kf.Settings(sampling=sampling), scorer=scorer)
    return result.stats.decoded / (time.perf_counter() - start)


def peak_rss_mb(path: Path, model: str = "rules") -> float:
    # VmHWM is the peak of this process's own memory map. (ru_maxrss is not: Linux carries the
    # RSS of the image that called exec over into it, so a child of a big benchmark process
    # reported the benchmark's own size.)
    code = (
        "import sys, tempfile\n"
        "from framescore.cli import main\n"
        "out = tempfile.mkdtemp()\n"
        "rc = main([sys.argv[1], '-q', '-m', sys.argv[2], '-o', out + '/o'])\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(int(hwm.split()[1]) / 1024)\n"
        "sys.exit(rc)\n")
    res = subprocess.run([sys.executable, "-c", code, str(path), model], capture_output=True,
                         text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def random_weights(model: str) -> str | None:
    info = REGISTRY[model]
    if not info.needs_weights or info.weights_available:
        return None
    path = CACHE / f"{model}.random.pt"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(info.build().state_dict(), path)
    return str(path)


def samplings(model: str, heavy_every: int) -> list[tuple[str, Sampling | None]]:
    """The samplings a model is timed at: its default, and every frame (or every n-th for a
    model too slow for that on this device)."""
    default = kf.default_sampling(model)
    label = f"default ({default.fps:g}/s)" if default.fps else "default (every 1)"
    fast = model == "rules" or torch.cuda.is_available() or REGISTRY[model].video_fps is None
    every = 1 if fast or heavy_every <= 1 else heavy_every
    rows: list[tuple[str, Sampling | None]] = [(label, None)]
    if default != Sampling(every=every):
        rows.append((f"every {every}", Sampling(every=every)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated (default: rules + default)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the speed clips")
    ap.add_argument("--heavy-every", type=int, default=1,
                    help="on a CPU, time learned models at every N-th frame besides their "
                         "default sampling (default: 1 = every frame)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each measurement, interleaved; the median is printed")
    ap.add_argument("--no-memory", action="store_true", help="skip the 1- and 10-minute runs")
    args = ap.parse_args()
    models = (args.models.split(",") if args.models
              else sorted({"rules", default_model()}))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"# key-frames benchmark, {date.today()}, {device}\n")
    print("| clip | what | sampling | video frames/s | vs decode-only |")
    print("|---|---|---|---|---|")
    for w, h in ((1280, 720), (1920, 1080)):
        clip = make_clip(w, h, args.seconds)
        runs: dict[str, list[float]] = {}
        for _ in range(args.repeats):  # interleaved, so a load change hits every row alike
            runs.setdefault("decode", []).append(decode_only(clip))
            for model in models:
                spec = REGISTRY[model].spec
                runs.setdefault(f"resize {model}", []).append(decode_only(clip, spec))
                for label, sampling in samplings(model, args.heavy_every):
                    runs.setdefault(f"pipeline {model} {label}", []).append(
                        pipeline(clip, model, random_weights(model), sampling))
        base = float(np.median(runs["decode"]))
        print(f"| {h}p ({bitrate_mbps(clip):.1f} Mb/s) | decode only (PyAV) | every 1 | "
              f"{base:.0f} | 100 % |")
        for model in models:
            size = REGISTRY[model].spec.size
            conv = float(np.median(runs[f"resize {model}"]))
            print(f"| {h}p | decode + resize to {size[0]}x{size[1]} | every 1 | {conv:.0f} | "
                  f"{100 * conv / base:.0f} % |")
            for label, _ in samplings(model, args.heavy_every):
                fps = float(np.median(runs[f"pipeline {model} {label}"]))
                print(f"| {h}p | pipeline `{model}` | {label} | {fps:.0f} | "
                      f"{100 * fps / base:.0f} % |")
    if not args.no_memory:
        print("\n| clip (640x360 H.264, rules, every frame) | peak RSS |")
        print("|---|---|")
        for minutes in (1, 10):
            clip = make_clip(640, 360, minutes * 60)
            print(f"| {minutes} min | {peak_rss_mb(clip):.0f} MB |")


if __name__ == "__main__":
    main()
