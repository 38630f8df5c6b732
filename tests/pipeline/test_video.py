"""Decoding with PyAV: codecs, sizes, rotation, timestamps, sampling, damaged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framescore.errors import MediaError
from framescore.io.video import DecodeStats, Sampling, grab_frames, iter_frames, probe
from tests.media import gradient_frames, write_audio_only, write_clip_with_bad_packets


@pytest.mark.parametrize(("codec", "pix_fmt", "name"), [
    ("libx264", "yuv420p", "a.mp4"),
    ("mpeg4", "yuv420p", "b.avi"),
    ("libvpx-vp9", "yuv420p", "c.webm"),
    ("mjpeg", "yuvj420p", "d.mkv"),
])
def test_codecs_decode_every_frame(make_clip, codec, pix_fmt, name):
    path = make_clip(name, gradient_frames(12), codec=codec, pix_fmt=pix_fmt)
    info = probe(path)
    frames = list(iter_frames(path))
    assert (info.width, info.height) == (96, 64)
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert all(f.image.shape == (64, 96, 3) and f.image.dtype == np.uint8 for f in frames)
    np.testing.assert_allclose([f.time for f in frames], np.arange(12) / 25, atol=1e-3)


@pytest.mark.parametrize("codec", ["libx264", "mjpeg"])
def test_odd_dimensions(make_clip, codec):
    pix = "yuv444p" if codec == "libx264" else "yuvj444p"
    frames = [np.full((33, 47, 3), 40 * i, np.uint8) for i in range(5)]
    path = make_clip("odd.mkv", frames, codec=codec, pix_fmt=pix)
    assert (probe(path).width, probe(path).height) == (47, 33)
    out = list(iter_frames(path, size=(20, 30)))
    assert out[0].image.shape == (20, 30, 3)


@pytest.mark.parametrize(("rotation", "bright_side"), [
    (90, "bottom"), (180, "right"), (270, "top"), (0, "left")])
def test_rotation_metadata_is_honoured(make_clip, rotation, bright_side):
    # a 96 x 48 frame whose left half is white
    image = np.zeros((48, 96, 3), np.uint8)
    image[:, :48] = 255
    path = make_clip("rot.mp4", [image] * 4, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    frame = next(iter(iter_frames(path))).image
    expected_shape = (96, 48, 3) if rotation in (90, 270) else (48, 96, 3)
    assert frame.shape == expected_shape
    assert (info.height, info.width) == expected_shape[:2]
    y = frame.mean(axis=2)
    halves = {"top": y[: y.shape[0] // 2].mean(), "bottom": y[y.shape[0] // 2:].mean(),
              "left": y[:, : y.shape[1] // 2].mean(), "right": y[:, y.shape[1] // 2:].mean()}
    assert max(halves, key=halves.get) == bright_side
    # resizing happens before rotating: asking for (h, w) gives (h, w) in display orientation
    assert next(iter(iter_frames(path, size=(40, 20)))).image.shape == (40, 20, 3)


def test_variable_frame_rate_times_come_from_pts(make_clip):
    times = [0.0, 0.03, 0.1, 0.5, 0.55, 1.2, 2.0, 2.04]
    path = make_clip("vfr.mkv", gradient_frames(len(times)), times=times)
    got = [f.time for f in iter_frames(path)]
    np.testing.assert_allclose(got, times, atol=1e-3)
    # --fps sampling follows time, not frame count
    kept = [round(f.time, 2) for f in iter_frames(path, Sampling(fps=2))]
    assert kept == [0.0, 0.5, 1.2, 2.0]


def test_every_nth_frame(make_clip):
    path = make_clip(frames=gradient_frames(20))
    stats = DecodeStats()
    kept = list(iter_frames(path, Sampling(every=3), stats=stats))
    assert [f.index for f in kept] == list(range(0, 20, 3))
    assert (stats.decoded, stats.kept) == (20, 7)


def test_sampling_rejects_nonsense():
    with pytest.raises(ValueError):
        Sampling(every=0)
    with pytest.raises(ValueError):
        Sampling(fps=-1)


def test_corrupt_packets_are_skipped_and_counted(tmp_path):
    path = write_clip_with_bad_packets(tmp_path / "bad.mkv", 30, bad={8, 9, 20})
    stats = DecodeStats()
    frames = list(iter_frames(path, stats=stats))
    assert stats.skipped_packets == 3
    assert len(frames) == 27
    assert [f.index for f in frames] == list(range(27))
    # the good frames keep their own timestamps around the gap
    assert {round(f.time * 25) for f in frames} == set(range(30)) - {8, 9, 20}


def test_grab_frames_returns_full_resolution_frames_by_time(make_clip):
    frames = gradient_frames(40)
    path = make_clip("g.mkv", frames, codec="libx264", pix_fmt="yuv444p", crf=0, gop=10)
    got = grab_frames(path, {3: 3 / 25, 27: 27 / 25, 39: 39 / 25})
    assert set(got) == {3, 27, 39}
    for i, image in got.items():
        assert image.shape == (64, 96, 3)
        assert np.abs(image.astype(int) - frames[i].astype(int)).mean() < 3


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "nope.mp4")


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(MediaError, match="is a folder"):
        probe(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 50, bytes(range(256)) * 40])
def test_not_a_video(tmp_path, content):
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match="not a readable video"):
        list(iter_frames(path))


def test_truncated_mp4_is_a_clear_error(make_clip):
    path = make_clip(frames=gradient_frames(30))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: it is gone
    with pytest.raises(MediaError, match="not a readable video"):
        list(iter_frames(path))


def test_truncated_matroska_decodes_what_is_there(make_clip):
    path = make_clip("t.mkv", gradient_frames(40))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    frames = list(iter_frames(path))
    assert 5 < len(frames) < 40


def test_audio_only_file(tmp_path):
    path = write_audio_only(tmp_path / "sound.m4a", frames=8)
    with pytest.raises(MediaError, match="no video stream .audio only"):
        probe(path)


def test_stream_with_no_decodable_frame(tmp_path):
    path = write_clip_with_bad_packets(tmp_path / "allbad.mkv", 6, bad=set(range(6)))
    with pytest.raises(MediaError, match="no decodable video frame"):
        list(iter_frames(path))


@pytest.mark.parametrize(("codec", "pix_fmt"), [("libx264", "yuv420p"), ("mjpeg", "yuvj420p"),
                                                ("libx264", "yuv444p")])
def test_resized_frames_match_the_full_frames_resized(make_clip, codec, pix_fmt):
    """The resize (scaled in the stream's own format, then turned to RGB) keeps the colours
    and the picture of the full-resolution frame, whatever the range and chroma layout."""
    from PIL import Image

    from framescore.samples import photo

    src = np.asarray(Image.fromarray(photo("astronaut")).resize((320, 240)))
    frames = [np.roll(src, 4 * i, axis=1) for i in range(6)]
    path = make_clip("photo.mkv", frames, codec=codec, pix_fmt=pix_fmt)
    full = [f.image for f in iter_frames(path)]
    small = [f.image for f in iter_frames(path, size=(60, 80))]
    assert len(small) == len(full) == 6
    for a, b in zip(full, small, strict=True):
        ref = np.asarray(Image.fromarray(a).resize((80, 60), Image.Resampling.BOX))
        diff = np.abs(ref.astype(int) - b.astype(int))
        assert diff.mean() < 4.0, diff.mean()
        assert abs(ref.mean() - b.mean()) < 1.5  # no shift of range or colour


def test_hardware_decoding_falls_back_to_software_and_says_so_once(make_clip, capsys,
                                                                   monkeypatch):
    """``hwaccel="cuda"`` without a usable NVIDIA driver (this machine) decodes in software,
    with the same frames, after one warning per process (not one per file)."""
    from framescore.io import video

    if Path("/dev/nvidiactl").exists():
        pytest.skip("an NVIDIA driver is here: test_nvdec_decodes_the_frames_software_decodes")
    monkeypatch.setattr(video, "_HWACCEL_WARNED", set())
    path = make_clip("clip.mp4")
    soft = [f.image for f in iter_frames(path, size=(24, 32))]
    stats = DecodeStats()
    hard = [f.image for f in iter_frames(path, size=(24, 32), stats=stats, hwaccel="cuda")]
    again = [f.image for f in iter_frames(path, size=(24, 32), hwaccel="cuda")]
    assert stats.hwaccel is None
    assert len(hard) == len(soft) == len(again) == 30
    assert all(np.array_equal(a, b) for a, b in zip(soft, hard, strict=True))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("framescore: warning: cuda hardware decoding")
    assert err[0].endswith("decoding in software")


@pytest.mark.cuda
def test_nvdec_decodes_the_frames_software_decodes(make_clip):
    path = make_clip("clip.mp4")
    soft = [f.image for f in iter_frames(path, size=(24, 32))]
    stats = DecodeStats()
    hard = [f.image for f in iter_frames(path, size=(24, 32), stats=stats, hwaccel="cuda")]
    assert stats.hwaccel == "cuda"
    assert len(hard) == len(soft)
    for a, b in zip(soft, hard, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0
