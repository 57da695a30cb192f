"""The command line's validation layer: every option of a command checked before any work.

``check_<command>(args)`` runs first in each handler: numbers finite, of the right sign and
below sane bounds (the memory a request needs, estimated and compared with the machine's),
seeds in range, options that contradict each other refused, and every output path checked
for writability and for what it already holds (:mod:`ei_sim.cli.outputs`). Each raises one
``ValueError`` naming the option or the user's path; nothing has been created by then.
"""

from __future__ import annotations

import math
import os
import sys

from ei_sim import validate as v
from ei_sim.cli.outputs import (
    check_folder,
    check_output_file,
    check_output_folder,
    check_run_dir,
    existing_kind,
)

MAX_SCALE = 1000.0  # multiplier of a trained weight block (sweeps, eval)
MAX_SWEEP_POINTS = 1000  # values of one sweep axis (each is a full test-set evaluation)
MAX_FPS = 60.0
MIN_FPS = 0.01
MAX_RATE_HZ = 1000.0  # a cell cannot fire faster than its refractory period allows
MEANFIELD_MIN_T_MS = 200.0  # 150 ms of E activity after the 50 ms drop: 6.7 Hz resolution


def note(text: str) -> None:
    """One line on stderr about a choice ei-sim made for the user (not an error)."""
    print(f"note: {text}", file=sys.stderr)


def _optional(check, option: str, value, *extra):
    return None if value is None else check(option, value, *extra)


def check_existing_file(option: str, path: str, hint: str) -> None:
    """ValueError unless ``path`` is an existing file (a folder or nothing is named)."""
    if os.path.isdir(path):
        raise ValueError(f"{option} {path} is a folder; {hint}")
    if not os.path.isfile(path):
        raise ValueError(f"{option} {path} does not exist; {hint}")


# simulate -------------------------------------------------------------------------------


def check_simulate(args, model) -> None:
    """``ei-sim simulate``: seed, trials, intervals, the memory of the run and the output
    file (the network's own rules were checked when it was built)."""
    config = model.config
    v.seed("--seed", args.seed)
    v.count("--digit", args.digit, 0, 9, "an MNIST class")
    v.count("--trials", args.trials, 1, 1000)
    for option in ("record_every_ms", "bin_ms", "chunk_ms"):
        _optional(v.positive, "--" + option.replace("_", "-"), getattr(args, option, None))
    n_steps = config.t_ms / config.dt_ms
    need = v.simulate_bytes(n_steps, config.n_in, args.trials, config.p_spike_per_unit_intensity)
    v.check_memory(f"--t-ms {config.t_ms:g} at --dt-ms {config.dt_ms:g} "
                   f"({n_steps:.3g} steps, {args.trials} trials)", need,
                   "shorten --t-ms, lengthen --dt-ms or use fewer --trials")  # fmt: skip
    if args.out:
        check_output_file("--out", args.out, "simulate", replace=True,
                          command="ei-sim simulate")  # fmt: skip


# train, eval, grid ----------------------------------------------------------------------


def check_training_flags(args) -> None:
    """What the options of ``train`` and ``grid`` need beyond the rules the network and the
    recipe check when they are built: the data folder exists."""
    data = getattr(args, "data", None)
    if data is not None and data != "embedded" and not os.path.isdir(data):
        raise ValueError(f"--data {data} is neither 'embedded' nor a folder of MNIST IDX "
                         "files")  # fmt: skip


def check_recipe(model, cfg) -> None:
    """What only the built (model, TrainConfig) pair shows: the batch against the training
    set and the memory one training needs."""
    n_test = math.ceil(cfg.n_samples * cfg.test_fraction)
    n_train = cfg.n_samples - n_test
    if cfg.batch_size > n_train:
        raise ValueError(
            f"--batch-size {cfg.batch_size} is larger than the {n_train} training samples of "
            f"--samples {cfg.n_samples}; use --batch-size {n_train} or fewer, or more --samples"
        )
    c = model.config
    need = v.train_bytes(c.n_steps, c.n_in, c.n_e, c.n_i, c.n_out, cfg.batch_size,
                         c.p_spike_per_unit_intensity, cfg.checkpoint_every)  # fmt: skip
    v.check_memory(f"training N_E={c.n_e} for {c.t_ms:g} ms trials in batches of "
                   f"{cfg.batch_size}", need,
                   "use a smaller --n-e, --t-ms or --batch-size")  # fmt: skip


def check_train(args) -> None:
    check_training_flags(args)
    if args.devices is not None:
        v.count("--devices", args.devices, 0, hint="0 uses every core")
    check_run_dir("--out", args.out, args.resume)


