"""A worker killed (SIGKILL) while it expands a large recipient list: the next worker
continues with the chunks still stored; every recipient is in the ledger once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.net import wait_until
from tests.support.passes import make_pki, signed_pass
from tests.support.service import OPERATOR, Process, base_env, cli, client, email_content
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.slow

COUNT = 6000


def test_a_killed_worker_s_expansion_is_resumed_without_duplicates(tmp_path: Path) -> None:
    pki = make_pki()
    with SmtpServer() as smtp:
        anchors = pki.write_root(tmp_path / "anchors.pem")
        env = base_env(
            tmp_path / "data",
            PASSPOST_SMTP_URL=smtp.url,
            PASSPOST_TRUST_ANCHORS=str(anchors),
            PASSPOST_LEASE_SECONDS="3",
        )
        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        entries = [{"email": f"k{i}@example.com"} for i in range(COUNT)]
        with Process(env, "api") as api, client(api.url) as http:
            response = http.post(
                "/api/v1/message/pass/import",
                files={"pkPass": ("p.pkpass", signed_pass(pki, serial="KILL"))},
                data={"passContent": json.dumps(email_content(entries))},
            )
            assert response.status_code == 200, response.text
            request_id = response.json()["requestId"]

            def expansion() -> dict:
                return http.get(f"/api/v1/requests/{request_id}").json()["expansion"]

            worker = Process(env, "worker").start()
            wait_until(lambda: expansion()["expanded"] >= 500, timeout=120, interval=0.05)
            worker.kill()
            at_kill = expansion()
            assert not at_kill["done"], "the list was expanded before the kill: make it longer"
            summary = http.get(f"/api/v1/requests/{request_id}").json()
            assert summary["recipients"] == at_kill["expanded"]  # chunk and rows commit together
            in_flight = summary["inFlight"]  # claimed sends not recorded: may go twice
            with Process(env, "worker"):

                def finished() -> bool:
                    body = http.get(f"/api/v1/requests/{request_id}").json()
                    return bool(body["expansion"]["done"] and body["pending"] == 0)

                wait_until(finished, timeout=600)
            summary = http.get(f"/api/v1/requests/{request_id}").json()
            meta = http.get(f"/api/v1/pass/meta/{request_id}?pageSize=1").json()
        assert summary["expansion"] == {"total": COUNT, "expanded": COUNT, "done": True}
        assert summary["recipients"] == COUNT == meta["total"]
        assert summary["channels"] == {"EMAIL": {"submitted": COUNT}}
        recipients = [m["To"] for m in smtp.handler.messages]
        assert set(recipients) == {e["email"] for e in entries}
        # A send in flight at the kill may go twice (SPEC §3); the expansion adds none.
        assert len(recipients) - COUNT <= in_flight, (len(recipients), in_flight)
