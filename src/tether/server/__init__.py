"""``tether serve``: the REST API (FastAPI), its tokens, event stream and metrics."""
