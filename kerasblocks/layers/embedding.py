"""Position information and token bookkeeping for Transformers.

`PositionalEncoding` is the book's sinusoidal encoding;
`LearnedPositionEmbedding`, `ClassToken`, `PatchEmbedding`, `PatchGrid`
and `SelectToken` are the pieces of the book's Vision Transformer (and
of BERT-style encoders): learned positions, a prepended class token,
images cut into patch tokens, tokens put back on the patch grid, and the
class token's output.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import non_negative_int, positive_int, rate
from kerasblocks.layers._checks import require, with_checks


def _checked_start(inputs, start_index, limit, what):
    """`start_index` as an int32 tensor, after checking `start_index +
    length <= limit`."""
    start = tf.cast(start_index, tf.int32)
    if limit is None:
        return start
    length = inputs.shape[1]
    if length is None:
        length = tf.shape(inputs)[1]
    if isinstance(start_index, int) and isinstance(length, int):
        end = start_index + length
    else:
        end = start + tf.cast(length, tf.int32)
    checks = require(
        end <= limit,
        f"sequence too long: at most {limit} positions ({what})",
    )
    return with_checks(start, checks)


@register()
class PositionalEncoding(CapturedConfig, keras.layers.Layer):
    """Adds the sinusoidal position encoding, then dropout (the book's
    `PositionalEncoding`).

    Position `p`, feature `2i` gets `sin(p / 10000^(2i/d))` and feature
    `2i + 1` gets `cos(p / 10000^(2i/d))`. The encoding is computed, not
    stored: it adds no parameters.

    Args:
        max_length: the longest sequence allowed (the book's `max_len`);
            None allows any.
        dropout_rate: dropout after the addition.

    Call arguments:
        inputs: `(batch, length, d)`.
        start_index: position of the first input (incremental decoding).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> encoding = kerasblocks.layers.PositionalEncoding()
    >>> p = encoding(tf.zeros((1, 3, 4))).numpy()[0]
    >>> [round(float(v), 3) for v in p[1]]
    [0.841, 0.54, 0.01, 1.0]
    """

    def __init__(
        self,
        *,
        max_length: int | None = None,
        dropout_rate: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if max_length is not None:
            positive_int("max_length", max_length)
        self.max_length = max_length
        self.dropout_rate = rate("dropout_rate", dropout_rate)
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def call(self, inputs, start_index=0, training=None):
        depth = inputs.shape[-1]
        if depth is None or inputs.shape.rank != 3:
            raise ValueError(
                "PositionalEncoding takes (batch, length, features) inputs "
                f"with known features. Received: shape={inputs.shape}"
            )
        start = _checked_start(
            inputs, start_index, self.max_length, "PositionalEncoding"
        )
        length = tf.shape(inputs)[1]
        positions = tf.cast(start + tf.range(length), tf.float32)
        frequencies = tf.pow(
            10000.0, tf.range(0, depth, 2, dtype=tf.float32) / depth
        )
        angles = positions[:, None] / frequencies[None, :]
        encoding = tf.reshape(
            tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [length, -1]
        )[:, :depth]
        outputs = inputs + tf.cast(encoding, inputs.dtype)[None]
        return self.dropout(outputs, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register()
class LearnedPositionEmbedding(CapturedConfig, keras.layers.Layer):
    """Adds a learned embedding of each position (ViT, BERT).

    The variable `embeddings` has shape `(sequence_length, d)`; a shorter
    input gets the first rows (from `start_index`).

    Args:
        sequence_length: positions the table holds.
        initializer: of the table (ViT's truncated normal, std 0.02).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> layer = kerasblocks.layers.LearnedPositionEmbedding(5)
    >>> layer(tf.zeros((2, 3, 4))).shape, tuple(layer.embeddings.shape)
    (TensorShape([2, 3, 4]), (5, 4))
    """

    def __init__(
        self,
        sequence_length: int,
        *,
        initializer="truncated_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sequence_length = positive_int("sequence_length", sequence_length)
        if initializer == "truncated_normal":
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "LearnedPositionEmbedding takes (batch, length, features) "
                f"inputs with known features. Received: {input_shape=}"
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, input_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs, start_index=0):
        start = _checked_start(
            inputs,
            start_index,
            self.sequence_length,
            "LearnedPositionEmbedding",
        )
        table = tf.slice(
            self.embeddings, tf.stack([start, 0]), [tf.shape(inputs)[1], -1]
        )
        return inputs + tf.cast(table, inputs.dtype)[None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register()
class ClassToken(CapturedConfig, keras.layers.Layer):
    """Prepends a learned token to every sequence (ViT's `cls_token`,
    initialized to zeros as in the book): `(batch, length, d)` to
    `(batch, length + 1, d)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> kerasblocks.layers.ClassToken()(tf.ones((2, 3, 4))).shape
    TensorShape([2, 4, 4])
    """

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "ClassToken takes (batch, length, features) inputs with "
                f"known features. Received: {input_shape=}"
            )
        self.token = self.add_weight(
            name="token", shape=(input_shape[-1],), initializer="zeros"
        )

    def call(self, inputs):
        token = tf.cast(self.token, inputs.dtype)[None, None, :]
        token = tf.tile(token, tf.stack([tf.shape(inputs)[0], 1, 1]))
        return tf.concat([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        batch, length, depth = input_shape
        return (batch, None if length is None else length + 1, depth)


@register()
class SelectToken(CapturedConfig, keras.layers.Layer):
    """The output at one position: `(batch, length, d)` to `(batch, d)`
    (position 0 is a class token's).

    Args:
        index: the position.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> x = tf.reshape(tf.range(6.0), (1, 3, 2))
    >>> kerasblocks.layers.SelectToken(1)(x).numpy().tolist()
    [[2.0, 3.0]]
    """

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(
                f"index must be a non-negative int. Received: {index=}"
            )
        self.index = index

    def call(self, inputs):
        return inputs[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@register()
class PatchEmbedding(CapturedConfig, keras.layers.Layer):
    """Cuts images into non-overlapping square patches and projects each
    to `hidden_dim` features (the book's ViT `PatchEmbedding`): a
    convolution `conv` with kernel and stride `patch_size`, flattened to
    `(batch, patches, hidden_dim)` in row-major patch order.

    Args:
        patch_size: side of a patch.
        hidden_dim: features per patch.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> embed = kerasblocks.layers.PatchEmbedding(16, 8)
    >>> embed(tf.ones((2, 32, 48, 3))).shape
    TensorShape([2, 6, 8])
    """

    def __init__(self, patch_size: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = positive_int("patch_size", patch_size)
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        self.conv = keras.layers.Conv2D(
            hidden_dim, patch_size, strides=patch_size, name="conv"
        )

    def build(self, input_shape):
        self.conv.build(tuple(input_shape))

    def call(self, inputs):
        x = self.conv(inputs)
        return tf.reshape(x, tf.stack([tf.shape(x)[0], -1, self.hidden_dim]))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        patches = None
        if height is not None and width is not None:
            patches = (height // self.patch_size) * (width // self.patch_size)
        return (batch, patches, self.hidden_dim)


@register()
class PatchGrid(CapturedConfig, keras.layers.Layer):
    """Puts patch tokens back on their grid: drops `num_prefix_tokens`
    leading tokens (a class token) and reshapes `(batch, prefix + height
    * width, d)` to `(batch, height, width, d)`.

    Args:
        height, width: the patch grid.
        num_prefix_tokens: leading tokens that are not patches.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> kerasblocks.layers.PatchGrid(2, 3)(tf.ones((1, 7, 4))).shape
    TensorShape([1, 2, 3, 4])
    """

    def __init__(
        self, height: int, width: int, *, num_prefix_tokens: int = 1, **kwargs
    ):
        super().__init__(**kwargs)
        self.height = positive_int("height", height)
        self.width = positive_int("width", width)
        self.num_prefix_tokens = non_negative_int(
            "num_prefix_tokens", num_prefix_tokens
        )

    def call(self, inputs):
        expected = self.num_prefix_tokens + self.height * self.width
        if inputs.shape[1] is not None and inputs.shape[1] != expected:
            raise ValueError(
                f"PatchGrid({self.height}, {self.width}) takes {expected} "
                f"tokens. Received: shape={tuple(inputs.shape)}"
            )
        patches = inputs[:, self.num_prefix_tokens :]
        return tf.reshape(
            patches,
            tf.stack(
                [tf.shape(inputs)[0], self.height, self.width, inputs.shape[-1]]
            ),
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])
