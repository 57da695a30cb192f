"""Any parameter from the command line: ``--set KEY=VALUE`` and ``--config FILE.toml``.

A command builds frozen objects, the *targets*: ``model`` (the preset's network, e.g.
:class:`ei_sim.sim.classifier.EIClassifier` with its :class:`~ei_sim.sim.config.NetworkConfig`)
and, for the trainers, ``train`` (the recipe, :class:`ei_sim.training.config.TrainConfig` or
:class:`ei_sim.rate.train.RateTrainConfig`). Every field of a target, nested ones included, is
a *key*:

- ``model.tau_gaba_ms`` or just ``tau_gaba_ms`` (a field of the network configuration is
  addressed directly, without ``config.``); nested cell constants as ``cell_e.t_ref_ms``;
- ``train.budget`` or ``budget``.

A bare key must name one field of one target (else: "ambiguous", with both spellings). A value
is read with the field's type: numbers (finite), ``true``/``false``, text, ``none`` (or
``off``) where the field may be None, comma lists for tuples. The targets are rebuilt with
:func:`dataclasses.replace`, so every domain rule of a dataclass (``__post_init__``) runs on
the new values, and the error names the key. An unknown key is refused with the nearest valid
names (:func:`difflib.get_close_matches`).

``--config FILE.toml`` holds the same keys in tables ``[model]`` and ``[train]`` (nested
tables for nested keys, e.g. ``[model.cell_e]``), and optionally the command's own options
at the top level (``preset``, ``setting``, ``tier``, ...: :data:`CONFIG_OPTIONS`). Precedence:
the preset and tier defaults, then the file, then the command's flags, then ``--set``.

Fields that other options own are not keys: ``name`` and ``setting`` (``--model``,
``--setting``), the recipe's ``tier`` (``--tier``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Iterable

NOT_KEYS = {"name", "setting", "tier"}
NONE_WORDS = ("none", "off", "null")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "0")
# Top-level entries of a --config file that stand for a command option (argparse dest).
CONFIG_OPTIONS = ("preset", "setting", "tier", "seed", "epochs", "budget", "out")
TARGETS = ("model", "train")  # the tables a config file may hold


@dataclasses.dataclass(frozen=True)
class Key:
    """One settable field: its full dotted name, its path in the target, its type and value."""

    target: str  # "model" or "train"
    path: tuple  # attribute path from the target object, e.g. ("config", "cell_e", "t_ref_ms")
    type: str  # the field's annotation, e.g. "float | None"
    value: object  # its current value

    @property
    def name(self) -> str:
        """The key's name without the target: the path without a leading ``config``."""
        path = self.path[1:] if self.path[0] == "config" else self.path
        return ".".join(path)

    @property
    def full(self) -> str:
        return f"{self.target}.{self.name}"


def keys_of(target: str, obj) -> dict[str, Key]:
    """Every settable key of a target object, by its name (see the module doc)."""
    found: dict[str, Key] = {}

    def walk(o, path):
        hints = _type_hints(type(o))
        for f in dataclasses.fields(o):
            if f.name in NOT_KEYS and len(path) <= 1:
                continue
            value = getattr(o, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, (*path, f.name))
                continue
            key = Key(target, (*path, f.name), hints.get(f.name, str(f.type)), value)
            found[key.name] = key

    walk(obj, ())
    return found


def _type_hints(cls) -> dict[str, str]:
    """Field annotations as text (``from __future__ import annotations`` keeps them so)."""
    out = {}
    for klass in reversed(cls.__mro__):
        for name, hint in getattr(klass, "__annotations__", {}).items():
            out[name] = hint if isinstance(hint, str) else getattr(hint, "__name__", str(hint))
    return out


def parse_assignment(text: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> (key, value text); ValueError for anything else."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {text!r}: expected KEY=VALUE, e.g. --set tau_gaba_ms=6")
    return key.strip(), value.strip()


def resolve(name: str, targets: dict, option: str = "--set") -> Key:
    """The :class:`Key` that ``name`` addresses among ``targets`` ({target: object})."""
    tables = {t: keys_of(t, obj) for t, obj in targets.items()}
    head, _, rest = name.partition(".")
    if head in tables and rest:
        if rest in tables[head]:
            return tables[head][rest]
        raise ValueError(_unknown(option, name, tables, rest, head))
    hits = [table[name] for table in tables.values() if name in table]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ValueError(f"{option} {name}: ambiguous; write "
                         + " or ".join(k.full for k in hits))  # fmt: skip
    raise ValueError(_unknown(option, name, tables, name, None))


