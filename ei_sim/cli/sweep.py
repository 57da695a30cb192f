"""``ei-sim sweep scale|coupling RUN_DIR``: inference-time sweeps of a trained run
(:mod:`ei_sim.sweeps.inference`; figures by :mod:`ei_sim.analysis.sweep_plots`)."""

from __future__ import annotations

import os

from ei_sim.cli.locks import holds, sweep_outputs


def _add_sweep(sub) -> None:
    from ei_sim.cli import options

    p = sub.add_parser("sweep", help="inference-time W_in scale and coupling sweeps of a run")
    kinds = p.add_subparsers(dest="sweep_kind", required=True, metavar="KIND")
    scale = kinds.add_parser("scale", help="evaluate the test split at 24 W_in scales")
    coupling = kinds.add_parser("coupling", help="rerun the scale sweep per W_EI/W_IE scale")
    coupling.add_argument("--w-ei-scale", default=None, help="comma list of W_EI scales")
    coupling.add_argument("--w-ie-scale", default=None, help="comma list of W_IE scales")
    options.hidden_alias(coupling, "--wei-scale", "w_ei_scale")
    options.hidden_alias(coupling, "--wie-scale", "w_ie_scale")
    for q in (scale, coupling):
        q.add_argument("run_dir", metavar="RUN_DIR")
        q.add_argument("--scales", default=None, help="W_in scales (default: 24 "
                       "from 0.05 to 3.00)")  # fmt: skip
        q.add_argument("--out", default=None, help="output folder (default: RUN_DIR)")
        q.add_argument("--set", dest="assignments", action="append", default=[],
                       metavar="KEY=VALUE", help="evaluate the trained weights in the run's "
                       "network with a parameter changed, e.g. --set tau_gaba_ms=6 (model "
                       "keys; ei-sim params lists them)")  # fmt: skip
    scale.add_argument("--video", action="store_true", help="render one frame per scale of "
                       "the reference trial (scale_sweep.mp4)")  # fmt: skip


@holds(sweep_outputs)
def cmd_sweep(args) -> int:
    from ei_sim.analysis.sweep_plots import plot_sweep
    from ei_sim.cli.checks import check_sweep
    from ei_sim.sweeps.inference import CANONICAL_SCALES, sweep_scales, write_sweep
    from ei_sim.sweeps.ranges import parse_axis

    check_sweep(args)  # RUN_DIR a usable run; --out a writable folder
    scales = (CANONICAL_SCALES if args.scales is None
              else tuple(parse_axis(args.scales, 5, "--scales")))  # fmt: skip
    out_dir = args.out or args.run_dir
    jobs = [(None, (1.0,), "scale_sweep")]
    if args.sweep_kind == "coupling":
        jobs = [(t, tuple(parse_axis(v, 5, f"--{t.replace('_', '-')}-scale")), f"coupling_{t}")
                for t, v in (("w_ei", args.w_ei_scale), ("w_ie", args.w_ie_scale))
                if v]  # fmt: skip
        if not jobs:
            raise ValueError("sweep coupling needs --w-ei-scale and/or --w-ie-scale")
    model = swept_model(args)
    for target, couplings, stem in jobs:
        result = sweep_scales(args.run_dir, scales, target, couplings, model=model)
        path = os.path.join(out_dir, f"{stem}.h5")
        write_sweep(path, result)
        plot_sweep(result, os.path.join(out_dir, f"{stem}.png"))
        print(f"wrote {path} and {stem}.png")
        if getattr(args, "video", False):
            from ei_sim.analysis.video import scale_video

            info = scale_video(args.run_dir, result, os.path.join(out_dir, f"{stem}.mp4"))
            print(f"video: {info.path} ({info.n_frames} frames)")
        for ci, c in enumerate(result["coupling_scales"]):
            accs = " ".join(f"{100 * a:.1f}" for a in result["accuracy"][ci])
            print(f"  coupling x{c:g}: accuracy % over scales: {accs}")
    return 0


def swept_model(args):
    """The run's network with the ``--set`` assignments applied (None without any)."""
    if not args.assignments:
        return None
    from ei_sim.cli import params as P
    from ei_sim.sim.model import model_from_attrs
    from ei_sim.store.run import load_run

    model = model_from_attrs(load_run(args.run_dir)[0])
    sets = [P.parse_assignment(text) for text in args.assignments]
    return P.apply({"model": model}, sets)["model"]


def register(sub) -> dict:
    """Add the ``sweep`` command to ``sub``; returns {"sweep": handler}."""
    _add_sweep(sub)
    return {"sweep": cmd_sweep}
