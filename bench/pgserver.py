"""The PostgreSQL server of a bench invocation: a fresh database on ``TETHER_TEST_PG``'s
server when that is set, else a throw-away server of its own, started like
``scripts/postgres.sh`` does (``synchronous_commit`` on, the server's default, in both)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

PG_BIN = Path(os.environ.get("TETHER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_pg(cmd: list[str]) -> None:
    """Run ``cmd`` (the server refuses to run as root: as root, as the ``postgres`` user)."""
    if os.geteuid() == 0:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)],
                       check=True, capture_output=True, timeout=120)
    else:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


@contextmanager
def postgres(shared: str | None = None) -> Iterator[str]:
    """A ``postgresql://`` URL of an empty database on server ``shared`` (default:
    ``TETHER_TEST_PG``'s) or, with neither, of a server of its own; dropped (or the server
    removed) after."""
    shared = shared or os.environ.get("TETHER_TEST_PG")
    if shared:
        parts = urlsplit(shared)
        name = f"tether_bench_{os.getpid()}"
        where = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
                 "-U", parts.username or "postgres"]
        subprocess.run([str(PG_BIN / "createdb"), *where, name], check=True, capture_output=True)
        try:
            yield f"{parts.scheme}://{parts.netloc}/{name}"
        finally:
            subprocess.run([str(PG_BIN / "dropdb"), *where, "--force", name], capture_output=True)
        return
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-pg."))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    _as_pg([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{folder}'\n"
                   "max_connections = 300\n")
    _as_pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)
