"""S1: template bombs. Each is rendered as a step of a real flow in a fresh process and
must end the step with a TemplateError within 1 s, while the process's peak memory
grows by less than 64 MiB over all of them together (peak RSS only rises, so the total
bounds every single bomb)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each bomb runs to its limit in a fresh process

BOMBS = {
    "string multiplication": "{{ 'a' * 1000000000 }}",
    "string multiplication, reversed": "{{ 1000000000 * 'ab' }}",
    "list multiplication": "{{ [1] * 1000000000 }}",
    "nested list multiplication": "{{ ([0] * 1000000) * 1000 }}",
    "list of references multiplied, printed": "value: {{ ['x' * 1000000] * 1000 }}",
    "power": "{{ 9 ** 999999999 }}",
    "float power": "{{ 10.0 ** 400 }}",
    "range of 10^12": "{{ range(10 ** 12) | list }}",
    "nested range loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "nested range loops with output":
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "nested loops over a list": "{% set l = range(50000) | list %}{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}",
    "center": "{{ 'x' | center(1000000000) }}",
    "indent": "{{ ('x\\n' * 1000) | indent(1000000) }}",
    "indent first line": "{{ 'x' | indent(1000000000, true) }}",
    "wordwrap": "{{ 'x' | wordwrap(1000000000) }}",
    "format filter width": "{{ '%1000000000s' | format('x') }}",
    "format filter doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                              "{% set ns.s = '%s%s' | format(ns.s, ns.s) %}{% endfor %}",
    "str.format width": "{{ '{:>1000000000}'.format('x') }}",
    "str.format doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                           "{% set ns.s = '{}{}'.format(ns.s, ns.s) %}{% endfor %}",
    "% precision": "{{ '%.1000000000f' % 1.0 }}",
    "% doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = '%s%s' % (ns.s, ns.s) %}{% endfor %}",
    "replace": "{{ ('x' * 1000000) | replace('x', 'yyyyyyyyyy') }}",
    "replace the empty string": "{{ ('x' * 100000) | replace('', 'abcdefghijklmnopqrstuvwxyz') }}",
    "str.replace": "{{ ('x' * 1000000).replace('x', 'yyyyyyyyyy') }}",
    "str.ljust": "{{ 'x'.ljust(1000000000) }}",
    "str.zfill": "{{ '1'.zfill(1000000000) }}",
    "str.expandtabs": "{{ ('\\t' * 100000).expandtabs(100000) }}",
    "str.translate": "{{ ('x' * 1000000).translate({120: 'y' * 1000000}) }}",
    "str.join": "{{ ('x' * 1000000).join(['a'] * 1000) }}",
    "int.to_bytes": "{{ (1).to_bytes(1000000000, 'big') }}",
    "list doubled in a loop": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
                              "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
    "list nested in a loop": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
                             "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "list nested in a loop, as a value": "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
                                         "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l | tojson }}",
    "string doubled with ~": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                             "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "memory accumulated in a loop": "{% set ns = namespace(l=[]) %}{% for i in range(500) %}"
                                    "{% set ns.l = ns.l + [('x' * 1000000) ~ i] %}{% endfor %}{{ ns.l | length }}",
    "join with a huge separator": "{{ range(100000) | join('x' * 100000) }}",
    "join of references": "{{ (['x' * 1000000] * 1000) | join }}",
    "map to new strings": "{{ (['x' * 500000] * 1000) | map('tojson') | list | length }}",
    "sum of lists": "{{ ([[0] * 1000000] * 1000) | sum(start=[]) | length }}",
    "batch": "{{ range(10) | batch(1000000000, 'x') | list }}",
    "slice": "{{ range(10) | slice(1000000000) | list }}",
    "tojson of references": "{{ (['x' * 1000000] * 1000) | tojson }}",
    "string filter of references": "{{ (['x' * 1000000] * 1000) | string | length }}",
    "lipsum": "{{ lipsum(1000000000) }}",
    "recursive macro": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "macro fan-out": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "recursive loop": "{% for x in [[1, 2]] * 1000 recursive %}{{ loop([[1, 2]] * 1000) }}{% endfor %}",
}

CHILD = r'''
import json, resource, sys, time
from pathlib import Path
from tether import Engine
tmp = Path(sys.argv[1])
bombs = json.loads(Path(sys.argv[2]).read_text())
e = Engine(f"sqlite:///{tmp / 'bombs.db'}")
def flow(name, template):
    path = tmp / "bomb.json"
    path.write_text(json.dumps({"name": "bomb", "steps": [{"id": "boom", "vars": {"x": template}}]}))
    return path
for _ in range(3):  # warm up: imports, caches, the store's first writes
    e.run(flow("warm", "{% for i in range(1000) %}{{ i ~ 'x' }}{% endfor %}"))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name, template in bombs.items():
    path = flow(name, template)
    t = time.perf_counter()
    run = e.run(path)
    seconds = time.perf_counter() - t
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(json.dumps({"name": name, "seconds": seconds, "growth_kib": growth, "status": run.status,
                      "error": run.error}), flush=True)
'''


def test_template_bombs_stop_within_a_second_and_64_mib(tmp_path, figures):
    (tmp_path / "bombs.json").write_text(json.dumps(BOMBS))
    (tmp_path / "child.py").write_text(CHILD)
    proc = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path), str(tmp_path / "bombs.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["name"] for r in results] == list(BOMBS)
    problems = [r for r in results if r["status"] != "failed" or r["error"]["type"] != "TemplateError"
                or r["seconds"] >= 1.0]
    assert problems == [], problems
    growth = max(r["growth_kib"] for r in results)
    assert growth < 64 * 1024, results
    figures.update(bombs=len(BOMBS), slowest_s=round(max(r["seconds"] for r in results), 3),
                   peak_rss_growth_mib=round(growth / 1024, 1))
