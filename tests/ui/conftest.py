"""A real ``tether serve`` subprocess on 127.0.0.1 over a temp SQLite store with real runs
(made with the CLI), and headless Chromium driven by selenium. A test that needs them is
skipped, saying why, when chromium, chromedriver or selenium are missing (scripts/test.sh
installs them)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .flows import BROKEN, CANARY, DEMO, OTHER

READ, WRITE = "read-token-ui-1234", "write-token-ui-5678"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe.min.js"
# TETHER_UI_SCREENSHOTS=docs/ui saves the main pages as PNG there (read at import: the
# suite's autouse fixture clears TETHER_* for each test)
SHOTS = os.environ.get("TETHER_UI_SCREENSHOTS")

try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

MISSING = ("the browser tests need chromium, chromedriver (apt-get install chromium chromium-driver) "
           "and selenium (pip install 'selenium>=4.20,<5'); scripts/test.sh installs them")


def need_browser() -> None:
    if not (CHROMIUM and DRIVER and HAVE_SELENIUM):
        pytest.skip(MISSING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Site:
    """The served store: its URL, its runs by role, and a CLI on the same database."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = f"sqlite:///{root / 'tether.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
        self.env.update(PYTHONPATH=os.pathsep.join(p for p in (str(HERE.parent.parent / "src"),
                                                              os.environ.get("PYTHONPATH", "")) if p),
                        API_KEY=CANARY)
        self.runs: dict[str, str] = {}
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.logf: Any = None

    def cli(self, *args: str, code: int | None = None) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-m", "tether", "--db", self.db, *args, "--json"],
                              capture_output=True, text=True, cwd=self.root, env=self.env, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        if code is not None:
            assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc

    def start(self) -> None:
        port = free_port()
        env = {**self.env, "TETHER_API_TOKENS": f"read:{READ},write:{WRITE}"}
        self.logf = log = (self.root / "serve.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "tether", "--db", self.db, "serve",
                                      "--host", "127.0.0.1", "--port", str(port)],
                                     cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("tether serve did not start: " + (self.root / "serve.log").read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf:
            self.logf.close()

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need_browser()
    root = tmp_path_factory.mktemp("ui")
    for name, text in (("demo.yaml", DEMO), ("other.yaml", OTHER), ("broken.yaml", BROKEN)):
        (root / name).write_text(text)
    s = Site(root)
    s.runs["paused"] = s.cli("run", "demo.yaml", code=3)["run_id"]
    s.runs["to_resume"] = s.cli("run", "demo.yaml", "-i", "n=3", code=3)["run_id"]
    s.runs["to_retry"] = s.cli("run", "demo.yaml", "-i", "n=3", code=3)["run_id"]
    s.runs["other"] = s.cli("run", "other.yaml", code=0)["run_id"]
    s.runs["failed"] = s.cli("run", "broken.yaml", code=1)["run_id"]
    s.start()
    yield s
    s.stop()
    assert "Traceback" not in s.log(), s.log()


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800", "--disable-extensions"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()
