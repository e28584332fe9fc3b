"""A thin helper over the selenium driver: sign in with a token, visit a page and check
what every page must satisfy (no secret canary, no console error), run axe-core."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .flows import CANARY

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


class UI:
    def __init__(self, driver: Any, url: str) -> None:
        self.d, self.url = driver, url
        self.visited: list[str] = []

    def wait(self, cond: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                got = cond()
            except Exception:  # a page in the middle of loading
                got = None
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} on {self.d.current_url}")

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By
        return list(self.d.find_elements(By.CSS_SELECTOR, selector))

    def one(self, selector: str) -> Any:
        found = self.css(selector)
        assert found, f"no {selector!r} on {self.d.current_url}"
        return found[0]

    def text(self) -> str:
        return str(self.one("main").text)

    def console_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.d.get_log("browser") if e.get("level") == "SEVERE"]

    def check(self) -> None:
        """The current page holds no secret and logged no console error."""
        assert CANARY not in self.d.page_source, f"secret canary on {self.d.current_url}"
        errors = self.console_errors()
        assert not errors, f"console errors on {self.d.current_url}: {errors}"

    def get(self, path: str) -> None:
        self.d.get(self.url + path)
        self.wait(lambda: self.d.execute_script("return document.readyState") == "complete", what="load")
        self.visited.append(path)
        self.check()

    def login(self, token: str) -> None:
        self.d.get(self.url + "/ui/login")  # same origin, to clear its storage
        self.d.delete_all_cookies()
        self.d.execute_script("sessionStorage.clear()")
        self.get("/ui/")
        assert "/ui/login" in self.d.current_url
        self.one("#token").send_keys(token)
        self.one("#login button[type=submit]").click()
        self.wait(lambda: "/ui/login" not in self.d.current_url and self.css("h1") and
                  self.one("h1").text == "Runs", what="the runs page after signing in")
        self.check()

    def open_actions(self) -> None:
        box = self.one("details#actions")
        if not box.get_attribute("open"):
            box.find_element("css selector", "summary").click()

    def submit_action(self, form: str) -> str:
        """Submit the action form ``form`` (a CSS selector), accept its confirmation and
        return the outcome text."""
        self.one(f"{form} button[type=submit]").click()
        alert = self.wait(lambda: self.d.switch_to.alert, what="the confirmation")
        alert.accept()
        return str(self.wait(lambda: (t := self.one("#action-outcome").text) and "sending" not in t and t,
                             what="the action's outcome"))

    def axe(self) -> list[dict[str, Any]]:
        """Serious and critical axe-core violations of the current page."""
        self.d.execute_script(AXE.read_text())
        result = self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
            ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));")
        return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                 "nodes": [n.get("target") for n in v.get("nodes", [])][:5]}
                for v in result if v.get("impact") in ("serious", "critical")]

    def shot(self, folder: str | None, name: str) -> None:
        """The current page, up to 2,000 px tall, as ``folder/name.png``."""
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            size = self.d.get_window_size()
            tall = self.d.execute_script("return document.documentElement.scrollHeight")
            self.d.set_window_size(size["width"], min(max(tall + 120, size["height"]), 2000))
            self.d.save_screenshot(str(Path(folder) / f"{name}.png"))
            self.d.set_window_size(size["width"], size["height"])
