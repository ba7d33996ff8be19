"""``passpost operator`` and ``passpost apikey``: in-process (CliRunner) and as a real process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from passpost.auth import passwords, service
from passpost.auth.models import Operator
from passpost.cli import app
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.web.app import create_app
from tests.support.app import basic

runner = CliRunner()


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str) -> Iterator[str]:
    """The CLI's database (via PASSPOST_DATABASE_URL), SQLite and PostgreSQL."""
    monkeypatch.setenv("PASSPOST_DATABASE_URL", database_url)
    get_settings.cache_clear()
    passwords.clear_cache()
    yield database_url


def _can_log_in(url: str, username: str, password: str) -> bool:
    with session_scope(url) as session:
        operator = session.scalar(select(Operator).where(Operator.username == username))
        return operator is not None and service.verify_password(operator, password)


def test_operator_create_with_option(db: str) -> None:
    result = runner.invoke(
        app, ["operator", "create", "--username", "ann", "--password", "pw-12345"]
    )
    assert result.exit_code == 0, result.output
    assert "ann" in result.output
    assert _can_log_in(db, "ann", "pw-12345")


@pytest.mark.parametrize("args", [["--password", "-"], []])
def test_operator_create_password_from_stdin(db: str, args: list[str]) -> None:
    result = runner.invoke(
        app, ["operator", "create", "--username", "ben", *args], input="from stdin 123\n"
    )
    assert result.exit_code == 0, result.output
    assert _can_log_in(db, "ben", "from stdin 123")
    assert not _can_log_in(db, "ben", "from stdin 123\n")


def test_operator_errors_exit_1(db: str) -> None:
    ok = runner.invoke(app, ["operator", "create", "-u", "cat", "-p", "long enough"])
    assert ok.exit_code == 0
    again = runner.invoke(app, ["operator", "create", "-u", "cat", "-p", "long enough"])
    assert again.exit_code == 1 and "OPERATOR_EXISTS" in again.output
    weak = runner.invoke(app, ["operator", "create", "-u", "dan", "-p", "short"])
    assert weak.exit_code == 1 and "WEAK_PASSWORD" in weak.output


def test_operator_passwd(db: str) -> None:
    runner.invoke(app, ["operator", "create", "-u", "eve", "-p", "first password"])
    result = runner.invoke(app, ["operator", "passwd", "-u", "eve"], input="second password\n")
    assert result.exit_code == 0, result.output
    assert _can_log_in(db, "eve", "second password")
    assert not _can_log_in(db, "eve", "first password")
    missing = runner.invoke(app, ["operator", "passwd", "-u", "nobody", "-p", "whatever1"])
    assert missing.exit_code == 1 and "OPERATOR_NOT_FOUND" in missing.output


def test_apikey_create_list_revoke_against_the_api(db: str) -> None:
    created = runner.invoke(app, ["apikey", "create", "--name", "deploy"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("ppk_") and "\n" not in key
    with TestClient(create_app()) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/api/v1/audience", headers=headers).status_code == 200
        listed = runner.invoke(app, ["apikey", "list"])
        assert "deploy" in listed.stdout and "active" in listed.stdout
        assert key not in listed.stdout
        revoked = runner.invoke(app, ["apikey", "revoke", "--name", "deploy"])
        assert revoked.exit_code == 0, revoked.output
        assert client.get("/api/v1/audience", headers=headers).status_code == 401
        assert "revoked" in runner.invoke(app, ["apikey", "list"]).stdout
    assert runner.invoke(app, ["apikey", "revoke", "--name", "nope"]).exit_code == 1


@pytest.mark.slow
def test_real_process_reads_password_from_a_pipe(db: str) -> None:
    """The installed ``passpost`` script, with the password piped in (no tty)."""
    script = Path(sys.executable).with_name("passpost")
    env = {
        "PATH": str(script.parent),
        "PASSPOST_DATA_DIR": str(get_settings().data_dir),
        "PASSPOST_DATABASE_URL": db,
    }
    result = subprocess.run(
        [str(script), "operator", "create", "--username", "fay"],
        input="piped password\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with TestClient(create_app()) as client:
        response = client.get("/api/v1/audience", headers=basic("fay", "piped password"))
        assert response.status_code == 200
