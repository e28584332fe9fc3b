"""Overhead of a model step over the raw HTTP round trip, against a local chat-completions
server (tests/model/fake_openai.py on 127.0.0.1, answering at once).

    python -m bench.model [--calls 200] [--runs 5] [--json]

Three medians, in microseconds per call: the raw round trip (one ``httpx`` client posting
the same body), the ``openai`` client's call, and a ``tool: model`` step — the body of a
sequential ``foreach`` of ``--calls`` iterations on a fresh SQLite file, so each one is
the call plus its durable-result commit and the iteration's commit. The overhead is the
step's median minus the raw median.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


def raw_us(url: str, calls: int) -> float:
    """Median µs of one POST with a reused httpx client."""
    import httpx
    samples = []
    with httpx.Client() as client:
        for _ in range(calls):
            t = time.perf_counter()
            resp = client.post(f"{url}/chat/completions", json=BODY,
                               headers={"Authorization": "Bearer x", "Idempotency-Key": "k"})
            samples.append(time.perf_counter() - t)
            assert resp.status_code == 200
    return statistics.median(samples) * 1e6


def client_us(url: str, calls: int) -> float:
    """Median µs of one ``chat.completions.create`` of the openai client."""
    import openai
    client = openai.OpenAI(api_key="x", base_url=url, max_retries=0)
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        client.chat.completions.create(**BODY, extra_headers={"Idempotency-Key": "k"})  # type: ignore[call-overload]
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


def step_us(url: str, calls: int, folder: Path, k: int) -> float:
    """µs per model step: a sequential loop of ``calls`` model steps, wall time / calls."""
    from tether import Engine
    from tether.flow import load_flow_text
    loaded = load_flow_text(f"""name: bench_model
models: {{m: {{base_url: "{url}", input_per_million: 1, output_per_million: 1}}}}
steps:
  - id: each
    foreach: "{{{{ range({calls}) | list }}}}"
    do: {{id: ask, tool: model, with: {{model: m, prompt: "hello there"}}}}
""")
    engine = Engine(f"sqlite:///{folder / f'm{k}.db'}")
    t = time.perf_counter()
    run = engine.run(loaded)
    elapsed = time.perf_counter() - t
    assert run.status == "completed", run.error
    engine.close()
    return elapsed / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from tests.model.fake_openai import FakeOpenAI
    os.environ.setdefault("OPENAI_API_KEY", "x")
    server = FakeOpenAI().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            step_us(server.url, 20, Path(tmp), -1)  # warm-up: imports, the client, the first SQLite file
            raw = [raw_us(server.url, args.calls) for _ in range(args.runs)]
            sdk = [client_us(server.url, args.calls) for _ in range(args.runs)]
            step = [step_us(server.url, args.calls, Path(tmp), k) for k in range(args.runs)]
    finally:
        server.stop()
    doc = {"calls": args.calls, "runs": args.runs, "raw_http_us": round(statistics.median(raw), 1),
           "openai_client_us": round(statistics.median(sdk), 1),
           "model_step_us": round(statistics.median(step), 1),
           "overhead_us": round(statistics.median(step) - statistics.median(raw), 1),
           "every_run": {"raw_http_us": [round(x, 1) for x in raw],
                         "openai_client_us": [round(x, 1) for x in sdk],
                         "model_step_us": [round(x, 1) for x in step]}}
    if args.json:
        print(json.dumps(doc))
        return
    print(f"raw HTTP round trip   {doc['raw_http_us']:>9.1f} µs (median of {args.runs} runs of {args.calls})")
    print(f"openai client call    {doc['openai_client_us']:>9.1f} µs")
    print(f"tool: model step      {doc['model_step_us']:>9.1f} µs (call + durable result + iteration commit)")
    print(f"overhead over raw     {doc['overhead_us']:>9.1f} µs")


if __name__ == "__main__":
    main()
