"""Streaming image classification data sets: the part every source shares.

A source (`folders`, `tfrecords`, `tfds_source`) knows how to list its
examples and how to yield the encoded examples of one split in the order
of an epoch, already positioned at an example; `ImageStream` turns that
into batches: parallel decode, channels forced to the model's, resize to
its input size, scaling to [0, 1], optional cache, the same per-batch
augmentation as the in-memory data sets, and prefetch. Nothing is held
whole in memory unless a memory cache is asked for.
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np
import tensorflow as tf

from kerasblocks.data._refusals import checked_decode
from kerasblocks.data.dataset import (
    DataError,
    _augment,
    check_batch_fits,
    to_float_pixels,
)
from kerasblocks.io import _image_header
from kerasblocks.io.image_serving import crop_and_resize

# Images over this many pixels (height times width) are skipped, unread:
# see `kerasblocks.io._image_header` for the number.
MAX_PIXELS = _image_header.MAX_PIXELS

# Fixed parallelism, the usable cores (a container may see more), rather
# than AUTOTUNE: a live iterator with AUTOTUNE can drop a 2-core machine
# into a one-core-idle mode (see DESIGN.md).
_CORES = (
    len(os.sched_getaffinity(0))
    if hasattr(os, "sched_getaffinity")
    else os.cpu_count() or 1
)
PARALLEL_CALLS = max(1, min(_CORES, 8))
SHUFFLE_BLOCK = 1024
# The order a cache is filled with the training split in (see `pipeline`).
CACHE_ORDER_SEED = 0


def epoch_seed(seed: int, epoch: int) -> int:
    """One int seed for tf.data ops, a function of (seed, epoch) only."""
    return int(np.random.default_rng([seed, epoch]).integers(2**31 - 1))


def block_shuffle(
    data: tf.data.Dataset, block: int, seed: int
) -> tf.data.Dataset:
    """Permutes each run of `block` elements with a stateless shuffle.

    Unlike `Dataset.shuffle`, whose seed is combined with TensorFlow's
    global seed, the order here depends on `seed` alone, and memory is
    bounded by one block.
    """

    def permute(index, items):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(tf.shape(items[0])[0]),
            seed=tf.stack([tf.constant(seed, tf.int64), index]),
        )
        return tuple(tf.gather(item, order) for item in items)

    return data.batch(block).enumerate().map(permute).unbatch()


def notice(message: str) -> None:
    """A one-line notice for the user (not a warning: nothing is wrong)."""
    print(f"notice: {message}", file=sys.stderr)


def set_channels(counts: dict[int, int]) -> int:
    """The channel count of a whole set from how many images have each
    (`{1: gray, 3: colour}`): the majority, RGB on a tie, so that one
    image that happens to come first does not decide it."""
    return 1 if counts.get(1, 0) > counts.get(3, 0) else 3


def channel_kind(channels) -> int:
    """1 for stored grayscale (with or without alpha), 3 for colour."""
    return 1 if int(channels) in (1, 2) else 3


def channel_counts(shapes) -> dict[int, int]:
    """How many of the images of these `(height, width, channels)`
    shapes are grayscale and colour: `{1: gray, 3: colour}`."""
    counts = {1: 0, 3: 0}
    for shape in shapes:
        counts[channel_kind(shape[2])] += 1
    return counts


def check_max_pixels(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"max_pixels must be a positive int. Received: {value!r}"
        )
    return value


def over_limit(height: int, width: int, max_pixels: int) -> str | None:
    """Why an image of this declared size is refused, or None."""
    if height * width <= max_pixels:
        return None
    return (
        f"{height}x{width} = {height * width} pixels, over the limit "
        f"max_image_pixels={max_pixels}"
    )


def decode_image(encoded: tf.Tensor, channels: int) -> tf.Tensor:
    """JPEG, PNG, BMP or GIF bytes to a uint8 `[height, width, channels]`.

    `decode_image` converts between grayscale and RGB when asked for a
    channel count; GIFs keep their first frame.
    """
    image = tf.io.decode_image(
        encoded, channels=channels, expand_animations=False
    )
    if channels:
        image.set_shape([None, None, channels])
    return image


class ImageStream:
    """A classification data set of encoded images, decoded as it streams.

    Subclasses set `_sizes` (`{"train": n, "val": m}`: the examples of
    each split) or define `num_train` and `num_val`, and define
    `_encoded(split, seed,
    epoch, start)`: a `tf.data.Dataset` of `(encoded_bytes, label)` (or
    `(path, label)` with `reads_files = True`), optionally with a third
    item, a string naming the example (a refused image is named by it,
    else by its path), in the order of `epoch`, starting at example
    `start`. Without a seed the order is the split's own, fixed one.

    With a cache, an epoch permutes blocks of `SHUFFLE_BLOCK` examples of
    the cached split instead (a cache is read in order): its order, too,
    depends on (seed, epoch) alone, but it is not the uncached order, so
    a cached run and an uncached one see different batches.

    Attributes:
        name: the data set name as given (`folder:DIR`, ...).
        num_classes: number of classes; labels are `0 .. num_classes - 1`.
        class_names: the class names, by label, when the source has them.
        example_shape: `(height, width, channels)` the images are resized
            to when no model shape is given.
        cache: None, "memory", or a file path prefix for `tf.data`'s cache
            of decoded and resized images.
        strict: unreadable images raise instead of being skipped.
        max_pixels: images declaring more pixels (height times width) in
            their header are never decoded: skipped (named, when the
            source checks its images up front), or an error under
            `strict`.
        channel_counts: how many images are grayscale and colour
            (`{1: n, 3: m}`), when the source knows; the set's channels
            are their majority, and a conversion is announced once.
        channels: 1 or 3 decides the set's channels instead of the
            majority (None); a pipeline for a model that takes the other
            count is then a `DataError`.
    """

    task = "classification"
    pad_id = None
    is_image = True
    reads_files = False

    def __init__(
        self,
        name: str,
        *,
        num_classes: int,
        class_names: list[str] | None,
        example_shape: tuple[int, int, int],
        image_size: tuple[int, int] | None = None,
        cache: str | None = None,
        strict: bool = False,
        max_pixels: int = MAX_PIXELS,
        channel_counts: dict[int, int] | None = None,
        channels: int | None = None,
    ):
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3. Received: {channels!r}")
        self.name = name
        self.num_classes = num_classes
        self.class_names = class_names
        self.cache = cache
        self.strict = strict
        self.max_pixels = check_max_pixels(max_pixels)
        self.channel_counts = channel_counts
        if channel_counts:
            example_shape = (*example_shape[:2], set_channels(channel_counts))
        self.channels = channels
        self._stored_channels = example_shape[-1]
        if channels:
            example_shape = (*example_shape[:2], channels)
        if image_size is not None:
            height, width = _image_size(image_size)
            example_shape = (height, width, example_shape[-1])
        self.example_shape = tuple(example_shape)
        self.info = {"class_names": class_names}
        if image_size is not None:
            self.info["model_overrides"] = {"input_shape": self.example_shape}
        self._told_channels = False

    @property
    def num_train(self) -> int:
        return self._sizes["train"]

    @property
    def num_val(self) -> int:
        return self._sizes["val"]

    def _encoded(self, split, seed, epoch, start) -> tf.data.Dataset:
        raise NotImplementedError

    def _source_channels(self) -> int:
        return self._stored_channels

    def _decoder(self, image_shape, pixels, crop_fraction, interpolation):
        height, width, channels = image_shape
        reads_files = self.reads_files
        check = functools.partial(
            checked_decode,
            channels=channels,
            max_pixels=self.max_pixels,
            source=self.name,
            strict=self.strict,
        )

        def decode(item, label, name=None):
            encoded = tf.io.read_file(item) if reads_files else item
            if name is None:
                name = item if reads_files else tf.constant("an image")
            # Checked from the header before decoding: an image over the
            # limit fails here, unread, and is dropped with its label.
            image = check(encoded, name=name)
            image = to_float_pixels(image, pixels)
            image = crop_and_resize(
                image, (height, width), crop_fraction, interpolation
            )
            return image, label

        return decode

    def _announce_conversion(self, channels: int) -> None:
        """One notice, once, when images are converted to `channels`."""
        if self.channels and channels != self.channels:
            raise DataError(
                f"{self.name}: channels={self.channels} (--channels), but "
                f"the model takes {channels}; give --image_size so that the "
                "model is built for the data, or drop --channels."
            )
        if self._told_channels:
            return
        counts = self.channel_counts or {
            channel_kind(self._source_channels()): 1
        }
        other = 1 if channels == 3 else 3
        converted = counts.get(other, 0)
        if not converted:
            return
        self._told_channels = True
        if converted == sum(counts.values()):
            what = f"images have {other} channel(s)"
        else:
            what = (
                f"{converted} of {sum(counts.values())} images have "
                f"{other} channel(s)"
            )
        notice(f"{self.name}: {what}; converting to the model's {channels}.")

    def _skip_undecodable(self, data: tf.data.Dataset) -> tf.data.Dataset:
        """Drops the images that fail to decode, unless `strict`.

        The up-front checks catch what they can; an image that still fails
        is dropped with its own label, never replaced by another's.
        """
        return data if self.strict else data.ignore_errors(log_warning=True)

    def pipeline(
        self,
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
        """Batches of `(images, labels)`; see `data.make_pipeline`."""
        size = self.num_train if split == "train" else self.num_val
        check_batch_fits(
            self.name, split, size, batch_size, shard, drop_remainder
        )
        image_shape = tuple(image_shape or self.example_shape)
        if len(image_shape) != 3:
            raise ValueError(
                f"image_shape must be (height, width, channels). "
                f"Received: {image_shape}"
            )
        self._announce_conversion(image_shape[-1])
        workers = shard[0] if shard else 1
        start = start_batch * batch_size * workers
        decode = self._decoder(
            image_shape, pixels, crop_fraction, interpolation
        )
        if self.cache is None:
            data = self._encoded(split, shuffle_seed, epoch, start)
            if shard:
                data = data.shard(*shard)
            data = self._skip_undecodable(
                data.map(
                    decode,
                    num_parallel_calls=PARALLEL_CALLS,
                    deterministic=True,
                )
            )
        else:
            data = self._cached(split, decode, shuffle_seed, epoch, shard)
            data = data.skip(start)
            if shard:
                data = data.shard(*shard)
        if repeat:
            data = data.repeat()
        data = data.batch(batch_size, drop_remainder=drop_remainder)
        if augment:
            seed_base = tf.constant([shuffle_seed or 0, epoch], tf.int32)

            def augment_batch(index, batch):
                images, labels = batch
                seed = seed_base * 7919 + tf.cast(index, tf.int32)
                return _augment(images, seed), labels

            data = data.enumerate(start=start_batch).map(
                augment_batch, num_parallel_calls=2, deterministic=True
            )
        return data.with_options(self._options(shard)).prefetch(2)

    def _cached(self, split, decode, shuffle_seed, epoch, shard):
        """The decoded examples of `split` through the cache, in the
        order of (shuffle_seed, epoch)."""
        # A cache holds the split decoded once, in a fixed order; each
        # epoch then reorders it, block by block, by (seed, epoch).
        # The training split goes in mixed by a seed of its own, not
        # in its listing order: a folder lists its files class by
        # class, and blocks of that would be batches of one class.
        # The mix is the same for every run seed, so a cache file
        # serves any run.
        path = "" if self.cache == "memory" else f"{self.cache}-{split}"
        if path and shard:
            path += f"-worker{shard[1]}"
        if path:
            _prepare_cache_file(path)
        fill_seed = CACHE_ORDER_SEED if split == "train" else None
        data = self._encoded(split, fill_seed, 0, 0).map(
            decode, num_parallel_calls=PARALLEL_CALLS, deterministic=True
        )
        # Skipped before the cache, which then holds good images only;
        # past it, an error of the cache's own files (which would
        # recur on every retry) is raised, not skipped forever.
        data = self._skip_undecodable(data).cache(path)
        if shuffle_seed is not None:
            data = block_shuffle(
                data, SHUFFLE_BLOCK, epoch_seed(shuffle_seed, epoch)
            )
        return data

    def _options(self, shard) -> tf.data.Options:
        options = tf.data.Options()
        options.deterministic = True
        # tf.distribute's AUTO policy would shard TFRecord files by worker,
        # leaving workers with different numbers of batches; by element
        # keeps them in step, and an explicit `shard` needs none.
        policy = tf.data.experimental.AutoShardPolicy
        options.experimental_distribute.auto_shard_policy = (
            policy.OFF if shard else policy.DATA
        )
        if self.cache is not None:
            # A cached epoch permutes blocks of decoded images, and
            # autotune's buffers read three or four blocks ahead (~2 GB
            # of 224x224 images); without it, about one block is held.
            # Cached inputs are also where autotune's one-core-idle mode
            # was seen (DESIGN.md); the parallelism here is fixed anyway.
            options.autotune.enabled = False
        return options


def _prepare_cache_file(path: str) -> None:
    """Makes the directory of the file cache `path` (tf.data does not) and
    removes what a killed writer of it left.

    tf.data refuses a cache prefix whose lockfile exists, and a run killed
    while filling its cache leaves one; with no `.index` the cache was
    never finished, so its files are stale (one process per prefix).
    """
    directory = os.path.dirname(path)
    try:
        if directory:
            tf.io.gfile.makedirs(directory)
    except tf.errors.OpError as error:
        raise DataError(
            f"cache {path}: cannot create {directory} ({error.message})"
        ) from None
    if tf.io.gfile.exists(path + ".index"):
        return
    for stale in tf.io.gfile.glob(path + "_*"):
        tf.io.gfile.remove(stale)


def _image_size(value) -> tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ValueError(
            f"image_size must be a positive int or (height, width). "
            f"Received: {value}"
        )
    return value


def check_split_sizes(name: str, num_train: int, num_val: int) -> None:
    """A split with no examples is a `DataError` naming the source."""
    for split, size in (("train", num_train), ("val", num_val)):
        if size < 1:
            raise DataError(f"{name}: the {split} split has no examples.")