def devices_note(requested: int, batch: int, cores: int, used: int) -> None:
    """Say so when the batch is split over fewer devices than --devices asked for."""
    if requested and used != requested:
        why = f"the largest count <= {requested} that divides the batch of {batch}"
        if requested > cores:
            why += f"; this process may use {cores} cores"
        note(f"--devices {requested}: the batch is split over {used} devices ({why})")


def check_run_usable(option: str, run_dir: str) -> None:
    """ValueError when the run in ``run_dir`` is marked failed (non-finite weights)."""
    from ei_sim.store.run import open_run

    with open_run(run_dir) as fh:
        status = fh.attrs.get("status")
        status = status.decode() if isinstance(status, bytes) else status
        reason = fh.attrs.get("failure", "")
        reason = reason.decode() if isinstance(reason, bytes) else reason
    if status == "failed":
        raise ValueError(f"{option} {run_dir} is a failed run ({reason}); train it again")


def check_eval(args) -> None:
    for option in ("w_in_scale", "w_ei_scale", "w_ie_scale"):
        v.non_negative("--" + option.replace("_", "-"), getattr(args, option), MAX_SCALE)
    check_run_usable("RUN_DIR", args.run_dir)


def check_grid(args) -> None:
    """``ei-sim grid``: axes, seeds, workers, the store path and the size of the request."""
    check_training_flags(args)
    v.count("--points", args.points, 1)
    if args.diagonal and args.w_ie is not None:
        raise ValueError("--w-ie has no effect with --diagonal (W_IE = --ei-ratio x W_EI); "
                         "drop --w-ie or --diagonal")  # fmt: skip
    v.non_negative("--ei-ratio", args.ei_ratio, 100.0)
    n_wei = v.axis_length("--w-ei", args.w_ei, args.points)
    n_wie = 1 if args.diagonal else v.axis_length("--w-ie", args.w_ie or "0..4", args.points)
    seeds = [s for s in str(args.seeds or args.seed or 42).split(",")]
    if any(not s.strip() for s in seeds):
        raise ValueError(f"--seeds {args.seeds!r} has an empty value between commas")
    for text in seeds:
        if not text.strip().lstrip("-").isdigit():
            raise ValueError(f"--seeds {args.seeds!r}: expected a comma list of integers")
        v.seed("--seeds", int(text))
    n_cells = n_wei * n_wie * len(seeds)
    v.check_memory(f"a grid of {n_cells:.3g} cells ({n_wei} x {n_wie} x {len(seeds)} seeds)",
                   8.0 * (n_wei + n_wie) + 2048.0 * n_cells,
                   "use fewer --points or values")  # fmt: skip
    if args.workers is not None:
        v.count("--workers", args.workers, 1, hint="omit it for one worker per core")
        v.check_memory(f"--workers {args.workers}", args.workers * v.WORKER_BYTES,
                       "use fewer workers")  # fmt: skip
    check_output_file("--out", args.out, "grid", replace=True, force=args.force,
                      command="ei-sim grid")  # fmt: skip
    from ei_sim.store.paths import cells_dir

    cells = cells_dir(args.out)
    if os.path.exists(cells) and not os.path.isdir(cells):
        raise ValueError(f"--out {args.out}: {cells} (where the cells train) is a file")


def check_sweep(args) -> None:
    """``ei-sim sweep``: a usable run, and a folder whose sweep files may be replaced."""
    check_run_usable("RUN_DIR", args.run_dir)
    for option in ("scales", "w_ei_scale", "w_ie_scale"):
        text = getattr(args, option, None)
        if text is not None:
            name = "--" + option.replace("_", "-")
            v.count(f"the number of {name}", v.axis_length(name, text, 5), 1, MAX_SWEEP_POINTS)
    stems = {"scale_sweep": "scale_sweep"}
    if args.sweep_kind == "coupling":
        stems = {
            f"coupling_{t}": "coupling_sweep"
            for t, given in (("w_ei", args.w_ei_scale), ("w_ie", args.w_ie_scale))
            if given
        }
    outputs = {}
    for stem, kind in stems.items():
        outputs.update({f"{stem}.h5": kind, f"{stem}.png": "png"})
        if getattr(args, "video", False):
            outputs[f"{stem}.mp4"] = "mp4"
    check_output_folder("--out", args.out or args.run_dir, outputs, command="ei-sim sweep")


# rate model -----------------------------------------------------------------------------


