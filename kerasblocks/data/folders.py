"""`folder:DIR`: a directory with one subfolder of images per class.

Class names are the subfolder names, sorted; labels are their positions.
`DIR/train` and `DIR/val` are the splits when both exist, else a seeded
split of `DIR`. JPEG, PNG, BMP and GIF files are read (other files are
ignored). Every image is decoded once up front (`verify="decode"`, in
parallel; for ResNet-18 at 96x96 on 2 cores about 7% of one epoch, which
`kb-benchmark --dataset` reports as `open/epoch`), so a missing, foreign,
truncated or damaged image is skipped with a warning that counts them and
names the first few (or is an error under `strict=True`) before training
starts, never halfway through an epoch, and every epoch has the same
examples. `verify="header"` checks only each file's signature, end
marker and declared size: faster to open, but a well-framed file with a
damaged body then fails in the pipeline, where it is dropped with its
own label and the epoch has one example fewer (when that costs a batch,
the training loop says so and carries on). Either way, an image whose
header declares more than `max_pixels` pixels is skipped (named) without
being decoded. For data sets too large to verify at every start, write
verified TFRecord shards once with `kb-prepare`.
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from kerasblocks.data import streams
from kerasblocks.data.dataset import DataError, register_source
from kerasblocks.io import _image_header

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_SHOWN = 5


def image_problem(path: str) -> str | None:
    """Why the file at `path` is not a whole JPEG/PNG/BMP/GIF, or None.

    Reads the first and last few bytes only: the format's signature and
    its end marker, which a truncated file lacks.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(32)
            f.seek(max(0, size - 64))
            tail = f.read(64)
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if head.startswith(b"\xff\xd8\xff"):
        # Some writers pad after the end-of-image marker.
        return None if b"\xff\xd9" in tail else "truncated JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None if b"IEND" in tail else "truncated PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return None if b";" in tail[-16:] else "truncated GIF"
    if head[:2] == b"BM" and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        return None if declared <= size else "truncated BMP"
    return "not a JPEG, PNG, BMP or GIF image"


def list_class_folder(directory: str, class_names=None):
    """`(paths, labels, class_names)` of a one-subfolder-per-class tree.

    Raises:
        DataError: the directory is missing, has no class folders, a class
            folder has no images, or (with `class_names`) holds a class
            that is not among them.
    """
    if not os.path.isdir(directory):
        raise DataError(f"folder {directory}: no such directory")
    found = sorted(
        entry.name
        for entry in _scandir(directory)
        if not entry.name.startswith(".") and _is_class_folder(entry)
    )
    if not found:
        raise DataError(
            f"folder {directory}: no class subfolders (expected "
            "DIR/CLASS_NAME/IMAGE.jpg)"
        )
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise DataError(
            f"folder {directory}: classes {unknown} are not in the "
            f"training classes {class_names}"
        )
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(directory, name)
        files = (
            sorted(
                entry.name
                for entry in _scandir(folder)
                if entry.name.lower().endswith(EXTENSIONS)
            )
            if os.path.isdir(folder)
            else []
        )
        if not files:
            raise DataError(
                f"folder {folder}: no images (expected "
                f"{', '.join(EXTENSIONS)} files)"
            )
        paths += [os.path.join(folder, f) for f in files]
        labels += [label] * len(files)
    return paths, np.asarray(labels, np.int32), list(class_names)


def _scandir(directory: str) -> list:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError as error:
        raise DataError(
            f"folder {directory}: cannot be listed ({error.strerror})"
        ) from None


def _is_class_folder(entry) -> bool:
    """Whether a directory entry is a class folder; a symlink that loops
    (to itself, or to a folder that holds it) is a `DataError`."""
    try:
        if not entry.is_dir():
            return False
    except OSError as error:  # ELOOP: a symlink to itself
        raise DataError(
            f"folder {entry.path}: {error.strerror} (a symlink loop?)"
        ) from None
    if entry.is_symlink():
        target = os.path.realpath(entry.path)
        parent = os.path.realpath(os.path.dirname(entry.path))
        if parent == target or parent.startswith(target + os.sep):
            raise DataError(
                f"folder {entry.path}: a symlink to {target}, which holds "
                "it (a symlink loop); a class folder must hold images"
            )
    return True


