"""The import call's path on the event loop: the credentials' reading transaction ends with
the check, and a pass validated lately is committed (SQLite) without a thread of the pool."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy.orm import Session

from passpost.auth import service as auth_service
from passpost.config import Settings
from passpost.db import begin_write, get_engine
from passpost.distribution import submit
from passpost.distribution.schemas import parse_pass_content
from tests.support.app import basic
from tests.support.passes import TestPki, signed_pass
from tests.support.service import email_content


def _authenticate(session: Session, **headers: str | None) -> str:
    principal = asyncio.run(
        auth_service.authenticate_async(
            session,
            authorization=headers.get("authorization"),
            voltmx_authorization=None,
        )
    )
    return principal.name


@pytest.mark.parametrize("writer", [False, True])
def test_a_reading_credentials_check_ends_its_transaction(settings: Settings, writer: bool) -> None:
    engine = get_engine(settings.resolved_database_url)
    with Session(engine) as session:
        _, key = auth_service.create_api_key(session, name="hops")
        session.commit()
    for header in (basic()["Authorization"], f"Bearer {key}"):
        with Session(engine, expire_on_commit=False) as session:
            if writer:
                begin_write(session)
            assert _authenticate(session, authorization=header)
            # A writer keeps its transaction (the route writes in it); a SQLite reader's is
            # over (on PostgreSQL any transaction may write: it is left to the route).
            kept = writer or engine.dialect.name == "postgresql"
            assert session.in_transaction() is kept
            session.rollback()


def test_a_pass_checked_lately_is_committed_without_a_thread(
    settings: Settings, pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = signed_pass(pki, serial="HOPS")
    raw = json.dumps(email_content([{"email": "ada@example.com"}]))
    engine = get_engine(settings.resolved_database_url)

    async def one() -> Any:
        with Session(engine, expire_on_commit=False) as session:
            return await submit.commit_import_async(
                session,
                settings=settings,
                upload=upload,
                content=parse_pass_content(raw),
                created_by="t",
            )

    assert asyncio.run(one()).version == 1  # validated in a thread, remembered
    if engine.dialect.name == "sqlite":

        def no_thread(*_: object, **__: object) -> None:
            raise AssertionError("the import took a thread of the pool")

        monkeypatch.setattr(submit.to_thread, "run_sync", no_thread)
    second = asyncio.run(one())
    assert (second.version, second.staged) == (2, False)
