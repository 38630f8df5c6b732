"""framescore.io.images: every image mode, EXIF orientations, reduced decoding, listings."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framescore.errors import MediaError
from framescore.io.images import capture_time, find_images, load_image, skipped_message
from framescore.samples import photo


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return photo("chelsea")  # 451 x 300, a real photograph


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def png16_rgb(rgb16: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_rgb_round_trip(tmp_path: Path, cat: np.ndarray) -> None:
    Image.fromarray(cat).save(tmp_path / "a.png")
    pic = load_image(tmp_path / "a.png")
    assert pic.image.dtype == np.uint8 and pic.image.shape == cat.shape
    assert np.array_equal(pic.image, cat)
    assert pic.size == (cat.shape[1], cat.shape[0]) and pic.scale == 1.0


@pytest.mark.parametrize("mode,fmt", [("L", "PNG"), ("L", "JPEG"), ("1", "PNG"), ("P", "PNG"),
                                      ("P", "GIF"), ("CMYK", "JPEG"), ("CMYK", "TIFF"),
                                      ("YCbCr", "JPEG"), ("I", "TIFF"), ("F", "TIFF")])
def test_modes_become_rgb(tmp_path: Path, cat: np.ndarray, mode: str, fmt: str) -> None:
    source = Image.fromarray(cat)
    if mode in ("I", "F"):
        grey = luma(cat)
        converted = Image.fromarray((grey * 257).astype(np.int32) if mode == "I"
                                    else (grey / 255).astype(np.float32))
    elif mode == "P":
        converted = source.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    else:
        converted = source.convert(mode)
    path = tmp_path / f"img.{fmt.lower()}"
    converted.save(path, format=fmt)
    with Image.open(path) as check:
        assert check.mode == mode or (mode, fmt) == ("YCbCr", "JPEG")
    pic = load_image(path)
    assert pic.image.dtype == np.uint8 and pic.image.shape == cat.shape
    tolerance = {"1": 60}.get(mode, 8)  # a bilevel image keeps only the broad tones
    if mode in ("L", "1", "I", "F"):
        assert np.array_equal(pic.image[..., 0], pic.image[..., 2])  # grey stays grey
        assert abs(luma(pic.image).mean() - luma(cat).mean()) < tolerance
    else:
        assert np.abs(pic.image.astype(int) - cat).mean() < tolerance


def test_sixteen_bit_grey_keeps_the_top_byte(tmp_path: Path, cat: np.ndarray) -> None:
    grey16 = (luma(cat) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as check:
        assert check.mode == "I;16"
    pic = load_image(tmp_path / "g16.png")
    assert np.abs(pic.image[..., 1].astype(int) - (grey16 >> 8)).max() == 0


def test_sixteen_bit_rgb_png(tmp_path: Path, cat: np.ndarray) -> None:
    (tmp_path / "c16.png").write_bytes(png16_rgb(cat.astype(np.uint16) * 257))
    pic = load_image(tmp_path / "c16.png")
    assert np.abs(pic.image.astype(int) - cat).max() <= 1


@pytest.mark.parametrize("mode,fmt", [("RGBA", "PNG"), ("LA", "PNG"), ("RGBA", "TIFF"),
                                      ("RGBA", "WEBP")])
def test_transparency_goes_over_white(tmp_path: Path, cat: np.ndarray, mode: str,
                                      fmt: str) -> None:
    rgba = np.dstack([cat, np.full(cat.shape[:2], 255, np.uint8)])
    rgba[:100, :, 3] = 0  # top band fully transparent
    path = tmp_path / f"a.{fmt.lower()}"
    Image.fromarray(rgba).convert(mode).save(path, format=fmt, lossless=True)
    with Image.open(path) as check:
        assert check.mode == mode
    pic = load_image(path)
    assert pic.image.shape == cat.shape
    assert (pic.image[:100] == 255).all()               # transparent → white
    assert pic.image[100:].mean() < 200                  # the opaque photo is still there


def test_palette_with_transparent_index(tmp_path: Path, cat: np.ndarray) -> None:
    pal = Image.fromarray(cat).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    arr = np.asarray(pal).copy()
    arr[:50] = 63
    pal = Image.fromarray(arr, mode="P")
    pal.putpalette(Image.fromarray(cat).convert("P", palette=Image.Palette.ADAPTIVE,
                                                colors=64).getpalette())
    pal.save(tmp_path / "t.png", transparency=63)
    pic = load_image(tmp_path / "t.png")
    assert (pic.image[:50] == 255).all()


# what each EXIF orientation asks a viewer to do, undone here to make the stored pixels
_STORE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path: Path, cat: np.ndarray, orientation: int) -> None:
    shown = Image.fromarray(cat)
    op = _STORE[orientation]
    stored = shown.transpose(op) if op is not None else shown
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    stored.save(path, quality=95, exif=exif)
    pic = load_image(path)
    assert pic.image.shape == cat.shape
    assert pic.size == (cat.shape[1], cat.shape[0])
    assert np.abs(pic.image.astype(int) - cat).mean() < 4


def test_jpeg_draft_decodes_small_but_not_too_small(tmp_path: Path, cat: np.ndarray) -> None:
    big = Image.fromarray(cat).resize((2400, 1600), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display size is 1600 x 2400
    big.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "big.jpg", quality=90, exif=exif)
    pic = load_image(tmp_path / "big.jpg", min_side=256)
    assert pic.size == (2400, 1600)
    h, w = pic.image.shape[:2]
    assert min(h, w) >= 256 and min(h, w) < 512        # a DCT-scaled decode, not full size
    assert abs(w / h - 1.5) < 0.01 and pic.scale == pytest.approx(2400 / w)
    full = load_image(tmp_path / "big.jpg")
    assert full.image.shape == (1600, 2400, 3)


def test_png_is_reduced_too(tmp_path: Path, cat: np.ndarray) -> None:
    Image.fromarray(cat).resize((1800, 1200)).save(tmp_path / "big.png")
    pic = load_image(tmp_path / "big.png", min_side=300)
    assert pic.size == (1800, 1200)
    assert 300 <= min(pic.image.shape[:2]) < 600


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\xff\xd8\xff\xe0garbage"])
def test_unreadable_files_raise_media_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(MediaError, match="bad.jpg"):
        load_image(path)


def test_truncated_jpeg_is_unreadable(tmp_path: Path, cat: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(cat).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(MediaError, match="truncated"):
        load_image(tmp_path / "cut.jpg")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(MediaError, match="folder"):
        load_image(tmp_path)


def test_capture_time_from_exif(tmp_path: Path, cat: np.ndarray) -> None:
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2021:06:01 12:00:05"
    sub[0x9291] = "25"
    Image.fromarray(cat).save(tmp_path / "t.jpg", exif=exif)
    pic = load_image(tmp_path / "t.jpg")
    assert pic.taken == pytest.approx(1622548805.25)
    Image.fromarray(cat).save(tmp_path / "none.jpg")
    assert load_image(tmp_path / "none.jpg").taken is None
    with Image.open(tmp_path / "t.jpg") as im:
        assert capture_time(im) == pytest.approx(1622548805.25)


def test_find_images(tmp_path: Path, cat: np.ndarray) -> None:
    for name in ("b.jpg", "a.PNG", "sub/c.jpg", ".hidden.jpg", ".cache/d.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(cat).save(tmp_path / name, format="PNG")
    (tmp_path / "notes.txt").write_text("x")
    flat = find_images([tmp_path])
    assert [p.name for p in flat.files] == ["a.PNG", "b.jpg"]
    assert [(p.name, why) for p, why in flat.skipped] == [("notes.txt", "not an image file")]
    deep = find_images([tmp_path], recursive=True, exclude=[tmp_path / "sub"])
    assert [p.name for p in deep.files] == ["a.PNG", "b.jpg"]
    deep = find_images([tmp_path], recursive=True)
    assert [p.name for p in deep.files] == ["a.PNG", "b.jpg", "c.jpg"]
    # globs (quoted, so the shell did not expand them), files as given, duplicates once
    both = find_images([str(tmp_path / "*.jpg"), tmp_path / "b.jpg", tmp_path / "notes.txt"])
    assert [p.name for p in both.files] == ["b.jpg", "notes.txt"]
    with pytest.raises(MediaError, match="no such file or folder"):
        find_images([tmp_path / "missing"])
    with pytest.raises(MediaError, match="no file matches"):
        find_images([str(tmp_path / "*.webp")])


def test_skipped_message_is_one_line() -> None:
    skipped = [(Path(f"/x/f{i}.txt"), "not an image file") for i in range(8)]
    text = skipped_message(skipped)
    assert "\n" not in text and text.startswith("skipped 8 files: f0.txt (not an image file)")
    assert text.endswith("and 3 more")
    assert skipped_message(skipped[:1]) == "skipped 1 file: f0.txt (not an image file)"


def test_unreadable_permissions(tmp_path: Path, cat: np.ndarray) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    Image.fromarray(cat).save(tmp_path / "locked.png")
    os.chmod(tmp_path / "locked.png", 0)
    with pytest.raises(MediaError, match="locked.png"):
        load_image(tmp_path / "locked.png")


def test_exclude_works_with_relative_paths(tmp_path: Path, cat: np.ndarray,
                                           monkeypatch) -> None:
    for name in ("photos/a.jpg", "photos/out/thumbs/t.jpg", "photos/deep/b.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(cat).save(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    listing = find_images(["photos"], recursive=True, exclude=[Path("photos/out")])
    assert [p.as_posix() for p in listing.files] == ["photos/a.jpg", "photos/deep/b.jpg"]
