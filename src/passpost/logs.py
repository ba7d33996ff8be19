"""One log format for every line a process writes: passpost's, uvicorn's, huey's, alembic's.

``PASSPOST_LOG_FORMAT=text`` (default) or ``json`` (one JSON object per line, tracebacks
inside it), ``PASSPOST_LOG_LEVEL`` (default ``INFO``). Every process logs one start line
naming the database, queue, public URL and channel targets, with passwords masked.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from passpost import __version__
from passpost.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

# Loggers that install handlers of their own elsewhere; here they hand every line to root.
_FOREIGN = ("uvicorn", "uvicorn.error", "uvicorn.access", "huey", "huey.consumer", "alembic")
# Chatter at INFO that says nothing to an operator.
_QUIET = ("alembic.runtime.plugins",)
_SECRET_WORDS = ("pass", "secret", "token", "key", "auth", "signature")

log = logging.getLogger("passpost")


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``text`` or ``json``."""
    if log_format == "json":
        return JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn adds a copy of each message with terminal colours: not for a log file.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings) -> None:
    """Send every logger's lines through one stderr handler in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)  # warnings become log lines in the same format
    for name in _FOREIGN:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
        foreign.setLevel(logging.NOTSET)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def mask_url(url: str | None) -> str:
    """A URL fit for a log line: its password and secret-looking query values masked."""
    if not url:
        return "not configured"
    parts = urlsplit(url)
    # Replace pieces in place: urlunsplit would rewrite sqlite:////abs/path.
    masked = url
    if parts.password:
        user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
        host = parts.netloc.rpartition("@")[2]
        masked = masked.replace(parts.netloc, f"{user}:{MASK}@{host}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(_is_secret(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _is_secret(k) else v) for k, v in pairs], safe="*/:")
            masked = masked.replace("?" + parts.query, "?" + query, 1)
    return masked


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def start_fields(role: str, settings: Settings) -> dict[str, Any]:
    """What a process says about itself when it starts."""
    return {
        "role": role,
        "version": __version__,
        "pid": os.getpid(),
        "database": mask_url(settings.resolved_database_url),
        "queue": mask_url(settings.resolved_queue_url),
        "public_url": settings.public_base,
        "smtp": mask_url(settings.smtp_url),
        "sms": mask_url(settings.sms_url),
    }


def log_start(role: str, settings: Settings, **extra: Any) -> None:
    """The one start line of a process (``role``: serve, api, worker, ...)."""
    fields = start_fields(role, settings) | extra
    shown = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("role", "version"))
    log.info("passpost %s %s starting: %s", role, __version__, shown, extra=fields)
