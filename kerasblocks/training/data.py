"""Data sets by name, offline first, and their tf.data pipelines.

A data set is a `Dataset`: NumPy arrays for a training and a validation
split plus what the trainer needs to know (task, classes, shapes).
Loaders never download: `digits` is scikit-learn's bundled handwritten
digits; `mnist`, `fashion_mnist` and `cifar10` load from `data_dir` (the
original file formats) or from Keras's cache when the files are there;
`synthetic` is random data for benchmarks. The sequence zoo registers
its own data sets the same way.

Users' own files are named by a source form, `KIND:WHERE` (`folder:DIR`,
`tfrecord:GLOB[,GLOB]`, `tfds:NAME`): the modules that read them register
an opener with `register_source` and return a streaming data set whose
`pipeline(...)` method `make_pipeline` calls.

`make_pipeline` turns a split into a `tf.data.Dataset`: images resized to
the model's input size and scaled to [0, 1], optional augmentation, a
shuffle that depends only on (seed, epoch), batching and prefetching.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import os
import tarfile
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

TASKS = ("classification", "token_classification", "regression")


class DataError(ValueError):
    """A data set is missing or unreadable; says where it looked and how
    to provide it."""


@dataclasses.dataclass
class Dataset:
    """Arrays of one data set.

    Attributes:
        name: the registered name.
        x_train, y_train, x_val, y_val: inputs (an array, or a dict of
            arrays for multi-input models) and targets.
        task: "classification" (one label per example),
            "token_classification" (one label per position, `pad_id`
            ignored) or "regression".
        num_classes: classes (or vocabulary size) for the classification
            tasks.
        pad_id: the padding token of token_classification targets.
        info: anything else a model needs (vocabulary, max_length, ...).
    """

    name: str
    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    task: str = "classification"
    num_classes: int | None = None
    pad_id: int | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(
                f"task must be one of {TASKS}. Received: {self.task!r}"
            )

    @property
    def is_image(self) -> bool:
        return isinstance(self.x_train, np.ndarray) and self.x_train.ndim == 4

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def num_val(self) -> int:
        return len(self.y_val)

    @property
    def example_shape(self):
        return (
            tuple(self.x_train.shape[1:])
            if isinstance(self.x_train, np.ndarray)
            else None
        )


Loader = Callable[..., Dataset]
_DATASETS: dict[str, tuple[Loader, str]] = {}
_SOURCES: dict[str, tuple[Callable[..., Any], str]] = {}
_GENERATED: set[str] = set()


def register_dataset(
    name: str, summary: str = "", *, reads_files: bool = True
) -> Callable[[Loader], Loader]:
    """Registers `loader(data_dir=None, **options) -> Dataset` as `name`.

    Args:
        reads_files: False for a data set made in memory, which ignores
            `data_dir` (so a `--data_dir` given for it is a mistake).
    """

    def decorator(loader: Loader) -> Loader:
        if name in _DATASETS:
            raise ValueError(
                f"A data set named {name!r} is already registered."
            )
        _DATASETS[name] = (loader, summary)
        if not reads_files:
            _GENERATED.add(name)
        return loader

    return decorator


def register_source(
    kind: str, summary: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers `opener(where, data_dir=None, **options)` for the data set
    names `KIND:WHERE`; the opener returns a streaming data set."""

    def decorator(opener):
        if kind in _SOURCES:
            raise ValueError(f"A source named {kind!r} is already registered.")
        _SOURCES[kind] = (opener, summary)
        return opener

    return decorator


def list_sources() -> dict[str, str]:
    """The source forms (`KIND` of `KIND:WHERE`) and their summaries."""
    return {kind: summary for kind, (_, summary) in sorted(_SOURCES.items())}


def reads_files(name: str) -> bool:
    """Whether the registered data set `name` reads `data_dir`."""
    return name not in _GENERATED


def list_datasets() -> list[str]:
    """The registered data set names, sorted."""
    return sorted(_DATASETS)


