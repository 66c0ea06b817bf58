"""The S3-style endpoints behind presigned URLs: part PUTs and object downloads."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from sqlalchemy import select
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from syncagent.emulator.context import EmulatorContext
from syncagent.emulator.db import Part, StoredObject, Upload
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


def s3_error(status: int, code: str, message: str) -> Response:
    """Return an S3-style XML error."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _check_signature(request: Request, method: str) -> Response | None:
    ctx: EmulatorContext = request.app.state.ctx
    problem = ctx.signer.check(method, request.url.path, request.query_params)
    if problem is None:
        return None
    code, message = _SIGNATURE_ERRORS[problem]
    return s3_error(403, code, message)


async def put_part(request: Request) -> Response:
    """Receive one part, streamed to disk; answer its MD5 as the ETag."""
    ctx: EmulatorContext = request.app.state.ctx
    ctx.stats.count_request("PUT /s3/parts/{key}/{part_number}")
    refused = _check_signature(request, "PUT") or _check_length(request)
    if refused is not None:
        return refused

    key = request.path_params["key"]
    number = int(request.path_params["part_number"])
    part_count = _open_upload(ctx, key, number)
    if part_count is None:
        return _no_such_upload()
    try:
        size, md5_hex = await ctx.objects.receive_part(
            key, number, _counted(ctx, request)
        )
    except ClientDisconnect:
        logger.debug("part %s of upload %s: client went away mid-body", number, key)
        return Response(status_code=400)

    if not _record_part(ctx, key, number, size, md5_hex):
        ctx.objects.part_path(key, number).unlink(missing_ok=True)
        return _no_such_upload()
    ctx.stats.add("part_uploads")
    ctx.assembler.part_arrived(key, part_count)
    return Response(status_code=200, headers={"ETag": f'"{md5_hex}"'})


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


def _open_upload(ctx: EmulatorContext, key: str, number: int) -> int | None:
    """Return the part count of the upload a part URL names, if it takes parts."""
    with ctx.sessions() as session:
        upload = session.scalars(select(Upload).where(Upload.key == key)).first()
    if upload is None or upload.state != "initiated" or upload.id in ctx.completions:
        return None
    if upload.part_count is None or not 1 <= number <= upload.part_count:
        return None
    return upload.part_count


def _record_part(
    ctx: EmulatorContext, key: str, number: int, size: int, md5_hex: str
) -> bool:
    with ctx.sessions.begin() as session:
        upload = session.scalars(select(Upload).where(Upload.key == key)).first()
        if (
            upload is None
            or upload.state != "initiated"
            or upload.id in ctx.completions
        ):
            return False
        part = session.get(Part, (upload.id, number))
        if part is None:
            session.add(
                Part(upload_id=upload.id, part_number=number, size=size, md5=md5_hex)
            )
        else:
            part.size, part.md5, part.confirmed = size, md5_hex, False
    return True


async def get_object(request: Request) -> Response:
    """Serve a stored object (GET or HEAD), honouring a single Range."""
    ctx: EmulatorContext = request.app.state.ctx
    ctx.stats.count_request(f"{request.method} /s3/objects/{{key}}")
    denied = _check_signature(request, "GET")
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
