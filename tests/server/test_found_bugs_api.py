"""Bugs found by new users and a reliability probe (issue 12, item 6), through a real server."""
from __future__ import annotations

FLOW = "name: api\nsteps:\n  - id: a\n    vars: {x: 1}\n"


def test_runs_are_listed_newest_first_and_paged_by_cursor(server):
    c = server.client()
    ids = []
    for run_id in ("zzz-first", None, "aaa-third", None):
        body = {"flow": FLOW} if run_id is None else {"flow": FLOW, "run_id": run_id}
        r = c.post("/api/runs", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["run_id"])
    newest_first = ids[::-1]
    assert [r["run_id"] for r in c.get("/api/runs").json()["runs"]] == newest_first
    seen, cursor = [], None
    while True:
        page = c.get("/api/runs", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    gone = c.get("/api/runs", params={"cursor": "no-such-run"})
    assert gone.status_code == 404 and gone.json()["error"] == "NotFound"
