"""The service as a user meets it: `photo2cad serve` on a real socket, and the demo page in headless Chromium.

The browser test needs Debian's `chromium` and `chromium-driver` packages and Selenium (pip); it is skipped, saying
so, where they are missing. Set PHOTO2CAD_SCREENSHOT=path.png to keep a screenshot of the page with its results.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import LiveServer, ServedIndex, live_server, rendered_photo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server(served_index: ServedIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(served_index.root, tmp_path_factory.mktemp("server") / "server.log") as running:
        yield running


def test_serve_command_answers_retrieval_over_http(server: LiveServer, served_index: ServedIndex) -> None:
    files = {"photo": ("render.jpg", rendered_photo(served_index.root), "image/jpeg")}
    response = httpx.post(f"{server.url}/retrieve", files=files, data={"top_k": "3"}, timeout=30)
    assert response.status_code == 200 and len(response.json()["results"]) == 3
    thumbnail = httpx.get(server.url + response.json()["results"][0]["thumbnail_url"], timeout=10)
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"


def test_serve_command_refuses_an_oversized_upload_with_413(server: LiveServer) -> None:
    files = {"photo": ("big.jpg", b"\xff\xd8" + bytes(21 * 2**20), "image/jpeg")}
    response = httpx.post(f"{server.url}/retrieve", files=files, timeout=30)
    assert response.status_code == 413 and "PHOTO2CAD_MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_shows_ranked_thumbnails_for_a_chosen_photo(
    server: LiveServer,
    served_index: ServedIndex,
    browser: object,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    photo = tmp_path / "render.jpg"
    photo.write_bytes(rendered_photo(served_index.root, "table/cone"))
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "8 shapes" in d.find_element(By.ID, "index-info").text)
    categories = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#category option")]
    assert categories == ["all", "bed (2)", "chair (2)", "sofa (2)", "table (2)"]

    browser.find_element(By.ID, "photo-input").send_keys(str(photo))

    loaded_thumbnails = (
        "return [...document.querySelectorAll('#results .result img.thumb')]"
        ".filter(img => img.complete && img.naturalWidth > 0).length"
    )
    wait.until(lambda d: d.execute_script(loaded_thumbnails) == 8)
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .result")
    assert [c.find_element(By.CLASS_NAME, "rank").text for c in cards] == [f"#{i}" for i in range(1, 9)]
    assert all(c.find_element(By.CLASS_NAME, "value").text.startswith("score ") for c in cards)
    assert browser.find_element(By.ID, "status").text.startswith("8 shapes from index v-")
    assert not browser.find_element(By.ID, "error").is_displayed()
    if screenshot := os.environ.get("PHOTO2CAD_SCREENSHOT"):
        browser.save_screenshot(screenshot)


def test_the_page_shows_the_reason_for_a_refused_photo(server: LiveServer, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_text("not a picture")
    browser.get(server.url + "/")
    browser.find_element(By.ID, "photo-input").send_keys(str(not_a_photo))
    error = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 30).until(lambda d: error.is_displayed())
    assert error.text == "415: the photo is not a JPEG, PNG or WebP image"
