"""A ``passContent`` from simple inputs: recipients and one message per channel.

``passpost send`` and the console's Send page build their requests here, then create them
through ``submit.commit_import``: the import call's path, with the import call's checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passpost.audience.models import Recipient
from passpost.audience.validation import clean_fields
from passpost.distribution.models import Channel
from passpost.distribution.schemas import (
    IntegrationConfig,
    Notification,
    PassContent,
    RecipientRef,
    Recipients,
    check_content,
)

DEFAULT_SUBJECT = "Your pass"
DEFAULT_EMAIL_BODY = (
    "Hello ##First Name##,<br>\nyour pass is ready: "
    "<a href='##Email Pass Link##'>add it to Apple Wallet</a>."
)
DEFAULT_SMS = "Your pass: ##SMS Pass Link##"


@dataclass(frozen=True)
class Messages:
    """The message of each enabled channel (``None``: the channel is not used)."""

    email_subject: str | None = None
    email_body: str | None = None
    sms_text: str | None = None

    @classmethod
    def choose(
        cls, *, email_subject: str | None, email_body: str | None, sms_text: str | None
    ) -> Messages:
        """Nothing given: both channels with the defaults; else only the channels named."""
        if email_subject is None and email_body is None and sms_text is None:
            return cls(DEFAULT_SUBJECT, DEFAULT_EMAIL_BODY, DEFAULT_SMS)
        if email_subject is None and email_body is None:
            return cls(sms_text=sms_text)
        return cls(email_subject or DEFAULT_SUBJECT, email_body or DEFAULT_EMAIL_BODY, sms_text)

    def notifications(
        self, *, sender_email: str | None = None, sender_name: str | None = None
    ) -> list[Notification]:
        """One notification per channel, disabled when the channel is not used."""
        return [
            Notification(
                channel=Channel.EMAIL,
                subject=self.email_subject,
                messageContent=self.email_body or "",
                senderEmail=sender_email,
                senderName=sender_name,
                enabled=self.email_body is not None,
            ),
            Notification(
                channel=Channel.SMS,
                messageContent=self.sms_text or "",
                enabled=self.sms_text is not None,
            ),
        ]


def address_ref(address: str, *, region: str) -> RecipientRef:
    """An e-mail address or a mobile number, checked and normalised (400 when invalid)."""
    key = "email" if "@" in address else "mobile_number"
    fields = clean_fields({key: address}, region=region)
    return contact_ref(fields)


def contact_ref(fields: Mapping[str, Any]) -> RecipientRef:
    """A recipient given by its contact fields (matched in or added to the audience)."""
    return RecipientRef(
        email=fields.get("email"),
        mobileNumber=fields.get("mobile_number"),
        firstName=fields.get("first_name"),
        lastName=fields.get("last_name"),
    )


def audience_refs(session: Session) -> list[RecipientRef]:
    """Everyone in the audience, by id."""
    ids = session.scalars(select(Recipient.id).order_by(Recipient.id))
    return [RecipientRef(id=str(recipient_id)) for recipient_id in ids]


def compose(
    recipients: Iterable[RecipientRef],
    messages: Messages,
    *,
    sender_email: str | None = None,
    sender_name: str | None = None,
    priority: bool = False,
) -> PassContent:
    """The ``passContent``: the same messages for new holders (issue) and earlier ones (update)."""
    notifications = messages.notifications(sender_email=sender_email, sender_name=sender_name)
    content = PassContent(
        recipients=Recipients(recipient=list(recipients)),
        passIntegrationConfig=IntegrationConfig(
            passIssueNotificationDetails=notifications,
            passUpdateNotificationDetails=[n.model_copy() for n in notifications],
        ),
        priority=priority,
    )
    return check_content(content)
