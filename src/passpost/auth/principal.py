"""Who is calling: an operator (password or login token) or an API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["operator", "api_key"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a management endpoint."""

    name: str
    kind: PrincipalKind
    id: int
