"""The web UI (SPEC §8.4): server-rendered pages of runs, their timelines, variables and
time travel, and the repair actions, under ``/ui``. ``router`` is what ``create_app``
includes."""
from .routes import router

__all__ = ["router"]
