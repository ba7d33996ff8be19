"""Screenshots of the console's main pages, desktop and 390 px phone, in docs/console/.

Runs ``passpost serve`` (API + worker) on a fresh data directory with an SMTP test server,
fills it through the API as an operator would (a signing certificate, an audience CSV, a
few requests, one cancelled), then opens each page in real headless Chromium (Debian's
``chromium`` + ``chromium-driver``, ``--headless=new --no-sandbox --disable-gpu
--disable-dev-shm-usage``) at 1280 × 900 and 390 × 844, and saves ``<page>-desktop.png``
and ``<page>-phone.png``. Fails if a page has a server error, a browser console error, or
is wider than a 390 px screen.

Usage: python scripts/console_screenshots.py [--out docs/console]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.console.browser import CHROMEDRIVER, CHROMIUM, chromium, severe_logs  # noqa: E402
from tests.support.passes import make_pki, signed_pass  # noqa: E402
from tests.support.service import OPERATOR, Process, base_env, cli, email_content  # noqa: E402
from tests.support.smtp import SmtpServer  # noqa: E402

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
PEOPLE = """firstName,lastName,email,mobileNumber
Ada,Lovelace,ada@example.com,+14155550100
Grace,Hopper,grace@example.com,+14155550101
Alan,Turing,alan@example.com,
Katherine,Johnson,katherine@example.com,+14155550103
Edsger,Dijkstra,edsger@example,
Barbara,Liskov,barbara@example.com,+14155550105
"""


def _fill(http: httpx.Client, pkpass: Callable[[str], bytes], p12: bytes) -> str:
    """Data an operator would have after a day: returns the id of the largest request."""
    stored = http.post(
        "/api/v1/passcerts",
        files={"passCert": ("pass.p12", p12)},
        data={"certName": "Boarding passes", "passCertPassPhrase": "pw"},
    )
    stored.raise_for_status()
    http.post(
        "/api/v1/audience/import", files={"file": ("people.csv", PEOPLE.encode())}
    ).raise_for_status()
    ids = []
    for serial, size in (("GATE-A12", 40), ("LOUNGE-7", 12), ("SPRING-SALE", 5)):
        people = [{"email": f"{serial.lower()}-{i}@example.com"} for i in range(size)]
        answer = http.post(
            "/api/v1/message/pass/import",
            files={"pkPass": ("pass.pkpass", pkpass(serial))},
            data={"passContent": _json(email_content(people, subject=f"Your {serial} pass"))},
        )
        answer.raise_for_status()
        ids.append(answer.json()["requestId"])
    http.post(f"/api/v1/pass/cancel/{ids[-1]}").raise_for_status()
    return str(ids[0])


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _wait_done(http: httpx.Client, request_id: str) -> None:
    deadline = time.monotonic() + 90
    while http.get(f"/api/v1/requests/{request_id}").json()["state"] != "done":
        if time.monotonic() > deadline:
            raise TimeoutError(f"request {request_id} did not finish")
        time.sleep(0.5)


def _log_in(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/login")
    driver.find_element(By.ID, "username").send_keys(OPERATOR[0])
    driver.find_element(By.ID, "password").send_keys(OPERATOR[1])
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 20).until(ec.url_contains("/console/requests"))


def _shoot(driver: WebDriver, out: Path, name: str, size: str) -> None:
    body = driver.find_element(By.TAG_NAME, "body").text
    if "Internal Server Error" in body or '"errorCode"' in body:
        raise RuntimeError(f"{name}: {body[:300]}")
    errors = severe_logs(driver)
    if errors:
        raise RuntimeError(f"{name}: browser console errors {errors}")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    if size == "phone" and width > SIZES["phone"][0]:
        raise RuntimeError(f"{name}: {width} px wide on a 390 px phone")
    # The whole page, not only the first screen: the window grows to the document's height.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    w, _ = SIZES[size]
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": w, "height": min(height, 2400), "deviceScaleFactor": 1, "mobile": w < 500},
    )
    driver.save_screenshot(str(out / f"{name}-{size}.png"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": w, "height": SIZES[size][1], "deviceScaleFactor": 1, "mobile": w < 500},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        sys.exit("chromium and chromium-driver are needed (apt-get install them)")
    args.out.mkdir(parents=True, exist_ok=True)
    pki = make_pki()
    p12 = pkcs12.serialize_key_and_certificates(
        b"pass", pki.leaf_key, pki.leaf, [pki.intermediate], BestAvailableEncryption(b"pw")
    )
    with tempfile.TemporaryDirectory() as tmp, SmtpServer() as smtp:
        env = base_env(
            Path(tmp) / "data",
            PASSPOST_SMTP_URL=smtp.url,
            PASSPOST_TRUST_ANCHORS=str(pki.write_root(Path(tmp) / "anchors.pem")),
        )
        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        cli(env, "apikey", "create", "--name", "ci-pipeline")
        with Process(env, command="serve") as server:
            base = server.url
            with httpx.Client(base_url=base, auth=OPERATOR, timeout=60) as http:
                big = _fill(http, lambda serial: signed_pass(pki, serial=serial), p12)
                _wait_done(http, big)
            pages = {
                "requests": "/console/requests",
                "request": f"/console/requests/{big}",
                "send": "/console/send",
                "audience": "/console/audience",
                "passes": "/console/passes",
                "pass": "",  # the first pass listed on the Passes page
                "certificates": "/console/certificates",
                "channels": "/console/channels",
                "operators": "/console/operators",
            }
            for size, (width, height) in SIZES.items():
                with chromium(width, height) as driver:
                    _log_in(driver, base)
                    for name, path in pages.items():
                        if name == "pass":
                            link = driver.find_element(By.CSS_SELECTOR, "td a[href*='/passes/']")
                            path = link.get_attribute("href") or ""
                        driver.get(path if path.startswith("http") else base + path)
                        _shoot(driver, args.out, name, size)
                        print(f"{name}-{size}.png")


if __name__ == "__main__":
    main()
