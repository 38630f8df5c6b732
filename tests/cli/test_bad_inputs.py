"""Bad inputs and faults against the real command line (docs/reliability.md has the matrix).

The contract for every case: exit 0 (with one ``framescore: warning:`` line where something was
skipped or cut short) or exit 2 with one ``framescore: error:`` line on stderr (130 / 143 for
SIGINT / SIGTERM); never a traceback; no output under its final name after a failure and no
hidden staging folder left behind; nothing that existed before lost.

Starting a child process costs seconds (PyTorch's import), so the table runs in ONE child
process that calls the command line's ``main`` once per case, with file descriptors 1 and 2
redirected per case; the cases that need the process itself (signals, a FIFO, a full disk)
each get their own ``python -m framescore``, started in parallel.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.media import gradient_frames, write_audio_only

RULES = ["--model", "rules"]
REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- media
def encode(path: Path, n: int = 30, size: tuple[int, int] = (64, 96), codec: str = "libx264",
           fmt: str | None = None, faststart: bool = False, fps: int = 25,
           pix_fmt: str = "yuv420p") -> Path:
    """A clip of ``n`` moving-pattern frames (h, w = ``size``), made with PyAV."""
    h, w = size
    options = {"movflags": "+faststart"} if faststart else {}
    frames = gradient_frames(n, h=h, w=w)
    with av.open(str(path), "w", format=fmt, options=options) as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def cut(src: Path, dest: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[:int(len(data) * fraction)])
    return dest


def photo(path: Path, mode: str = "RGB", size: tuple[int, int] = (96, 64), **save) -> Path:
    rng = np.random.default_rng(len(str(path)))
    rgb = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    image = rgb.convert(mode) if mode not in ("I;16",) else Image.fromarray(
        np.asarray(rgb.convert("L"), np.uint16) * 257)
    image.save(path, **save)
    return path


def onnx_file(path: Path, graph_hw: int, meta_hw: int) -> Path:
    """A tiny framescore-style ONNX graph: input (N, 3, graph_hw, graph_hw), score = mean;
    its metadata claims ``meta_hw``."""
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, graph_hw, graph_hw])
    out = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])
    node = helper.make_node("ReduceMean", ["image"], ["score"], axes=[1, 2, 3], keepdims=0)
    model = helper.make_model(helper.make_graph([node], "g", [inp], [out]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in {"framescore.model": "tiny", "framescore.height": str(meta_hw),
                       "framescore.width": str(meta_hw), "framescore.view": "warp"}.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return path


class Evil:
    """A pickle that would create a file when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ----------------------------------------------------------------------------- the table
@dataclass
class Case:
    name: str
    argv: list[str]
    codes: tuple[int, ...] = (2,)
    stderr: str = ""                  # a text the stderr line must hold
    warn: int = 0                     # warning lines exit 0 must come with
    one_line: bool = True             # argparse's own errors print usage first
    out: str | None = None            # an output that must exist (exit 0) or not (exit 2)
    keep: dict[str, str] = field(default_factory=dict)   # files whose content must survive


