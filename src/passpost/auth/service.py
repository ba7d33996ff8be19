"""Operators, API keys, login tokens, and turning request headers into a ``Principal``.

Token design: claims and refresh tokens are random 192-bit strings stored as SHA-256
hashes (never the token). A lookup per request buys instant revocation (logout, a
disabled operator) and no signing key to rotate. Claims tokens expire after
``CLAIMS_TTL``; refresh tokens after ``REFRESH_TTL`` and rotate on every use; presenting an
already-rotated refresh token revokes the whole login session (it was probably stolen).
API keys (``ppk_<prefix>_<secret>``) carry 256 bits of entropy, so a SHA-256 of the key is
as safe to store as a slow hash and costs nothing to check; ``prefix`` finds the row.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from anyio import to_thread
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passpost.auth import passwords, throttle
from passpost.auth.models import ApiKey, LoginToken, Operator
from passpost.auth.principal import Principal
from passpost.db import utcnow, writes
from passpost.errors import BadRequest, Conflict, NotFound, Unauthorized
from passpost.secrets import new_token, token_hash

CLAIMS_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=14)
API_KEY_MARK = "ppk_"
CLAIMS_MARK = "ppc_"
REFRESH_MARK = "ppr_"
_PREFIX_LEN = 12
# last_used_at is written at most this often per key: a GET should not always write.
_LAST_USED_GRANULARITY = timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """What the login and refresh calls hand out (the tokens exist only here, in clear)."""

    operator: Operator
    claims_token: str
    claims_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


def _unauthorized(message: str, code: str = "INVALID_CREDENTIALS") -> Unauthorized:
    return Unauthorized(message, error_code=code)


# -- operators ---------------------------------------------------------------------------


def _check_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > 150:
        raise BadRequest("The username must have 1 to 150 characters.", error_code="BAD_USERNAME")
    # HTTP Basic splits user and password at the first colon.
    if ":" in username or any(ch.isspace() or not ch.isprintable() for ch in username):
        raise BadRequest(
            "The username must not contain a colon, spaces or control characters.",
            error_code="BAD_USERNAME",
        )
    return username


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
            error_code="WEAK_PASSWORD",
        )
    return password


def get_operator(session: Session, *, username: str) -> Operator | None:
    """The operator called ``username``, if any."""
    return session.scalar(select(Operator).where(Operator.username == username))


def create_operator(session: Session, *, username: str, password: str) -> Operator:
    """Create an operator; ``Conflict`` if the username is taken."""
    username = _check_username(username)
    password_hash = passwords.hash_password(_check_password(password))
    if get_operator(session, username=username) is not None:
        raise Conflict(f"Operator {username!r} already exists.", error_code="OPERATOR_EXISTS")
    operator = Operator(username=username, password_hash=password_hash, active=True)
    session.add(operator)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"Operator {username!r} already exists.", error_code="OPERATOR_EXISTS"
        ) from exc
    return operator


def set_password(session: Session, *, username: str, password: str) -> Operator:
    """Replace an operator's password and end all of its login sessions."""
    operator = get_operator(session, username=username)
    if operator is None:
        raise NotFound(f"No operator {username!r}.", error_code="OPERATOR_NOT_FOUND")
    operator.password_hash = passwords.hash_password(_check_password(password))
    _revoke_where(session, LoginToken.operator_id == operator.id)
    return operator


def verify_password(operator: Operator, password: str, *, rehash: bool = True) -> bool:
    """Constant-time check of ``password``; re-hashes it when the parameters changed (and
    ``rehash``: the caller's transaction can write)."""
    if not passwords.verify_password(operator.id, operator.password_hash, password):
        return False
    if rehash and passwords.needs_rehash(operator.password_hash):
        operator.password_hash = passwords.hash_password(password)
    return True


def _conclude(operator: Operator | None, ok: bool, username: str, address: str | None) -> Operator:
    if operator is None or not ok or not operator.active:
        throttle.failed(username=username, address=address)
        raise _unauthorized("Unknown username or wrong password.")
    throttle.succeeded(username=username, address=address)
    return operator


