"""Proxy generation: real thumbnails from generated images, renditions with ffmpeg."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from syncagent.emulator import proxies
from syncagent.emulator.proxies import (
    ProxyFile,
    ffmpeg_available,
    find_ffmpeg,
    generate_proxies,
)

THUMBNAILS = ["large_thumbnail", "medium_thumbnail", "small_thumbnail"]
RED, BLUE = (220, 20, 20), (20, 20, 220)


def two_tone(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """An image whose left half is red and right half blue."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image.convert(mode)


def by_type(found: list[ProxyFile]) -> dict[str, ProxyFile]:
    return {proxy.type: proxy for proxy in found}


def assert_jpeg(proxy: ProxyFile, size: tuple[int, int]) -> None:
    """The proxy is a baseline RGB JPEG of ``size`` that its record describes."""
    data = proxy.path.read_bytes()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    with Image.open(proxy.path) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", size)
    assert (proxy.width, proxy.height) == size
    assert proxy.size == len(data)
    assert proxy.content_type == "image/jpeg"
    assert proxy.path.stat().st_mode & 0o777 == 0o644
    assert proxy.path.name == f"{proxy.type}.jpg"


def ffmpeg_make(args: list[str], target: Path) -> Path:
    """Make a test media file with ffmpeg's built-in sources."""
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args, str(target)]
    subprocess.run(command, check=True, timeout=120)
    return target


def make_video(path: Path, size: str = "1280x720") -> Path:
    source = f"testsrc=duration=2:size={size}:rate=10"
    args = ["-f", "lavfi", "-i", source, "-f", "lavfi", "-i", "sine=duration=2"]
    args += ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-c:a", "aac", "-shortest"]
    return ffmpeg_make(args, path)


def warnings_about(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and str(path) in r.getMessage()
    ]


# Images


def test_png_gets_three_bounded_jpeg_thumbnails(tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    two_tone(1600, 1200).save(source)
    out_dir = tmp_path / "proxies" / "42"

    found = by_type(generate_proxies(source, "image", out_dir))

    assert sorted(found) == sorted(THUMBNAILS)
    assert_jpeg(found["large_thumbnail"], (1000, 750))
    assert_jpeg(found["medium_thumbnail"], (560, 420))
    assert_jpeg(found["small_thumbnail"], (250, 188))
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"{t}.jpg" for t in THUMBNAILS
    )


def test_portrait_jpeg_is_bounded_by_its_height(tmp_path: Path) -> None:
    source = tmp_path / "tall.jpg"
    two_tone(900, 2000).save(source, quality=90)

    found = by_type(generate_proxies(source, "image", tmp_path / "out"))

    assert_jpeg(found["large_thumbnail"], (450, 1000))
    assert_jpeg(found["medium_thumbnail"], (252, 560))
    assert_jpeg(found["small_thumbnail"], (112, 250))


def test_small_image_is_never_upscaled(tmp_path: Path) -> None:
    source = tmp_path / "icon.jpg"
    two_tone(300, 200).save(source)

    found = by_type(generate_proxies(source, "image", tmp_path / "out"))

    assert_jpeg(found["large_thumbnail"], (300, 200))
    assert_jpeg(found["medium_thumbnail"], (300, 200))
    assert_jpeg(found["small_thumbnail"], (250, 167))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    source = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned 90 degrees clockwise
    two_tone(400, 200).save(source, exif=exif, quality=95)

    found = by_type(generate_proxies(source, "image", tmp_path / "out"))

    large = found["large_thumbnail"]
    assert_jpeg(large, (200, 400))
    with Image.open(large.path) as image:
        top, bottom = image.getpixel((100, 50)), image.getpixel((100, 350))
        assert image.getexif().get(0x0112) is None
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 > top[2]  # the stored left half, red, is now on top
    assert bottom[2] > 150 > bottom[0]


def test_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    source = tmp_path / "clear.png"
    Image.new("RGBA", (500, 500), (0, 0, 0, 0)).save(source)

    found = by_type(generate_proxies(source, "image", tmp_path / "out"))

    with Image.open(found["small_thumbnail"].path) as image:
        assert image.getpixel((125, 125)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("anim.gif", "P"),
        ("photo.webp", "RGB"),
        ("scan.tiff", "CMYK"),
        ("depth.tif", "I;16"),
        ("old.bmp", "L"),
    ],
)
def test_other_pillow_formats_get_thumbnails(
    tmp_path: Path, name: str, mode: str
) -> None:
    source = tmp_path / name
    two_tone(1200, 600, mode).save(source)

    found = by_type(generate_proxies(source, "image", tmp_path / "out"))

    assert_jpeg(found["large_thumbnail"], (1000, 500))
    assert_jpeg(found["small_thumbnail"], (250, 125))


