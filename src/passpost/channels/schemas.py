"""Wire shapes of ``/api/v1/mailconfig`` and ``/api/v1/smsconfig`` (the original API's fields)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MASK = "********"  # what GET shows for a stored secret; posting it back keeps the secret


class CustomProp(BaseModel):
    """A free-form mail setting (``configKey``/``configValue``)."""

    model_config = ConfigDict(extra="ignore")

    configKey: str  # the original API's spelling
    configValue: str | None = None


class MailConfigIn(BaseModel):
    """``POST /api/v1/mailconfig`` body."""

    model_config = ConfigDict(extra="ignore")

    protocol: str = "SMTP"
    host: str = Field(min_length=1, max_length=255)
    port: int
    defaultSenderId: str
    defaultSenderName: str | None = None  # ours: display name of the default sender
    securityMode: str = ""
    authRequired: bool = False
    authUser: str | None = None
    authPwd: str | None = None  # write-only
    unsubscribeAllowed: bool = False
    supportedAttachmentFileTypes: str | None = None
    maxSizeOfIndividualAttachmentInMB: float | None = None
    maxSizeOfAllAttachmentsInMB: float | None = None
    maxNumberOfAttachments: int | None = None
    customProps: list[CustomProp] = Field(default_factory=list)


class SmsProperty(BaseModel):
    """One ``{"key", "value"}`` entry of an SMS configuration."""

    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1, max_length=100)
    value: str | None = None


class SmsConfigIn(BaseModel):
    """``POST /api/v1/smsconfig`` body."""

    model_config = ConfigDict(extra="ignore")

    provider: str = Field(min_length=1, max_length=40)
    protocol: str | None = None
    inboundSecurityEnabled: bool = True
    inboundEnabled: bool = False
    properties: list[SmsProperty] = Field(default_factory=list)


class SavedResponse(BaseModel):
    """What a successful POST answers (the original's shape)."""

    id: str
    message: str
