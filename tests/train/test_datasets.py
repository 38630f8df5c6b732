"""Dataset readers on fixture datasets written in the real file formats, and image loading."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from framescore.errors import DataError
from framescore.models.spec import InputSpec
from framescore.train.data import (
    ImageDataset,
    PairDataset,
    TripletDataset,
    check_images,
    collate_skip,
    generic_test_ids,
    load_image,
    read_aadb,
    read_arod,
    read_ava,
    read_content,
    read_folder,
    read_ratings,
    read_style,
    spec_view,
)
from framescore.train.data.aadb import ATTRIBUTES, flickr_key
from framescore.train.data.arod import image_name
from framescore.train.data.ava import histogram_stats, read_challenges, read_tags
from framescore.train.samplers import TripletSampler
from tests.datasets_fixtures import (
    CORRUPT_BYTES,
    degrade,
    make_aadb,
    make_arod,
    make_ava,
    make_folder,
)


@pytest.fixture(scope="module")
def ava(tmp_path_factory):
    return make_ava(tmp_path_factory.mktemp("ava"), n=40, seed=3, malformed=True)


@pytest.fixture(scope="module")
def aadb(tmp_path_factory):
    return make_aadb(tmp_path_factory.mktemp("aadb"), n=40, seed=4, malformed=True)


@pytest.fixture(scope="module")
def arod(tmp_path_factory):
    return make_arod(tmp_path_factory.mktemp("arod"), n=30, seed=5, malformed=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("folder"), n=20, seed=6, malformed=True)


# ---------------------------------------------------------------------------------------------
# the fixtures' ground truth is a function of the image


def test_degradation_grows_as_quality_falls():
    errors = []
    for q in (1.0, 0.75, 0.5, 0.25, 0.0):
        clean = degrade(1.0, np.random.default_rng(11), 64).astype(float)
        bad = degrade(q, np.random.default_rng(11), 64).astype(float)
        errors.append(np.mean((clean - bad) ** 2))
    assert errors[0] == 0
    assert all(a < b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] > 100  # quality 0 is visibly degraded


# ---------------------------------------------------------------------------------------------
# AVA


def test_ava_scores_histograms_and_counts(ava, caplog):
    with caplog.at_level(logging.WARNING, logger="framescore.train.data"):
        rs = read_ava(ava.root)
    assert rs.malformed == ava.meta["malformed"] == 4
    assert rs.missing == ava.meta["missing"] == 1
    assert len(rs) == len(ava.scores)
    for r in rs:
        assert r.score == pytest.approx(ava.scores[r.id])
        assert np.array_equal(r.histogram, ava.meta["histograms"][r.id])
        assert r.variance == pytest.approx(ava.meta["variances"][r.id])
        assert r.tags == ava.meta["tags"][r.id]
        assert r.path == ava.root / "images" / f"{r.id}.jpg"
        assert 1 <= r.challenge <= 3
    # the first malformed line numbers are in the log
    assert "skipped 4 malformed line(s) (line 41, 42, 43, 44)" in caplog.text
    assert "888888.jpg" in caplog.text


def test_ava_labels_only_and_image_dir(ava, tmp_path):
    every = read_ava(ava.root, require_images=False)
    assert len(every) == len(ava.scores) + 1 and every.missing == 0
    elsewhere = tmp_path / "pics"
    shutil.copytree(ava.root / "images", elsewhere)
    rs = read_ava(ava.root, image_dir=elsewhere)
    assert len(rs) == len(ava.scores)
    assert all(r.path.parent == elsewhere for r in rs)


def test_histogram_stats():
    mean, var = histogram_stats(np.array([0, 0, 0, 1, 0, 1, 0, 0, 0, 0]))
    assert mean == 5.0 and var == 1.0


def test_ava_lists(ava, tmp_path):
    assert generic_test_ids(ava.root) == ava.meta["test_ids"]
    assert read_content(ava.root, "train") == ava.meta["content"]["train"]
    assert read_tags(ava.root)[2] == "Still Life" and len(read_tags(ava.root)) == 66
    assert read_challenges(ava.root) == {1: "Blue", 2: "Shadows", 3: "Free_Study"}
    # the list folder may also be spelled without the s
    copy = tmp_path / "ava"
    shutil.copytree(ava.root, copy, ignore=shutil.ignore_patterns("images"))
    (copy / "aesthetics_image_lists").rename(copy / "aesthetic_image_lists")
    assert generic_test_ids(copy) == ava.meta["test_ids"]
    with pytest.raises(DataError, match="content split"):
        read_content(ava.root, "val")


def test_ava_content_categories_from_semantic_tags(ava, tmp_path):
    """Kong on AVA: content labels from the semantic tags (tags.txt names of the eight
    categories; the fixture names tag 2 "Still Life" and 3 "Landscape") and the content
    lists, which win over the tags."""
    import shutil

    from framescore.train.data.ava import CONTENT, content_categories

    records = read_ava(ava.root).records
    found = content_categories(ava.root, records)
    listed = {i: CONTENT.index(c) for split in ("train", "test")
              for c, ids in ava.meta["content"][split].items() for i in ids}
    assert {i: found[i] for i in listed} == listed
    # without the lists: the tags alone; untagged and other tags are absent
    bare = tmp_path / "bare"
    shutil.copytree(ava.root, bare, ignore=shutil.ignore_patterns("*_t*.jpgl", "images"))
    (bare / "aesthetics_image_lists" / "generic_test.jpgl").write_text(
        (ava.root / "aesthetics_image_lists" / "generic_test.jpgl").read_text())
    by_tags = content_categories(bare, records)
    expect = {}
    for r in records:
        names = [{2: "stilllife", 3: "landscape"}.get(t) for t in r.tags]
        hit = next((n for n in names if n), None)
        if hit:
            expect[r.id] = CONTENT.index(hit)
    assert by_tags == expect and len(expect) > 5


def test_ava_style_lists(ava):
    train = read_style(ava.root, "train")
    assert len(train) == len(ava.meta["train_ids"]) and train.info["styles"][0] == \
        "Complementary_Colors"
    for r in train:
        assert r.label == ava.meta["styles"][r.id]
        assert sum(r.labels) == 1 and r.labels[r.label] == 1
        assert r.score == pytest.approx(ava.scores[r.id])
    test = read_style(ava.root, "test")
    assert len(test) == len(ava.meta["test_ids"])
    assert all(r.labels == ava.meta["styles"][r.id] and len(r.labels) == 14 for r in test)


def test_ava_style_mismatch_and_bad_labels(ava, tmp_path):
    copy = tmp_path / "ava"
    shutil.copytree(ava.root, copy, ignore=shutil.ignore_patterns("images"))
    lab = copy / "style_image_lists" / "train.lab"
    lines = lab.read_text().splitlines()
    lab.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="must match line by line"):
        read_style(copy, "train", require_images=False)
    lab.write_text("\n".join(["15", "x", *lines[2:]]) + "\n")
    rs = read_style(copy, "train", require_images=False)
    assert rs.malformed == 2 and len(rs) == len(lines) - 2


def test_ava_bad_roots(tmp_path):
    with pytest.raises(DataError, match="AVA folder not found"):
        read_ava(tmp_path / "nope")
    with pytest.raises(DataError, match="AVA.txt"):
        read_ava(tmp_path)
    (tmp_path / "AVA.txt").write_bytes(b"\x00\xff\xfe garbage\n\x89PNG\r\n")
    with pytest.raises(DataError, match="no usable entries"):
        read_ava(tmp_path)
    with pytest.raises(DataError, match="generic_test.jpgl"):
        generic_test_ids(tmp_path)
    with pytest.raises(DataError, match="style"):
        read_style(tmp_path, "train")


# ---------------------------------------------------------------------------------------------
# AADB


def test_aadb_splits_scores_attributes(aadb):
    total = 0
    for split, tag in (("train", "Train"), ("validation", "Validation"), ("test", "Test"),
                       ("TestNew", "TestNew")):
        rs = read_aadb(aadb.root, split)
        expected = [n for n, s in aadb.meta["split"].items() if s == tag]
        assert sorted(r.id for r in rs) == sorted(expected)
        for r in rs:
            assert r.score == pytest.approx(aadb.scores[r.id])
            assert r.attributes == pytest.approx(aadb.meta["attributes"][r.id])
            assert set(r.attributes) == set(ATTRIBUTES)
            assert r.path == aadb.root / "datasetImages_originalSize" / r.id
        if tag == "TestNew":
            assert all(r.id[:5].replace(".", "").isdigit() and r.id[5] == "_" for r in rs)
        total += len(rs)
    assert total == len(aadb.scores)
    train = read_aadb(aadb.root, "train")
    assert train.malformed == 3 and train.missing == 1


def test_aadb_ratings_attach_by_flickr_key(aadb, caplog):
    with caplog.at_level(logging.WARNING, logger="framescore.train.data"):
        rs = read_aadb(aadb.root, "testnew", ratings=aadb.meta["ratings_csv"])
    assert "malformed rating" in caplog.text
    for r in rs:
        assert sorted(r.ratings) == sorted(aadb.meta["ratings"][r.id])
        assert len(r.ratings) == 5
    ratings = read_ratings(aadb.meta["ratings_csv"])
    assert len(ratings) == 5 * len(aadb.scores)
    assert rs.info["unmatched_ratings"] == len(ratings) - 5 * len(rs)


def test_flickr_key():
    key = "19452343093_8ee7e5e375_b.jpg"
    assert flickr_key("http://farm1.staticflickr.com/255/19452343093_8ee7e5e375_b.jpg") == key
    assert flickr_key("farm1_255_19452343093_8ee7e5e375_b.jpg") == key
    assert flickr_key("0.500_farm1_255_19452343093_8ee7e5e375_b.jpg") == key


def test_aadb_missing_attribute_files(aadb, tmp_path, caplog):
    copy = tmp_path / "aadb"
    shutil.copytree(aadb.root, copy, ignore=shutil.ignore_patterns("datasetImages*"))
    (copy / "imgListFiles_label" / "imgListTestNewRegression_DoF.txt").unlink()
    with caplog.at_level(logging.WARNING, logger="framescore.train.data"):
        rs = read_aadb(copy, "testnew", require_images=False)
    assert "no DoF list" in caplog.text
    assert "DoF" not in rs.info["attributes"] and all("DoF" not in r.attributes for r in rs)
    with pytest.raises(DataError, match="imgListTestNewRegression_DoF.txt"):
        read_aadb(copy, "testnew", attributes=("DoF",), require_images=False)
    assert all(r.attributes == {} for r in read_aadb(copy, "testnew", attributes=False,
                                                     require_images=False))
    with pytest.raises(DataError, match="unknown AADB attribute"):
        read_aadb(copy, "testnew", attributes=("Beauty",))


def test_aadb_bad_inputs(aadb, tmp_path):
    with pytest.raises(DataError, match="AADB folder not found"):
        read_aadb(tmp_path / "nope")
    with pytest.raises(DataError, match="imgListTrainRegression_score.txt"):
        read_aadb(tmp_path)
    with pytest.raises(DataError, match="unknown AADB split"):
        read_aadb(aadb.root, "holdout")
    bad_csv = tmp_path / "ratings.csv"
    bad_csv.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="not an AADB rating CSV"):
        read_ratings(bad_csv)
    with pytest.raises(DataError, match="rating CSV not found"):
        read_ratings(tmp_path / "none.csv")


# ---------------------------------------------------------------------------------------------
# AROD


def test_arod_scores_and_drops(arod, caplog):
    with caplog.at_level(logging.INFO, logger="framescore.train.data"):
        rs = read_arod(arod.root)
    assert (rs.malformed, rs.dropped, rs.missing) == (4, 2, 1)
    assert rs.info == {"dropped_views": 1, "dropped_faves": 1}
    assert "1 with views <= 1, 1 with faves < 1" in caplog.text
    assert len(rs) == len(arod.scores)
    for r in rs:
        faves, views = arod.meta["faves"][r.id], arod.meta["views"][r.id]
        assert r.score == pytest.approx(math.log(faves) / math.log(views))
        assert r.score == pytest.approx(arod.scores[r.id])
        assert r.extra == {"url": arod.meta["urls"][r.id], "faves": faves, "views": views}
        assert r.path == arod.root / "img" / r.id


def test_arod_image_name_and_errors(tmp_path):
    assert image_name("https://farm3.staticflickr.com/2/123_ab.jpg?zz=1") == "123_ab.jpg"
    assert image_name("https://x.org/a%20b.jpg") == "a b.jpg"
    with pytest.raises(DataError, match="AROD list"):
        read_arod(tmp_path)
    (tmp_path / "list.txt").write_text("http://x/a.jpg;0;0\n")
    with pytest.raises(DataError, match="no usable entries"):
        read_arod(tmp_path, require_images=False)


# ---------------------------------------------------------------------------------------------
# folder + CSV


def test_folder_scores(folder):
    rs = read_folder(folder.root)
    assert (rs.malformed, rs.missing) == (4, 1)
    assert {r.id: r.score for r in rs} == pytest.approx(folder.scores)
    assert any(r.path.parent.name == "sub" for r in rs)
    # the CSV itself as root gives the same
    assert len(read_folder(folder.root / "scores.csv")) == len(rs)


def test_folder_header_variants(tmp_path):
    fx = make_folder(tmp_path / "f", n=6, seed=1, header=False)
    assert {r.id: r.score for r in read_folder(fx.root)} == pytest.approx(fx.scores)
    rows = [f"{s},{n}" for n, s in fx.scores.items()]
    (fx.root / "scores.csv").write_text("score,file\n" + "\n".join(rows) + "\n")
    assert {r.id: r.score for r in read_folder(fx.root)} == pytest.approx(fx.scores)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="no score CSV"):
        read_folder(tmp_path)
    (tmp_path / "a.csv").write_text("file,score\n")
    (tmp_path / "b.csv").write_text("file,score\n")
    with pytest.raises(DataError, match="several CSV"):
        read_folder(tmp_path)
    with pytest.raises(DataError, match="no usable entries"):
        read_folder(tmp_path, csv_file="a.csv")


# ---------------------------------------------------------------------------------------------
# image loading


def test_load_image_exif_and_modes(tmp_path):
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = 255  # left half white
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (80, 40, 3) and out.dtype == np.uint8
    assert out[:20].mean() > 200 and out[-20:].mean() < 50  # white half now on top
    Image.fromarray(pixels[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([pixels, np.full((40, 80), 255, np.uint8)])).save(
        tmp_path / "rgba.png")
    for name in ("grey.png", "rgba.png"):
        assert load_image(tmp_path / name).shape == (40, 80, 3)


def test_load_image_draft_keeps_at_least_the_asked_size(tmp_path):
    Image.fromarray(np.full((800, 1200, 3), 128, np.uint8)).save(tmp_path / "big.jpg")
    small = load_image(tmp_path / "big.jpg", draft=(224, 224))
    assert min(small.shape[:2]) >= 224 and small.shape[1] < 1200


def test_image_dataset_skips_corrupt_images(ava):
    rs = read_ava(ava.root)
    good, bad = check_images(rs.records)
    assert bad == 1 and len(good) == len(rs) - 1
    spec = InputSpec(48, 48, view="warp")
    ds = ImageDataset(rs, view=spec_view(spec))
    loader = DataLoader(ds, batch_size=8, collate_fn=collate_skip)
    seen = skipped = 0
    for batch in loader:
        skipped += batch["skipped"]
        if batch["size"]:
            assert batch["image"].shape[1:] == (48, 48, 3)
            assert batch["image"].dtype == torch.uint8
            ids = [rs[int(i)].id for i in batch["index"]]
            assert batch["target"].tolist() == pytest.approx([ava.scores[i] for i in ids])
            seen += batch["size"]
    assert skipped == 1 == ds.unreadable
    assert seen == len(rs) - 1


def test_collate_all_unreadable_and_worker_processes(aadb):
    assert collate_skip([None, None]) == {"skipped": 2, "size": 0}
    rs = read_aadb(aadb.root, "train")
    ds = ImageDataset(rs, view=spec_view(InputSpec(32, 32, view="warp")))
    loader = DataLoader(ds, batch_size=10, collate_fn=collate_skip, num_workers=2)
    batches = list(loader)
    assert sum(b["skipped"] for b in batches) == aadb.meta["corrupt"] == 1
    assert sum(b["size"] for b in batches) == len(rs) - 1


def test_random_views_are_seeded(folder):
    rs = read_folder(folder.root)
    ds = ImageDataset(rs, view=spec_view(InputSpec(24, 24, view="patch")))
    i = next(k for k, r in enumerate(rs) if r.id not in folder.meta["corrupt_ids"])
    torch.manual_seed(0)
    a = [ds[i]["image"] for _ in range(4)]
    torch.manual_seed(0)
    b = [ds[i]["image"] for _ in range(4)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(a[0], x) for x in a[1:])  # different crops each call
    centre = ImageDataset(rs, view=spec_view(InputSpec(24, 24, view="patch"), random=False))
    assert np.array_equal(centre[i]["image"], centre[i]["image"])


def test_pair_and_triplet_datasets(arod):
    rs = read_arod(arod.root)
    ds = ImageDataset(rs, view=spec_view(InputSpec(32, 32, view="warp")))
    corrupt = next(k for k, r in enumerate(rs) if r.id in arod.meta["corrupt_ids"])
    ok = [k for k in range(len(rs)) if k != corrupt]
    pairs = np.array([[ok[0], ok[1], 1], [corrupt, ok[2], -1]])
    pd = PairDataset(ds, pairs)
    item = pd[0]
    assert item["image1"].shape == (32, 32, 3) and item["y"] == 1.0
    assert item["target1"] == pytest.approx(rs[ok[0]].score)
    assert pd[1] is None
    scores = np.array([r.score for r in rs])
    scores[corrupt] = np.nan  # never drawn
    td = TripletDataset(ds, TripletSampler(scores), length=6)
    batch = collate_skip([td[k] for k in range(len(td))])
    assert batch["size"] == 6 and batch["anchor"].shape == (6, 32, 32, 3)
    s = batch["scores"].numpy()
    better = s[:, 2] > np.maximum(s[:, 0], s[:, 1])
    assert better.tolist() == [True, False] * 3


def test_corrupt_bytes_are_not_an_image(tmp_path):
    (tmp_path / "x.jpg").write_bytes(CORRUPT_BYTES)
    with pytest.raises(OSError):
        load_image(tmp_path / "x.jpg")
    assert Path(tmp_path / "x.jpg").stat().st_size > 0