def check_credentials(
    session: Session, *, username: str, password: str, address: str | None = None
) -> Operator:
    """The active operator ``username`` if ``password`` is theirs, else ``Unauthorized``.

    Throttled per username and per client ``address`` (429 ``TooManyRequests`` while too
    many failures are recent). Blocks its thread while argon2 runs: async callers use
    ``check_credentials_async``.
    """
    throttle.check(username=username, address=address)
    operator = get_operator(session, username=username)
    if operator is None:
        passwords.burn_verification(password)
        return _conclude(None, False, username, address)
    # In a reading transaction (GETs, the import's credential check) the re-hash waits for
    # the next call that writes: a reader's write may fail on SQLite.
    ok = verify_password(operator, password, rehash=writes(session))
    return _conclude(operator, ok, username, address)


async def check_credentials_async(
    session: Session, *, username: str, password: str, address: str | None = None
) -> Operator:
    """``check_credentials`` for the event loop: the lookup runs in the thread pool and
    argon2 in its own small pool, so waiting for a hash holds no shared thread."""
    throttle.check(username=username, address=address)
    operator, writer = await to_thread.run_sync(partial(_lookup, session, username=username))
    if operator is None:
        await passwords.burn_verification_async(password)
        return _conclude(None, False, username, address)
    ok = await passwords.verify_password_async(operator.id, operator.password_hash, password)
    if ok and passwords.needs_rehash(operator.password_hash) and writer:
        operator.password_hash = await passwords.hash_password_async(password)
    return _conclude(operator, ok, username, address)


def _lookup(session: Session, *, username: str) -> tuple[Operator | None, bool]:
    """The operator, and whether the transaction writes; a reading one ends here.

    Its snapshot is not held while argon2 runs or an upload is read, and the caller's next
    statement begins a new one: no second hop to the thread pool to end it.
    """
    operator = get_operator(session, username=username)
    return operator, _end_if_reading(session)


def _end_if_reading(session: Session) -> bool:
    """End ``session``'s transaction if it only reads; whether it writes."""
    writer = writes(session)
    if not writer:
        session.commit()
    return writer


# -- login tokens --------------------------------------------------------------------------


def _issue(session: Session, operator: Operator, session_key: str) -> IssuedTokens:
    now = utcnow()
    claims = CLAIMS_MARK + new_token()
    refresh = REFRESH_MARK + new_token()
    claims_exp, refresh_exp = now + CLAIMS_TTL, now + REFRESH_TTL
    for kind, token, expires in (("claims", claims, claims_exp), ("refresh", refresh, refresh_exp)):
        session.add(
            LoginToken(
                operator_id=operator.id,
                kind=kind,
                token_hash=token_hash(token),
                session_key=session_key,
                created_at=now,
                expires_at=expires,
            )
        )
    session.flush()
    return IssuedTokens(operator, claims, claims_exp, refresh, refresh_exp)


async def login(
    session: Session, *, username: str, password: str, address: str | None = None
) -> IssuedTokens:
    """Check the credentials (throttled) and issue a claims token and a refresh token."""
    operator = await check_credentials_async(
        session, username=username, password=password, address=address
    )
    return await to_thread.run_sync(start_session, session, operator)


def start_session(session: Session, operator: Operator) -> IssuedTokens:
    """Issue a claims token and a refresh token to an operator whose credentials were checked."""
    now = utcnow()
    operator.last_login_at = now
    # Housekeeping on a rare, already-slow call: drop this operator's dead tokens.
    session.execute(
        delete(LoginToken).where(LoginToken.operator_id == operator.id, LoginToken.expires_at < now)
    )
    return _issue(session, operator, secrets.token_hex(16))


def _find_token(session: Session, token: str) -> LoginToken | None:
    digest = token_hash(token)
    row = session.scalar(select(LoginToken).where(LoginToken.token_hash == digest))
    # The lookup is by a hash the caller cannot steer; compare once more in constant time.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


