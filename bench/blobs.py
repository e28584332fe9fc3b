"""Large values and the blob store (``TETHER_BLOBS``): per-step time and storage.

    python -m bench.blobs [--steps 100] [--runs 5] [--blobs db,file,s3] [--small 1000]

A flow of ``--steps`` python steps, each returning 1 MiB of fresh random text (512 KiB of
random bytes as hex, which zstd packs to about half) and storing it in one variable
(``vars: {big: "{{ result }}"}``): the result and the variable are one blob. Run on a
fresh SQLite file per run with the blobs in the database's own table (``db``), in a
folder (``file``) and in an S3 bucket (``s3``: moto's standalone server on 127.0.0.1,
started here, unless ``AWS_ENDPOINT_URL`` names another). Prints, per store, the median
µs per step of ``--runs`` runs (after one warm-up; the stores' runs interleaved), and the
bytes the last run left in the database file and in the blob store. ``--small N`` also
times ``bench.steps``'s flow of N small-variable steps per store (values that never
reach the blob store).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.steps import flow_text as small_flow


def big_flow(steps: int) -> str:
    lines = ["name: bench_blobs\nsteps:"]
    for i in range(steps):
        lines.append(f"  - id: s{i}\n    tool: python\n    with:\n      code: |\n"
                     "        import os\n        def main():\n            return os.urandom(524288).hex()\n"
                     "    vars: {big: \"{{ result }}\"}")
    return "\n".join(lines) + "\n"


def start_moto() -> subprocess.Popen[bytes]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    return proc


def blobs_url(kind: str, folder: Path) -> str | None:
    if kind == "db":
        return None
    if kind == "file":
        return f"file://{folder / 'blobs'}"
    import boto3
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/tether"


def blob_bytes(store: Any) -> int:
    """Bytes of the blobs in an external blob store (0 for the database's own table)."""
    inner = getattr(store.blobs, "inner", None)
    root = getattr(inner, "root", None)
    if root is not None:
        return sum(p.stat().st_size for p in Path(root).glob("*/*"))
    bucket = getattr(inner, "bucket", None)
    if bucket is not None:
        import boto3
        pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sum(o["Size"] for page in pages for o in page.get("Contents", ()))
    return 0


def blob_ops(kind: str, folder: Path, n: int) -> dict[str, float]:
    """Median µs of one ``put`` of a new 1 MiB value's payload (encoded as the codec does:
    about 0.5 MiB after zstd) and of one uncached ``get``, straight on the blob store."""
    from tether.settings import Settings
    from tether.store import codec, open_store
    store = open_store(f"sqlite:///{folder / f'ops{uuid.uuid4().hex[:8]}.db'}",
                       settings=Settings(blobs=blobs_url(kind, folder / f"ops-{kind}")))
    inner = getattr(store.blobs, "inner", store.blobs)
    puts, gets = [], []
    for _ in range(n):
        digest, payload = codec.encode(os.urandom(524288).hex()).blob or ("", b"")
        t = time.perf_counter()
        inner.put(digest, payload)
        puts.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert inner.get(digest) == payload
        gets.append(time.perf_counter() - t)
    store.close()
    return {"put_us": round(statistics.median(puts) * 1e6), "get_us": round(statistics.median(gets) * 1e6)}


def one_run(text: str, steps: int, kind: str, folder: Path) -> tuple[float, int, int]:
    from tether import Engine
    from tether.flow import load_flow_text
    from tether.settings import Settings
    loaded = load_flow_text(text)
    db = folder / f"b{uuid.uuid4().hex[:8]}.db"
    sub = folder / db.stem
    sub.mkdir()
    engine = Engine(f"sqlite:///{db}", settings=Settings(blobs=blobs_url(kind, sub)))
    t = time.perf_counter()
    run = engine.run(loaded)
    elapsed = time.perf_counter() - t
    assert run.status == "completed", run
    engine.store.checkpoint_wal()  # type: ignore[attr-defined]
    sizes = db.stat().st_size, blob_bytes(engine.store)
    engine.close()
    return elapsed / steps * 1e6, *sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--blobs", default="db,file,s3", help="comma-separated: db, file, s3")
    ap.add_argument("--small", type=int, default=0, help="also time N small-variable steps per store")
    ap.add_argument("--ops", type=int, default=0, help="only time N puts and gets of 1 MiB values per store")
    args = ap.parse_args()
    kinds = args.blobs.split(",")
    moto = start_moto() if "s3" in kinds and not os.environ.get("AWS_ENDPOINT_URL") else None
    out: dict[str, Any] = {"steps": args.steps, "runs": args.runs, "value_bytes": 1024 * 1024}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if args.ops:
                for kind in kinds:
                    out[kind] = blob_ops(kind, folder, args.ops)
                    print(f"{kind:>4}: put {out[kind]['put_us']:,} µs, get {out[kind]['get_us']:,} µs "
                          "(medians, one new 1 MiB value)", file=sys.stderr)
                kinds = []
            for kind in kinds:  # warm-up
                one_run(big_flow(5), 5, kind, folder)
            big: dict[str, list[tuple[float, int, int]]] = {k: [] for k in kinds}
            small: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(args.runs):  # interleaved, so a busy machine slows every store alike
                for kind in kinds:
                    big[kind].append(one_run(big_flow(args.steps), args.steps, kind, folder))
                    if args.small:
                        small[kind].append(one_run(small_flow(args.small, "normal"), args.small, kind,
                                                   folder)[0])
            for kind in kinds:
                per = [r[0] for r in big[kind]]
                doc: dict[str, Any] = {"median_us_per_step": round(statistics.median(per)),
                                       "runs_us_per_step": [round(x) for x in per],
                                       "db_bytes": big[kind][-1][1], "blob_bytes": big[kind][-1][2]}
                if args.small:
                    doc["small_median_us_per_step"] = round(statistics.median(small[kind]), 1)
                    doc["small_runs_us_per_step"] = [round(x, 1) for x in small[kind]]
                out[kind] = doc
                print(f"{kind:>4}: 1 MiB steps median {doc['median_us_per_step']:,} µs/step "
                      f"{doc['runs_us_per_step']}; database {doc['db_bytes'] / 1e6:.2f} MB, "
                      f"blob store {doc['blob_bytes'] / 1e6:.2f} MB"
                      + (f"; small steps median {doc['small_median_us_per_step']} µs/step "
                         f"{doc['small_runs_us_per_step']}" if args.small else ""), file=sys.stderr)
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
