"""Device registrations and APNs results show in ``/metrics`` (scraped and parsed)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from passpost.passkit.tasks import push_pass_update
from tests.passkit.helpers import PassStore, apple
from tests.passkit.test_pushes import BAD, GONE, OK, pass_id_of, register, token_server
from tests.peers.apns_server import Answer, ApnsTestServer
from tests.support.app import basic
from tests.support.passes import PASS_TYPE_ID

__all__ = ["token_server"]  # the fixture, imported so that pytest finds it here


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` keyed by (name, sorted labels)."""
    response = client.get("/metrics", headers=basic())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_registrations_and_apns_results_are_counted(
    client: TestClient, store: PassStore, database_url: str, token_server: ApnsTestServer
) -> None:
    before = scrape(client)
    store.issue("M1")
    for n, token in enumerate((OK, GONE, BAD)):
        register(client, store, "M1", f"device-{n}", token)
    path = f"/api/v1/devices/device-2/registrations/{PASS_TYPE_ID}/M1"
    headers = apple(store.token("M1"))
    assert client.post(path, json={"pushToken": BAD}, headers=headers).status_code == 200
    token_server.program(GONE, Answer(410, "Unregistered"))
    token_server.program(BAD, Answer(400, "BadDeviceToken"))
    store.issue("M1")
    push_pass_update(pass_id_of(database_url, "M1"))
    assert (
        client.delete(
            f"/api/v1/devices/device-0/registrations/{PASS_TYPE_ID}/M1", headers=headers
        ).status_code
        == 200
    )
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    registrations = "passpost_device_registrations_total"
    assert delta(registrations, action="registered") == 3
    assert delta(registrations, action="already_registered") == 1
    assert delta(registrations, action="unregistered") == 1
    assert delta("passpost_apns_pushes_total", outcome="ok", status="200") == 1
    assert delta("passpost_apns_pushes_total", outcome="unregistered", status="410") == 1
    assert delta("passpost_apns_pushes_total", outcome="permanent", status="400") == 1
    # 410 dropped GONE's registration, the DELETE device-0's: BAD's is left.
    assert value(after, "passpost_registrations") == 1
    route = (
        "/api/v1/devices/{device_library_identifier}/registrations/"
        "{pass_type_identifier}/{serial_number}"
    )
    assert delta("passpost_http_requests_total", method="POST", route=route, status="201") == 3
    assert delta("passpost_http_request_duration_seconds_count", method="POST", route=route) == 4
