"""Validation of a parsed flow: the models' rules plus references, targets and cycles.

Every problem is reported, each as ``file:line:col: message``, with a
did-you-mean hint where a close match exists.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from jinja2 import nodes
from pydantic import BaseModel, ValidationError

from ..errors import FlowError, TemplateError
from ..templates import is_template, parse_ast
from ..validation_text import describe
from .models import (
    CheckpointSpec,
    Defaults,
    EnvSpec,
    Flow,
    InputSpec,
    MapSpec,
    ModelSpec,
    NextRule,
    RepeatSpec,
    RetrySpec,
    Step,
    VarsPhases,
)

if TYPE_CHECKING:  # only named in annotations: a stored flow is rebuilt without importing YAML
    from .load import Path_, Source


def _fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(path: Path_) -> type[BaseModel] | None:
    shape = tuple("#" if isinstance(p, int) else p for p in path)
    while (len(shape) > 2 and shape[-2:] in (("do", "#"),)) or (len(shape) > 2 and shape[-1] == "do"):
        return Step  # a loop body's step
    if shape in (("setup", "#"), ("reduce", "#"), ("map", "do", "#"), ("map", "do")):
        return Step
    if shape == ("map",):
        return MapSpec
    if shape and shape[-1] == "repeat":
        return RepeatSpec
    table: dict[tuple, type[BaseModel]] = {
        (): Flow, ("steps", "#"): Step, ("steps", "#", "retry"): RetrySpec,
        ("steps", "#", "next", "#"): NextRule, ("steps", "#", "vars"): VarsPhases,
        ("defaults",): Defaults, ("defaults", "retry"): RetrySpec, ("checkpoint",): CheckpointSpec,
    }
    if len(shape) == 2 and shape[0] == "inputs":
        return InputSpec
    if len(shape) == 2 and shape[0] == "env":
        return EnvSpec
    if len(shape) == 2 and shape[0] == "models":
        return ModelSpec
    return table.get(shape)


def hint(name: str, candidates: Any) -> str:
    """`` (did you mean 'x'?)`` for the closest candidates, or ""."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(m) for m in matches)}?)" if matches else ""


def _data_path(data: Any, loc: tuple) -> Path_:
    """Follow a pydantic error location through the data, skipping union/validator tags."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        if (isinstance(cur, dict) and part in cur) or (
                isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)):
            out.append(part)
            cur = cur[part]
        elif isinstance(part, str) and part == "[key]":
            continue
    return tuple(out)


def _model_problems(source: Source, exc: ValidationError) -> list[str]:
    problems: list[str] = []
    seen: set[tuple] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _data_path(source.data, loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            key = path[-1] if path else loc[-1]
            parent = path[:-1]
            model = _model_at(parent)
            h = hint(str(key), _fields(model)) if model else ""
            msg = f"unknown key {key!r}{h}"
            where = source.where(path, key=True)
        elif kind == "missing":
            msg = f"missing required key {loc[-1]!r}"
            where = source.where(path)
            if path:
                msg += f" in {'.'.join(map(str, path))}"
        else:
            field = ".".join(map(str, path)) or "flow"
            detail = describe(dict(err))  # Tether's words: expected X, found Y
            if "[key]" in loc and err["type"] == "string_pattern_mismatch":  # the rule of this kind of name
                detail = f"invalid name {path[-1]!r}: names must match {err['ctx']['pattern'].strip('^$')}"
            elif "[key]" in loc:
                detail = f"invalid name {path[-1]!r}: {detail}"
            msg = f"{field}: {detail}"
            where = source.where(path, key="[key]" in loc)
        if (where, path) in seen:
            continue
        seen.add((where, path))
        problems.append(f"{where}: {msg}")
    return problems


# ------------------------------------------------------------------ templates in the flow

def _templates(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        if is_template(value):
            yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _templates(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _templates(v, path + (i,))


_STEP_TEMPLATE_KEYS = ("if", "let", "with", "vars", "next", "foreach", "filter", "repeat", "lock", "share")


def _step_templates(step: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if not isinstance(step, dict):
        return
    for key in _STEP_TEMPLATE_KEYS:
        yield from _templates(step.get(key), path + (key,))
    body = step.get("do")
    for j, inner in enumerate([body] if isinstance(body, dict) else body if isinstance(body, list) else []):
        yield from _step_templates(inner, path + ("do",) + ((j,) if isinstance(body, list) else ()))


def all_steps(data: dict[str, Any]) -> Iterator[tuple[Path_, dict[str, Any]]]:
    """Every step of a flow document, loop bodies and phases included, with its path."""
    def walk(step: Any, path: Path_) -> Iterator[tuple[Path_, dict[str, Any]]]:
        if not isinstance(step, dict):
            return
        yield path, step
        body = step.get("do")
        if isinstance(body, dict):
            yield from walk(body, path + ("do",))
        elif isinstance(body, list):
            for j, inner in enumerate(body):
                yield from walk(inner, path + ("do", j))
    for key in ("setup", "steps", "reduce"):
        for i, st in enumerate(data.get(key) or [] if isinstance(data.get(key), list) else []):
            yield from walk(st, (key, i))
    m = data.get("map")
    if isinstance(m, dict):
        yield ("map",), {"id": "map", "do": m.get("do")}
        body = m.get("do")
        inners = [body] if isinstance(body, dict) else body if isinstance(body, list) else []
        for j, inner in enumerate(inners):
            yield from walk(inner, ("map", "do") + ((j,) if isinstance(body, list) else ()))


def flow_templates(data: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Every template string of a flow document with its path, in document order."""
    for key in ("vars", "computed", "outputs"):
        yield from _templates(data.get(key), (key,))
    for key in ("setup", "steps", "reduce"):
        for i, step in enumerate(data.get(key) or [] if isinstance(data.get(key), list) else []):
            yield from _step_templates(step, (key, i))
    m = data.get("map")
    if isinstance(m, dict):
        for key in ("over", "filter"):
            yield from _templates(m.get(key), ("map", key))
        body = m.get("do")
        inners = [body] if isinstance(body, dict) else body if isinstance(body, list) else []
        for j, inner in enumerate(inners):
            yield from _step_templates(inner, ("map", "do") + ((j,) if isinstance(body, list) else ()))


