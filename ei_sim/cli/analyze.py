"""Analysis commands of the ei-sim CLI: ``analyze``, ``meanfield`` and ``report``.

``register(subparsers)`` adds the three commands and returns ``{command: handler}``; each
handler takes the parsed arguments, prints its result and returns an exit status. Bad input
raises ValueError (the main CLI turns it into one line and exit status 2).
"""

from __future__ import annotations

import os

from ei_sim.cli.locks import holds, report_outputs


def _existing(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist or is not a file")
    return path


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="analyse a sweep, grid or simulate file",
                       description="Recruitment cliff of a sweep store, basins of a grid "
                       "store, or the gamma rhythm of a simulate file.")  # fmt: skip
    what = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    c = what.add_parser("cliff", help="cliff f*, alpha and the W_IE statement of a sweep store")
    c.add_argument("path", metavar="SWEEP.h5")
    c.add_argument("--threshold-hz", type=float, default=0.05, help="I-rate threshold (0.05)")
    b = what.add_parser("basins", help="label the cells of a grid store")
    b.add_argument("path", metavar="GRID.h5")
    b.add_argument("--i-active-hz", type=float, default=0.5, help="PING if I rate above (0.5)")
    b.add_argument("--e-elevated-hz", type=float, default=4.0,
                   help="stretched-COBA if silent I and E rate above (4.0)")  # fmt: skip
    b.add_argument("--plots", default=None, help="write <PLOTS>_map.png and <PLOTS>_scatter.png")
    g = what.add_parser("gamma", help="gamma peak, rhythmicity and participation")
    g.add_argument("path", metavar="FILE.h5")


def cmd_analyze(args) -> int:
    from ei_sim.cli.checks import check_analyze

    check_analyze(args)
    path = _existing(args.path)
    if args.analysis == "cliff":
        from ei_sim.analysis.cliff import analyze_sweep, format_cliff_report

        print(format_cliff_report(analyze_sweep(path, threshold_Hz=args.threshold_hz)))
    elif args.analysis == "basins":
        from ei_sim.analysis import basins

        result = basins.analyze_grid(basins.read_grid(path), args.i_active_hz, args.e_elevated_hz)
        print(basins.format_basins(result))
        if args.plots:
            basins.plot_grid_map(result, f"{args.plots}_map.png")
            basins.plot_rate_accuracy(result, f"{args.plots}_scatter.png")
    else:
        from ei_sim.analysis.gamma import format_gamma, gamma_from_file

        print(format_gamma(gamma_from_file(path)))
    return 0


def _add_meanfield(sub) -> None:
    from ei_sim.cli import options

    description = (
        "Four-variable rate model of the PING loop (E, I, g_e, g_i; Siegert gains): predictions "
        "(predict) and the comparison "
        "with spiking simulations (check)."
    )
    p = sub.add_parser(
        "meanfield", help="rate-model predictions and their spiking check", description=description
    )
    what = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pr = what.add_parser("predict", help="fixed points, Hopf point, frequencies, cliff alpha")
    pr.add_argument("--criticality", action="store_true",
                    help="also classify the Hopf (integrates the ODE, ~10 s)")  # fmt: skip
    ck = what.add_parser(
        "check",
        help="run matching spiking simulations (about a minute), "
        "or check a trained run against its own mean field",
    )
    ck.add_argument("run_dir", nargs="?", default=None, metavar="RUN_DIR", help="a trained run: "
                    "the mean field with its own couplings and drive predicts its recruitment "
                    "cliff and oscillation onset, beside its W_in scale sweep")  # fmt: skip
    ck.add_argument("--t-ms", type=float, default=300.0, help="trial length, at least 200 ms "
                    "(default 300 ms)")  # fmt: skip
    ck.add_argument("--seed", type=int, default=0, help="seed of the networks (default 0)")
    options.add_setting(ck)
    for q in (pr, ck):
        q.add_argument(
            "--set",
            dest="assignments",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="set a parameter of the rate model, e.g. "
            "--set tau_gaba_ms=6 --set sigma_V_mV=3 --set cell_e.t_ref_ms=1.2",
        )


def cmd_meanfield(args) -> int:
    from ei_sim.cli.checks import check_meanfield

    check_meanfield(args)
    params = meanfield_params(args.assignments)
    if args.action == "check" and args.run_dir is not None:
        from ei_sim.analysis.meanfield_check import check_run, format_table

        out = check_run(args.run_dir, progress=True)
        p = out["params"]
        print(
            f"{args.run_dir}: W_EI {p.w_ei_uS:.3g} uS, W_IE {p.w_ie_uS:.3g} uS (summed), "
            f"drive {out['drive_nA']:.3g} nA at W_in scale 1, tau_GABA {p.tau_gaba_ms:g} ms"
        )
        print(format_table(out["rows"]))
        return 0
    if args.action == "check":
        from ei_sim.analysis.meanfield_check import check, format_table

        setting = args.setting or "canonical"
        rows = check(t_ms=args.t_ms, seed=args.seed, setting=setting, params=params)
        print(format_table(rows))
        return 0
    print(predict_text(args.criticality, params))
    return 0


