"""The vmapped grid executor on the shared training loop: per-epoch resumption after a kill,
and packing into groups that fit in memory, both equal to one uninterrupted group."""

import os

import h5py
import numpy as np
import pytest
from stores import store_numbers

from ei_sim.sweeps.grid import GridSpec, run_grid
from ei_sim.sweeps.vmapped import cell_bytes, cell_setup, pack

SPEC = GridSpec.build((0.0, 1.0), (2.0,), tier="tiny", model={"n_e": 16, "n_i": 4, "t_ms": 30.0},
                      train={"n_samples": 100, "batch_size": 20, "epochs": 2})  # fmt: skip


def _assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b) and len(a) > 20
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("vmap") / "grid.h5")
    run_grid(SPEC, store, executor="vmap", progress=False)
    return store_numbers(store)


class Killed(KeyboardInterrupt):
    """Stands for a kill: a BaseException, so nothing on the way catches it."""


@pytest.mark.parametrize("killed_cell", [0, 1])
def test_killed_group_resumes_from_its_last_epoch(uninterrupted, tmp_path, killed_cell):
    """Killed while writing epoch 2 of one cell's run file (cell 0: both cells keep 1 epoch;
    cell 1: cell 0 has finished, cell 1 keeps 1 epoch); the resumed grid trains epoch 2 only
    and ends with the numbers and weights of an uninterrupted run."""
    store = str(tmp_path / "grid.h5")
    writes = []

    def kill_at_second_epoch(fh, epoch, *args):
        cell = os.path.basename(os.path.dirname(fh.filename))
        writes.append((cell, epoch))
        if epoch == 1 and len([w for w in writes if w[1] == 1]) == killed_cell + 1:
            raise Killed

    with pytest.raises(Killed):
        run_grid(SPEC, store, executor="vmap", progress=False, on_epoch=kill_at_second_epoch)
    names = sorted({cell for cell, _ in writes})
    assert len(names) == 2
    with h5py.File(os.path.join(store + ".cells", names[0], "run.h5")) as fh:
        assert fh.attrs["epochs_done"] == (2 if killed_cell == 1 else 1)
    with h5py.File(os.path.join(store + ".cells", names[1], "run.h5")) as fh:
        assert fh.attrs["epochs_done"] == 1

    resumed = []
    outcome = run_grid(SPEC, store, executor="vmap", progress=False,
                       on_epoch=lambda fh, epoch, *a: resumed.append(epoch))  # fmt: skip
    assert sorted(outcome["done"]) == names
    assert resumed == [1] * (2 - killed_cell)  # epoch 2 only, of the cells that lacked it
    _assert_same(uninterrupted, store_numbers(store))


def test_small_memory_packs_more_groups_with_the_same_results(uninterrupted, tmp_path, capsys):
    models, cfg = cell_setup(SPEC, [(0.0, 2.0, 42)])
    per_cell = cell_bytes(models[0], cfg)
    store = str(tmp_path / "grid.h5")
    run_grid(SPEC, store, executor="vmap", progress=False, memory_bytes=1.5 * per_cell)
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("vmap:")]
    assert len(line) == 1 and "2 cells of seed 42 in 2 groups (1, 1)" in line[0], line
    _assert_same(uninterrupted, store_numbers(store))


@pytest.mark.parametrize("n, most, sizes", [
    (5, 2, [2, 2, 1]), (5, 5, [5]), (6, 4, [3, 3]), (1, 0, [1]), (0, 3, []), (7, 3, [3, 2, 2]),
])  # fmt: skip
def test_pack_balances_groups_within_the_budget(n, most, sizes):
    groups = pack(list(range(n)), 10.0, 10.0 * most)
    assert [len(g) for g in groups] == sizes
    assert [x for g in groups for x in g] == list(range(n))
