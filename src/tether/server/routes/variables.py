"""``/api/vars/{run_id}``: a run's variables — list, read, set several at once, put one
(optionally at an expected version), delete, history."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ... import queries
from ...engine.engine import Engine
from ...views import var_doc
from ..bodies import PutVar, SetVars
from ..deps import engine_of, reader, run_id_of, writer

router = APIRouter()


@router.get("/api/vars/{run_id}", dependencies=[Depends(reader)])
def get_vars(run_id: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    rid = run_id_of(run_id)
    variables = queries.variables(engine, rid)
    return {"run_id": rid, "variables": variables, "count": len(variables)}


@router.get("/api/vars/{run_id}/{name}", dependencies=[Depends(reader)])
def get_var(run_id: str, name: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    return {"run_id": run_id, **var_doc(engine.variable(run_id_of(run_id), name))}


@router.post("/api/vars/{run_id}", dependencies=[Depends(writer)])
def set_vars(run_id: str, body: SetVars, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    rid = run_id_of(run_id)
    engine.set_vars(rid, body.variables, source=body.source_step)  # all or none
    return {"run_id": rid, "variables_set": len(body.variables), "var_names": sorted(body.variables)}


@router.put("/api/vars/{run_id}/{name}", dependencies=[Depends(writer)])
def put_var(run_id: str, name: str, body: PutVar, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    rec = engine.set_var(run_id_of(run_id), name, body.value, body.expected_version)
    return {"run_id": run_id, **var_doc(rec)}


@router.delete("/api/vars/{run_id}/{name}", dependencies=[Depends(writer)])
def delete_var(run_id: str, name: str, engine: Engine = Depends(engine_of)) -> dict[str, Any]:
    engine.delete_var(run_id_of(run_id), name)
    return {"run_id": run_id, "var_name": name, "deleted": True}


@router.get("/api/vars/{run_id}/{name}/history", dependencies=[Depends(reader)])
def var_history(run_id: str, name: str, engine: Engine = Depends(engine_of)) -> list[dict[str, Any]]:
    return queries.var_history(engine, run_id_of(run_id), name)
