"""Every way in, and every way of being turned away (SPEC §6), over the real app."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from passpost.auth import service
from passpost.auth.models import ApiKey, LoginToken, Operator
from passpost.config import get_settings
from passpost.db import session_scope, utcnow
from tests.support.app import PASSWORD, USERNAME, basic

PROBE = "/api/v1/audience"


def _db() -> str:
    return get_settings().resolved_database_url


def _assert_401(response: object, code: str) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["id"] == "-1" and body["errorCode"] == code and body["message"]
    # A Basic challenge would make browsers cache the password (CSRF): Bearer instead.
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # type: ignore[attr-defined]


def _login(client: TestClient, password: str = PASSWORD) -> dict:
    response = client.post(
        "/authService/accounts/login", json={"userid": USERNAME, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _api_key(name: str = "ci") -> str:
    with session_scope(_db()) as session:
        _, key = service.create_api_key(session, name=name)
    return key


def test_no_credentials(client: TestClient) -> None:
    _assert_401(client.get(PROBE), "AUTH_REQUIRED")
    _assert_401(client.get(PROBE, headers={"Authorization": "  "}), "AUTH_REQUIRED")


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(f"{USERNAME}:wrong password".encode()).decode(),
        "Basic " + base64.b64encode(f"nobody:{PASSWORD}".encode()).decode(),
        "Basic " + base64.b64encode(USERNAME.encode()).decode(),  # no colon
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
    ],
)
def test_bad_basic(client: TestClient, header: str) -> None:
    _assert_401(client.get(PROBE, headers={"Authorization": header}), "INVALID_CREDENTIALS")


@pytest.mark.parametrize("scheme", ["Digest abc", "ApplePass abcdef", "Token x"])
def test_unsupported_scheme(client: TestClient, scheme: str) -> None:
    _assert_401(client.get(PROBE, headers={"Authorization": scheme}), "UNSUPPORTED_AUTH_SCHEME")


def test_basic_ok_and_password_change_beats_the_cache(client: TestClient) -> None:
    assert client.get(PROBE, headers=basic()).status_code == 200
    assert client.get(PROBE, headers=basic()).status_code == 200  # from the cache
    with session_scope(_db()) as session:
        service.set_password(session, username=USERNAME, password="a new password")
    _assert_401(client.get(PROBE, headers=basic()), "INVALID_CREDENTIALS")
    assert client.get(PROBE, headers=basic(password="a new password")).status_code == 200


def test_disabled_operator_is_refused_everywhere(client: TestClient) -> None:
    tokens = _login(client)
    assert client.get(PROBE, headers=basic()).status_code == 200  # now cached
    with session_scope(_db()) as session:
        session.execute(update(Operator).values(active=False))
    _assert_401(client.get(PROBE, headers=basic()), "INVALID_CREDENTIALS")
    claims = tokens["claims_token"]["value"]
    _assert_401(
        client.get(PROBE, headers={"X-VoltMX-Authorization": claims}), "INVALID_CREDENTIALS"
    )
    response = client.post(
        "/authService/accounts/login", json={"userid": USERNAME, "password": PASSWORD}
    )
    _assert_401(response, "INVALID_CREDENTIALS")


def test_login_shape_and_every_way_to_send_the_token(client: TestClient) -> None:
    before = utcnow()
    body = _login(client)
    assert set(body) == {"claims_token", "refresh_token", "profile"}
    claims = body["claims_token"]["value"]
    exp_ms = body["claims_token"]["exp"]
    assert isinstance(exp_ms, int)
    expected = (before + service.CLAIMS_TTL).timestamp() * 1000
    assert expected - 1000 <= exp_ms <= expected + 60_000
    assert body["profile"]["userid"] == USERNAME
    for headers in (
        {"X-VoltMX-Authorization": claims},
        {"X-VoltMX-Authorization": f"Bearer {claims}"},
        {"Authorization": f"Bearer {claims}"},
        {"Authorization": "Basic Zm9vOmJhcg==", "X-VoltMX-Authorization": claims},
    ):
        assert client.get(PROBE, headers=headers).status_code == 200, headers
    with session_scope(_db()) as session:
        stored = {row.token_hash for row in session.scalars(select(LoginToken))}
        operator = session.scalars(select(Operator)).one()
        assert operator.last_login_at is not None
    # Only hashes are stored, never the tokens.
    assert claims not in stored and body["refresh_token"] not in stored


def test_login_accepts_a_form_body(client: TestClient) -> None:
    response = client.post(
        "/authService/accounts/login", data={"userid": USERNAME, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["claims_token"]["value"].startswith("ppc_")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"userid": USERNAME, "password": "nope"}}, 401, "INVALID_CREDENTIALS"),
        ({"json": {"userid": "ghost", "password": PASSWORD}}, 401, "INVALID_CREDENTIALS"),
        ({"json": {"userid": USERNAME}}, 400, "MISSING_CREDENTIALS"),
        ({"json": ["not", "an", "object"]}, 400, "INVALID_JSON"),
        (
            {"content": b"{broken", "headers": {"Content-Type": "application/json"}},
            400,
            "INVALID_JSON",
        ),
    ],
)
def test_bad_login(client: TestClient, kwargs: dict, status: int, code: str) -> None:
    response = client.post("/authService/accounts/login", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["errorCode"] == code


def test_bad_and_wrong_kind_of_token(client: TestClient) -> None:
    body = _login(client)
    for token in ("ppc_made-up-token", "random", body["refresh_token"]):
        _assert_401(
            client.get(PROBE, headers={"X-VoltMX-Authorization": token}), "INVALID_CREDENTIALS"
        )
    _assert_401(client.get(PROBE, headers={"Authorization": "Bearer "}), "INVALID_CREDENTIALS")


def test_expired_token(client: TestClient) -> None:
    claims = _login(client)["claims_token"]["value"]
    with session_scope(_db()) as session:
        session.execute(
            update(LoginToken)
            .where(LoginToken.kind == "claims")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    _assert_401(client.get(PROBE, headers={"X-VoltMX-Authorization": claims}), "TOKEN_EXPIRED")


def test_logout_revokes_the_session(client: TestClient) -> None:
    body = _login(client)
    other = _login(client)["claims_token"]["value"]
    headers = {"X-VoltMX-Authorization": body["claims_token"]["value"]}
    response = client.post("/authService/accounts/logout", headers=headers)
    assert response.status_code == 200, response.text
    _assert_401(client.get(PROBE, headers=headers), "TOKEN_REVOKED")
    refused = client.post(
        "/authService/accounts/refresh", json={"refresh_token": body["refresh_token"]}
    )
    _assert_401(refused, "TOKEN_REVOKED")
    # Another login session of the same operator is untouched.
    assert client.get(PROBE, headers={"X-VoltMX-Authorization": other}).status_code == 200
    # Logout needs a login session, not a password.
    assert client.post("/authService/accounts/logout", headers=basic()).status_code == 400


def test_refresh_rotates_and_reuse_kills_the_session(client: TestClient) -> None:
    first = _login(client)
    response = client.post(
        "/authService/accounts/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    new_claims = {"X-VoltMX-Authorization": second["claims_token"]["value"]}
    assert client.get(PROBE, headers=new_claims).status_code == 200
    # The used-up refresh token comes back: somebody copied it. Everything is revoked,
    # and that revocation is committed even though the answer is a 401.
    reuse = client.post(
        "/authService/accounts/refresh", json={"refresh_token": first["refresh_token"]}
    )
    _assert_401(reuse, "TOKEN_REVOKED")
    _assert_401(client.get(PROBE, headers=new_claims), "TOKEN_REVOKED")
    again = client.post(
        "/authService/accounts/refresh", json={"refresh_token": second["refresh_token"]}
    )
    _assert_401(again, "TOKEN_REVOKED")
    unknown = client.post("/authService/accounts/refresh", json={"refresh_token": "ppr_nope"})
    _assert_401(unknown, "INVALID_CREDENTIALS")


def test_api_key_flow(client: TestClient) -> None:
    key = _api_key()
    assert key.startswith("ppk_")
    assert client.get(PROBE, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get(PROBE, headers={"X-VoltMX-Authorization": key}).status_code == 200
    with session_scope(_db()) as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.last_used_at is not None
        assert key not in (row.key_hash, row.prefix)
    # Same prefix, wrong secret; a mangled key; then the real key after revocation.
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for bad in (tampered, "ppk_short", "ppk_" + "0" * 12 + "_x"):
        _assert_401(
            client.get(PROBE, headers={"Authorization": f"Bearer {bad}"}), "INVALID_CREDENTIALS"
        )
    with session_scope(_db()) as session:
        service.revoke_api_key(session, name="ci")
    _assert_401(client.get(PROBE, headers={"Authorization": f"Bearer {key}"}), "API_KEY_REVOKED")


@pytest.mark.usefixtures("production_argon2")
def test_outdated_password_hash_is_upgraded_on_login(client: TestClient) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with session_scope(_db()) as session:
        session.execute(update(Operator).values(password_hash=weak))
    _login(client)
    with session_scope(_db()) as session:
        stored = session.scalars(select(Operator.password_hash)).one()
    assert stored != weak and "m=65536,t=3,p=4" in stored


def test_operator_rules(client: TestClient) -> None:
    from passpost.errors import BadRequest, Conflict

    with session_scope(_db()) as session:
        with pytest.raises(Conflict):
            service.create_operator(session, username=USERNAME, password="whatever123")
        with pytest.raises(BadRequest):
            service.create_operator(session, username="a:b", password="whatever123")
        with pytest.raises(BadRequest):
            service.create_operator(session, username="short", password="1234567")
        with pytest.raises(Conflict):
            service.create_api_key(session, name="dup")
            service.create_api_key(session, name="dup")


def test_openapi_documents_the_schemes(client: TestClient) -> None:
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["basic"]["scheme"] == "basic"
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["voltmx"]["name"] == "X-VoltMX-Authorization"


@pytest.mark.parametrize("path", ["/authService/accounts/login", "/authService/accounts/refresh"])
@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_json_is_400_not_500(client: TestClient, path: str, depth: int) -> None:
    body = b'{"userid": "ops", "password": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == "JSON_TOO_DEEP"


@pytest.mark.usefixtures("production_argon2")
def test_outdated_password_hash_waits_for_a_writing_call(client: TestClient) -> None:
    # A GET checks Basic credentials in a reading transaction: on SQLite a reader that
    # writes after another connection committed fails, so the re-hash waits for a call
    # that writes (login here) and the GET answers normally.
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with session_scope(_db()) as session:
        session.execute(update(Operator).values(password_hash=weak))
    url = _db()
    for _ in range(2):
        response = client.get(PROBE, headers=basic())
        assert response.status_code == 200, response.text
    with session_scope(url) as session:
        stored = session.scalars(select(Operator.password_hash)).one()
    if url.startswith("sqlite"):
        assert stored == weak
    else:
        assert stored != weak  # PostgreSQL's readers may write
    _login(client)
    with session_scope(url) as session:
        stored = session.scalars(select(Operator.password_hash)).one()
    assert stored != weak and "m=65536,t=3,p=4" in stored
