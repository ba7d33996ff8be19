"""The wire shapes of the import call (SPEC §1), parsed leniently as the original API's clients
send them (numbers as strings, unknown keys kept out of the way)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from passpost import jsontext
from passpost.audience.validation import normalize_email
from passpost.distribution.models import Channel
from passpost.errors import BadRequest

# Values below this are epoch seconds (SPEC §1: the original documents both units).
_SECONDS_CUTOFF = 100_000_000_000
# 2100-01-01T00:00:00Z: later is a mistake (and year 10000 is not a datetime at all).
MAX_EPOCH_SECONDS = 4_102_444_800


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RecipientRef(_Lenient):
    id: str | None = None
    email: str | None = None
    mobile_number: str | None = Field(default=None, alias="mobileNumber")
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    # Values of a template's placeholders for this recipient (SPEC §11): ``##seat##``.
    fields: dict[str, str | int | float | bool] | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Recipients(_Lenient):
    recipient: list[RecipientRef] = Field(default_factory=list)


class Notification(_Lenient):
    channel: str
    message_content: str = Field(default="", alias="messageContent")
    subject: str | None = None
    sender_email: str | None = Field(default=None, alias="senderEmail")
    sender_name: str | None = Field(default=None, alias="senderName")
    enabled: bool = True

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        upper = value.strip().upper()
        if upper not in Channel.ALL:
            raise ValueError(f"unknown channel {value!r} (expected SMS or EMAIL)")
        return upper


class IntegrationConfig(_Lenient):
    issue: list[Notification] = Field(default_factory=list, alias="passIssueNotificationDetails")
    update: list[Notification] = Field(default_factory=list, alias="passUpdateNotificationDetails")

    def enabled(self, kind: str) -> dict[str, Notification]:
        """The enabled notifications of a kind ("issue"/"update"), by channel."""
        return {n.channel: n for n in (self.issue if kind == "issue" else self.update) if n.enabled}


class PassContent(_Lenient):
    recipients: Recipients = Field(default_factory=Recipients)
    integration: IntegrationConfig = Field(
        default_factory=IntegrationConfig, alias="passIntegrationConfig"
    )
    priority: bool = False
    # One pass per recipient even without placeholders (SPEC §11).
    personalize: bool = False
    start_timestamp: int = Field(default=0, alias="startTimeStamp")
    end_timestamp: int = Field(default=0, alias="endTimeStamp")
    # A list too large to read into ``recipients`` (``recipient_list``): checked, in chunks.
    _staged: Any = PrivateAttr(default=None)

    @property
    def staged_recipients(self) -> Any:
        """The checked ``recipient_list.RecipientList`` of a large list, else None."""
        return self._staged

    @field_validator("start_timestamp", "end_timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        if value is None or value == "":
            return 0
        digits = value.strip().lstrip("-") if isinstance(value, str) else ""
        if digits.isascii() and digits.isdigit():
            return int(value.strip())
        return value

    @property
    def start_at(self) -> datetime | None:
        return _to_datetime(self.start_timestamp)

    @property
    def end_at(self) -> datetime | None:
        return _to_datetime(self.end_timestamp)


def _epoch_seconds(value: int) -> float:
    return value if value < _SECONDS_CUTOFF else value / 1000


def _to_datetime(value: int) -> datetime | None:
    if value <= 0:
        return None
    return datetime.fromtimestamp(_epoch_seconds(value), UTC)


def parse_pass_content(raw: str | bytes) -> PassContent:
    """Parse and check ``passContent``; every problem is a 400 with a stable errorCode.

    A list of more than ``recipient_list.INLINE_MAX`` recipients is checked and kept in
    chunks as sent (``content.staged_recipients``) instead of read into models.
    """
    from passpost.distribution import recipient_list

    split = recipient_list.split_content(raw)
    if split is None:
        return _parse(raw)
    rest, entries = split
    staged, missing = recipient_list.check_entries(entries)
    return _parse(rest, staged=staged, missing=missing)


def _parse(
    raw: str | bytes, *, staged: Any = None, missing: BadRequest | None = None
) -> PassContent:
    data = jsontext.loads(raw, what="passContent", error_code="INVALID_PASS_CONTENT_JSON")
    if not isinstance(data, dict):
        raise BadRequest("passContent must be a JSON object.", error_code="INVALID_PASS_CONTENT")
    try:
        content = PassContent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        code = "UNKNOWN_CHANNEL" if "unknown channel" in first["msg"] else "INVALID_PASS_CONTENT"
        message = first["msg"].removeprefix("Value error, ")
        raise BadRequest(f"passContent.{where}: {message}.", error_code=code) from exc
    if missing is not None:
        raise missing
    content._staged = staged
    _check(content)
    return content


def _check(content: PassContent) -> None:
    if not content.recipients.recipient and content.staged_recipients is None:
        raise BadRequest("passContent has no recipients.", error_code="NO_RECIPIENTS")
    for index, ref in enumerate(content.recipients.recipient):
        if not (ref.id or ref.email or ref.mobile_number):
            raise BadRequest(
                f"Recipient {index} has neither an id nor an email or mobileNumber.",
                error_code="INVALID_RECIPIENT",
            )
    for name, value in (
        ("startTimeStamp", content.start_timestamp),
        ("endTimeStamp", content.end_timestamp),
    ):
        if value < 0 or _epoch_seconds(value) > MAX_EPOCH_SECONDS:
            raise BadRequest(
                f"{name} must be epoch milliseconds (or seconds) between 0 and the year 2100.",
                error_code="INVALID_TIMESTAMP",
            )
    _check_senders(content.integration)
    start, end = content.start_at, content.end_at
    if start and end and end < start:
        raise BadRequest(
            "endTimeStamp is earlier than startTimeStamp.", error_code="INVALID_TIME_WINDOW"
        )


def check_content(content: PassContent) -> PassContent:
    """The import call's checks, for a ``passContent`` built in code (CLI, console)."""
    _check(content)
    return content


