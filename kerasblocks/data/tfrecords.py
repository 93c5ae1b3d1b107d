"""`tfrecord:TRAIN_GLOB[,VAL_GLOB]`: image classification TFRecord shards.

Records are `tf.train.Example`s with the keys TFDS and the TF Model
Garden use: `image/encoded` (the JPEG/PNG/BMP/GIF bytes) and
`image/class/label` (an int64), optionally `image/class/text`,
`image/format`, `image/height`, `image/width`. Shards may be plain or
gzip-compressed (told apart by their first bytes). Without a validation
glob a seeded fraction of the records validates.

`write_image_tfrecords` turns a class folder into such shards.

Order and resume. The shards are scanned once when the source opens
(labels only; no image is decoded): that counts the records, checks
their keys and labels, and gives each record a global index for the
seeded split. An epoch reads the shards in an order drawn from (seed,
epoch), interleaved record by record, then permutes blocks of records
with a stateless shuffle seeded by (seed, epoch) alone. Resuming at
batch `k` skips the first `k * batch_size` serialized records before
they are parsed or decoded. We chose this over an index of byte offsets
(gzip shards cannot be read at an offset) and over checkpointing the
tf.data iterator (its shuffle buffer would go into every checkpoint, and
the checkpoint would then depend on the pipeline's internals).
"""

from __future__ import annotations

import glob
import os

import numpy as np
import tensorflow as tf

from kerasblocks._validation import positive_int
from kerasblocks.data import folders, streams
from kerasblocks.data.dataset import DataError, register_source
from kerasblocks.data.tfrecord_scan import (
    ENCODED,
    LABEL,
    TEXT,
    class_count,
    scan,
    within_limits,
)

_FORMATS = {b"\xff\xd8": "jpeg", b"\x89P": "png", b"GI": "gif", b"BM": "bmp"}
_READ_PARALLEL = 4


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def image_example(
    encoded: bytes, label: int, text: str, height: int, width: int
) -> tf.train.Example:
    """One record in the TFDS / Model Garden image classification layout."""
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                ENCODED: _bytes(encoded),
                "image/format": _bytes(
                    _FORMATS.get(encoded[:2], "unknown").encode()
                ),
                "image/height": _int(height),
                "image/width": _int(width),
                LABEL: _int(label),
                TEXT: _bytes(text.encode()),
            }
        )
    )


def write_image_tfrecords(
    folder: str,
    out_prefix: str,
    num_shards: int,
    *,
    gzip: bool = False,
    seed: int = 0,
    strict: bool = False,
) -> list[str]:
    """Writes a class folder as TFRecord shards `PREFIX-00000-of-0000N`.

    Files are spread over the shards in a seeded order, so every shard
    holds a mix of classes. A folder with `train` and `val` subfolders
    gives `PREFIX-train-*` and `PREFIX-val-*`. Each image is decoded once
    to check it and to record its height and width; unreadable ones are
    skipped with a warning (or refused under `strict`).

    Args:
        folder: one subfolder per class (see `folders`).
        out_prefix: path prefix of the shards; its directory is created.
        num_shards: how many files per split.
        gzip: compress the shards.
        seed: the order of the files across shards.
        strict: raise on an unreadable image instead of skipping it.

    Returns:
        The paths written, train shards first.

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> root = tempfile.mkdtemp()
    >>> for name in ("a", "b"):
    ...     os.makedirs(os.path.join(root, name))
    ...     image = tf.io.encode_png(np.zeros((4, 6, 3), np.uint8))
    ...     tf.io.write_file(os.path.join(root, name, "0.png"), image)
    >>> paths = write_image_tfrecords(root, os.path.join(root, "out"), 2)
    >>> [os.path.basename(p) for p in paths]
    ['out-00000-of-00002', 'out-00001-of-00002']
    """
    positive_int("num_shards", num_shards, error=DataError)
    split = folders.split_folders(folder) if os.path.isdir(folder) else None
    if split is not None:
        train_dir, val_dir = split
        paths, labels, names = folders.list_class_folder(train_dir)
        parts = [(f"{out_prefix}-train", paths, labels)]
        val_paths, val_labels, _ = folders.list_class_folder(val_dir, names)
        parts.append((f"{out_prefix}-val", val_paths, val_labels))
    else:
        paths, labels, names = folders.list_class_folder(folder)
        parts = [(out_prefix, paths, labels)]
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    options = tf.io.TFRecordOptions("GZIP" if gzip else "")
    written = []
    for prefix, paths, labels in parts:
        paths, labels = folders.drop_unreadable(
            paths, labels, f"folder:{folder}", strict
        )
        order = np.random.default_rng(seed).permutation(len(paths))
        for shard in range(num_shards):
            path = f"{prefix}-{shard:05d}-of-{num_shards:05d}"
            partial = path + ".partial"
            with tf.io.TFRecordWriter(partial, options) as writer:
                for i in order[shard::num_shards]:
                    with open(paths[i], "rb") as f:
                        encoded = f.read()
                    try:
                        image = streams.decode_image(encoded, 0)
                    except tf.errors.InvalidArgumentError:
                        if strict:
                            raise DataError(
                                f"{paths[i]}: cannot be decoded"
                            ) from None
                        continue
                    label = int(labels[i])
                    example = image_example(
                        encoded,
                        label,
                        names[label],
                        int(image.shape[0]),
                        int(image.shape[1]),
                    )
                    writer.write(example.SerializeToString())
            os.replace(partial, path)
            written.append(path)
    return written


