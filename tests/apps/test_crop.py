"""crop: boxes with the asked aspect inside the photo, border avoidance, searches, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framescore.apps.crop import Box, best_crop, parse_aspect, random_boxes, write_crop
from framescore.cli import main
from framescore.errors import OutputError, UsageError
from framescore.samples import photo, photo_paths
from framescore.scorers.rules import RulesScorer


@pytest.fixture(scope="module")
def scorer() -> RulesScorer:
    return RulesScorer()


def inside(box: Box, size: tuple[int, int]) -> bool:
    return (box.left >= 0 and box.top >= 0 and box.width >= 1 and box.height >= 1
            and box.left + box.width <= size[0] and box.top + box.height <= size[1])


def aspect_ok(box: Box, aspect: float) -> bool:
    """The box's ratio is the asked one, up to one pixel of rounding on the shorter side."""
    if aspect >= 1:
        return abs(box.width / aspect - box.height) <= 1
    return abs(box.height * aspect - box.width) <= 1


@pytest.mark.parametrize("text,expected", [("16:9", 16 / 9), ("1:1", 1.0), ("4:5", 0.8),
                                           ("3x2", 1.5), ("2.35:1", 2.35), ("1.5", 1.5),
                                           (" 9 / 16 ", 9 / 16)])
def test_parse_aspect(text: str, expected: float) -> None:
    assert parse_aspect(text)[0] == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "16:0", "0:1", "-4:3", "4:3:2", "1:1000", "nan"])
def test_parse_aspect_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="W:H"):
        parse_aspect(text)


@pytest.mark.parametrize("name", ["astronaut", "motorcycle_left", "rocket"])
@pytest.mark.parametrize("aspect", ["1:1", "16:9", "4:5", "3:1"])
def test_box_has_the_aspect_and_lies_inside(scorer, name: str, aspect: str) -> None:
    path = photo_paths()[name]
    result = best_crop(path, aspect, scorer, candidates=40)
    ratio = parse_aspect(aspect)[0]
    assert inside(result.box, result.size) and aspect_ok(result.box, ratio)
    assert result.score >= result.full_score          # the centred box is a candidate too
    crop = result.crop()
    assert crop.shape == (result.box.height, result.box.width, 3)


def test_random_boxes_are_valid() -> None:
    boxes = random_boxes((640, 427), 16 / 9, 500, 0.5, seed=1)
    x, y, w, h = boxes.T
    assert (x >= 0).all() and (y >= 0).all()
    assert (x + w <= 640 + 1e-6).all() and (y + h <= 427 + 1e-6).all()
    assert np.allclose(w / h, 16 / 9) and w.min() >= 0.5 * 640 - 1e-6
    assert boxes[0] == pytest.approx([0, (427 - 360) / 2, 640, 360])   # centred largest


@pytest.mark.parametrize("search", ["random", "coarse-to-fine"])
@pytest.mark.parametrize("name,aspect", [("astronaut", "1:1"), ("motorcycle_left", "3:2")])
def test_crop_avoids_a_flat_border(tmp_path: Path, scorer, search: str, name: str,
                                   aspect: str) -> None:
    """A photo letterboxed in flat black on every side: the crop keeps to the photo."""
    image = photo(name)
    h, w = image.shape[:2]
    m = int(0.25 * min(h, w))
    canvas = np.zeros((h + 2 * m, w + 2 * m, 3), np.uint8)
    canvas[m:m + h, m:m + w] = image
    Image.fromarray(canvas).save(tmp_path / "padded.png")
    result = best_crop(tmp_path / "padded.png", aspect, scorer, search=search, candidates=300)
    b = result.box
    overlap_w = max(0, min(b.left + b.width, m + w) - max(b.left, m))
    overlap_h = max(0, min(b.top + b.height, m + h) - max(b.top, m))
    in_photo = overlap_w * overlap_h / (b.width * b.height)
    assert in_photo >= 0.97, (b, in_photo)
    assert result.score > result.full_score + 0.05    # the centred largest box has border


def test_coarse_to_fine_is_as_good_and_cheaper(scorer) -> None:
    path = photo_paths()["astronaut"]
    rand = best_crop(path, "16:9", scorer, search="random", candidates=500)
    fine = best_crop(path, "16:9", scorer, search="coarse-to-fine")
    assert fine.score >= rand.score - 0.005
    assert fine.scored < rand.scored


def test_same_seed_same_crop(scorer) -> None:
    path = photo_paths()["chelsea"]
    a = best_crop(path, "1:1", scorer, candidates=60, seed=3)
    b = best_crop(path, "1:1", scorer, candidates=60, seed=3)
    assert a.box == b.box and a.score == b.score


def test_exif_rotated_photo_is_cropped_upright(tmp_path: Path, scorer) -> None:
    image = photo("motorcycle_left")                        # 741 x 500 as shown
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(image).transpose(Image.Transpose.ROTATE_90).save(
        tmp_path / "r.jpg", quality=95, exif=exif)
    result = best_crop(tmp_path / "r.jpg", "4:5", scorer, candidates=40)
    assert result.size == (741, 500) and inside(result.box, result.size)
    write_crop(result, tmp_path / "r.crop.png")
    with Image.open(tmp_path / "r.crop.png") as im:
        assert im.size == (result.box.width, result.box.height)
        written = np.asarray(im.convert("RGB")).astype(int)
    b = result.box
    expected = image[b.top:b.top + b.height, b.left:b.left + b.width].astype(int)
    assert np.abs(written - expected).mean() < 6            # upright pixels, JPEG noise only
    with pytest.raises(OutputError, match="exists already"):
        write_crop(result, tmp_path / "r.crop.png")


def test_cli_writes_beside_and_never_overwrites(tmp_path: Path, capsys) -> None:
    src = tmp_path / "moto.png"
    Image.fromarray(photo("motorcycle_left")).save(src)
    args = ["crop", str(src), "--aspect", "4:5", "--model", "rules", "--candidates", "50"]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    out = tmp_path / "moto.crop.jpg"
    assert doc["output"] == str(out) and doc["candidates_scored"] == 50
    box = doc["box"]
    with Image.open(out) as im:
        assert im.size == (box["width"], box["height"])
    assert aspect_ok(Box(**box), 0.8)
    before = out.read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "exists already" in err and "\n" not in err
    assert out.read_bytes() == before
    assert main([*args, "--force", "--search", "coarse-to-fine", "--quiet"]) == 0
    assert main([*args, "--out", str(tmp_path / "c.png")]) == 0
    assert "c.png" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["aspect", "missing", "folder", "corrupt", "extreme",
                                  "out-type", "min-scale"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, case: str) -> None:
    src = tmp_path / "p.png"
    Image.fromarray(photo("chelsea")).save(src)
    args = ["crop", str(src), "--aspect", "1:1", "--candidates", "10"]
    if case == "aspect":
        args[3] = "wide"
    elif case == "missing":
        args[1] = str(tmp_path / "nope.jpg")
    elif case == "folder":
        args[1] = str(tmp_path)
    elif case == "corrupt":
        src.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif case == "extreme":
        args[3] = "99:1"
    elif case == "out-type":
        args += ["--out", str(tmp_path / "c.gif")]
    elif case == "min-scale":
        args += ["--min-scale", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("framescore: error:") and "\n" not in err, err
    assert {"aspect": "W:H", "missing": "no such file", "folder": "folder",
            "corrupt": "p.png", "extreme": "too extreme", "out-type": "unknown image type",
            "min-scale": "--min-scale"}[case] in err
    assert not (tmp_path / "p.crop.jpg").exists()
