"""Multi-head attention, as in the book's section "Multi-Head
Attention", with a key/value cache for incremental decoding.

Inputs and masks follow `kerasblocks.layers.attention_scoring`: queries,
or `[queries, keys, values]`; the book's `valid_lens` and/or a boolean
`attention_mask`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int, rate
from kerasblocks.layers._checks import checked, dim, require, with_checks
from kerasblocks.layers.attention_scoring import (
    DotProductAttention,
    build_attention_mask,
    causal_mask,
    unpack_qkv,
)


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
class MultiHeadAttention(CapturedConfig, keras.layers.Layer):
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
        valid_lens, attention_mask: as in
            `kerasblocks.layers.attention_scoring`.
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
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        self.num_heads = positive_int("num_heads", num_heads)
        if hidden_dim % num_heads:
            raise ValueError(
                "num_heads must divide hidden_dim. Received: "
                f"{hidden_dim=}, {num_heads=}"
            )
        self.dropout_rate = rate("dropout_rate", dropout_rate)
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
        batch, num_queries = dim(queries, 0), dim(queries, 1)
        checks = []
        q = self.query_dense(queries)
        if cache is None:
            k, v = self.key_dense(keys), self.value_dense(values)
            num_keys = dim(keys, 1)
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
            cache, cache_index, num_keys = self._write_positions(
                queries, cache, cache_index, checks
            )
            k, v = cache[:, 0], cache[:, 1]
        causal_offset = None
        if cache is not None:
            causal_offset = tf.cast(cache_index, tf.int32)
        elif use_causal_mask:
            causal_offset = num_keys - num_queries
        mask = self._head_mask(
            batch,
            num_queries,
            num_keys,
            valid_lens,
            attention_mask,
            causal_offset,
            checks,
        )
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

    def _write_positions(self, queries, cache, cache_index, checks):
        """Writes the keys and values of `queries` into `cache` from
        `cache_index` on; returns the cache, the checked index and the
        cache's length (appending their checks to `checks`)."""
        if cache_index is None:
            raise ValueError("cache_index is required with a cache.")
        batch, num_queries = dim(queries, 0), dim(queries, 1)
        cache = checked(
            cache, [batch, 2, None, self.hidden_dim], "cache", checks
        )
        num_keys = dim(cache, 2)
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
        return cache, cache_index, num_keys

    def _head_mask(
        self,
        batch,
        num_queries,
        num_keys,
        valid_lens,
        attention_mask,
        causal_offset,
        checks,
    ):
        """The attention mask, one per head in the book's (batch *
        heads) order, causal from `causal_offset` unless it is None;
        None when nothing is masked."""
        mask, mask_checks = build_attention_mask(
            batch,
            num_queries,
            num_keys,
            valid_lens=valid_lens,
            attention_mask=attention_mask,
        )
        checks += mask_checks
        if causal_offset is not None:
            causal = causal_mask(num_queries, num_keys, causal_offset)
            mask = causal if mask is None else tf.logical_and(mask, causal)
        if mask is None:
            return None
        mask = tf.broadcast_to(
            mask, tf.stack([batch, tf.shape(mask)[1], num_keys])
        )
        return tf.repeat(mask, self.num_heads, axis=0)

    def compute_mask(self, inputs, mask=None):
        # Masks are explicit arguments here; Keras's implicit ones stop.
        return None
