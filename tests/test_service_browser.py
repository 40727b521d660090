"""The service as a user meets it: `photo2cad serve` on a real socket, and the demo page in headless Chromium.

The browser test needs Debian's `chromium` and `chromium-driver` packages and Selenium (pip); it is skipped, saying
so, where they are missing. Each page test runs in a desktop window and in a 390 px phone-sized one. Set
PHOTO2CAD_SCREENSHOT=path.png to keep screenshots of the page with its results (path-desktop.png, path-phone.png).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from photo2cad.weights.bands import ScoreBands
from tests.helpers import LiveServer, ServedIndex, live_server, rendered_photo, weights_with_bands

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


VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}  # a 390 px phone: iPhone 12 to 15 in CSS pixels


@pytest.fixture(params=sorted(VIEWPORTS))
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    width, height = VIEWPORTS[request.param]
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    # Chromium keeps a window at least 500 px wide: a phone's width is emulated, as its developer tools do.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": request.param == "phone"},
    )
    driver.viewport = request.param
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: Any, url: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "8 shapes" in d.find_element(By.ID, "index-info").text)
    return wait


def choose_photo(browser: Any, path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "photo-input").send_keys(str(path))


LOADED_THUMBNAILS = (
    "return [...document.querySelectorAll('#results .result img.thumb')]"
    ".filter(img => img.complete && img.naturalWidth > 0).length"
)


def scene_photo(served_index: ServedIndex, path: Path) -> Path:
    """A pool render placed off-centre in a brown 'room': the photo a box is drawn on."""
    render = Image.open(io.BytesIO(rendered_photo(served_index.root, "table/cone"))).convert("RGB")
    scene = Image.new("RGB", (480, 360), (150, 110, 80))
    scene.paste(render.resize((160, 160)), (260, 120))
    scene.save(path)
    return path


def test_the_page_shows_ranked_thumbnails_with_what_the_score_means_and_both_downloads(
    server: LiveServer, served_index: ServedIndex, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    photo = tmp_path / "render.jpg"
    photo.write_bytes(rendered_photo(served_index.root, "table/cone"))
    wait = open_page(browser, server.url)
    categories = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#category option")]
    assert categories == ["all", "bed (2)", "chair (2)", "sofa (2)", "table (2)"]
    choose_photo(browser, photo)
    wait.until(lambda d: d.execute_script(LOADED_THUMBNAILS) == 8)
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .result")
    assert [c.find_element(By.CLASS_NAME, "rank").text for c in cards] == [f"#{i}" for i in range(1, 9)]
    assert all(c.find_element(By.CLASS_NAME, "value").text.startswith("score ") for c in cards)
    assert browser.find_element(By.ID, "status").text.startswith("8 shapes from index v-")
    assert "cosine similarity" in browser.find_element(By.ID, "score-help").text
    for card in cards:
        shape_id = card.find_element(By.CLASS_NAME, "id").text
        mesh_format = httpx.get(f"{server.url}/shapes/{shape_id}", timeout=10).json()["mesh_format"].upper()
        downloads = [a.text for a in card.find_elements(By.CSS_SELECTOR, ".downloads a")]
        assert downloads == [f"{mesh_format} (original)"] + (["GLB (with materials)"] if mesh_format != "GLB" else [])
    assert cards[0].find_elements(By.CSS_SELECTOR, ".badge")  # the slot a match-quality badge goes in
    # Thumbnails at most at their natural size: never blown up into a blur.
    upscaled = "return [...document.querySelectorAll('img.thumb')].filter(i => i.clientWidth > i.naturalWidth).length"
    assert browser.execute_script(upscaled) == 0
    assert not browser.find_element(By.ID, "error").is_displayed()
    if screenshot := os.environ.get("PHOTO2CAD_SCREENSHOT"):
        browser.save_screenshot(screenshot.replace(".png", f"-{browser.viewport}.png"))


def test_on_a_phone_the_results_come_into_view_two_to_a_row(
    server: LiveServer, served_index: ServedIndex, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    if browser.viewport != "phone":
        pytest.skip("a phone-sized window only")
    photo = tmp_path / "render.jpg"
    photo.write_bytes(rendered_photo(served_index.root, "chair/box"))
    wait = open_page(browser, server.url)
    choose_photo(browser, photo)
    wait.until(lambda d: d.execute_script(LOADED_THUMBNAILS) == 8)
    wait.until(lambda d: d.execute_script("return document.getElementById('answer').getBoundingClientRect().top") < 200)
    tops = [card.rect["y"] for card in browser.find_elements(By.CSS_SELECTOR, "#results .result")]
    assert tops[0] == tops[1] and tops[2] == tops[3] and tops[1] < tops[2]  # two cards a row
    assert browser.execute_script("return document.documentElement.scrollHeight") < 2500  # was ~5,000 px


def test_a_refused_photo_shows_its_reason_and_clears_the_previous_results(
    server: LiveServer, served_index: ServedIndex, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    photo, not_a_photo = tmp_path / "render.jpg", tmp_path / "notes.png"
    photo.write_bytes(rendered_photo(served_index.root, "chair/box"))
    not_a_photo.write_text("not a picture")
    wait = open_page(browser, server.url)
    choose_photo(browser, photo)
    wait.until(lambda d: d.execute_script(LOADED_THUMBNAILS) == 8)
    assert browser.find_element(By.ID, "timings").text
    choose_photo(browser, not_a_photo)
    error = browser.find_element(By.ID, "error")
    wait.until(lambda d: error.is_displayed())
    assert error.text == "415: the photo is not a JPEG, PNG, WebP, HEIC or AVIF image"
    assert browser.find_elements(By.CSS_SELECTOR, "#results .result") == []
    assert browser.find_element(By.ID, "timings").text == "" and browser.find_element(By.ID, "status").text == ""


def test_a_box_drawn_on_the_photo_is_searched_alone(
    server: LiveServer, served_index: ServedIndex, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    wait = open_page(browser, server.url)
    choose_photo(browser, scene_photo(served_index, tmp_path / "scene.png"))
    wait.until(lambda d: d.execute_script(LOADED_THUMBNAILS) == 8)
    whole_photo = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#results .result .id")]
    layer = browser.find_element(By.ID, "box-layer")
    width, height = layer.size["width"], layer.size["height"]
    # From just above-left of the object to its lower-right corner (it lies at 260..420 x 120..280 of 480 x 360).
    start = (round(width * 250 / 480 - width / 2), round(height * 110 / 360 - height / 2))
    end = (round(width * 430 / 480 - width / 2), round(height * 290 / 360 - height / 2))
    ActionChains(browser).move_to_element_with_offset(layer, *start).click_and_hold().move_to_element_with_offset(
        layer, *end
    ).release().perform()
    wait.until(lambda d: "for the box" in d.find_element(By.ID, "status").text)
    wait.until(lambda d: d.execute_script(LOADED_THUMBNAILS) == 8)
    box = [int(v) for v in browser.find_element(By.ID, "status").text.rsplit(" ", 1)[1].split(",")]
    assert abs(box[0] - 250) <= 6 and abs(box[1] - 110) <= 6 and abs(box[2] - 180) <= 12 and abs(box[3] - 180) <= 12
    in_the_box = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#results .result .id")]
    assert in_the_box != whole_photo  # the room around the object no longer counts
    assert browser.find_element(By.ID, "clear-box").is_enabled()


def test_the_page_asks_for_the_api_key_a_service_needs_and_sends_it(
    served_index: ServedIndex, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    if browser.viewport != "desktop":
        pytest.skip("the key field is the same on a phone")
    key = "a-long-random-api-key-for-the-page"
    photo = tmp_path / "render.jpg"
    photo.write_bytes(rendered_photo(served_index.root, "chair/box"))
    with live_server(served_index.root, tmp_path / "server.log", {"PHOTO2CAD_API_KEY": key}) as keyed:
        wait = open_page(browser, keyed.url)
        key_field = browser.find_element(By.ID, "api-key")
        assert key_field.is_displayed()
        key_field.send_keys(key)
        choose_photo(browser, photo)
        wait.until(lambda d: d.execute_script(LOADED_THUMBNAILS) == 8)  # fetched with the key: <img> cannot send it
        assert not browser.find_element(By.ID, "error").is_displayed()


def test_the_page_badges_each_result_with_its_match_band_and_says_what_the_bands_mean(
    served_index: ServedIndex, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    if browser.viewport != "desktop":
        pytest.skip("the badges are the same on a phone")
    # As the default weights measured them: no score reliably right on unseen models, so nothing is called strong.
    bands = ScoreBands(
        strong=None,
        weak=-1.0,
        strong_precision=None,
        weak_share_of_right=0.07,
        absent_share_below_weak=0.34,
        measured_on="tests: made-up bands",
    )
    weights = weights_with_bands(served_index.weights, bands, tmp_path / "banded.safetensors")
    photo = tmp_path / "render.jpg"
    photo.write_bytes(rendered_photo(served_index.root, "chair/box"))
    env = {"PHOTO2CAD_WEIGHTS": str(weights), "PHOTO2CAD_ALLOW_WEIGHTS_MISMATCH": "true"}
    with live_server(served_index.root, tmp_path / "server.log", env) as banded:
        wait = open_page(browser, banded.url)
        help_text = browser.find_element(By.ID, "band-help")
        assert help_text.is_displayed() and "no match is called strong" in help_text.text
        assert "tests: made-up bands" in help_text.text and "34 %" in help_text.text
        choose_photo(browser, photo)
        wait.until(lambda d: d.execute_script(LOADED_THUMBNAILS) == 8)
        badges = browser.find_elements(By.CSS_SELECTOR, "#results .result .badge")
        assert [b.text for b in badges] == ["possible match"] * 8  # every score is above the weak edge (-1)
        assert all("possible" in b.get_attribute("class") for b in badges)
