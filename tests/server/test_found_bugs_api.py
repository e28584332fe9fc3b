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


ALIAS_BOMB = "name: bomb\nvars:\n  a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"  {n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=False)) + "steps:\n  - id: s\n"


def test_an_alias_bomb_sent_to_the_api_is_a_400_at_once(server):
    import time
    c = server.client()
    started = time.monotonic()
    r = c.post("/api/runs", json={"flow": ALIAS_BOMB})
    assert time.monotonic() - started < 2
    assert r.status_code == 400 and r.json()["error"] == "FlowError" and "alias" in r.json()["message"], r.text


def test_a_variable_put_on_a_queued_run_is_kept_by_its_first_commit():
    """POST /api/runs queues the run (on PostgreSQL the server runs none itself); a PUT of
    a variable before a worker takes it is kept: the flow's initial ``vars:`` do not
    overwrite it (they did: ``done`` ended 1, not 51)."""
    from tests.conftest import drop_schema, postgres_url
    from tests.server.conftest import Server
    from tether import Engine
    url = postgres_url()
    try:
        with Server(url) as server:
            c = server.client()
            flow = 'name: cnt\nvars: {done: 0}\nsteps:\n  - id: bump\n    vars: {done: "{{ vars.done + 1 }}"}\n'
            assert c.post("/api/runs", json={"flow": flow, "run_id": "cnt5"}).status_code == 201
            put = c.put("/api/vars/cnt5/done", json={"value": 50})
            assert put.status_code == 200 and put.json()["version"] == 1, put.text
            worker = Engine(url)
            try:
                done = worker.work_once()
                assert done is not None and done.status == "completed"
            finally:
                worker.close()
            assert c.get("/api/vars/cnt5").json()["variables"]["done"]["value"] == 51
    finally:
        drop_schema(url)
