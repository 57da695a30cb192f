"""``ei-sim video PATH``: render the per-epoch snapshots of a run or of a grid to videos.

PATH is a run file (one video, default ``video.mp4`` beside it) or a grid store (root
attribute ``kind == "grid"``; one video per cell of ``cells/<name>``, named from the cell's
``w_ei`` and ``w_ie`` attributes, e.g. ``wei0p5__wie2.mp4``). Files are opened read-only.
"""

from __future__ import annotations

import os
import sys

from ei_sim.cli.locks import holds, video_outputs


def register(subparsers) -> dict:
    """Add the ``video`` command to ``subparsers``; returns {"video": handler}."""
    p = subparsers.add_parser(
        "video",
        help="render a run's (or a grid's) training snapshots to a video, one frame per epoch",
        description="Render the per-epoch snapshots stored by 'ei-sim train --video' into an "
        "oscilloscope video (MP4 H.264 or GIF), one 1920x1080 frame per epoch.",
    )
    p.add_argument("path", metavar="PATH", help="a run file (.h5), its run directory or a grid "
                   "store")  # fmt: skip
    p.add_argument("--fps", type=float, default=2.0, help="frames (epochs) per second, "
                   "0.01-60 (default 2)")  # fmt: skip
    p.add_argument("--format", dest="fmt", choices=("mp4", "gif"), default="mp4",
                   help="video format (default mp4)")  # fmt: skip
    p.add_argument("--out", default=None, help="output video file for a run (ending in "
                   ".mp4 or .gif as --format; a video there is replaced), output folder for a "
                   "grid (must exist; default: beside PATH)")  # fmt: skip
    return {"video": cmd_video}


def _is_grid(path: str) -> bool:
    import h5py

    from ei_sim.store.attrs import read_attrs

    with h5py.File(path, "r") as fh:
        return read_attrs(fh).get("kind") == "grid"


def _render_grid(path: str, out_folder: str, fps: float, fmt: str) -> list:
    import h5py

    from ei_sim.analysis.video import cell_video_name, read_snapshots, render_snapshots
    from ei_sim.store.checksum import Damaged

    if not os.path.isdir(out_folder):
        raise ValueError(f"output folder {out_folder} does not exist; create it first")
    infos, skipped = [], []
    with h5py.File(path, "r") as fh:
        if "cells" not in fh:
            raise ValueError(f"grid store {path} has no cells group")
        for name, cell in fh["cells"].items():
            try:
                snapshots = read_snapshots(cell)
            except Damaged:
                raise
            except ValueError:
                skipped.append(name)
                continue
            video = os.path.join(out_folder, cell_video_name(cell.attrs["w_ei"],
                                                             cell.attrs["w_ie"], fmt))  # fmt: skip
            infos.append(render_snapshots(snapshots, video, fps, fmt))
    if not infos:
        raise ValueError("no grid cell has snapshots; train with --video to record them")
    if skipped:
        print(f"skipped {len(skipped)} cells without snapshots: {', '.join(skipped)}",
              file=sys.stderr)  # fmt: skip
    return infos


@holds(video_outputs)
def cmd_video(args) -> int:
    from ei_sim.analysis.video import check_video_args, render_run
    from ei_sim.cli.checks import check_video

    args.path = check_video(args)  # a run directory gives its run.h5
    if _is_grid(args.path):
        out_folder = args.out or os.path.dirname(os.path.abspath(args.path))
        check_video_args(os.path.join(out_folder, f"probe.{args.fmt}"), args.fps, args.fmt)
        infos = _render_grid(args.path, out_folder, args.fps, args.fmt)
    else:
        infos = [render_run(args.path, args.out, args.fps, args.fmt)]
    for info in infos:
        print(f"wrote {info.path} ({info.n_frames} frames, {info.seconds_per_frame:.2f} s/frame)")
    return 0