def load_dataset(name: str, data_dir: str | None = None, **options) -> Dataset:
    """Loads a registered data set, or opens a source named `KIND:WHERE`.

    Raises:
        DataError: unknown name, or the files are missing or unreadable
            (the message says where it looked and how to provide them).
    """
    kind, colon, where = name.partition(":")
    if colon and kind in _SOURCES:
        opener, _ = _SOURCES[kind]
        return opener(where, data_dir=data_dir, **options)
    if name not in _DATASETS:
        close = difflib.get_close_matches(name, list(_DATASETS), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise DataError(
            f"Unknown data set {name!r}.{hint} "
            f"Known: {', '.join(list_datasets())}; or "
            + ", ".join(f"{kind}:..." for kind in list_sources())
        )
    loader, _ = _DATASETS[name]
    return loader(data_dir=data_dir, **options)


def split_train_val(x, y, val_fraction: float, seed: int):
    """A seeded shuffle, then the last `val_fraction` for validation."""
    order = np.random.default_rng(seed).permutation(len(y))
    cut = len(y) - max(1, int(round(len(y) * val_fraction)))
    pick = lambda a, idx: (  # noqa: E731
        {k: v[idx] for k, v in a.items()} if isinstance(a, dict) else a[idx]
    )
    return (
        pick(x, order[:cut]),
        y[order[:cut]],
        pick(x, order[cut:]),
        y[order[cut:]],
    )


# -- images ----------------------------------------------------------------


@register_dataset(
    "digits",
    "scikit-learn's 1,797 bundled 8x8 handwritten digits",
    reads_files=False,
)
def _digits(data_dir=None, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None]
    y = digits.target.astype(np.int32)
    x_train, y_train, x_val, y_val = split_train_val(x, y, val_fraction, seed)
    return Dataset("digits", x_train, y_train, x_val, y_val, num_classes=10)


@register_dataset(
    "synthetic", "random images and labels, for benchmarks", reads_files=False
)
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


@register_dataset("mnist", "MNIST from --data_dir or Keras's cache (IDX files)")
def _mnist(data_dir=None) -> Dataset:
    if data_dir is None:
        npz = _keras_cache("mnist.npz")
        if os.path.exists(npz):
            return _from_npz("mnist", npz)
    return _idx_dataset("mnist", "mnist", data_dir)


@register_dataset(
    "fashion_mnist",
    "Fashion-MNIST from --data_dir or Keras's cache (IDX files)",
)
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


@register_dataset(
    "cifar10", "CIFAR-10 from --data_dir or Keras's cache (python batches)"
)
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


# -- pipelines -------------------------------------------------------------


PIXELS = ("unit", "raw")


def check_pixels(pixels: str) -> None:
    if pixels not in PIXELS:
        raise ValueError(
            f"pixels must be one of {PIXELS}. Received: {pixels!r}"
        )


def to_float_pixels(images: tf.Tensor, pixels: str) -> tf.Tensor:
    """uint8 images (or floats in [0, 1]) as float32 in [0, 1] ("unit",
    what models trained from scratch take) or in [0, 255] ("raw", what
    a model with its preprocessing inside takes)."""
    if images.dtype == tf.uint8:
        x = tf.image.convert_image_dtype(images, tf.float32)
    else:
        x = tf.cast(images, tf.float32)
    # Through [0, 1] either way, so both scales see the same rounding.
    return x * 255.0 if pixels == "raw" else x


def _prepare_images(images: tf.Tensor, image_shape, pixels="unit") -> tf.Tensor:
    height, width, channels = image_shape
    x = to_float_pixels(images, pixels)
    if x.shape[-1] != channels:
        if x.shape[-1] == 1:
            x = tf.repeat(x, channels, axis=-1)
        elif channels == 1:
            x = tf.reduce_mean(x, axis=-1, keepdims=True)
        else:
            raise DataError(
                f"cannot turn {x.shape[-1]}-channel images into "
                f"{channels} channels"
            )
    if tuple(x.shape[1:3]) != (height, width):
        x = tf.image.resize(x, (height, width))
    return x


def _augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random flip and a 1/8-size random translation, seeded per batch."""
    flipped = tf.image.stateless_random_flip_left_right(images, seed)
    height, width = images.shape[1], images.shape[2]
    pad_h, pad_w = max(1, height // 8), max(1, width // 8)
    padded = tf.pad(
        flipped, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]], "REFLECT"
    )
    return tf.image.stateless_random_crop(
        padded, tf.shape(flipped), seed=seed + 1
    )


def make_pipeline(
    dataset: Dataset,
    split: str,
    batch_size: int,
    *,
    image_shape=None,
    shuffle_seed: int | None = None,
    epoch: int = 0,
    augment: bool = False,
    drop_remainder: bool = False,
    repeat: bool = False,
    start_batch: int = 0,
    shard: tuple[int, int] | None = None,
    pixels: str = "unit",
) -> tf.data.Dataset:
    """A tf.data pipeline over one split.

    The order of a shuffled split depends only on (shuffle_seed, epoch),
    so a resumed run sees the same batches: `start_batch=k` yields the
    batches `k, k + 1, ...` of that order. Images are resized to
    `image_shape` and scaled to [0, 1] (`pixels="unit"`) or kept in
    [0, 255] (`pixels="raw"`, for a model that preprocesses inside).

    `shard=(num_shards, index)` (one per worker, with `batch_size` the
    worker's share) keeps every `num_shards`-th example of that order
    from `index`, before any decoding: batch `k` of the workers together
    holds the examples of the global batch `k`.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val'. Received: {split!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive. Received: {batch_size}")
    if start_batch < 0:
        raise ValueError(f"start_batch must be >= 0. Received: {start_batch}")
    if shard is not None and not 0 <= shard[1] < shard[0]:
        raise ValueError(
            f"shard must be (num_shards, index) with 0 <= index < "
            f"num_shards. Received: {shard}"
        )
    check_pixels(pixels)
    if not isinstance(dataset, Dataset):
        return dataset.pipeline(
            split,
            batch_size,
            image_shape=image_shape,
            shuffle_seed=shuffle_seed,
            epoch=epoch,
            augment=augment,
            drop_remainder=drop_remainder,
            repeat=repeat,
            start_batch=start_batch,
            shard=shard,
            pixels=pixels,
        )
    x = dataset.x_train if split == "train" else dataset.x_val
    y = dataset.y_train if split == "train" else dataset.y_val
    size = len(y)
    workers = shard[0] if shard else 1
    if drop_remainder and batch_size * workers > size:
        raise DataError(
            f"{dataset.name}: batch size {batch_size * workers} is larger "
            f"than the {split} split ({size} examples); lower --batch_size."
        )
    if shuffle_seed is not None:
        order = np.random.default_rng([shuffle_seed, epoch]).permutation(size)
        x = (
            {k: v[order] for k, v in x.items()}
            if isinstance(x, dict)
            else x[order]
        )
        y = y[order]
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shard is not None:
        data = data.shard(*shard)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size, drop_remainder=drop_remainder)
    if dataset.is_image and image_shape is not None:
        seed_base = tf.constant([shuffle_seed or 0, epoch], tf.int64)

        def prepare(index, batch):
            images, labels = batch
            images = _prepare_images(images, image_shape, pixels)
            if augment:
                images = _augment(
                    images,
                    tf.cast(seed_base, tf.int32) * 7919
                    + tf.cast(index, tf.int32),
                )
            return images, labels

        data = (
            data.enumerate()
            .skip(start_batch)
            .map(
                prepare,
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        )
    elif start_batch:
        data = data.skip(start_batch)
    options = tf.data.Options()
    options.deterministic = True
    data = data.with_options(options)
    return data.prefetch(2)
