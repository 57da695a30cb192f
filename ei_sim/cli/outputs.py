"""Output paths, checked before any work starts: writable, and never a file of another kind.

Every command that writes calls one of these checks first. A path that cannot be written
(a missing or read-only folder, a folder where a file is wanted, a file where a folder is
wanted) or that holds a file of another kind (a grid store given to ``simulate --out``, a
training run, a text file) is refused with one line naming the option and the user's path.
A file of the command's own kind is replaced only where the command says so in its help
(``replace=True``) or with ``--force``; a file of another kind never is.
"""

from __future__ import annotations

import os
import tempfile

from ei_sim.cli.kinds import noun
from ei_sim.store.kinds import KINDS, kind_of

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
REPORT_MARK = b"<title>ei-sim report"


def _hdf5_kind(path: str) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            kind = kind_of(fh)
    except (OSError, ValueError):
        return "broken"
    return kind if kind in KINDS else "hdf5"


def existing_kind(path: str) -> str | None:
    """What ``path`` holds: None (nothing), "folder", one of :data:`EI_SIM_KINDS`, or
    "hdf5", "broken", "mp4", "gif", "png", "report", "empty", "other"."""
    if os.path.isdir(path):
        return "folder"
    if not os.path.lexists(path):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return "other"
    if not head:
        return "empty"
    if head.startswith(HDF5_SIGNATURE):
        return _hdf5_kind(path)
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"GIF8"):
        return "gif"
    if head.startswith(b"\x89PNG"):
        return "png"
    if REPORT_MARK in head:
        return "report"
    return "other"


def check_folder(option: str, folder: str, path: str | None = None) -> None:
    """ValueError unless ``folder`` exists, is a folder and accepts new files (tested by
    creating and removing a probe file, which also catches read-only mounts and /proc)."""
    shown = path if path is not None else folder
    if not os.path.exists(folder):
        raise ValueError(f"{option} {shown}: folder {folder} does not exist; create it first")
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {shown}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ei-sim-probe-", dir=folder)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"{option} {shown}: cannot write in {folder} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(
    option: str, path: str, kind: str, *, replace: bool = False, force: bool = False,
    suffixes: tuple = (), command: str = "ei-sim",
) -> None:  # fmt: skip
    """ValueError unless ``path`` can take a new file of ``kind``: its folder is writable,
    it is not a folder, and it holds nothing, or a file of the same kind when ``replace`` or
    ``force`` allow that. ``suffixes``: the file names accepted (e.g. ``(".h5",)``)."""
    if not path:
        raise ValueError(f"{option} is empty; give a file name")
    if suffixes and not path.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise ValueError(f"{option} {path}: give a file name ending in {' or '.join(suffixes)}")
    found = existing_kind(path)
    if found == "folder":
        raise ValueError(f"{option} {path} is a folder; give a file name")
    check_folder(option, os.path.dirname(os.path.abspath(path)), path)
    if found is None:
        return
    if found in ("broken", "empty") and found != kind:
        raise ValueError(f"{option} {path} holds {noun(found)}; remove it or choose "
                         f"another {option}")  # fmt: skip
    if found != kind:
        raise ValueError(
            f"{option} {path} holds {noun(found)}; {command} never replaces "
            f"a file of another kind: choose another {option}"
        )
    if not (replace or force):
        raise ValueError(
            f"{option} {path} already holds {noun(kind)}; use --force to "
            f"replace it or choose another {option}"
        )


def check_output_folder(option: str, folder: str, outputs: dict | None = None,
                        command: str = "ei-sim") -> None:  # fmt: skip
    """ValueError unless ``folder`` is a writable folder and each of ``outputs``
    (``{file name: kind}``, replaced when present) holds nothing or a file of that kind."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{option} {folder} is a file; give a folder")
    check_folder(option, folder)
    for name, kind in (outputs or {}).items():
        check_output_file(option, os.path.join(folder, name), kind, replace=True, command=command)


def check_run_dir(option: str, run_dir: str, resume: bool, command: str = "ei-sim train") -> None:
    """ValueError unless ``run_dir`` can hold a training run: a folder (made when missing,
    so its nearest existing parent must be writable); its run file is continued only with
    ``resume`` and must then be a training run."""
    if not run_dir:
        raise ValueError(f"{option} is empty; give a run directory")
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"{option} {run_dir} is a file; give a run directory")
    from ei_sim.store.paths import run_path

    run_file = run_path(run_dir)
    found = existing_kind(run_file)
    if found not in (None, "run"):
        raise ValueError(
            f"{option} {run_dir}: {run_file} holds {noun(found)}; "
            f"{command} never replaces it: choose another {option}"
        )
    if found == "run" and not resume:
        raise ValueError(
            f"{option} {run_dir} already holds a run; use --resume to continue it or another "
            f"{option}"
        )
    check_folder(option, nearest_existing(run_dir), run_dir)


def nearest_existing(path: str) -> str:
    """``path`` or its nearest ancestor that exists (where ``os.makedirs`` would start)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path
