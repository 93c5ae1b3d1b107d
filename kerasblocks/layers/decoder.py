"""The Transformer decoder block (the book's `TransformerDecoderBlock`),
with a key/value cache for incremental decoding. It shares the encoder
block's sublayers, norms and training options
(`kerasblocks.layers.transformer`).
"""

from __future__ import annotations

from kerasblocks._registry import register
from kerasblocks.layers._checks import with_checks
from kerasblocks.layers.transformer import _check_mask, _TransformerBlock


@register()
class TransformerDecoderBlock(_TransformerBlock):
    """Causal self-attention, cross-attention to the encoder's outputs
    and a position-wise FFN, each with a residual connection and layer
    norm (the book's `TransformerDecoderBlock`). With
    `use_cross_attention=False` it is a decoder-only (GPT-style) block.

    Incremental decoding: `cache` holds the projected keys and values of
    the self-attention, `(batch, 2, max_length, hidden_dim)` (from
    `init_cache`); give the new positions as inputs and their first
    position as `cache_index`, and the block returns `(outputs,
    new_cache)`. Feeding a sequence one position at a time this way
    gives the same outputs as the whole sequence at once.

    Sublayers: `self_attention`, `cross_attention` (when used), `ffn`,
    and `add_norm1..3` (post-norm) or `norm1..3` (pre-norm).

    Args:
        hidden_dim, num_heads, mlp_dim, dropout_rate, norm_first,
            activation, use_bias, epsilon, drop_path_rate,
            zero_init_last: as `TransformerEncoderBlock` (zero_init_last
            also zeroes `cross_attention`'s output projection).
        use_cross_attention: attend to encoder outputs.

    Call arguments:
        inputs: `(batch, length, hidden_dim)`, or `[inputs,
            encoder_outputs]`.
        encoder_outputs: `(batch, source_length, hidden_dim)`.
        padding_mask: `(batch, length)` (with a cache: `(batch,
            max_length)`), True for real tokens.
        encoder_mask: `(batch, source_length)`, True for real tokens.
        encoder_valid_lens: `(batch,)` (the book's `enc_valid_lens`).
        cache, cache_index: incremental decoding (see above).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.TransformerDecoderBlock(24, 8, 48)
    >>> x, memory = tf.ones((2, 5, 24)), tf.ones((2, 7, 24))
    >>> block(x, memory).shape
    TensorShape([2, 5, 24])
    >>> cache = block.init_cache(2, 5)
    >>> y, cache = block(x[:, :1], memory, cache=cache, cache_index=0)
    >>> y.shape, cache.shape
    (TensorShape([2, 1, 24]), TensorShape([2, 2, 5, 24]))
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        use_cross_attention: bool = True,
        **kwargs,
    ):
        super().__init__(hidden_dim, num_heads, mlp_dim, **kwargs)
        self.use_cross_attention = bool(use_cross_attention)
        self.cross_attention = None
        self._create_sublayers(
            ["self_attention", "cross_attention"]
            if self.use_cross_attention
            else ["self_attention"]
        )

    def init_cache(self, batch_size, max_length: int, dtype="float32"):
        """An empty self-attention cache for `max_length` positions."""
        return self.self_attention.init_cache(batch_size, max_length, dtype)

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple)
        ):
            input_shape = input_shape[0]
        shape = self._check_input_shape(input_shape)
        self.self_attention.build(shape)
        self._build_norm(0, shape)
        if self.cross_attention is not None:
            memory = (shape[0], None, self.hidden_dim)
            self.cross_attention.build([shape, memory, memory])
            self._build_norm(1, shape)
        self.ffn.build(shape)
        self._build_norm(self._sublayers - 1, shape)
        self._zero_branch_ends()

    def call(
        self,
        inputs,
        encoder_outputs=None,
        padding_mask=None,
        encoder_mask=None,
        encoder_valid_lens=None,
        *,
        cache=None,
        cache_index=None,
        training=None,
    ):
        if isinstance(inputs, (list, tuple)):
            inputs, encoder_outputs = inputs
        if self.use_cross_attention and encoder_outputs is None:
            raise ValueError(
                f"TransformerDecoderBlock '{self.name}' needs encoder_outputs "
                "(or use_cross_attention=False)."
            )
        if not self.use_cross_attention and encoder_outputs is not None:
            raise ValueError(
                f"TransformerDecoderBlock '{self.name}' has no cross-attention"
                "; do not pass encoder_outputs."
            )
        checks = []
        if padding_mask is not None and cache is None:
            padding_mask = _check_mask(padding_mask, inputs, checks)
        new_cache = []

        def self_attend(x):
            if cache is None:
                return self.self_attention(
                    x,
                    attention_mask=padding_mask,
                    use_causal_mask=True,
                    training=training,
                )
            outputs, updated = self.self_attention(
                x,
                attention_mask=padding_mask,
                cache=cache,
                cache_index=cache_index,
                training=training,
            )
            new_cache.append(updated)
            return outputs

        x = self._residual(0, inputs, self_attend, training)
        if self.cross_attention is not None:
            if encoder_outputs.shape[-1] != self.hidden_dim:
                raise ValueError(
                    f"encoder_outputs must have {self.hidden_dim} features. "
                    f"Received: shape={tuple(encoder_outputs.shape)}"
                )
            encoder_mask = _check_mask(
                encoder_mask, encoder_outputs, checks, "encoder_mask"
            )

            def cross_attend(y):
                return self.cross_attention(
                    [y, encoder_outputs, encoder_outputs],
                    valid_lens=encoder_valid_lens,
                    attention_mask=encoder_mask,
                    training=training,
                )

            x = self._residual(1, x, cross_attend, training)
        x = self._residual(
            self._sublayers - 1,
            x,
            lambda y: self.ffn(y, training=training),
            training,
        )
        x = with_checks(x, checks)
        if cache is not None:
            return x, new_cache[0]
        return x