def _check_senders(integration: IntegrationConfig) -> None:
    """A bad ``senderEmail`` is refused now: every delivery would be rejected later."""
    for kind, notifications in (("Issue", integration.issue), ("Update", integration.update)):
        for index, notification in enumerate(notifications):
            sender = (notification.sender_email or "").strip()
            if notification.channel != Channel.EMAIL or not sender:
                continue
            try:
                normalize_email(sender)
            except BadRequest as exc:
                raise BadRequest(
                    f"passIntegrationConfig.pass{kind}NotificationDetails.{index}.senderEmail: "
                    f"{sender[:100]!r} is not a valid e-mail address.",
                    error_code="INVALID_SENDER_EMAIL",
                ) from exc


# -- the import call's body in the OpenAPI document (the route reads the multipart itself) --

_EXAMPLE_CONTENT = {
    "recipients": {"recipient": [{"id": "1"}, {"email": "ada@example.com", "firstName": "Ada"}]},
    "passIntegrationConfig": {
        "passIssueNotificationDetails": [
            {"channel": "SMS", "messageContent": "Your pass: ##SMS Pass Link##", "enabled": True},
            {
                "channel": "EMAIL",
                "subject": "Pass Issued",
                "senderEmail": "tickets@example.com",
                "senderName": "Tickets",
                "messageContent": "Hello ##First Name##: <a href='##Email Pass Link##'>pass</a>",
                "enabled": True,
            },
        ],
        "passUpdateNotificationDetails": [],
    },
    "priority": False,
    "startTimeStamp": 0,
    "endTimeStamp": 0,
}

IMPORT_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["pkPass", "passContent"],
                "properties": {
                    "pkPass": {
                        "type": "string",
                        "format": "binary",
                        "description": "The signed .pkpass file.",
                    },
                    "passContent": {
                        "type": "string",
                        "description": "JSON: recipients, passIntegrationConfig (message "
                        "templates per channel), priority, startTimeStamp, endTimeStamp "
                        "(epoch seconds or milliseconds). A part or a file part.",
                        "example": json.dumps(_EXAMPLE_CONTENT),
                    },
                },
            },
            "encoding": {"passContent": {"contentType": "application/json, text/plain"}},
        }
    },
}
