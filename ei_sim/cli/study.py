"""``ei-sim study FILE.toml``: a whole study (runs, sweeps, analyses) from one file.

A study file lists steps; each is one ei-sim command with its options, written as on the
command line (option names without ``--``; ``true`` for a flag; lists repeat an option),
``set`` for ``--set KEY=VALUE`` and ``{step}`` for the output of an earlier step::

    out = "runs/study"                      # every step writes under this folder

    [[step]]
    name = "base"                           # the step's output: runs/study/base (a run)
    run = "train"
    args = { model = "ping", tier = "tiny", epochs = 2 }
    set = { tau_gaba_ms = 6.0 }

    [[step]]
    name = "sweep"
    run = "sweep scale"
    args = { run_dir = "{base}" }           # positionals by their name

Each command writes where its step's name says (:data:`OUTPUTS`): a run directory, a store,
a folder or a page under ``out``. Before anything runs, every step is checked: the file
parses, each step names a known command, its options parse, ``{name}`` refers to an earlier
step, and the network and recipe of the training and simulation steps build (so a wrong
``set`` key or value is refused then); any problem is one line naming the step, exit 2, and
nothing is created. Run again, a study skips the steps it finished with the same command
line (``out/study.json``), continues a training from its last epoch and a grid from its
finished cells.
"""

from __future__ import annotations

import json
import os
import shlex
import sys

from ei_sim.cli.params import flatten

STATE = "study.json"
# command -> (option that takes the step's output, what it is)
OUTPUTS = {
    "simulate": ("--out", "{name}.h5"),
    "train": ("--out", "{name}"),
    "grid": ("--out", "{name}.h5"),
    "sweep scale": ("--out", "{name}"),
    "sweep coupling": ("--out", "{name}"),
    "rate train": ("--out", "{name}"),
    "report": ("--out", "{name}.html"),
    "export": ("--out", "{name}.{export}"),
    "video": ("--out", "{name}.{format}"),
    "reproduce": ("--out", "{name}"),
    "analyze cliff": (None, None),
    "analyze basins": (None, None),
    "analyze gamma": (None, None),
    "meanfield predict": (None, None),
    "meanfield check": (None, None),
    "eval": (None, None),
    "params": (None, None),
}
POSITIONALS = {  # the names a step's args use for a command's positional arguments
    "sweep scale": ("run_dir",), "sweep coupling": ("run_dir",), "eval": ("run_dir",),
    "analyze cliff": ("path",), "analyze basins": ("path",), "analyze gamma": ("path",),
    "report": ("path",), "export": ("path",), "video": ("path",), "reproduce": ("experiment",),
    "meanfield check": ("run_dir",),
}  # fmt: skip


def register(sub) -> dict:
    p = sub.add_parser("study", help="run a study file: runs, sweeps and analyses in order",
                       description=__doc__.split("\n\n")[0].split(": ", 1)[1] + " Steps "
                       "already finished with the same command line are skipped; see the "
                       "documentation's Parameters page for the file's form.")  # fmt: skip
    p.add_argument("file", metavar="FILE.toml")
    p.add_argument("--dry-run", action="store_true", help="check the study and print each "
                   "step's command line; run nothing")  # fmt: skip
    return {"study": cmd_study}


class Step:
    def __init__(self, index: int, name: str, command: str, argv: list[str], output: str | None):
        self.index, self.name, self.command, self.argv, self.output = (
            index, name, command, argv, output)  # fmt: skip

    def label(self) -> str:
        return f"step {self.index} ({self.name!r})"


def load_study(path: str) -> tuple[str, list[Step]]:
    """The study's output folder and its steps, every one checked (module doc); ValueError
    (one line naming the step) otherwise. Creates nothing."""
    import tomllib

    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist (a study file in TOML)")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from None
    unknown = set(data) - {"out", "step"}
    if unknown:
        raise ValueError(f"{path}: unknown entries {sorted(unknown)}; a study has 'out' and "
                         "[[step]] tables")  # fmt: skip
    out = data.get("out", os.path.splitext(path)[0])
    if not isinstance(out, str) or not out:
        raise ValueError(f"{path}: out must be a folder name")
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ValueError(f"{path}: no [[step]] tables; a study needs at least one step")
    steps, outputs = [], {}
    for k, raw in enumerate(raw_steps, 1):
        step = _step(k, raw, out, outputs)
        outputs[step.name] = step.output
        steps.append(step)
    _check_steps(steps)
    return out, steps


