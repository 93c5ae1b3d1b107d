"""An image refused in a data pipeline, said in one line.

The sources read image headers up front where they can; what is left is
checked where the pipeline decodes (`checked_decode`): a `tfds:` image,
or a file replaced after the check. tf.data reports such a refusal as
an `InvalidArgumentError` from deep inside a training step; `data_error`
turns it back into the `DataError` it is, naming the image.
"""

from __future__ import annotations

import re
import sys

import tensorflow as tf

from kerasblocks.data.dataset import DataError
from kerasblocks.io import _image_header

# The pipeline's own refusals of an image carry this mark, so that an
# error raised mid-run (tf.data gives it as an InvalidArgumentError from
# deep inside the step) can be told from a bug: see `data_error`.
_REFUSED = "kerasblocks refused an image: "
_REFUSED_LINE = re.compile(re.escape(_REFUSED) + r"(.*?)\]*$", re.MULTILINE)


def checked_decode(
    encoded: tf.Tensor,
    *,
    channels: int,
    max_pixels: int,
    name,
    source: str,
    strict: bool,
) -> tf.Tensor:
    """`decode_image` of an image whose header passed the checks.

    An image over `max_pixels`, or not JPEG/PNG/GIF/BMP, is never
    decoded: the op fails with a message naming the source and `name`
    (a path, a record), which `data_error` turns into a `DataError`.
    Unless `strict`, a line on stderr names it first (the pipeline then
    drops the image with `ignore_errors`, which says nothing).
    """
    shape = _image_header.encoded_image_shape(encoded)
    known = shape[0] >= 0
    refused = tf.logical_or(
        tf.logical_not(known), shape[0] * shape[1] > max_pixels
    )
    size = [tf.strings.as_string(d) for d in (shape[0], shape[1])]
    pixels = tf.strings.as_string(shape[0] * shape[1])
    why = tf.strings.join(
        [name, " (", size[0], "x", size[1], " = ", pixels, " pixels, over "]
        + [f"the limit max_image_pixels={max_pixels})"]
    )
    why = tf.where(
        known,
        why,
        tf.strings.join([name, " (not a JPEG, PNG, BMP or GIF image)"]),
    )

    def warn():
        # One string tensor: tf.print quotes the strings of a list.
        line = tf.strings.join([f"warning: {source}: skipping ", why])
        with tf.control_dependencies(
            [tf.print(line, output_stream=sys.stderr)]
        ):
            return tf.constant(True)

    warned = (
        tf.constant(True)
        if strict
        else tf.cond(refused, warn, lambda: tf.constant(True))
    )
    with tf.control_dependencies([warned]):
        checked = tf.debugging.Assert(
            tf.logical_not(refused),
            [tf.strings.join([f"{_REFUSED}{source}: ", why])],
        )
    with tf.control_dependencies([checked]):
        image = tf.io.decode_image(
            encoded, channels=channels, expand_animations=False
        )
    if channels:
        image.set_shape([None, None, channels])
    return image


def data_error(error: BaseException) -> DataError | None:
    """The `DataError` a pipeline's refusal of an image (see
    `checked_decode`) means, when `error` is one, raised from deep inside
    a run; else None.

    Example:

    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros((50, 40, 3), tf.uint8))
    >>> try:
    ...     checked_decode(png, channels=3, max_pixels=100, name="a.png",
    ...                    source="folder:x", strict=True)
    ... except tf.errors.InvalidArgumentError as error:
    ...     print(str(data_error(error))[:45])
    folder:x: a.png (50x40 = 2000 pixels, over th
    """
    if not isinstance(error, tf.errors.OpError):
        return None
    match = _REFUSED_LINE.search(error.message or "")
    if match is None:
        return None
    return DataError(
        f"{match.group(1)}; drop --strict_data to skip such images"
    )
