"""The FastAPI dependency every management endpoint uses: ``OperatorDep``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer
from starlette.requests import HTTPConnection

from passpost.auth.principal import Principal
from passpost.auth.service import authenticate_async
from passpost.deps import ReadSessionDep, SessionDep

__all__ = [
    "OperatorDep",
    "OperatorReadDep",
    "Principal",
    "client_address",
    "require_operator",
]


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


_kony = APIKeyHeader(
    name="X-Kony-Authorization",
    scheme_name="kony",
    description="The older name of X-VoltMX-Authorization (Kony clients).",
    auto_error=False,
)
_app_key = APIKeyHeader(
    name="X-VoltMX-App-API-Key",
    scheme_name="appApiKey",
    description="An API key (ppk_...), as the original's App API key header.",
    auto_error=False,
)


def client_address(connection: HTTPConnection) -> str | None:
    """The client's address (from X-Forwarded-For only behind a trusted proxy)."""
    return connection.client.host if connection.client else None


async def require_operator(
    request: HTTPConnection,
    session: SessionDep,
    authorization: Annotated[str | None, Security(_basic)],
    voltmx_authorization: Annotated[str | None, Security(_voltmx)],
    kony_authorization: Annotated[str | None, Security(_kony)],
    app_api_key: Annotated[str | None, Security(_app_key)],
    _bearer_doc: Annotated[None, Security(_bearer)],
) -> Principal:
    """Authenticate the request or raise ``Unauthorized`` (401, with a Bearer challenge).

    Accepted: ``Authorization: Basic``, ``Authorization: Bearer <claims token | API key>``,
    ``X-VoltMX-Authorization`` (or the older ``X-Kony-Authorization``) ``: <claims token |
    API key>``, which wins over ``Authorization``, and ``X-VoltMX-App-API-Key: <API key>``.
    """
    return await authenticate_async(
        session,
        authorization=authorization,
        voltmx_authorization=voltmx_authorization or kony_authorization,
        app_api_key=app_api_key,
        address=client_address(request),
    )


async def require_operator_reading(
    request: HTTPConnection,
    session: ReadSessionDep,
    authorization: Annotated[str | None, Security(_basic)],
    voltmx_authorization: Annotated[str | None, Security(_voltmx)],
    kony_authorization: Annotated[str | None, Security(_kony)],
    app_api_key: Annotated[str | None, Security(_app_key)],
    _bearer_doc: Annotated[None, Security(_bearer)],
) -> Principal:
    """``require_operator`` in a reading transaction, for routes that write in their own."""
    return await authenticate_async(
        session,
        authorization=authorization,
        voltmx_authorization=voltmx_authorization or kony_authorization,
        app_api_key=app_api_key,
        address=client_address(request),
    )


OperatorDep = Annotated[Principal, Depends(require_operator)]
OperatorReadDep = Annotated[Principal, Depends(require_operator_reading)]
