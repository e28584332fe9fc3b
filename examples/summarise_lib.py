"""Python used by examples/summarise.yaml: the summary's shape and the final report."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

HERE = Path(__file__).resolve().parent


class Summary(BaseModel):
    """What the model is asked to return for each article."""

    title: str
    summary: str = Field(description="one or two sentences")
    keywords: list[str]
    difficulty: int = Field(ge=1, le=5, description="1 (for everyone) to 5 (for specialists)")


def read(path: str) -> str:
    """The text of an article bundled under examples/."""
    return (HERE / path).read_text(encoding="utf-8")


def report(summaries: list[dict]) -> str:
    """A short plain-text report of the summaries, easiest first."""
    lines = [f"{len(summaries)} articles summarised"]
    for s in sorted(summaries, key=lambda s: (s["difficulty"], s["title"])):
        lines.append(f"- {s['title']} (difficulty {s['difficulty']}): {s['summary']} "
                     f"[{', '.join(s['keywords'])}]")
    return "\n".join(lines)
