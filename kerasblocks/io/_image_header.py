"""An encoded image's size, read from its header inside the graph.

Decoding allocates what the header declares: a 1.5 MB PNG of zeros can
declare 40000x40000 pixels (1.6 GB as uint8, 6.4 GB as float). Serving
and the data pipelines therefore read the declared height, width and
channels first (a JPEG's marker segments up to its frame header; PNG,
GIF and BMP from fixed header offsets) and refuse
an image over the pixel limit before decoding it. Only the formats whose
header is read here are accepted: `tf.io.decode_image` also takes WebP,
whose size would go unchecked.
"""

from __future__ import annotations

import tensorflow as tf

from kerasblocks import choices

# Serving crops and resizes an image before converting it to float, so
# one image costs at most ~2x its uint8 size (see the choices' comment).
MAX_PIXELS = choices.MAX_IMAGE_PIXELS
MAX_BATCH = choices.MAX_BATCH
FORMATS = "JPEG, PNG, GIF or BMP"

_HEAD = 32  # bytes: the fixed-offset fields below all lie within them


def _bytes_at(encoded: tf.Tensor, pos, size: int) -> tf.Tensor:
    """`size` bytes from `pos` (at most the length) as int64, zero-padded."""
    head = tf.strings.substr(encoded, pos, size)
    padded = tf.strings.substr(
        tf.strings.join([head, tf.constant(b"\0" * size)]), 0, size
    )
    return tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)


def _head(encoded: tf.Tensor) -> tf.Tensor:
    return _bytes_at(encoded, 0, _HEAD)


def _big_endian(b: tf.Tensor, start: int, size: int) -> tf.Tensor:
    value = tf.constant(0, tf.int64)
    for i in range(size):
        value = value * 256 + b[start + i]
    return value


def _little_endian(b: tf.Tensor, start: int, size: int) -> tf.Tensor:
    return _big_endian(tf.reverse(b[start : start + size], [0]), 0, size)


def _signed32(value: tf.Tensor) -> tf.Tensor:
    return tf.where(value >= 2**31, value - 2**32, value)


def _png(b: tf.Tensor) -> tf.Tensor:
    # IHDR: width and height (big-endian) at 16 and 20, colour type at 25.
    colour = b[25]
    channels = tf.gather(
        tf.constant([1, 0, 3, 3, 2, 0, 4], tf.int64),
        tf.minimum(colour, 6),
    )
    return tf.stack([_big_endian(b, 20, 4), _big_endian(b, 16, 4), channels])


# Start-of-frame markers (every coding process): their segment holds the
# precision, height, width and component count.
_SOF = [m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)]
_UNKNOWN = [-1, -1, -1]


def _jpeg(encoded: tf.Tensor) -> tf.Tensor:
    """Walks the marker segments up to the first start-of-frame: what
    libjpeg reads before it allocates. Never raises: damaged markers give
    `[-1, -1, -1]` (and decoding would fail too)."""
    length = tf.cast(tf.strings.length(encoded), tf.int64)
    sof = tf.constant(_SOF, tf.int64)

    def walking(pos, shape):
        return tf.logical_and(tf.equal(shape[0], -2), pos + 4 <= length)

    def step(pos, shape):
        b = _bytes_at(encoded, tf.cast(pos, tf.int32), 10)
        marker = b[1]
        found = tf.reduce_any(tf.equal(marker, sof))
        segment = 2 + _big_endian(b, 2, 2)
        standalone = tf.logical_or(
            tf.equal(marker, 0x01),
            tf.logical_and(marker >= 0xD0, marker <= 0xD7),
        )
        next_pos = tf.where(
            tf.equal(marker, 0xFF),  # fill byte before a marker
            pos + 1,
            tf.where(standalone, pos + 2, pos + segment),
        )
        shape = tf.where(
            tf.not_equal(b[0], 0xFF),
            tf.constant(_UNKNOWN, tf.int64),
            tf.where(
                found,
                tf.stack([_big_endian(b, 5, 2), _big_endian(b, 7, 2), b[9]]),
                shape,
            ),
        )
        return next_pos, shape

    _, shape = tf.while_loop(
        walking,
        step,
        (tf.constant(2, tf.int64), tf.constant([-2, -2, -2], tf.int64)),
    )
    return tf.where(shape[0] < 0, tf.constant(_UNKNOWN, tf.int64), shape)


