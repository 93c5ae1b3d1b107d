"""Recurrent cells from scratch.

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
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int


def previous_states(states, count: int, batch, units: int, dtype):
    """The `count` state tensors in `states` (a tensor or a list), zeros
    `(batch, units)` when `states` is None."""
    if states is None:
        return [tf.zeros(tf.stack([batch, units]), dtype)] * count
    if not isinstance(states, (list, tuple)):
        states = [states]
    if len(states) != count:
        raise ValueError(
            f"Expected {count} state tensor(s), got {len(states)}."
        )
    return list(states)


class _Cell(CapturedConfig, keras.layers.Layer):
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
        self.units = positive_int("units", units)
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
        previous = previous_states(
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
