"""The original API's SMS configuration (provider + ``{"key", "value"}`` list) ↔ SMS URLs.

Keys are matched without regard to case, spaces or punctuation (``Account SID`` =
``accountSid``). Known keys per provider:

- TWILIO: ``Account SID``, ``Auth Token``, ``From`` or ``Messaging Service SID``, ``Host URL``
- NEXMO/VONAGE: ``API Key``, ``API Secret``, ``From``, ``Host URL``, ``Signature Secret``,
  ``Signature Method``
- SMPP (provider ``SMPP`` or protocol ``SMPP``): ``System ID`` (or ``Account SID``),
  ``Password`` (or ``Secret Key``), ``Host URL``, ``Port``, ``Sender ID``, ``System Type``
- LOG: ``Path``, a file inside the data directory (a relative path is taken from there):
  whoever holds an API key must not be able to append text to ``~/.bashrc``. A
  ``log://`` URL in ``PASSPOST_SMS_URL`` is the operator's own and may point anywhere.

and for all ``Maximum Character Limit``. Other keys are kept and shown, not used.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlencode, urlsplit

from passpost.channels.schemas import MASK
from passpost.channels.sms import check_sms_url, provider_scheme
from passpost.channels.sms.common import url_options
from passpost.channels.sms.log import log_path_from_url
from passpost.errors import BadRequest

PROVIDERS = {
    "TWILIO": "twilio",
    "NEXMO": "vonage",
    "VONAGE": "vonage",
    "SMPP": "smpp",
    "LOG": "log",
    "CLICKATELL": "clickatell",
    "SALESFORCE": "salesforce",
}
# Providers the original's pages list that passpost stores but cannot send through (no
# client for their APIs): their SMS deliveries end "not attempted" with that reason.
UNSENDABLE = {"clickatell": "CLICKATELL", "salesforce": "SALESFORCE"}
# Any key whose name says it holds a secret is write-only (``API Password``, ``Auth Token``,
# ``Client Secret``, ``Private Key``...), not only the keys passpost itself reads.
SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "passphrase", "privatekey")
MAX_CHARS_KEY = "maximumcharacterlimit"
DEFAULT_SMPP_PORT = 2775


def squash(key: str) -> str:
    """A property key reduced to lower-case letters and digits."""
    return "".join(ch for ch in key.lower() if ch.isalnum())


def is_secret(key: str) -> bool:
    """True for keys whose values are write-only."""
    squashed = squash(key)
    return any(word in squashed for word in SECRET_WORDS)


def unsendable_reason(kind: str) -> str | None:
    """Why passpost cannot send through a stored provider (None: it can)."""
    name = UNSENDABLE.get(kind)
    if name is None:
        return None
    return (
        f"passpost stores the {name} settings but cannot send through {name}: "
        "configure TWILIO, NEXMO, SMPP or LOG to send SMS"
    )


def provider_kind(provider: str, protocol: str | None) -> str:
    """``twilio``/``vonage``/``smpp``/``log``/... for a provider name (else ``BadRequest``)."""
    if (protocol or "").strip().upper() == "SMPP":
        return "smpp"
    kind = PROVIDERS.get(provider.strip().upper())
    if kind is None:
        raise BadRequest(
            f"Unknown SMS provider {provider!r}: use TWILIO, NEXMO (or VONAGE), SMPP, LOG, "
            "CLICKATELL or SALESFORCE.",
            error_code="INVALID_SMS_PROVIDER",
        )
    return kind


def _pick(values: dict[str, str], *keys: str) -> str | None:
    for key in keys:
        value = (values.get(key) or "").strip()
        if value:
            return value
    return None


def _need(values: dict[str, str], provider: str, label: str, *keys: str) -> str:
    value = _pick(values, *keys)
    if value is None:
        raise BadRequest(
            f"The {provider} configuration needs the property {label!r}.",
            error_code="MISSING_SMS_PROPERTY",
        )
    return value


def _query(**options: str | None) -> str:
    return urlencode({k: v for k, v in options.items() if v})


def max_chars(values: dict[str, str]) -> int | None:
    """The ``Maximum Character Limit`` property (``BadRequest`` unless a positive integer)."""
    raw = _pick(values, MAX_CHARS_KEY)
    if raw is None:
        return None
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1:
        raise BadRequest(
            "Maximum Character Limit must be a positive integer.", error_code="INVALID_SMS_PROPERTY"
        )
    return limit


def sms_url(kind: str, values: dict[str, str], *, data_dir: Path) -> str:
    """The SMS URL for squashed-key ``values`` (``BadRequest`` names what is missing).

    A ``log`` path must lie inside ``data_dir`` (``BadRequest`` otherwise).
    """
    builders = {"twilio": _twilio, "vonage": _vonage, "smpp": _smpp}
    url = _log(values, data_dir) if kind == "log" else builders[kind](values)
    try:
        # Parsed as the sender will parse it (SMPP field lengths included): a configuration
        # the worker cannot use is refused here, not found out later by stuck deliveries.
        check_sms_url(url)
    except ValueError as exc:
        raise BadRequest(
            f"Invalid SMS configuration: {exc}.", error_code="INVALID_SMS_CONFIG"
        ) from exc
    return url


def _secret(value: str) -> str:
    return quote(value, safe="")


def _twilio(values: dict[str, str]) -> str:
    sid = _need(values, "TWILIO", "Account SID", "accountsid")
    token = _need(values, "TWILIO", "Auth Token", "authtoken")
    sender = _pick(values, "from")
    service = _pick(values, "messagingservicesid")
    if not sender and not service:
        _need(values, "TWILIO", "From", "from")
    query = _query(
        **{"from": sender, "messagingServiceSid": service, "api_base": _pick(values, "hosturl")}
    )
    return f"twilio://{_secret(sid)}:{_secret(token)}@?{query}"


def _vonage(values: dict[str, str]) -> str:
    key = _need(values, "NEXMO", "API Key", "apikey")
    secret = _need(values, "NEXMO", "API Secret", "apisecret")
    sender = _need(values, "NEXMO", "From", "from")
    query = _query(
        **{
            "from": sender,
            "api_base": _pick(values, "hosturl"),
            "signature_secret": _pick(values, "signaturesecret"),
            "signature_method": _pick(values, "signaturemethod"),
        }
    )
    return f"vonage://{_secret(key)}:{_secret(secret)}@?{query}"


def _smpp(values: dict[str, str]) -> str:
    system_id = _need(values, "SMPP", "System ID", "systemid", "accountsid", "username")
    password = _pick(values, "password", "secretkey") or ""
    host = _need(values, "SMPP", "Host URL", "hosturl", "host")
    if "://" in host:  # "smpp://host:port" or similar pasted into the host field
        parts = urlsplit(host)
        host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    if ":" not in host:
        port = _pick(values, "port") or str(DEFAULT_SMPP_PORT)
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise BadRequest(f"SMPP port {port!r} is invalid.", error_code="INVALID_SMS_PROPERTY")
        host = f"{host}:{port}"
    query = _query(
        source=_pick(values, "senderid", "source", "from"), system_type=_pick(values, "systemtype")
    )
    return f"smpp://{_secret(system_id)}:{_secret(password)}@{host}" + (
        f"?{query}" if query else ""
    )


def _log(values: dict[str, str], data_dir: Path) -> str:
    path = confined_log_path(_need(values, "LOG", "Path", "path", "file"), data_dir)
    return "log://" + quote(str(path), safe="/:")


def confined_log_path(raw: str, data_dir: Path) -> Path:
    """``raw`` as an absolute file path inside ``data_dir`` (relative paths start there).

    Symbolic links and ``..`` are resolved first, so neither can lead outside.
    """
    root = data_dir.resolve()
    try:
        path = (root / raw).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise _outside(raw, root) from exc
    if path == root or not path.is_relative_to(root) or raw.endswith("/"):
        raise _outside(raw, root)
    return path


def _outside(raw: str, root: Path) -> BadRequest:
    return BadRequest(
        f"The LOG provider's Path {raw[:200]!r} must name a file inside the data directory "
        f"{str(root)!r}; set PASSPOST_SMS_URL to log elsewhere.",
        error_code="SMS_LOG_PATH_OUTSIDE_DATA_DIR",
    )


def properties_from_url(url: str) -> tuple[str, str, list[dict[str, str]]]:
    """``(provider, protocol, properties)`` describing an SMS URL, secrets masked by the caller."""
    kind = provider_scheme(url)
    parts = urlsplit(url)
    options = url_options(url)
    user = unquote(parts.username or "")
    secret = MASK if parts.password else ""
    rows: list[tuple[str, str | None]]
    if kind == "twilio":
        rows = [
            ("Account SID", user),
            ("Auth Token", secret),
            ("From", options.get("from")),
            ("Messaging Service SID", options.get("messagingservicesid")),
            ("Host URL", options.get("api_base")),
        ]
        return "TWILIO", "HTTP", _rows(rows)
    if kind == "vonage":
        rows = [
            ("API Key", user),
            ("API Secret", secret),
            ("From", options.get("from")),
            ("Host URL", options.get("api_base")),
            ("Signature Secret", MASK if options.get("signature_secret") else None),
        ]
        return "NEXMO", "HTTP", _rows(rows)
    if kind == "smpp":
        rows = [
            ("System ID", user),
            ("Password", secret),
            ("Host URL", parts.hostname),
            ("Port", str(parts.port or DEFAULT_SMPP_PORT)),
            ("Sender ID", options.get("source")),
        ]
        return "SMPP", "SMPP", _rows(rows)
    return "LOG", "FILE", _rows([("Path", str(log_path_from_url(url)))])


def _rows(rows: list[tuple[str, str | None]]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in rows if value]
