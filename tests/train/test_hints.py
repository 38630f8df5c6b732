"""Relative hints: photo split, reproducible triplet data, `framescore data`, fault evaluation."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from framescore.cli import main
from framescore.errors import DataError
from framescore.samples import photo, photo_paths
from framescore.scorers.rules import RulesScorer
from framescore.train import fault_eval, hints

FAULTS = ["gaussian_blur", "noise"]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Five real photos, shrunk so that rendering is fast."""
    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left"):
        im = Image.fromarray(photo(name))
        im.thumbnail((120, 120))
        im.save(root / f"{name}.png")
    (root / "notes.txt.bak").write_text("not an image")
    return root


def test_find_photos_folder_list_and_errors(photo_dir, tmp_path):
    found = hints.find_photos([photo_dir])
    assert [p.name for p in found] == sorted(f"{n}.png" for n in (
        "astronaut", "chelsea", "coffee", "rocket", "motorcycle_left"))
    lst = tmp_path / "list.txt"
    lst.write_text(f"# two photos\n{found[0]}\n{found[1]}  # second\n\n")
    assert hints.find_photos([lst, found[0]]) == sorted(found[:2])
    with pytest.raises(DataError, match="no such file"):
        hints.find_photos([tmp_path / "missing"])
    (tmp_path / "bad.txt").write_text("nowhere.jpg\n")
    with pytest.raises(DataError, match="not found"):
        hints.find_photos([tmp_path / "bad.txt"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no photos"):
        hints.find_photos([empty])


def test_split_is_by_content_and_seed(photo_dir, tmp_path):
    paths = hints.find_photos([photo_dir])
    a = hints.split_photos(paths, seed=3)
    assert sum(e.split == "test" for e in a) == 1          # round(0.2 · 5)
    # the same files elsewhere, under other names: the same photos are held out
    moved = tmp_path / "moved"
    moved.mkdir()
    for k, p in enumerate(paths):
        shutil.copy(p, moved / f"x{k}.png")
    b = hints.split_photos(hints.find_photos([moved]), seed=3)
    assert {e.sha256 for e in a if e.split == "test"} == {e.sha256 for e in b if e.split == "test"}
    held = {frozenset(e.sha256 for e in hints.split_photos(paths, s) if e.split == "test")
            for s in range(8)}
    assert len(held) > 1                                   # the seed matters
    with pytest.raises(DataError, match="at least 2"):
        hints.split_photos(paths[:1], seed=0)


def test_build_is_reproducible_and_consistent(photo_dir, tmp_path):
    kw = dict(variants=2, size=32, long_side=96, fault_names=FAULTS)
    m1 = hints.build([photo_dir], tmp_path / "a", seed=5, **kw)
    m2 = hints.build([photo_dir], tmp_path / "b", seed=5, **kw)
    a = np.load(tmp_path / "a" / "images.npy")
    assert np.array_equal(a, np.load(tmp_path / "b" / "images.npy"))
    assert m1["photos"] == m2["photos"]
    n_train = m1["n_train_photos"]
    assert (n_train, m1["n_test_photos"]) == (4, 1)
    assert a.shape == (n_train * 2 * (1 + 2 * len(FAULTS)), 32, 32, 3)
    rows = list(csv.DictReader((tmp_path / "a" / "images.csv").read_text().splitlines()))
    test_index = [i for i, p in enumerate(m1["photos"]) if p["split"] == "test"]
    assert not any(int(r["photo"]) in test_index for r in rows)   # held-out never rendered
    groups = hints.read_groups(tmp_path / "a")
    assert len(groups) == n_train * 2 * len(FAULTS)
    faults_of = hints.read_group_faults(tmp_path / "a")
    for (c, lo, hi), fault in zip(groups, faults_of, strict=True):
        assert rows[c]["fault"] == "clean"
        assert rows[lo]["fault"] == rows[hi]["fault"] == fault
        assert float(rows[lo]["severity"]) + 0.3 <= float(rows[hi]["severity"]) + 1e-6
        assert rows[lo]["seed"] == rows[hi]["seed"]
        assert len({rows[c]["photo"], rows[lo]["photo"], rows[hi]["photo"]}) == 1
    # a different seed changes the renders
    hints.build([photo_dir], tmp_path / "c", seed=6, **kw)
    assert not np.array_equal(a, np.load(tmp_path / "c" / "images.npy"))
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["seed"] == 5
    with pytest.raises(DataError, match="exists"):
        hints.build([photo_dir], tmp_path / "a", seed=5, **kw)


def test_low_severity_range_reaches_two_heavy_copies(photo_dir, tmp_path):
    """With ``--low-severity 0.6,0.7`` every group orders two heavily damaged copies (the
    default range never does), and the range is recorded in the manifest."""
    default = hints.plan_groups(0, "ab" * 32, 3, 0, FAULTS)
    again = hints.plan_groups(0, "ab" * 32, 3, 0, FAULTS, (0.15, 0.55))
    assert default == again                                        # the default is unchanged
    for _, renders in hints.plan_groups(0, "ab" * 32, 3, 0, FAULTS, (0.6, 0.7)):
        damaged = [r.severity for r in renders if r.fault != "clean"]
        for low, high in zip(damaged[::2], damaged[1::2], strict=True):
            assert 0.6 <= low <= 0.7 and min(low + 0.3, 1.0) - 1e-4 <= high <= 1.0
    m = hints.build([photo_dir], tmp_path / "h", seed=1, variants=1, size=32, long_side=64,
                    fault_names=FAULTS, low_severity=(0.6, 0.7))
    assert m["low_severity"] == [0.6, 0.7]
    assert hints.read_manifest(tmp_path / "h")["low_severity"] == [0.6, 0.7]
    for bad in ((0.0, 0.5), (0.5, 0.4), (0.3, 0.8), (0.2,)):
        with pytest.raises(DataError, match="low severity"):
            hints.build([photo_dir], tmp_path / "x", seed=1, low_severity=bad)
    assert not (tmp_path / "x").exists()                          # refused before any work
    args = ["data", str(photo_dir), "--out", str(tmp_path / "y"), "-q", "--low-severity"]
    assert main([*args, "0.3,0.8"]) == 2
    with pytest.raises(SystemExit) as exc:                        # argparse's own usage error
        main([*args, "0.3"])
    assert exc.value.code == 2
    assert not (tmp_path / "y").exists()


def test_cli_data_faults_renders_the_named_faults_in_a_fixed_order(photo_dir, tmp_path,
                                                                    capsys):
    # the model card reproduces older data by naming its faults: the order typed must not
    # change the draws, and a fault added to FAULTS later must not enter that data
    args = ["data", str(photo_dir), "--seed", "1", "--variants", "1", "--size", "32",
            "--long-side", "64", "-q"]
    assert main([*args, "--out", str(tmp_path / "a"), "--faults", "noise,gaussian_blur"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--faults", "gaussian_blur, noise"]) == 0
    assert hints.read_manifest(tmp_path / "a")["faults"] == ["gaussian_blur", "noise"]
    assert np.array_equal(np.load(tmp_path / "a" / "images.npy"),
                          np.load(tmp_path / "b" / "images.npy"))
    assert set(hints.read_group_faults(tmp_path / "a")) == {"gaussian_blur", "noise"}
    assert main([*args, "--out", str(tmp_path / "c"), "--faults", "noise,thumb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "thumb" in err
    assert not (tmp_path / "c").exists()


def test_cli_data(photo_dir, tmp_path, capsys):
    out = tmp_path / "hints"
    args = ["data", str(photo_dir), "--out", str(out), "--seed", "1", "--variants", "1",
            "--size", "32", "--long-side", "64", "--quiet"]
    assert main(args) == 0
    assert hints.read_manifest(out)["n_test_photos"] == 1
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert main(["data", str(tmp_path / "nope"), "--out", str(tmp_path / "o2"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    assert main(["data", "--out", str(tmp_path / "o3")]) == 2
    assert "no photos" in capsys.readouterr().err
    with pytest.raises(DataError, match="not a hints folder"):
        hints.read_manifest(tmp_path)


class Constant:
    """A scorer that cannot tell images apart (every pair is a tie)."""

    name = "constant"
    spec = RulesScorer.spec

    def score_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {"score": np.zeros(len(images), dtype=np.float32)}


def test_fault_eval_table(photo_dir):
    photos = [str(p) for p in hints.find_photos([photo_dir])[:2]]
    tables = fault_eval.evaluate([RulesScorer(), Constant()], photos, seed=0, repeats=1,
                                 fault_names=["gaussian_blur", "fade_black", "tilt"])
    rules, const = tables
    assert rules.pairs == {"gaussian_blur": 12, "fade_black": 12, "tilt": 12}
    assert rules.accuracy("gaussian_blur") == 1.0       # sharpness sees blur
    assert rules.accuracy("fade_black") == 1.0          # exposure sees a fade
    assert const.overall == 0.5 and const.accuracy("tilt") == 0.5
    rows = fault_eval.table_text(tables)
    assert rows[0] == ["fault", "pairs", "rules", "constant"]
    assert rows[-1][0] == "overall" and rows[-1][3] == "50.0"
    md = fault_eval.markdown_table(tables)
    assert md.count("\n") == 2 + 3 + 1
    again = fault_eval.evaluate([RulesScorer()], photos, seed=0, repeats=1,
                                fault_names=["tilt"])
    assert again[0].correct["tilt"] == rules.correct["tilt"]      # reproducible


def test_cross_photo_measure(photo_dir):
    """Each photo's clean image against every other photo at full damage."""
    photos = [str(p) for p in hints.find_photos([photo_dir])[:3]]
    rules, const = fault_eval.cross_photo([RulesScorer(), Constant()], photos, seed=0,
                                          fault_names=["fade_black", "gaussian_blur"])
    assert rules.pairs == const.pairs == 3 * 2 * 2
    assert rules.accuracy == 1.0          # a fade to black / a blur is worse than another photo
    assert const.accuracy == 0.5          # ties count a half
    assert "tilt" not in fault_eval.CROSS_FAULTS and "framing" not in fault_eval.CROSS_FAULTS
    with pytest.raises(DataError, match="two"):
        fault_eval.cross_photo([Constant()], photos[:1])


def test_fault_eval_repeats_are_different_images(photo_dir):
    """A fault with no random choice must not be the same renders counted twice: every
    repeat after the first takes its own view of the photo (mirror, crop)."""
    photo = hints.find_photos([photo_dir])[0]
    first, second = fault_eval.draws([photo], seed=0, repeats=2, fault_names=["fade_black"])
    whole = hints.load_photo(photo, 480)
    assert np.array_equal(first.images[0], whole)                 # repeat 0: the whole photo
    assert not (second.images[0].shape == whole.shape
                and np.array_equal(second.images[0], whole))      # repeat 1: another view
    (h, w), (vh, vw) = whole.shape[:2], second.images[0].shape[:2]
    assert 0.9 * h - 1 <= vh <= h and 0.9 * w - 1 <= vw <= w    # a 90-100 % crop
    again = list(fault_eval.draws([photo], seed=0, repeats=2, fault_names=["fade_black"]))
    assert all(np.array_equal(a, b) for a, b in zip(again[1].images, second.images, strict=True))


def test_held_out_photos_match_the_data_split(photo_dir, tmp_path):
    hints.build([photo_dir], tmp_path / "h", seed=2, variants=1, size=32, long_side=64,
                fault_names=["noise"])
    from_manifest = fault_eval.held_out_photos(tmp_path / "h")
    recomputed = fault_eval.held_out_photos(sources=[photo_dir], seed=2)
    assert from_manifest == recomputed and len(recomputed) == 1


def test_samples_exist():
    assert len(photo_paths()) >= 5




def test_data_with_workers_ends_without_a_traceback(photo_dir, tmp_path, capfd):
    """The render processes are ended after the last render: the command line's signal
    handlers, inherited by the forked workers, used to print a traceback from each idle one."""
    for k in range(3):      # a race (where each idle worker is when the pool ends): thrice
        argv = ["data", str(photo_dir), "--out", str(tmp_path / f"h{k}"), "--variants", "1",
                "--size", "32", "--long-side", "64", "--workers", "6", "-q"]
        assert main(argv) == 0
        assert "Traceback" not in capfd.readouterr().err
        assert (tmp_path / f"h{k}" / "images.npy").is_file()
