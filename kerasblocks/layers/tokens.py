"""Token-id layers: validation, padding masks and one-hot encoding.

`CheckTokenIds` guards a model's integer inputs: an id outside `[0,
vocab_size)` or a sequence longer than `max_length` is a ValueError
eagerly and an assertion naming the problem inside a graph, never a NaN
or a gather error from deep inside the graph. (XLA compiles assertions
away: under `jit_compile=True` an out-of-range id is clamped by XLA's
gather; validate before compiling with XLA.)
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import non_negative_int, positive_int
from kerasblocks.layers._checks import require, with_checks


def _check_ids(inputs, what: str):
    if not inputs.dtype.is_integer:
        raise ValueError(
            f"{what} takes integer token ids. Received: dtype={inputs.dtype}"
        )
    if inputs.shape.rank != 2:
        raise ValueError(
            f"{what} takes (batch, length) token ids. Received: "
            f"shape={tuple(inputs.shape.as_list())}"
        )


@register()
class CheckTokenIds(CapturedConfig, keras.layers.Layer):
    """Passes token ids through after checking them.

    Checks: integer dtype and rank 2 `(batch, length)`; at least one
    position; every id in `[0, vocab_size)`; `length <= max_length`.

    Args:
        vocab_size: number of token ids.
        max_length: the longest sequence allowed (None: any).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> check = kerasblocks.layers.CheckTokenIds(10, max_length=4)
    >>> check(tf.constant([[1, 9]])).numpy().tolist()
    [[1, 9]]
    >>> check(tf.constant([[1, 10]]))
    Traceback (most recent call last):
    ...
    ValueError: ...token ids must be in [0, 10) ... Received ids from 1 to 10...
    """

    def __init__(
        self, vocab_size: int, *, max_length: int | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.vocab_size = positive_int("vocab_size", vocab_size)
        if max_length is not None:
            positive_int("max_length", max_length)
        self.max_length = max_length

    def call(self, inputs):
        _check_ids(inputs, "CheckTokenIds")
        length = inputs.shape[1]
        if length is None:
            length = tf.shape(inputs)[1]
        checks = require(
            length >= 1,
            "token id sequences must have at least one position",
        )
        if self.max_length is not None:
            checks += require(
                length <= self.max_length,
                f"sequence too long: at most max_length={self.max_length} "
                "tokens",
                data=[length] if tf.is_tensor(length) else (),
            )
        message = (
            f"token ids must be in [0, {self.vocab_size}) "
            f"(vocab_size={self.vocab_size})"
        )
        if tf.executing_eagerly():
            if tf.size(inputs) > 0:
                low = int(tf.reduce_min(inputs))
                high = int(tf.reduce_max(inputs))
                if low < 0 or high >= self.vocab_size:
                    raise ValueError(
                        f"{message}. Received ids from {low} to {high}."
                    )
        else:
            in_range = tf.logical_and(
                tf.reduce_all(inputs >= 0),
                tf.reduce_all(inputs < self.vocab_size),
            )
            checks += require(
                in_range,
                message,
                data=[
                    "smallest",
                    tf.reduce_min(inputs),
                    "largest",
                    tf.reduce_max(inputs),
                ],
            )
        return with_checks(inputs, checks)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)


@register()
class PaddingMask(CapturedConfig, keras.layers.Layer):
    """`ids != pad_id`: True at real tokens, `(batch, length)` booleans.

    Args:
        pad_id: the padding token.
        num_prefix_tokens: True columns put in front (for tokens such as
            a class token that a model prepends to the sequence).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> mask = kerasblocks.layers.PaddingMask(0, num_prefix_tokens=1)
    >>> mask(tf.constant([[5, 0]])).numpy().tolist()
    [[True, True, False]]
    """

    def __init__(
        self, pad_id: int = 0, *, num_prefix_tokens: int = 0, **kwargs
    ):
        super().__init__(**kwargs)
        if isinstance(pad_id, bool) or not isinstance(pad_id, int):
            raise ValueError(f"pad_id must be an int. Received: {pad_id=}")
        self.pad_id = pad_id
        self.num_prefix_tokens = non_negative_int(
            "num_prefix_tokens", num_prefix_tokens
        )

    def call(self, inputs):
        _check_ids(inputs, "PaddingMask")
        mask = tf.not_equal(inputs, tf.cast(self.pad_id, inputs.dtype))
        if self.num_prefix_tokens:
            prefix = tf.ones(
                tf.stack([tf.shape(inputs)[0], self.num_prefix_tokens]), tf.bool
            )
            mask = tf.concat([prefix, mask], axis=1)
        return mask

    def compute_output_spec(self, inputs):
        batch, length = inputs.shape
        if length is not None:
            length += self.num_prefix_tokens
        return keras.KerasTensor((batch, length), dtype="bool")


@register()
class OneHot(CapturedConfig, keras.layers.Layer):
    """One-hot vectors of token ids (the book's character-level RNN
    inputs): `(batch, length)` ids to `(batch, length, num_classes)`.

    Args:
        num_classes: the vocabulary size.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> kerasblocks.layers.OneHot(3)(tf.constant([[2, 0]])).numpy().tolist()
    [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]
    """

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = positive_int("num_classes", num_classes)

    def call(self, inputs):
        _check_ids(inputs, "OneHot")
        return tf.one_hot(inputs, self.num_classes, dtype=self.compute_dtype)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(
            (*inputs.shape, self.num_classes), dtype=self.compute_dtype
        )
