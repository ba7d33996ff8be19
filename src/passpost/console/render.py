"""Templates and the few helpers every console page shares."""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from passpost.auth.principal import Principal

HERE = Path(__file__).parent


class _Environment(Environment):
    """Jinja with ``row.key`` read from a dict first.

    The pages render the services' answers, which are dicts (the API's shapes): Jinja's
    own lookup tries the attribute first and pays for an ``AttributeError`` per cell (a
    Request page: ~1,000), a sixth of the page's time.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@cache
def state_badge(state: str) -> Markup:
    """A delivery's or request's state as a coloured badge (a handful of states: cached)."""
    return Markup('<span class="state state-{}">{}</span>').format(state.replace(" ", "-"), state)


def progress_bar(value: float) -> Markup:
    """A 0..1 fraction as a progress bar and a percentage."""
    percent = round(value * 100)
    return Markup(
        f'<progress max="1" value="{value}" aria-label="progress">{percent}%</progress> {percent}%'
    )


def channel_counts(channels: dict[str, dict[str, int]]) -> Markup:
    """``EMAIL 3 queued, 1 rejected`` per channel."""
    if not channels:
        return Markup('<span class="muted">no deliveries</span>')
    return Markup(
        "".join(
            f"<div><strong>{text(channel)}</strong> "
            + ", ".join(f"{n} {text(state)}" for state, n in sorted(counts.items()))
            + "</div>"
            for channel, counts in sorted(channels.items())
        )
    )


def text(value: object) -> str:
    """HTML-escaped text for ``{% autoescape false %}`` blocks (``None`` → "").

    The recipients table of the Request page (100 rows × 7 cells) is such a block: Jinja's
    autoescape wraps every value in a ``Markup`` object, which was a fifth of the page.
    """
    return "" if value is None else html.escape(str(value))


# Rendered from memory after the first use (no file check per page view).
_env = _Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    auto_reload=False,
)
# Filters, not globals: Jinja calls a filter directly, a global through ``Context.call``.
_env.filters.update(
    badge=state_badge, progress_bar=progress_bar, channel_counts=channel_counts, text=text
)
templates = Jinja2Templates(env=_env)


def _when(value: str | datetime | None) -> str:
    """An ISO timestamp as ``2026-11-27 08:12 UTC``."""
    if value is None or value == "":
        return ""
    moment = (
        datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    )
    return moment.strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = _when


def page(
    request: Request,
    name: str,
    *,
    operator: Principal | None,
    section: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a template with what the layout needs (operator, CSRF token, nav section)."""
    context.setdefault("title", section or "passpost")
    return templates.TemplateResponse(
        request,
        name,
        {
            "operator": operator,
            "csrf": getattr(request.state, "csrf", ""),
            "section": section,
            **context,
        },
        status_code=status_code,
    )
