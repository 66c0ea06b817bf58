"""The S3-style endpoints behind presigned URLs: part PUTs and object downloads."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from sqlalchemy import Integer, String, and_, bindparam, false, select
from sqlalchemy.dialects.sqlite import insert
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from syncagent.emulator.assembly import Layout
from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.db import Part, StoredObject, Upload
from syncagent.emulator.objects import PartSink
from syncagent.emulator.ranges import RangeNotSatisfiable, parse_range

logger = logging.getLogger(__name__)

MAX_PART_BYTES = 5 * 1024**3
_READ_BYTES = 1 << 20
_SIGNATURE_ERRORS = {
    "expired": ("AccessDenied", "Request has expired"),
    "tampered": (
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided",
    ),
}

_ONE_AUTH_MECHANISM = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
    "Signature query string parameter or the Authorization header should be specified"
)

_PART_TARGET = (
    select(
        Upload.id,
        Upload.state,
        Upload.file_size,
        Upload.part_size,
        Upload.part_count,
        Part.part_number,
    )
    .outerjoin(
        Part,
        and_(Part.upload_id == Upload.id, Part.part_number == bindparam("number")),
    )
    .where(Upload.key == bindparam("key"))
)
_NEW_PART = insert(Part).from_select(
    ["upload_id", "part_number", "size", "md5", "confirmed"],
    select(
        Upload.id,
        bindparam("number", type_=Integer),
        bindparam("new_size", type_=Integer),
        bindparam("new_md5", type_=String),
        false(),
    ).where(
        Upload.id == bindparam("of_upload"),
        Upload.key == bindparam("key"),
        Upload.state == "initiated",
    ),
)
_SAVE_PART = _NEW_PART.on_conflict_do_update(
    index_elements=[Part.upload_id, Part.part_number],
    set_={
        "size": _NEW_PART.excluded.size,
        "md5": _NEW_PART.excluded.md5,
        "confirmed": False,
    },
)
"""Record a part, unless its upload was restarted or abandoned meanwhile."""


def s3_error(status: int, code: str, message: str) -> Response:
    """Return an S3-style XML error."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _check_signature(request: Request) -> Response | None:
    """Refuse a URL not signed for this request's method, or also authorized by a
    header (S3 takes one auth mechanism per request)."""
    if "authorization" in request.headers:
        return s3_error(400, "InvalidArgument", _ONE_AUTH_MECHANISM)

    ctx: EmulatorContext = request.app.state.ctx
    problem = ctx.signer.check(request.method, request.url.path, request.query_params)
    if problem is None:
        return None
    code, message = _SIGNATURE_ERRORS[problem]
    return s3_error(403, code, message)


async def put_part(request: Request) -> Response:
    """Receive one part, streamed to disk; answer its MD5 as the ETag."""
    ctx: EmulatorContext = request.app.state.ctx
    ctx.stats.count_request("PUT /s3/parts/{key}/{part_number}")
    refused = (
        _check_signature(request)
        or _check_length(request)
        or _check_content_md5(request)
    )
    if refused is not None:
        return refused

    key = request.path_params["key"]
    number = int(request.path_params["part_number"])
    target = _open_upload(ctx, key, number)
    if target is None:
        return _no_such_upload()
    length = int(request.headers["content-length"])
    offset = ctx.assembler.claim(key, number, length, target.layout, target.recorded)
    try:
        return await _receive(request, ctx, target, (key, number), offset)
    finally:
        ctx.assembler.release(key, number)


async def _receive(
    request: Request,
    ctx: EmulatorContext,
    target: _Target,
    part: tuple[str, int],
    offset: int | None,
) -> Response:
    """Stream the body into place (or apart), then record the part."""
    key, number = part
    sink = ctx.objects.part_sink(key, number)
    sink.open(offset)
    try:
        await sink.receive(_counted(ctx, request))
    except ClientDisconnect:
        logger.debug("part %s of upload %s: client went away mid-body", number, key)
        return Response(status_code=400)

    expected_md5 = request.headers.get("content-md5")
    if expected_md5 is not None and _md5_of(expected_md5) != sink.md5_hex:
        sink.drop()
        return s3_error(
            400,
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
        )
    if not _record_part(ctx, target, part, sink):
        sink.drop()
        return _no_such_upload()
    sink.keep()
    ctx.stats.add("part_uploads")
    in_place = offset is not None
    ctx.assembler.part_recorded(key, number, target.layout, in_place=in_place)
    return Response(status_code=200, headers={"ETag": f'"{sink.md5_hex}"'})


def _check_length(request: Request) -> Response | None:
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        return s3_error(
            411,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
        )
    if int(declared) > MAX_PART_BYTES:
        return s3_error(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
        )
    return None


