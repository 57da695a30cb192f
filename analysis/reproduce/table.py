"""Comparison tables: the lab's value (with its source), ei-sim's, and the difference.

A row names a quantity, the reference key of the lab's value and ei-sim's measured value. A
missing lab value is written "no lab value" (never invented); a missing ei-sim value (a cliff
that cannot be located, a stage not run at this scale) is written with its reason.
"""

from __future__ import annotations

import html
import math
from typing import NamedTuple

from ei_sim.analysis.reproduce.reference import Reference


class Row(NamedTuple):
    quantity: str
    key: str | None  # reference key; None: the lab published no such number
    ours: float | None
    unit: str = ""
    note: str = ""  # why ours is missing, or how it was measured
    untrained: bool = False  # no training behind it (mean-field numbers): compared at any scale


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.4g}"


# The seed spread a difference is judged against, where a row states none: the lab's own
# three-seed spreads (nb036 diagonal: accuracy sd up to 0.88 points; E rate sd up to 10 %).
ACCURACY_SPREAD = 1.0  # points of %
RATE_SPREAD = (0.15, 0.3)  # relative, and at least this many Hz


def assessment(row: Row, lab: float, ours: float, epochs=None, lab_epochs=None) -> str:
    """Whether a difference lies within two seed spreads, and if not, what explains it."""
    spread = None
    if row.unit == "%":
        spread = ACCURACY_SPREAD
    elif row.unit == "Hz":
        spread = max(RATE_SPREAD[0] * abs(lab), RATE_SPREAD[1])
    if spread is None:
        return ""
    if abs(ours - lab) <= 2 * spread:
        return "within the seed spread"
    if epochs is not None and lab_epochs is not None and epochs < lab_epochs:
        return f"beyond the seed spread; ei-sim trained {epochs} of the lab's {lab_epochs} epochs"
    return "unexplained"


def compare(rows, reference: Reference, with_lab: bool = True, epochs=None,
            lab_epochs=None) -> list[dict]:  # fmt: skip
    """Rows with the lab's value, its source, the difference and its assessment filled in
    (``with_lab`` False: a miniature, compared with nothing but untrained numbers)."""
    out = []
    for r in rows:
        compared = with_lab or r.untrained
        entry = reference.get(r.key) if (r.key and compared) else None
        lab = None if entry is None else entry.value
        diff = rel = None
        judged = ""
        if lab is not None and r.ours is not None and math.isfinite(r.ours):
            diff = r.ours - lab
            rel = diff / abs(lab) if lab != 0 else None
            judged = assessment(r, lab, r.ours, None if r.untrained else epochs, lab_epochs)
        out.append(
            {
                "quantity": r.quantity,
                "unit": r.unit or ("" if entry is None else entry.unit),
                "lab": lab,
                "ours": r.ours,
                "difference": diff,
                "relative": rel,
                "source": (
                    "not compared (miniature)"
                    if not compared
                    else "no lab value"
                    if entry is None
                    else entry.source
                ),
                "note": "; ".join(x for x in (r.note, "" if entry is None else entry.note) if x),
                "assessment": judged,
            }
        )
    return out


def _cells(row) -> list[str]:
    diff = _fmt(row["difference"])
    if row["relative"] is not None:
        diff += f" ({100 * row['relative']:+.1f} %)"
    lab = _fmt(row["lab"]) if row["lab"] is not None else "no lab value"
    ours = _fmt(row["ours"]) if row["ours"] is not None else "not measured"
    return [row["quantity"], row["unit"], lab, ours, diff, row.get("assessment", ""),
            row["source"], row["note"]]  # fmt: skip


HEADER = ["quantity", "unit", "lab", "ei-sim", "difference", "assessment", "lab source", "note"]


def markdown(title: str, preamble: list[str], rows: list[dict], figures, verdicts=()) -> str:
    lines = [f"# {title}", ""] + [*preamble, ""]
    if verdicts:
        lines += ["## Verdicts on the lab's claims", ""]
        lines += [f"- {v.line()}" for v in verdicts] + [""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in _cells(row)) + " |")
    lines += [""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def html_page(title: str, preamble: list[str], rows: list[dict], figures, verdicts=()) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows
    )
    pre = "".join(f"<p>{esc(p)}</p>" for p in preamble)
    if verdicts:
        items = "".join(
            f"<li>{esc(v.claim)}: <b class='{esc(v.status.replace(' ', '-'))}'>"
            f"{esc(v.status)}</b>{esc(f' ({v.epochs} epochs)' if v.epochs else '')}"
            f"{esc(': ' + v.evidence if v.evidence else '')}</li>"
            for v in verdicts
        )
        pre += f"<h2>Verdicts on the lab's claims</h2><ul>{items}</ul>"
    figs = "".join(f"<img src='{esc(f)}' alt='{esc(f)}'>" for f in figures)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}img{max-width:48%}"
        ".reproduced{color:#1a7f37}.partly{color:#9a6700}.not-reproduced{color:#cf222e}"
        ".not-yet-run{color:#57606a}</style>"
        f"</head><body><h1>{esc(title)}</h1>{pre}<table><tr>{head}</tr>{body}</table>{figs}"
        "</body></html>"
    )
