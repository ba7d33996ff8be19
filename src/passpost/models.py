"""Import every domain's tables so that ``Base.metadata`` knows them all (Alembic, tests)."""

from passpost.audience.models import Recipient
from passpost.auth.models import ApiKey, LoginToken, Operator
from passpost.certs.models import PassCertificate, WwdrCertificate
from passpost.channels.models import ChannelConfig
from passpost.db import Base
from passpost.distribution.models import (
    Delivery,
    DistributionRequest,
    EarlyReceipt,
    PassChangeJob,
    PassHolder,
    RequestTally,
    RequestTallyDelta,
)
from passpost.passes.models import PassUpdate, PassVersion, UpdateClock, WalletPass
from passpost.passkit.models import DeviceLog, InstallEvent, PassPush, Registration
from passpost.templates.models import PassTemplate, PassTemplateImage

__all__ = [
    "ApiKey",
    "Base",
    "ChannelConfig",
    "Delivery",
    "DeviceLog",
    "DistributionRequest",
    "EarlyReceipt",
    "InstallEvent",
    "LoginToken",
    "Operator",
    "PassCertificate",
    "PassChangeJob",
    "PassHolder",
    "PassPush",
    "PassTemplate",
    "PassTemplateImage",
    "PassUpdate",
    "PassVersion",
    "Recipient",
    "Registration",
    "RequestTally",
    "RequestTallyDelta",
    "UpdateClock",
    "WalletPass",
    "WwdrCertificate",
]
