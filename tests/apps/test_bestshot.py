"""bestshot: the cleanest shot of a burst wins; bursts in a folder; clips; copies; bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framescore.apps.bestshot import Settings, score_images
from framescore.apps.groups import group_bursts, signature, similarity
from framescore.cli import main
from framescore.io.writer import write_clip
from framescore.samples import photo
from framescore.scorers.rules import RulesScorer


def shake(image: np.ndarray, length: int) -> np.ndarray:
    """Horizontal motion blur over ``length`` pixels (camera shake)."""
    f = image.astype(np.float32)
    kernel = np.ones(length, np.float32) / length
    out = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), 1, f)
    return np.clip(out, 0, 255).astype(np.uint8)


def expose(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def frame(image: np.ndarray, dx: int, dy: int, margin: float = 0.06) -> np.ndarray:
    """Re-frame: a crop shifted by (dx, dy) pixels, scaled back to the full size."""
    h, w = image.shape[:2]
    mx, my = int(margin * w), int(margin * h)
    box = (mx + dx, my + dy, w - mx + dx, h - my + dy)
    return np.asarray(Image.fromarray(image).crop(box).resize((w, h), Image.Resampling.LANCZOS))


def burst(name: str) -> dict[str, np.ndarray]:
    """One real photo shot six times: one clean frame, the others shaken, mis-exposed, moved."""
    a = photo(name)
    return {"clean": frame(a, 0, 0), "shake9": shake(frame(a, 3, 2), 9),
            "shake21": shake(frame(a, -4, 3), 21), "dark": expose(frame(a, 2, -2), 0.45),
            "bright": expose(frame(a, -3, 1), 1.9),
            "shake5dark": expose(shake(frame(a, 5, 5), 5), 0.7)}


def write_burst(folder: Path, name: str, start: float | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (kind, image) in enumerate(burst(name).items()):
        path = folder / f"{name}_{kind}.jpg"
        Image.fromarray(image).save(path, quality=92)
        if start is not None:
            os.utime(path, (start + 0.3 * i, start + 0.3 * i))
        paths.append(path)
    return paths


def run_json(capsys, *args: str) -> dict:
    assert main(["bestshot", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("framescore: error:") and "\n" not in err, err
    return err


@pytest.mark.parametrize("name", ["chelsea", "astronaut"])
def test_cleanest_shot_wins(tmp_path: Path, capsys, name: str) -> None:
    write_burst(tmp_path / name, name)
    doc = run_json(capsys, str(tmp_path / name), "--model", "rules", "--top", "6")
    ranking = doc["ranking"]
    assert len(ranking) == 6 and doc["model"]["name"] == "rules"
    assert Path(ranking[0]["file"]).name == f"{name}_clean.jpg"
    scores = [r["score"] for r in ranking]
    assert scores == sorted(scores, reverse=True)
    assert [r["rank"] for r in ranking] == list(range(1, 7))
    # heavy shake scores below the clean frame by a clear margin
    by_kind = {Path(r["file"]).stem.split("_", 1)[1]: r["score"] for r in ranking}
    assert by_kind["clean"] - by_kind["shake21"] > 0.1
    assert all(r["std"] is None for r in ranking)       # rules has per-term extras, no std
    assert set(ranking[0]["extras"]) >= {"sharpness", "exposure"}


def test_files_and_globs(tmp_path: Path, capsys) -> None:
    paths = write_burst(tmp_path, "chelsea")
    doc = run_json(capsys, str(paths[1]), str(paths[2]), "--model", "rules")
    assert [Path(r["file"]).name for r in doc["ranking"]] == ["chelsea_shake9.jpg",
                                                            "chelsea_shake21.jpg"]
    doc = run_json(capsys, str(tmp_path / "*clean*"), str(tmp_path / "*dark.jpg"))
    assert {Path(r["file"]).name for r in doc["ranking"]} == {
        "chelsea_clean.jpg", "chelsea_dark.jpg", "chelsea_shake5dark.jpg"}
    assert len(doc["best"]) == 3 and doc["best"][0]["rank"] == 1


def test_table_output(tmp_path: Path, capsys) -> None:
    write_burst(tmp_path, "chelsea")
    assert main(["bestshot", str(tmp_path), "--model", "rules", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "chelsea_clean.jpg" in out and "6 scored" in out
    assert out.count(".jpg") == 2


def test_clip_frames_are_candidates(tmp_path: Path, capsys) -> None:
    frames = burst("chelsea")
    order = ["shake21", "dark", "clean", "bright", "shake9"]
    clip = write_clip(tmp_path / "burst.mp4", [frames[k] for k in order], fps=10, crf=16)
    doc = run_json(capsys, str(clip), "--model", "rules", "--copy-to", str(tmp_path / "best"),
                   "--top", "1")
    assert doc["kind"] == "video" and doc["scored"] == 5
    best = doc["best"][0]
    assert best["frame"] == 2 and best["time"] == pytest.approx(0.2)
    copied = Path(best["copied_to"])
    assert copied.name == "burst_t0000m00.200s.jpg"
    with Image.open(copied) as im:
        assert im.size == (frames["clean"].shape[1] // 2 * 2, frames["clean"].shape[0] // 2 * 2)


def test_group_splits_bursts_and_warns_about_corrupt_file(tmp_path: Path, capsys) -> None:
    write_burst(tmp_path, "chelsea", start=1_600_000_000.0)
    write_burst(tmp_path, "astronaut", start=1_600_000_100.0)
    (tmp_path / "broken.jpg").write_bytes((tmp_path / "chelsea_clean.jpg").read_bytes()[:2000])
    assert main(["bestshot", str(tmp_path), "--group", "--model", "rules", "--json"]) == 0
    captured = capsys.readouterr()
    doc, err = json.loads(captured.out), captured.err
    assert "broken.jpg" in err and err.count("\n") == 1 and "warning" in err
    assert doc["bursts"] == 2
    assert [Path(b["file"]).name for b in doc["best"]] == ["chelsea_clean.jpg",
                                                         "astronaut_clean.jpg"]
    assert [b["burst"] for b in doc["best"]] == [1, 2]
    members = {b: {Path(r["file"]).name.split("_")[0] for r in doc["ranking"] if r["burst"] == b}
               for b in (1, 2)}
    assert members == {1: {"chelsea"}, 2: {"astronaut"}}
    assert [s["file"] for s in doc["skipped"]] == [str(tmp_path / "broken.jpg")]


def test_group_by_appearance_when_times_say_nothing(tmp_path: Path, capsys) -> None:
    """Copied files share one modification time: the look of the photos splits the bursts."""
    paths = write_burst(tmp_path, "chelsea") + write_burst(tmp_path, "coffee")
    for p in paths:
        os.utime(p, (1_600_000_000, 1_600_000_000))
    doc = run_json(capsys, str(tmp_path), "--group", "--model", "rules", "--top", "2")
    assert doc["bursts"] == 2 and len(doc["best"]) == 4
    for b in (1, 2):
        names = {Path(r["file"]).name.split("_")[0] for r in doc["ranking"] if r["burst"] == b}
        assert len(names) == 1


def test_group_bursts_unit() -> None:
    a, b = photo("chelsea"), photo("rocket")
    sig_a, sig_b = signature(a), signature(b)
    assert similarity(sig_a, signature(expose(shake(a, 9), 0.6))) > 0.75
    assert similarity(sig_a, sig_b) < 0.75
    # same scene, but 10 s apart: two bursts; interleaved looks within one second: two bursts
    assert group_bursts([0.0, 0.5, 10.0, 10.2], [sig_a] * 4) == [0, 0, 1, 1]
    assert group_bursts([0.0, 0.1, 0.2, 0.3], [sig_a, sig_b, sig_a, sig_b]) == [0, 1, 0, 1]
    assert group_bursts([5.0], [sig_a]) == [0]


def test_score_images_skips_unreadable_and_keeps_order(tmp_path: Path) -> None:
    paths = write_burst(tmp_path, "chelsea")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    order = [paths[0], bad, paths[1], paths[2]]
    seen = []
    scored = score_images(order, RulesScorer(), batch_size=2, prepare=lambda pic: pic.size,
                          on_batch=seen.append)
    assert scored.paths == [paths[0], paths[1], paths[2]]
    assert [p for p, _ in scored.skipped] == [bad] and sum(seen) == 4
    assert scored.aux[0] == (451, 300) and scored.scores.shape == (3,)
    one = score_images([paths[1]], RulesScorer())
    assert one.scores[0] == pytest.approx(scored.scores[1], abs=1e-6)


def test_copy_to_never_overwrites(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    write_burst(src, "chelsea")
    dest = tmp_path / "best"
    doc = run_json(capsys, str(src), "--model", "rules", "--top", "2", "--copy-to", str(dest))
    copied = sorted(p.name for p in dest.iterdir())
    assert copied == sorted(Path(b["file"]).name for b in doc["best"])
    assert (dest / "chelsea_clean.jpg").read_bytes() == (src / "chelsea_clean.jpg").read_bytes()
    assert main(["bestshot", str(src), "--copy-to", str(dest), "--quiet"]) == 2
    assert "exists already" in one_line_error(capsys)
    assert main(["bestshot", str(src), "--copy-to", str(dest), "--quiet", "--force"]) == 0


def test_api_settings_default_top() -> None:
    assert Settings().keep == 5 and Settings(group=True).keep == 1
    assert Settings(top=3, group=True).keep == 3


@pytest.mark.parametrize("case", ["empty", "only-text", "missing", "all-corrupt", "no-glob",
                                  "clip-and-photo", "clip-group", "gap-without-group"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, case: str) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    args = [str(folder)]
    if case == "only-text":
        (folder / "a.txt").write_text("x")
    elif case == "missing":
        args = [str(tmp_path / "nope")]
    elif case == "all-corrupt":
        (folder / "a.jpg").write_bytes(b"\xff\xd8junk")
        (folder / "b.png").write_bytes(b"")
    elif case == "no-glob":
        args = [str(folder / "*.jpg")]
    elif case in ("clip-and-photo", "clip-group"):
        clip = write_clip(tmp_path / "c.mp4", [photo("chelsea")] * 3)
        Image.fromarray(photo("chelsea")).save(folder / "a.jpg")
        args = [str(clip), str(folder / "a.jpg")] if case == "clip-and-photo" \
            else [str(clip), "--group"]
    elif case == "gap-without-group":
        args = [str(folder), "--gap", "2"]
    assert main(["bestshot", *args]) == 2
    err = one_line_error(capsys)
    expected = {"empty": "no image files", "only-text": "no image files",
                "missing": "no such file", "all-corrupt": "no image could be read",
                "no-glob": "no file matches", "clip-and-photo": "only PATH",
                "clip-group": "only PATH", "gap-without-group": "--group"}[case]
    assert expected in err


def test_uncertainty_column_for_a_model_with_std(tmp_path: Path, capsys) -> None:
    """jin-histogram (real architecture, untrained weights) predicts a std: it is reported."""
    import torch

    from framescore.apps.bestshot import best_shot
    from framescore.apps.rank import rank_folder
    from framescore.cli.bestshot import _print_table
    from framescore.models.registry import get
    from framescore.scorers.torch import TorchScorer

    torch.manual_seed(0)
    info = get("jin-histogram")
    scorer = TorchScorer(info.name, info.build(), info.spec)
    for name in ("chelsea", "coffee"):
        Image.fromarray(photo(name)).save(tmp_path / f"{name}.jpg")
    result = best_shot([tmp_path], Settings(), scorer=scorer)
    assert all(c.std is not None and c.std > 0 for c in result.candidates)
    assert result.summary()["ranking"][0]["std"] == result.candidates[0].std
    _print_table(result, None)
    assert "± std" in capsys.readouterr().out
    ranked = rank_folder(tmp_path, tmp_path / "out", scorer, "untrained")
    header = (tmp_path / "out" / "ranking.csv").read_text().splitlines()[0].split(",")
    assert "std" in header and ranked.ranking[0].to_dict()["std"] is not None
    assert "±" in (tmp_path / "out" / "index.html").read_text()


def test_group_uses_exif_capture_time(tmp_path: Path, capsys) -> None:
    """Two bursts of one scene a minute apart (EXIF), files copied at one moment: two bursts."""
    images = burst("chelsea")
    for i, (kind, image) in enumerate(images.items()):
        for session, start in (("am", "10:00:0"), ("pm", "10:01:0")):
            exif = Image.Exif()
            exif.get_ifd(0x8769)[0x9003] = f"2020:05:17 {start}{i}"
            path = tmp_path / f"{session}_{kind}.jpg"
            Image.fromarray(image).save(path, quality=92, exif=exif)
            os.utime(path, (1_600_000_000, 1_600_000_000))
    doc = run_json(capsys, str(tmp_path), "--group", "--model", "rules")
    assert doc["bursts"] == 2
    assert [Path(b["file"]).name for b in doc["best"]] == ["am_clean.jpg", "pm_clean.jpg"]
