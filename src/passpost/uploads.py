"""Multipart parsing: 415 for other content types, 400 when malformed — before anything is
stored. The body's size is capped before it gets here (``passpost.web.body_limit``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from passpost.errors import BadRequest, UnsupportedMediaType


@dataclass(frozen=True)
class Part:
    """One form part: its bytes, and whether it came as a file."""

    data: bytes
    is_file: bool
    content_type: str | None
    filename: str | None = None


async def read_multipart(request: Request, *, limit: int) -> dict[str, Part]:
    """Parse a multipart/form-data body into its parts (first wins); no part above ``limit``."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            "The request must be multipart/form-data.", error_code="UNSUPPORTED_MEDIA_TYPE"
        )
    parser = MultiPartParser(
        request.headers, request.stream(), max_files=16, max_fields=64, max_part_size=limit
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(
            f"Malformed multipart body: {exc.message}", error_code="MALFORMED_MULTIPART"
        ) from exc
    parts: dict[str, Part] = {}
    try:
        for name, value in form.multi_items():
            if name in parts:
                continue
            if isinstance(value, UploadFile):
                parts[name] = Part(await value.read(), True, value.content_type, value.filename)
            else:
                parts[name] = Part(value.encode(), False, None)
    finally:
        await form.close()
    return parts
