"""The REST API (SPEC §8.3): every endpoint, bearer-token roles, the event stream and
``/metrics``. Runs sent to the API are queued and executed by the server's own worker
threads, or by ``tether worker`` processes (on PostgreSQL, where ``serve`` starts none
by default). Errors are JSON ``{error, message}``; bad input is a 4xx, never a 5xx.

``create_app`` builds the engine once, puts it and its companions on ``app.state`` (see
``deps``), installs the error handlers and body limits and includes one router per
resource (``routes/``)."""
from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ..engine.engine import Engine
from ..engine.lease import owner_id
from ..engine.retention import RetentionSweeper
from ..engine.worker import Worker
from ..settings import Settings
from ..store import open_store
from ..store.base import SharedLoopWork
from . import ui
from .bodies import ERRORS, MAX_BODY, MAX_DEPTH
from .handlers import install_error_handlers
from .hosts import HostGuard, local_names
from .limits import BodyLimits
from .metrics import Metrics
from .policy import ToolPolicy
from .routes import events, health, runs, variables

log = logging.getLogger(__name__)
SHUTDOWN_GRACE = 3.0  # seconds the runs in progress have to finish their step when the server stops


def create_app(db: str | None = None, *, tokens: dict[str, str] | None = None,
               allowed_tools: str | None = None, executor: int | None = None,
               settings: Settings | None = None, hosts: Iterable[str] = ()) -> FastAPI:
    """The API over the store ``db``. ``tokens`` maps token -> role (none: no auth, for
    loopback only, and only requests naming a loopback host or one of ``hosts`` are
    answered: see ``hosts.HostGuard``); ``executor`` threads run queued runs in this process (default 4,
    or 0 on PostgreSQL, where `tether worker` processes run them); ``settings`` configure
    the engine (default: from the environment). Every store call is counted for /metrics."""
    metrics = Metrics()
    engine = Engine(metrics.instrument(open_store(db, settings=settings)), settings=settings)
    shares = isinstance(engine.store, SharedLoopWork)  # structural: seen through the metrics wrapper
    threads = executor if executor is not None else (0 if shares else 4)
    worker = Worker(engine, threads) if threads else None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="tether-api")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        runner = (threading.Thread(target=worker.serve, name="tether-api-worker", daemon=True)
                  if worker else None)
        if runner:
            runner.start()
        # retention: and TETHER_RETENTION (the worker threads' own sweeper does it when there are any)
        sweeper = None if worker else RetentionSweeper(engine.store, engine.settings.retention,
                                                       owner_id()).start()
        yield
        if sweeper:
            sweeper.stop()
        if worker:
            worker.stop()  # runs in progress finish their step and go back to pending...
        if runner:
            runner.join(timeout=SHUTDOWN_GRACE)
        for run_id in engine.interrupt_all():  # ...within the grace; the rest are handed back now
            log.warning("serve: run %s interrupted as the server stops (its step's processes were "
                        "killed); a worker or the next server takes it over", run_id)
        if runner:
            runner.join(timeout=10)
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="Tether", version="0.1.0", lifespan=lifespan, responses=ERRORS,
                  description="Durable YAML workflows: runs, variables, events. See docs/api.md.")
    app.add_middleware(BodyLimits, max_bytes=MAX_BODY, max_depth=MAX_DEPTH)
    app.add_middleware(HostGuard)  # outermost: a refused Host is answered before the body is read
    install_error_handlers(app)
    app.state.engine, app.state.metrics, app.state.tokens = engine, metrics, tokens or {}
    app.state.policy, app.state.worker, app.state.pool = ToolPolicy(allowed_tools), worker, pool
    app.state.hosts = local_names(hosts)
    for routes in (health, runs, events, variables):
        app.include_router(routes.router)
    app.include_router(ui.router)
    return app
