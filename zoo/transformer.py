"""Transformers (Vaswani et al., 2017, "Attention is all you need"), as
in the book's section "The Transformer Architecture": the encoder-decoder
(here), a decoder-only causal language model (as in the book's
"Large-Scale Pretraining with Transformers", GPT-style;
`zoo.transformer_lm`) and a BERT-style encoder classifier (Devlin et al.,
2019; `zoo.transformer_classifier`). The three are registered here, as
the "transformer" family; their shared pieces are in `zoo._transformer`.
"""

from __future__ import annotations

import keras

import kerasblocks as kb
from zoo._registry import register_model
from zoo._sequence import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SequenceModel,
    lm_test_inputs,
    positive_int,
    rate,
    seq2seq_test_inputs,
    token_id,
    token_input,
)
from zoo._transformer import L as L
from zoo._transformer import check_sizes as _check_sizes
from zoo._transformer import embed as _embed
from zoo._transformer import final_norm as _final_norm
from zoo._transformer import stack_layers as _stack_layers
from zoo.transformer_classifier import (
    TransformerEncoderClassifier as TransformerEncoderClassifier,
)
from zoo.transformer_lm import TransformerLM as TransformerLM


@kb.register(package="zoo")
class Transformer(SequenceModel):
    """The book's Transformer encoder-decoder.

    Encoder: `source_check`, `source_mask`, `encoder_embedding` scaled by
    `sqrt(hidden_dim)` (`encoder_scale`) plus `encoder_position`
    (sinusoidal), then `encoder_block_i` (`TransformerEncoderBlock`s
    with the source padding masked). Decoder: the same for targets
    (`decoder_*`), `decoder_block_i` (`TransformerDecoderBlock`s: causal
    self-attention, cross-attention to the encoder), and `logits`. With
    `norm_first=True` the stacks are pre-norm and end with
    `encoder_norm` / `decoder_norm`.

    Args:
        vocab_size: source vocabulary (and target, unless given).
        target_vocab_size: target vocabulary; None means `vocab_size`.
        max_length: the longest source or target accepted.
        hidden_dim: model width (the book's `num_hiddens`, 256).
        num_heads: attention heads (the book's 4).
        mlp_dim: FFN hidden width (the book's `ffn_num_hiddens`, 64).
        num_layers: blocks in the encoder and decoder (the book's 2).
        dropout_rate: the book's 0.2.
        norm_first: pre-norm blocks instead of the book's post-norm.
        activation: of the FFNs.
        pad_id, bos_id, eos_id: special tokens.

    Inputs: `[source_ids, target_ids]`, `(batch, length)` int32, targets
    starting with `bos_id`. Outputs: logits `(batch, length,
    target_vocab_size)`.

    Example:

    >>> import zoo
    >>> zoo.create_model("transformer", vocab_size=50).output_shape
    (None, None, 50)
    """

    kind = "seq2seq"

    def __init__(
        self,
        *,
        vocab_size: int = 10000,
        target_vocab_size: int | None = None,
        max_length: int = 256,
        hidden_dim: int = 256,
        num_heads: int = 4,
        mlp_dim: int = 64,
        num_layers: int = 2,
        dropout_rate: float = 0.2,
        norm_first: bool = False,
        activation: str = "relu",
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
        name: str = "transformer",
        **kwargs,
    ):
        _check_sizes(
            vocab_size, max_length, hidden_dim, num_heads, mlp_dim, num_layers
        )
        target_vocab = positive_int(
            "target_vocab_size", target_vocab_size or vocab_size
        )
        rate("dropout_rate", dropout_rate)
        for key, value in (("pad_id", pad_id), ("bos_id", bos_id)):
            token_id(key, value, min(vocab_size, target_vocab))
        token_id("eos_id", eos_id, target_vocab)
        stack = {
            "max_length": max_length,
            "hidden_dim": hidden_dim,
            "num_heads": num_heads,
            "mlp_dim": mlp_dim,
            "num_layers": num_layers,
            "pad_id": pad_id,
            "dropout_rate": dropout_rate,
            "norm_first": norm_first,
            "activation": activation,
        }
        layers = {
            **_stack_layers(
                L.TransformerEncoderBlock,
                "encoder_",
                check="source_check",
                mask="source_mask",
                norm="encoder_norm",
                vocab_size=vocab_size,
                **stack,
            ),
            **_stack_layers(
                L.TransformerDecoderBlock,
                "decoder_",
                check="target_check",
                mask="target_mask",
                norm="decoder_norm",
                vocab_size=target_vocab,
                **stack,
            ),
            "logits": keras.layers.Dense(target_vocab, name="logits"),
        }
        source = token_input("source_ids")
        target = token_input("target_ids")
        memory, source_mask = _encode(layers, source, num_layers)
        outputs = _decode(layers, target, memory, source_mask, num_layers)
        self._finish([source, target], outputs, name, kwargs)

    def start_decoding(self, prompt, total_length):
        layers = self.layer_map()
        num_layers = self.get_config()["num_layers"]
        memory, mask = _encode(layers, prompt, num_layers)
        batch = keras.ops.shape(prompt)[0]
        caches = [
            layers[f"decoder_block_{i}"].init_cache(batch, total_length)
            for i in range(num_layers)
        ]
        return {"memory": memory, "mask": mask, "caches": caches}

    def decode_step(self, tokens, index, state):
        layers = self.layer_map()
        y = _embed(layers, "decoder_", tokens[:, None], start_index=index)
        caches = []
        for i, cache in enumerate(state["caches"]):
            y, cache = layers[f"decoder_block_{i}"](
                y,
                state["memory"],
                encoder_mask=state["mask"],
                cache=cache,
                cache_index=index,
            )
            caches.append(cache)
        y = _final_norm(layers, "decoder_norm", y)
        return layers["logits"](y)[:, 0], {**state, "caches": caches}


