"""``ei-sim params``: every parameter ``--set`` takes, with its value for a preset and tier."""

from __future__ import annotations


def register(sub) -> dict:
    from ei_sim.cli import options

    p = sub.add_parser("params", help="list the parameters --set takes, with their values",
                       description="List every network and recipe parameter that --set "
                       "KEY=VALUE (and the [model] / [train] tables of --config) can set, with "
                       "its value for the preset, setting and tier given here, and its type. "
                       "Add --set to see the effect of assignments.")  # fmt: skip
    options.add_model(p, families=("classifier", "network", "rate"))
    p.add_argument("--tier", default=None, choices=("tiny", "medium", "long"),
                   help="tier whose sizes and recipe are shown (default medium; the rate "
                   "model: tiny)")  # fmt: skip
    options.add_parameters(p)
    return {"params": cmd_params}


def cmd_params(args) -> int:
    from ei_sim.cli import options
    from ei_sim.cli import params as P
    from ei_sim.models import PRESETS

    name = options.chosen(args, "model")
    family = PRESETS[name].family
    if family == "rate":
        from ei_sim.rate.train import RateTrainConfig

        args.tier_default = "tiny"
        targets = options.build_targets(args, recipe_cls=RateTrainConfig, tiered=False,
                                        family=("rate",))  # fmt: skip
    elif family == "network":
        targets = options.build_targets(args, recipe=False, tiered=False, family=("network",))
    else:
        args.tier_default = "medium"
        targets = options.build_targets(args)
    print("\n".join(P.describe(targets)))
    return 0
