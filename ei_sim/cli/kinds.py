"""Every kind of file ei-sim writes, registered: the core's, and those the other packages
register where they define their layouts (imported here; each of these modules is light)."""

import ei_sim.analysis.reproduce.store  # noqa: F401  (reproduce)
import ei_sim.rate.store  # noqa: F401  (wilson_cowan)
import ei_sim.sweeps.store  # noqa: F401  (grid, scale_sweep, coupling_sweep)
from ei_sim.store.kinds import FOREIGN, KINDS

OTHER_NOUNS = {
    "hdf5": FOREIGN, "broken": "an unreadable HDF5 file",
    "mp4": "an MP4 video", "gif": "a GIF", "png": "a PNG image", "report": "an ei-sim report",
    "folder": "a folder", "empty": "an empty file", "other": "a file that ei-sim did not write",
}  # fmt: skip


def noun(kind: str) -> str:
    """What a file of ``kind`` is, in words ("a grid store")."""
    return KINDS[kind].noun if kind in KINDS else OTHER_NOUNS.get(kind, kind)
