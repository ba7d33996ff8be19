"""Small helpers the APNs client tests share: device tokens and a recording sleep."""

from __future__ import annotations

import asyncio


def device(n: int) -> str:
    """A well-formed device token (64 hex digits) numbered ``n``."""
    return f"{n:064x}"


class Sleeps:
    """Records backoff pauses instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)
