"""The console in real headless Chromium against real ``passpost`` processes and SMTP.

Every page renders without a server error and without a browser console error (which
includes any Content-Security-Policy violation); a pass sent through the Send page reaches
the SMTP server; the Request page follows the progress live; a forged CSRF token is refused.
The screenshots in docs/console/ come from ``scripts/console_screenshots.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.browser import chromium, severe_logs
from tests.support.passes import make_pki, signed_pass
from tests.support.service import OPERATOR, Process, base_env, cli
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.slow

PAGES = ("requests", "send", "audience", "passes", "certificates", "channels", "operators")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Process, dict[str, str], SmtpServer, Path]]:
    """``passpost api`` (no worker yet), its environment, the SMTP server, a signed pass."""
    pki = make_pki()
    pkpass = tmp_path / "BoardingPass.pkpass"
    pkpass.write_bytes(signed_pass(pki, serial="BROWSER-1"))
    with SmtpServer() as smtp:
        env = base_env(
            tmp_path / "data",
            PASSPOST_SMTP_URL=smtp.url,
            PASSPOST_TRUST_ANCHORS=str(pki.write_root(tmp_path / "anchors.pem")),
        )
        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        with Process(env, command="api") as api:
            yield api, env, smtp, pkpass


def _log_in(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/requests")
    assert driver.current_url.endswith("/console/login")
    driver.find_element(By.ID, "username").send_keys(OPERATOR[0])
    driver.find_element(By.ID, "password").send_keys(OPERATOR[1])
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 20).until(ec.url_contains("/console/requests"))


def _check_page(driver: WebDriver) -> None:
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Internal Server Error" not in body and '"errorCode"' not in body, body[:500]
    assert severe_logs(driver) == []


def _send_through_the_page(driver: WebDriver, base: str, pkpass: Path, people: list[str]) -> str:
    driver.get(f"{base}/console/send")
    driver.find_element(By.ID, "pkpass_file").send_keys(str(pkpass))
    WebDriverWait(driver, 30).until(
        ec.text_to_be_present_in_element((By.ID, "report"), "BROWSER-1")
    )
    assert "valid" in driver.find_element(By.ID, "report").text
    driver.find_element(By.ID, "addresses").send_keys("\n".join(people))
    WebDriverWait(driver, 20).until(ec.text_to_be_present_in_element((By.ID, "preview"), people[0]))
    driver.find_element(By.CSS_SELECTOR, "input[name=use_sms]").click()  # e-mail only
    _check_page(driver)
    driver.find_element(By.XPATH, "//button[contains(., 'Send')]").click()
    WebDriverWait(driver, 30).until(ec.url_contains("/console/requests/"))
    return driver.current_url.split("/console/requests/")[1].split("?")[0]


def test_console_in_chromium(stack: tuple[Process, dict[str, str], SmtpServer, Path]) -> None:
    api, env, smtp, pkpass = stack
    people = [f"person{i}@example.com" for i in range(12)]
    with chromium() as driver:
        _log_in(driver, api.url)
        for name in PAGES:
            driver.get(f"{api.url}/console/{name}")
            _check_page(driver)
        request_id = _send_through_the_page(driver, api.url, pkpass, people)
        live = driver.find_element(By.ID, "request-live")
        assert "queued" in live.text  # no worker runs yet
        with Process(env, command="worker"):
            # The page is not reloaded: htmx polls the live section until the request is done.
            WebDriverWait(driver, 90).until(
                ec.text_to_be_present_in_element((By.ID, "request-live"), "done")
            )
        assert "12" in driver.find_element(By.ID, "request-live").text
        _check_page(driver)
        driver.get(f"{api.url}/docs")
        WebDriverWait(driver, 30).until(
            ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "/api/v1/message/pass/import")
        )
        assert severe_logs(driver) == []  # Swagger UI from passpost itself, under its CSP
        driver.get(f"{api.url}/console/requests")
        assert request_id in driver.find_element(By.ID, "requests-table").text
        _check_page(driver)
    assert sorted(m["To"] for m in smtp.handler.messages) == sorted(people)


def test_phone_width_and_csrf_refusal(
    stack: tuple[Process, dict[str, str], SmtpServer, Path],
) -> None:
    api, _env, _smtp, pkpass = stack
    with chromium(390, 844) as driver:
        _log_in(driver, api.url)
        request_id = _send_through_the_page(driver, api.url, pkpass, ["ada@example.com"])
        _check_page(driver)
        # Nothing wider than the screen: the tables fold into cards on a phone.
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, width
        for name in ("requests", "audience"):
            driver.get(f"{api.url}/console/{name}")
            _check_page(driver)
        driver.get(f"{api.url}/console/requests/{request_id}")
        # A forged token in the cancel form: refused, and the request stays as it was.
        driver.execute_script(
            "document.querySelector('form[action$=\"/cancel\"] input[name=csrf]').value = 'x'"
        )
        driver.find_element(By.XPATH, "//button[contains(., 'Cancel this request')]").click()
        WebDriverWait(driver, 20).until(ec.title_contains("Form expired"))
        driver.get(f"{api.url}/console/requests/{request_id}")
        assert "cancelled" not in driver.find_element(By.ID, "request-live").text
