"""The Request page's funnel as inline SVG, drawn on the server (no charting script)."""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

# Which delivery states count as having reached each step of the funnel.
STEPS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "queued",
        frozenset(
            {"initial", "queued", "submitted", "delivered", "undelivered", "opened", "rejected"}
            | {"cancelled", "not attempted"}
        ),
    ),
    ("submitted", frozenset({"submitted", "delivered", "undelivered", "opened"})),
    ("delivered", frozenset({"delivered", "opened"})),
    ("opened", frozenset({"opened"})),
)
_COLORS = ("#5b7fa6", "#3f6f9f", "#2a5d8f", "#1d6b35", "#8a5a00")
# Narrow enough that a 390 px phone shows it at three quarters of its size, still legible.
_WIDTH, _LABEL, _ROW, _GAP = 480, 96, 22, 4


def funnel_rows(progress: dict[str, Any]) -> list[tuple[str, list[tuple[str, int]]]]:
    """``[(group, [(step, count), ...]), ...]``: one group per channel, then Wallet.

    ``progress`` is ``status.request_progress``'s answer (what the API answers too).
    """
    channels: dict[str, dict[str, int]] = progress["channels"]
    groups = [
        (
            channel,
            [(step, sum(n for s, n in counts.items() if s in states)) for step, states in STEPS],
        )
        for channel, counts in sorted(channels.items())
    ]
    groups.append(
        ("Wallet", [("installed", progress["installs"]), ("removed", progress["removals"])])
    )
    return groups


def funnel_svg(progress: dict[str, Any]) -> Markup:
    """Horizontal bars, one per funnel step and channel, scaled to the largest count."""
    groups = funnel_rows(progress)
    largest = max((n for _, steps in groups for _, n in steps), default=0) or 1
    parts: list[str] = []
    y = 0
    for group, steps in groups:
        parts.append(f'<text x="0" y="{y + 16}" font-weight="700">{escape(group)}</text>')
        y += _ROW
        for index, (step, count) in enumerate(steps):
            width = round((_WIDTH - _LABEL - 70) * count / largest)
            color = _COLORS[4] if group == "Wallet" else _COLORS[index]
            parts.append(
                f'<text x="8" y="{y + 16}">{escape(step)}</text>'
                f'<rect x="{_LABEL}" y="{y + 2}" width="{max(width, 1)}" height="{_ROW - 4}" '
                f'fill="{color}"/>'
                f'<text x="{_LABEL + max(width, 1) + 6}" y="{y + 16}">{count:,}</text>'
            )
            y += _ROW
        y += _GAP * 2
    summary = "; ".join(
        f"{group}: " + ", ".join(f"{step} {count}" for step, count in steps)
        for group, steps in groups
    )
    return Markup(
        f'<svg role="img" aria-labelledby="funnel-title" viewBox="0 0 {_WIDTH} {y}" '
        f'width="{_WIDTH}" height="{y}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="funnel-title">Funnel. {escape(summary)}</title>{"".join(parts)}</svg>'
    )