def split_folders(directory: str) -> tuple[str, str] | None:
    """`(DIR/train, DIR/val)` when the folder is split, None when it holds
    the class folders itself; only one of the two is a `DataError`."""
    train_dir = os.path.join(directory, "train")
    val_dir = os.path.join(directory, "val")
    has_train, has_val = os.path.isdir(train_dir), os.path.isdir(val_dir)
    if has_train and has_val:
        return train_dir, val_dir
    lone = train_dir if has_train else val_dir if has_val else None
    if lone is not None and any(
        _is_class_folder(entry) for entry in _scandir(lone)
    ):
        have, missing = ("train", "val") if has_train else ("val", "train")
        raise DataError(
            f"folder {directory}: has {have}/ but no {missing}/; a split "
            f"folder needs both ({directory}/train/CLASS and "
            f"{directory}/val/CLASS), else put the class folders in "
            f"{directory} itself"
        )
    return None


# Verifying more images than this shows a progress bar.
_PROGRESS_FROM = 5000


def _declared(paths, decode: bool, max_pixels: int) -> dict:
    """`{index: (height, width, channels)}` of the files whose header is
    readable (one parallel pass): the size each declares, from its
    header. With `decode`, the files within `max_pixels` are decoded too,
    and those that fail are left out; those over it are never decoded.
    """

    def declare(index, path):
        encoded = tf.io.read_file(path)
        shape = _image_header.encoded_image_shape(encoded)
        within = tf.logical_and(
            shape[0] >= 0, shape[0] * shape[1] <= max_pixels
        )

        def decoded():
            image = streams.decode_image(encoded, 0)
            return tf.cast(tf.shape(image), tf.int64)

        if decode:
            shape = tf.cond(within, decoded, lambda: shape)
        return index, shape

    data = (
        tf.data.Dataset.from_tensor_slices(np.asarray(paths))
        .enumerate()
        .map(declare, num_parallel_calls=streams.PARALLEL_CALLS)
        .ignore_errors()
    )
    progress = (
        keras.utils.Progbar(len(paths), unit_name="image")
        if len(paths) >= _PROGRESS_FROM
        else None
    )
    shapes = {}
    for index, shape in data.as_numpy_iterator():
        shapes[int(index)] = tuple(int(d) for d in shape)
        if progress is not None and index % 1000 == 999:
            progress.update(int(index) + 1)
    if progress is not None:
        progress.update(len(paths), finalize=True)
    return shapes


