"""Values the store cannot hold sent to the REST API (a real uvicorn on 127.0.0.1) are
refused with a 400 naming the variable and the limit; nothing is written."""
from __future__ import annotations

import pytest

from tests.server.conftest import wait_status

FLOW = "name: vals\nvars: {n: 1}\nsteps:\n  - id: a\n    vars: {m: 2}\n"


@pytest.mark.parametrize("body, reason", [
    ('{"value": NaN}', "NaN is not a number JSON can hold"),
    ('{"value": [1, -Infinity]}', "-Infinity is not a number JSON can hold"),
    ('{"value": {"id": 12345678901234567890123}}', "integer 12345678901234567890123 is beyond the 64-bit range"),
])
def test_put_and_post_vars_refuse_numbers_json_cannot_hold(server, body, reason):
    client = server.client()
    r = client.post("/api/runs", json={"flow": FLOW})
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    wait_status(client, run_id)
    put = client.put(f"/api/vars/{run_id}/n", content=body, headers={"Content-Type": "application/json"})
    assert put.status_code == 400, put.text
    assert put.json()["error"] == "UnstorableValue" and reason in put.json()["message"]
    assert "vars.n" in put.json()["message"]
    value = body[len('{"value": '):-1]
    post = client.post(f"/api/vars/{run_id}", content='{"variables": {"x": ' + value + "}}",
                       headers={"Content-Type": "application/json"})
    assert post.status_code == 400, post.text
    assert reason in post.json()["message"]
    variable = client.get(f"/api/vars/{run_id}/n").json()
    assert variable["value"] == 1 and variable["version"] == 1  # nothing was written
    assert client.get(f"/api/vars/{run_id}/x").status_code == 404
