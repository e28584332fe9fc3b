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