def _compression(path: str) -> str:
    with open(path, "rb") as f:
        return "GZIP" if f.read(2) == b"\x1f\x8b" else ""


def _match(pattern: str) -> list[str]:
    files = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    if not files:
        raise DataError(f"tfrecord: {pattern} matches no files")
    return files


def _parse(record):
    features = tf.io.parse_single_example(
        record,
        {
            ENCODED: tf.io.FixedLenFeature([], tf.string),
            LABEL: tf.io.FixedLenFeature([], tf.int64),
        },
    )
    return features[ENCODED], tf.cast(features[LABEL], tf.int32)


def _scan_shards(globs: dict) -> tuple[dict, dict]:
    """{split: [(path, compression, labels, shapes), ...]} of the shards
    each split's glob matches (a None glob: no entry), and {label: its
    `image/class/text` names}."""
    scans, texts = {}, {}
    for split, pattern in globs.items():
        if pattern is None:
            continue
        for path in _match(pattern):
            compression = _compression(path)
            labels, shapes, found = scan(path, compression)
            scans.setdefault(split, []).append(
                (path, compression, labels, shapes)
            )
            for label, names in found.items():
                texts.setdefault(label, set()).update(names)
    return scans, texts


def _file_table(files) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paths, compressions and first record index of `files`."""
    counts = np.asarray([len(s[2]) for s in files], np.int64)
    return (
        np.asarray([s[0] for s in files]),
        np.asarray([s[1] for s in files]),
        np.concatenate([[0], np.cumsum(counts)[:-1]]),
    )


def _seeded_split(ok, val_fraction: float, seed: int) -> dict:
    """The records each split keeps when one glob is split by `seed`:
    {"train": mask, "val": mask} over its records, `ok` the readable
    ones."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"val_fraction must be in (0, 1). Received: {val_fraction}"
        )
    # Drawn over every record, so skipping some leaves the others in
    # their split.
    total = len(ok)
    is_val = np.zeros(total, bool)
    cut = max(1, int(round(total * val_fraction))) if total else 0
    is_val[np.random.default_rng(seed).permutation(total)[:cut]] = True
    return {"train": ~is_val & ok, "val": is_val & ok}


