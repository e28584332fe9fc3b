"""The flow language as frozen pydantic models; :func:`json_schema` comes from them."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, overload

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds in ``30s``, ``5m``, ``1h``, ``250ms``, ``2d`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be like 30s, 5m, 1h, 7d or a number of seconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.fullmatch(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"invalid duration {value!r}: use 30s, 5m, 1h, 7d, 250ms or a number of seconds")


Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
              {"type": "number", "minimum": 0}],
    "description": "30s, 5m, 1h, 7d, 250ms or a number of seconds"})]
Template = str
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=128)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_INPUT_KEYS = {"type", "required", "default", "description"}


class InputSpec(_Frozen):
    """A run input. Shorthand: ``name: VALUE`` means a default with the type inferred."""

    type: Literal["string", "integer", "number", "boolean", "object", "array", "any"] = "any"
    required: bool = False
    default: Any = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict) and value and set(value) <= _INPUT_KEYS:
            return value
        kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
                 dict: "object"}
        return {"default": value, "type": kinds.get(type(value), "any")}


_ENV_KEYS = {"secret", "required", "default", "on_change", "critical", "description"}


class EnvSpec(_Frozen):
    """A declared environment variable. Shorthand: ``NAME: VALUE`` means a default."""

    secret: bool = False
    required: bool = False
    default: str | None = None
    on_change: Literal["warn", "fail", "keep"] = "warn"
    critical: bool = False
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        if value is None:
            return {}
        return {"default": str(value) if not isinstance(value, bool) else str(value).lower()}

    @model_validator(mode="after")
    def _no_keep_for_secrets(self) -> EnvSpec:
        if self.secret and self.on_change == "keep":
            raise ValueError("on_change: keep is not allowed for a secret variable "
                             "(its value is never recorded)")
        return self


class RetrySpec(_Frozen):
    attempts: int = Field(1, ge=1, le=1000)
    delay: Duration = 1.0
    backoff: Literal["fixed", "exponential"] = "fixed"
    max_delay: Duration = 60.0
    jitter: bool = False


class NextRule(_Frozen):
    when: Template | None = None
    goto: str


class VarsPhases(_Frozen):
    """``vars: {before: {...}, after: {...}}``: ``before`` is written before the tool runs."""

    before: dict[Identifier, Any] = Field(default_factory=dict)
    after: dict[Identifier, Any] = Field(default_factory=dict)


def _vars_block(value: Any) -> Any:
    if isinstance(value, dict):
        if value and value.keys() <= {"before", "after"} and all(isinstance(v, dict) for v in value.values()):
            return value
        return {"after": value}  # the plain form: variables written after the step
    return value


class RepeatSpec(_Frozen):
    """Run ``do`` again until ``until`` is true after an iteration, at most ``max`` times."""

    until: Template | bool
    max: int = Field(1000, ge=1, le=10_000_000)


MaxFailures = Annotated[int | Annotated[str, Field(pattern=r"^\d+(\.\d+)?%$")], Field(
    description="failed iterations tolerated: a count, or a percentage such as '10%'")]


def _body(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class Step(_Frozen):
    """One step of a flow."""

    id: Identifier
    desc: str | None = None
    if_: Template | bool | None = Field(None, alias="if")
    let: dict[Identifier, Any] = Field(default_factory=dict)
    tool: str | None = None
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    vars: Annotated[VarsPhases, BeforeValidator(_vars_block)] = Field(default_factory=VarsPhases)
    retry: RetrySpec | None = None
    timeout: Duration | None = None
    on_failure: str = "fail"
    next: str | list[NextRule] | None = None
    foreach: Template | list[Any] | None = None
    foreach_file: str | None = None
    json_path: str | None = None
    as_: Identifier = Field("item", alias="as")
    parallel: int = Field(1, ge=1, le=256)
    filter: Template | bool | None = None
    max_failures: MaxFailures = 0
    repeat: RepeatSpec | None = None
    do: Annotated[list[Step], BeforeValidator(_body)] | None = None
    lock: Template | None = None
    share: dict[Identifier, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _loop_shape(self) -> Step:
        if self.do is None and self.foreach is None and self.foreach_file is None and self.repeat is None \
                and self.json_path is None:
            return self  # the common case: not a loop
        looped = sum(x is not None for x in (self.foreach, self.foreach_file, self.repeat))
        if looped > 1:
            raise ValueError("a step has one of foreach, foreach_file or repeat, not several")
        if looped and not self.do:
            raise ValueError("a foreach or repeat step needs a 'do' body")
        if self.do and not looped:
            raise ValueError("'do' needs foreach, foreach_file or repeat")
        if self.do and self.tool is not None:
            raise ValueError("a loop step runs its 'do' body; it cannot also have a tool")
        if self.json_path is not None and self.foreach_file is None:
            raise ValueError("json_path needs foreach_file")
        return self

    @property
    def is_loop(self) -> bool:
        return self.do is not None

    @field_validator("tool")
    @classmethod
    def _tool_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value):
            raise ValueError(f"invalid tool name {value!r}")
        return value


class Defaults(_Frozen):
    retry: RetrySpec | None = None
    timeout: Duration | None = None


class CheckpointSpec(_Frozen):
    durability: Literal["normal", "full"] = "normal"


class MapSpec(_Frozen):
    """The ``map`` phase: a foreach over ``over`` or over a JSON file's ``json_path`` matches."""

    over: Template | list[Any] | None = None
    input: str | None = None
    json_path: str | None = None
    as_: Identifier = Field("item", alias="as")
    parallel: int = Field(1, ge=1, le=256)
    filter: Template | bool | None = None
    max_failures: MaxFailures = 0
    do: Annotated[list[Step], BeforeValidator(_body)]

    @model_validator(mode="after")
    def _source(self) -> MapSpec:
        if (self.over is None) == (self.input is None):
            raise ValueError("map needs exactly one of 'over' or 'input'")
        return self


