"""The pages in Debian's headless Chromium (Selenium): log in, sort, filter, download, risk.

The app (the pages over a hand-made PageSource) runs under uvicorn in a thread on a free
loopback port; one browser for the module, at a laptop's 1366x768. Selenium is given
Debian's chromedriver and chromium, so it never downloads a browser. Screenshots of each page
land in the test's temporary folder (the path is printed).
"""

from __future__ import annotations

import csv
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.pages_source import FramePageSource, page_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1366,768",
)
KEY = "key-p001-secret"
WAIT = 10


class Served:
    """The app under uvicorn in a thread, on a loopback port bound before it starts."""

    def __init__(self, source: FramePageSource) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(page_app(source), log_level="warning", lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + WAIT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start serving the pages")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT)
        self.sock.close()


@pytest.fixture(scope="module")
def source() -> FramePageSource:
    return FramePageSource()


@pytest.fixture(scope="module")
def served(source: FramePageSource) -> Iterator[Served]:
    with Served(source) as s:
        yield s


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots of the pages: {path}")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[WebDriver]:
    """Debian's headless Chromium with a fresh profile; downloads go to ``downloads``."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"the page tests need Debian's chromium and chromium-driver, missing: "
            f"{', '.join(missing)}. Run `make browser` (or `sudo apt-get install chromium "
            "chromium-driver`); `make test` installs them.",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def logged_in(browser: WebDriver, served: Served, shots: Path) -> WebDriver:
    """The browser, logged in as partner P001 through the login form."""
    browser.get(f"{served.url}/pages/leads")
    key = WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "key")))
    browser.save_screenshot(str(shots / "login.png"))
    key.send_keys(KEY)
    key.submit()
    WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.ID, "leads-table")))
    return browser


def open_page(driver: WebDriver, url: str, table_id: str) -> WebElement:
    driver.get(url)
    return WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.ID, table_id)))


def column(table: WebElement, index: int) -> list[str]:
    """The data-value of one column, in the rows' order in the DOM."""
    return [
        cell.get_attribute("data-value") or ""
        for cell in table.find_elements(By.CSS_SELECTOR, f"tbody tr td:nth-child({index + 1})")
    ]


def header(table: WebElement, label: str) -> WebElement:
    for th in table.find_elements(By.CSS_SELECTOR, "thead th"):
        if th.text.strip() == label:
            return th
    raise AssertionError(f"no header {label!r}")


def no_horizontal_scroll(driver: WebDriver) -> bool:
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_the_lead_page_loads_after_logging_in_through_the_form(
    logged_in: WebDriver, served: Served, source: FramePageSource, shots: Path
) -> None:
    table = open_page(logged_in, f"{served.url}/pages/leads", "leads-table")
    expected = source.leads("P001", category=None, top=50)
    assert column(table, 1) == list(expected["account_id"])
    assert logged_in.find_element(By.TAG_NAME, "h1").text == "Lead list · P001"
    assert logged_in.find_element(By.ID, "leads-table-count").text == "30 rows"
    assert no_horizontal_scroll(logged_in)
    # the header stays in view when the list scrolls
    logged_in.execute_script("window.scrollTo(0, 900)")
    top = logged_in.execute_script(
        "return document.querySelector('#leads-table thead th').getBoundingClientRect().top"
    )
    assert abs(top) < 1
    logged_in.execute_script("window.scrollTo(0, 0)")
    logged_in.save_screenshot(str(shots / "leads.png"))


def test_sorting_by_the_score_header_reverses_the_order(
    logged_in: WebDriver, served: Served
) -> None:
    table = open_page(logged_in, f"{served.url}/pages/leads", "leads-table")
    score = header(table, "Score")
    assert score.get_attribute("aria-sort") is None
    before = [float(v) for v in column(table, 6)]
    assert before != sorted(before, reverse=True)  # ranked by expected value, not by score
    score.find_element(By.TAG_NAME, "button").click()
    down = [float(v) for v in column(table, 6)]
    assert down == sorted(before, reverse=True)
    assert score.get_attribute("aria-sort") == "descending"
    assert header(table, "#").get_attribute("aria-sort") is None
    arrow = logged_in.execute_script(
        "return getComputedStyle(arguments[0], '::after').content",
        score.find_element(By.TAG_NAME, "button"),
    )
    assert "▼" in arrow
    score.find_element(By.TAG_NAME, "button").click()
    up = [float(v) for v in column(table, 6)]
    assert up == down[::-1]
    assert score.get_attribute("aria-sort") == "ascending"
    # text columns sort as text
    header(table, "Account").find_element(By.TAG_NAME, "button").click()
    accounts = column(table, 1)
    assert accounts == sorted(accounts)


def test_the_filter_hides_the_rows_without_the_text(logged_in: WebDriver, served: Served) -> None:
    table = open_page(logged_in, f"{served.url}/pages/leads", "leads-table")
    box = logged_in.find_element(By.CSS_SELECTOR, "input[data-filter='leads-table']")
    box.send_keys("refresh")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    shown = [r for r in rows if r.is_displayed()]
    assert 0 < len(shown) < len(rows) == 30
    assert all("refresh" in r.text for r in shown)
    assert all(
        "refresh" not in (r.get_attribute("textContent") or "")
        for r in rows
        if not r.is_displayed()
    )
    count = logged_in.find_element(By.ID, "leads-table-count").text
    assert count == f"{len(shown)} of 30 rows match"
    box.clear()
    box.send_keys(" ")  # whitespace only: every row again
    assert all(r.is_displayed() for r in rows)


def test_the_csv_downloads_with_the_rows_of_the_table(
    logged_in: WebDriver, served: Served, downloads: Path
) -> None:
    table = open_page(logged_in, f"{served.url}/pages/leads?category=pc&top=8", "leads-table")
    ranks, accounts = column(table, 0), column(table, 1)
    logged_in.find_element(By.CSS_SELECTOR, "a.csv").click()
    target = downloads / "leads-P001-2026-09-30.csv"
    deadline = time.monotonic() + WAIT
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.exists(), f"no download in {downloads}: {sorted(os.listdir(downloads))}"
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["rank"] for r in rows] == ranks
    assert [r["account_id"] for r in rows] == accounts
    assert {r["category"] for r in rows} == {"pc"} and 0 < len(rows) <= 8


def test_the_fleet_page_shows_the_riskiest_device_first(
    logged_in: WebDriver, served: Served, source: FramePageSource, shots: Path
) -> None:
    table = open_page(logged_in, f"{served.url}/pages/fleet", "risk-table")
    own = source.devices[source.devices["partner_id"] == "P001"]
    riskiest = own.loc[own["probability"].idxmax()]
    first = table.find_element(By.CSS_SELECTOR, "tbody tr")
    assert first.find_element(By.CSS_SELECTOR, "td:nth-child(3)").text == riskiest["device_id"]
    assert f"{riskiest['probability']:.1%}" in first.text
    assert header(table, "Failure risk").get_attribute("aria-sort") == "descending"
    risks = [float(v) for v in column(table, 5)]
    assert risks == sorted(risks, reverse=True) and len(risks) == len(own)
    assert logged_in.find_element(By.ID, "supplies-table").is_displayed()
    assert no_horizontal_scroll(logged_in)
    logged_in.save_screenshot(str(shots / "fleet.png"))