class TFRecordSource(streams.ImageStream):
    """Image classification TFRecord shards, streamed.

    Args:
        train_glob: the training shards.
        val_glob: the validation shards, or None for a seeded split.
        val_fraction: the split's validation share.
        seed: the split's seed.
        num_classes: the number of classes, when the labels may not all
            occur. By default the classes are those `image/class/text`
            names (labels 0..K-1), else 0..the largest label, all of
            which must occur. A label outside them is a `DataError`.
        shuffle_block: records permuted together in an epoch.
        image_size, cache, strict, max_pixels, channels: see
            `streams.ImageStream`;
            records over `max_pixels` are skipped up front, named.
    """

    def __init__(
        self,
        train_glob: str,
        val_glob: str | None = None,
        *,
        val_fraction: float = 0.2,
        seed: int = 0,
        num_classes: int | None = None,
        shuffle_block: int = streams.SHUFFLE_BLOCK,
        image_size=None,
        cache: str | None = None,
        strict: bool = False,
        max_pixels: int = streams.MAX_PIXELS,
        channels: int | None = None,
    ):
        name = f"tfrecord:{train_glob}" + (f",{val_glob}" if val_glob else "")
        max_pixels = streams.check_max_pixels(max_pixels)
        self.shuffle_block = positive_int("shuffle_block", shuffle_block)
        scans, texts = _scan_shards({"train": train_glob, "val": val_glob})
        every = [s for files in scans.values() for s in files]
        num_classes = class_count(name, every, texts, num_classes)
        self._files = {}
        ok = {}
        for split, files in scans.items():
            self._files[split] = _file_table(files)
            ok[split] = np.concatenate(
                within_limits(name, files, max_pixels, strict)
            )
        if val_glob is None:
            self._files["val"] = self._files["train"]
            self._keep = _seeded_split(ok["train"], val_fraction, seed)
            ok["val"] = ok["train"]
        else:
            self._keep = {
                split: keep for split, keep in ok.items() if not keep.all()
            }
        self._sizes = {
            split: int(self._keep[split].sum())
            if split in self._keep
            else len(ok[split])
            for split in ("train", "val")
        }
        streams.check_split_sizes(
            name, self._sizes["train"], self._sizes["val"]
        )
        shapes = {
            split: np.concatenate([s[3] for s in files])
            for split, files in scans.items()
        }
        shapes.setdefault("val", shapes["train"])  # one glob, split by seed
        kept = {
            split: shapes[split][self._keep.get(split, ok[split])]
            for split in ("train", "val")
        }
        counts = streams.channel_counts(
            np.concatenate([kept["train"], kept["val"]])
        )
        class_names = (
            [next(iter(texts[i])) for i in range(num_classes)]
            if all(i in texts for i in range(num_classes))
            else None
        )
        super().__init__(
            name,
            num_classes=num_classes,
            class_names=class_names,
            example_shape=tuple(int(d) for d in kept["train"][0]),
            image_size=image_size,
            cache=cache,
            strict=strict,
            max_pixels=max_pixels,
            channels=channels,
            channel_counts=counts,
        )

    def _encoded(self, split, seed, epoch, start):
        paths, compressions, offsets = self._files[split]
        if seed is not None:
            order = np.random.default_rng([seed, epoch]).permutation(len(paths))
            paths, compressions = paths[order], compressions[order]
            offsets = offsets[order]

        def read(path, compression, offset):
            # `PATH record N` names a record the pipeline refuses.
            return (
                tf.data.TFRecordDataset(path, compression)
                .enumerate()
                .map(
                    lambda index, record: (
                        index + offset,
                        record,
                        tf.strings.join(
                            [path, " record ", tf.strings.as_string(index)]
                        ),
                    )
                )
            )

        cycle = 1 if seed is None else min(len(paths), _READ_PARALLEL)
        data = tf.data.Dataset.from_tensor_slices(
            (paths, compressions, offsets)
        )
        data = (
            data.interleave(
                read,
                cycle_length=cycle,
                num_parallel_calls=cycle,
                deterministic=True,
            )
            if cycle > 1
            else data.flat_map(read)
        )
        if split in self._keep:
            keep = tf.constant(self._keep[split])
            data = data.filter(lambda index, *_: tf.gather(keep, index))
        data = data.map(lambda _, record, name: (record, name))
        if seed is not None:
            data = streams.block_shuffle(
                data, self.shuffle_block, streams.epoch_seed(seed, epoch)
            )
        return data.skip(start).map(
            lambda record, name: (*_parse(record), name)
        )


@register_source("tfrecord")
def open_tfrecords(where: str, data_dir=None, **options) -> TFRecordSource:
    """`tfrecord:TRAIN_GLOB[,VAL_GLOB]`; relative globs are under
    `data_dir` when given."""
    parts = [p for p in where.split(",") if p]
    if not 1 <= len(parts) <= 2:
        raise DataError(
            f"tfrecord:{where}: expected tfrecord:TRAIN_GLOB[,VAL_GLOB]"
        )
    if data_dir:
        parts = [os.path.join(data_dir, p) for p in parts]
    parts = [os.path.expanduser(p) for p in parts]
    return TFRecordSource(*parts, **options)