def _unknown(option, name, tables, bare, target) -> str:
    names = [k for t, table in tables.items() if target in (None, t) for k in table]
    names += [key.full for t, table in tables.items() for key in table.values()]
    close = difflib.get_close_matches(bare, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see ei-sim params for the keys"
    where = f" of {target}" if target else ""
    return f"{option} {name}: unknown parameter{where}; {hint}"


def coerce(key: Key, raw, option: str = "--set"):
    """``raw`` (text from the command line, or a TOML value) as a value of the key's type."""
    kind = key.type.replace(" ", "")
    optional = "None" in kind.split("|") or "Optional" in kind
    base = next((p for p in kind.split("|") if p != "None"), kind)
    where = option if " " in option else f"{option} {key.name}"
    if isinstance(raw, str) and raw.strip().lower() in NONE_WORDS:
        if optional:
            return None
        raise ValueError(f"{where}: cannot be {raw!r} (a value is required)")
    if base.startswith("tuple") or base.startswith("list"):
        items = raw if isinstance(raw, list | tuple) else [
            s.strip() for s in str(raw).split(",") if s.strip()]  # fmt: skip
        current = key.value if isinstance(key.value, tuple) and key.value else ("",)
        element = type(current[0])
        return tuple(_scalar(element.__name__, item, where) for item in items)
    if base == "bool" and isinstance(key.value, bool | type(None)):
        return _scalar("bool", raw, where)
    return _scalar(base, raw, where)


def _scalar(base: str, raw, where: str):
    if base == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise ValueError(f"{where}: expected true or false, got {raw!r}")
    if base == "int":
        if isinstance(raw, bool):
            raise ValueError(f"{where}: expected an integer, got {raw!r}")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected an integer, got {raw!r}") from None
        if not number.is_integer():
            raise ValueError(f"{where}: expected an integer, got {raw!r}")
        return int(number)
    if base == "float":
        if isinstance(raw, bool):
            raise ValueError(f"{where}: expected a number, got {raw!r}")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{where}: expected a finite number, got {raw!r}")
        return number
    if base == "str":
        return str(raw)
    raise ValueError(f"{where}: this parameter cannot be set from the command line ({base})")


def apply(targets: dict, assignments: Iterable[tuple], option: str = "--set") -> dict:
    """``targets`` ({name: frozen object}) with every assignment applied, in order.

    An assignment is ``(key, raw value)``, or ``(key, raw value, label)`` where ``label`` is
    how an error names it (a flag: ``"--w-in -1"``; default ``"--set KEY=VALUE"``). Each is
    resolved (:func:`resolve`), coerced (:func:`coerce`) and applied by rebuilding the objects
    along its path with :func:`dataclasses.replace`, so a domain error of a rebuilt object is
    reported naming the key and the value."""
    out = dict(targets)
    for name, raw, *rest in assignments:
        label = rest[0] if rest else f"{option} {name}={_show(raw)}"
        try:
            key = resolve(name, out, option)
        except ValueError:
            if not rest:
                raise
            model = getattr(out.get("model"), "name", "this model")
            raise ValueError(f"{label}: {model} has no parameter {name}") from None
        value = coerce(key, raw, label if rest else option)
        try:
            out[key.target] = _replace_path(out[key.target], key.path, value)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{label}: {err}") from None
    return out


def _show(raw) -> str:
    return raw if isinstance(raw, str) else repr(raw)


def _replace_path(obj, path: tuple, value):
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    inner = _replace_path(getattr(obj, path[0]), path[1:], value)
    return dataclasses.replace(obj, **{path[0]: inner})


def read_config(path: str) -> dict:
    """A ``--config`` TOML file as a dict; ValueError (one line) when it is missing or does
    not parse."""
    import tomllib

    if not os.path.isfile(path):
        raise ValueError(f"--config {path} does not exist (a TOML file with [model] and [train] "
                         "tables)")  # fmt: skip
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"--config {path} is not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--config {path} cannot be read: {err}") from None


def config_assignments(data: dict, path: str, targets: Iterable[str]) -> list[tuple[str, object]]:
    """The (key, value) pairs of a config file's target tables (``[model]``, ``[train]``),
    nested tables flattened to dotted keys; ValueError for a table or entry that no target
    takes."""
    out = []
    targets = tuple(targets)
    for section, table in data.items():
        if section in CONFIG_OPTIONS and not isinstance(table, dict):
            continue
        if section in TARGETS and section not in targets and isinstance(table, dict):
            continue  # e.g. a [train] table read by simulate: one file serves both commands
        if section not in targets or not isinstance(table, dict):
            raise ValueError(f"--config {path}: unknown entry {section!r}; this command takes "
                             f"tables {', '.join(f'[{t}]' for t in targets)} and the options "
                             f"{', '.join(CONFIG_OPTIONS)}")  # fmt: skip
        for key, value in flatten(table):
            out.append((f"{section}.{key}", value))
    return out


def flatten(table: dict, prefix: str = ""):
    """(dotted key, value) pairs of a nested table."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def describe(targets: dict) -> list[str]:
    """One line per key of the targets: ``target.key = value  (type)``."""
    lines = []
    for target, obj in targets.items():
        for key in keys_of(target, obj).values():
            value = "none" if key.value is None else key.value
            lines.append(f"{key.full} = {value!r}  ({key.type})".replace("'", ""))
    return lines
