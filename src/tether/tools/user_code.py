"""User code beside the flow: ``module:attribute`` imported with the flow's folder on
``sys.path`` (the python tool's ``function``, a model step's pydantic ``schema``). One lock
for every import, because two threads adding to ``sys.path`` and importing the same new
module at once can see it half-initialised."""
from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from ..errors import ToolError

_import_lock = threading.Lock()


def import_object(spec: str, base_dir: str, tool: str, what: str) -> Any:
    """The object ``spec`` (``module:attr``, ``attr`` dotted) names, importing ``module``
    from ``base_dir`` first; a ToolError (not retryable) naming ``tool`` and ``what`` when
    the spec is malformed, the module does not import or the attribute is missing."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ToolError(f"{tool}: {what} must look like 'module:name', not {spec!r}",
                        type_="ArgumentError", retryable=False)
    module_name, _, attr = spec.partition(":")
    with _import_lock:
        if base_dir not in sys.path:
            sys.path.insert(0, base_dir)
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ToolError(f"{tool}: cannot import {module_name!r} for {what}: {exc}", type_="ImportError",
                            retryable=False) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ToolError(f"{tool}: {module_name!r} has no attribute {attr!r}", type_="ImportError",
                            retryable=False) from None
    return obj
