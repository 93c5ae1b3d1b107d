"""Attention scoring, as in the book's section "Attention Scoring
Functions": masked softmax, scaled dot-product attention and additive
(Bahdanau) attention, and the attention masks every attention layer of
this package shares (`build_attention_mask`, `causal_mask`).

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

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int, rate
from kerasblocks.layers._checks import checked, dim, with_checks


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
            lens = checked(lens, [batch], "valid_lens", checks)
            lens = lens[:, None, None]
        elif lens.shape.rank == 2:
            lens = checked(lens, [batch, num_queries], "valid_lens", checks)
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
            mask = checked(mask, [batch, num_keys], "attention_mask", checks)
            # expand_dims, not [:, None]: TFLite has no boolean
            # StridedSlice that adds an axis.
            mask = tf.expand_dims(mask, 1)
        elif mask.shape.rank == 3:
            mask = checked(
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
class MaskedSoftmax(CapturedConfig, keras.layers.Layer):
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
            dim(inputs, 0),
            dim(inputs, 1),
            dim(inputs, 2),
            valid_lens=valid_lens,
            attention_mask=mask,
        )
        return with_checks(masked_softmax(inputs, full), checks)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        # `mask` masks keys, not the output's positions.
        return None


def _attend(
    scores, mask, values, dropout, training, checks, return_attention_scores
):
    """The attention-weighted sum of `values`: the masked softmax of
    `scores`, dropped out, times the values (and the weights, when asked
    for). What every scoring function shares once it has scored."""
    weights = masked_softmax(scores, mask)
    outputs = tf.matmul(dropout(weights, training=training), values)
    outputs = with_checks(outputs, checks)
    if return_attention_scores:
        return outputs, weights
    return outputs


class _ScoredAttention(CapturedConfig, keras.layers.Layer):
    """What every scoring function's layer shares: its inputs and masks,
    and the weighted sum once `_score` has scored the keys."""

    def _score(self, queries, keys):
        raise NotImplementedError

    def _check_values(self, values, keys, checks):
        return values

    def call(
        self,
        inputs,
        valid_lens=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        queries, keys, values = unpack_qkv(inputs, type(self).__name__)
        scores = self._score(queries, keys)
        mask, checks = build_attention_mask(
            dim(queries, 0),
            dim(queries, 1),
            dim(keys, 1),
            valid_lens=valid_lens,
            attention_mask=attention_mask,
        )
        return _attend(
            scores,
            mask,
            self._check_values(values, keys, checks),
            self.dropout,
            training,
            checks,
            return_attention_scores,
        )

    def compute_mask(self, inputs, mask=None):
        # Masks are explicit arguments here; Keras's implicit ones stop.
        return None


@register()
class DotProductAttention(_ScoredAttention):
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
        self.dropout_rate = rate("dropout_rate", dropout_rate)
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def _score(self, queries, keys):
        depth = queries.shape[-1]
        if depth is None or keys.shape[-1] != depth:
            raise ValueError(
                "DotProductAttention needs queries and keys of the same known "
                f"depth. Received: queries.shape={queries.shape}, "
                f"keys.shape={keys.shape}"
            )
        return tf.matmul(queries, keys, transpose_b=True) / math.sqrt(depth)

    def _check_values(self, values, keys, checks):
        return checked(
            values, [dim(keys, 0), dim(keys, 1), None], "values", checks
        )


@register()
class AdditiveAttention(_ScoredAttention):
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
        self.units = positive_int("units", units)
        self.dropout_rate = rate("dropout_rate", dropout_rate)
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

    def _score(self, queries, keys):
        features = tf.tanh(
            self.query_dense(queries)[:, :, None, :]
            + self.key_dense(keys)[:, None, :, :]
        )
        return tf.squeeze(self.score_dense(features), axis=-1)