def test_repeating_overwrites_the_same_files(tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    two_tone(800, 800).save(source)
    out_dir = tmp_path / "out"

    first = generate_proxies(source, "image", out_dir)
    second = generate_proxies(source, "image", out_dir)

    assert [p.path for p in first] == [p.path for p in second]
    assert len(list(out_dir.iterdir())) == 3


@pytest.mark.parametrize(
    "content",
    [
        b"not an image at all",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64,
    ],
)
def test_undecodable_image_gives_nothing_and_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    source = tmp_path / "broken.jpg"
    source.write_bytes(content)
    out_dir = tmp_path / "out"

    with caplog.at_level(logging.WARNING):
        found = generate_proxies(source, "image", out_dir)

    assert found == []
    assert len(warnings_about(caplog, source)) == 1
    assert list(out_dir.iterdir()) == []


def test_truncated_image_gives_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "cut.jpg"
    two_tone(1200, 900).save(source, quality=95)
    source.write_bytes(source.read_bytes()[:4000])

    with caplog.at_level(logging.WARNING):
        found = generate_proxies(source, "image", tmp_path / "out")

    assert found == []
    assert len(warnings_about(caplog, source)) == 1


@pytest.mark.parametrize("asset_class", ["document", "pdf", "archive", "binary"])
def test_other_asset_classes_get_no_proxies(tmp_path: Path, asset_class: str) -> None:
    source = tmp_path / "file.bin"
    source.write_bytes(b"%PDF-1.4 whatever")

    assert generate_proxies(source, asset_class, tmp_path / "out") == []


# Video and audio


def test_video_gets_renditions_and_frame_thumbnails(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    if not ffmpeg_available():
        source.write_bytes(b"\x00" * 4096)
        assert generate_proxies(source, "video", tmp_path / "out") == []
        return
    make_video(source)

    found = by_type(generate_proxies(source, "video", tmp_path / "out"))

    assert sorted(found) == [
        "large_thumbnail",
        "small_thumbnail",
        "video_mobile",
        "video_sd",
    ]
    for proxy_type, size in [("video_sd", (640, 360)), ("video_mobile", (480, 270))]:
        proxy = found[proxy_type]
        assert (proxy.width, proxy.height) == size
        assert proxy.content_type == "video/mp4"
        assert proxy.path.read_bytes()[4:8] == b"ftyp"
        assert proxy.size == proxy.path.stat().st_size
    assert_jpeg(found["large_thumbnail"], (1000, 563))
    assert_jpeg(found["small_thumbnail"], (250, 141))


def test_small_video_is_not_upscaled(tmp_path: Path) -> None:
    source = tmp_path / "tiny.mp4"
    if not ffmpeg_available():
        source.write_bytes(b"\x00" * 4096)
        assert generate_proxies(source, "video", tmp_path / "out") == []
        return
    make_video(source, size="320x240")

    found = by_type(generate_proxies(source, "video", tmp_path / "out"))

    assert (found["video_sd"].width, found["video_sd"].height) == (320, 240)
    assert (found["video_mobile"].width, found["video_mobile"].height) == (320, 240)


def test_audio_gets_a_standard_mp3(tmp_path: Path) -> None:
    source = tmp_path / "tone.wav"
    if not ffmpeg_available():
        source.write_bytes(b"RIFF" + b"\x00" * 64)
        assert generate_proxies(source, "audio", tmp_path / "out") == []
        return
    ffmpeg_make(["-f", "lavfi", "-i", "sine=frequency=440:duration=2"], source)

    (proxy,) = generate_proxies(source, "audio", tmp_path / "out")

    data = proxy.path.read_bytes()
    assert proxy.type == "standard_audio" and proxy.path.name == "standard_audio.mp3"
    assert proxy.content_type == "audio/mpeg"
    assert (proxy.width, proxy.height) == (None, None)
    assert data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3")
    assert proxy.size == len(data)


@pytest.mark.parametrize("asset_class", ["video", "audio"])
def test_undecodable_media_gives_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, asset_class: str
) -> None:
    source = tmp_path / "noise.mov"
    source.write_bytes(bytes(range(256)) * 64)
    out_dir = tmp_path / "out"

    with caplog.at_level(logging.WARNING):
        found = generate_proxies(source, asset_class, out_dir)

    assert found == []
    assert len(warnings_about(caplog, source)) == (1 if ffmpeg_available() else 0)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_ffmpeg_past_its_timeout_gives_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "clip.mp4"
    if not ffmpeg_available():
        source.write_bytes(b"\x00" * 4096)
        assert generate_proxies(source, "video", tmp_path / "out") == []
        return
    make_video(source)

    with caplog.at_level(logging.WARNING):
        found = generate_proxies(source, "video", tmp_path / "out", ffmpeg_timeout=0)

    assert found == []
    (warning,) = warnings_about(caplog, source)
    assert "ran over" in warning


@pytest.mark.parametrize("asset_class", ["video", "audio"])
def test_without_ffmpeg_media_gets_no_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asset_class: str
) -> None:
    monkeypatch.setattr(proxies, "find_ffmpeg", lambda: None)
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00" * 4096)

    assert not proxies.ffmpeg_available()
    assert generate_proxies(source, asset_class, tmp_path / "out") == []
    assert not (tmp_path / "out").exists()
