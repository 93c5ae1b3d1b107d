"""The built-in data sets: offline, in memory, registered by name.

`digits` is scikit-learn's bundled handwritten digits (the default);
`mnist`, `fashion_mnist` and `cifar10` load their original file formats
from `data_dir` or Keras's cache, never downloading; `synthetic` is
random data for benchmarks. Each is registered with
`kerasblocks.data.dataset.register_dataset`.
"""

from __future__ import annotations

import gzip
import os
import tarfile

import numpy as np

from kerasblocks.data.dataset import (
    DataError,
    Dataset,
    register_dataset,
    split_train_val,
)


@register_dataset("digits", reads_files=False)
def _digits(data_dir=None, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None]
    y = digits.target.astype(np.int32)
    x_train, y_train, x_val, y_val = split_train_val(x, y, val_fraction, seed)
    return Dataset("digits", x_train, y_train, x_val, y_val, num_classes=10)


@register_dataset("synthetic", reads_files=False)
def _synthetic(
    data_dir=None,
    shape=(32, 32, 3),
    num_classes: int = 10,
    size: int = 512,
    seed: int = 0,
) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (size, *shape), dtype=np.uint8)
    y = rng.integers(0, num_classes, size).astype(np.int32)
    return Dataset(
        "synthetic",
        x,
        y,
        x[: size // 8],
        y[: size // 8],
        num_classes=num_classes,
    )


def _keras_cache(*parts: str) -> str:
    home = os.environ.get(
        "KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")
    )
    return os.path.join(home, "datasets", *parts)


def _first_existing(candidates: list[str]) -> str | None:
    return next((c for c in candidates if c and os.path.exists(c)), None)


_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_val": "t10k-images-idx3-ubyte",
    "y_val": "t10k-labels-idx1-ubyte",
}


def _read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 8 or data[0:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    ]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise DataError(
            f"{path}: truncated IDX file "
            f"({len(data) - offset} of {expected} bytes)"
        )
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _idx_dataset(name: str, cache_dir: str, data_dir: str | None) -> Dataset:
    directories = [data_dir] if data_dir else [_keras_cache(cache_dir)]
    arrays = {}
    for key, base in _IDX_FILES.items():
        candidates = [
            os.path.join(d, base + ext)
            for d in directories
            for ext in (".gz", "")
        ]
        path = _first_existing(candidates)
        if path is None:
            raise DataError(
                f"{name}: {base}[.gz] not found in {', '.join(directories)}. "
                f"Put the original {name} IDX files there or pass "
                "--data_dir=DIR; nothing is downloaded."
            )
        arrays[key] = _read_idx(path)
    return Dataset(
        name,
        arrays["x_train"][..., None],
        arrays["y_train"].astype(np.int32),
        arrays["x_val"][..., None],
        arrays["y_val"].astype(np.int32),
        num_classes=10,
    )


@register_dataset("mnist")
def _mnist(data_dir=None) -> Dataset:
    if data_dir is None:
        npz = _keras_cache("mnist.npz")
        if os.path.exists(npz):
            return _from_npz("mnist", npz)
    return _idx_dataset("mnist", "mnist", data_dir)


@register_dataset("fashion_mnist")
def _fashion_mnist(data_dir=None) -> Dataset:
    return _idx_dataset("fashion_mnist", "fashion-mnist", data_dir)


def _from_npz(name: str, path: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            return Dataset(
                name,
                data["x_train"][..., None],
                data["y_train"].astype(np.int32),
                data["x_test"][..., None],
                data["y_test"].astype(np.int32),
                num_classes=10,
            )
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{name}: {path} is unreadable ({error})") from None


def _load_cifar_batch(data: bytes, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads a CIFAR-10 python batch without unpickling code.

    The batches are pickled dicts of bytes, lists and one array; a
    restricted unpickler that resolves no globals but NumPy's array
    reconstruction reads them without running anything else.
    """
    import io
    import pickle as _pickle

    allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    class Restricted(_pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in allowed:
                return super().find_class(module, name)
            raise DataError(
                f"{path}: refusing to load {module}.{name} from a pickle"
            )

    try:
        batch = Restricted(io.BytesIO(data), encoding="bytes").load()
        x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(batch[b"labels"], np.int32)
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"{path}: not a CIFAR-10 batch ({error})") from None
    return x.transpose(0, 2, 3, 1), y


@register_dataset("cifar10")
def _cifar10(data_dir=None) -> Dataset:
    directories = (
        [data_dir]
        if data_dir
        else [
            _keras_cache("cifar-10-batches-py"),
            _keras_cache("cifar-10-batches-py-target"),
        ]
    )
    archive = _first_existing(
        [os.path.join(d, "cifar-10-python.tar.gz") for d in directories]
    )
    members: dict[str, bytes] = {}
    if archive:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                base = os.path.basename(member.name)
                if member.isfile() and (
                    base.startswith("data_batch_") or base == "test_batch"
                ):
                    members[base] = tar.extractfile(member).read()
    else:
        for directory in directories:
            for sub in ("", "cifar-10-batches-py"):
                folder = os.path.join(directory, sub)
                if os.path.isdir(folder):
                    for base in os.listdir(folder):
                        if (
                            base.startswith("data_batch_")
                            or base == "test_batch"
                        ):
                            with open(os.path.join(folder, base), "rb") as f:
                                members.setdefault(base, f.read())
    train = sorted(b for b in members if b.startswith("data_batch_"))
    if not train or "test_batch" not in members:
        raise DataError(
            "cifar10: data_batch_* and test_batch not found in "
            f"{', '.join(directories)}. Put the original CIFAR-10 python "
            "batches (or cifar-10-python.tar.gz) there or pass --data_dir=DIR; "
            "nothing is downloaded."
        )
    parts = [_load_cifar_batch(members[b], b) for b in train]
    x_val, y_val = _load_cifar_batch(members["test_batch"], "test_batch")
    return Dataset(
        "cifar10",
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        x_val,
        y_val,
        num_classes=10,
    )
