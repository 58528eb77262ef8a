"""The server's page in headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium): type a text, write, watch the strokes
drawn; draw a line on the pad with pen pointer events and write in that hand.

The README's screenshots come from this test, with the shipped model:

    HWTF_SCREENSHOTS=docs HWTF_SERVE_MODEL=saved_models/iamondb-synthesis \\
        python -m pytest -q tests/test_serve_browser.py

It skips, saying why, where Selenium, Chromium or its driver is missing.
"""

import os
import shutil
import threading

import numpy as np
import pytest

from hwtf.data import synthetic
from hwtf.serve import make_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.environ.get("HWTF_SERVE_MODEL", os.path.join(REPO, "saved_models", "synthetic-demo"))
SCREENSHOTS = os.environ.get("HWTF_SCREENSHOTS")
PARAGRAPH = ("Handwriting synthesis, as Alex Graves showed in 2013,\n"
             "reads the text through a soft window and writes\n"
             "it one pen movement at a time.")
PRIME_TEXT = "a quick hand"
NEW_TEXT = "written on in the hand drawn above"


def _chromium():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1250",
                     "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    try:
        return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    except Exception as e:  # a browser that will not start in this environment
        pytest.skip(f"headless Chromium did not start: {str(e).splitlines()[0]}")


@pytest.fixture(scope="module")
def page():
    driver = _chromium()  # skips before a server is started for nothing
    server = make_server(MODEL, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    driver.get(f"http://{host}:{port}/")
    yield driver
    driver.quit()
    server.shutdown()
    server.server_close()


def _wait(driver, condition, seconds=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: condition(d))


def _written(driver):
    """The output's path count once the drawing is done, or the page's error."""
    from selenium.webdriver.common.by import By

    error = driver.find_element(By.ID, "message")
    if "error" in (error.get_attribute("class") or ""):
        return ("error", error.text)
    svg = driver.find_element(By.ID, "output")
    if svg.get_attribute("data-done") == "true":
        return ("paths", len(svg.find_elements(By.TAG_NAME, "path")))
    return None


def _click_and_wait(driver, button_id):
    from selenium.webdriver.common.by import By

    driver.execute_script("document.getElementById('output').dataset.done = 'false';")
    driver.find_element(By.ID, button_id).click()
    return _wait(driver, _written)


def _draw(driver, strokes):
    """Draws strokes (y up, any units) on the pad with pen pointer events,
    fitted to the pad's middle."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    pad = driver.find_element(By.ID, "pad")
    width, height = pad.size["width"], pad.size["height"]
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    scale = min(0.85 * width / (high[0] - low[0]), 0.6 * height / (high[1] - low[1]))
    centre = (low + high) / 2
    pen = PointerInput(interaction.POINTER_PEN, "pen")
    actions = ActionBuilder(driver, mouse=pen, duration=5)
    for stroke in strokes:
        # Offsets from the pad's centre, y down; a canvas samples sparsely.
        xy = [(int(round((x - centre[0]) * scale)), int(round((centre[1] - y) * scale))) for x, y in stroke[::2]]
        actions.pointer_action.move_to(pad, *xy[0]).pointer_down()
        for x, y in xy[1:]:
            actions.pointer_action.move_to(pad, x, y)
        actions.pointer_action.pointer_up()
    actions.perform()
    _wait(driver, lambda d: pad.get_attribute("data-strokes") == str(len(strokes)), 10)


def _type(driver, element_id, text):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(text)


def test_type_write_and_watch_it_drawn(page):
    from selenium.webdriver.common.by import By

    _wait(page, lambda d: d.find_elements(By.ID, "style-0"), 30)  # the styles' pictures have loaded
    _type(page, "text", PARAGRAPH)
    _type(page, "seed", "3")
    _type(page, "candidates", "4")
    page.execute_script("const s = document.getElementById('bias'); s.value = '1';"
                        "s.dispatchEvent(new Event('input'));")
    kind, value = _click_and_wait(page, "write")
    assert kind == "paths" and value > 20, value
    assert page.find_element(By.ID, "bias-value").text == "1"
    assert page.find_element(By.ID, "download-png").is_enabled()
    if SCREENSHOTS:
        page.save_screenshot(os.path.join(SCREENSHOTS, "serve_paragraph.png"))


def test_bad_ink_gets_the_servers_message(page):
    from selenium.webdriver.common.by import By

    page.find_element(By.ID, "clear").click()
    _draw(page, [np.array([[0.0, 0.0], [40.0, 10.0], [80.0, 0.0]])])  # one stroke: not a line of writing
    _type(page, "prime-text", PRIME_TEXT)
    kind, value = _click_and_wait(page, "write-mine")
    assert kind == "error" and "at least 2 strokes" in value, value


def test_write_in_a_hand_drawn_on_the_pad(page):
    from selenium.webdriver.common.by import By

    page.find_element(By.ID, "clear").click()
    strokes = list(synthetic.write(PRIME_TEXT, np.random.default_rng(5)))
    _draw(page, strokes)
    _type(page, "prime-text", PRIME_TEXT)
    _type(page, "text", NEW_TEXT)
    _type(page, "seed", "1")
    kind, value = _click_and_wait(page, "write-mine")
    assert "selected" in page.find_element(By.ID, "style-mine").get_attribute("class")
    # An untrained or small model may not read the drawn line as its text; then
    # the page shows the server's reason, not a failure of its own.
    assert kind == "paths" and value > 5 or kind == "error" and "does not say" in value, (kind, value)
    if SCREENSHOTS:
        assert kind == "paths", value
        page.execute_script("document.getElementById('hand').scrollIntoView();"
                            "window.scrollBy(0, -document.getElementById('paper').offsetHeight - 40);")
        page.save_screenshot(os.path.join(SCREENSHOTS, "serve_primed.png"))
