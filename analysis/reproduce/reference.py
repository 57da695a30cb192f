"""The reference lab's published numbers, read from ``data/reference/pinglab.json``.

The file is data, not code: ``values`` maps a dotted key (``budgets.e100.ping.off.best_accuracy``)
to ``{"value": number, "unit": str, "source": source-key, "note": str}``, and ``sources`` maps a
source key to ``{"path": file in the lab's repository, "commit": commit (prefix), "what": ...}``.
A value the lab did not publish is simply absent; :meth:`Reference.get` then returns None and
the tables say so. A present value that is not a finite number, or that names an unknown
source, makes the whole file invalid (one-line ValueError).
"""

from __future__ import annotations

import json
import math
from importlib.resources import files
from typing import NamedTuple

# the shipped file, through the package (data/reference/ is installed as ei_sim.reference)
DEFAULT_PATH = str(files("ei_sim.reference").joinpath("pinglab.json"))


class Entry(NamedTuple):
    value: float
    unit: str
    source: str  # "path @ commit"
    note: str


class Reference(NamedTuple):
    path: str
    lab: str
    entries: dict  # key -> Entry

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)


def load_reference(path: str | None = None) -> Reference:
    """Read and validate a reference file (module docstring)."""
    path = path or DEFAULT_PATH
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"reference file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"reference file {path} is not readable JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("values"), dict):
        raise ValueError(f"reference file {path} has no 'values' table")
    sources = doc.get("sources") or {}
    entries = {}
    for key, item in doc["values"].items():
        if not isinstance(item, dict) or "value" not in item:
            raise ValueError(f"reference file {path}: {key} has no value")
        value = item["value"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"reference file {path}: {key} is not a finite number ({value!r})")
        src = sources.get(item.get("source"))
        if not isinstance(src, dict) or "path" not in src:
            raise ValueError(
                f"reference file {path}: {key} names an unknown source {item.get('source')!r}"
            )
        where = f"{src['path']} @ {src.get('commit', 'unknown')}"
        entries[key] = Entry(
            float(value), str(item.get("unit", "")), where, str(item.get("note", ""))
        )
    return Reference(path, str(doc.get("lab", "reference lab")), entries)
