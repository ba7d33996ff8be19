"""The development provider: ``log:///path/file.jsonl`` appends one JSON line per message.

Nothing is sent and no receipt ever comes, so log deliveries stay ``submitted``.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from passpost.channels.base import ReceiptCallback, SendResult, SmsMessage, TransientError
from passpost.channels.phone import normalize_phone
from passpost.timestamps import iso


def log_path_from_url(url: str) -> Path:
    """The file of a ``log:`` URL (``log:///abs/file.jsonl`` or ``log://rel/file.jsonl``)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "log":
        raise ValueError("log URL must start with log://")
    path = unquote(parts.netloc + parts.path)
    if not path or path.endswith("/"):
        raise ValueError("log URL needs a file path, e.g. log:///var/tmp/sms.jsonl")
    return Path(path)


class LogProvider:
    """``SmsProvider`` that writes each message as a JSON line (for development and tests)."""

    name = "log"

    def __init__(
        self, path: Path, *, on_receipt: ReceiptCallback | None = None, default_region: str = "US"
    ) -> None:
        self.path = path
        self.default_region = default_region
        self.on_receipt = on_receipt  # never called: a log file sends no receipts
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, on_receipt: ReceiptCallback | None = None, default_region: str = "US"
    ) -> LogProvider:
        """Build from a ``log:`` URL."""
        return cls(log_path_from_url(url), on_receipt=on_receipt, default_region=default_region)

    async def send(self, message: SmsMessage) -> SendResult:
        """Append the message to the file; its id is ``log-<key>``."""
        message_id = f"log-{message.key}"
        record = {
            "time": iso(datetime.now(UTC)),
            "id": message_id,
            "key": message.key,
            "to": normalize_phone(message.to, self.default_region),
            "text": message.text,
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        async with self._lock:
            try:
                await asyncio.to_thread(self._append, line)
            except OSError as exc:
                raise TransientError(f"Cannot write SMS log {self.path}: {exc}") from exc
        return SendResult(provider_message_id=message_id, detail=f"logged to {self.path}")

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write() on an O_APPEND descriptor: lines from several processes never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        """Nothing to close."""
