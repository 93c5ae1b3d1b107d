"""Data sets by name, offline first, and their tf.data pipelines.

A data set is a `Dataset`: NumPy arrays for a training and a validation
split plus what the trainer needs to know (task, classes, shapes).
Loaders never download; the built-in ones (digits, mnist, fashion_mnist,
cifar10, synthetic) are in `builtin_sets`, the sequence data sets in
`sequence_data`, each registered with `register_dataset`.

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
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from kerasblocks import choices
from kerasblocks.io.image_serving import crop_and_resize

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
    name: str, summary: str | None = None, *, reads_files: bool = True
) -> Callable[[Loader], Loader]:
    """Registers `loader(data_dir=None, **options) -> Dataset` as `name`.

    Args:
        summary: one line for `--help`; the built-in data sets' are in
            `kerasblocks.choices.DATASETS` (which the tools list), so
            they give none.
        reads_files: False for a data set made in memory, which ignores
            `data_dir` (so a `--data_dir` given for it is a mistake).
    """
    if summary is None:
        if name not in choices.DATASETS:
            raise ValueError(
                f"The data set {name!r} needs a summary (the built-in ones "
                "are listed in kerasblocks.choices.DATASETS)."
            )
        summary = choices.DATASETS[name]

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
    kind: str, summary: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers `opener(where, data_dir=None, **options)` for the data set
    names `KIND:WHERE`; the opener returns a streaming data set. The
    built-in sources' summaries are in `kerasblocks.choices.SOURCES`."""
    if summary is None:
        if kind not in choices.SOURCES:
            raise ValueError(
                f"The source {kind!r} needs a summary (the built-in ones "
                "are listed in kerasblocks.choices.SOURCES)."
            )
        summary = choices.source_summary(kind)

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
    problem = choices.dataset_problem(name, _DATASETS, _SOURCES)
    if problem:
        raise DataError(problem)
    kind, colon, where = name.partition(":")
    if colon:
        opener, _ = _SOURCES[kind]
        return opener(where, data_dir=data_dir, **options)
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


def _prepare_images(
    images: tf.Tensor,
    image_shape,
    pixels="unit",
    crop_fraction: float = 1.0,
    interpolation: str = "bilinear",
) -> tf.Tensor:
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
    if crop_fraction < 1.0 or tuple(x.shape[1:3]) != (height, width):
        x = crop_and_resize(x, (height, width), crop_fraction, interpolation)
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
    crop_fraction: float = 1.0,
    interpolation: str = "bilinear",
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

    `crop_fraction` and `interpolation` make the evaluation view a
    pretrained model is served with (`ImageServing`): the central
    fraction of each image kept, then resized by that method, so an
    evaluation sees the pixels serving does.
    """
    _check_pipeline_arguments(split, batch_size, start_batch, shard, pixels)
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
            crop_fraction=crop_fraction,
            interpolation=interpolation,
        )
    x = dataset.x_train if split == "train" else dataset.x_val
    y = dataset.y_train if split == "train" else dataset.y_val
    check_batch_fits(
        dataset.name, split, len(y), batch_size, shard, drop_remainder
    )
    if shuffle_seed is not None:
        x, y = _shuffled(x, y, shuffle_seed, epoch)
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shard is not None:
        data = data.shard(*shard)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size, drop_remainder=drop_remainder)
    if dataset.is_image and image_shape is not None:
        prepare = _batch_preparer(
            image_shape,
            pixels,
            crop_fraction,
            interpolation,
            augment_seed=(shuffle_seed, epoch) if augment else None,
        )
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


def _shuffled(x, y, shuffle_seed: int, epoch: int):
    """`(x, y)` in the order of (shuffle_seed, epoch) alone."""
    order = np.random.default_rng([shuffle_seed, epoch]).permutation(len(y))
    x = {k: v[order] for k, v in x.items()} if isinstance(x, dict) else x[order]
    return x, y[order]


def _check_pipeline_arguments(split, batch_size, start_batch, shard, pixels):
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


def check_batch_fits(
    name: str,
    split: str,
    size: int,
    batch_size: int,
    shard: tuple[int, int] | None,
    drop_remainder: bool,
) -> None:
    """Dropping the remainder of a split smaller than one global batch
    (`batch_size` on each worker of `shard`) would leave no batch: a
    `DataError` naming the source."""
    workers = shard[0] if shard else 1
    if drop_remainder and batch_size * workers > size:
        raise DataError(
            f"{name}: batch size {batch_size * workers} is larger than the "
            f"{split} split ({size} examples); lower --batch_size."
        )


def _batch_preparer(
    image_shape, pixels, crop_fraction, interpolation, augment_seed
):
    """`prepare(index, (images, labels))` for batch `index`: images made
    `image_shape` and, unless `augment_seed` is None, augmented with a
    seed of (shuffle_seed, epoch) and the batch's index."""
    if augment_seed is not None:
        shuffle_seed, epoch = augment_seed
        seed_base = tf.constant([shuffle_seed or 0, epoch], tf.int64)

    def prepare(index, batch):
        images, labels = batch
        images = _prepare_images(
            images, image_shape, pixels, crop_fraction, interpolation
        )
        if augment_seed is not None:
            images = _augment(
                images,
                tf.cast(seed_base, tf.int32) * 7919 + tf.cast(index, tf.int32),
            )
        return images, labels

    return prepare
