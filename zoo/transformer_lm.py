"""A decoder-only (GPT-style) causal Transformer language model, as in
the book's "Large-Scale Pretraining with Transformers". Part of the
"transformer" family: registered in `zoo.transformer`
(`transformer_lm`), where the papers are cited.
"""

from __future__ import annotations

import keras

import kerasblocks as kb
from zoo._sequence import PAD_ID, SequenceModel, rate, token_id, token_input
from zoo._transformer import L, check_sizes, embed, final_norm, stack_layers


@kb.register(package="zoo")
class TransformerLM(SequenceModel):
    """A decoder-only (GPT-style) causal Transformer language model.

    `token_check`, `padding_mask`, `embedding` scaled by
    `sqrt(hidden_dim)` (`scale`) plus `position` (sinusoidal), blocks
    `block_i` (`TransformerDecoderBlock(use_cross_attention=False)`:
    causal self-attention and an FFN), `final_norm` (pre-norm only) and
    `logits`. Position i sees only positions up to i, so generation with
    the blocks' key/value caches gives the same tokens as recomputing
    the whole prefix.

    Args:
        vocab_size: number of token ids.
        max_length: the longest sequence accepted.
        hidden_dim, num_heads, mlp_dim, num_layers: sizes.
        dropout_rate: dropout on inputs, attention and residual branches.
        norm_first: pre-norm (GPT-2) instead of post-norm (the book's).
        activation: of the FFNs.
        pad_id: the padding token (masked as a key).

    Inputs: `token_ids` `(batch, length)` int32. Outputs: logits
    `(batch, length, vocab_size)`.

    Example:

    >>> import zoo
    >>> zoo.create_model("transformer_lm", vocab_size=50).output_shape
    (None, None, 50)
    """

    kind = "lm"

    def __init__(
        self,
        *,
        vocab_size: int = 10000,
        max_length: int = 512,
        hidden_dim: int = 256,
        num_heads: int = 4,
        mlp_dim: int = 1024,
        num_layers: int = 2,
        dropout_rate: float = 0.1,
        norm_first: bool = True,
        activation: str = "gelu",
        pad_id: int = PAD_ID,
        name: str = "transformer_lm",
        **kwargs,
    ):
        check_sizes(
            vocab_size, max_length, hidden_dim, num_heads, mlp_dim, num_layers
        )
        rate("dropout_rate", dropout_rate)
        token_id("pad_id", pad_id, vocab_size)
        layers = {
            **stack_layers(
                L.TransformerDecoderBlock,
                "",
                check="token_check",
                mask="padding_mask",
                norm="final_norm",
                vocab_size=vocab_size,
                max_length=max_length,
                hidden_dim=hidden_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                num_layers=num_layers,
                pad_id=pad_id,
                dropout_rate=dropout_rate,
                norm_first=norm_first,
                activation=activation,
                use_cross_attention=False,
            ),
            "logits": keras.layers.Dense(vocab_size, name="logits"),
        }
        inputs = token_input("token_ids")
        ids = layers["token_check"](inputs)
        mask = layers["padding_mask"](ids)
        x = embed(layers, "", ids)
        for index in range(num_layers):
            x = layers[f"block_{index}"](x, padding_mask=mask)
        x = final_norm(layers, "final_norm", x)
        outputs = layers["logits"](x)
        self._finish(inputs, outputs, name, kwargs)

    def start_decoding(self, prompt, total_length):
        layers = self.layer_map()
        return [
            layers[f"block_{i}"].init_cache(prompt, total_length)
            for i in range(self.get_config()["num_layers"])
        ]

    def decode_step(self, tokens, index, state):
        layers = self.layer_map()
        x = embed(layers, "", tokens[:, None], start_index=index)
        caches = []
        for i, cache in enumerate(state):
            x, cache = layers[f"block_{i}"](x, cache=cache, cache_index=index)
            caches.append(cache)
        x = final_norm(layers, "final_norm", x)
        return layers["logits"](x)[:, 0], caches
