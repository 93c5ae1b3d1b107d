"""What a `tfrecord:` source learns by scanning its shards once, when it
opens: each record's label, class text and the size its image declares
in its header (no image is decoded). The labels are checked against the
classes, and the images against the pixel limit, before training starts.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from kerasblocks.data import streams
from kerasblocks.data.dataset import DataError
from kerasblocks.io import _image_header

ENCODED = "image/encoded"
LABEL = "image/class/label"
TEXT = "image/class/text"


_SCAN_SPEC = {
    ENCODED: tf.io.FixedLenFeature([], tf.string),
    LABEL: tf.io.FixedLenFeature([], tf.int64),
    TEXT: tf.io.FixedLenFeature([], tf.string, default_value=""),
}


def _scan_batch(records):
    parsed = tf.io.parse_example(records, _SCAN_SPEC)
    shapes = tf.map_fn(
        _image_header.encoded_image_shape,
        parsed[ENCODED],
        fn_output_signature=tf.TensorSpec([3], tf.int64),
    )
    return parsed[LABEL], parsed[TEXT], shapes


def scan(path: str, compression: str):
    """Labels, class texts (`{label: {text, ...}}`) and the images'
    declared shapes (`[n, 3]`, from their headers; no image is decoded)
    of one shard; a clear error if malformed."""
    labels, shapes, texts = [], [], {}
    data = (
        tf.data.TFRecordDataset(path, compression)
        .batch(256)
        .map(_scan_batch, num_parallel_calls=streams.PARALLEL_CALLS)
    )
    try:
        for batch, names, declared in data.as_numpy_iterator():
            labels.append(batch)
            shapes.append(declared)
            for label, text in zip(batch, names, strict=True):
                if text:
                    texts.setdefault(int(label), set()).add(text.decode())
    except tf.errors.InvalidArgumentError:
        raise DataError(
            f"{path}: a record lacks {ENCODED} or {LABEL} (or is not a "
            "tf.train.Example)"
        ) from None
    except tf.errors.DataLossError:
        raise DataError(f"{path}: corrupt or truncated TFRecord file") from None
    if not labels:
        return np.zeros([0], np.int64), np.zeros([0, 3], np.int64), texts
    return np.concatenate(labels), np.concatenate(shapes), texts


def class_count(name, scans, texts, num_classes) -> int:
    """The number of classes, every label checked against it: the given
    `num_classes`, else the labels `image/class/text` names (0..K-1),
    else 0..the largest label, which must all occur."""
    for label, names in sorted(texts.items()):
        if len(names) > 1:
            raise DataError(
                f"{name}: label {label} has several names in {TEXT}: "
                f"{', '.join(sorted(names))}"
            )
    named = 0
    while named in texts:
        named += 1
    every = [(path, labels) for path, _, labels, _ in scans if len(labels)]
    if not every:  # no records: the split-size check says so
        return num_classes or 0
    if num_classes is not None:
        allowed, why = num_classes, f"num_classes={num_classes}"
    elif named:
        shown = ", ".join(next(iter(texts[i])) for i in range(named))
        allowed = named
        why = f"the {named} classes {TEXT} names: {shown}"
    else:
        present = set(np.unique(np.concatenate([lab for _, lab in every])))
        allowed = 0
        while allowed in present:
            allowed += 1
        if allowed == len(present):
            return allowed
        why = (
            f"label {allowed} does not occur, and no {TEXT} names the "
            "classes; give num_classes if some classes have no examples"
        )
    for path, labels in every:
        bad = labels[(labels < 0) | (labels >= allowed)]
        if len(bad):
            classes = f"0..{allowed - 1}" if allowed else "(none)"
            raise DataError(
                f"{path}: label {bad[0]} is outside the classes {classes} "
                f"({why})"
            )
    return allowed


def within_limits(name, scans, max_pixels, strict) -> list[np.ndarray]:
    """Per shard, which records to keep: those whose image is JPEG, PNG,
    GIF or BMP and declares at most `max_pixels`; the rest are named in
    one warning (or a `DataError` under `strict`)."""
    bad, keep = [], []
    for path, _, _, shapes in scans:
        ok = np.ones(len(shapes), bool)
        for index, (height, width, _) in enumerate(shapes):
            why = (
                "not a JPEG, PNG, BMP or GIF image"
                if height < 0
                else streams.over_limit(int(height), int(width), max_pixels)
            )
            if why:
                ok[index] = False
                bad.append(f"{path} record {index} ({why})")
        keep.append(ok)
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        shown = "; ".join(bad[:5]) + more
        if strict:
            raise DataError(f"{name}: {len(bad)} unreadable image(s): {shown}")
        warnings.warn(
            f"{name}: skipping {len(bad)} unreadable image(s): {shown}",
            stacklevel=3,
        )
    return keep
