"""Paper cuts of the API found by a new-user trial, through a real server."""
from __future__ import annotations

BAD_BODIES = [
    ({"flow": 3}, "body.flow: expected text, found 3"),
    ({}, "body.flow: required, not given"),
    ({"flow": "name: x\nsteps: []\n", "bogus": 1}, "body.bogus: unknown key"),
    ({"flow": "name: x\nsteps: []\n", "inputs": [1]}, "body.inputs: expected a mapping (key: value), found a list"),
]


def test_a_bad_body_is_described_in_tethers_words(server):
    client = server.client()
    for body, message in BAD_BODIES:
        reply = client.post("/api/runs", json=body)
        assert reply.status_code == 422, reply.text
        doc = reply.json()
        assert message in doc["message"], doc
        assert not any(w in reply.text for w in ("Input should", "Field required", "Extra inputs",
                                                 "pydantic.dev")), reply.text
    reply = client.post("/api/runs", json={"flow": "name: 3\nsteps:\n  - id: a\n    parallel: -1\n"})
    assert reply.status_code in (400, 422), reply.text
    assert "name: expected text, found 3" in reply.text and "Input should" not in reply.text, reply.text


def test_held_rewound_and_the_actions_a_run_page_offers(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import WRITE, Server
    db = f"sqlite:///{tmp_path / 'held.db'}"
    (tmp_path / "sl.yaml").write_text("name: sl\nvars: {secs: 0}\nsteps:\n  - id: first\n    vars: {n: 1}\n"
                                      "  - id: nap\n    tool: shell\n    with: {run: 'sleep {{ vars.secs }}'}\n")
    (tmp_path / "bad.yaml").write_text("name: bad\nsteps:\n  - id: boom\n    tool: shell\n    with: {run: 'exit 3'}\n")
    env = {k: v for k, v in os.environ.items() if k != "TETHER_DB"}

    def cli(*args: str, code: int = 0) -> None:
        proc = subprocess.run([sys.executable, "-m", "tether", "--db", db, *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == code, proc.stderr

    cli("run", "sl.yaml", "--run-id", "h1")
    cli("run", "bad.yaml", "--run-id", "f1", code=1)
    with subprocess.Popen([sys.executable, "-m", "tether", "--db", db, "resume", "h1", "--from", "nap",
                           "--set", "secs=30"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True) as proc:
        time.sleep(2.5)
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        proc.stderr.read()
        assert proc.wait(30) == 130
    with Server(db) as server:
        client = server.client()
        run = client.get("/api/runs/h1").json()
        assert run["status"] == "interrupted" and run["held"] is True, run
        assert client.get("/api/runs/f1").json()["held"] is False
        listed = {r["run_id"]: r for r in client.get("/api/runs").json()["runs"]}
        assert listed["h1"]["held"] is True and listed["f1"]["held"] is False
        steps = client.get("/api/runs/h1/steps").json()
        assert [(s["step_id"], s["rewound"]) for s in steps][:2] == [("first", False), ("nap", True)], steps
        # the UI: held said on the run page and in the list; only the actions the state allows
        page = client.get("/ui/runs/h1", headers={"Authorization": f"Bearer {WRITE}"}).text
        assert "(held: resume or cancel it)" in page
        assert all(f'data-action="{a}"' in page for a in ("resume", "fork", "cancel")), page
        assert 'data-action="pause"' not in page and 'data-action="delete"' not in page
        assert "held: resume or cancel" in client.get("/ui/", headers={"Authorization": f"Bearer {WRITE}"}).text
        failed = client.get("/ui/runs/f1", headers={"Authorization": f"Bearer {WRITE}"}).text
        assert 'data-action="pause"' not in failed and "(held:" not in failed
        assert all(f'data-action="{a}"' in failed for a in ("resume", "fork", "cancel", "delete"))
