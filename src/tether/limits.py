"""Every size limit, said once. The codec, the template sandbox, the tools, the flow
loader, the server and the blob stores read them from here; the guide quotes them.

* ``VALUE_MAX_BYTES`` — the largest value a store holds (a variable, a step result, a
  tool's result or meta, an http body): its JSON text. Larger fails the step with
  ``UnstorableValue`` (never silently cut).
* ``RENDER_MAX_CHARS`` — the most one template render may build (text, or a value an
  expression creates by ``*``/``+``/``join``...). A bare path (``{{ result }}``) builds
  nothing and passes a value through as it is, held only to ``VALUE_MAX_BYTES``.
* ``OFFLOAD_MIN_BYTES`` — values whose JSON text is at least this long are stored once,
  by content hash, in the blob store (the database's own table, or ``TETHER_BLOBS``);
  smaller ones stay inline in their row (and ``COMPRESS_MIN_BYTES`` and up are zstd-
  compressed there).
* ``CAPTURE_MAX_BYTES`` — the most of a shell step's stdout and of its stderr kept (the
  rest is cut, and ``meta.truncated`` says so): both and the parsed output together stay
  under ``VALUE_MAX_BYTES``.
* ``MAX_DEPTH`` — how deeply a stored value (and a request body) may nest.
* ``FLOW_MAX_BYTES`` — the largest flow file.
* ``REQUEST_MAX_BYTES`` — the largest request body ``tether serve`` reads (413 above):
  a value set through the API is at most this large; larger ones are set with the CLI
  or the Python API, or made by steps.
* ``BLOB_CACHE_BYTES`` — how many bytes of blobs a process keeps cached by hash.
* ``DECODED_KEEP_BYTES`` — how many bytes (of JSON text) of large committed values a
  process keeps decoded after a template read them back from the blob store (always at
  least the last one), so a loop reading one large value decodes it once.
"""
from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

VALUE_MAX_BYTES = 16 * MIB
RENDER_MAX_CHARS = 1 * MIB
OFFLOAD_MIN_BYTES = 256 * KIB
COMPRESS_MIN_BYTES = 1 * KIB
MAX_DEPTH = 64  # nesting of a stored JSON value
CAPTURE_MAX_BYTES = 4 * MIB
REQUEST_MAX_BYTES = 1 * MIB
FLOW_MAX_BYTES = 4 * MIB
BLOB_CACHE_BYTES = 64 * MIB
DECODED_KEEP_BYTES = 4 * MIB
