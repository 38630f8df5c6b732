"""The helper process that imports filterpy, scipy.signal and matplotlib beside the decoder:
it changes where the smoothing, the selection and the plot run, never their result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from framescore.apps import keyframes as kf
from framescore.sidecar import Sidecar


def _here() -> int:
    """A function the helper cannot import (this test module is not on its path)."""
    return os.getpid()


def test_a_call_runs_in_another_process_and_errors_come_back_as_they_are():
    with Sidecar(enabled=True) as sidecar:
        assert sidecar.active
        assert sidecar.call(os.getpid) != os.getpid()
        with pytest.raises(ValueError, match="invalid literal"):
            sidecar.call(int, "not a number")
        assert sidecar.active  # an error of the function is not a failure of the helper
        pending = [sidecar.start(np.add, k, 1) for k in range(5)]
        assert [p() for p in reversed(pending)] == [5, 4, 3, 2, 1]


def test_a_request_the_helper_cannot_load_runs_here_and_the_helper_stays():
    with Sidecar(enabled=True) as sidecar:
        assert sidecar.call(_here) == os.getpid()
        assert sidecar.active and sidecar.call(os.getpid) != os.getpid()


def test_a_dead_helper_falls_back_to_this_process():
    with Sidecar(enabled=True) as sidecar:
        child = sidecar.call(os.getpid)
        os.kill(child, signal.SIGKILL)
        assert sidecar.call(os.getpid) == os.getpid()
        assert not sidecar.active


def test_each_module_is_asked_for_once():
    """The command line and the key-frames job both warm the helper: a module already queued
    is not sent again."""
    with Sidecar(enabled=True) as sidecar:
        sidecar.warm("json", "csv")
        sent = sidecar._sent
        sidecar.warm("csv", "json")
        assert sidecar._sent == sent
        sidecar.warm("json", "fractions", "fractions")
        assert sidecar._sent == sent + 1
        assert sidecar.call(len, "abc") == 3     # the helper still answers, in order


def test_disabled_runs_here():
    with Sidecar(enabled=False) as sidecar:
        assert not sidecar.active
        assert sidecar.call(os.getpid) == os.getpid()
        assert sidecar.start(np.add, 2, 3)() == 5


def test_the_key_frames_are_the_same_with_and_without_the_helper(opencv_clip, tmp_path):
    clip = opencv_clip("tree.avi")
    settings = kf.Settings(model="rules", top=4)
    alone = kf.analyze(clip, settings)
    with Sidecar(enabled=True) as sidecar:
        helped = kf.analyze(clip, settings, sidecar=sidecar)
        kf.write(helped, tmp_path / "helped", sidecar=sidecar)
    kf.write(alone, tmp_path / "alone")
    assert [k.index for k in helped.keyframes] == [k.index for k in alone.keyframes]
    np.testing.assert_array_equal(helped.smoothed, alone.smoothed)
    for name in ("scores.csv", "shots.csv"):
        assert (tmp_path / "helped" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()
    png = (tmp_path / "helped" / "curve.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


@pytest.mark.parametrize("enabled", ["1", "0"])
def test_the_command_line_gives_the_same_picks_either_way(opencv_clip, tmp_path, enabled):
    clip = opencv_clip("tree.avi")
    env = {**os.environ, "FRAMESCORE_SIDECAR": enabled}
    done = subprocess.run([sys.executable, "-m", "framescore", str(clip), "--model", "rules",
                           "--top", "3", "-o", str(tmp_path / "out"), "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    picks = [k["index"] for k in json.loads(done.stdout)["keyframes"]]
    expected = kf.analyze(clip, kf.Settings(model="rules", top=3)).keyframes
    assert picks == [k.index for k in expected]
    assert (tmp_path / "out" / "curve.png").is_file()


def _helpers() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if b"framescore.sidecar" in fh.read():
                        found.add(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_bad_input_is_said_at_once_and_leaves_no_helper(tmp_path):
    """The command starts its helper before it checks the input (the helper's imports are
    the longest wait on a short clip); a missing video still ends in one line, exit 2, and
    the helper is gone with the command."""
    before = _helpers()
    env = {**os.environ, "FRAMESCORE_SIDECAR": "1"}
    done = subprocess.run([sys.executable, "-m", "framescore", str(tmp_path / "missing.mp4"),
                           "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "missing.mp4" in done.stderr
    assert not (tmp_path / "out").exists()
    assert _helpers() - before == set()
