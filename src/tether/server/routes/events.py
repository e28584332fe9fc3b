"""``/api/runs/{id}/events`` (a list, or with ``follow=true`` a server-sent event stream
until the run ends or pauses) and ``/api/runs/{id}/diff``."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ... import queries
from ...engine.engine import Engine
from ..deps import engine_of, reader, run_id_of

router = APIRouter()


@router.get("/api/runs/{run_id}/events", dependencies=[Depends(reader)], response_model=None,
            responses={200: {
    "description": "a JSON list of events; with follow=true a text/event-stream of them "
                   "until the run ends",
    "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "text/event-stream": {"schema": {"type": "string"}}}}})
def events(run_id: str, after: int = Query(0, ge=0, le=2**62), follow: bool = False,
           engine: Engine = Depends(engine_of)) -> Any:
    rid = run_id_of(run_id)
    engine.record(rid)
    if not follow:
        return queries.events(engine, rid, after)
    return StreamingResponse(_stream(engine, rid, after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def _stream(engine: Engine, rid: str, after: int) -> Iterator[bytes]:
    """Every event after ``after`` as it is committed, then ``end`` (``{"status"}``) once the
    run has ended, paused or was stopped by its owner (``queries.stream_end``)."""
    last = after
    while True:
        ended = queries.stream_end(engine, rid)
        for doc in queries.events(engine, rid, last):
            last = doc["seq"]
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (last, doc["type"].encode(), orjson.dumps(doc))
        if ended is not None:
            yield b"event: end\ndata: %s\n\n" % orjson.dumps({"status": ended})
            return
        time.sleep(0.2)


@router.get("/api/runs/{run_id}/diff", dependencies=[Depends(reader)])
def diff(run_id: str, from_: str = Query(..., alias="from", max_length=128),
         to: str = Query(..., max_length=128), engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    return engine.diff(run_id_of(run_id), from_, to)