def drop_unreadable(
    paths,
    labels,
    name: str,
    strict: bool,
    decode: bool = False,
    max_pixels: int = streams.MAX_PIXELS,
    shapes: list | None = None,
):
    """Keeps the files that pass `image_problem`, declare at most
    `max_pixels` pixels in their header and (with `decode`) decode; warns
    about the rest (their count and the first few), or raises under
    `strict`. The declared `(height, width, channels)` of the kept files
    are appended to `shapes` when given."""
    problems = [image_problem(p) for p in paths]
    declared = _declared(paths, decode, max_pixels) if paths else {}
    for index, why in enumerate(problems):
        if why is None:
            shape = declared.get(index)
            if shape is None:
                problems[index] = "corrupt"
            elif shape[0] < 0:
                problems[index] = "not a JPEG, PNG, BMP or GIF image"
            else:
                problems[index] = streams.over_limit(*shape[:2], max_pixels)
    bad = [(p, why) for p, why in zip(paths, problems, strict=True) if why]
    if shapes is not None:
        shapes += [declared[i] for i, why in enumerate(problems) if not why]
    if not bad:
        return paths, labels
    shown = "; ".join(f"{p} ({why})" for p, why in bad[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    if strict:
        raise DataError(
            f"{name}: {len(bad)} unreadable image(s): {shown}{more}"
        )
    warnings.warn(
        f"{name}: skipping {len(bad)} unreadable image(s): {shown}{more}",
        stacklevel=3,
    )
    keep = np.asarray([why is None for why in problems])
    return [p for p, k in zip(paths, keep, strict=True) if k], labels[keep]


class FolderDataset(streams.ImageStream):
    """Images in class subfolders, streamed from disk.

    The order of a shuffled epoch is a permutation of the file list drawn
    from (seed, epoch); `start` slices that list, so a resumed epoch reads
    none of the files before it.

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> root = tempfile.mkdtemp()
    >>> for label, name in enumerate(["cat", "dog"]):
    ...     os.makedirs(os.path.join(root, name))
    ...     for i in range(3):
    ...         image = np.full((8, 8, 3), 200 * label, np.uint8)
    ...         path = os.path.join(root, name, f"{i}.png")
    ...         tf.io.write_file(path, tf.io.encode_png(image))
    >>> data = FolderDataset(root, val_fraction=0.34)
    >>> data.class_names, data.num_train, data.num_val, data.example_shape
    (['cat', 'dog'], 4, 2, (8, 8, 3))
    """

    reads_files = True

    def __init__(
        self,
        directory: str,
        *,
        val_fraction: float = 0.2,
        seed: int = 0,
        image_size=None,
        cache: str | None = None,
        strict: bool = False,
        verify: str = "decode",
        max_pixels: int = streams.MAX_PIXELS,
        channels: int | None = None,
    ):
        if verify not in ("header", "decode"):
            raise ValueError(
                f"verify must be 'header' or 'decode'. Received: {verify!r}"
            )
        name = f"folder:{directory}"
        split = split_folders(directory) if os.path.isdir(directory) else None
        if split is not None:
            train_dir, val_dir = split
            paths, labels, class_names = list_class_folder(train_dir)
            val_paths, val_labels, _ = list_class_folder(val_dir, class_names)
        else:
            paths, labels, class_names = list_class_folder(directory)
            if not 0.0 < val_fraction < 1.0:
                raise ValueError(
                    f"val_fraction must be in (0, 1). Received: {val_fraction}"
                )
            order = np.random.default_rng(seed).permutation(len(paths))
            cut = len(paths) - max(1, int(round(len(paths) * val_fraction)))
            val_paths = [paths[i] for i in sorted(order[cut:])]
            val_labels = labels[np.sort(order[cut:])]
            paths = [paths[i] for i in sorted(order[:cut])]
            labels = labels[np.sort(order[:cut])]
        decode = verify == "decode"
        max_pixels = streams.check_max_pixels(max_pixels)
        shapes = []
        paths, labels = drop_unreadable(
            paths, labels, name, strict, decode, max_pixels, shapes
        )
        val_paths, val_labels = drop_unreadable(
            val_paths, val_labels, name, strict, decode, max_pixels, shapes
        )
        streams.check_split_sizes(name, len(labels), len(val_labels))
        self._splits = {
            "train": (np.asarray(paths), labels),
            "val": (np.asarray(val_paths), val_labels),
        }
        self._sizes = {
            split: len(labels) for split, (_, labels) in self._splits.items()
        }
        counts = streams.channel_counts(shapes)
        super().__init__(
            name,
            num_classes=len(class_names),
            class_names=class_names,
            example_shape=shapes[0],
            image_size=image_size,
            cache=cache,
            strict=strict,
            max_pixels=max_pixels,
            channels=channels,
            channel_counts=counts,
        )

    def _encoded(self, split, seed, epoch, start):
        paths, labels = self._splits[split]
        if seed is not None:
            order = np.random.default_rng([seed, epoch]).permutation(
                len(labels)
            )
            paths, labels = paths[order], labels[order]
        return tf.data.Dataset.from_tensor_slices(
            (paths[start:], labels[start:])
        )


@register_source("folder")
def open_folder(where: str, data_dir=None, **options) -> FolderDataset:
    """`folder:DIR`; a relative DIR is under `data_dir` when given."""
    directory = os.path.join(data_dir, where) if data_dir else where
    return FolderDataset(os.path.expanduser(directory), **options)