def _check_content_md5(request: Request) -> Response | None:
    """Refuse a Content-MD5 header that is not the base64 of 16 bytes."""
    given = request.headers.get("content-md5")
    if given is None or _md5_of(given) is not None:
        return None
    return s3_error(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")


def _md5_of(content_md5: str) -> str | None:
    """The MD5 hex a Content-MD5 header states; None when it is malformed."""
    try:
        digest = base64.b64decode(content_md5.strip(), validate=True)
    except binascii.Error:
        return None
    return digest.hex() if len(digest) == 16 else None


async def _counted(ctx: EmulatorContext, request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        ctx.stats.add("part_bytes_received", len(chunk))
        yield chunk


def _no_such_upload() -> Response:
    return s3_error(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. It may have been completed or restarted.",
    )


@dataclass(frozen=True)
class _Target:
    """The upload a part URL names, as it stood when the PUT began."""

    upload_id: int
    layout: Layout
    recorded: bool
    """Whether that part number was recorded already."""


def _open_upload(ctx: EmulatorContext, key: str, number: int) -> _Target | None:
    """Return the upload a part URL names; None unless it takes that part now."""
    with ctx.engine.connect() as db:
        params = {"key": key, "number": number}
        upload = db.execute(_PART_TARGET, params).first()
    if upload is None or upload.state != "initiated" or upload.id in ctx.completions:
        return None
    if upload.part_count is None or not 1 <= number <= upload.part_count:
        return None
    layout = Layout(upload.file_size, upload.part_size, upload.part_count)
    return _Target(upload.id, layout, upload.part_number is not None)


def _record_part(
    ctx: EmulatorContext, target: _Target, part: tuple[str, int], sink: PartSink
) -> bool:
    """Record what `sink` received; False when the upload no longer takes it."""
    if target.upload_id in ctx.completions:
        return False
    key, number = part
    params = {"of_upload": target.upload_id, "key": key, "number": number}
    params |= {"new_size": sink.size, "new_md5": sink.md5_hex}
    with ctx.engine.begin() as db:
        saved = db.execute(_SAVE_PART, params).rowcount
    return bool(saved)


async def get_object(request: Request) -> Response:
    """Serve a stored object (GET or HEAD), honouring a single Range.

    As in S3 the method is part of the signature: a URL signed for GET does not
    serve HEAD (the API hands out GET URLs only).
    """
    ctx: EmulatorContext = request.app.state.ctx
    ctx.stats.count_request(f"{request.method} /s3/objects/{{key}}")
    denied = _check_signature(request)
    if denied is not None:
        return denied

    with ctx.sessions() as session:
        stored = session.get(StoredObject, request.path_params["key"])
    path = ctx.objects.path_of(stored.key) if stored is not None else None
    if stored is None or path is None or not path.is_file():
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")

    headers = _object_headers(stored)
    try:
        byte_range = parse_range(request.headers.get("range"), stored.size)
    except RangeNotSatisfiable:
        error = s3_error(416, "InvalidRange", "The requested range is not satisfiable")
        error.headers["Content-Range"] = f"bytes */{stored.size}"
        return error

    first, last = byte_range if byte_range else (0, stored.size - 1)
    headers["Content-Length"] = str(last - first + 1)
    if byte_range is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{stored.size}"
    status = 200 if byte_range is None else 206
    if request.method == "HEAD":
        return Response(
            status_code=status, headers=headers, media_type=stored.content_type
        )

    ctx.stats.add("downloads")
    return StreamingResponse(
        _file_chunks(ctx, path, first, last - first + 1),
        status_code=status,
        headers=headers,
        media_type=stored.content_type,
    )


def _object_headers(stored: StoredObject) -> dict[str, str]:
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"attachment; filename*=utf-8''{quote(stored.filename)}",
    }
    if stored.md5:
        headers["ETag"] = f'"{stored.md5}"'
    return headers


async def _file_chunks(
    ctx: EmulatorContext, path: Path, offset: int, length: int
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    source = await loop.run_in_executor(ctx.objects.pool, path.open, "rb")
    try:
        await loop.run_in_executor(ctx.objects.pool, source.seek, offset)
        remaining = length
        while remaining > 0:
            chunk = await loop.run_in_executor(
                ctx.objects.pool, source.read, min(_READ_BYTES, remaining)
            )
            if not chunk:
                break
            remaining -= len(chunk)
            ctx.stats.add("download_bytes_sent", len(chunk))
            yield chunk
    finally:
        source.close()


def routes() -> list[Route]:
    """The S3-style routes."""
    return [
        Route("/s3/parts/{key}/{part_number:int}", put_part, methods=["PUT"]),
        Route("/s3/objects/{key:path}", get_object, methods=["GET", "HEAD"]),
    ]
