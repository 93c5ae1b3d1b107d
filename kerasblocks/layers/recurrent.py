"""Recurrent cells from scratch, and the book's attention decoder.

`RNNCell`, `GRUCell` and `LSTMCell` are the book's "from scratch" cells
(chapters "Recurrent Neural Networks" and "Modern Recurrent Neural
Networks"), written with Keras's weight layout (one `kernel`, one
`recurrent_kernel`, one `bias`; gates in the order z, r, h for the GRU
and i, f, c, o for the LSTM) so that with the same weights they compute
exactly what `keras.layers.SimpleRNN`, `GRU` and `LSTM` compute. They
follow the Keras cell protocol (`state_size`, `call(inputs, states)`), so
`keras.layers.RNN(cell)` runs them over a sequence (with masking, going
backwards, and inside `keras.layers.Bidirectional`) on any device and
under XLA, never through cuDNN.

`BahdanauDecoder` is the decoder of the book's "The Bahdanau Attention
Mechanism": at each step, additive attention with the previous hidden
state as query over the encoder's outputs, then a stack of GRU cells on
`[context, input]`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks._registry import register
from kerasblocks.layers._checks import with_checks
from kerasblocks.layers.attention import (
    AdditiveAttention,
    _checked,
    _dim,
    _positive_int,
    _rate,
)


def _previous(states, count: int, batch, units: int, dtype):
    """The state tensors, zeros when `states` is None."""
    if states is None:
        return [tf.zeros(tf.stack([batch, units]), dtype)] * count
    if not isinstance(states, (list, tuple)):
        states = [states]
    if len(states) != count:
        raise ValueError(
            f"Expected {count} state tensor(s), got {len(states)}."
        )
    return list(states)


class _Cell(keras.layers.Layer):
    """What the three cells share: arguments, weights, the protocol."""

    _gates = 1
    _num_states = 1

    def __init__(
        self,
        units: int,
        *,
        activation: str = "tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @property
    def state_size(self):
        if self._num_states == 1:
            return self.units
        return [self.units] * self._num_states

    @property
    def output_size(self):
        return self.units

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                f"{type(self).__name__} needs a known input size. Received: "
                f"{input_shape=}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(features, self._gates * self.units),
            initializer=self.kernel_initializer,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, self._gates * self.units),
            initializer=self.recurrent_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=self._bias_shape(),
                initializer=self._bias_initializer(),
            )

    def get_initial_state(self, batch_size=None):
        return [
            tf.zeros(tf.stack([batch_size, self.units]), self.compute_dtype)
            for _ in range(self._num_states)
        ]

    def call(self, inputs, states=None, training=None):
        nested = states is None or isinstance(states, (list, tuple))
        previous = _previous(
            states,
            self._num_states,
            tf.shape(inputs)[0],
            self.units,
            inputs.dtype,
        )
        output, new_states = self._step(inputs, previous)
        if not nested:
            return output, new_states[0]
        return output, new_states

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
        }


_CELL_EXAMPLE = """

    Example:

    >>> import keras, tensorflow as tf, kerasblocks
    >>> cell = kerasblocks.layers.{name}(4)
    >>> output, states = cell(tf.ones((2, 3)))
    >>> output.shape, len(states)
    (TensorShape([2, 4]), {states})
    >>> keras.layers.RNN(cell, return_sequences=True)(tf.ones((2, 5, 3))).shape
    TensorShape([2, 5, 4])