def _encode(layers, source, num_layers):
    ids = layers["source_check"](source)
    mask = layers["source_mask"](ids)
    x = _embed(layers, "encoder_", ids)
    for index in range(num_layers):
        x = layers[f"encoder_block_{index}"](x, padding_mask=mask)
    return _final_norm(layers, "encoder_norm", x), mask


_TEST = {
    "vocab_size": 12,
    "max_length": 16,
    "hidden_dim": 8,
    "num_heads": 2,
    "mlp_dim": 16,
    "num_layers": 2,
}


@register_model(
    task="sequence",
    test_inputs=seq2seq_test_inputs,
    test_overrides={**_TEST, "target_vocab_size": 11, "num_layers": 1},
)
def transformer(**overrides) -> Transformer:
    """The book's Transformer encoder-decoder (2 + 2 blocks, width 256)."""
    return Transformer(**overrides)


@register_model(
    task="sequence",
    test_inputs=lm_test_inputs,
    test_overrides=_TEST,
)
def transformer_lm(**overrides) -> TransformerLM:
    """A decoder-only causal Transformer language model (pre-norm)."""
    return TransformerLM(**overrides)


@register_model(
    task="sequence",
    test_inputs=lm_test_inputs,
    test_overrides={**_TEST, "num_classes": 3},
)
def transformer_encoder_classifier(**overrides) -> TransformerEncoderClassifier:
    """A BERT-style encoder (the book's small BERT sizes) with a
    classification head."""
    return TransformerEncoderClassifier(**overrides)


def _decode(layers, target, memory, source_mask, num_layers):
    """The logits for `target` (teacher forcing), attending to the
    encoder's `memory`."""
    ids = layers["target_check"](target)
    mask = layers["target_mask"](ids)
    y = _embed(layers, "decoder_", ids)
    for index in range(num_layers):
        y = layers[f"decoder_block_{index}"](
            y, memory, padding_mask=mask, encoder_mask=source_mask
        )
    return layers["logits"](_final_norm(layers, "decoder_norm", y))
