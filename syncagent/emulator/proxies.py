"""Proxy generation for the emulator: JPEG thumbnails (Pillow), renditions (ffmpeg).

Images (anything Pillow opens) get ``large_thumbnail``, ``medium_thumbnail`` and
``small_thumbnail``: JPEGs fitting 1000, 560 and 250 pixel squares, aspect kept, never
upscaled, EXIF orientation applied, transparency flattened onto white. Video gets
``video_sd`` and ``video_mobile`` (h264 mp4 fitting 640x360 and 480x270) and large and
small thumbnails from a frame two minutes in, or 30% in when shorter; audio gets
``standard_audio`` (192 kbps mp3). Video and audio need ffmpeg: the one on PATH, else
the binary of the optional ``imageio-ffmpeg`` package; without one they get no proxies.

Outputs are written under hidden temporary names in the output folder and renamed into
place only once the whole set for a source is done, so a reader never sees a partial
file and a failed source leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

FFMPEG_TIMEOUT_SECONDS = 300.0
THUMBNAIL_BOXES = {
    "large_thumbnail": 1000,
    "medium_thumbnail": 560,
    "small_thumbnail": 250,
}
VIDEO_THUMBNAILS = ("large_thumbnail", "small_thumbnail")
# proxy type: (box width, box height, video bitrate, audio bitrate)
VIDEO_RENDITIONS = {
    "video_sd": (640, 360, "560k", "96k"),
    "video_mobile": (480, 270, "200k", "64k"),
}
AUDIO_BITRATE = "192k"
JPEG_QUALITY = 85

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO_SIZE = re.compile(r"Stream #\d+:\d+.*?: Video: .*?\b(\d{2,5})x(\d{2,5})\b")


@dataclass(frozen=True)
class ProxyFile:
    """One generated proxy: its reference type, where it is, and what it holds."""

    type: str
    path: Path
    size: int
    width: int | None
    height: int | None
    content_type: str


class _ProxyError(Exception):
    """A source that could not be turned into proxies."""


def find_ffmpeg() -> str | None:
    """The ffmpeg to use: the one on PATH, else imageio-ffmpeg's if installed."""
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


def ffmpeg_available() -> bool:
    """Whether video and audio sources can get proxies on this machine."""
    return find_ffmpeg() is not None


PROXY_CLASSES = ("image", "video", "audio")
"""The asset classes that can have proxies at all."""


def makes_proxies(asset_class: str) -> bool:
    """Whether generate_proxies can make anything for this asset class here."""
    if asset_class == "image":
        return True
    return asset_class in PROXY_CLASSES and find_ffmpeg() is not None


