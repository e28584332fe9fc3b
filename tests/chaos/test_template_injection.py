"""S1 (part): server-side template injection payloads, rendered in real flows with an
audit hook as a tripwire. None may run a process, exec code or open files under /etc,
and none may leak Python internals into a stored value."""
from __future__ import annotations

import re
import sys
import threading

import pytest

from tether import Engine

PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ lipsum.__globals__.__builtins__.__import__('os').system('id') }}",
    "{{ range.__init__.__globals__ }}",
    "{{ now.__globals__ }}",
    "{{ uuid.__globals__['uuidlib'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}",
    "{{ vars.__class__ }}",
    "{{ vars._get }}",
    "{{ steps.__init__ }}",
    "{{ inputs._keys }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ dict.mro()[1].__subclasses__() }}",
    "{{ config }}",
    "{{ request.application.__globals__ }}",
    "{{ get_flashed_messages.__globals__ }}",
    "{{ url_for.__globals__.os }}",
    "{{ ''.format.__globals__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '{0.__class__.__mro__}'.format(1) }}",
    "{{ '%s'|format(lipsum.__globals__) }}",
    "{{ [].append(1) }}",
    "{{ {}.update({'a': 1}) }}",
    "{{ vars.items.append(1) }}",
    "{{ (1).__class__.__subclasses__() }}",
    "{{ x.__class__ }}",
    "{% set a = ''.__class__ %}{{ a }}",
    "{% set x = namespace() %}{% set x.__class__ = 1 %}",
    "{{ ''.__class__.__init__.__globals__ }}",
    "{{ 'a'.__len__() }}",
    "{{ [1].pop() }}",
    "{{ ''.join.__self__ }}",
    "{{ lipsum.__code__ }}",
    "{{ cycler.__class__ }}",
    "{{ 'x'|attr('__init__')|attr('__globals__') }}",
    "{{ (lipsum|attr('__globals__')).os.popen('id') }}",
    "{{ self.__dict__ }}",
    "{{ tojson.__globals__ }}",
    "{{ [] | map(attribute='__class__') | list }}",
    "{{ ['__class__'] | map('attr', '__class__') | list }}",
    "{{ range(3).__iter__ }}",
    "{{ ''.__doc__ }}",
]

LEAK = re.compile(r"<(class|function|module|built-in|bound method|method-wrapper|TemplateReference|"
                  r"jinja2|frame|code)|__globals__|__builtins__|subprocess|posix")

_events: list[tuple[str, tuple]] = []
_armed = threading.local()


def _hook(event: str, args: tuple) -> None:
    if not getattr(_armed, "on", False):
        return
    # Jinja turns each template into Python code named "<template>" and runs it: that is
    # how every template renders. Anything else compiled or executed trips the wire.
    if event == "exec" and getattr(args[0], "co_filename", "") == "<template>":
        return
    if event == "compile" and len(args) > 1 and args[1] in ("<template>", b"<template>"):
        return
    if event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "exec", "compile") or (
            event == "open" and args and str(args[0]).startswith("/etc")):
        _events.append((event, args[:1]))


sys.addaudithook(_hook)


@pytest.fixture
def engine(tmp_path):
    e = Engine(f"sqlite:///{tmp_path / 'ssti.db'}")
    warm = tmp_path / "warm.yaml"  # the engine's first-use imports happen before the wire is armed
    warm.write_text("name: warm\nsteps: [{id: s, vars: {x: '{{ 1 + 1 }}'}}]\n")
    e.run(warm)
    yield e
    e.close()


def test_the_payload_list_is_substantial():
    assert len(PAYLOADS) >= 50


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_runs_nothing_and_leaks_nothing(engine, tmp_path, payload):
    flow = tmp_path / "f.yaml"
    import json
    text = json.dumps({"name": "ssti", "vars": {"x": 1},
                       "steps": [{"id": "s", "vars": {"out": payload, "embedded": f"value: {payload}"}}],
                       "outputs": {"out": "{{ vars.out | default('') }}"}})
    flow.write_text(text)
    _events.clear()
    _armed.on = True
    try:
        try:
            run = engine.run(flow)
        except Exception as exc:  # a flow refused at validation is fine; it must be our error
            from tether import TetherError
            assert isinstance(exc, TetherError), repr(exc)
            return
    finally:
        _armed.on = False
    assert _events == [], _events
    if run.status == "failed":
        assert run.error["type"] == "TemplateError"
        # the message may quote the payload and the name it asked for; nothing else of Python's
        message = re.sub(r"undefined name '[^']*'", "", run.error["message"].replace(payload, ""))
        assert not LEAK.search(message), run.error["message"]
    for value in list(run.vars.values()) + list((run.outputs or {}).values()):
        assert not LEAK.search(json.dumps(value)), value