KeyEnv = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                               description="the variable holding the API key (not TETHER_*)")]


class ModelSpec(_Frozen):
    """One entry of the top-level ``models:`` block: how ``tool: model`` reaches a model
    named by the block's key, and what its tokens cost (any currency unit per million)."""

    base_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    api_key_env: KeyEnv | None = None
    model: str | None = Field(None, min_length=1, description="the provider's model id, when it differs")
    input_per_million: float | None = Field(None, ge=0)
    output_per_million: float | None = Field(None, ge=0)
    max_concurrency: int | None = Field(None, ge=1, le=1024)

    @field_validator("api_key_env")
    @classmethod
    def _not_ours(cls, value: str | None) -> str | None:
        if value is not None and value.upper().startswith("TETHER_"):
            raise ValueError("Tether's own TETHER_* settings are never sent to a model server")
        return value


class Flow(_Frozen):
    """A whole flow file."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=128)]
    description: str | None = None
    inputs: dict[Identifier, InputSpec] = Field(default_factory=dict)
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], EnvSpec] = Field(
        default_factory=dict)
    vars: dict[Identifier, Any] = Field(default_factory=dict)
    computed: dict[Identifier, Template] = Field(default_factory=dict)
    secret_vars: list[Identifier] = Field(default_factory=list)
    temp_vars: list[Identifier] = Field(default_factory=list)
    defaults: Defaults = Field(default_factory=Defaults)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    retention: Duration | None = None  # finished runs older than this are deleted by serve/worker
    models: dict[Annotated[str, Field(min_length=1, max_length=200)], ModelSpec] = Field(
        default_factory=dict)
    steps: list[Step] = Field(default_factory=list)
    setup: list[Step] = Field(default_factory=list)
    map: MapSpec | None = None
    reduce: list[Step] = Field(default_factory=list)
    outputs: dict[Identifier, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _phases(self) -> Flow:
        if self.map is None:
            if self.setup or self.reduce:
                raise ValueError("setup and reduce need a map phase")
            if not self.steps:
                raise ValueError("a flow needs at least one step (or setup/map/reduce phases)")
            return self
        if self.steps:
            raise ValueError("a flow has either steps or setup/map/reduce phases, not both")
        m = self.map
        mapped = Step.model_validate({
            "id": "map", "as": m.as_, "parallel": m.parallel, "filter": m.filter,
            "max_failures": m.max_failures,
            "do": [d.model_dump(by_alias=True, exclude_unset=True) for d in m.do],
            **({"foreach": m.over} if m.over is not None
               else {"foreach_file": m.input, "json_path": m.json_path})})
        object.__setattr__(self, "steps", [*self.setup, mapped, *self.reduce])  # the phases are sugar
        return self

    def step_index(self) -> dict[str, int]:
        steps = self.steps
        ids = steps.ids() if isinstance(steps, LazySteps) else [s.id for s in steps]
        return {sid: i for i, sid in enumerate(ids)}


Step.model_rebuild()


class LazySteps(Sequence[Step]):
    """A flow's top-level steps, each built from its data when first read: what
    :func:`tether.flow.load_trusted` gives a flow whose data is exactly what was validated
    when its run started, so a resume builds the steps it runs, not all of them. Reads
    give the same Step (equal to a fully built flow's) every time."""

    __slots__ = ("_built", "_data")

    def __init__(self, data: list[dict[str, Any]], first: Step) -> None:
        self._data = data
        self._built: list[Step | None] = [first, *([None] * (len(data) - 1))]

    def __len__(self) -> int:
        return len(self._data)

    @overload
    def __getitem__(self, index: int) -> Step: ...

    @overload
    def __getitem__(self, index: slice) -> list[Step]: ...

    def __getitem__(self, index: int | slice) -> Step | list[Step]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._data)))]
        step = self._built[index]
        if step is None:
            step = self._built[index] = Step.model_validate(self._data[index])
        return step

    def ids(self) -> list[str]:
        """Every step's id, in order, without building the steps."""
        return [d["id"] for d in self._data]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and \
            all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # like a list


def lazy_flow(data: Any) -> Flow | None:
    """``data`` (a flow document that passed validation unchanged) as a Flow whose top-level
    steps are built when first read; None for a flow this does not pay for (fewer than
    two steps, or setup/map/reduce phases), which is then built whole."""
    if not isinstance(data, dict) or any(k in data for k in ("map", "setup", "reduce")):
        return None
    steps = data.get("steps")
    if not isinstance(steps, list) or len(steps) < 2:
        return None
    flow = Flow.model_validate({**data, "steps": steps[:1]})
    object.__setattr__(flow, "steps", LazySteps(steps, flow.steps[0]))
    return flow


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a flow file (draft 2020-12), for editors."""
    schema = Flow.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Tether flow"
    return schema

