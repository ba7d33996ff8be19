"""A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir) that a test may stop.

The shared server on 5432 must keep running for everyone; a test that needs PostgreSQL to
go away starts its own on a free port.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.net import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    """True when initdb and pg_ctl are installed (and, as root, a ``postgres`` user exists)."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


class Cluster:
    """initdb a cluster in a temp dir; ``start``/``stop`` it; ``url`` names database ``app``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="passpost-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        # initdb refuses to run as root: run the server tools as the postgres user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/app"

    def _run(self, *args: str, check: bool = True) -> None:
        subprocess.run([*self._as, *args], check=check, capture_output=True, timeout=120)

    def init(self) -> Cluster:
        initdb = _bin("initdb")
        assert initdb is not None
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        psql_createdb = _bin("createdb")
        assert psql_createdb is not None
        self._run(psql_createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "app")
        return self

    def start(self) -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl is not None
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "log")
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-w", "-l", log, "start")

    def stop(self, mode: str = "fast", *, check: bool = True) -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl is not None
        self._run(pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop", check=check)

    def destroy(self) -> None:
        self.stop("immediate", check=False)  # it may be stopped already
        shutil.rmtree(self.root, ignore_errors=True)
