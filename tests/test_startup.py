"""``serve``/``api``/``worker`` refuse bad configuration at start and make the data private."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from passpost.config import get_settings
from tests.support.service import Process, base_env

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run_cli(*args: str) -> tuple[int, str]:
    from passpost.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


BAD = [
    ("PASSPOST_SMTP_URL", "htp:/garbage"),
    ("PASSPOST_SMTP_URL", "smtp://"),
    ("PASSPOST_SMS_URL", "smpp://id:longer-than-8@smsc.example:2775"),
    ("PASSPOST_SMS_URL", "smpp://a-system-id-of-20-chars:pw@smsc.example"),
    ("PASSPOST_SMS_URL", "carrierpigeon://x"),
    ("PASSPOST_APNS_KEY_FILE", "/nonexistent/AuthKey.p8"),
    ("PASSPOST_TRUST_ANCHORS", "/nonexistent/roots.pem"),
    ("PASSPOST_PUBLIC_URL", "passes.example.com"),
    ("PASSPOST_QUEUE_URL", "amqp://rabbit/"),
    ("PASSPOST_SECRET_KEY", "not-a-fernet-key"),
    ("PASSPOST_WORKERS", "four"),
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_bad_configuration_is_one_line_naming_the_variable_and_exit_2(
    settings_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    code, output = _run_cli("worker")
    assert code == 2, output
    errors = [line for line in output.splitlines() if "configuration error" in line]
    assert len(errors) == 1 and variable in errors[0], output
    assert "Traceback" not in output


def test_an_unreadable_key_file_is_refused(
    settings_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "AuthKey.p8"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("PASSPOST_APNS_KEY_FILE", str(key))
    get_settings.cache_clear()
    code, output = _run_cli("api")
    assert code == 2 and "PASSPOST_APNS_KEY_FILE" in output, output


def _store_a_secret(settings_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from passpost.channels import service
    from passpost.channels.schemas import SmsConfigIn
    from passpost.db import migrate, session_scope

    monkeypatch.setenv("PASSPOST_SECRET_KEY", KEY_A)
    get_settings.cache_clear()
    url = get_settings().resolved_database_url
    migrate(url)
    config = {
        "provider": "TWILIO",
        "properties": [
            {"key": "Account SID", "value": "AC1"},
            {"key": "Auth Token", "value": "tok-123"},
            {"key": "From", "value": "+14155550000"},
        ],
    }
    with session_scope(url) as session:
        service.save_sms_config(
            session, data=SmsConfigIn.model_validate(config), data_dir=settings_env
        )


def test_a_secret_key_that_cannot_read_the_stored_secrets_stops_the_process(
    settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from passpost import startup

    _store_a_secret(settings_env, monkeypatch)
    startup.prepare(get_settings())  # the same key: fine
    monkeypatch.setenv("PASSPOST_SECRET_KEY", KEY_B)
    get_settings.cache_clear()
    code, output = _run_cli("worker")
    assert code == 2, output
    assert "PASSPOST_SECRET_KEY" in output and "same PASSPOST_SECRET_KEY" in output


def test_existing_installs_are_made_private_at_start(settings_env: Path) -> None:
    from passpost import startup

    settings_env.mkdir(parents=True)
    settings_env.chmod(0o755)
    files = [settings_env / name for name in ("passpost.db", "queue.db", "secret.key")]
    for path in files:
        path.write_bytes(KEY_A.encode() if path.name == "secret.key" else b"")
        path.chmod(0o644)
    startup.prepare(get_settings())
    assert _mode(settings_env) == 0o700
    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}


@pytest.mark.slow
def test_processes_refuse_bad_configuration_and_a_foreign_key(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", PASSPOST_SECRET_KEY=KEY_A)
    with Process(env, command="serve") as server:
        # A fresh install: everything it wrote is private to its user.
        data = tmp_path / "data"
        assert _mode(data) == 0o700
        modes = {path.name: _mode(path) for path in data.iterdir() if path.is_file()}
        assert modes and set(modes.values()) == {0o600}, modes
        # Store an encrypted secret through the API.
        import httpx

        from tests.support.service import OPERATOR, cli

        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        saved = httpx.post(
            f"{server.url}/api/v1/mailconfig",
            auth=OPERATOR,
            json={
                "protocol": "SMTP",
                "host": "127.0.0.1",
                "port": 2525,
                "defaultSenderId": "a@example.com",
                "authRequired": True,
                "authUser": "u",
                "authPwd": "secret-pw",
            },
        )
        assert saved.status_code == 200, saved.text
    cases = [
        ("worker", {"PASSPOST_SECRET_KEY": KEY_B}, "same PASSPOST_SECRET_KEY"),
        ("api", {"PASSPOST_SMTP_URL": "htp:/garbage"}, "PASSPOST_SMTP_URL"),
        ("serve", {"PASSPOST_SMS_URL": "smpp://id:123456789@smsc"}, "PASSPOST_SMS_URL"),
    ]
    for command, extra, expected in cases:
        result = subprocess.run(
            [sys.executable, "-m", "passpost.cli", command],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if "configuration error" in line]
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "Traceback" not in result.stderr + result.stdout
