"""rank: ranking.csv and contact sheet in score order, the score cache, bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from framescore.apps.rank import FileKey, ScoreCache, default_cache_path, weights_id
from framescore.cli import main
from framescore.samples import photo_paths


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """The shipped photos, some in a sub-folder, plus a corrupt file and a text file."""
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    for i, path in enumerate(sorted(photo_paths().values())):
        target = root / ("trip" if i % 2 else ".") / path.name
        shutil.copyfile(path, target)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("shopping list")
    return root


def rank_json(capsys, *args: str) -> dict:
    assert main(["rank", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ranking_csv_and_contact_sheet(collection: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    n = len(photo_paths())
    doc = rank_json(capsys, str(collection), "--out", str(out), "--model", "rules",
                    "--cache", str(tmp_path / "c.sqlite"))
    assert doc["photos"] == n and doc["scored"] == n and doc["cached"] == 0
    assert sorted(Path(s["file"]).name for s in doc["skipped"]) == ["broken.jpg", "notes.txt"]
    with open(out / "ranking.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and [int(r["rank"]) for r in rows] == list(
        range(1, n + 1))
    assert any(r["file"].startswith("trip/") for r in rows)
    assert {"sharpness", "width", "height"} <= set(rows[0])
    # the contact sheet shows every photo, in the same order, with a thumbnail that exists
    page = (out / "index.html").read_text()
    names = re.findall(r'<span class="name">([^<]+)</span>', page)
    assert names == [r["file"] for r in rows]
    shown = re.findall(r'<span class="score">([\d.]+)</span>', page)
    assert [float(s) for s in shown] == pytest.approx(scores, abs=6e-4)
    for thumb in re.findall(r'<img src="([^"]+)"', page):
        with Image.open(out / thumb) as im:
            assert max(im.size) == 256
    for link in re.findall(r'<a href="([^"]+)"', page):
        assert (out / link).resolve().is_file()
    assert json.loads((out / "skipped.json").read_text())[0]["reason"]


def test_second_run_comes_from_the_cache(collection: Path, tmp_path: Path, capsys) -> None:
    cache = tmp_path / "scores.sqlite"
    out = tmp_path / "out"
    common = [str(collection), "--out", str(out), "--model", "rules", "--cache", str(cache)]
    first = rank_json(capsys, *common)
    thumbs = sorted(p.name for p in (out / "thumbs").iterdir())
    second = rank_json(capsys, *common, "--force")
    assert second["scored"] == 0 and second["cached"] == first["photos"]
    assert [r["score"] for r in second["ranking"]] == [r["score"] for r in first["ranking"]]
    assert sorted(p.name for p in (out / "thumbs").iterdir()) == thumbs
    # a changed file (new modification time) is scored again, the rest is not
    changed = collection / "chelsea.png"
    if not changed.exists():
        changed = collection / "trip" / "chelsea.png"
    os.utime(changed, (1_700_000_000, 1_700_000_000))
    third = rank_json(capsys, *common, "--force")
    assert third["scored"] == 1 and third["cached"] == first["photos"] - 1
    # another output folder still uses the cache (thumbnails are made again)
    fourth = rank_json(capsys, *common[:2], str(tmp_path / "elsewhere"), *common[3:])
    assert fourth["scored"] == 0
    assert len(list((tmp_path / "elsewhere" / "thumbs").iterdir())) == first["photos"]
    # --no-cache scores everything
    fifth = rank_json(capsys, str(collection), "--out", str(tmp_path / "nc"), "--no-cache")
    assert fifth["cached"] == 0


def test_cache_key_has_model_and_weights(tmp_path: Path, collection: Path) -> None:
    path = next(collection.glob("*.png"))
    key = FileKey.of(path)
    from framescore.apps.rank import Entry

    a = ScoreCache(tmp_path / "c.sqlite", "rules", "none")
    a.put([(key, Entry(0.5, {"sharpness": 0.9}, 10, 20))])
    assert a.get(key) == Entry(0.5, {"sharpness": 0.9}, 10, 20)
    a.close()
    assert ScoreCache(tmp_path / "c.sqlite", "rules", "other").get(key) is None
    assert ScoreCache(tmp_path / "c.sqlite", "mobile", "none").get(key) is None
    grown = FileKey(key.path, key.size + 1, key.mtime_ns)
    assert ScoreCache(tmp_path / "c.sqlite", "rules", "none").get(grown) is None
    assert weights_id("rules") == "none"
    w = tmp_path / "w.pt"
    w.write_bytes(b"abc")
    assert weights_id("rules", w) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_default_cache_location(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRAMESCORE_CACHE_DIR", str(tmp_path / "fc"))
    assert default_cache_path() == tmp_path / "fc" / "scores.sqlite"
    monkeypatch.delenv("FRAMESCORE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "framescore" / "scores.sqlite"


def test_output_inside_the_folder_is_not_ranked(collection: Path, tmp_path: Path,
                                                capsys, monkeypatch) -> None:
    monkeypatch.setenv("FRAMESCORE_CACHE_DIR", str(tmp_path / "cache"))
    out = collection / "ranking"
    first = rank_json(capsys, str(collection), "--out", str(out))
    again = rank_json(capsys, str(collection), "--out", str(out), "--force")
    assert again["photos"] == first["photos"] == len(photo_paths())


def test_default_output_beside_the_folder(collection: Path, tmp_path: Path, capsys,
                                          monkeypatch) -> None:
    monkeypatch.setenv("FRAMESCORE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["rank", str(collection)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "photos.ranking" / "ranking.csv").is_file()
    assert "ranking.csv" in out
    # a second run updates its own earlier sheet in place (from the cache), without --force
    sheet = tmp_path / "photos.ranking"
    before = (sheet / "ranking.csv").read_text()
    assert main(["rank", str(collection), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scored"] == 0
    assert (sheet / "ranking.csv").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".photos.ranking")]
    # a folder that holds anything else is still refused without --force
    (sheet / "mine.txt").write_text("mine")
    assert main(["rank", str(collection), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "exists already" in err and "\n" not in err
    assert (sheet / "mine.txt").read_text() == "mine"


@pytest.mark.parametrize("case", ["empty", "missing", "file", "only-junk"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, case: str,
                                          monkeypatch) -> None:
    monkeypatch.setenv("FRAMESCORE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "f"
    folder.mkdir()
    target = folder
    if case == "missing":
        target = tmp_path / "nope"
    elif case == "file":
        target = folder / "a.txt"
        target.write_text("x")
    elif case == "only-junk":
        (folder / "a.jpg").write_bytes(b"junk")
    assert main(["rank", str(target), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("framescore: error:") and "\n" not in err, err
    assert {"empty": "no image files", "missing": "no such folder", "file": "not a folder",
            "only-junk": "no image could be read"}[case] in err
    assert not (tmp_path / "out").exists()
