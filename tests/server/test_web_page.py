"""The chat page in headless Chromium (Debian's chromium + chromium-driver, driven by selenium):
type a message, submit, see the twin's reply as one bubble per ` | ` part; the API key is sent
as a Bearer header and stored only when asked; feedback buttons post a rating.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make setup` installs them when it runs as
root with apt). Without them this test fails with that instruction: it is never skipped.
"""
import os
import shutil
import tempfile
import time

import pytest

from server.app import create_app
from server.backends import LlamaCppBackend
from server.feedback import good_replies
from helpers.server import ScriptedBackend, running

CHROMIUM = os.environ.get("TWIN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TWIN_CHROMEDRIVER", "/usr/bin/chromedriver")
KEY = "page-key"


@pytest.fixture(scope="module")
def browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"headless Chromium is needed for the chat page test but {', '.join(missing)} is missing: "
                    "run `make setup` as root, or `apt-get install -y chromium chromium-driver`", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install -e '.[test]'", pytrace=False)
    profile = tempfile.mkdtemp(prefix="twin-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting in the page")


def bubbles(driver, who):
    from selenium.webdriver.common.by import By

    return [b.text for b in driver.find_elements(By.CSS_SELECTOR, f".bubble.{who}")]


def send(driver, text):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "text")
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def test_page_shows_reply_parts_as_bubbles_with_key_and_feedback(browser, tmp_path):
    from selenium.webdriver.common.by import By

    backend = ScriptedBackend(["omg hiii", " | im", " good DO", "NE junk"])
    app = create_app(backend, persona="maya", api_key=KEY, feedback_db=tmp_path / "f.sqlite")
    with running(app) as url:
        browser.get(url + "/")
        assert browser.title == "twin"
        send(browser, "hello, how are you?")  # no key yet: the page says so
        wait_for(lambda: "API key" in browser.find_element(By.ID, "status").text)
        browser.find_element(By.ID, "key").send_keys(KEY)
        send(browser, "Hello again")
        assert wait_for(lambda: bubbles(browser, "twin")) == ["omg hiii", "im good"]
        assert bubbles(browser, "me") == ["hello, how are you?", "Hello again"]
        # The key stays in memory only unless "remember" is ticked.
        assert browser.execute_script("return localStorage.getItem('twin-api-key')") is None
        browser.find_element(By.ID, "remember").click()
        assert browser.execute_script("return localStorage.getItem('twin-api-key')") == KEY
        browser.find_element(By.ID, "remember").click()
        assert browser.execute_script("return localStorage.getItem('twin-api-key')") is None
        # Thumbs up on the reply lands in the feedback database: the page sends the reply's id only,
        # the server stores its own record of the exchange.
        browser.find_element(By.CSS_SELECTOR, ".rate button").click()
        wait_for(lambda: browser.find_element(By.ID, "status").text == "thanks")
        records = good_replies(tmp_path / "f.sqlite", persona="maya")
        assert [r["completion"][0]["content"] for r in records] == ["omg hiii | im good DONE"]
        assert records[0]["prompt"][-1]["content"] == "hello again"
        # The second message went out with the conversation: the server kept the history.
        send(browser, "and u?")
        wait_for(lambda: len(bubbles(browser, "twin")) == 4)
        assert [m["content"] for m in backend.calls[-1][0][1:]] == ["hello again", "omg hiii | im good", "and u?"]


def test_page_cannot_be_framed_by_another_site(browser, tmp_path):
    """A page on another origin that frames the chat page gets nothing (X-Frame-Options / frame-ancestors)."""
    from selenium.webdriver.common.by import By

    app = create_app(ScriptedBackend(["hi"]), persona="maya")
    with running(app) as url:
        evil = tmp_path / "evil.html"
        evil.write_text(f'<html><body><iframe id="f" src="{url}/"></iframe></body></html>')
        browser.get(evil.as_uri())
        time.sleep(1.5)
        browser.switch_to.frame(browser.find_element(By.ID, "f"))
        try:
            assert browser.find_elements(By.ID, "text") == []  # the chat page did not load in the frame
        finally:
            browser.switch_to.default_content()


def test_page_against_the_tiny_gguf(browser, tiny_gguf):
    app = create_app(LlamaCppBackend(tiny_gguf, threads=1, context=512), persona="maya")
    with running(app) as url:
        browser.get(url + "/")
        send(browser, "tacos tonight?")
        shown = wait_for(lambda: bubbles(browser, "twin"), timeout=60)
        assert len(shown) >= 1 and not any("DONE" in b for b in shown)
