"""``ei-sim verify FILE ...``: say whether files ei-sim wrote are whole and sound.

Every stored part carries a checksum (grid cells, reproduction stages, a run's last epoch,
snapshots, simulate and sweep files); ``verify`` checks each against it, checks that a file
holds what its kind holds, and that figures, videos and pages are whole
(:mod:`ei_sim.store.verify`). One line per file, then one indented line per problem and per
note. Exit status 0 when every file is sound, 1 when one is damaged, 2 for a path that is
missing or not a file ei-sim writes. Files are only read.
"""

from __future__ import annotations

import sys


def register(subparsers) -> dict:
    """Add the ``verify`` command to ``subparsers``; returns {"verify": handler}."""
    p = subparsers.add_parser(
        "verify", help="check that files ei-sim wrote are whole and match their checksums",
        description="Check files that ei-sim wrote: every stored part against its checksum "
        "(grid cells, reproduction stages, a run's last epoch, snapshots, simulate and sweep "
        "files), what each kind of file holds, and that figures, videos and reports are "
        "whole. Exit status 0: all sound; 1: something is damaged.",
    )  # fmt: skip
    p.add_argument("paths", nargs="+", metavar="FILE", help="a file ei-sim wrote, or a run "
                   "directory")  # fmt: skip
    return {"verify": cmd_verify}


def summary(report) -> str:
    """The first line of a file's report."""
    what = report.what
    if report.parts is not None:
        what += f" of {report.parts} {report.parts_name}"
    if report.problems:
        n = len(report.problems)
        return f"{report.path}: {what}: DAMAGED ({n} problem{'s' if n != 1 else ''})"
    if report.media:
        return f"{report.path}: {what}: whole"
    if not report.verified:
        return f"{report.path}: {what}: readable, not verified"
    n = report.verified
    return f"{report.path}: {what}: sound ({n} checksum{'s' if n != 1 else ''} verified)"


def cmd_verify(args) -> int:
    import ei_sim.cli.kinds  # noqa: F401  (every kind registered)
    from ei_sim.store.verify import verify_path

    damaged = False
    for path in args.paths:
        report = verify_path(path)  # ValueError (exit 2) for a path ei-sim cannot check
        print(summary(report))
        for finding in report.problems:
            print(f"  damaged: {finding.line()}")
        for note in report.notes:
            print(f"  note: {note}")
        damaged = damaged or not report.sound
    sys.stdout.flush()
    return 1 if damaged else 0
