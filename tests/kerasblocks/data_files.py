"""Small image files whose class is visible in the pixels (a solid
colour per class), shared by the data-source tests, and one epoch of a
source's pipeline as arrays."""

import os

import numpy as np
import tensorflow as tf

from kerasblocks.data import dataset as data_lib

COLOURS = ((230, 20, 20), (20, 230, 20), (20, 20, 230))


def class_of(images) -> np.ndarray:
    """The class a batch of decoded images shows: its brightest channel."""
    return np.argmax(np.asarray(images).mean(axis=(1, 2)), axis=-1)


def write_image(path, label: int, size=(32, 32), fmt="png", gray=False):
    colour = np.asarray(COLOURS[label], np.uint8)
    image = np.broadcast_to(colour, (*size, 3)).copy()
    if gray:
        # Grayscale classes are told apart by brightness instead.
        image = np.full((*size, 1), 60 + 80 * label, np.uint8)
    encoded = (
        tf.io.encode_jpeg(image, quality=95)
        if fmt == "jpg"
        else tf.io.encode_png(image)
    )
    tf.io.write_file(str(path), encoded)


def write_folder(root, per_class=(6, 5, 4), formats=("png", "jpg"), **kw):
    """`root/class_K/NNN.ext`, alternating formats and two sizes."""
    for label, count in enumerate(per_class):
        folder = os.path.join(str(root), f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            fmt = formats[i % len(formats)]
            size = (32, 32) if i % 2 else (24, 40)
            write_image(
                os.path.join(folder, f"{i:03d}.{fmt}"),
                label,
                size=size,
                fmt=fmt,
                **kw,
            )
    return root


def _epoch(dataset, batch_size=4, seed=3, epoch=0, start_batch=0, **kw):
    pipeline = data_lib.make_pipeline(
        dataset,
        "train",
        batch_size,
        image_shape=(16, 16, 3),
        shuffle_seed=seed,
        epoch=epoch,
        drop_remainder=True,
        start_batch=start_batch,
        **kw,
    )
    return [(x.numpy(), y.numpy()) for x, y in pipeline]
