"""``/api/health`` (no token needed) and ``/metrics`` (Prometheus text format)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ... import queries
from ...engine.engine import Engine
from ..deps import engine_of, reader, state_of

router = APIRouter()


@router.get("/api/health")
def health(engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    return {"status": "ok", "store": queries.store_kind(engine)}


@router.get("/metrics", dependencies=[Depends(reader)], response_model=None, responses={200: {
    "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}})
def prometheus(state: Any = Depends(state_of)) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