def references(ast: nodes.Node) -> Iterator[tuple[str, str]]:
    """(root, name) pairs for ``root.name`` / ``root['name']`` in a template AST."""
    for found in ast.find_all((nodes.Getattr, nodes.Getitem)):
        node = cast("nodes.Getattr | nodes.Getitem", found)
        base = node.node
        if not isinstance(base, nodes.Name):
            continue
        if isinstance(node, nodes.Getattr):
            yield base.name, node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield base.name, node.arg.value


@lru_cache(maxsize=4096)
def _template_references(text: str) -> tuple[tuple[str, str], ...] | str:
    """The ``(root, name)`` references of template ``text`` whose root it does not assign
    itself (a ``set`` or a loop variable), or its syntax error's message. Cached by text: a
    flow's templates repeat (the same expression in many steps), and parsing one is ~100 µs."""
    try:
        ast = parse_ast(text)
    except TemplateError as exc:
        return exc.message
    assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    return tuple((root, name) for root, name in references(ast) if root not in assigned)


def _steps(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    steps = data.get("steps")
    return [(i, st) for i, st in enumerate(steps) if isinstance(st, dict)] if isinstance(steps, list) else []


def _names(data: dict[str, Any], key: str) -> set[str]:
    value = data.get(key)
    return {str(k) for k in value} if isinstance(value, dict) else set()


def _reference_problems(source: Source) -> list[str]:
    data = source.data
    problems = []
    step_ids = {str(st.get("id")) for _, st in all_steps(data) if "id" in st}
    inputs, env = _names(data, "inputs"), _names(data, "env")
    known = {"inputs": inputs, "workload": inputs, "env": env, "steps": step_ids}
    label = {"inputs": "input", "workload": "input", "env": "environment variable", "steps": "step"}
    declare = {"inputs": "declare it under 'inputs:'", "workload": "declare it under 'inputs:'",
               "env": "declare it under 'env:'", "steps": "no step has that id"}
    for path, text in flow_templates(data):
        found = _template_references(text)
        if isinstance(found, str):
            problems.append(f"{source.where(path)}: template {text!r}: {found}")
            continue
        for root, name in found:
            if root in known and name not in known[root]:
                problems.append(f"{source.where(path)}: unknown {label[root]} {root}.{name}"
                                f"{hint(name, known[root]) or ' (' + declare[root] + ')'}")
    return problems


def _dependencies(computed: dict[str, Any], plain: set[str]) -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {}
    for name, text in computed.items():
        found: set[str] = set()
        deps[name] = found
        if not isinstance(text, str):
            continue
        try:
            ast = parse_ast(text)
        except TemplateError:
            continue
        for root, attr in references(ast):
            if root == "vars":
                found.add(attr)
        for n in ast.find_all(nodes.Name):
            if n.ctx == "load" and (n.name in computed or n.name in plain):
                found.add(n.name)
    return deps


def computed_dependencies(flow: Flow) -> dict[str, set[str]]:
    """For each computed variable, the variable names its expression reads."""
    return _dependencies(dict(flow.computed), set(flow.vars))


def _cycle_problems(source: Source) -> list[str]:
    computed = source.data.get("computed")
    if not isinstance(computed, dict):
        return []
    deps = _dependencies(computed, _names(source.data, "vars"))
    problems, reported = [], set()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for d in sorted(deps.get(node, ())):
            if d not in deps:
                continue
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    problems.append(f"{source.where(('computed', cycle[0]))}: computed variables form a "
                                    f"cycle: {' -> '.join(cycle)}")
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[node] = 2

    for name in deps:
        if name not in state:
            visit(name, [])
    return problems


def _graph_problems(source: Source) -> list[str]:
    from ..tools import known_tools

    data = source.data
    problems = []
    first: dict[str, str] = {}
    for path, st in all_steps(data):
        sid = st.get("id")
        if not isinstance(sid, str):
            continue
        if sid in first:
            problems.append(f"{source.where(path + ('id',))}: duplicate step id {sid!r} "
                            f"(first defined {first[sid]})")
        else:
            first[sid] = ("by the map phase" if path == ("map",)
                          else f"at line {source.where(path + ('id',)).rsplit(':', 2)[1]}")
        if len(path) > 2 and isinstance(st.get("next"), (str, list)):
            problems.append(f"{source.where(path + ('next',))}: 'next' is not allowed inside a loop body")
        on_failure = st.get("on_failure")
        if len(path) > 2 and isinstance(on_failure, str) and on_failure not in ("fail", "continue"):
            problems.append(f"{source.where(path + ('on_failure',))}: inside a loop body on_failure must be "
                            "'fail' or 'continue'")
        tool = st.get("tool")
        if len(path) > 2 and isinstance(tool, str) and tool == "pause":
            problems.append(f"{source.where(path + ('tool',))}: a pause step cannot be inside a loop body")
    top = {st.get("id") for _, st in _steps(data)} | {st.get("id") for key in ("setup", "reduce")
                                                      for st in (data.get(key) or []) if isinstance(st, dict)}
    if isinstance(data.get("map"), dict):
        top.add("map")
    ids = {i for i in top if isinstance(i, str)}
    targets = ids | {"end"}
    tools = known_tools()
    for i, st in _steps(data):
        nxt = st.get("next")
        if isinstance(nxt, str) and nxt not in targets:
            problems.append(f"{source.where(('steps', i, 'next'))}: goto target {nxt!r} is not a step"
                            f"{hint(nxt, targets)}")
        elif isinstance(nxt, list):
            for j, rule in enumerate(nxt):
                goto = rule.get("goto") if isinstance(rule, dict) else None
                if isinstance(goto, str) and goto not in targets:
                    problems.append(f"{source.where(('steps', i, 'next', j, 'goto'))}: goto target "
                                    f"{goto!r} is not a step{hint(goto, targets)}")
        on_failure = st.get("on_failure")
        if isinstance(on_failure, str) and on_failure not in ("fail", "continue") and on_failure not in ids:
            problems.append(f"{source.where(('steps', i, 'on_failure'))}: on_failure must be 'fail', "
                            f"'continue' or a step id, not {on_failure!r}"
                            f"{hint(on_failure, ids | {'fail', 'continue'})}")
    for path, st in all_steps(data):
        tool = st.get("tool")
        if isinstance(tool, str) and tool not in tools:
            problems.append(f"{source.where(path + ('tool',))}: unknown tool {tool!r}{hint(tool, tools)}")
    problems += _model_step_problems(source)
    computed = _names(data, "computed")
    for kind in ("secret_vars", "temp_vars"):
        names = data.get(kind)
        for j, name in enumerate(names if isinstance(names, list) else []):
            if name in computed:
                problems.append(f"{source.where((kind, j))}: {name!r} is a computed variable")
    return problems


def _model_step_problems(source: Source) -> list[str]:
    """``tool: model`` steps: ``with.model`` is given, and a literal name is configured in
    ``models:`` unless the step gives its own ``base_url``."""
    models = _names(source.data, "models")
    problems = []
    for path, st in all_steps(source.data):
        if st.get("tool") != "model":
            continue
        args = st.get("with")
        if not isinstance(args, dict) or "model" not in args:
            problems.append(f"{source.where(path + ('tool',))}: a model step needs 'with: {{model: NAME}}'")
            continue
        name = args["model"]
        if isinstance(name, str) and not is_template(name) and name not in models and "base_url" not in args:
            problems.append(f"{source.where(path + ('with', 'model'))}: model {name!r} is not configured: "
                            f"add it under 'models:' or give the step a 'base_url'{hint(name, models)}")
    return problems


def validate(source: Source) -> Flow:
    """The validated Flow of ``source``; FlowError listing every problem otherwise."""
    flow: Flow | None = None
    problems: list[str] = []
    try:
        flow = Flow.model_validate(source.data)
    except ValidationError as exc:
        problems = _model_problems(source, exc)
    problems += _graph_problems(source) + _reference_problems(source) + _cycle_problems(source)
    if problems or flow is None:
        problems.sort(key=_position)
        raise FlowError(f"{source.name}: the flow is not valid", problems)
    return flow


def _position(problem: str) -> tuple[int, int]:
    parts = problem.split(":")
    try:
        return int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return 0, 0