def _revoke_where(session: Session, *conditions: object) -> None:
    session.execute(
        update(LoginToken)
        .where(LoginToken.revoked_at.is_(None), *conditions)  # type: ignore[arg-type]
        .values(revoked_at=utcnow())
    )


def refresh(session: Session, *, refresh_token: str, address: str | None = None) -> IssuedTokens:
    """Exchange a refresh token for new tokens (the old refresh token is used up).

    Refused tokens count as credential failures of ``address`` (429 when too many).
    """
    throttle.check(username=None, address=address)
    try:
        return _refresh(session, refresh_token)
    except Unauthorized:
        throttle.failed(username=None, address=address)
        raise


def _refresh(session: Session, refresh_token: str) -> IssuedTokens:
    row = _find_token(session, refresh_token.strip())
    if row is None or row.kind != "refresh":
        raise _unauthorized("Unknown refresh token.")
    if row.revoked_at is not None:
        # A used-up refresh token coming back means someone else holds a copy: end it all.
        _revoke_where(session, LoginToken.session_key == row.session_key)
        raise _unauthorized("The refresh token was already used or revoked.", "TOKEN_REVOKED")
    if row.expires_at <= utcnow():
        raise _unauthorized("The refresh token has expired; log in again.", "TOKEN_EXPIRED")
    operator = session.get(Operator, row.operator_id)
    if operator is None or not operator.active:
        raise _unauthorized("The operator of this token is disabled.")
    row.revoked_at = utcnow()
    return _issue(session, operator, row.session_key)


def logout(session: Session, *, token: str) -> None:
    """Revoke the login session that ``token`` (claims or refresh) belongs to."""
    row = _find_token(session, token.strip())
    if row is None:
        raise _unauthorized("Unknown token.")
    _revoke_where(session, LoginToken.session_key == row.session_key)


# -- API keys --------------------------------------------------------------------------------


def create_api_key(session: Session, *, name: str) -> tuple[ApiKey, str]:
    """Create an API key; returns the row and the key itself (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 150:
        raise BadRequest("The key name must have 1 to 150 characters.", error_code="BAD_KEY_NAME")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"An API key named {name!r} exists.", error_code="API_KEY_EXISTS")
    prefix = secrets.token_hex(_PREFIX_LEN // 2)
    key = f"{API_KEY_MARK}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, key_hash=token_hash(key), created_at=utcnow())
    session.add(row)
    session.flush()
    return row, key


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every API key, oldest first (revoked ones included)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, *, name: str) -> ApiKey:
    """Revoke the API key called ``name`` (idempotent)."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise NotFound(f"No API key named {name!r}.", error_code="API_KEY_NOT_FOUND")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def _api_key_principal(session: Session, key: str) -> Principal:
    body = key[len(API_KEY_MARK) :]
    prefix, sep = body[:_PREFIX_LEN], body[_PREFIX_LEN : _PREFIX_LEN + 1]
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if sep == "_" else None
    if row is None or not hmac.compare_digest(row.key_hash, token_hash(key)):
        raise _unauthorized("Unknown API key.")
    if row.revoked_at is not None:
        raise _unauthorized("This API key has been revoked.", "API_KEY_REVOKED")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_GRANULARITY:
        _touch_api_key(session, row.id, now)
    return Principal(name=row.name, kind="api_key", id=row.id)


def _touch_api_key(session: Session, key_id: int, now: datetime) -> None:
    touch = update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
    if writes(session):
        session.execute(touch)
        return
    # The request's transaction is a SQLite reader (a GET), which cannot become a writer
    # once another writer has committed: write in a short transaction of its own.
    with Session(session.get_bind()) as own, own.begin():
        own.execute(touch)


# -- authentication --------------------------------------------------------------------------