def _step(k: int, raw, out: str, outputs: dict) -> Step:
    where = f"step {k}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a step is a table with name, run, args and set")
    unknown = set(raw) - {"name", "run", "args", "set"}
    if unknown:
        raise ValueError(f"{where}: unknown entries {sorted(unknown)}; a step has name, run, "
                         "args and set")  # fmt: skip
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"{where}: name must be a word of letters, digits, - and _")
    if name in outputs:
        raise ValueError(f"{where}: the name {name!r} is taken by an earlier step")
    where = f"step {k} ({name!r})"
    command = raw.get("run")
    if command not in OUTPUTS:
        raise ValueError(f"{where}: unknown command {command!r}; choose one of "
                         f"{', '.join(OUTPUTS)}")  # fmt: skip
    args = dict(raw.get("args", {}))
    sets = raw.get("set", {})
    if not isinstance(args, dict) or not isinstance(sets, dict):
        raise ValueError(f"{where}: args and set must be tables")
    argv = command.split()
    for pos in POSITIONALS.get(command, ()):
        if pos in args:
            argv.append(_resolve(str(args.pop(pos)), outputs, where))
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            if item is True:
                argv.append(flag)
            elif item is False:
                continue
            else:
                argv += [flag, _resolve(str(item), outputs, where)]
    for key, value in flatten(sets):
        argv += ["--set", f"{key}={'none' if value is None else _toml_text(value)}"]
    option, pattern = OUTPUTS[command]
    output = None
    if option is not None:
        if option in argv:
            raise ValueError(f"{where}: {option} is the step's own output ({pattern} under out)")
        suffix = {"export": EXPORT_SUFFIX.get(str(raw.get("args", {}).get("to")), "out"),
                  "format": str(raw.get("args", {}).get("format", "mp4"))}  # fmt: skip
        output = os.path.join(out, pattern.format(name=name, **suffix))
        argv += [option, output]
    return Step(k, name, command, argv, output)


EXPORT_SUFFIX = {"nwb": "nwb", "neo": "nix", "xarray": "nc"}
MADE_FOLDERS = ("sweep scale", "sweep coupling", "reproduce")  # outputs that must exist first


def _toml_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _resolve(text: str, outputs: dict, where: str) -> str:
    """``{name}`` -> the output of the earlier step ``name``."""
    import re

    def sub(m):
        ref = m.group(1)
        if ref not in outputs:
            raise ValueError(f"{where}: {{{ref}}} names no earlier step")
        if outputs[ref] is None:
            raise ValueError(f"{where}: step {ref!r} writes no file to refer to")
        return outputs[ref]

    return re.sub(r"\{([A-Za-z0-9_-]+)\}", sub, text)


def _check_steps(steps: list[Step]) -> None:
    """Every step's options parse, and the networks and recipes it would build build."""
    import contextlib
    import io

    from ei_sim.cli import build_parser

    parser, _ = build_parser()
    for step in steps:
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                args = parser.parse_args(step.argv)
        except SystemExit:
            reason = said.getvalue().strip().split("error: ", 1)[-1].split("; see ")[0]
            raise ValueError(f"{step.label()}: {reason}") from None
        try:
            _build(step.command, args)
        except ValueError as err:
            raise ValueError(f"{step.label()}: {err}") from None


def _build(command: str, args) -> None:
    """Build what a step would build first (its checks run, nothing is written)."""
    from ei_sim.cli import options

    if command == "train":
        options.build_targets(args)
    elif command == "simulate":
        from ei_sim.cli.simulate import build_model

        build_model(args)
    elif command == "grid":
        from ei_sim.cli.grid import grid_spec

        grid_spec(args)
    elif command == "rate train":
        from ei_sim.cli.rate import RATE_MODEL_FLAGS
        from ei_sim.rate.train import RateTrainConfig

        options.build_targets(args, recipe_cls=RateTrainConfig, tiered=False,
                              family=("rate",), model_flags=RATE_MODEL_FLAGS)  # fmt: skip


def cmd_study(args) -> int:
    from ei_sim.cli import main

    out, steps = load_study(args.file)
    if args.dry_run:
        for step in steps:
            print(f"{step.label()}: ei-sim {shlex.join(step.argv)}")
        return 0
    os.makedirs(out, exist_ok=True)
    state_path = os.path.join(out, STATE)
    state = _read_state(state_path)
    for step in steps:
        done = state.get(step.name)
        if done and done.get("argv") == step.argv and done.get("status") == "done":
            print(f"{step.label()}: finished earlier with the same command, skipped")
            continue
        argv = list(step.argv)
        if step.command == "train" and os.path.exists(os.path.join(step.output, "run.h5")):
            argv.append("--resume")  # continue the run from its last completed epoch
        if step.command in MADE_FOLDERS:
            os.makedirs(step.output, exist_ok=True)
        print(f"{step.label()}: ei-sim {shlex.join(argv)}", flush=True)
        code = main(argv)
        if code != 0:
            print(f"ei-sim study: {step.label()} ended with status {code}; the steps before "
                  "it are kept, run the study again to continue", file=sys.stderr)  # fmt: skip
            return code
        state[step.name] = {"argv": step.argv, "status": "done"}
        _write_state(state_path, state)
    print(f"study finished: {len(steps)} steps, outputs in {out}")
    return 0


def _read_state(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError):
        return {}


def _write_state(path: str, state: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, path)
