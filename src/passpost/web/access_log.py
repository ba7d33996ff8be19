"""Download tokens and webhook tokens never reach the access log.

A ``/p/<token>`` path *is* the credential for a recipient's pass, and the Vonage receipt
URL carries ``?token=``: uvicorn's access log line would hand both to whoever reads logs.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
_LINK = re.compile(r"^(/p/)[^/?#]+")
_TOKEN_PARAM = re.compile(r"([?&](?:token|sig)=)[^&#]*", re.IGNORECASE)


def redact_path(path: str) -> str:
    """``path`` (with its query) with download-link and webhook tokens replaced."""
    return _TOKEN_PARAM.sub(rf"\g<1>{REDACTED}", _LINK.sub(rf"\g<1>{REDACTED}", path))


class RedactTokens(logging.Filter):
    """Rewrites the path argument of uvicorn's access records (client, method, path, …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    """Attach the filter to uvicorn's access logger (once; call after uvicorn set logging up)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