def check_rate_train(args, out: str | None) -> None:
    """``ei-sim rate train``: the run file's folder (a run directory is made when missing)
    and what the file already holds (the network's and recipe's rules are checked when they
    are built)."""
    if out is None:
        return
    if args.out.endswith(".h5"):
        check_output_file("--out", out, "wilson_cowan", replace=True,
                          command="ei-sim rate train")  # fmt: skip
        return
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a file; give a run directory (or a path ending "
                         "in .h5)")  # fmt: skip
    parent = os.path.dirname(os.path.abspath(args.out))
    check_folder("--out", parent, args.out)
    if os.path.exists(out):
        check_output_file("--out", out, "wilson_cowan", replace=True,
                          command="ei-sim rate train")  # fmt: skip


def check_rate_analyze(args) -> None:
    v.seed("--seed", args.seed)
    v.positive("--max-scale", args.max_scale, 100.0)
    if args.run is not None:
        check_existing_file("RUN.h5", args.run, "give a file of 'ei-sim rate train --out'")


# analysis, report, video ----------------------------------------------------------------


def check_analyze(args) -> None:
    check_existing_file("PATH", args.path, f"give the file to analyse ({args.analysis})")
    if args.analysis == "cliff":
        v.positive("--threshold-hz", args.threshold_hz, MAX_RATE_HZ)
    elif args.analysis == "basins":
        v.non_negative("--i-active-hz", args.i_active_hz, MAX_RATE_HZ)
        v.non_negative("--e-elevated-hz", args.e_elevated_hz, MAX_RATE_HZ)
        if args.plots:
            for suffix in ("_map.png", "_scatter.png"):
                check_output_file("--plots", args.plots + suffix, "png", replace=True,
                                  command="ei-sim analyze basins")  # fmt: skip


def check_meanfield(args) -> None:
    if args.action != "check":
        return
    if args.run_dir is not None:
        check_run_usable("RUN_DIR", args.run_dir)
        return
    v.seed("--seed", args.seed)
    v.positive("--t-ms", args.t_ms, 60_000.0)
    if args.t_ms < MEANFIELD_MIN_T_MS:
        raise ValueError(
            f"--t-ms must be at least {MEANFIELD_MIN_T_MS:g} ms (the first 50 ms are dropped and "
            f"the gamma peak needs the rest), got {args.t_ms:g}"
        )


def check_report(args, out: str) -> None:
    hint = "give a run directory, a run.h5, or a simulate, grid or sweep file"
    if os.path.isdir(args.path):
        if not os.path.isfile(os.path.join(args.path, "run.h5")):
            raise ValueError(f"PATH {args.path} is a folder without a run.h5; {hint}")
    else:
        check_existing_file("PATH", args.path, hint)
    check_output_file("--out", out, "report", replace=True, suffixes=(".html", ".htm"),
                      command="ei-sim report")  # fmt: skip


def check_video(args) -> str:
    """``ei-sim video``: returns the file to read (a run directory gives its run.h5)."""
    path = args.path
    if os.path.isdir(path):
        from ei_sim.store.paths import run_path

        inner = run_path(path)
        if not os.path.isfile(inner):
            raise ValueError(f"PATH {path} is a folder without a run.h5; give a run file, its "
                             "run directory or a grid store")  # fmt: skip
        path = inner
    elif not os.path.isfile(path):
        raise ValueError(f"PATH {path} does not exist; give a run file or a grid store")
    v.between("--fps", args.fps, MIN_FPS, MAX_FPS, "one frame per epoch: 2 shows 2 epochs a second")
    kind = existing_kind(path)
    if kind not in ("run", "grid"):
        raise ValueError(f"PATH {path} is not a training run or a grid store")
    if kind == "grid":
        check_output_folder("--out", args.out or os.path.dirname(os.path.abspath(path)))
    elif args.out:
        check_output_file("--out", args.out, args.fmt, replace=True, suffixes=(f".{args.fmt}",),
                          command="ei-sim video")  # fmt: skip
    else:
        folder = os.path.dirname(os.path.abspath(path))
        check_output_file("--out", os.path.join(folder, f"video.{args.fmt}"), args.fmt,
                          replace=True, command="ei-sim video")  # fmt: skip
    return path


def check_export_output(out: str) -> None:
    """An export never replaces an ei-sim file (a grid store, a run, ...), --force or not."""
    kind = existing_kind(out)
    if kind is not None and kind not in ("hdf5", "other"):
        from ei_sim.cli.kinds import noun

        raise ValueError(f"--out {out} holds {noun(kind)}; ei-sim export never "
                         "replaces it: choose another --out")  # fmt: skip
    check_folder("--out", os.path.dirname(os.path.abspath(out)), out)
