"""`tfds:NAME`: an image classification data set prepared by TFDS.

Reads what `tensorflow-datasets` (an optional extra: `pip install
'kerasblocks[tfds]'`) has already prepared in `data_dir` (TFDS's own
default directory without one). Nothing is downloaded: an unprepared data
set is a `DataError` saying where to put the files. The splits are
`train` and the first of `validation` / `test`; a data set with only
`train` validates on its last fifth.

The images stay encoded until the pipeline decodes them, so an epoch is
ordered and resumed as for TFRecord shards (see `tfrecords`): files in an
order TFDS draws from a (seed, epoch) seed, blocks of examples permuted
by it, and a resumed epoch skips encoded examples, never decoding them.
"""

from __future__ import annotations

import contextlib
import logging
import os

import tensorflow as tf

from kerasblocks.data import streams
from kerasblocks.data.dataset import DataError, register_source
from kerasblocks.io import _image_header

_VAL_SPLITS = ("validation", "test")


@contextlib.contextmanager
def _quiet_tensorflow():
    """TFDS's reader uses a tf.data op TensorFlow has deprecated; its
    notice (three lines on stderr) is for TFDS's authors, not users."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(
            "tfds: data sets need tensorflow-datasets: pip install "
            "'kerasblocks[tfds]' (or pip install tensorflow-datasets)"
        ) from None
    return tfds


class TFDSSource(streams.ImageStream):
    """A TFDS image classification data set read from `data_dir`.

    Args:
        name: the TFDS name, optionally with a config and version
            (`"cifar10"`, `"my_set/small:1.0.0"`).
        data_dir: where TFDS prepared it; TFDS's default when None.
        shuffle_block: examples permuted together in an epoch.
        image_size, cache, strict, max_pixels, channels: see
            `streams.ImageStream`
            (an image over `max_pixels` is dropped in the pipeline, where
            its header is read before decoding).
    """

    def __init__(
        self,
        name: str,
        data_dir: str | None = None,
        *,
        shuffle_block: int = streams.SHUFFLE_BLOCK,
        image_size=None,
        cache: str | None = None,
        strict: bool = False,
        max_pixels: int = streams.MAX_PIXELS,
        channels: int | None = None,
    ):
        tfds = _tfds()
        label = f"tfds:{name}"
        where = data_dir or "TFDS's default data directory"
        if data_dir is not None and not os.path.isdir(data_dir):
            raise DataError(f"{label}: no such directory {data_dir}")
        try:
            builder = tfds.builder(name, data_dir=data_dir)
            prepared = builder.is_prepared()
        except Exception as error:  # TFDS raises several types for a miss
            raise DataError(
                f"{label}: not found in {where} ({type(error).__name__}); "
                f"prepare it with `tfds build {name}` where there is "
                "network and copy it there; nothing is downloaded."
            ) from None
        if not prepared:
            raise DataError(
                f"{label}: not prepared in {builder.data_dir}; run `tfds "
                f"build {name} --data_dir=DIR` where there is network and "
                "copy DIR here; nothing is downloaded."
            )
        info = builder.info
        image_key, label_key = info.supervised_keys or ("image", "label")
        features = info.features
        if not isinstance(
            features[image_key], tfds.features.Image
        ) or not isinstance(features[label_key], tfds.features.ClassLabel):
            raise DataError(
                f"{label}: not an image classification data set "
                f"({image_key!r} -> {label_key!r})"
            )
        splits = info.splits
        if "train" not in splits:
            raise DataError(f"{label}: has no train split ({list(splits)})")
        val = next((s for s in _VAL_SPLITS if s in splits), None)
        self._split_names = (
            {"train": "train", "val": val}
            if val
            else {"train": "train[:80%]", "val": "train[80%:]"}
        )
        self._sizes = {
            split: splits[spec].num_examples
            for split, spec in self._split_names.items()
        }
        streams.check_split_sizes(label, *self._sizes.values())
        self._tfds, self._builder = tfds, builder
        self._keys = (image_key, label_key)
        self.shuffle_block = shuffle_block
        channels = features[image_key].shape[-1]
        first = next(iter(self._encoded("train", None, 0, 0)))[0]
        # From the header: decoding the first image unchecked would let
        # one oversized image stop the source from opening.
        height, width, stored = (
            int(d) for d in _image_header.encoded_image_shape(first)
        )
        if height < 1:
            raise DataError(
                f"{label}: its images are not JPEG, PNG, GIF or BMP"
            )
        shape = (height, width, channels or streams.channel_kind(stored))
        super().__init__(
            label,
            num_classes=features[label_key].num_classes,
            class_names=list(features[label_key].names),
            example_shape=shape,
            image_size=image_size,
            cache=cache,
            strict=strict,
            max_pixels=max_pixels,
            channels=channels,
        )

    def _encoded(self, split, seed, epoch, start):
        tfds = self._tfds
        image_key, label_key = self._keys
        shuffled = seed is not None
        order_seed = streams.epoch_seed(seed, epoch) if shuffled else None
        with _quiet_tensorflow():
            data = self._builder.as_dataset(
                split=self._split_names[split],
                shuffle_files=shuffled,
                decoders={image_key: tfds.decode.SkipDecoding()},
                read_config=tfds.ReadConfig(
                    shuffle_seed=order_seed,
                    interleave_cycle_length=4 if shuffled else 1,
                    try_autocache=False,
                    # Names an image the pipeline refuses (its shard, index).
                    add_tfds_id=True,
                ),
            )
        data = data.map(
            lambda example: (
                example[image_key],
                tf.cast(example[label_key], tf.int32),
                example["tfds_id"],
            )
        )
        if shuffled:
            data = streams.block_shuffle(data, self.shuffle_block, order_seed)
        return data.skip(start)


@register_source("tfds")
def open_tfds(where: str, data_dir=None, **options) -> TFDSSource:
    """`tfds:NAME`, read from `data_dir` (never downloaded)."""
    return TFDSSource(where, data_dir, **options)
