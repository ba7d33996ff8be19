"""Test passes stored the way an import stores them: WalletPass + PassVersion + update."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from passpost import ids
from passpost.db import session_scope, utcnow
from passpost.passes.models import PassVersion, WalletPass
from passpost.passkit.service import announce_update
from tests.support.passes import PASS_TYPE_ID, TestPki, signed_pass

WEB_SERVICE_URL = "http://testserver/api"


def apple(token: str) -> dict[str, str]:
    """The ``Authorization: ApplePass`` header a device sends."""
    return {"Authorization": f"ApplePass {token}"}


@dataclass
class PassStore:
    """Puts signed test passes into a database as new versions (one transaction each)."""

    database_url: str
    pki: TestPki
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, serial: str) -> str:
        """The authenticationToken of a serial (made on first use, then stable)."""
        return self.tokens.setdefault(serial, secrets.token_urlsafe(32))

    def issue(self, serial: str, *, pass_type: str = PASS_TYPE_ID, **fields: Any) -> bytes:
        """Store a new version of ``serial`` (the first one creates the pass); its bytes."""
        token = self.token(serial)
        content = signed_pass(
            self.pki,
            serial=serial,
            pass_type_id=pass_type,
            webServiceURL=WEB_SERVICE_URL,
            authenticationToken=token,
            description=fields.pop("description", f"v{secrets.token_hex(4)}"),
            **fields,
        )
        with session_scope(self.database_url) as session:
            add_version(session, pass_type=pass_type, serial=serial, token=token, content=content)
        return content


def add_version(
    session: Any, *, pass_type: str, serial: str, token: str | None, content: bytes
) -> tuple[WalletPass, PassVersion]:
    """What the import does for passkit: the pass row, a new version, announce_update."""
    now = utcnow()
    wallet_pass = session.scalars(
        select(WalletPass).where(
            WalletPass.pass_type_identifier == pass_type, WalletPass.serial_number == serial
        )
    ).one_or_none()
    if wallet_pass is None:
        wallet_pass = WalletPass(
            id=ids.new_id(),
            pass_type_identifier=pass_type,
            serial_number=serial,
            team_identifier="TEAM123456",
            authentication_token=token,
            updatable=True,
            created_at=now,
        )
        session.add(wallet_pass)
        session.flush()
    latest = session.scalar(
        select(func.max(PassVersion.version)).where(PassVersion.pass_id == wallet_pass.id)
    )
    version = PassVersion(
        id=ids.new_id(),
        pass_id=wallet_pass.id,
        version=(latest or 0) + 1,
        content=content,
        pass_json=json.dumps({"serialNumber": serial}),
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        created_at=now,
    )
    session.add(version)
    session.flush()
    wallet_pass.latest_version_id = version.id
    announce_update(session, wallet_pass=wallet_pass, version=version)
    return wallet_pass, version