def generate_proxies(
    source: Path,
    asset_class: str,
    out_dir: Path,
    *,
    ffmpeg_timeout: float = FFMPEG_TIMEOUT_SECONDS,
) -> list[ProxyFile]:
    """Write the default proxies of ``source`` into ``out_dir`` and describe them.

    Answers [] for an asset class without proxies, for video and audio when ffmpeg is
    missing, and for a source that cannot be decoded or converted (logged as one
    WARNING); it never raises. Repeating it overwrites the same files.
    """
    ffmpeg = find_ffmpeg() if asset_class in ("video", "audio") else None
    if asset_class != "image" and ffmpeg is None:
        logger.debug("%s: no proxies for asset class %s here", source, asset_class)
        return []

    staging = _Staging(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if asset_class == "image":
            _stage_image(source, staging)
        elif asset_class == "video" and ffmpeg:
            _stage_video(ffmpeg, source, staging, ffmpeg_timeout)
        elif ffmpeg:
            _stage_audio(ffmpeg, source, staging, ffmpeg_timeout)
        return staging.commit()
    except Exception as exc:  # Pillow's decoders raise many unrelated types
        staging.discard()
        logger.warning("%s: no proxies: %s", source, exc or type(exc).__name__)
        return []


class _Staging:
    """Outputs written under hidden temporary names, renamed into place together."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.temps: list[Path] = []
        self.kept: list[tuple[Path, ProxyFile]] = []

    def temp(self, name: str, suffix: str) -> Path:
        """A fresh temporary file in the output folder, removed unless kept."""
        fd, path = tempfile.mkstemp(dir=self.out_dir, prefix=f".{name}.", suffix=suffix)
        os.close(fd)
        self.temps.append(Path(path))
        return Path(path)

    def keep(
        self,
        temp: Path,
        proxy_type: str,
        content_type: str,
        size: tuple[int, int] | None,
    ) -> None:
        """Mark a finished temporary file as the proxy ``proxy_type``."""
        final = self.out_dir / f"{proxy_type}{temp.suffix}"
        width, height = size if size else (None, None)
        proxy = ProxyFile(
            proxy_type, final, temp.stat().st_size, width, height, content_type
        )
        self.kept.append((temp, proxy))

    def commit(self) -> list[ProxyFile]:
        """Rename every kept file into place and remove the rest."""
        for temp, proxy in self.kept:
            # mkstemp makes owner-only files; a proxy is as readable as any output.
            temp.chmod(0o644)
            os.replace(temp, proxy.path)
        self.discard()
        return [proxy for _, proxy in self.kept]

    def discard(self) -> None:
        """Remove every temporary file still present."""
        for temp in self.temps:
            temp.unlink(missing_ok=True)


def _stage_image(source: Path, staging: _Staging) -> None:
    """Stage the three thumbnails of an image."""
    with Image.open(source) as opened:
        # A JPEG decodes at a reduced scale that still covers the largest box.
        opened.draft("RGB", (THUMBNAIL_BOXES["large_thumbnail"],) * 2)
        image = _flatten_to_rgb(ImageOps.exif_transpose(opened))
    _stage_thumbnails(image, tuple(THUMBNAIL_BOXES), staging)


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    """The image in RGB, with any transparency laid over white."""
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa")
    if transparent or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _stage_thumbnails(
    image: Image.Image, proxy_types: tuple[str, ...], staging: _Staging
) -> None:
    """Stage JPEG thumbnails, largest first, each shrunk from the one before."""
    for proxy_type in sorted(
        proxy_types, key=THUMBNAIL_BOXES.__getitem__, reverse=True
    ):
        box = THUMBNAIL_BOXES[proxy_type]
        image.thumbnail((box, box), Image.Resampling.LANCZOS)
        temp = staging.temp(proxy_type, ".jpg")
        image.save(temp, "JPEG", quality=JPEG_QUALITY, optimize=True)
        staging.keep(temp, proxy_type, "image/jpeg", image.size)


def _stage_video(ffmpeg: str, source: Path, staging: _Staging, timeout: float) -> None:
    """Stage the video renditions and the thumbnails of a frame."""
    duration, _ = _probe(ffmpeg, source, timeout)
    for proxy_type, (width, height, video_rate, audio_rate) in VIDEO_RENDITIONS.items():
        # Fit the box without upscaling; h264 in yuv420p needs even dimensions.
        box = (
            f"scale=w='min({width},iw)':h='min({height},ih)'"
            ":force_original_aspect_ratio=decrease:force_divisible_by=2"
        )
        args = ["-i", _file_url(source), "-map", "0:v:0", "-map", "0:a:0?", "-vf", box]
        args += ["-c:v", "libx264", "-preset", "veryfast", "-b:v", video_rate]
        args += ["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", audio_rate]
        temp = staging.temp(proxy_type, ".mp4")
        args += ["-movflags", "+faststart", "-f", "mp4", _file_url(temp)]
        _run_ffmpeg(ffmpeg, args, timeout)
        staging.keep(temp, proxy_type, "video/mp4", _probe(ffmpeg, temp, timeout)[1])

    # The reference takes preview frames two minutes in, or 30% in when shorter.
    frame = staging.temp("frame", ".png")
    at = 120.0 if duration > 120 else duration * 0.3
    args = ["-ss", f"{at:.3f}", "-i", _file_url(source), "-map", "0:v:0"]
    args += ["-frames:v", "1", "-f", "image2", "-c:v", "png", _file_url(frame)]
    _run_ffmpeg(ffmpeg, args, timeout)
    with Image.open(frame) as opened:
        image = opened.convert("RGB")
    _stage_thumbnails(image, VIDEO_THUMBNAILS, staging)


def _stage_audio(ffmpeg: str, source: Path, staging: _Staging, timeout: float) -> None:
    """Stage the mp3 rendition of an audio source."""
    temp = staging.temp("standard_audio", ".mp3")
    args = ["-i", _file_url(source), "-map", "0:a:0", "-vn", "-c:a", "libmp3lame"]
    args += ["-b:a", AUDIO_BITRATE, "-f", "mp3", _file_url(temp)]
    _run_ffmpeg(ffmpeg, args, timeout)
    staging.keep(temp, "standard_audio", "audio/mpeg", None)


def _probe(
    ffmpeg: str, path: Path, timeout: float
) -> tuple[float, tuple[int, int] | None]:
    """The duration in seconds and the first video stream's size, read from ffmpeg."""
    # Without an output ffmpeg describes the input and exits 1; that is the probe.
    command = [ffmpeg, "-hide_banner", "-nostdin", "-i", _file_url(path)]
    stderr = _call(command, timeout).stderr.decode(errors="replace")
    duration = _DURATION.search(stderr)
    if duration is None:
        raise _ProxyError(f"ffmpeg cannot read it: {_last_line(stderr)}")
    hours, minutes, seconds = duration.groups()
    size = _VIDEO_SIZE.search(stderr)
    dimensions = (int(size.group(1)), int(size.group(2))) if size else None
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds), dimensions


def _run_ffmpeg(ffmpeg: str, args: list[str], timeout: float) -> None:
    """Run one ffmpeg conversion; raise _ProxyError when it fails."""
    command = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    done = _call(command, timeout)
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")
        raise _ProxyError(f"ffmpeg failed: {_last_line(stderr)}")


def _call(command: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run a command to its end, killing it and raising _ProxyError past ``timeout``."""
    try:
        return subprocess.run(
            command, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise _ProxyError(f"ffmpeg ran over {timeout:g} s and was stopped") from None


def _file_url(path: Path) -> str:
    """An ffmpeg argument naming a local file, safe from leading dashes and colons."""
    return f"file:{path.absolute()}"


def _last_line(text: str) -> str:
    """The last non-empty line of a tool's output, for an error message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
