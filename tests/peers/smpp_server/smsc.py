"""Start and steer the test SMSC (server.js, the npm ``smpp`` package) from Python."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent


def ensure_installed() -> None:
    """``npm ci`` the server's dependencies once (node_modules is not committed)."""
    if (HERE / "node_modules" / "smpp" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install the test SMPP server (server.js)")
    with open(HERE / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes install once
        if not (HERE / "node_modules" / "smpp" / "package.json").is_file():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE,
                check=True,
                timeout=300,
            )


class Smsc:
    """One server.js process; ``restart`` brings it back on the same ports."""

    def __init__(
        self,
        workdir: Path,
        *,
        rules: list[dict[str, Any]] | None = None,
        receipts: bool = True,
        record: bool = True,
        journal: bool = True,
        system_id: str | None = None,
        password: str | None = None,
    ) -> None:
        self.journal_path = workdir / "smsc-journal.jsonl"
        self.keep_journal = journal
        self.rules = rules or []
        self.receipts = receipts
        self.record = record
        self.system_id = system_id
        self.password = password
        self.port = 0
        self.admin_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Smsc:
        """Start the process and wait for its "listening" line."""
        ensure_installed()
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is needed for the test SMPP server")
        argv = [node, str(HERE / "server.js"), "--port", str(self.port)]
        argv += ["--admin-port", str(self.admin_port), "--rules", json.dumps(self.rules)]
        if self.keep_journal:
            argv += ["--journal", str(self.journal_path)]
        if self.system_id is not None:
            argv += ["--system-id", self.system_id]
        if self.password is not None:
            argv += ["--password", self.password]
        if not self.receipts:
            argv.append("--no-receipts")
        if not self.record:
            argv.append("--no-record")
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"SMPP server exited: {self.process.wait()}")
        ports = json.loads(line)
        self.port, self.admin_port = ports["smpp"], ports["admin"]
        return self

    def kill(self) -> None:
        """SIGKILL: the clients see the socket die, nothing is said."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """Terminate the process if it runs."""
        self._end(signal.SIGTERM)

    def restart(self) -> None:
        """Kill, then start again on the same ports (the journal keeps growing)."""
        self.kill()
        self.start()

    def _end(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, sig)
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def url(self, system_id: str = "passpost", password: str = "secret", **query: Any) -> str:
        """An ``smpp://`` URL for this server."""
        params = {"source": "Passpost", **query}
        return f"smpp://{system_id}:{password}@127.0.0.1:{self.port}?{urlencode(params)}"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the JSON admin API."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def messages(self) -> list[dict[str, Any]]:
        """The submits this process accepted."""
        return list(self.admin("GET", "/messages"))

    def journal(self) -> list[dict[str, Any]]:
        """Every submit accepted by any incarnation of the server (read from disk)."""
        if not self.journal_path.exists():
            return []
        lines = self.journal_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stats(self) -> dict[str, int]:
        """Counters: binds, submits, accepted, rejected, receipts, receiptAcks, sessions."""
        return dict(self.admin("GET", "/stats"))

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the outcome rules (see server.js)."""
        self.admin("POST", "/rules", rules)

    def drop_sessions(self) -> int:
        """Destroy every SMPP session; returns how many there were."""
        return int(self.admin("POST", "/drop", {})["dropped"])
