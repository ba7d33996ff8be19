"""Helpers shared by the HTTP SMS providers: URL options, HTTP errors."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from passpost.channels.base import ChannelError, PermanentError, TransientError


def url_options(url: str) -> dict[str, str]:
    """The query options of a provider URL, keys lower-cased, last value wins."""
    return {key.lower(): values[-1] for key, values in parse_qs(urlsplit(url).query).items()}


def api_base_from(url: str, options: dict[str, str], default: str) -> str:
    """The API base URL: ``api_base=`` option, else the URL's host (https), else ``default``."""
    if options.get("api_base"):
        return options["api_base"].rstrip("/")
    parts = urlsplit(url)
    if parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"https://{parts.hostname}{port}"
    return default


def response_json(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def http_status_error(status: int, reason: str, *, transient: bool = False) -> ChannelError:
    """An HTTP failure: 408/429/5xx (or ``transient``) retry later, other 4xx are permanent."""
    if transient or status in (408, 429) or status >= 500:
        return TransientError(reason)
    return PermanentError(reason)


def transport_error(provider: str, exc: httpx.HTTPError) -> TransientError:
    """A network failure talking to a provider (connect, timeout, protocol) as transient."""
    kind = type(exc).__name__
    return TransientError(f"{provider} unreachable ({kind}): {exc}".rstrip(": "))
