"""The Jinja2 environment of the UI's templates (autoescaped; the helpers of ``format``
as filters) and the one function that turns a template and its context into a page."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import format as fmt

HERE = Path(__file__).parent
STATIC = HERE / "static"

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(fold=fmt.fold, when=fmt.when, duration=fmt.duration, status=fmt.status,
                   error_text=fmt.error_text, as_json=fmt.block)


def page(template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    """The ``template`` rendered with ``context`` as an HTML response that no cache
    keeps (pages show live state and may hold a run's data)."""
    html = env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                   "img-src 'self' data:; frame-ancestors 'none'"})