def build_cases(d: Path) -> list[Case]:
    v = d / "v"
    v.mkdir()
    clip = encode(v / "clip.mp4")
    at_end = encode(v / "end.mp4", n=60)
    fast = encode(v / "fast.mp4", n=60, faststart=True)
    (v / "empty.mp4").write_bytes(b"")
    (v / "random.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    (v / "text.mp4").write_text("not a video\n" * 50)
    flipped = bytearray(at_end.read_bytes())
    for k in range(1, 6):
        pos = len(flipped) * k // 7
        flipped[pos:pos + 200] = bytes(200)
    (v / "flipped.mp4").write_bytes(bytes(flipped))
    write_audio_only(v / "audio.m4a")
    photo(v / "still.mp4", format="PNG")
    encode(v / "one.mp4", n=1)
    encode(v / "tiny.mp4", size=(2, 2))
    encode(v / "odd.mkv", size=(241, 321), codec="ffv1", pix_fmt="yuv420p")
    encode(v / "wide.mp4", size=(16, 640), n=10)
    encode(v / "tall.mp4", size=(640, 16), n=10)
    encode(v / "ten_bit.mkv", codec="ffv1", pix_fmt="yuv420p10le", n=10)
    encode(v / "c.webm", codec="libvpx-vp9", n=10)
    encode(v / "c.avi", codec="mpeg4", n=10)
    encode(v / "c.mov", n=10)
    encode(v / "c.gif", codec="gif", pix_fmt="rgb8", n=10)
    shutil.copy(clip, v / "with space é.mp4")
    shutil.copy(clip, os.fsencode(v) + b"/b\xffad.mp4")
    (v / "existing.framescore").mkdir()
    (v / "existing.framescore" / "mine.txt").write_text("keep me")
    (v / "afile").write_text("a file in the way")

    p = d / "p"
    (p / "sub").mkdir(parents=True)
    photo(p / "good.jpg")
    photo(p / "sub" / "good2.png")
    (p / "zero.jpg").write_bytes(b"")
    full = (photo(d / "whole.jpg", size=(400, 300))).read_bytes()
    (p / "cut.jpg").write_bytes(full[:len(full) // 2])
    photo(p / "cmyk.jpg", mode="CMYK")
    photo(p / "grey16.png", mode="I;16")
    pal = Image.open(photo(d / "pal_src.png")).convert("P")
    pal.info["transparency"] = 0
    pal.save(p / "palette.png", transparency=0)
    frames = [Image.fromarray(f) for f in gradient_frames(3)]
    frames[0].save(p / "anim.gif", save_all=True, append_images=frames[1:])
    (p / "heic.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(100))
    os.symlink(p / "loop", p / "loop")
    os.mkfifo(p / "pipe.jpg")

    w = d / "w"
    w.mkdir()
    with open(w / "evil.pt", "wb") as fh:
        pickle.dump({"state": Evil(d / "PWNED")}, fh)
    (w / "random.onnx").write_bytes(np.random.default_rng(1).bytes(3000))
    onnx_file(w / "mismatch.onnx", graph_hw=32, meta_hw=64)
    onnx_file(w / "fits.onnx", graph_hw=32, meta_hw=32)
    cache = d / "cache.sqlite"
    cache.write_bytes(np.random.default_rng(2).bytes(8192))

    s = str
    o = d / "o"
    return [
        # videos
        Case("missing file", [s(v / "nope.mp4"), *RULES], stderr="no such file"),
        Case("empty file", [s(v / "empty.mp4"), *RULES]),
        Case("random bytes", [s(v / "random.mp4"), *RULES]),
        Case("text named .mp4", [s(v / "text.mp4"), *RULES]),
        Case("a folder", [s(p), "--out", s(o / "dir"), *RULES], stderr="folder"),
        Case("/dev/zero", ["/dev/zero", "--out", s(o / "zero"), *RULES], stderr="not a regular"),
        Case("cut 50 %, index at the end", [s(cut(at_end, v / "end50.mp4", .5)), *RULES]),
        Case("cut 10 %, fast start", [s(cut(fast, v / "fast10.mp4", .1)), *RULES],
             codes=(0, 2), warn=1, stderr="ended early"),
        Case("cut 50 %, fast start", [s(cut(fast, v / "fast50.mp4", .5)), *RULES], codes=(0,),
             warn=1, stderr="ended early", out=s(v / "fast50.framescore")),
        Case("cut 90 %, fast start", [s(cut(fast, v / "fast90.mp4", .9)), *RULES], codes=(0,),
             warn=1, stderr="ended early", out=s(v / "fast90.framescore")),
        Case("200 bytes zeroed at 5 places", [s(v / "flipped.mp4"), *RULES], codes=(0, 2)),
        Case("audio only", [s(v / "audio.m4a"), *RULES], stderr="no video stream"),
        Case("still image named .mp4", [s(v / "still.mp4"), *RULES], codes=(0, 2)),
        Case("one frame", [s(v / "one.mp4"), *RULES], codes=(0,), out=s(v / "one.framescore")),
        *[Case(f"size {name}", [s(v / name), *RULES], codes=(0,))
          for name in ("tiny.mp4", "odd.mkv", "wide.mp4", "tall.mp4", "ten_bit.mkv")],
        *[Case(f"container {name}", [s(v / name), "--out", s(o / name), *RULES], codes=(0,))
          for name in ("c.webm", "c.avi", "c.mov", "c.gif")],
        Case("space and é in the name", [s(v / "with space é.mp4"), *RULES], codes=(0,),
             out=s(v / "with space é.framescore")),
        Case("non-UTF-8 bytes in the name", [os.fsdecode(os.fsencode(v) + b"/b\xffad.mp4"),
                                             *RULES], codes=(0,),
             out=os.fsdecode(os.fsencode(v) + b"/b\xffad.framescore/curve.png")),
        Case("non-UTF-8 bytes in --out", [s(clip), "--out",
                                         os.fsdecode(os.fsencode(o) + b"/\xfeout"), *RULES],
             codes=(0,), out=os.fsdecode(os.fsencode(o) + b"/\xfeout/keyframes.json")),
        # options (argparse prints its usage line first)
        *[Case(f"option {' '.join(opt)}", [s(clip), *opt, *RULES], one_line=False)
          for opt in (["--top", "0"], ["--top", "-1"], ["--fps", "0"], ["--fps", "-5"],
                      ["--fps", "nan"], ["--every", "0"], ["--min-gap", "-1"],
                      ["--batch-size", "0"], ["--smoothing", "nonsense"])],
        Case("--top 100000", [s(clip), "--top", "100000", "--out", s(o / "top"), *RULES],
             codes=(0,)),
        Case("--batch-size 100000", [s(clip), "--batch-size", "100000", "--out", s(o / "bs"),
                                     *RULES], codes=(0,)),
        Case("--model nonsense", [s(clip), "--model", "nonsense", "--out", s(o / "m")],
             stderr="nonsense"),
        Case("export --format tflite", ["export", "rules", "--format", "tflite", "--out",
                                        s(o / "x")], one_line=False),
        # outputs
        Case("--out onto a file", [s(clip), "--out", s(v / "afile"), *RULES],
             keep={s(v / "afile"): "a file in the way"}),
        Case("existing folder, no --force",
             [s(clip), "--out", s(v / "existing.framescore"), *RULES], stderr="exists already",
             keep={s(v / "existing.framescore" / "mine.txt"): "keep me"}),
        Case("--force and an input that fails",
             [s(v / "random.mp4"), "--out", s(v / "existing.framescore"), "--force", *RULES],
             keep={s(v / "existing.framescore" / "mine.txt"): "keep me"}),
        # photos
        Case("bestshot: a folder of odd photos", ["bestshot", s(p), *RULES], codes=(0,),
             warn=1, stderr="skipped"),
        Case("rank: odd photos, corrupt cache", ["rank", s(p), "--out", s(o / "r"), "--cache",
                                                 s(cache), *RULES], codes=(0,), warn=2,
             out=s(o / "r")),
        Case("rank again: updates the sheet", ["rank", s(p), "--out", s(o / "r"), "--cache",
                                               s(cache), *RULES], codes=(0,), warn=1,
             out=s(o / "r")),
        Case("crop: 0-byte", ["crop", s(p / "zero.jpg"), "--aspect", "1:1", *RULES]),
        Case("crop: CMYK", ["crop", s(p / "cmyk.jpg"), "--aspect", "1:1", "--out",
                            s(o / "c.jpg"), *RULES], codes=(0,), out=s(o / "c.jpg")),
        Case("crop: HEIC named .jpg", ["crop", s(p / "heic.jpg"), "--aspect", "1:1", *RULES]),
        Case("crop: a FIFO", ["crop", s(p / "pipe.jpg"), "--aspect", "1:1", *RULES],
             stderr="not a regular file"),
        # weights and models
        Case("a pickle that runs code", [s(clip), "--model", "arod-resnet50", "--weights",
                                         s(w / "evil.pt"), "--out", s(o / "evil")]),
        Case("random-bytes .onnx", [s(clip), "--model", s(w / "random.onnx"), "--out",
                                    s(o / "on1")], stderr="ONNX"),
        Case("missing .onnx", [s(clip), "--model", s(w / "none.onnx"), "--out", s(o / "on2")]),
        Case(".onnx input differs from its metadata", [s(clip), "--model",
                                                       s(w / "mismatch.onnx"), "--out",
                                                       s(o / "on3")],
             stderr="does not match its metadata"),
        Case(".onnx that fits", [s(clip), "--model", s(w / "fits.onnx"), "--out",
                                 s(o / "on4")], codes=(0,), out=s(o / "on4")),
    ]


RUNNER = textwrap.dedent("""
    import contextlib, json, os, sys, tempfile, traceback
    from framescore.cli import main
    results = []
    for argv in json.loads(sys.stdin.read()):
        argv = [os.fsdecode(bytes.fromhex(a)) for a in argv]
        saved = os.dup(1), os.dup(2)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = "exception"
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
            os.close(saved[0]); os.close(saved[1])
            out.seek(0); err.seek(0)
            results.append({"code": code, "stdout": out.read().decode("utf-8", "replace"),
                            "stderr": err.read().decode("utf-8", "replace")})
    print(json.dumps(results))
""")


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "FRAMESCORE_CACHE_DIR": str(tmp / "cache"), "COLUMNS": "200",
            "OMP_NUM_THREADS": "1"}


def leftovers(root: Path) -> list[Path]:
    """Hidden staging folders or files (``.NAME.*.partial``, ``.NAME.*.part``) under root."""
    return [p for p in root.rglob(".*") if p.name.endswith((".partial", ".part", ".old"))]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[list[Case], list[dict], Path]:
    d = tmp_path_factory.mktemp("bad")
    cases = build_cases(d)
    argvs = [[os.fsencode(a).hex() for a in c.argv] for c in cases]  # bytes survive JSON
    proc = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(argvs),
                          capture_output=True, text=True, env=_env(d), cwd=d, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cases, json.loads(proc.stdout.strip().splitlines()[-1]), d


def test_the_matrix(table) -> None:
    cases, results, d = table
    failures = []
    for case, res in zip(cases, results, strict=True):
        err = res["stderr"]
        lines = [ln for ln in err.splitlines() if ln.strip()]
        why = []
        if res["code"] not in case.codes:
            why.append(f"exit {res['code']}, expected {case.codes}")
        if "Traceback" in err or "Error:" in err.replace("framescore: error:", ""):
            why.append("a traceback")
        if res["code"] == 2:
            if case.one_line and (len(lines) != 1 or not lines[0].startswith("framescore: error:")):
                why.append("not one error line")
            if case.out and Path(case.out).exists():
                why.append("output written after an error")
        if res["code"] == 0:
            warnings = [ln for ln in lines if ln.startswith("framescore: warning:")]
            if len(warnings) != len(lines) or len(warnings) != case.warn:
                why.append(f"stderr is not {case.warn} warning line(s)")
            if case.out and not Path(case.out).exists():
                why.append("no output")
        if case.stderr and case.stderr not in err:
            why.append(f"stderr lacks {case.stderr!r}")
        for path, text in case.keep.items():
            if not Path(path).is_file() or Path(path).read_text() != text:
                why.append(f"{path} lost")
        if why:
            failures.append(f"{case.name}: {'; '.join(why)}\n    {err.strip()[:600]}")
    assert not failures, "\n".join(failures)
    assert not (d / "PWNED").exists(), "a pickle ran code"
    assert not leftovers(d), leftovers(d)


def test_truncated_fast_start_is_recorded(table) -> None:
    _, _, d = table
    doc = json.loads((d / "v" / "fast50.framescore" / "keyframes.json").read_text())
    dec = doc["decode"]
    assert dec["truncated"] is True and dec["header_frames"] == 60
    assert dec["decoded"] < 60 and dec["packets"] < 60
    from framescore.io.video import DecodeStats, iter_frames

    stats = DecodeStats()
    for _ in iter_frames(d / "v" / "fast.mp4", size=(16, 16), stats=stats):
        pass
    assert not stats.truncated and stats.decoded == stats.header_frames == 60


def test_rank_cache_rebuilt_and_sheet_updated(table) -> None:
    cases, results, d = table
    names = [c.name for c in cases]
    first = results[names.index("rank: odd photos, corrupt cache")]["stderr"]
    second = results[names.index("rank again: updates the sheet")]["stderr"]
    assert "rebuilt" in first
    assert "rebuilt" not in second  # repaired, so the second run uses it
    with sqlite3.connect(d / "cache.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] >= 2
    assert (d / "cache.sqlite.corrupt").is_file()
    assert "ranking.csv" in os.listdir(d / "o" / "r")


# ----------------------------------------------------------------------------- own processes
def _spawn(argv: list, tmp: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "framescore", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(tmp), cwd=tmp, **kw)


def _decoding(pid: int) -> bool:
    """True once the child runs FFmpeg's decoding threads (named av:...)."""
    try:
        return any(Path(f"/proc/{pid}/task/{t}/comm").read_text().startswith("av:")
                   for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False


def _wait_for(test, proc: subprocess.Popen, limit: float = 120.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        if test():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc: Linux")
def test_processes(tmp_path: Path) -> None:
    """The cases that need a process of their own, started together."""
    long = encode(tmp_path / "long.mp4", n=800, size=(120, 160))
    os.mkfifo(tmp_path / "pipe.mp4")
    for name in ("int", "term"):
        shutil.copy(long, tmp_path / f"{name}.mp4")
    encode(tmp_path / "termw.mp4", n=200, size=(120, 160))
    (tmp_path / "termw.framescore").mkdir()
    (tmp_path / "termw.framescore" / "old.txt").write_text("old")

    procs = {
        "fifo": _spawn([tmp_path / "pipe.mp4", *RULES], tmp_path),
        "int": _spawn([tmp_path / "int.mp4", *RULES, "--every", "1"], tmp_path),
        "term": _spawn([tmp_path / "term.mp4", *RULES], tmp_path),
        "termw": _spawn([tmp_path / "termw.mp4", *RULES, "--top", "50", "--min-gap", "0",
                         "--force"], tmp_path),
    }
    # signals: SIGINT and SIGTERM while decoding; SIGTERM once the staging folder appears
    assert _wait_for(lambda: _decoding(procs["int"].pid), procs["int"])
    procs["int"].send_signal(signal.SIGINT)
    assert _wait_for(lambda: _decoding(procs["term"].pid), procs["term"])
    procs["term"].send_signal(signal.SIGTERM)
    staging = lambda: any(p.name.startswith(".termw.framescore.")  # noqa: E731
                          for p in tmp_path.iterdir())
    writing = _wait_for(staging, procs["termw"], limit=300)
    procs["termw"].send_signal(signal.SIGTERM)
    done = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=300 if name != "fifo" else 120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += b" (TIMED OUT)"
        done[name] = (proc.returncode, err.decode("utf-8", "replace").strip())

    def check(name: str, codes: tuple[int, ...], text: str) -> None:
        code, err = done[name]
        assert code in codes and "Traceback" not in err and "terminate called" not in err, \
            (name, code, err)
        assert len(err.splitlines()) <= 1 and text in err, (name, err)

    check("fifo", (2,), "is a FIFO")
    check("int", (130,), "framescore: interrupted")
    check("term", (143,), "framescore: terminated")
    check("termw", (143,) if writing else (0, 143), "")
    assert not leftovers(tmp_path), leftovers(tmp_path)
    assert not (tmp_path / "int.framescore").exists()
    assert not (tmp_path / "term.framescore").exists()
    # SIGTERM while writing keeps the old folder (or the run finished and replaced it)
    assert (tmp_path / "termw.framescore" / "old.txt").exists() or done["termw"][0] == 0


def _mount_tmpfs(where: Path, size: str = "2m") -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def _together(argvs: list[list], tmp: Path) -> list[tuple[int, str]]:
    """Run ``python -m framescore`` once per argv, all started at once; (exit, stderr) each."""
    procs = [_spawn(argv, tmp) for argv in argvs]
    done = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            err += b" (TIMED OUT)"
        done.append((proc.returncode, err.decode("utf-8", "replace").strip()))
    return done


def _one_error_line(code: int, err: str, text: str) -> None:
    assert code == 2 and "Traceback" not in err, (code, err)
    assert len(err.splitlines()) == 1 and err.startswith("framescore: error:"), err
    assert text in err, err


def test_disk_full(tmp_path: Path) -> None:
    """A 2 MB tmpfs: a new folder and --force over an old one end with one line and exit 2,
    the old folder kept, no staging folder left."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk):
        pytest.skip("cannot mount a tmpfs here (test_full_disk_write_is_one_line covers it)")
    try:
        clip = encode(tmp_path / "c.mp4", n=12, size=(360, 640))
        (disk / "old").mkdir()
        (disk / "old" / "keep.txt").write_text("old")
        (disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 30_000))  # < one plot
        for out, force in ((disk / "new", []), (disk / "old", ["--force"])):
            proc = subprocess.run([sys.executable, "-m", "framescore", clip, *RULES, "--out",
                                   out, "--top", "8", "--min-gap", "0", *force],
                                  capture_output=True, text=True, env=_env(tmp_path),
                                  timeout=300)
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.startswith("framescore: error:"), proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert "No space left" in proc.stderr
        assert not (disk / "new").exists()
        assert (disk / "old" / "keep.txt").read_text() == "old"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "old"]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_read_only_filesystem(tmp_path: Path) -> None:
    """--out on a read-only tmpfs (root ignores file modes, not a read-only mount): a new
    folder and --force over an old one end with one line and exit 2, the old folder kept."""
    disk = tmp_path / "ro"
    if not _mount_tmpfs(disk, size="1m"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        (disk / "old").mkdir()
        (disk / "old" / "keep.txt").write_text("old")
        if subprocess.run(["mount", "-o", "remount,ro", str(disk)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot remount the tmpfs read-only here")
        with pytest.raises(OSError, match="Read-only"):
            (disk / "probe").touch()
        clip = encode(tmp_path / "c.mp4", n=12)
        results = _together([[clip, *RULES, "--out", disk / "new"],
                             [clip, *RULES, "--out", disk / "old", "--force"]], tmp_path)
        for code, err in results:
            _one_error_line(code, err, "Read-only file system")
        assert sorted(p.name for p in disk.iterdir()) == ["old"]
        assert os.listdir(disk / "old") == ["keep.txt"]
        assert (disk / "old" / "keep.txt").read_text() == "old"
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_immutable_folder(tmp_path: Path) -> None:
    """--out inside a ``chattr +i`` folder (which binds root too): a new folder and --force
    over an old one end with one line and exit 2, the old folder kept."""
    folder = tmp_path / "imm"
    (folder / "old").mkdir(parents=True)
    (folder / "old" / "keep.txt").write_text("old")
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here")
    refused = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if refused.returncode != 0:
        pytest.skip(f"chattr +i refused on {tmp_path}: {refused.stderr.strip()}")
    try:
        with pytest.raises(PermissionError):
            (folder / "probe").touch()
        clip = encode(tmp_path / "c.mp4", n=12)
        results = _together([[clip, *RULES, "--out", folder / "new"],
                             [clip, *RULES, "--out", folder / "old", "--force"]], tmp_path)
        for code, err in results:
            _one_error_line(code, err, "Operation not permitted")
        assert sorted(p.name for p in folder.iterdir()) == ["old"]
        assert os.listdir(folder / "old") == ["keep.txt"]
        assert (folder / "old" / "keep.txt").read_text() == "old"
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)  # lets pytest clean


def test_two_runs_into_one_folder(tmp_path: Path) -> None:
    """Two runs started together with the same --out: one writes the folder (exit 0), the
    other ends with one line and exit 2; one complete folder, no staging folder left."""
    clip = encode(tmp_path / "c.mp4", n=12)
    out = tmp_path / "same"
    results = _together([[clip, *RULES, "--out", out]] * 2, tmp_path)
    assert sorted(code for code, _ in results) == [0, 2], results
    for code, err in results:
        assert "Traceback" not in err, err
        if code == 2:
            _one_error_line(code, err, "same")
        else:
            assert not err, err
    doc = json.loads((out / "keyframes.json").read_text())
    files = {k["file"] for k in doc["keyframes"]}
    assert files and sorted(os.listdir(out)) == sorted(
        {"keyframes.json", "scores.csv", "shots.csv", "curve.png", *files})
    assert all((out / name).stat().st_size > 0 for name in os.listdir(out))
    assert len((out / "scores.csv").read_text().splitlines()) == 1 + 12
    assert not leftovers(tmp_path), leftovers(tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("c.mp4", "cache")] == ["same"]


# ----------------------------------------------------------------------------- in-process
def test_full_disk_write_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """ENOSPC from the write itself and from inside a staged folder: OutputError, and the
    staging folder and the temporary file are removed."""
    import errno

    from framescore import outputs
    from framescore.errors import OutputError

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fd, mode):
            self.fh = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "fdopen", Full)
    with pytest.raises(OutputError, match="No space left"):
        outputs.write_bytes_atomic(tmp_path / "a.bin", b"x")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []
    with pytest.raises(OutputError, match="No space left"), outputs.staged_dir(tmp_path / "out"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_sigterm_inside_a_staged_folder_removes_it(tmp_path: Path) -> None:
    from framescore import signals
    from framescore.outputs import staged_dir

    with pytest.raises(signals.Terminated), signals.handle_signals(), \
            staged_dir(tmp_path / "out") as tmp:
        (tmp / "half.txt").write_text("x")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert os.listdir(tmp_path) == []


def test_a_signal_between_the_renames_waits(tmp_path: Path, monkeypatch) -> None:
    """--force: a SIGTERM between moving the old folder aside and moving the new one in is
    held back until both renames are done, so one of the two is always in place."""
    from framescore import outputs, signals

    old, new = tmp_path / "out", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (new / "n.txt").write_text("new")
    real = os.replace
    calls = []

    def replace(src, dest):
        calls.append(dest)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
        real(src, dest)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(signals.Terminated), signals.handle_signals():
        outputs.replace_into(new, old, force=True)
    assert (old / "n.txt").read_text() == "new"


def test_output_appearing_during_the_rename_is_kept(tmp_path: Path, monkeypatch) -> None:
    """The narrow window of two runs into one --out: the other run's folder appears after the
    "exists?" check, just before the rename. The rename is refused (one OutputError), the
    other run's folder is kept whole and this run's staging folder removed."""
    from framescore import outputs
    from framescore.errors import OutputError

    dest = tmp_path / "same"
    real = os.replace

    def replace(src, target):
        if Path(target) == dest and not dest.exists():
            dest.mkdir()
            (dest / "keyframes.json").write_text("{}")  # the winner's
        real(src, target)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(OutputError, match="same: exists already"), \
            outputs.staged_dir(dest) as tmp:
        (tmp / "keyframes.json").write_text('{"loser": 1}')
    assert os.listdir(tmp_path) == ["same"]
    assert os.listdir(dest) == ["keyframes.json"]
    assert (dest / "keyframes.json").read_text() == "{}"


def test_interrupt_waits_for_the_worker(monkeypatch) -> None:
    """score_frames interrupted: its worker and decoding threads are stopped and joined before
    the interrupt goes on (a cut-short Thread.join used to leave them running)."""
    import threading

    from framescore import scoring
    from framescore.io.video import Frame

    started = threading.Event()

    class Slow:
        name = "slow"
        spec = None

        def score_batch(self, images):
            started.set()
            time.sleep(0.3)
            return {"score": np.zeros(len(images))}

    def frames():
        for i in range(10_000):
            yield Frame(index=i, time=i / 25, image=np.zeros((4, 4, 3), np.uint8))

    def interrupt():
        started.wait(10)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Thread(target=interrupt).start()
    with pytest.raises(KeyboardInterrupt):
        scoring.score_frames(frames(), Slow(), batch_size=2)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("framescore-")]
    assert alive == []


def test_onnx_input_checked_at_load(tmp_path: Path) -> None:
    from framescore.errors import WeightsError
    from framescore.scorers.onnx import OnnxScorer

    with pytest.raises(WeightsError, match="does not match its metadata"):
        OnnxScorer(onnx_file(tmp_path / "m.onnx", graph_hw=32, meta_hw=64))
    scorer = OnnxScorer(onnx_file(tmp_path / "f.onnx", graph_hw=32, meta_hw=32))
    out = scorer.score_batch(np.full((2, 50, 40, 3), 255, np.uint8))
    assert np.allclose(out["score"], 255.0)


def test_display_name() -> None:
    from framescore.outputs import display_name, json_text

    name = os.fsdecode(b"/x/b\xffad \xc3\xa9.mp4")
    assert display_name(name) == "/x/b\\xffad é.mp4"
    assert json.loads(json_text({"path": name}))["path"] == "/x/b\\xffad é.mp4"
    assert display_name("plain.mp4") == "plain.mp4"
