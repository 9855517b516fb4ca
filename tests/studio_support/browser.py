"""Debian's headless Chromium driven by Selenium through Debian's chromedriver.

Selenium is given both binaries, so Selenium Manager never runs (and never downloads a
browser or driver); `make browser` installs them."""

from __future__ import annotations

import os
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    "--lang=en-US",
)


def chromium(profile: Path, javascript: bool = True) -> webdriver.Chrome:
    """A fresh browser whose profile lives in `profile` (the caller removes it)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"missing {missing}: run `make browser`"
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: Selenium Manager may fetch nothing
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def full_page_screenshot(driver: webdriver.Chrome, path: Path, max_height: int = 3200) -> None:
    """The whole page (up to max_height pixels), for docs/studio/."""
    for _ in range(3):  # a resize can reflow the page: measure again until it settles
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        inner = int(driver.execute_script("return window.innerHeight"))
        if inner >= min(height, max_height):
            break
        outer = int(driver.get_window_size()["height"])
        driver.set_window_size(1400, min(height, max_height) + outer - inner)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
