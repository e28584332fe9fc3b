"""The web UI in a real browser against a real `tether serve` (issue 16): pages, time
travel, actions, roles, secrets, console errors and accessibility."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .browser import UI
from .conftest import READ, SHOTS, WRITE, Site

# A real tether serve and a headless browser: seconds per test (the quick subset leaves them out)
pytestmark = pytest.mark.slow


@pytest.fixture
def ui(site: Site, driver: Any) -> Iterator[UI]:
    driver.set_window_size(1280, 800)
    u = UI(driver, site.url)
    u.login(WRITE)
    yield u


def seq_of(site: Site, run_id: str, step: str) -> int:
    steps = site.cli("show", run_id)["steps"]
    return int(next(s["seq"] for s in steps if s["step_id"] == step))


def test_runs_list_shows_and_filters(site: Site, ui: UI) -> None:
    body = ui.text()
    for rid in site.runs.values():
        assert rid in body
    assert "paused" in body and "failed" in body and "completed" in body  # status as words
    ui.get("/ui/?status=failed")
    rows = ui.css("#runs-body tr")
    assert len(rows) == 1 and site.runs["failed"] in rows[0].text
    ui.get("/ui/?flow=other")
    assert [r.text.split()[0] for r in ui.css("#runs-body tr")] == [site.runs["other"]]
    ui.get("/ui/")  # the filter form itself
    ui.one("input[name=q]").send_keys(site.runs["paused"][:26])
    ui.one("form.filters button[type=submit]").click()
    ui.wait(lambda: "q=" in ui.d.current_url, what="the search")
    assert site.runs["paused"] in ui.text() and site.runs["other"] not in ui.text()
    ui.check()


def test_run_page_timeline_loops_variables(site: Site, ui: UI) -> None:
    rid = site.runs["paused"]
    ui.get(f"/ui/runs/{rid}")
    text = ui.text()
    gantt = ui.one("ol.gantt").text
    for step in ("first", "use_key", "items"):
        assert step in gantt
    assert "gate" in gantt and "current step" in gantt
    assert "loop 6/6, 2 failed" in gantt
    failed = ui.one("table.failed").text
    assert "bad item 1" in failed and "bad item 4" in failed
    assert "approve the batch?" in text
    rows = {r.find_element("css selector", "th").text: r.text for r in ui.css("table.vars tbody tr")}
    assert rows["token"].split()[1] == "***"
    assert re.search(r"counter 5 step_result run \d+ one", rows["counter"])
    assert ui.css("table.vars details.fold")  # the long note is folded
    assert "API_KEY" in ui.one("#h-env").find_element("xpath", "..").text
    ui.get(f"/ui/runs/{rid}/steps/items")
    assert "bad item 4" in ui.text() and "6 items" in ui.text()
    ui.get(f"/ui/runs/{rid}/steps/use_key")
    assert "key=***" in ui.text()
    failed_run = site.runs["failed"]
    ui.get(f"/ui/runs/{failed_run}")
    assert "ZeroDivisionError" in ui.text()
    ui.get(f"/ui/runs/{failed_run}/steps/crash")
    assert "Traceback" in ui.d.page_source and "1 / 0" in ui.d.page_source


def test_variable_history_and_state_at_a_checkpoint(site: Site, ui: UI) -> None:
    rid = site.runs["paused"]
    ui.get(f"/ui/runs/{rid}/vars/counter")
    values = [r.find_elements("css selector", "td")[4].text for r in ui.css("table.history tbody tr")]
    assert values == ["5", "4", "3", "2", "1", "0"]
    assert ui.css("svg.chart polyline")
    at = seq_of(site, rid, "first")
    ui.get(f"/ui/runs/{rid}?at={at}")
    assert f"as of checkpoint {at}" in ui.text()
    rows = {r.find_element("css selector", "th").text: r.text for r in ui.css("table.vars tbody tr")}
    assert rows["counter"].split()[1] == "1"
    assert rows["token"].split()[1] == "***"
    ui.get(f"/ui/runs/{rid}/vars/token")
    assert "***" in ui.text()


def test_diff_shows_a_changed_variable(site: Site, ui: UI) -> None:
    rid = site.runs["paused"]
    ui.get(f"/ui/runs/{rid}/diff?from=first&to=items")
    table = ui.one("table.diff").text
    assert re.search(r"counter was 1 now 5", table), table
    ui.one("input[name=from]").clear()
    ui.one("input[name=from]").send_keys("0")
    ui.one("form.filters button[type=submit]").click()
    ui.wait(lambda: "from=0" in ui.d.current_url, what="the new diff")
    assert "counter" in ui.text()
    ui.check()


def test_resume_with_a_set_value_completes_a_paused_run(site: Site, ui: UI) -> None:
    rid = site.runs["to_resume"]
    ui.get(f"/ui/runs/{rid}")
    ui.open_actions()
    ui.one("#resume-set").send_keys("approved=true")
    outcome = ui.submit_action("form[data-action=resume]")
    assert "resume" in outcome and "refused" not in outcome, outcome
    ui.wait(lambda: ui.d.get(site.url + f"/ui/runs/{rid}") or "completed" in ui.one("#run-status").text,
            what="the resumed run to complete")
    ui.check()
    rows = {r.find_element("css selector", "th").text: r.text for r in ui.css("table.vars tbody tr")}
    assert rows["approved"].split()[1] == "true" and rows["approved_seen"].split()[1] == "true"
    assert site.cli("show", rid)["status"] == "completed"


def test_retry_failed_iterations_with_a_fix_from_the_page(site: Site, ui: UI) -> None:
    rid = site.runs["to_retry"]
    ui.get(f"/ui/runs/{rid}")
    assert "bad item 1" in ui.one("table.failed").text
    ui.open_actions()
    ui.one("#resume-set").send_keys("fixed=true")
    ui.one("form[data-action=resume] input[name=retry_failed]").click()
    outcome = ui.submit_action("form[data-action=resume]")
    assert "refused" not in outcome, outcome
    ui.wait(lambda: ui.d.get(site.url + f"/ui/runs/{rid}") or (
        "paused" in ui.one("#run-status").text and not ui.css("table.failed")),
        what="the failed iteration to be retried and the run to pause at the gate again")
    assert "loop 3/3" in ui.one("ol.gantt").text and "failed" not in ui.one(".loop").text
    rows = {r.find_element("css selector", "th").text: r.text for r in ui.css("table.vars tbody tr")}
    assert rows["counter"].split()[1] == "4"  # 1 + the 3 items, the retried one included
    ui.check()


def test_fork_from_a_step_creates_a_linked_run(site: Site, ui: UI) -> None:
    rid = site.runs["paused"]
    ui.get(f"/ui/runs/{rid}")
    ui.open_actions()
    ui.one("#fork-from").send_keys("items")
    ui.one("#fork-set").send_keys("counter=50")
    outcome = ui.submit_action("form[data-action=fork]")
    assert "fork" in outcome and "refused" not in outcome, outcome
    ui.one("#outcome-link").click()
    ui.wait(lambda: "/ui/runs/" in ui.d.current_url and rid not in ui.d.current_url, what="the fork's page")
    child = ui.d.current_url.rsplit("/", 1)[-1]
    ui.wait(lambda: ui.d.get(site.url + f"/ui/runs/{child}") or "paused" in ui.one("#run-status").text,
            what="the fork to pause at the gate")
    ui.check()
    assert rid in ui.one("dl.facts").text  # its parent, linked
    assert ui.css(f'dl.facts a[href="/ui/runs/{rid}"]')
    rows = {r.find_element("css selector", "th").text: r.text for r in ui.css("table.vars tbody tr")}
    assert rows["counter"].split()[1] == "54"  # 50 from the fork, +4 successful items
    ui.get(f"/ui/runs/{rid}")
    assert ui.css(f'a[href="/ui/runs/{child}"]')  # the original lists its child


SLOW = "name: slow\nsteps:\n  - id: nap\n    tool: shell\n    with: {run: 'sleep 6'}\n"


def test_pages_update_live(site: Site, ui: UI) -> None:
    ui.get("/ui/")
    made = httpx.post(f"{site.url}/api/runs", json={"flow": SLOW},
                      headers={"Authorization": f"Bearer {WRITE}"})
    assert made.status_code == 201, made.text
    rid = made.json()["run_id"]
    ui.wait(lambda: rid in ui.one("#runs-body").text, what="the new run in the list, without a reload")
    ui.get(f"/ui/runs/{rid}")
    url = ui.d.current_url
    assert "completed" not in ui.one("#run-status").text  # still running when the page loaded
    ui.wait(lambda: "completed" in ui.one("#run-status").text, what="the run to complete, without a reload")
    assert ui.d.current_url == url
    assert "nap" in ui.one("ol.gantt").text
    ui.check()


def test_cancel_a_running_run_from_the_page(site: Site, ui: UI) -> None:
    made = httpx.post(f"{site.url}/api/runs", json={"flow": SLOW.replace("sleep 6", "sleep 60")},
                      headers={"Authorization": f"Bearer {WRITE}"})
    rid = made.json()["run_id"]
    ui.wait(lambda: ui.d.get(site.url + f"/ui/runs/{rid}") or "running" in ui.one("#run-status").text,
            what="the run to start")
    ui.open_actions()
    outcome = ui.submit_action("form[data-action=cancel]")
    assert "cancelled" in outcome, outcome
    ui.wait(lambda: ui.d.get(site.url + f"/ui/runs/{rid}") or "cancelled" in ui.one("#run-status").text,
            what="the run to be cancelled")
    ui.check()


def test_read_token_sees_no_actions_and_a_forged_post_is_refused(site: Site, ui: UI) -> None:
    rid = site.runs["paused"]
    ui.login(READ)
    ui.get(f"/ui/runs/{rid}")
    assert not ui.css("form[data-action]") and "Actions" not in ui.text()
    assert "read access" in ui.one("header").text
    url = f"{site.url}/ui/runs/{rid}/actions/cancel"
    ui_header = {"X-Tether-UI": "1", "Content-Type": "application/json"}
    forged = httpx.post(url, headers={**ui_header, "Authorization": f"Bearer {READ}"}, content="{}")
    assert forged.status_code == 403
    cookie_only = httpx.post(url, headers=ui_header, cookies={"tether_ui_token": WRITE}, content="{}")
    assert cookie_only.status_code == 401  # a cookie never authorises an action (CSRF)
    no_ui_header = httpx.post(url, headers={"Authorization": f"Bearer {WRITE}"}, content="{}")
    assert no_ui_header.status_code == 403
    api = httpx.post(f"{site.url}/api/runs/{rid}/cancel", headers={"Authorization": f"Bearer {READ}"})
    assert api.status_code == 403
    assert site.cli("show", rid)["status"] == "paused"
    anonymous = httpx.get(f"{site.url}/ui/runs/{rid}", follow_redirects=False)
    assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]
    assert rid not in anonymous.text
    ui.one("[data-logout]").click()
    ui.wait(lambda: "/ui/login" in ui.d.current_url, what="the login page after signing out")
    assert ui.d.execute_script("return sessionStorage.length") == 0
    ui.get(f"/ui/runs/{rid}")
    assert "/ui/login" in ui.d.current_url  # the cookie is gone too


def test_keyboard_reaches_the_content_first(site: Site, ui: UI) -> None:
    from selenium.webdriver.common.keys import Keys
    ui.get(f"/ui/runs/{site.runs['paused']}")
    ui.one("body").send_keys(Keys.TAB)
    assert ui.d.execute_script("return document.activeElement.className") == "skip"
    ui.d.switch_to.active_element.send_keys(Keys.ENTER)
    assert ui.d.execute_script("return document.activeElement.id") == "main"
    ui.d.switch_to.active_element.send_keys(Keys.TAB)
    focused = ui.d.execute_script("return document.activeElement.tagName")
    assert focused in ("A", "BUTTON", "SUMMARY", "INPUT", "TEXTAREA", "SELECT", "DIV")


def test_bad_input_is_a_clear_4xx(site: Site) -> None:
    rid = site.runs["paused"]
    auth = {"Authorization": f"Bearer {WRITE}"}
    for path, status in ((f"/ui/runs/{rid}?at=abc", 400), (f"/ui/runs/{rid}?at=99999", 404),
                         ("/ui/runs/no-such-run", 404), ("/ui/runs/bad%20id!", 400),
                         ("/ui/?status=nope", 400), (f"/ui/runs/{rid}/vars/nope", 404),
                         (f"/ui/runs/{rid}/vars/bad-name!", 400), (f"/ui/runs/{rid}/steps/nope", 404),
                         (f"/ui/runs/{rid}/diff?from=nope&to=1", 404), ("/ui/?cursor=nope", 404),
                         ("/ui/static/../../etc/passwd", 404)):
        r = httpx.get(site.url + path, headers=auth)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert "Traceback" not in r.text
    url = f"{site.url}/ui/runs/{rid}/actions/"
    h = {**auth, "X-Tether-UI": "1"}
    assert httpx.post(url + "explode", headers=h, content="{}").status_code == 400
    assert httpx.post(url + "resume", headers=h, content="not json").status_code == 400
    assert httpx.post(url + "resume", headers=h, content='{"set": {"bad name": 1}}').status_code == 400
    assert httpx.post(url + "pause", headers=h, content="{}").status_code == 409  # not running: a conflict


PAGES = ("/ui/", "/ui/runs/{paused}", "/ui/runs/{paused}?at=3", "/ui/runs/{paused}/vars/counter",
         "/ui/runs/{paused}/diff?from=first&to=items", "/ui/runs/{paused}/steps/items",
         "/ui/runs/{failed}", "/ui/runs/{failed}/steps/crash")


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_is_accessible_secret_free_and_error_free(site: Site, ui: UI, width: int) -> None:
    ui.d.set_window_size(width, 800 if width > 400 else 844)
    problems = {}
    for path in PAGES:
        ui.get(path.format(**site.runs))  # checks the canary and the console
        found = ui.axe()
        if found:
            problems[path] = found
        wide = ui.d.execute_script("return document.documentElement.scrollWidth")
        assert wide <= width + 1, f"{path} scrolls sideways at {width} px ({wide})"
    assert not problems, problems
    if SHOTS:
        for name, path in (("runs", "/ui/"), ("run", "/ui/runs/{paused}"), ("variable", "/ui/runs/{paused}/vars/counter"),
                           ("diff", "/ui/runs/{paused}/diff?from=first&to=items"), ("step", "/ui/runs/{failed}/steps/crash")):
            ui.get(path.format(**site.runs))
            ui.shot(SHOTS, f"{name}-{width}")
    ui.login(READ)
    ui.get("/ui/login")
    assert not ui.axe()