def _gif(b: tf.Tensor) -> tf.Tensor:
    # The logical screen, which every frame is decoded onto.
    return tf.stack(
        [
            _little_endian(b, 8, 2),
            _little_endian(b, 6, 2),
            tf.constant(3, tf.int64),
        ]
    )


def _bmp(b: tf.Tensor) -> tf.Tensor:
    # BITMAPINFOHEADER: signed width and height at 18 and 22 (a negative
    # height is a top-down image), bits per pixel at 28.
    width = tf.abs(_signed32(_little_endian(b, 18, 4)))
    height = tf.abs(_signed32(_little_endian(b, 22, 4)))
    return tf.stack([height, width, _little_endian(b, 28, 2) // 8])


def encoded_image_shape(encoded: tf.Tensor) -> tf.Tensor:
    """`[height, width, channels]` (int64) an encoded image declares.

    `[-1, -1, -1]` for bytes that are not JPEG, PNG, GIF or BMP (or a
    JPEG whose markers are damaged); never raises. The channels are the
    stored ones (2 for grayscale with alpha, 4 for RGBA).

    Example:

    >>> import numpy as np
    >>> png = tf.io.encode_png(np.zeros((5, 7, 1), np.uint8))
    >>> encoded_image_shape(png).numpy().tolist()
    [5, 7, 1]
    """
    b = _head(encoded)
    jpeg = tf.reduce_all(tf.equal(b[:3], [0xFF, 0xD8, 0xFF]))
    png = tf.reduce_all(
        tf.equal(b[:8], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    )
    gif = tf.reduce_all(tf.equal(b[:4], [0x47, 0x49, 0x46, 0x38]))
    bmp = tf.reduce_all(tf.equal(b[:2], [0x42, 0x4D]))
    unknown = tf.constant(_UNKNOWN, tf.int64)
    return tf.case(
        [
            (jpeg, lambda: _jpeg(encoded)),
            (png, lambda: _png(b)),
            (gif, lambda: _gif(b)),
            (bmp, lambda: _bmp(b)),
        ],
        default=lambda: unknown,
    )


def check_pixels(
    encoded: tf.Tensor, max_pixels: int, what: str = "image"
) -> tf.Tensor:
    """The declared shape of `encoded`, after checking it in the graph:
    an image over `max_pixels`, or not JPEG/PNG/GIF/BMP, raises
    `InvalidArgumentError` naming the limit (the decoding that follows
    depends on this check, so it never runs for a refused image).

    Example:

    >>> import numpy as np
    >>> png = tf.io.encode_png(np.zeros((50, 40, 3), np.uint8))
    >>> check_pixels(png, 2000).numpy().tolist()
    [50, 40, 3]
    >>> try:
    ...     check_pixels(png, 1999)
    ... except tf.errors.InvalidArgumentError as error:
    ...     print("of 50x40 (2000 pixels) is over the limit" in error.message)
    True
    """
    shape = encoded_image_shape(encoded)
    known = shape[0] >= 0
    pixels = shape[0] * shape[1]
    checks = [
        tf.debugging.Assert(
            known,
            [f"{what} is not a {FORMATS} image (or its header is damaged)"],
            summarize=1,
        ),
        tf.debugging.Assert(
            tf.logical_or(tf.logical_not(known), pixels <= max_pixels),
            [
                tf.strings.format(
                    f"an {what} of {{}}x{{}} ({{}} pixels) is over the "
                    f"limit max_pixels={max_pixels}",
                    [shape[0], shape[1], pixels],
                )
            ],
            summarize=1,
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(shape)


def decode_within(
    encoded: tf.Tensor, channels: int, max_pixels: int, what: str = "image"
) -> tf.Tensor:
    """`tf.io.decode_image` (first frame of a GIF) of an image that
    `check_pixels` passed; uint8 `[height, width, channels]`."""
    shape = check_pixels(encoded, max_pixels, what)
    with tf.control_dependencies([shape]):
        image = tf.io.decode_image(
            encoded, channels=channels, expand_animations=False
        )
    if channels:
        image.set_shape([None, None, channels])
    return image
