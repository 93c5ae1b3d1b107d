"""Pieces of the book's RNN encoder-decoders ("Sequence-to-Sequence
Learning for Machine Translation" and "The Bahdanau Attention
Mechanism").

`BahdanauDecoder` is the decoder of the book's Bahdanau attention
section: at each step, additive attention with the previous hidden
state as query over the encoder's outputs, then a stack of GRU cells on
`[context, input]`. `AppendContext` feeds a plain `Seq2SeqDecoder` the
encoder's final state at every step.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int, rate
from kerasblocks.layers._checks import checked, dim, with_checks
from kerasblocks.layers.attention_scoring import AdditiveAttention
from kerasblocks.layers.rnn_cells import GRUCell, previous_states


@register()
class BahdanauDecoder(CapturedConfig, keras.layers.Layer):
    """The book's `Seq2SeqAttentionDecoder` without its output layer: at
    each step the previous top hidden state queries the encoder outputs
    through `AdditiveAttention`, and a stack of `GRUCell`s reads
    `[context, input]`.

    Sublayers: `attention` (`AdditiveAttention(units)`), `cell_0` ...
    (`GRUCell(units)`), `dropout` (on the inputs and outputs).

    Args:
        units: hidden size of the cells and the attention (the book's
            `num_hiddens`).
        num_layers: stacked GRU cells.
        dropout_rate: dropout on the decoder's inputs and outputs.

    Call arguments:
        inputs: `[embedded targets (batch, steps, e), encoder outputs
            (batch, source_length, d)]`.
        initial_states: one `(batch, units)` state per layer (the
            encoder's final states); zeros when None.
        padding_mask: `(batch, steps)`; padded steps keep the state.
        encoder_mask: `(batch, source_length)`, True for real tokens.

    Returns: the top cell's outputs, `(batch, steps, units)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> decoder = kerasblocks.layers.BahdanauDecoder(16, 2)
    >>> decoder([tf.ones((4, 7, 8)), tf.ones((4, 5, 16))]).shape
    TensorShape([4, 7, 16])
    """

    def __init__(
        self,
        units: int,
        num_layers: int = 1,
        *,
        dropout_rate: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = positive_int("units", units)
        self.num_layers = positive_int("num_layers", num_layers)
        self.dropout_rate = rate("dropout_rate", dropout_rate)
        self.attention = AdditiveAttention(units, name="attention")
        self.cells = [
            GRUCell(units, name=f"cell_{i}") for i in range(num_layers)
        ]
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def build(self, input_shape):
        target_shape, memory_shape = input_shape
        if target_shape[-1] is None or memory_shape[-1] is None:
            raise ValueError(
                "BahdanauDecoder needs known feature sizes. Received: "
                f"{input_shape=}"
            )
        batch = target_shape[0]
        query = (batch, 1, self.units)
        self.attention.build([query, tuple(memory_shape), tuple(memory_shape)])
        features = memory_shape[-1] + target_shape[-1]
        for cell in self.cells:
            cell.build((batch, features))
            features = self.units

    def step(self, inputs, states, encoder_outputs, encoder_mask=None):
        """One decoding step: `inputs` `(batch, e)` and the list of layer
        states to `(output (batch, units), new states)`."""
        context = self.attention(
            [states[-1][:, None, :], encoder_outputs, encoder_outputs],
            attention_mask=encoder_mask,
        )[:, 0]
        x = tf.concat([context, inputs], axis=-1)
        new_states = []
        for cell, state in zip(self.cells, states, strict=True):
            x, (state,) = cell(x, [state])
            new_states.append(state)
        return x, new_states

    def call(
        self,
        inputs,
        initial_states=None,
        padding_mask=None,
        encoder_mask=None,
        training=None,
    ):
        targets, memory = inputs
        batch = dim(targets, 0)
        checks = []
        if padding_mask is not None:
            padding_mask = checked(
                padding_mask, [batch, dim(targets, 1)], "padding_mask", checks
            )
        if encoder_mask is not None:
            encoder_mask = checked(
                encoder_mask, [batch, dim(memory, 1)], "encoder_mask", checks
            )
        states = previous_states(
            initial_states,
            self.num_layers,
            tf.shape(targets)[0],
            self.units,
            targets.dtype,
        )
        targets = self.dropout(targets, training=training)
        steps = tf.transpose(targets, [1, 0, 2])
        if padding_mask is None:
            keep = tf.ones(tf.shape(steps)[:2], tf.bool)
        else:
            keep = tf.transpose(tf.cast(padding_mask, tf.bool))

        def body(carried, elements):
            x, real = elements
            _, new_states = self.step(x, list(carried), memory, encoder_mask)
            kept = [
                tf.where(tf.expand_dims(real, 1), new, old)
                for new, old in zip(new_states, carried, strict=True)
            ]
            return tuple(kept)

        final = tf.scan(body, (steps, keep), initializer=tuple(states))
        outputs = tf.transpose(final[-1], [1, 0, 2])
        outputs = self.dropout(outputs, training=training)
        return with_checks(outputs, checks)

    def compute_output_shape(self, input_shape):
        target_shape, _ = input_shape
        return (target_shape[0], target_shape[1], self.units)

    def compute_mask(self, inputs, mask=None):
        # Masks are explicit arguments here; Keras's implicit ones stop.
        return None


@register()
class AppendContext(CapturedConfig, keras.layers.Layer):
    """Appends a context vector to every step of a sequence (the book's
    `Seq2SeqDecoder` feeds the encoder's final state this way):
    `[(batch, steps, e), (batch, d)]` to `(batch, steps, e + d)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> append = kerasblocks.layers.AppendContext()
    >>> append([tf.ones((2, 5, 3)), tf.zeros((2, 4))]).shape
    TensorShape([2, 5, 7])
    """

    def call(self, inputs):
        sequence, context = inputs
        if context.shape.rank != 2 or sequence.shape.rank != 3:
            raise ValueError(
                "AppendContext takes [(batch, steps, features), (batch, "
                f"features)]. Received: shapes {sequence.shape}, "
                f"{context.shape}"
            )
        steps = tf.shape(sequence)[1]
        context = tf.tile(context[:, None, :], tf.stack([1, steps, 1]))
        return tf.concat([sequence, tf.cast(context, sequence.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        sequence, context = input_shape
        return (*tuple(sequence)[:2], sequence[-1] + context[-1])
