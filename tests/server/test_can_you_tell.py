"""The "Can you tell?" page: rounds from the test split behind the key, picks judged and stored
by the server, summarised by `twin eval`; and the page itself in headless Chromium.

The browser test needs /usr/bin/chromium and /usr/bin/chromedriver like tests/test_web_page.py
(it fails with that instruction when they are missing: it is never skipped).
"""
import json
import shutil

import pytest

from core import artifacts
from core.terminator import strip_terminator
from server.app import create_app
from server.can_you_tell import PAGE_PATH
from helpers.server import ScriptedBackend, running
from test_web_page import browser, wait_for  # noqa: F401 - the shared headless Chromium fixture
from trainer.judgements import summary

KEY = "friend-key"
TWIN_SAYS = ["omg tacos", " | ur the best DONE"]


@pytest.fixture
def workspace(sample_workspace, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace, root)
    return root


def _reals(workspace):
    lines = (workspace / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return {strip_terminator(json.loads(line)["completion"][0]["content"]) for line in lines}


def _app(workspace, **kwargs):
    return create_app(ScriptedBackend(TWIN_SAYS), persona="maya", api_key=KEY, workspace=workspace, **kwargs)


def auth():
    return {"Authorization": f"Bearer {KEY}"}


def test_rounds_are_judged_and_stored(workspace):
    client = _app(workspace).test_client()
    assert client.get(PAGE_PATH).status_code == 200  # the page holds no data: no key needed
    assert client.post(PAGE_PATH + "/round").status_code == 401
    reals = _reals(workspace)
    fooled = 0
    for n in range(6):
        response = client.post(PAGE_PATH + "/round", headers=auth())
        assert response.status_code == 200
        shown = response.get_json()
        assert shown["message"] and len(shown["replies"]) == 2
        twin_slot = shown["replies"].index("omg tacos | ur the best")
        assert shown["replies"][1 - twin_slot] in reals
        assert shown["parts"][twin_slot] == ["omg tacos", "ur the best"]
        pick = twin_slot if n % 2 == 0 else 1 - twin_slot  # fooled every other time
        fooled += pick == twin_slot
        answer = client.post(PAGE_PATH + "/answer", json={"id": shown["id"], "pick": pick}, headers=auth())
        assert answer.status_code == 200
        assert answer.get_json() == {"correct": pick != twin_slot, "real": 1 - twin_slot}
    again = client.post(PAGE_PATH + "/answer", json={"id": shown["id"], "pick": 0}, headers=auth())
    assert again.status_code == 409 and "already" in again.get_json()["error"]
    results = client.get(PAGE_PATH + "/results", headers=auth()).get_json()
    assert results["answered"] == 6 and results["fooled"] == fooled == 3 and results["share_fooled"] == 0.5
    assert summary(workspace / artifacts.JUDGEMENTS_FILE) == results  # what `twin eval` reads


@pytest.mark.parametrize("body, status", [
    ({"id": "nope", "pick": 0}, 404),
    ({"id": "x", "pick": 2}, 400),
    ({"id": "x", "pick": True}, 400),
    ({"pick": 0}, 400),
    ("not an object", 400),
])
def test_bad_answers_are_json_errors(workspace, body, status):
    client = _app(workspace).test_client()
    response = client.post(PAGE_PATH + "/answer", json=body, headers=auth())
    assert response.status_code == status and "error" in response.get_json()


def test_without_a_workspace_the_game_says_what_it_needs(tmp_path):
    app = create_app(ScriptedBackend(TWIN_SAYS), persona="maya")
    response = app.test_client().post(PAGE_PATH + "/round")
    assert response.status_code == 404 and "--workspace" in response.get_json()["error"]
    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    app = create_app(ScriptedBackend(TWIN_SAYS), persona="maya", workspace=empty)
    response = app.test_client().post(PAGE_PATH + "/round")
    assert response.status_code == 404 and "twin process" in response.get_json()["error"]


def test_a_damaged_test_split_is_named_and_the_rest_of_the_server_runs(workspace):
    with open(workspace / "data" / "test.jsonl", "a", encoding="utf-8") as handle:
        handle.write("{not a record\n")
    client = _app(workspace).test_client()
    response = client.post(PAGE_PATH + "/round", headers=auth())
    assert response.status_code == 404 and "test.jsonl:" in response.get_json()["error"]
    assert client.post("/generate", json={"text": "hi"}, headers=auth()).status_code == 200


def test_page_plays_a_round_in_the_browser(browser, workspace):  # noqa: F811 - the fixture
    from selenium.webdriver.common.by import By

    app = _app(workspace)
    with running(app) as url:
        browser.get(url + PAGE_PATH)
        assert "can you tell" in browser.title
        browser.find_element(By.ID, "next").click()  # no key yet: the page says so
        wait_for(lambda: "API key" in browser.find_element(By.ID, "status").text)
        browser.find_element(By.ID, "key").send_keys(KEY)
        browser.find_element(By.ID, "next").click()
        wait_for(lambda: browser.find_element(By.ID, "status").text == "which reply is real?")
        message = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#thread .message")]
        assert message and all(message)
        shown = [[b.text for b in browser.find_elements(By.CSS_SELECTOR, f"#choice{s} .parts .bubble")]
                 for s in (0, 1)]
        twin_slot = shown.index(["omg tacos", "ur the best"])
        browser.find_element(By.CSS_SELECTOR, f"#choice{twin_slot} .pick").click()  # fooled
        wait_for(lambda: browser.find_element(By.ID, "status").text.startswith("fooled"))
        assert browser.find_element(By.CSS_SELECTOR, f"#choice{twin_slot} .label").text == "twin"
        wait_for(lambda: "fooled in 1 of 1" in browser.find_element(By.ID, "tally").text)
    totals = summary(workspace / artifacts.JUDGEMENTS_FILE)
    assert totals["answered"] == 1 and totals["fooled"] == 1


def test_a_twin_that_says_nothing_is_a_503_not_an_empty_round(workspace):
    app = create_app(ScriptedBackend(replies=[[" DONE"]]), persona="maya", api_key=KEY, workspace=workspace)
    response = app.test_client().post(PAGE_PATH + "/round", headers=auth())
    assert response.status_code == 503 and "error" in response.get_json()
    assert summary(workspace / artifacts.JUDGEMENTS_FILE)["answered"] == 0
