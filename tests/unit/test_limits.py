"""Size limits are defined once, in tether.limits, and every module that enforces one reads
it from there (item 4 of issue 14)."""
from __future__ import annotations

from tether import limits, sandbox
from tether.flow import load
from tether.server import app
from tether.store import codec, shared_vars_sql
from tether.tools import http, shell


def test_every_enforcer_reads_the_one_definition():
    assert codec.MAX_VALUE_BYTES == sandbox.MAX_VALUE == http.MAX_BODY == limits.VALUE_MAX_BYTES
    assert sandbox.MAX_OUTPUT == limits.RENDER_MAX_CHARS
    assert codec.OFFLOAD_MIN == limits.OFFLOAD_MIN_BYTES == shared_vars_sql.MAX_SHARED_BYTES + 1
    assert codec.COMPRESS_MIN == limits.COMPRESS_MIN_BYTES
    assert codec.MAX_DEPTH == app.MAX_DEPTH == limits.MAX_DEPTH
    assert shell.MAX_CAPTURE == limits.CAPTURE_MAX_BYTES and 3 * shell.MAX_CAPTURE < limits.VALUE_MAX_BYTES
    assert load.MAX_FLOW_BYTES == limits.FLOW_MAX_BYTES and app.MAX_BODY == limits.REQUEST_MAX_BYTES


def test_the_limits_are_ordered_as_the_guide_says():
    assert limits.COMPRESS_MIN_BYTES < limits.OFFLOAD_MIN_BYTES < limits.RENDER_MAX_CHARS < limits.VALUE_MAX_BYTES
    assert limits.VALUE_MAX_BYTES // 4 <= limits.BLOB_CACHE_BYTES  # a value at the limit can be cached
