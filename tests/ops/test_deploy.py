"""The deployment files: compose.yaml parses and describes the topology; the Caddy and nginx
examples pass their own validators (when installed); ``scripts/scale-out`` passes.

No Docker engine runs here, so the image and compose.yaml are not started: the YAML and its
commands are checked instead, and the script runs the same topology as local processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from passpost.cli import app
from tests.conftest import postgres_available

ROOT = Path(__file__).resolve().parents[2]
PASSPOST_SERVICES = ("api-1", "api-2", "worker-1", "worker-2")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_describes_the_scale_out_topology() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "caddy", *PASSPOST_SERVICES}
    envs = [services[name]["environment"] for name in PASSPOST_SERVICES]
    assert all(env == envs[0] for env in envs)  # one database, one queue, ONE secret key
    env = envs[0]
    assert env["PASSPOST_DATABASE_URL"].startswith("postgresql+psycopg://passpost:")
    assert "@postgres:5432/passpost" in env["PASSPOST_DATABASE_URL"]
    assert env["PASSPOST_QUEUE_URL"] == "redis://redis:6379/0"
    assert env["PASSPOST_SECRET_KEY"].startswith("${PASSPOST_SECRET_KEY:?")
    assert env["PASSPOST_PUBLIC_URL"] == "https://${PASSPOST_DOMAIN:?set PASSPOST_DOMAIN in .env}"
    for name in PASSPOST_SERVICES:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api-1", "api-2"):
        assert "/ready" in " ".join(services[name]["healthcheck"]["test"])
    caddy = services["caddy"]
    assert "443:443" in caddy["ports"]
    mounted = caddy["volumes"][0].split(":")[0]
    assert (ROOT / mounted).is_file()


def test_compose_commands_are_real_passpost_commands() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    services = _compose()["services"]
    for name in PASSPOST_SERVICES:
        command, *args = services[name]["command"]
        sub = commands[command]
        options = {opt for param in sub.params for opt in getattr(param, "opts", [])}
        given = {arg for arg in args if arg.startswith("--")}
        assert given <= options, (name, given - options)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["passpost"]' in dockerfile and "/ready" in dockerfile


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy not installed")
def test_caddyfile_is_valid(tmp_path: Path) -> None:
    # Upstreams on loopback: validating starts the health checker, which would look up names.
    text = (ROOT / "deploy" / "Caddyfile").read_text()
    local = tmp_path / "Caddyfile"
    local.write_text(text.replace("api-1:8080", "127.0.0.1:9").replace("api-2:8080", "127.0.0.1:9"))
    result = subprocess.run(
        ["caddy", "validate", "--adapter", "caddyfile", "--config", str(local)],
        env=dict(os.environ, PASSPOST_DOMAIN="passes.example.com", HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_config_is_valid(tmp_path: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
            "-subj",
            "/CN=passes.example.com",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace(
        "/etc/letsencrypt/live/passes.example.com/fullchain.pem", str(tmp_path / "cert.pem")
    )
    site = site.replace(
        "/etc/letsencrypt/live/passes.example.com/privkey.pem", str(tmp_path / "key.pem")
    )
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_scale_out_script_loses_nothing() -> None:
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "scale-out"), "--count", "10000"],
        capture_output=True,
        text=True,
        timeout=1400,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "FAIL" not in result.stdout
    assert "recipients 10000, reached 10000" in result.stdout
