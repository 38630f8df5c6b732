"""What the resize costs the decoding thread, per frame, and what OpenCV would save.

``python bench/resize_cost.py [--seconds 8] [--repeats 3]`` prints two tables:

1. The decoding thread's time per video frame (decode + resize to the model's input; every
   frame kept, and 5 a second kept) for 720p and 1080p H.264 grain-pan clips (the key-frames
   benchmark's): decode only; ``area``, swscale's AREA straight to the input in the stream's
   pixel format (the CPU path until issue 23, still the ``rules`` scorer's); ``sws-3x``, the
   unmerged ``gpu`` branch's (swscale bilinear to <= 3x, RGB, swscale bilinear to the input);
   ``unified``, :func:`framescore.preprocess.video_frames` (swscale bilinear to a whole 3x,
   RGB, the triangle shrink in OpenCV).
2. Single operations on one thread, ms per image: the second step by swscale, Pillow and
   OpenCV; RGB conversion; the rules scorer's luminance and gradient sums in numpy and
   OpenCV; and OpenCV's import time.

The best of ``--repeats`` runs is kept (the host is shared: minima are the least disturbed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from framescore.io.video import (
    DecodeStats,
    Sampling,
    _frames,
    _open,
    _video_stream,
    iter_frames,
    probe,
)
from framescore.models.spec import InputSpec
from framescore.preprocess import _swscale, shrink, video_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keyframes import make_clip  # noqa: E402  (the key-frames benchmark's clips)

MOBILE = InputSpec(160, 160)
RULES = InputSpec(256, 256, mean=(0, 0, 0), std=(1, 1, 1), resample="area")


def _pass(make) -> float:
    """Seconds per decoded frame of one full pass over the iterator ``make()`` gives."""
    stats = DecodeStats()
    start = time.perf_counter()
    for _ in make(stats):
        pass
    return (time.perf_counter() - start) / max(stats.decoded, 1)


def decode_paths(path: Path, sampling: Sampling) -> dict:
    h, w = probe(path).height, probe(path).width

    def decode(stats):
        with _open(path) as container:
            for frame in _frames(container, _video_stream(container, path), stats):
                stats.decoded += 1
                yield frame

    def area(stats):
        return iter_frames(path, sampling, size=MOBILE.size, stats=stats)

    def sws3x(stats):
        mid = (min(h, 480), min(w, 480))
        for f in iter_frames(path, sampling, size=mid, stats=stats, interpolation="BILINEAR"):
            yield _swscale(f.image, (160, 160), "BILINEAR")

    def unified(stats):
        return video_frames(path, MOBILE, sampling, stats=stats, source=(h, w))

    def rules(stats):
        return video_frames(path, RULES, sampling, stats=stats, source=(h, w))

    return {
        "decode only": decode,
        "area (old CPU) 160": area,
        "sws-3x (gpu branch) 160": sws3x,
        "unified 160": unified,
        "rules: area 256": rules,
    }


def op_times(repeats: int) -> list[tuple[str, float]]:
    import cv2

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    big = np.asarray(
        Image.fromarray(rng.integers(0, 255, (90, 160, 3), np.uint8)).resize(
            (1280, 720), Image.Resampling.BICUBIC
        )
    )
    mid = _swscale(big, (480, 480), "BILINEAR")
    rules = _swscale(big, (256, 256), "AREA")
    batch = np.stack([rules] * 8)
    luma = np.array([0.299, 0.587, 0.114], np.float32) / np.float32(255)
    reformat = VideoReformatter()
    import av

    frame = av.VideoFrame.from_ndarray(mid, format="rgb24")
    yuv = frame.reformat(format="yuv420p")

    def timed(fn, n=10) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n * 1e3

    def np_gradients():
        y = batch.astype(np.float32) @ luma
        return np.abs(y[:, :, 2:] - y[:, :, :-2]).sum() + np.abs(y[:, 2:] - y[:, :-2]).sum()

    def cv_gradients():
        total = 0.0
        for im in batch:
            y = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
            total += cv2.norm(y[:, 2:], y[:, :-2], cv2.NORM_L1) + cv2.norm(
                y[2:], y[:-2], cv2.NORM_L1
            )
        return total

    ops = {
        "step 2, 480² → 160²: swscale bilinear (RGB)": lambda: reformat.reformat(
            frame, width=160, height=160, interpolation="BILINEAR"
        ).to_ndarray(),
        "step 2, 480² → 160²: Pillow bilinear": lambda: np.asarray(
            Image.fromarray(mid).resize((160, 160), Image.Resampling.BILINEAR)
        ),
        "step 2, 480² → 160²: OpenCV blur + INTER_AREA, Pillow's edges (shrink)": lambda: shrink(
            mid, 160, 160
        ),
        "step 2, 480² → 160²: OpenCV INTER_LINEAR (no antialias; not used)": lambda: cv2.resize(
            mid, (160, 160), interpolation=cv2.INTER_LINEAR
        ),
        "RGB of a 480² 4:2:0 frame: swscale": lambda: yuv.to_ndarray(format="rgb24"),
        "RGB of a 480² 4:2:0 frame: OpenCV cvtColor (I420)": lambda: cv2.cvtColor(
            yuv.to_ndarray(), cv2.COLOR_YUV2RGB_I420
        ),
        "rules luma + gradient sums, 8 images of 256²: numpy": np_gradients,
        "rules luma + gradient sums, 8 images of 256²: OpenCV": cv_gradients,
    }
    best = dict.fromkeys(ops, float("inf"))
    for _ in range(10 * repeats):  # round robin: a change of load hits every row alike
        for name, fn in ops.items():
            best[name] = min(best[name], timed(fn))
    rows = list(best.items())
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; s = time.perf_counter(); import cv2; print(time.perf_counter() - s)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows.append(("import cv2 (fresh process)", float(done.stdout) * 1e3))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| clip | path | ms/frame, every frame kept | ms/frame, 5 a second kept |")
    print("|---|---|---:|---:|")
    for w, h in ((1280, 720), (1920, 1080)):
        clip = make_clip(w, h, args.seconds)
        best: dict[str, list[float]] = {}
        for _ in range(args.repeats):  # interleaved: a change of load hits every row alike
            for label, sampling in (("every", Sampling()), ("5fps", Sampling(fps=5))):
                for name, make in decode_paths(clip, sampling).items():
                    best.setdefault(f"{name}|{label}", []).append(_pass(make))
        for name in decode_paths(clip, Sampling()):
            every, five = min(best[f"{name}|every"]), min(best[f"{name}|5fps"])
            print(f"| {h}p | {name} | {every * 1e3:.2f} | {five * 1e3:.2f} |", flush=True)
    print()
    print("| operation (one thread) | ms |")
    print("|---|---:|")
    for name, ms in op_times(args.repeats):
        print(f"| {name} | {ms:.3f} |", flush=True)


if __name__ == "__main__":
    main()
