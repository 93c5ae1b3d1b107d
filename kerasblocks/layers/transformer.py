"""Transformer blocks (Vaswani et al., 2017), as in the book's section
"The Transformer Architecture", and the pre-norm variant its Vision
Transformer section uses.

`PositionWiseFFN` and `AddNorm` are the book's; `TransformerEncoderBlock`
and `TransformerDecoderBlock` are post-norm (the book's, `norm_first=
False`: `norm(x + dropout(f(x)))`) or pre-norm (`norm_first=True`, ViT's:
`x + f(norm(x))`). The decoder block masks its self-attention causally
and, for incremental decoding, keeps the projected keys and values of
earlier positions in a cache; it lives in `kerasblocks.layers.decoder`.
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int, rate
from kerasblocks.layers._checks import checked, dim, with_checks
from kerasblocks.layers.multi_head_attention import MultiHeadAttention
from kerasblocks.layers.regularization import DropPath, check_drop_path_rate


def _activation_name(activation):
    keras.activations.get(activation)  # a clear error for an unknown one
    return activation


@register()
class PositionWiseFFN(CapturedConfig, keras.layers.Layer):
    """The same two-layer MLP at every position (the book's
    `PositionWiseFFN`; with GELU and dropout, ViT's MLP).

    `dense1` (`mlp_dim` units), the activation, dropout, `dense2`
    (`output_dim` units), dropout.

    Args:
        mlp_dim: hidden width (the book's `ffn_num_hiddens`).
        output_dim: output width (the book's `ffn_num_outputs`).
        activation: hidden activation (the book: ReLU; ViT: GELU).
        dropout_rate: dropout after the activation and after `dense2`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> ffn = kerasblocks.layers.PositionWiseFFN(4, 8)
    >>> ffn(tf.ones((2, 3, 4))).shape
    TensorShape([2, 3, 8])
    """

    def __init__(
        self,
        mlp_dim: int,
        output_dim: int,
        *,
        activation: str = "relu",
        dropout_rate: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mlp_dim = positive_int("mlp_dim", mlp_dim)
        self.output_dim = positive_int("output_dim", output_dim)
        self.activation = _activation_name(activation)
        self.dropout_rate = rate("dropout_rate", dropout_rate)
        self.dense1 = keras.layers.Dense(
            mlp_dim, activation=activation, name="dense1"
        )
        self.dense2 = keras.layers.Dense(output_dim, name="dense2")
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")

    def build(self, input_shape):
        self.dense1.build(tuple(input_shape))
        self.dense2.build((*tuple(input_shape)[:-1], self.mlp_dim))

    def call(self, inputs, training=None):
        x = self.dropout(self.dense1(inputs), training=training)
        return self.dropout(self.dense2(x), training=training)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.output_dim)


@register()
class AddNorm(CapturedConfig, keras.layers.Layer):
    """Residual connection and layer norm: `norm(x + dropout(y))` (the
    book's `AddNorm`).

    Args:
        dropout_rate: dropout on `y`.
        epsilon: of the layer norm.

    Call arguments:
        inputs: `[x, y]` of the same shape.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> add_norm = kerasblocks.layers.AddNorm()
    >>> add_norm([tf.ones((2, 3, 4)), tf.ones((2, 3, 4))]).shape
    TensorShape([2, 3, 4])
    """

    def __init__(
        self, *, dropout_rate: float = 0.0, epsilon: float = 1e-5, **kwargs
    ):
        super().__init__(**kwargs)
        self.dropout_rate = rate("dropout_rate", dropout_rate)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive. Received: {epsilon=}")
        self.epsilon = float(epsilon)
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.epsilon, name="norm"
        )

    def build(self, input_shape):
        self.norm.build(tuple(input_shape[0]))

    def call(self, inputs, training=None):
        x, y = inputs
        return self.norm(x + self.dropout(y, training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


class _TransformerBlock(CapturedConfig, keras.layers.Layer):
    """What the encoder and decoder blocks share."""

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        dropout_rate: float = 0.0,
        norm_first: bool = False,
        activation: str = "relu",
        use_bias: bool = False,
        epsilon: float = 1e-5,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.drop_path_rate = check_drop_path_rate(drop_path_rate)
        if not isinstance(zero_init_last, bool):
            raise ValueError(
                f"zero_init_last must be a bool. Received: {zero_init_last=}"
            )
        if zero_init_last and not norm_first:
            raise ValueError(
                "zero_init_last makes a pre-norm block start as the identity; "
                "a post-norm block normalizes after the addition. Received: "
                f"{zero_init_last=}, {norm_first=}"
            )
        self.zero_init_last = zero_init_last
        # One layer for both branches: its draws differ call to call.
        self.drop_path = None
        if self.drop_path_rate > 0:
            self.drop_path = DropPath(self.drop_path_rate, name="drop_path")
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        self.num_heads = positive_int("num_heads", num_heads)
        self.mlp_dim = positive_int("mlp_dim", mlp_dim)
        self.dropout_rate = rate("dropout_rate", dropout_rate)
        self.norm_first = bool(norm_first)
        self.activation = _activation_name(activation)
        self.use_bias = bool(use_bias)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive. Received: {epsilon=}")
        self.epsilon = float(epsilon)

    def _create_sublayers(self, attention_names):
        """Attention layers, norms and the FFN, in the order of the
        forward pass (the order of the weights)."""
        self._sublayers = len(attention_names) + 1
        self._attention_names = tuple(attention_names)
        for index, name in enumerate(attention_names, start=1):
            setattr(
                self,
                name,
                MultiHeadAttention(
                    self.hidden_dim,
                    self.num_heads,
                    dropout_rate=self.dropout_rate,
                    use_bias=self.use_bias,
                    name=name,
                ),
            )
            setattr(self, f"norm{index}", self._make_norm(index))
        self.ffn = PositionWiseFFN(
            self.mlp_dim,
            self.hidden_dim,
            activation=self.activation,
            dropout_rate=self.dropout_rate if self.norm_first else 0.0,
            name="ffn",
        )
        last = len(attention_names) + 1
        setattr(self, f"norm{last}", self._make_norm(last))

    def _make_norm(self, index):
        if self.norm_first:
            return keras.layers.LayerNormalization(
                epsilon=self.epsilon, name=f"norm{index}"
            )
        return AddNorm(
            dropout_rate=self.dropout_rate,
            epsilon=self.epsilon,
            name=f"add_norm{index}",
        )

    def _norm(self, index):
        return getattr(self, f"norm{index + 1}")

    def _check_input_shape(self, shape):
        shape = tuple(shape)
        if len(shape) != 3 or shape[-1] != self.hidden_dim:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' takes (batch, length, "
                f"{self.hidden_dim}) inputs. Received: input_shape={shape}"
            )
        return shape

    def _build_norm(self, index, shape):
        norm = self._norm(index)
        norm.build([shape, shape] if not self.norm_first else shape)

    def _zero_branch_ends(self):
        """With `zero_init_last`, zeroes the attention output projections
        and the FFN's `dense2` (called at the end of `build`)."""
        if not self.zero_init_last:
            return
        ends = [getattr(self, n).output_dense for n in self._attention_names]
        for layer in [*ends, self.ffn.dense2]:
            for variable in layer.weights:
                variable.assign(keras.ops.zeros_like(variable))

    def _residual(self, index, x, sublayer, training):
        """`x + f(norm(x))` (pre-norm) or `norm(x + dropout(f(x)))`, with
        `f` followed by `drop_path` when there is one."""

        def branch(y):
            y = sublayer(y)
            if self.drop_path is None:
                return y
            return self.drop_path(y, training=training)

        if self.norm_first:
            return x + branch(self._norm(index)(x))
        return self._norm(index)([x, branch(x)], training=training)


def _check_mask(mask, inputs, checks, name="padding_mask"):
    """`mask` after checking it is `(batch, length)` of `inputs`."""
    if mask is None:
        return None
    return checked(mask, [dim(inputs, 0), dim(inputs, 1)], name, checks)


@register()
class TransformerEncoderBlock(_TransformerBlock):
    """Self-attention and a position-wise FFN, each with a residual
    connection and layer norm (the book's `TransformerEncoderBlock`; with
    `norm_first=True`, its `ViTBlock`).

    Sublayers: `attention` (`MultiHeadAttention`), `ffn`
    (`PositionWiseFFN`), and `add_norm1`, `add_norm2` (post-norm) or
    `norm1`, `norm2` (pre-norm).

    Args:
        hidden_dim: width of the inputs, attention and outputs.
        num_heads: attention heads.
        mlp_dim: hidden width of the FFN.
        dropout_rate: on the attention weights, and in `AddNorm`
            (post-norm) or inside the FFN (pre-norm).
        norm_first: pre-norm (ViT) instead of post-norm (the book).
        activation: of the FFN.
        use_bias: biases in the attention projections.
        epsilon: of the layer norms.
        drop_path_rate: stochastic depth: probability of dropping a
            residual branch of an example in training (`drop_path`).
        zero_init_last: (pre-norm only) zero the attention's `output`
            projection and the FFN's `dense2`, so that the block starts
            as the identity.

    Call arguments:
        inputs: `(batch, length, hidden_dim)`.
        padding_mask: `(batch, length)`, True for real tokens.
        valid_lens: `(batch,)` numbers of real tokens (the book's).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.TransformerEncoderBlock(24, 8, 48)
    >>> block(tf.ones((2, 100, 24)), valid_lens=tf.constant([3, 2])).shape
    TensorShape([2, 100, 24])
    """

    def __init__(self, hidden_dim: int, num_heads: int, mlp_dim: int, **kwargs):
        super().__init__(hidden_dim, num_heads, mlp_dim, **kwargs)
        self._create_sublayers(["attention"])

    def build(self, input_shape):
        shape = self._check_input_shape(input_shape)
        self.attention.build(shape)
        self._build_norm(0, shape)
        self.ffn.build(shape)
        self._build_norm(1, shape)
        self._zero_branch_ends()

    def call(self, inputs, padding_mask=None, valid_lens=None, training=None):
        checks = []
        padding_mask = _check_mask(padding_mask, inputs, checks)

        def attend(x):
            return self.attention(
                x,
                valid_lens=valid_lens,
                attention_mask=padding_mask,
                training=training,
            )

        x = self._residual(0, inputs, attend, training)
        x = self._residual(
            1, x, lambda y: self.ffn(y, training=training), training
        )
        return with_checks(x, checks)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
