"""A headless Chromium for the dashboard tests (Debian's chromium and chromium-driver, driven by
Selenium), collecting what the page writes to the browser console.

The browser and its driver are given by path, so Selenium Manager never tries to download one. Without
them these tests skip, except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.evaluation.conftest import scifact_small  # noqa: F401 - the real collection the runs measure

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DONE = ("ready", "key-needed", "error")  # the page's body[data-state] once it has loaded


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    reason = f"{' and '.join(missing)} missing (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}: under CI the dashboard tests must run, not skip")
    pytest.skip(reason)


class Browser:
    """One headless Chromium window, with helpers to load the dashboard and read the console."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    def open(self, url: str, timeout: float = 20) -> str:
        """Load `url` and wait until the dashboard has drawn its data or its notice; its state."""
        self.driver.get(url)
        return self.wait_state(timeout)

    def wait_state(self, timeout: float = 20, *, not_state: str | None = None) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.js("return document.body ? document.body.dataset.state || '' : ''")
            if state in DONE and state != not_state:
                return str(state)
            if time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not finish loading (state {state!r})")
            time.sleep(0.05)

    def wait_for(self, condition: str, timeout: float = 20) -> None:
        """Wait until the JavaScript expression `condition` is true in the page."""
        deadline = time.monotonic() + timeout
        while not self.js(f"return Boolean({condition})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never got to {condition}")
            time.sleep(0.05)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self, element_id: str) -> str:
        return str(self.js("return document.getElementById(arguments[0]).textContent", element_id))

    def visible(self, element_id: str) -> bool:
        return bool(self.driver.find_element("id", element_id).is_displayed())

    def console(self) -> list[dict[str, Any]]:
        """The console entries since the last call (reading drains them)."""
        return list(self.driver.get_log("browser"))

    def errors(self, *, allow: tuple[str, ...] = ()) -> list[str]:
        """Console errors and warnings since the last call, but those containing an `allow` string."""
        return [
            e["message"]
            for e in self.console()
            if e["level"] in ("SEVERE", "WARNING") and not any(a in e["message"] for a in allow)
        ]


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Iterator[Browser]:
    """The session's browser on a blank page with an empty console log."""
    chromium.get("about:blank")
    chromium.get_log("browser")
    yield Browser(chromium)
    chromium.get("about:blank")
