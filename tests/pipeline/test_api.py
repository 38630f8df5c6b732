"""The Python API: importing is cheap, and every job is one call."""

from __future__ import annotations

import os
import subprocess
import sys

from framescore.samples import photo_paths


def test_import_does_not_load_torch():
    code = "import sys, framescore; framescore.__version__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def _openmp_settings(env: dict[str, str]) -> str:
    """What PyTorch's OpenMP runtime reports at start-up when framescore is imported first."""
    code = "import framescore, torch; torch.ones(4).add(1)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env | {"OMP_DISPLAY_ENV": "verbose"})
    return out.stderr


def test_openmp_threads_spin_briefly_unless_the_user_says_otherwise():
    from framescore import SPIN_COUNT

    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    # the runtime's own default is 300000 spins; framescore's is short
    assert f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" in _openmp_settings(env)
    assert "GOMP_SPINCOUNT = '123'" in _openmp_settings(env | {"GOMP_SPINCOUNT": "123"})
    assert f"GOMP_SPINCOUNT = '{SPIN_COUNT}'" not in _openmp_settings(
        env | {"OMP_WAIT_POLICY": "ACTIVE"})


def test_photo_jobs_from_python(tmp_path):
    import framescore

    photos = photo_paths()
    best = framescore.best_shot([photos["coffee"], photos["chelsea"]], top=1)
    assert len(best.candidates) == 2 and best.candidates[0].rank == 1
    box = framescore.crop(photos["coffee"], "1:1", candidates=40).box
    assert abs(box.width - box.height) <= 1
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("coffee", "rocket", "astronaut"):
        (folder / photos[name].name).write_bytes(photos[name].read_bytes())
    result = framescore.rank(folder, tmp_path / "ranked", cache=False)
    assert (tmp_path / "ranked" / "ranking.csv").is_file()
    assert [r.rank for r in result.ranking] == [1, 2, 3]
    scores = [r.entry.score for r in result.ranking]
    assert scores == sorted(scores, reverse=True)


def test_evaluate_uses_the_shipped_weights_by_default(capsys):
    from framescore.cli import main

    assert main(["evaluate", "rapid-scnn", "--data", "."]) == 2
    assert "ships no weights: pass --weights FILE" in capsys.readouterr().err
