"""Personal passes (issue 11): the lazy build, and the import of a template request.

1. Downloads over real HTTP from one ``passpost api`` process (SQLite): the first download
   of N personal passes (each built: filled, signed, stored, then served) against
   downloading the same N links again (already built: read and served). Prints both rates
   and their ratio (target >= 0.3).
2. ``import_pass`` of one request to R recipients (default 100,000, existing audience ids),
   a template with placeholders against a shared pass, on two identical databases. Prints
   both times and shared/template (target >= 0.9: the import signs nothing per recipient).

Usage: python bench/personal.py [--downloads 200] [--recipients 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import env_without_passpost
from tests.support.net import free_port, wait_for_http
from tests.support.passes import ICON_PNG, TestPki, make_pki, pass_json, signed_pass, zip_bytes

PASSPHRASE = "bench"


def template() -> bytes:
    body = pass_json(
        serial="BENCH-T",
        generic={
            "primaryFields": [{"key": "name", "value": "##First Name## ##Last Name##"}],
            "secondaryFields": [{"key": "seat", "value": "##seat##"}],
        },
        barcodes=[
            {
                "format": "PKBarcodeFormatQR",
                "message": "##Serial Number##",
                "messageEncoding": "iso-8859-1",
            }
        ],
    )
    return zip_bytes({"pass.json": json.dumps(body).encode(), "icon.png": ICON_PNG})


def prepare_database(data_dir: Path, pki: TestPki, recipients: int) -> str:
    """A migrated database with the pass certificate and ``recipients`` audience rows."""
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    from passpost.audience.models import Recipient
    from passpost.certs.service import add_certificate
    from passpost.db import migrate, session_scope, utcnow

    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{data_dir / 'passpost.db'}"
    migrate(url)
    p12 = pkcs12.serialize_key_and_certificates(
        b"bench", pki.leaf_key, pki.leaf, [pki.intermediate], BestAvailableEncryption(b"bench")
    )
    with session_scope(url, write=True) as session:
        add_certificate(session, name="bench", p12=p12, passphrase=PASSPHRASE, created_by=None)
        now = utcnow()
        rows = [
            {
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "email": f"r{i}@example.com",
                "email_subscription": True,
                "sms_subscription": False,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(recipients)
        ]
        for start in range(0, len(rows), 5000):
            session.execute(insert(Recipient), rows[start : start + 5000])
    return url


def recipient_ids(url: str) -> list[int]:
    from passpost.audience.models import Recipient
    from passpost.db import session_scope

    with session_scope(url) as session:
        return list(session.scalars(select(Recipient.id).order_by(Recipient.id)))


def timed_import(url: str, data_dir: Path, upload: bytes, refs: list[dict]) -> float:
    from passpost.config import Settings
    from passpost.db import session_scope
    from passpost.distribution.schemas import parse_pass_content
    from passpost.distribution.service import import_pass

    settings = Settings(data_dir=data_dir, database_url=url, signature_policy="off")
    body = {
        "recipients": {"recipient": refs},
        "passIntegrationConfig": {
            "passIssueNotificationDetails": [
                {"channel": "EMAIL", "messageContent": "##Email Pass Link##", "enabled": True}
            ]
        },
    }
    content = parse_pass_content(json.dumps(body))
    started = time.perf_counter()
    with session_scope(url, write=True) as session:
        import_pass(session, settings=settings, upload=upload, content=content, created_by="b")
    return time.perf_counter() - started


def import_ratio(work: Path, pki: TestPki, recipients: int, rounds: int = 2) -> None:
    """Best of ``rounds`` imports each, alternating, every one on its own fresh copy."""
    from passpost.db import get_engine

    seed = work / "seed"
    url = prepare_database(seed, pki, recipients)
    ids_ = recipient_ids(url)
    get_engine(url).dispose()
    shared_refs = [{"id": str(i)} for i in ids_]
    template_refs = [{"id": str(i), "fields": {"seat": f"S{n}"}} for n, i in enumerate(ids_)]
    times: dict[str, list[float]] = {"shared": [], "template": []}
    for round_ in range(rounds):
        for kind, upload, refs in (
            ("shared", signed_pass(pki, serial="BENCH-S"), shared_refs),
            ("template", template(), template_refs),
        ):
            copy = work / f"{kind}-{round_}"
            shutil.copytree(seed, copy)
            copy_url = f"sqlite:///{copy / 'passpost.db'}"
            times[kind].append(timed_import(copy_url, copy, upload, refs))
            get_engine(copy_url).dispose()
    shared, personal = min(times["shared"]), min(times["template"])
    print(f"import of {recipients:,} recipients: shared pass {shared:6.2f} s (best of {rounds})")
    print(f"import of {recipients:,} recipients: template    {personal:6.2f} s (best of {rounds})")
    print(f"ratio shared/template = {shared / personal:.2f}  (target >= 0.9)")


def download_ratio(work: Path, pki: TestPki, downloads: int) -> None:
    import subprocess

    from passpost import secrets
    from passpost.db import get_engine, session_scope
    from passpost.distribution.models import PassHolder

    data_dir = work / "downloads"
    url = prepare_database(data_dir, pki, downloads)
    ids_ = recipient_ids(url)
    timed_import(url, data_dir, template(), [{"id": str(i), "fields": {"seat": "1"}} for i in ids_])
    with session_scope(url) as session:
        sealed = list(session.scalars(select(PassHolder.link_token_enc)))
    tokens = [secrets.open_link_token(s) for s in sealed]
    get_engine(url).dispose()
    port = free_port()
    env = env_without_passpost()
    env.update(
        PASSPOST_DATA_DIR=os.environ["PASSPOST_DATA_DIR"],
        PASSPOST_DATABASE_URL=url,
        PASSPOST_PUBLIC_URL=f"http://127.0.0.1:{port}",
        # One client fetches every link: the per-address limit would measure itself.
        PASSPOST_RATE_LIMIT_LINKS="1000000/minute",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "passpost.cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            first = _download_all(client, tokens)
            again = _download_all(client, tokens)
    finally:
        server.terminate()
        server.wait(20)
    print(f"first download (build + sign + serve): {first:8.1f} passes/s")
    print(f"download of a built pass:              {again:8.1f} passes/s")
    print(f"ratio first/built = {first / again:.2f}  (target >= 0.3)")


def _download_all(client: httpx.Client, tokens: list[str]) -> float:
    started = time.perf_counter()
    for token in tokens:
        answer = client.get(f"/p/{token}", headers={"User-Agent": "bench"})
        if answer.status_code != 200:
            raise SystemExit(f"download failed: {answer.status_code} {answer.text}")
    return len(tokens) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--downloads", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    pki = make_pki()
    with tempfile.TemporaryDirectory(prefix="passpost-bench-personal-") as tmp:
        # One data dir for the encryption key: this process seals, the server opens.
        os.environ["PASSPOST_DATA_DIR"] = str(Path(tmp) / "keys")
        download_ratio(Path(tmp), pki, args.downloads)
        import_ratio(Path(tmp), pki, args.recipients)


if __name__ == "__main__":
    main()
