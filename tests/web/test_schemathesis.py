"""schemathesis over the OpenAPI document, authenticated, against ``passpost serve`` over real
HTTP: no generated request may get a 5xx (SPEC §15, issue 9).

Every operation gets a bounded number of examples, so the whole run stays near a minute.
A failure prints the request that caused it (schemathesis' reproduction with curl).
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.support.service import OPERATOR, Process, base_env, cli

# Per operation: valid requests (by the schema) and invalid ones (wrong types, missing
# fields), each a bounded number; the environment variable raises it for a deeper run.
EXAMPLES = int(os.environ.get("PASSPOST_SCHEMATHESIS_EXAMPLES", "8"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """One ``passpost serve`` on SQLite with the operator, shared by every operation."""
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    env = base_env(data_dir, PASSPOST_SIGNATURE_POLICY="warn")
    cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
    with Process(env, "serve", log=data_dir.parent / "serve.log") as process:
        yield process


AUTH = "Basic " + base64.b64encode(":".join(OPERATOR).encode()).decode()


def _check_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    statuses: Counter[int],
    credential_headers: frozenset[str],
) -> None:
    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        # The operator's credentials on every call, instead of generated ones (the PassKit
        # calls then answer 401, which is no server error either).
        for key in list(case.headers or {}):
            if key.lower() in credential_headers:
                del case.headers[key]  # case.call() would merge them back
        response = case.call(base_url=base_url, headers={"Authorization": AUTH}, timeout=30)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])

    run()


def _credential_headers(document: dict[str, Any]) -> frozenset[str]:
    """Headers the security schemes name: generated values there would only earn a 401."""
    schemes = document.get("components", {}).get("securitySchemes", {}).values()
    named = {
        s["name"].lower() for s in schemes if s.get("type") == "apiKey" and s.get("in") == "header"
    }
    return frozenset({"authorization", *named})


def test_no_request_gets_a_server_error(server: Process) -> None:
    # The operations are walked here, not with @schema.parametrize: the schema comes from
    # the running server, and schemathesis' fixture-based loader does not support pytest 9.
    api = schemathesis.openapi.from_url(server.url + "/openapi.json")
    failures: dict[str, str] = {}
    credentials = _credential_headers(api.raw_schema)
    statuses: Counter[int] = Counter()
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in MODES:
            try:
                _check_operation(operation, mode, server.url, statuses, credentials)
            except Unsatisfiable:
                continue  # no invalid request exists for it (e.g. one free-form string)
            except Exception as exc:  # noqa: BLE001 - collected: every operation is tried
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:3000]
    print(f"schemathesis: {operations} operations, responses by status {sorted(statuses.items())}")
    assert operations >= 40
    assert (
        sum(n for status, n in statuses.items() if status < 300) > operations // 2
    )  # authenticated
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_server_logged_no_traceback(server: Process) -> None:
    # Runs after the generated cases (same module, same server): a 5xx that some check
    # missed, or an exception swallowed into a 4xx, leaves a traceback here.
    log = Path(server.log_path).read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]
