"""HTTP Range headers: one byte range per request, as S3 serves them."""

from __future__ import annotations


class RangeNotSatisfiable(Exception):
    """The range starts past the end of the object (answer 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the (first, last) byte of a single range, or None for the whole.

    Headers that are malformed or name several ranges are ignored, as HTTP allows.
    """
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.strip()[len("bytes=") :].strip()
    if "," in spec or "-" not in spec:
        return None
    first_text, _, last_text = spec.partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not (first_text.isdigit() or first_text == "") or not (
        last_text.isdigit() or last_text == ""
    ):
        return None

    if first_text == "":
        return _suffix_range(last_text, size)

    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def _suffix_range(last_text: str, size: int) -> tuple[int, int] | None:
    """The last N bytes ("bytes=-N")."""
    if last_text == "":
        return None
    suffix = int(last_text)
    if suffix == 0 or size == 0:
        raise RangeNotSatisfiable
    return max(0, size - suffix), size - 1