def meanfield_params(assignments):
    """The rate model's parameters with ``--set`` applied."""
    from ei_sim.analysis import meanfield as mf
    from ei_sim.cli import params as P

    sets = [P.parse_assignment(text) for text in assignments]
    return P.apply({"model": mf.MeanFieldParams()}, sets)["model"]


def predict_text(criticality: bool = False, p=None) -> str:
    import numpy as np

    from ei_sim.analysis import meanfield as mf

    p = mf.MeanFieldParams() if p is None else p
    br = mf.fixed_point_branch(np.linspace(0.0, 4.0, 9), p)
    lines = ["I_ext (nA)  E (Hz)  I (Hz)  max Re (1/ms)  freq (Hz)"]
    for k in range(len(br["i_ext_nA"])):
        lines.append(
            f"{br['i_ext_nA'][k]:10.2f} {br['rate_e_Hz'][k]:7.3f} {br['rate_i_Hz'][k]:7.3f} "
            f"{br['max_real_per_ms'][k]:14.4f} {br['freq_Hz'][k]:9.2f}"
        )
    h = mf.hopf(p)
    lines.append("Hopf: none in 0-4 nA" if h is None else
                 f"Hopf: {h.drive_nA:.4f} nA, {h.frequency_Hz:.2f} Hz")  # fmt: skip
    if h is not None and criticality:
        cr = mf.criticality(p, h)
        lines.append(f"bifurcation: {cr.kind} (E amplitudes {np.round(1e3 * cr.amplitudes, 4)} "
                     f"Hz at {cr.distances} nA past onset)")  # fmt: skip
    for row in mf.frequency_vs_tau_gaba((6.0, 9.0, 12.0), p):
        f = row["frequency_Hz"]
        lines.append(f"tau_GABA {row['tau_gaba_ms']:g} ms: Hopf frequency "
                     + ("none" if f is None else f"{f:.2f} Hz"))  # fmt: skip
    cl = mf.cliff_exponent(p)
    fit = cl["alpha"]
    drives = ", ".join("none" if d is None else f"{d:.4g}" for d in cl["cliff_drive_nA"])
    lines.append(f"cliff drive (nA) at W_EI x {cl['scales']}: {drives}")
    from ei_sim.analysis.cliff import alpha_text

    note = "alpha: not defined (fewer than three located cliff drives)"
    lines.append(alpha_text({"alpha": fit, "alpha_note": note}))
    return "\n".join(lines)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="HTML report of a run, simulate, grid or sweep file",
                       description="One self-contained HTML page (figures embedded) of a "
                       "training run (RUN_DIR or its run.h5), a simulate file, a grid store or "
                       "a sweep file; see docs/reports.md.")  # fmt: skip
    p.add_argument("path", metavar="PATH", help="RUN_DIR, run.h5, or a simulate, grid or "
                   "sweep file")  # fmt: skip
    p.add_argument(
        "--out",
        default=None,
        help="HTML file (default: PATH with .html; for a "
        "run directory RUN_DIR/run.html; an earlier report there is replaced)",
    )
    p.add_argument("--quiet", action="store_true", help="no status lines on stderr")


def report_output(path: str) -> str:
    """The default page of ``ei-sim report PATH``: PATH with .html (RUN_DIR/run.html)."""
    if os.path.isdir(path):
        return os.path.join(path, "run.html")
    return os.path.splitext(path)[0] + ".html"


@holds(report_outputs)
def cmd_report(args) -> int:
    from ei_sim.analysis.report import write_report
    from ei_sim.cli.checks import check_report
    from ei_sim.cli.status import status

    out = args.out or report_output(args.path)
    check_report(args, out)

    def log(text: str) -> None:
        status("report", text, args.quiet)

    kind = write_report(args.path, out, log=log)
    print(f"wrote {out} ({kind})")
    return 0


def register(subparsers) -> dict:
    """Add ``analyze``, ``meanfield`` and ``report`` to ``subparsers``; return the handlers."""
    _add_analyze(subparsers)
    _add_meanfield(subparsers)
    _add_report(subparsers)
    return {"analyze": cmd_analyze, "meanfield": cmd_meanfield, "report": cmd_report}
