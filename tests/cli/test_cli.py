"""The command line itself: routing, usage errors as one line, option bounds, the order of the
checks, help, the models table, the demo folder."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from framescore.cli import app, main, route


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("framescore: error: "), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def usage_error(capsys, argv: list[str]) -> str:
    """``main(argv)`` must stop with a usage error: exit 2 and one line on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return one_line_error(capsys)


# ---- Typer app through CliRunner --------------------------------------------------------------

def test_runner_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("keyframes", "bestshot", "rank", "crop", "export", "train", "evaluate",
                 "data", "models", "demo"):
        assert name in result.output
    assert "--install-completion" in result.output          # shell completion stays on


def test_runner_models_json():
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    names = {r["name"] for r in json.loads(result.output)}
    assert {"rules", "framescore-mobile"} <= names


def test_runner_rejects_out_of_range_values():
    result = CliRunner().invoke(app, ["keyframes", "clip.mp4", "--top", "0"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["export", "rules", "--out", "x", "--batch", "zero"])
    assert result.exit_code == 2


# ---- routing ----------------------------------------------------------------------------------

def test_route_puts_keyframes_in_front():
    assert route(["clip.mp4", "--top", "3"]) == ["keyframes", "clip.mp4", "--top", "3"]
    assert route(["--top", "3", "clip.mp4"]) == ["keyframes", "--top", "3", "clip.mp4"]
    assert route(["bestshot", "burst/"]) == ["bestshot", "burst/"]
    assert route(["--version"]) == ["--version"]
    assert route(["-h"]) == ["-h"]


@pytest.mark.parametrize("options_first", [True, False])
def test_options_before_or_after_the_video(make_clip, tmp_path, capsys, options_first):
    clip = str(make_clip())
    opts = ["--top", "3", "--model", "rules", "-o", str(tmp_path / "o"), "--json"]
    assert main([*opts, clip] if options_first else [clip, *opts]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["top"] == 3 and doc["model"]["name"] == "rules"


def test_mistyped_command_is_named_with_a_suggestion(capsys):
    err = usage_error(capsys, ["bestshoot", "burst/"])
    assert "no such command 'bestshoot' (did you mean 'bestshot'?)" in err


def test_a_file_named_like_a_command_is_a_video(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bestshoot").write_text("not a video")
    assert main(["bestshoot", "-q", "-o", str(tmp_path / "o")]) == 2
    assert "not a readable video" in one_line_error(capsys)


def test_no_arguments_prints_help(capsys):
    assert main([]) == 0
    assert "keyframes" in capsys.readouterr().out


def test_version(capsys):
    from framescore import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"framescore {__version__}"


# ---- option values: bounds and finiteness (issue 21) -----------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["--fps", "inf"], "--fps"),
    (["--fps", "nan"], "--fps"),
    (["--fps", "0"], "--fps"),
    (["--min-gap", "nan"], "--min-gap"),
    (["--min-gap", "inf"], "--min-gap"),
    (["--prominence", "nan"], "--prominence"),
    (["--prominence", "inf"], "--prominence"),
    (["--process-noise", "inf"], "--process-noise"),
    (["--measurement-noise", "nan"], "--measurement-noise"),
    (["--every", "0"], "--every"),
    (["--top", "x"], "--top"),
    (["--batch-size", "0"], "--batch-size"),
    (["--every", "2", "--fps", "3"], "--fps"),
])
def test_keyframes_option_values_are_usage_errors(make_clip, tmp_path, capsys, argv, option):
    out = tmp_path / "out"
    err = usage_error(capsys, [str(make_clip()), "--model", "rules", "-o", str(out), *argv])
    assert option in err
    assert not out.exists()


@pytest.mark.parametrize("argv, option", [
    (["bestshot", "x", "--gap", "inf", "--group"], "--gap"),
    (["bestshot", "x", "--similarity", "nan", "--group"], "--similarity"),
    (["crop", "p.jpg", "--aspect", "1:1", "--min-scale", "nan"], "--min-scale"),
    (["data", "--samples", "--out", "o", "--holdout", "nan"], "--holdout"),
    (["data", "--samples", "--out", "o", "--holdout", "1"], "--holdout"),
    (["data", "--samples", "--out", "o", "--low-severity", "nan,0.5"], "--low-severity"),
    (["export", "rules", "--out", "o", "--batch", "0"], "--batch"),
    (["rank", "d", "--cache", "c.sqlite", "--no-cache"], "--no-cache"),
])
def test_other_commands_refuse_bad_values(tmp_path, capsys, monkeypatch, argv, option):
    monkeypatch.chdir(tmp_path)
    assert option in usage_error(capsys, argv)
    assert list(tmp_path.iterdir()) == []


# ---- what is checked before the output folder (issue 21) --------------------------------------

def test_unknown_model_is_named_even_when_the_output_exists(make_clip, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main([str(make_clip()), "--model", "nosuch", "-o", str(out)]) == 2
    assert "unknown model 'nosuch'" in one_line_error(capsys)


def test_missing_video_is_named_even_when_the_output_exists(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main([str(tmp_path / "gone.mp4"), "--model", "rules", "-o", str(out)]) == 2
    assert "no such file" in one_line_error(capsys)


def test_bad_weights_are_named_even_when_the_output_exists(make_clip, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage, not a checkpoint " * 10)
    assert main([str(make_clip()), "--model", "arod-resnet50", "--weights", str(bad),
                 "-o", str(out)]) == 2
    err = one_line_error(capsys)
    assert "not a readable PyTorch checkpoint" in err and "exists already" not in err
    reason = err.split("checkpoint (", 1)[1]
    assert reason.endswith(")")                       # the reason is whole, not cut
    assert "weights_only" not in reason               # the unpickler's reason, not torch's preamble


def test_load_failure_keeps_whole_words():
    from framescore.models.weights import load_failure

    inner = ValueError("Unsupported global: GLOBAL posix.system was not an allowed global by "
                       "default. Please use `torch.serialization.add_safe_globals` to allow "
                       "it, only if you trust the file\nsecond line")
    try:
        try:
            raise inner
        except ValueError:
            raise RuntimeError("Weights only load failed. " + "x" * 300) from None
    except RuntimeError as exc:
        text = load_failure(exc, limit=60)
    assert text.startswith("Unsupported global: GLOBAL posix.system")
    assert len(text) <= 60 and text.endswith(" …")
    words = inner.args[0].split()
    assert all(w in words for w in text.removesuffix(" …").split())


# ---- interruption -----------------------------------------------------------------------------

def test_ctrl_c_is_one_line_and_130(make_clip, tmp_path, capsys, monkeypatch):
    from framescore.apps import keyframes as kf

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(kf, "analyze", interrupted)
    assert main([str(make_clip()), "--model", "rules", "-q", "-o", str(tmp_path / "o")]) == 130
    assert capsys.readouterr().err.strip() == "framescore: interrupted"
    assert not (tmp_path / "o").exists()


# ---- help is fast: nothing heavy is imported ---------------------------------------------------

def test_help_and_usage_errors_import_nothing_heavy():
    code = ("import sys\nfrom framescore.cli import main\n"
            "for argv in (['--help'], ['keyframes', '--help'], ['x.mp4', '--fps', 'inf']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'av', 'matplotlib', 'cv2', 'numpy', "
            "'framescore.models.registry') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]


# ---- framescore models -----------------------------------------------------------------------

def test_models_table_fits_80_columns_without_cutting_a_paper():
    from rich.console import Console

    from framescore.cli.models import rows, table

    data = rows()
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(table(data))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if "params" in line)
    for name in ("model / paper", "params", "input", "weights", "default"):
        assert name in header
    words = set(text.split())
    for r in data:                                   # every word of every paper is there
        assert all(w in words for w in r["paper"].split()), r["paper"]


# ---- framescore demo --------------------------------------------------------------------------

def test_demo_writes_to_the_folder_it_names_and_never_overwrites(tmp_path, capsys, monkeypatch):
    cache, cwd = tmp_path / "cache", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("FRAMESCORE_CACHE_DIR", str(cache))
    monkeypatch.chdir(cwd)
    assert main(["demo", "--model", "rules"]) == 0
    captured = capsys.readouterr()
    folder = cache / "demo"
    assert f"the demo is in {folder}/" in captured.out.replace("\n", "")
    assert (folder / "demo.mp4").is_file()
    assert (folder / "demo.framescore" / "keyframes.json").is_file()
    assert list(cwd.iterdir()) == []                 # nothing loose in the current folder
    before = (folder / "demo.mp4").stat().st_mtime_ns
    assert main(["demo", "--model", "rules", "-q"]) == 2
    assert "exists already" in one_line_error(capsys)
    assert (folder / "demo.mp4").stat().st_mtime_ns == before
