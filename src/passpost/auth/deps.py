"""The FastAPI dependency every management endpoint uses: ``OperatorDep``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from passpost.auth.principal import Principal
from passpost.web.deps import SessionDep, SettingsDep

__all__ = ["OperatorDep", "Principal", "require_operator"]


def require_operator(
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_voltmx_authorization: Annotated[
        str | None, Header(alias="X-VoltMX-Authorization", include_in_schema=False)
    ] = None,
) -> Principal:
    """Authenticate the request or raise ``Unauthorized`` (401 with WWW-Authenticate)."""
    from passpost.auth.service import authenticate

    return authenticate(
        session,
        authorization=authorization,
        voltmx_authorization=x_voltmx_authorization,
    )


OperatorDep = Annotated[Principal, Depends(require_operator)]