"""


@register()
class RNNCell(_Cell):
    """`h = activation(x W + h_prev U + b)` (the book's RNN from scratch;
    `keras.layers.SimpleRNNCell`'s computation).

    Args:
        units: size of the hidden state.
        activation: the book's tanh.
        use_bias: add `bias`.
        kernel_initializer, recurrent_initializer, bias_initializer:
            Keras's defaults (Glorot uniform, orthogonal, zeros).

    Call arguments:
        inputs: `(batch, features)`, one time step.
        states: `[h_prev]` (zeros when None).

    Returns: `(h, [h])`.
    """

    __doc__ += _CELL_EXAMPLE.format(name="RNNCell", states=1)

    def _step(self, inputs, previous):
        (h,) = previous
        x = tf.matmul(inputs, self.kernel)
        if self.bias is not None:
            x = x + self.bias
        h = self.activation(x + tf.matmul(h, self.recurrent_kernel))
        return h, [h]


@register()
class GRUCell(_Cell):
    """A gated recurrent unit (the book's GRU from scratch, with
    `keras.layers.GRUCell`'s weight layout and computation).

    Update gate `z`, reset gate `r`, candidate `h~` and new state
    `h = z * h_prev + (1 - z) * h~`. With `reset_after=True` (Keras's
    default) `r` multiplies the recurrent projection of the candidate and
    there are separate input and recurrent biases (`bias` is `(2, 3 *
    units)`); with `reset_after=False` (the book's) it multiplies `h_prev`
    before the projection.

    Args:
        units: size of the hidden state.
        activation: of the candidate (tanh).
        recurrent_activation: of the gates (sigmoid).
        use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer: as `RNNCell`.
        reset_after: see above.

    Returns: `(h, [h])`.
    """

    __doc__ += _CELL_EXAMPLE.format(name="GRUCell", states=1)
    _gates = 3

    def __init__(
        self,
        units: int,
        *,
        recurrent_activation: str = "sigmoid",
        reset_after: bool = True,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)
        return (3 * self.units,)

    def _step(self, inputs, previous):
        (h,) = previous
        units = self.units
        x = tf.matmul(inputs, self.kernel)
        input_bias = recurrent_bias = None
        if self.bias is not None:
            if self.reset_after:
                input_bias, recurrent_bias = self.bias[0], self.bias[1]
            else:
                input_bias = self.bias
            x = x + input_bias
        x_z, x_r, x_h = tf.split(x, 3, axis=-1)
        if self.reset_after:
            inner = tf.matmul(h, self.recurrent_kernel)
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
            h_z, h_r, h_h = tf.split(inner, 3, axis=-1)
        else:
            inner = tf.matmul(h, self.recurrent_kernel[:, : 2 * units])
            h_z, h_r = tf.split(inner, 2, axis=-1)
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        if self.reset_after:
            candidate = self.activation(x_h + r * h_h)
        else:
            candidate = self.activation(
                x_h + tf.matmul(r * h, self.recurrent_kernel[:, 2 * units :])
            )
        h = z * h + (1.0 - z) * candidate
        return h, [h]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            ),
            "reset_after": self.reset_after,
        }


@register()
class LSTMCell(_Cell):
    """A long short-term memory cell (the book's LSTM from scratch, with
    `keras.layers.LSTMCell`'s weight layout and computation).

    Input gate `i`, forget gate `f`, candidate `c~`, output gate `o`:
    `c = f * c_prev + i * c~`, `h = o * activation(c)`.

    Args:
        units: size of the hidden and memory states.
        activation: of the candidate and the output (tanh).
        recurrent_activation: of the gates (sigmoid).
        unit_forget_bias: initialize the forget gate's bias to 1 (as
            Keras does).
        use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer: as `RNNCell`.

    Call arguments:
        states: `[h_prev, c_prev]` (zeros when None).

    Returns: `(h, [h, c])`.
    """

    __doc__ += _CELL_EXAMPLE.format(name="LSTMCell", states=2)
    _gates = 4
    _num_states = 2

    def __init__(
        self,
        units: int,
        *,
        recurrent_activation: str = "sigmoid",
        unit_forget_bias: bool = True,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def initializer(shape, dtype=None):
            return tf.concat(
                [
                    base((units,), dtype=dtype),
                    tf.ones((units,), dtype=dtype),
                    base((2 * units,), dtype=dtype),
                ],
                axis=0,
            )

        return initializer

    def _step(self, inputs, previous):
        h, c = previous
        z = tf.matmul(inputs, self.kernel) + tf.matmul(h, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            ),
            "unit_forget_bias": self.unit_forget_bias,
        }


@register()
class BahdanauDecoder(keras.layers.Layer):
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
        self.units = _positive_int("units", units)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.dropout_rate = _rate(dropout_rate)
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
        batch = _dim(targets, 0)
        checks = []
        if padding_mask is not None:
            padding_mask = _checked(
                padding_mask, [batch, _dim(targets, 1)], "padding_mask", checks
            )
        if encoder_mask is not None:
            encoder_mask = _checked(
                encoder_mask, [batch, _dim(memory, 1)], "encoder_mask", checks
            )
        states = _previous(
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

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout_rate": self.dropout_rate,
        }


@register()
class AppendContext(keras.layers.Layer):
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
