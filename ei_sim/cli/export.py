"""``ei-sim export FILE --to nwb|neo|xarray``: results in the formats of NWB, Neo and xarray.

FILE is any ei-sim file; its kind is read from it. Simulate files and training runs (their
reference-trial snapshots) export to NWB or Neo, grid stores and sweep files to xarray
(netCDF). Each target needs its optional extra (``pip install 'ei-sim[nwb]'``, ``[neo]``,
``[xarray]``). Bad input raises ValueError, which the main CLI prints as one line with exit
status 2; the output is written atomically.
"""

from __future__ import annotations

from ei_sim.cli.locks import export_outputs, holds


def register(subparsers) -> dict:
    """Add the ``export`` command to ``subparsers``; returns {"export": handler}."""
    from ei_sim.analysis.export.common import TARGETS

    p = subparsers.add_parser(
        "export",
        help="export spikes to NWB or Neo, a grid or sweep to xarray (netCDF)",
        description="Export an ei-sim file: a simulate file or a training run (its "
        "reference-trial snapshots) to NWB (.nwb) or Neo (.nix, or .pkl for pickle); a grid "
        "store or a sweep file to an xarray Dataset written as netCDF (.nc).",
    )
    p.add_argument("path", metavar="FILE", help="simulate file, run.h5 (or its run directory), "
                   "grid store or sweep file")  # fmt: skip
    p.add_argument("--to", required=True, choices=TARGETS, help="target format")
    p.add_argument("--out", default=None, help="output file (default: FILE with .nwb, .nix or "
                   ".nc; its directory must exist)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--no-traces", dest="traces", action="store_false", help="leave the "
                   "state traces (membrane potentials, conductances) out (NWB, Neo)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no status lines on stderr")
    return {"export": cmd_export}


@holds(export_outputs)
def cmd_export(args) -> int:
    from ei_sim.analysis.export import export_file, file_kind
    from ei_sim.analysis.export.common import default_output
    from ei_sim.cli.checks import check_export_output
    from ei_sim.cli.status import status

    kind = file_kind(args.path)
    check_export_output(args.out or default_output(args.path, args.to))

    def log(text: str) -> None:
        status("export", text, args.quiet)

    out = export_file(args.path, args.to, args.out, args.force, args.traces, log=log)
    print(f"wrote {out} ({kind} -> {args.to})")
    return 0
