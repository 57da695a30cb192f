"""Axis syntax of the sweeps: ``A..B`` (``points`` evenly spaced values, 5 by default),
``A..B:N`` (N values) or a comma list ``0,0.25,0.5``. Weights must be finite and >= 0."""

from __future__ import annotations

import math

import numpy as np


def parse_axis(text: str, points: int = 5, name: str = "axis") -> list[float]:
    """Values of one sweep axis; ValueError (one line) naming ``name`` on bad input."""
    text = str(text).strip()
    if points < 1:
        raise ValueError(f"--points must be >= 1, got {points}")
    try:
        if ".." in text:
            values = _range(text, points)
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"{name} {text!r}: {err}") from None
    if not values:
        raise ValueError(f"{name} {text!r} holds no values")
    for v in values:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} {text!r}: weights must be finite and >= 0, got {v}")
    return [float(v) for v in values]


def _range(text: str, points: int) -> list[float]:
    span, _, count = text.partition(":")
    if count:
        if not count.strip().isdigit() or int(count) < 1:
            raise ValueError(
                f"the number of points after ':' must be a positive integer, got {count!r}"
            )
        points = int(count)
    low_text, _, high_text = span.partition("..")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise ValueError("expected A..B with numbers A <= B (e.g. 0..2)") from None
    if high < low:
        raise ValueError(f"range end {high:g} is below its start {low:g}; write {high:g}..{low:g}")
    if points == 1 or high == low:
        return [low]
    return [round(v, 12) for v in np.linspace(low, high, points)]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected a comma list of integers") from None
    if not seeds:
        raise ValueError("--seeds holds no seeds")
    return seeds


def format_value(v: float) -> str:
    """0.5 -> '0p5', 2.0 -> '2' (names of cells and files)."""
    return f"{v:g}".replace(".", "p").replace("-", "m")
