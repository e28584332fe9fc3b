"""The UI's view models and bounded reads, without a browser (memory store)."""
from __future__ import annotations

import pytest

from tether import Engine, queries
from tether.errors import UsageError
from tether.server.ui import format as fmt
from tether.server.ui.charts import numeric, sparkline
from tether.server.ui.run_view import TIMELINE_PAGE, run_page
from tether.server.ui.runs_view import runs_page

LOOP = """
name: loopy
steps:
  - id: each
    foreach: "{{ range(40) | list }}"
    max_failures: 40
    do:
      id: body
      vars: {last: "{{ 1 // (item % 3) }}"}
"""


@pytest.fixture
def engine() -> Engine:
    return Engine("memory://")


def test_scan_runs_pages_through_a_filter_without_gaps_or_repeats(engine: Engine) -> None:
    made = []
    for i in range(25):
        flow = "wanted" if i % 3 == 0 else "other"
        made.append((flow, engine.run_text(f"name: {flow}\nsteps:\n  - id: s\n    vars: {{i: {i}}}\n").id))
    wanted = [rid for flow, rid in reversed(made) if flow == "wanted"]
    seen, cursor = [], None
    while True:
        page, cursor = queries.scan_runs(engine, flow="wanted", limit=2, cursor=cursor, scan=4)
        seen += [r.run_id for r in page]
        if cursor is None:
            break
    assert seen == wanted
    doc = runs_page(engine, {"q": wanted[0][:26]})
    assert [r["run_id"] for r in doc["runs"]] == [wanted[0]]
    with pytest.raises(UsageError):
        runs_page(engine, {"status": "sleeping"})


def test_loop_summary_is_capped_and_uses_a_finished_loops_counts(engine: Engine) -> None:
    run = engine.run_text(LOOP)
    summary = queries.loop_summary(engine, run.id, "each", failed_cap=5)
    assert summary["total"] == 40 and summary["counts"] == {"completed": 26, "failed": 14}
    assert [f["index"] for f in summary["failed"]] == [0, 3, 6, 9, 12]
    assert summary["failed"][1]["item"] == 3 and "ZeroDivisionError" in fmt.error_text(summary["failed"][1]["error"])
    page = run_page(engine, run.id, None, None)
    (loop,) = page["loops"]
    assert loop["counts"] == {"completed": 26, "failed": 14} and loop["done"] == 40


def test_the_timeline_is_paged(engine: Engine) -> None:
    steps = "\n".join(f"  - id: s{i}\n    vars: {{n: {i}}}" for i in range(TIMELINE_PAGE + 10))
    run = engine.run_text(f"name: many\nsteps:\n{steps}\n")
    first = run_page(engine, run.id, None, None)["timeline"]
    assert len(first["rows"]) == TIMELINE_PAGE and first["total"] == TIMELINE_PAGE + 10
    last = run_page(engine, run.id, None, str(TIMELINE_PAGE))["timeline"]
    assert [r["step_id"] for r in last["rows"]][-1] == f"s{TIMELINE_PAGE + 9}"
    with pytest.raises(UsageError):
        run_page(engine, run.id, "²", None)


def test_values_are_folded_capped_and_escaped() -> None:
    assert str(fmt.fold("<b>x</b>")) == "<code>&lt;b&gt;x&lt;/b&gt;</code>"
    big = str(fmt.fold({"k": "v" * (fmt.CAP * 2)}))
    assert big.startswith('<details class="fold">') and "more characters not shown" in big
    assert len(big) < fmt.CAP + 1000
    assert "failed" in str(fmt.status("failed"))  # the word, not a colour only


def test_charts_only_for_numbers() -> None:
    assert numeric([1, 2.5, 3]) == [1.0, 2.5, 3.0]
    assert numeric([True, False]) is None and numeric(["1", 2]) is None and numeric([1]) is None
    svg = str(sparkline(list(range(1000)), [float(i % 7) for i in range(1000)], "n"))
    assert svg.count(",") <= 402 + 10 and 'role="img"' in svg


def test_model_use_is_the_runs_usage() -> None:
    from tether.server.ui.run_view import spend
    assert spend({"input_tokens": 100, "output_tokens": 50, "cost": 0.002, "calls": 2}) == {
        "tokens": 150, "cost": 0.002}
    assert spend({"input_tokens": 10, "output_tokens": 5, "cost": None, "calls": 1}) == {"tokens": 15}
    assert spend({"input_tokens": 0, "output_tokens": 0, "cost": None, "calls": 0}) == {}


def test_without_tokens_only_a_loopback_host_name_is_served() -> None:
    from fastapi.testclient import TestClient

    from tether.server.app import create_app
    app = create_app("memory://", executor=0)
    with TestClient(app, base_url="http://127.0.0.1:8080") as local:
        assert local.get("/ui/").status_code == 200
    with TestClient(app, base_url="http://localhost") as local:
        assert local.get("/ui/").status_code == 200
    with TestClient(app, base_url="http://rebound.example:8080") as rebound:
        assert rebound.get("/ui/").status_code == 403
        r = rebound.post("/ui/runs/x1/actions/cancel", headers={"X-Tether-UI": "1"}, content="{}")
        assert r.status_code == 403


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_long_history_is_read_from_its_end(kind: str, tmp_path: object) -> None:
    from pathlib import Path
    db = "memory://" if kind == "memory" else f"sqlite:///{Path(str(tmp_path)) / 'h.db'}"
    engine = Engine(db)
    run = engine.run_text('name: h\nvars: {c: 0}\nsteps:\n  - id: each\n    foreach: "{{ range(30) | list }}"\n'
                          '    do:\n      id: b\n      vars: {c: "{{ vars.c + 1 }}"}\n')
    tail = engine.store.var_history(run.id, "c", last=5)
    assert [h.value for h in tail] == [26, 27, 28, 29, 30]
    assert [h.value for h in engine.store.var_history(run.id, "c", last=500)] == list(range(31))
    assert engine.store.var_history(run.id, "c", last=0) == []
    from tether.server.ui.history_view import var_page
    page = var_page(engine, run.id, "c")
    assert page["count"] == 31 and page["history"][0].value == 30 and page["chart"] is not None


def test_delete_is_offered_and_deletes_the_run(engine: Engine) -> None:
    from tether.errors import NotFound
    from tether.server.ui import actions
    from tether.server.ui.render import page
    run = engine.run_text("name: d\nsteps:\n  - id: s\n    vars: {x: 1}\n")
    html = page("run.html", role="write", auth=False, title="t", **run_page(engine, run.id, None, None)).body
    assert b'data-action="delete"' in html and b'data-action="fork"' in html
    read_only = page("run.html", role="read", auth=True, title="t", **run_page(engine, run.id, None, None)).body
    assert b"data-action" not in read_only
    assert actions.act(engine, run.id, "delete", {})["status"] == "deleted"
    with pytest.raises(NotFound):
        engine.record(run.id)


def test_blocks_are_capped() -> None:
    assert fmt.block({"a": 1}) == '{\n  "a": 1\n}'
    text = fmt.block("x" * (fmt.CAP + 5))
    assert text.endswith("5 more characters not shown") and len(text) < fmt.CAP + 100
