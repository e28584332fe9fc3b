"""A number variable's history as a small inline SVG line chart (no script, no library)."""
from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH, HEIGHT, PAD, LEFT = 600, 140, 16, 70
MAX_POINTS = 400


def numeric(values: Sequence[object]) -> list[float] | None:
    """The values as floats when every one is a number (not a bool) and there are two or
    more; else None."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        out.append(float(v))
    return out if len(out) >= 2 else None


def sparkline(xs: Sequence[int], ys: Sequence[float], label: str) -> Markup:
    """An SVG polyline of ``ys`` over ``xs`` (checkpoints), at most ``MAX_POINTS`` points
    (evenly sampled, the last kept), with its range as text and an accessible name."""
    if len(xs) > MAX_POINTS:
        step = len(xs) / MAX_POINTS
        keep = sorted({int(i * step) for i in range(MAX_POINTS)} | {len(xs) - 1})
        xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    sx = (WIDTH - LEFT - PAD) / ((x1 - x0) or 1)
    sy = (HEIGHT - 2 * PAD) / ((y1 - y0) or 1)
    points = " ".join(f"{LEFT + (x - x0) * sx:.1f},{HEIGHT - PAD - (y - y0) * sy:.1f}"
                      for x, y in zip(xs, ys, strict=True))
    labels = (f'<text x="{LEFT - 6}" y="{PAD + 4}" text-anchor="end">{y1:g}</text>'
              f'<text x="{LEFT - 6}" y="{HEIGHT - PAD}" text-anchor="end">{y0:g}</text>'
              f'<text x="{LEFT}" y="{HEIGHT - 2}">#{x0}</text>'
              f'<text x="{WIDTH - PAD}" y="{HEIGHT - 2}" text-anchor="end">#{x1}</text>')
    title = f"{label}: from {ys[0]:g} to {ys[-1]:g} (min {y0:g}, max {y1:g}) over checkpoints {x0} to {x1}"
    return Markup('<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">'
                  '<title>{t}</title><g class="labels" aria-hidden="true">{labels}</g>'
                  '<polyline fill="none" stroke="currentColor" stroke-width="2" points="{p}"/></svg>'
                  ).format(w=WIDTH, h=HEIGHT, t=title, p=points, labels=Markup(labels))
