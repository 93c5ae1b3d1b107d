"""The "Deep Learning Computation" chapter's own blocks, on Keras 3.

`MLP`, `FixedHiddenMLP`, `NestMLP` (section "Layers and Modules"),
`CenteredLayer` and `ScratchDense` (section "Custom Layers", where the
latter is called `MyDense`). Unlike the book's versions they serialize,
reload and run under `tf.function`, XLA and `fit`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.block import Block
from kerasblocks.layers._checks import known_last_dim


@register()
class MLP(Block):
    """A one-hidden-layer perceptron: `Dense(hidden_units, activation)`,
    then `Dense(units)`.

    Args:
        hidden_units: width of the hidden layer (the book's 256).
        units: output width (the book's 10).
        activation: activation of the hidden layer.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> net = kerasblocks.layers.MLP()
    >>> net(tf.random.uniform((2, 20))).shape
    TensorShape([2, 10])
    """

    def __init__(
        self,
        hidden_units: int = 256,
        units: int = 10,
        *,
        activation: str = "relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_units = _positive_int("hidden_units", hidden_units)
        self.units = _positive_int("units", units)
        self.activation = activation
        self.hidden = keras.layers.Dense(
            hidden_units, activation=activation, name="hidden"
        )
        self.out = keras.layers.Dense(units, name="out")

    def call(self, inputs):
        return self.out(self.hidden(inputs))


@register()
class FixedHiddenMLP(Block):
    """The chapter's block with a constant weight and Python control flow.

    Flattens, multiplies by a fixed (non-trainable) random matrix, adds 1,
    applies ReLU, then a trainable `Dense(units, relu)`; then halves the
    activations while their absolute sum exceeds 1 and multiplies them by
    10 if their sum is below 0.8. The `while`/`if` on tensors run
    eagerly, under `tf.function`, with XLA and inside `fit`.

    Args:
        units: width of the fixed and trainable layers (the book's 20).
        reduce: `"sum"` returns the sum of all activations as the book
            does (a scalar); None returns the activations.
        seed: seed of the fixed random matrix.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> net = kerasblocks.layers.FixedHiddenMLP(seed=0)
    >>> y = tf.function(net, jit_compile=True)(tf.random.uniform((2, 20)))
    >>> y.shape
    TensorShape([])
    """

    def __init__(
        self,
        units: int = 20,
        *,
        reduce: str | None = "sum",
        seed: int | None = None,
        **kwargs,
    ):
        if reduce not in ("sum", None):
            raise ValueError(
                f"reduce must be 'sum' or None. Received: {reduce=}"
            )
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.reduce = reduce
        self.seed = seed
        self.flatten = keras.layers.Flatten(name="flatten")
        self.dense = keras.layers.Dense(units, activation="relu", name="dense")

    def build(self, input_shape):
        flat = 1
        for dim in input_shape[1:]:
            if dim is None:
                raise ValueError(
                    "FixedHiddenMLP needs known non-batch dimensions. "
                    f"Received: {input_shape=}"
                )
            flat *= dim
        # Not trained: the book's `tf.constant(tf.random.uniform(...))`,
        # kept as a variable so that it is saved with the model.
        self.rand_weight = self.add_weight(
            name="rand_weight",
            shape=(flat, self.units),
            initializer=keras.initializers.RandomUniform(0.0, 1.0, self.seed),
            trainable=False,
        )
        super().build(input_shape)

    def call(self, inputs):
        x = self.flatten(inputs)
        x = tf.nn.relu(tf.matmul(x, self.rand_weight) + 1.0)
        x = self.dense(x)
        # The book halves x inside the loop. Halving is exact in floating
        # point, so counting the halvings on a gradient-free copy and
        # scaling once gives the same numbers; it also keeps the loop out
        # of the gradient, which XLA cannot compile for a loop of unknown
        # length (training with jit_compile=True would fail).
        total = tf.stop_gradient(tf.reduce_sum(tf.abs(x)))
        scale = tf.ones((), x.dtype)
        while total * scale > 1.0:
            scale = scale / 2.0
        x = x * scale
        if tf.reduce_sum(x) < 0.8:
            x = x * 10.0
        if self.reduce == "sum":
            return tf.reduce_sum(x)
        return x


@register()
class NestMLP(Block):
    """A Sequential inside a block, followed by a Dense (the book's
    NestMLP: 64 and 32 hidden units, then 16 outputs).

    Args:
        units: output width.
        hidden_units: widths of the inner Sequential's layers.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> kerasblocks.layers.NestMLP()(tf.ones((2, 20))).shape
    TensorShape([2, 16])
    """

    def __init__(
        self,
        units: int = 16,
        hidden_units: tuple[int, ...] = (64, 32),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.hidden_units = tuple(
            _positive_int("hidden_units[i]", u) for u in hidden_units
        )
        self.net = keras.Sequential(
            [
                keras.layers.Dense(u, activation="relu", name=f"hidden_{i}")
                for i, u in enumerate(self.hidden_units)
            ],
            name="net",
        )
        self.dense = keras.layers.Dense(units, activation="relu", name="dense")

    def call(self, inputs):
        return self.dense(self.net(inputs))


@register()
class CenteredLayer(CapturedConfig, keras.layers.Layer):
    """Subtracts the mean: `x - mean(x)` (the book's CenteredLayer).

    Args:
        axis: axes to average over; None (the book's choice) averages over
            every element of the batch.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> layer = kerasblocks.layers.CenteredLayer()
    >>> layer(tf.constant([1.0, 2.0, 3.0, 4.0, 5.0])).numpy().tolist()
    [-2.0, -1.0, 0.0, 1.0, 2.0]
    """

    def __init__(self, axis: int | tuple[int, ...] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return inputs - keras.ops.mean(inputs, axis=self.axis, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape


@register()
class ScratchDense(CapturedConfig, keras.layers.Layer):
    """A dense layer from scratch: weights from `add_weight` in `build`
    (the book's `MyDense`, which applies ReLU).

    Args:
        units: output width.
        activation: applied to `x @ weight + bias` (the book's ReLU).
        kernel_initializer: initializer of `weight` (the book's normal).
        bias_initializer: initializer of `bias`.

    Input shape: `(..., in_features)`. Output shape: `(..., units)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> dense = kerasblocks.layers.ScratchDense(3)
    >>> dense(tf.ones((2, 5))).shape, [v.name for v in dense.weights]
    (TensorShape([2, 3]), ['weight', 'bias'])
    """

    def __init__(
        self,
        units: int,
        *,
        activation: str | None = "relu",
        kernel_initializer="random_normal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        in_features = known_last_dim("ScratchDense", input_shape)
        self.weight = self.add_weight(
            name="weight",
            shape=(in_features, self.units),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), initializer=self.bias_initializer
        )
        self.input_spec = keras.layers.InputSpec(
            min_ndim=2, axes={-1: in_features}
        )

    def call(self, inputs):
        return self.activation(
            keras.ops.matmul(inputs, self.weight) + self.bias
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)
