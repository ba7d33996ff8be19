"""P3: PassKit Web Service requests/s — passpost vs django-walletpass, same data, same machine.

passpost runs under uvicorn, django-walletpass (from PyPI, in its own virtualenv, created
on first use) under gunicorn; both on SQLite with the same passes (same bytes), the same
device registrations and the same number of worker processes. ``wrk`` generates the load.
Three calls: the latest pass (200), the latest pass with If-Modified-Since (304), and the
serials of a device updated since a tag. Before measuring, each answer is checked once and
what it returned is printed (django-walletpass answers serials-since with only the newest
serials, and reads the pass file even for its 304: both are SPEC §8 traps). The ceiling is
a bare Starlette app on uvicorn answering the same three URLs from memory (the same pass
bytes, passpost's own serials-since body): what the HTTP stack alone serves here.

Nothing is written to passpost's database while wrk runs, so after each call's first
answer passpost answers from its memo (``passkit.polls.AnswerMemo``, kept until anything
is committed); what a poll costs on a database that keeps changing is in the README
("Speed: the polled PassKit calls").

Usage: python bench/passkit.py [--passes 1000] [--registered 50] [--pass-kb 40]
                               [--duration 10] [--connections 16] [--workers 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import env_without_passpost
from tests.support.net import free_port, wait_for_http
from tests.support.passes import PASS_TYPE_ID, make_pki, pass_json

PEER_VENV = Path(os.environ.get("BENCH_WALLETPASS_VENV", "/tmp/bench-venv-walletpass"))
PEER_PACKAGES = ["django-walletpass==5.0.1", "gunicorn==27.0.1"]
DEVICE = "benchdevice0123456789abcdef"
PUSH_TOKEN = "ab" * 32


@dataclass
class Target:
    """One server under test and what its calls need (token, tag, Last-Modified)."""

    name: str
    base: str
    token: str
    tag: str
    last_modified: str = ""


# -- data --------------------------------------------------------------------------------


def make_content(kb: int) -> bytes:
    """One signed pass of about ``kb`` KiB (an incompressible strip image pads it)."""
    from passpost.pkpass import sign

    pki = make_pki()
    files = {
        "pass.json": json.dumps(pass_json(serial="bench")).encode(),
        "icon.png": secrets.token_bytes(2048),
        "strip.png": secrets.token_bytes(max(1, kb - 3) * 1024),
    }
    return sign(
        files, certificate=pki.leaf, private_key=pki.leaf_key, intermediates=[pki.intermediate]
    )


def seed_passpost(url: str, content: bytes, passes: int, registered: int, token: str) -> str:
    """Passes, one device registered for the first ``registered``, which are then updated.

    Returns the tag the device held before those updates.
    """
    from sqlalchemy import select

    from passpost import ids
    from passpost.db import migrate, session_scope, utcnow
    from passpost.passes.models import PassVersion, UpdateClock, WalletPass
    from passpost.passkit.models import Registration
    from passpost.passkit.service import announce_update

    migrate(url)
    digest = hashlib.sha256(content).hexdigest()

    def add_version(session, wallet_pass: WalletPass, number: int) -> None:  # type: ignore[no-untyped-def]
        version = PassVersion(
            id=ids.new_id(),
            pass_id=wallet_pass.id,
            version=number,
            content=content,
            pass_json="{}",
            sha256=digest,
            size=len(content),
            created_at=utcnow(),
        )
        session.add(version)
        session.flush()
        wallet_pass.latest_version_id = version.id
        announce_update(session, wallet_pass=wallet_pass, version=version)

    with session_scope(url) as session:
        for n in range(passes):
            wallet_pass = WalletPass(
                id=ids.new_id(),
                pass_type_identifier=PASS_TYPE_ID,
                serial_number=f"S{n:06d}",
                team_identifier="TEAM123456",
                authentication_token=token,
                updatable=True,
                created_at=utcnow(),
            )
            session.add(wallet_pass)
            session.flush()
            add_version(session, wallet_pass, 1)
            if n < registered:
                session.add(
                    Registration(
                        device_library_identifier=DEVICE,
                        pass_id=wallet_pass.id,
                        push_token=PUSH_TOKEN,
                    )
                )
    with session_scope(url) as session:
        tag = session.scalar(select(UpdateClock.value))
        registered_passes = session.scalars(
            select(WalletPass).where(WalletPass.serial_number < f"S{registered:06d}")
        )
        for wallet_pass in registered_passes:
            add_version(session, wallet_pass, 2)
    return str(tag)


DJANGO_SETTINGS = """
from pathlib import Path
HERE = Path(__file__).resolve().parent
SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "django_walletpass",
]
MIDDLEWARE = []
ROOT_URLCONF = "benchurls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(HERE / "db.sqlite3")}}
MEDIA_ROOT = str(HERE / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WALLETPASS = {"PASS_TYPE_ID": "%(pass_type)s", "TEAM_ID": "TEAM123456",
              "SERVICE_URL": "http://127.0.0.1/api/"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": True}
"""

DJANGO_URLS = """
from django.urls import include, path
urlpatterns = [path("api/", include("django_walletpass.urls"))]
"""

DJANGO_WSGI = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsettings")
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
"""

DJANGO_SEED = """
import json, os, sys, time
from datetime import datetime, timezone
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsettings")
import django
django.setup()
from django.core.files.base import ContentFile
from django.core.management import call_command
from django_walletpass.models import Pass, Registration
call_command("migrate", verbosity=0)
content = open(sys.argv[1], "rb").read()
passes, registered, token = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for n in range(passes):
    p = Pass(pass_type_identifier="%(pass_type)s", serial_number=f"S{n:06d}",
             authentication_token=token)
    p.data.save(f"S{n:06d}.pkpass", ContentFile(content), save=True)
    if n < registered:
        Registration.objects.create(device_library_identifier="%(device)s",
                                    push_token="%(push_token)s", pazz=p)
time.sleep(0.01)
tag = datetime.now(timezone.utc).isoformat()
time.sleep(0.01)
# QuerySet.update: save() would push to APNs synchronously (post_save signal) and fail here.
from django.utils import timezone
for p in Pass.objects.filter(serial_number__lt=f"S{registered:06d}"):
    Pass.objects.filter(pk=p.pk).update(updated_at=timezone.now())
print(json.dumps({"tag": tag}))
"""


def ensure_peer_venv() -> Path:
    """The virtualenv with django-walletpass and gunicorn (made and filled if missing)."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import django_walletpass, gunicorn, rest_framework"],
        capture_output=True,
    )
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return PEER_VENV


def seed_walletpass(
    project: Path, content_file: Path, passes: int, registered: int, token: str
) -> str:
    """The same data in django-walletpass; returns the tag before the updates."""
    values = {"pass_type": PASS_TYPE_ID, "device": DEVICE, "push_token": PUSH_TOKEN}
    project.mkdir(parents=True, exist_ok=True)
    (project / "benchsettings.py").write_text(DJANGO_SETTINGS % values)
    (project / "benchurls.py").write_text(DJANGO_URLS)
    (project / "benchwsgi.py").write_text(DJANGO_WSGI)
    (project / "seed.py").write_text(DJANGO_SEED % values)
    done = subprocess.run(
        [
            str(PEER_VENV / "bin" / "python"),
            "seed.py",
            str(content_file),
            str(passes),
            str(registered),
            token,
        ],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(done.stdout.strip().splitlines()[-1])["tag"])


# -- servers and load --------------------------------------------------------------------


def start_passpost(url: str, data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **env_without_passpost(),
        "PASSPOST_DATABASE_URL": url,
        "PASSPOST_DATA_DIR": str(data_dir),
        # Every simulated device comes from 127.0.0.1: a rate this high keeps the limiter's
        # per-request cost in the measurement without refusing the load.
        "PASSPOST_RATE_LIMIT_PASSKIT": "100000000/minute",
    }
    command = [
        sys.executable, "-m", "uvicorn", "passpost.web.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)


def start_walletpass(
    project: Path, port: int, workers: int, threads: int
) -> subprocess.Popen[bytes]:
    command = [
        str(PEER_VENV / "bin" / "gunicorn"), "benchwsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=project, env=env_without_passpost())


BARE_SERVER = """
import json, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

content = open(sys.argv[2], "rb").read()
serials = json.dumps(json.loads(sys.argv[3])).encode()
LAST_MODIFIED = "Fri, 27 Nov 2026 08:00:00 GMT"

async def latest(request):
    if request.headers.get("if-modified-since") == LAST_MODIFIED:
        return Response(status_code=304)
    return Response(content, media_type="application/vnd.apple.pkpass",
                    headers={"Last-Modified": LAST_MODIFIED})

async def since(request):
    return Response(serials, media_type="application/json")

app = Starlette(routes=[
    Route("/api/v1/passes/{type}/{serial}", latest),
    Route("/api/v1/devices/{device}/registrations/{type}", since),
])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start_bare(
    port: int, content_file: Path, serials: dict[str, object]
) -> subprocess.Popen[bytes]:
    """The ceiling: a bare Starlette app on uvicorn serving the same bytes from memory."""
    return subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(port), str(content_file), json.dumps(serials)]
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def calls(target: Target) -> dict[str, tuple[str, dict[str, str]]]:
    auth = {"Authorization": f"ApplePass {target.token}"}
    latest = f"{target.base}/api/v1/passes/{PASS_TYPE_ID}/S000000"
    since = f"{target.base}/api/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}"
    return {
        "latest pass (200)": (latest, auth),
        "latest pass (304)": (latest, {**auth, "If-Modified-Since": target.last_modified}),
        "serials since a tag": (f"{since}?passesUpdatedSince={quote(target.tag, safe='')}", {}),
    }


def probe(target: Target) -> dict[str, str]:
    """Each call once: what it answers (and the Last-Modified the 304 call needs)."""
    auth = {"Authorization": f"ApplePass {target.token}"}
    first = httpx.get(f"{target.base}/api/v1/passes/{PASS_TYPE_ID}/S000000", headers=auth)
    target.last_modified = first.headers.get("last-modified", "")
    notes: dict[str, str] = {}
    for name, (url, headers) in calls(target).items():
        response = httpx.get(url, headers=headers)
        note = f"{response.status_code}"
        if response.status_code == 200 and "serials" in name:
            body = response.json()
            note += f", {len(body['serialNumbers'])} serials, lastUpdated={body['lastUpdated']!r}"
        elif response.status_code == 200:
            note += f", {len(response.content)} bytes"
        notes[name] = note
    return notes


def wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> tuple[float, str]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    problems = []
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: (.*)"):
        found = re.search(pattern, output)
        if found:
            problems.append(found.group(0))
    p99 = re.search(r"99%\s+(\S+)", output)
    return rate, ("; ".join(problems) or "ok") + (f", p99 {p99.group(1)}" if p99 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--passes", type=int, default=1000)
    parser.add_argument("--registered", type=int, default=50)
    parser.add_argument("--pass-kb", type=int, default=40)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    ensure_peer_venv()

    work = Path(tempfile.mkdtemp(prefix="passpost-bench-passkit-"))
    token = secrets.token_urlsafe(32)
    content = make_content(args.pass_kb)
    content_file = work / "pass.pkpass"
    content_file.write_bytes(content)
    print(f"data: {args.passes} passes of {len(content)} bytes, one device registered for "
          f"{args.registered} of them, all {args.registered} updated after the tag")  # fmt: skip
    db_url = f"sqlite:///{work / 'passpost.db'}"
    started = time.perf_counter()
    passpost_tag = seed_passpost(db_url, content, args.passes, args.registered, token)
    peer_tag = seed_walletpass(
        work / "walletpass", content_file, args.passes, args.registered, token
    )
    print(f"seeded both in {time.perf_counter() - started:.1f}s")

    ports = free_port(), free_port(), free_port()
    servers = [
        start_passpost(db_url, work / "data", ports[0], args.workers),
        start_walletpass(work / "walletpass", ports[1], args.workers, args.threads),
    ]
    targets = [
        Target("passpost", f"http://127.0.0.1:{ports[0]}", token, passpost_tag),
        Target("django-walletpass", f"http://127.0.0.1:{ports[1]}", token, peer_tag),
    ]
    try:
        for target in targets:
            wait_for_http(f"{target.base}/api/v1/passes/x/y", timeout=60)
        answers = {}
        for target in targets:
            print(f"\n{target.name}: what each call answers")
            for name, note in probe(target).items():
                print(f"  {name:<22} {note}")
            if target.name == "passpost":
                since = calls(target)["serials since a tag"]
                answers = httpx.get(since[0], headers=since[1]).json()
        # The ceiling answers passpost's own serials-since body, and the same pass bytes.
        servers.append(start_bare(ports[2], content_file, answers))
        bare = Target("bare Starlette", f"http://127.0.0.1:{ports[2]}", token, passpost_tag)
        wait_for_http(f"{bare.base}/api/v1/passes/x/y", timeout=60)
        probe(bare)
        targets.append(bare)
        print(
            f"\nwrk: 2 threads, {args.connections} connections, {args.duration}s per call; "
            f"{args.workers} worker process(es) each (gunicorn: {args.threads} threads)"
        )
        # Rounds alternate between the servers (and the ceiling) so that load from other
        # processes on this machine hits both alike; the median round counts.
        rates: dict[str, dict[str, list[float]]] = {t.name: {} for t in targets}
        for target in targets:
            for url, headers in calls(target).values():
                wrk(url, headers, 1, args.connections)  # warm-up
        for round_number in range(1, args.rounds + 1):
            for name in calls(targets[0]):
                for target in targets:
                    url, headers = calls(target)[name]
                    rate, status = wrk(url, headers, args.duration, args.connections)
                    rates[target.name].setdefault(name, []).append(rate)
                    print(
                        f"  round {round_number} {target.name:<18} {name:<22} "
                        f"{rate:9.1f} req/s  ({status})"
                    )
        results = {
            target: {name: statistics.median(values) for name, values in per_call.items()}
            for target, per_call in rates.items()
        }
    finally:
        for server in servers:
            stop(server)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedian of {args.rounds} rounds (goal: >= 5x the peer, >= 0.3 of the bare server)")
    print(
        f"  {'call':<22} {'passpost':>10} {'walletpass':>11} {'bare':>9} {'vs peer':>8} {'of bare':>8}"
    )
    for name in results["passpost"]:
        ours, theirs = results["passpost"][name], results["django-walletpass"][name]
        bare_rate = results["bare Starlette"][name]
        print(
            f"  {name:<22} {ours:10.1f} {theirs:11.1f} {bare_rate:9.1f} {ours / theirs:7.2f}x "
            f"{ours / bare_rate:8.2f}"
        )


if __name__ == "__main__":
    main()
