"""The API's request bodies and its documented error answers (for the OpenAPI schema)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import limits

MAX_BODY = limits.REQUEST_MAX_BYTES
MAX_DEPTH = limits.MAX_DEPTH


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRun(_Body):
    flow: str = Field(..., max_length=MAX_BODY, description="The flow as YAML (or JSON) text.")
    inputs: dict[str, Any] | None = None
    run_id: str | None = Field(None, max_length=64)


class ResumeRun(_Body):
    set: dict[str, Any] | None = None
    from_step: str | None = Field(None, max_length=128)
    retry_failed: bool = False


class ForkRun(_Body):
    set: dict[str, Any] | None = None
    from_step: str | None = Field(None, max_length=128)


class SetVars(_Body):
    variables: dict[str, Any] = Field(..., max_length=1000)
    var_type: Literal["user_defined"] = "user_defined"
    source_step: str = Field("api", max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")


class PutVar(_Body):
    value: Any = None
    expected_version: int | None = Field(None, ge=0)


class ErrorBody(BaseModel):
    error: str
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
    (400, "bad input: an invalid flow, name, value or request"), (401, "no or an unknown bearer token"),
    (403, "a read token on a write endpoint"), (404, "no such run, step or variable"),
    (409, "a stale expected_version, or a run owned by another process"),
    (413, "the request body is too large"),
    (422, "the request does not match its schema"), (503, "the store cannot be reached"))}
