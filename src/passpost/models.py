"""Import every domain's tables so that ``Base.metadata`` knows them all (Alembic, tests)."""

from passpost.audience.models import Recipient
from passpost.auth.models import ApiKey, LoginToken, Operator
from passpost.db import Base
from passpost.distribution.models import (
    Delivery,
    DistributionRequest,
    PassHolder,
    PassVersion,
    WalletPass,
)

__all__ = [
    "ApiKey",
    "Base",
    "Delivery",
    "DistributionRequest",
    "LoginToken",
    "Operator",
    "PassHolder",
    "PassVersion",
    "Recipient",
    "WalletPass",
]