def _claims_principal(session: Session, token: str) -> Principal:
    # The token with its operator in one statement: every console page and API call pays it.
    digest = token_hash(token)
    found = session.execute(
        select(LoginToken, Operator)
        .outerjoin(Operator, Operator.id == LoginToken.operator_id)
        .where(LoginToken.token_hash == digest)
    ).first()
    # The lookup is by a hash the caller cannot steer; compare once more in constant time.
    if found is None or not hmac.compare_digest(found[0].token_hash, digest):
        raise _unauthorized("Unknown token.")
    row, operator = found
    if row.kind != "claims":
        raise _unauthorized("Unknown token.")
    if row.revoked_at is not None:
        raise _unauthorized("This token has been revoked; log in again.", "TOKEN_REVOKED")
    if row.expires_at <= utcnow():
        raise _unauthorized("This token has expired; log in again.", "TOKEN_EXPIRED")
    if operator is None or not operator.active:
        raise _unauthorized("The operator of this token is disabled.")
    return Principal(name=operator.username, kind="operator", id=operator.id)


def _token_principal(session: Session, token: str) -> Principal:
    token = token.strip()
    # Volt MX clients sometimes send the claims token with a scheme in X-VoltMX-Authorization.
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise _unauthorized("Empty token.")
    if token.startswith(API_KEY_MARK):
        return _api_key_principal(session, token)
    return _claims_principal(session, token)


def basic_credentials(value: str) -> tuple[str, str]:
    """``(username, password)`` of a Basic authorization value, or ``Unauthorized``."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _unauthorized("Malformed Basic credentials.") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise _unauthorized("Malformed Basic credentials.")
    return username, password


def _scheme(
    authorization: str | None, voltmx_authorization: str | None, app_api_key: str | None
) -> tuple[str, str]:
    """``("token", value)`` or ``("basic", value)``; ``Unauthorized`` for anything else."""
    if app_api_key and app_api_key.strip():
        key = app_api_key.strip()
        if not key.startswith(API_KEY_MARK):
            raise _unauthorized("X-VoltMX-App-API-Key carries an API key (ppk_...).")
        return "token", key
    if voltmx_authorization and voltmx_authorization.strip():
        return "token", voltmx_authorization
    if not authorization or not authorization.strip():
        raise _unauthorized(
            "Credentials are required (HTTP Basic, a login token or an API key).", "AUTH_REQUIRED"
        )
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() in ("basic", "bearer"):
        return ("basic" if scheme.lower() == "basic" else "token"), value
    raise _unauthorized(
        f"Unsupported authorization scheme {scheme!r}; use Basic or Bearer.",
        "UNSUPPORTED_AUTH_SCHEME",
    )


def _token_principal_ending_reader(session: Session, token: str) -> Principal:
    """``_token_principal``; a reading transaction ends here (as in ``_lookup``)."""
    principal = _token_principal(session, token)
    _end_if_reading(session)
    return principal


def _operator_principal(operator: Operator) -> Principal:
    return Principal(name=operator.username, kind="operator", id=operator.id)


def authenticate(
    session: Session,
    *,
    authorization: str | None,
    voltmx_authorization: str | None,
    app_api_key: str | None = None,
    address: str | None = None,
) -> Principal:
    """The caller named by the headers, or ``Unauthorized`` (errorCode says why)."""
    kind, value = _scheme(authorization, voltmx_authorization, app_api_key)
    if kind == "token":
        return _token_principal(session, value)
    username, password = basic_credentials(value)
    operator = check_credentials(session, username=username, password=password, address=address)
    return _operator_principal(operator)


async def authenticate_async(
    session: Session,
    *,
    authorization: str | None,
    voltmx_authorization: str | None,
    app_api_key: str | None = None,
    address: str | None = None,
) -> Principal:
    """``authenticate`` for the event loop (a Basic password check holds no shared thread)."""
    kind, value = _scheme(authorization, voltmx_authorization, app_api_key)
    if kind == "token":
        return await to_thread.run_sync(_token_principal_ending_reader, session, value)
    username, password = basic_credentials(value)
    operator = await check_credentials_async(
        session, username=username, password=password, address=address
    )
    return _operator_principal(operator)


def list_operators(session: Session) -> list[Operator]:
    """Every operator, by username."""
    return list(session.scalars(select(Operator).order_by(Operator.username)))
