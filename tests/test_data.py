import gzip

import numpy as np
import pytest

from ei_sim.data.mnist import (
    Pool,
    embedded_pool,
    idx_pool,
    idx_shape,
    pool_size,
    read_idx,
    sample_and_split,
)


def _write_idx(path, array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_embedded_pool_is_real_mnist():
    pool = embedded_pool()
    assert pool.images.shape == (5000, 784) and pool.images.dtype == np.float32
    assert 0.0 <= pool.images.min() and pool.images.max() == 1.0
    assert np.bincount(pool.labels).tolist() == [500] * 10
    assert pool_size("embedded") == len(pool.labels)  # the size known without loading


def test_idx_reader_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    for part, n in (("train", 7), ("t10k", 3)):
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte", rng.integers(0, 10, n))
    pool = idx_pool(str(tmp_path))
    assert pool.images.shape == (10, 784) and pool.labels.shape == (10,)
    assert pool_size(str(tmp_path)) == 10  # from the headers alone
    assert idx_shape(str(tmp_path / "train-images-idx3-ubyte.gz")) == (7, 28, 28)
    assert pool.images.max() <= 1.0


def test_idx_reader_rejects_non_mnist(tmp_path):
    bad = tmp_path / "x"
    bad.write_bytes(b"not an idx file at all")
    with pytest.raises(ValueError, match="not an MNIST IDX"):
        read_idx(str(bad))
    truncated = tmp_path / "y"
    _write_idx(truncated, np.zeros((4, 28, 28)))
    truncated.write_bytes(truncated.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(truncated))


def test_sample_and_split_is_seeded_and_stratified():
    pool = embedded_pool()
    a = sample_and_split(pool, 2000, 0.2, seed=42)
    b = sample_and_split(pool, 2000, 0.2, seed=42)
    c = sample_and_split(pool, 2000, 0.2, seed=43)
    assert len(a.y_train) == 1600 and len(a.y_test) == 400
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.y_train, c.y_train)
    train_frac = np.bincount(a.y_train, minlength=10) / 1600
    test_frac = np.bincount(a.y_test, minlength=10) / 400
    np.testing.assert_allclose(train_frac, test_frac, atol=0.01)
    with pytest.raises(ValueError):
        sample_and_split(Pool(pool.images[:10], pool.labels[:10]), 20)
