"""Run ``passpost serve`` (or ``worker``/``api``) as real processes for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.support.app import OPERATOR
from tests.support.net import free_port, wait_for_http


def base_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a passpost process under test: fast sweeps, short leases."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPOST_")}
    for keep in ("PASSPOST_SHARED", "PASSPOST_TEST_PG"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env.update(
        {
            "PASSPOST_DATA_DIR": str(data_dir),
            "PASSPOST_SWEEP_SECONDS": "0.5",
            "PASSPOST_RETRY_BASE_SECONDS": "0.2",
            "PASSPOST_RETRY_MAX_SECONDS": "2",
            "PASSPOST_LEASE_SECONDS": "5",
            "PASSPOST_WORKERS": "4",
        }
    )
    env.update(overrides)
    return env


def cli(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    """Run a ``passpost`` CLI command; return its stdout (fail the test on non-zero exit)."""
    result = subprocess.run(
        [sys.executable, "-m", "passpost.cli", *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"passpost {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
    return result.stdout


class Process:
    """A passpost process on a free port, stopped (or killed) on exit."""

    def __init__(
        self, env: Mapping[str, str], command: str = "serve", log: Path | None = None
    ) -> None:
        self.port = free_port()
        self.env = dict(env)
        self.env.setdefault("PASSPOST_PUBLIC_URL", f"http://127.0.0.1:{self.port}")
        self.command = command
        self.log_path = log or Path(self.env["PASSPOST_DATA_DIR"]) / f"{command}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "passpost.cli", self.command]
        if self.command in ("serve", "api"):
            args += ["--port", str(self.port)]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if self.command in ("serve", "api"):
            wait_for_http(self.url + "/health", timeout=60)
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (the crash test)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def client(url: str) -> httpx.Client:
    """An HTTP client authenticated as the test operator (Basic auth)."""
    return httpx.Client(base_url=url, auth=OPERATOR, timeout=60)


def import_pass(
    http: httpx.Client,
    pkpass: bytes,
    content: dict[str, Any],
    path: str = "/api/v1/message/pass/import",
) -> httpx.Response:
    """POST the import call exactly as ``curl -F pkPass=@file -F passContent=...`` does."""
    return http.post(
        path,
        files={"pkPass": ("pass.pkpass", pkpass, "application/vnd.apple.pkpass")},
        data={"passContent": json.dumps(content)},
    )


def email_content(
    recipients: list[dict[str, Any]],
    *,
    subject: str = "Pass Issued",
    priority: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A ``passContent`` sending e-mail only (the SMS template included but disabled)."""
    body = {
        "recipients": {"recipient": recipients},
        "passIntegrationConfig": {
            "passIssueNotificationDetails": [
                {
                    "channel": "SMS",
                    "messageContent": "Your pass: ##SMS Pass Link##",
                    "enabled": False,
                },
                {
                    "channel": "EMAIL",
                    "subject": subject,
                    "senderEmail": "tickets@example.com",
                    "senderName": "Test User",
                    "messageContent": (
                        "Hello ##First Name##, <a href='##Email Pass Link##'>click here</a>"
                    ),
                    "enabled": True,
                },
            ],
            "passUpdateNotificationDetails": [
                {
                    "channel": "EMAIL",
                    "subject": "Pass Update",
                    "messageContent": "Your pass changed: ##Email Pass Link##",
                    "enabled": True,
                }
            ],
        },
        "priority": priority,
        "startTimeStamp": 0,
        "endTimeStamp": 0,
    }
    body.update(extra)
    return body
