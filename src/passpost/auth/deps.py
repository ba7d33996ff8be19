"""The FastAPI dependency every management endpoint uses: ``OperatorDep``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer
from starlette.requests import HTTPConnection

from passpost.auth.principal import Principal
from passpost.auth.service import authenticate
from passpost.deps import SessionDep

__all__ = ["OperatorDep", "Principal", "require_operator"]


class _RawAuthorization(HTTPBasic):
    """Documents HTTP Basic in OpenAPI; hands over the raw header (parsed in the service)."""

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        return request.headers.get("Authorization")


class _DocumentedBearer(HTTPBearer):
    """Documents ``Authorization: Bearer`` in OpenAPI; the header is read by the Basic one."""

    async def __call__(self, request: HTTPConnection) -> None:
        return None


_basic = _RawAuthorization(scheme_name="basic", auto_error=False)
_bearer = _DocumentedBearer(
    scheme_name="bearer",
    description="A claims token from /authService/accounts/login, or an API key (ppk_...).",
    auto_error=False,
)
_voltmx = APIKeyHeader(
    name="X-VoltMX-Authorization",
    scheme_name="voltmx",
    description="A claims token from /authService/accounts/login (or an API key).",
    auto_error=False,
)


def require_operator(
    session: SessionDep,
    authorization: Annotated[str | None, Security(_basic)],
    voltmx_authorization: Annotated[str | None, Security(_voltmx)],
    _bearer_doc: Annotated[None, Security(_bearer)],
) -> Principal:
    """Authenticate the request or raise ``Unauthorized`` (401, with a Bearer challenge).

    Accepted: ``Authorization: Basic``, ``Authorization: Bearer <claims token | API key>``,
    ``X-VoltMX-Authorization: <claims token | API key>`` (that header wins when both come).
    """
    return authenticate(
        session, authorization=authorization, voltmx_authorization=voltmx_authorization
    )


OperatorDep = Annotated[Principal, Depends(require_operator)]
