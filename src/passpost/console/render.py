"""Templates and the few helpers every console page shares."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from passpost.auth.principal import Principal

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


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
