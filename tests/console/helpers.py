"""Console test helpers: log in through the form, read a page's CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.app import PASSWORD, USERNAME

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def log_in(client: TestClient) -> str:
    """Log in through /console/login; returns the session's CSRF token."""
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"username": USERNAME, "password": PASSWORD, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console/requests").text)
