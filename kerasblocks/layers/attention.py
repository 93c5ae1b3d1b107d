"""Attention, as in the book's chapter "Attention Mechanisms and
Transformers": masked softmax, scaled dot-product attention, additive
(Bahdanau) attention and multi-head attention.

Inputs: `queries` alone (self-attention), or a list `[queries, keys,
values]` (the book's order), or `[queries, keys]` (values = keys).

Masks: every layer takes the book's `valid_lens` (`(batch,)`: the first
`valid_lens[i]` keys of example i are real; `(batch, queries)`: per
query) and/or a boolean `attention_mask` (`(batch, keys)` or `(batch,
queries, keys)`, True = attend; a size-1 query axis broadcasts). Masked
keys get exactly zero weight. A query whose keys are all masked (an
all-padding sequence) gets all-zero weights, hence a zero output, where
the book averages the padding uniformly; nothing becomes NaN. A mask of
the wrong shape is a ValueError naming it (eagerly, or when the graph
knows the shapes), or a run-time assertion naming it.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.layers._checks import check_shape, require, with_checks


def _rate(value) -> float:
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"dropout_rate must be in [0, 1). Received: dropout_rate={value!r}"
        )
    return float(value)


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or isinstance(d, int) for d in value
    )


def unpack_qkv(inputs, what: str):
    """`(queries, keys, values)` from a tensor or a list of 2 or 3 (works
    for tensors and for shapes)."""
    if isinstance(inputs, (list, tuple)) and not _is_shape(inputs):
        if len(inputs) == 3:
            return tuple(inputs)
        if len(inputs) == 2:
            return inputs[0], inputs[1], inputs[1]
        raise ValueError(
            f"{what} takes queries, or a list [queries, keys, values] or "
            f"[queries, keys]. Received a list of {len(inputs)}."
        )
    return inputs, inputs, inputs


def _checked(tensor, expected, name, checks, allow_one=()):
    """`tensor` after its shape checks (added to `checks`), so that no
    op using it runs before them."""
    new = check_shape(tensor, expected, name, allow_one=allow_one)
    checks += new
    return with_checks(tensor, new)


def _dim(x, axis: int):
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


def causal_mask(num_queries, num_keys, offset=0):
    """`(1, queries, keys)` booleans: query i sees keys `j <= i + offset`.

    With `offset = keys - queries` the last query sees every key.
    """
    rows = tf.range(num_queries)[:, None] + offset
    columns = tf.range(num_keys)[None, :]
    return tf.expand_dims(columns <= rows, 0)


def build_attention_mask(
    batch, num_queries, num_keys, *, valid_lens=None, attention_mask=None
):
    """The boolean mask `(batch, 1 or queries, keys)` for `valid_lens`
    and/or `attention_mask` (None when both are None), and the run-time
    checks of their shapes."""
    masks, checks = [], []
    if valid_lens is not None:
        lens = tf.convert_to_tensor(valid_lens)
        if lens.shape.rank == 1:
            lens = _checked(lens, [batch], "valid_lens", checks)
            lens = lens[:, None, None]
        elif lens.shape.rank == 2:
            lens = _checked(lens, [batch, num_queries], "valid_lens", checks)
            lens = lens[:, :, None]
        else:
            raise ValueError(
                "valid_lens must have shape (batch,) or (batch, queries). "
                f"Received: shape={tuple(lens.shape.as_list())}"
            )
        if lens.dtype.is_floating:
            lens = tf.math.round(lens)
        lens = tf.cast(lens, tf.int32)
        masks.append(tf.range(num_keys)[None, None, :] < lens)
    if attention_mask is not None:
        mask = tf.convert_to_tensor(attention_mask)
        if mask.dtype != tf.bool:
            mask = tf.not_equal(mask, tf.zeros((), mask.dtype))
        if mask.shape.rank == 2:
            mask = _checked(mask, [batch, num_keys], "attention_mask", checks)
            # expand_dims, not [:, None]: TFLite has no boolean
            # StridedSlice that adds an axis.
            mask = tf.expand_dims(mask, 1)
        elif mask.shape.rank == 3:
            mask = _checked(
                mask,
                [batch, num_queries, num_keys],
                "attention_mask",
                checks,
                allow_one=(1,),
            )
        else:
            raise ValueError(
                "attention_mask must have shape (batch, keys) or (batch, "
                "queries, keys). Received: "
                f"shape={tuple(mask.shape.as_list())}"
            )
        masks.append(mask)
    if not masks:
        return None, checks
    mask = masks[0]
    for other in masks[1:]:
        mask = tf.logical_and(mask, other)
    return mask, checks


def masked_softmax(scores, mask):
    """Softmax over the last axis giving masked entries zero weight; an
    all-masked row is all zeros."""
    if mask is None:
        return tf.nn.softmax(scores, axis=-1)
    filled = tf.where(mask, scores, tf.constant(scores.dtype.min, scores.dtype))
    weights = tf.nn.softmax(filled, axis=-1)
    return tf.where(mask, weights, tf.zeros_like(weights))


@register()
class MaskedSoftmax(keras.layers.Layer):
    """Softmax over the last axis of `(batch, queries, keys)` scores that
    gives masked keys zero weight (the book's `masked_softmax`).

    Call arguments:
        inputs: scores `(batch, queries, keys)`.
        mask: booleans `(batch, keys)` or `(batch, queries, keys)`.
        valid_lens: `(batch,)` or `(batch, queries)` key counts.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> softmax = kerasblocks.layers.MaskedSoftmax()
    >>> w = softmax(tf.zeros((2, 1, 4)), valid_lens=tf.constant([2, 0]))
    >>> w.numpy()[:, 0].tolist()
    [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """

    def call(self, inputs, mask=None, valid_lens=None):
        if inputs.shape.rank != 3:
            raise ValueError(
                "MaskedSoftmax takes (batch, queries, keys) scores. "
                f"Received: shape={tuple(inputs.shape.as_list())}"
            )
        full, checks = build_attention_mask(
            _dim(inputs, 0),
            _dim(inputs, 1),
            _dim(inputs, 2),
            valid_lens=valid_lens,
            attention_mask=mask,
        )
        return with_checks(masked_softmax(inputs, full), checks)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        # `mask` masks keys, not the output's positions.
        return None


@register()
class DotProductAttention(keras.layers.Layer):
    """Scaled dot-product attention: `softmax(q k^T / sqrt(d)) v`, with
    dropout on the attention weights (the book's `DotProductAttention`).

    Args:
        dropout_rate: dropout on the attention weights (training only).

    Call arguments:
        inputs: queries `(batch, queries, d)`, or `[queries, keys
            (batch, keys, d), values (batch, keys, v)]`.
        valid_lens, attention_mask: see the module docstring.
        return_attention_scores: also return the weights.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> attention = kerasblocks.layers.DotProductAttention()
    >>> q, k, v = tf.ones((2, 1, 2)), tf.ones((2, 10, 2)), tf.ones((2, 10, 4))
    >>> attention([q, k, v], valid_lens=tf.constant([2, 6])).shape
    TensorShape([2, 1, 4])
    """

    def __init__(self, dropout_rate: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.dropout_rate = _rate(dropout_rate)
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def call(
        self,
        inputs,
        valid_lens=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        queries, keys, values = unpack_qkv(inputs, "DotProductAttention")
        depth = queries.shape[-1]
        if depth is None or keys.shape[-1] != depth:
            raise ValueError(
                "DotProductAttention needs queries and keys of the same known "
                f"depth. Received: queries.shape={queries.shape}, "
                f"keys.shape={keys.shape}"
            )
        scores = tf.matmul(queries, keys, transpose_b=True) / math.sqrt(depth)
        mask, checks = build_attention_mask(
            _dim(queries, 0),
            _dim(queries, 1),
            _dim(keys, 1),
            valid_lens=valid_lens,
            attention_mask=attention_mask,
        )
        values = _checked(
            values, [_dim(keys, 0), _dim(keys, 1), None], "values", checks
        )
        weights = masked_softmax(scores, mask)
        outputs = tf.matmul(self.dropout(weights, training=training), values)
        outputs = with_checks(outputs, checks)
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_mask(self, inputs, mask=None):
        # Masks are explicit arguments here; Keras's implicit ones stop.
        return None

    def get_config(self):
        return {**super().get_config(), "dropout_rate": self.dropout_rate}


@register()
class AdditiveAttention(keras.layers.Layer):
    """Additive (Bahdanau) attention: scores `w_v^T tanh(W_q q + W_k k)`
    (the book's `AdditiveAttention`).

    Args:
        units: width of the hidden layer (the book's `num_hiddens`).
        dropout_rate: dropout on the attention weights.

    Sublayers: `query` and `key` (`Dense(units)` without bias) and
    `score` (`Dense(1)` without bias).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> attention = kerasblocks.layers.AdditiveAttention(8)
    >>> q, k, v = tf.ones((2, 1, 20)), tf.ones((2, 10, 2)), tf.ones((2, 10, 4))
    >>> attention([q, k, v], valid_lens=tf.constant([2, 6])).shape
    TensorShape([2, 1, 4])
    """

    def __init__(self, units: int, dropout_rate: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.dropout_rate = _rate(dropout_rate)
        self.query_dense = keras.layers.Dense(
            units, use_bias=False, name="query"
        )
        self.key_dense = keras.layers.Dense(units, use_bias=False, name="key")
        self.score_dense = keras.layers.Dense(1, use_bias=False, name="score")
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def build(self, input_shape):
        query_shape, key_shape, _ = unpack_qkv(input_shape, "AdditiveAttention")
        self.query_dense.build(tuple(query_shape))
        self.key_dense.build(tuple(key_shape))
        self.score_dense.build((None, None, None, self.units))

    def call(
        self,
        inputs,
        valid_lens=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        queries, keys, values = unpack_qkv(inputs, "AdditiveAttention")
        features = tf.tanh(
            self.query_dense(queries)[:, :, None, :]
            + self.key_dense(keys)[:, None, :, :]
        )
        scores = tf.squeeze(self.score_dense(features), axis=-1)
        mask, checks = build_attention_mask(
            _dim(queries, 0),
            _dim(queries, 1),
            _dim(keys, 1),
            valid_lens=valid_lens,
            attention_mask=attention_mask,
        )
        weights = masked_softmax(scores, mask)
        outputs = tf.matmul(self.dropout(weights, training=training), values)
        outputs = with_checks(outputs, checks)
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_mask(self, inputs, mask=None):
        # Masks are explicit arguments here; Keras's implicit ones stop.
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "dropout_rate": self.dropout_rate,
        }


def _write_cache(cache, new, index):
    """`cache` `(batch, 2, length, d)` with `new` `(batch, 2, t, d)`
    written at positions `index .. index + t - 1` (XLA-compatible)."""
    steps = tf.shape(new)[2]
    positions = tf.cast(index, tf.int32) + tf.range(steps)
    updated = tf.tensor_scatter_nd_update(
        tf.transpose(cache, [2, 0, 1, 3]),
        positions[:, None],
        tf.transpose(new, [2, 0, 1, 3]),
    )
    return tf.transpose(updated, [1, 2, 0, 3])


@register()
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention with the book's head split and merge.

    Queries, keys and values are projected to `hidden_dim` features,
    split into `num_heads` heads of `hidden_dim // num_heads` by reshaping
    `(batch, n, hidden)` to `(batch * heads, n, hidden / heads)` (the
    book's `transpose_qkv`), attended with `DotProductAttention`, merged
    back (`transpose_output`) and projected by `output`.

    Incremental decoding: pass `cache` (`(batch, 2, max_length,
    hidden_dim)`, the projected keys and values of earlier positions, from
    `init_cache`) and `cache_index` (where the new positions go); the
    layer writes the new keys and values there, attends causally over
    the cache and returns `(outputs, new_cache)`.

    Args:
        hidden_dim: width of the projections and the output.
        num_heads: number of heads; must divide `hidden_dim`.
        dropout_rate: dropout on the attention weights.
        use_bias: biases in the four projections (the book: False; ViT:
            True).

    Call arguments:
        inputs: queries, or `[queries, keys, values]`.
        valid_lens, attention_mask: see the module docstring.
        use_causal_mask: query i sees only keys up to i (aligned at the
            end when there are more keys than queries).
        cache, cache_index: incremental self-attention (see above).
        return_attention_scores: also return `(batch, heads, queries,
            keys)` weights (not with a cache).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> mha = kerasblocks.layers.MultiHeadAttention(100, 5)
    >>> x, y = tf.ones((2, 4, 100)), tf.ones((2, 6, 100))
    >>> mha([x, y, y], valid_lens=tf.constant([3, 2])).shape
    TensorShape([2, 4, 100])
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        *,
        dropout_rate: float = 0.0,
        use_bias: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = _positive_int("hidden_dim", hidden_dim)
        self.num_heads = _positive_int("num_heads", num_heads)
        if hidden_dim % num_heads:
            raise ValueError(
                "num_heads must divide hidden_dim. Received: "
                f"{hidden_dim=}, {num_heads=}"
            )
        self.dropout_rate = _rate(dropout_rate)
        self.use_bias = bool(use_bias)

        def dense(name):
            return keras.layers.Dense(hidden_dim, use_bias=use_bias, name=name)

        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = dense("output")
        self.attention = DotProductAttention(
            self.dropout_rate, name="attention"
        )

    def build(self, input_shape):
        query_shape, key_shape, value_shape = unpack_qkv(
            input_shape, "MultiHeadAttention"
        )
        self.query_dense.build(tuple(query_shape))
        self.key_dense.build(tuple(key_shape))
        self.value_dense.build(tuple(value_shape))
        self.output_dense.build((*tuple(query_shape)[:-1], self.hidden_dim))

    def init_cache(self, batch_size, max_length: int, dtype="float32"):
        """An empty cache for `max_length` positions."""
        return tf.zeros((batch_size, 2, max_length, self.hidden_dim), dtype)

    def _split_heads(self, x):
        batch, steps = tf.shape(x)[0], tf.shape(x)[1]
        depth = self.hidden_dim // self.num_heads
        x = tf.reshape(x, [batch, steps, self.num_heads, depth])
        x = tf.transpose(x, [0, 2, 1, 3])
        return tf.reshape(x, [batch * self.num_heads, steps, depth])

    def _merge_heads(self, x):
        steps = tf.shape(x)[1]
        x = tf.reshape(x, [-1, self.num_heads, steps, x.shape[-1]])
        x = tf.transpose(x, [0, 2, 1, 3])
        return tf.reshape(x, [-1, steps, self.hidden_dim])

    def call(
        self,
        inputs,
        valid_lens=None,
        attention_mask=None,
        *,
        use_causal_mask=False,
        cache=None,
        cache_index=None,
        training=None,
        return_attention_scores=False,
    ):
        queries, keys, values = unpack_qkv(inputs, "MultiHeadAttention")
        batch, num_queries = _dim(queries, 0), _dim(queries, 1)
        checks = []
        q = self.query_dense(queries)
        if cache is None:
            k, v = self.key_dense(keys), self.value_dense(values)
            num_keys = _dim(keys, 1)
        else:
            if keys is not queries or values is not queries:
                raise ValueError(
                    "With a cache, MultiHeadAttention is self-attention: "
                    "pass one tensor as inputs."
                )
            if return_attention_scores:
                raise ValueError(
                    "return_attention_scores is not supported with a cache."
                )
            if cache_index is None:
                raise ValueError("cache_index is required with a cache.")
            cache = _checked(
                cache, [batch, 2, None, self.hidden_dim], "cache", checks
            )
            num_keys = _dim(cache, 2)
            index = tf.cast(cache_index, tf.int32)
            in_range = require(
                index + num_queries <= num_keys,
                "cache_index + the number of new positions exceeds the "
                "cache's length",
            )
            checks += in_range
            cache_index = with_checks(index, in_range)
            new = tf.stack(
                [self.key_dense(queries), self.value_dense(queries)], axis=1
            )
            cache = _write_cache(cache, tf.cast(new, cache.dtype), cache_index)
            k, v = cache[:, 0], cache[:, 1]
        mask, mask_checks = build_attention_mask(
            batch,
            num_queries,
            num_keys,
            valid_lens=valid_lens,
            attention_mask=attention_mask,
        )
        checks += mask_checks
        if cache is not None or use_causal_mask:
            offset = (
                tf.cast(cache_index, tf.int32)
                if cache is not None
                else num_keys - num_queries
            )
            causal = causal_mask(num_queries, num_keys, offset)
            mask = causal if mask is None else tf.logical_and(mask, causal)
        if mask is not None:
            mask = tf.broadcast_to(
                mask, tf.stack([batch, tf.shape(mask)[1], num_keys])
            )
            # One mask per head, in the book's (batch * heads) order.
            mask = tf.repeat(mask, self.num_heads, axis=0)
        result = self.attention(
            [self._split_heads(q), self._split_heads(k), self._split_heads(v)],
            attention_mask=mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        if return_attention_scores:
            result, weights = result
            weights = tf.reshape(
                weights, [-1, self.num_heads, num_queries, num_keys]
            )
        outputs = with_checks(
            self.output_dense(self._merge_heads(result)), checks
        )
        if cache is not None:
            return outputs, cache
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_mask(self, inputs, mask=None):
        # Masks are explicit arguments here; Keras's implicit ones stop.
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "dropout_rate": self.dropout_rate,
            "use_bias": self.use_bias,
        }
