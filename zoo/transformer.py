"""Transformers (Vaswani et al., 2017, "Attention is all you need"), as
in the book's section "The Transformer Architecture": the encoder-decoder,
a decoder-only causal language model (as in the book's "Large-Scale
Pretraining with Transformers", GPT-style) and a BERT-style encoder
classifier (Devlin et al., 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable

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

L = kb.layers


def _check_sizes(
    vocab_size, max_length, hidden_dim, num_heads, mlp_dim, layers
):
    positive_int("vocab_size", vocab_size)
    positive_int("max_length", max_length)
    positive_int("hidden_dim", hidden_dim)
    positive_int("num_heads", num_heads)
    positive_int("mlp_dim", mlp_dim)
    positive_int("num_layers", layers)
    if hidden_dim % num_heads:
        raise ValueError(
            "num_heads must divide hidden_dim. Received: "
            f"{hidden_dim=}, {num_heads=}"
        )


def _embedding_layers(prefix, vocab_size, max_length, hidden_dim, dropout_rate):
    """The book's input: `embedding * sqrt(hidden_dim)` plus the
    sinusoidal encoding, then dropout."""
    return {
        f"{prefix}embedding": keras.layers.Embedding(
            vocab_size, hidden_dim, name=f"{prefix}embedding"
        ),
        f"{prefix}scale": keras.layers.Rescaling(
            math.sqrt(hidden_dim), name=f"{prefix}scale"
        ),
        f"{prefix}position": L.PositionalEncoding(
            max_length=max_length,
            dropout_rate=dropout_rate,
            name=f"{prefix}position",
        ),
    }


def _embed(layers, prefix, ids, start_index=0):
    x = layers[f"{prefix}embedding"](ids)
    x = layers[f"{prefix}scale"](x)
    return layers[f"{prefix}position"](x, start_index=start_index)


def _blocks(cls, prefix, count, hidden_dim, num_heads, mlp_dim, **kwargs):
    return {
        f"{prefix}block_{i}": cls(
            hidden_dim, num_heads, mlp_dim, name=f"{prefix}block_{i}", **kwargs
        )
        for i in range(count)
    }


def _final_norm(layers, name, x):
    return layers[name](x) if name in layers else x


def _norm_layer(name, norm_first, epsilon=1e-5):
    if not norm_first:
        return {}
    return {name: keras.layers.LayerNormalization(epsilon=epsilon, name=name)}


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
        sizes = (hidden_dim, num_heads, mlp_dim)
        options = {
            "dropout_rate": dropout_rate,
            "norm_first": norm_first,
            "activation": activation,
        }
        layers = {
            "source_check": L.CheckTokenIds(
                vocab_size, max_length=max_length, name="source_check"
            ),
            "source_mask": L.PaddingMask(pad_id, name="source_mask"),
            **_embedding_layers(
                "encoder_", vocab_size, max_length, hidden_dim, dropout_rate
            ),
            **_blocks(
                L.TransformerEncoderBlock,
                "encoder_",
                num_layers,
                *sizes,
                **options,
            ),
            **_norm_layer("encoder_norm", norm_first),
            "target_check": L.CheckTokenIds(
                target_vocab, max_length=max_length, name="target_check"
            ),
            "target_mask": L.PaddingMask(pad_id, name="target_mask"),
            **_embedding_layers(
                "decoder_", target_vocab, max_length, hidden_dim, dropout_rate
            ),
            **_blocks(
                L.TransformerDecoderBlock,
                "decoder_",
                num_layers,
                *sizes,
                **options,
            ),
            **_norm_layer("decoder_norm", norm_first),
            "logits": keras.layers.Dense(target_vocab, name="logits"),
        }
        source = token_input("source_ids")
        target = token_input("target_ids")
        memory, source_mask = _encode(layers, source, num_layers)
        ids = layers["target_check"](target)
        target_mask = layers["target_mask"](ids)
        y = _embed(layers, "decoder_", ids)
        for index in range(num_layers):
            y = layers[f"decoder_block_{index}"](
                y,
                memory,
                padding_mask=target_mask,
                encoder_mask=source_mask,
            )
        y = _final_norm(layers, "decoder_norm", y)
        outputs = layers["logits"](y)
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
        _check_sizes(
            vocab_size, max_length, hidden_dim, num_heads, mlp_dim, num_layers
        )
        rate("dropout_rate", dropout_rate)
        token_id("pad_id", pad_id, vocab_size)
        layers = {
            "token_check": L.CheckTokenIds(
                vocab_size, max_length=max_length, name="token_check"
            ),
            "padding_mask": L.PaddingMask(pad_id, name="padding_mask"),
            **_embedding_layers(
                "", vocab_size, max_length, hidden_dim, dropout_rate
            ),
            **_blocks(
                L.TransformerDecoderBlock,
                "",
                num_layers,
                hidden_dim,
                num_heads,
                mlp_dim,
                dropout_rate=dropout_rate,
                norm_first=norm_first,
                activation=activation,
                use_cross_attention=False,
            ),
            **_norm_layer("final_norm", norm_first),
            "logits": keras.layers.Dense(vocab_size, name="logits"),
        }
        inputs = token_input("token_ids")
        ids = layers["token_check"](inputs)
        mask = layers["padding_mask"](ids)
        x = _embed(layers, "", ids)
        for index in range(num_layers):
            x = layers[f"block_{index}"](x, padding_mask=mask)
        x = _final_norm(layers, "final_norm", x)
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
        x = _embed(layers, "", tokens[:, None], start_index=index)
        caches = []
        for i, cache in enumerate(state):
            x, cache = layers[f"block_{i}"](x, cache=cache, cache_index=index)
            caches.append(cache)
        x = _final_norm(layers, "final_norm", x)
        return layers["logits"](x)[:, 0], caches


@kb.register(package="zoo")
class TransformerEncoderClassifier(SequenceModel):
    """A BERT-style Transformer encoder with a classification head.

    `token_check`, `padding_mask` (with the class token always real),
    `embedding`, a learned `class_token` put in front, learned positions
    (`position_embedding`, `max_length + 1` of them), `embedding_dropout`,
    `block_i` (`TransformerEncoderBlock`s with GELU; post-norm like BERT
    by default), `final_norm` (pre-norm only), the class token's output
    (`class_token_output`) and `predictions`. Padding never reaches the
    class token's result, and an all-padding sequence still has the
    class token to attend to.

    Args:
        vocab_size: number of token ids.
        max_length: the longest sequence accepted (class token not
            counted).
        num_classes: classes of the classifier.
        hidden_dim, num_heads, mlp_dim, num_layers: sizes (the book's
            small BERT: 128, 2, 256, 2).
        dropout_rate: dropout (the book's 0.2).
        norm_first: pre-norm instead of BERT's post-norm.
        activation: of the FFNs.
        classifier_activation: of `predictions` ("softmax"; None for
            logits).
        pad_id: the padding token.

    Inputs: `token_ids` `(batch, length)` int32. Outputs: `(batch,
    num_classes)`.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("transformer_encoder_classifier",
    ...                          num_classes=3)
    >>> model.output_shape
    (None, 3)
    """

    def __init__(
        self,
        *,
        vocab_size: int = 10000,
        max_length: int = 512,
        num_classes: int = 2,
        hidden_dim: int = 128,
        num_heads: int = 2,
        mlp_dim: int = 256,
        num_layers: int = 2,
        dropout_rate: float = 0.2,
        norm_first: bool = False,
        activation: str = "gelu",
        classifier_activation: str | Callable | None = "softmax",
        pad_id: int = PAD_ID,
        name: str = "transformer_encoder_classifier",
        **kwargs,
    ):
        _check_sizes(
            vocab_size, max_length, hidden_dim, num_heads, mlp_dim, num_layers
        )
        positive_int("num_classes", num_classes)
        rate("dropout_rate", dropout_rate)
        token_id("pad_id", pad_id, vocab_size)
        inputs = token_input("token_ids")
        ids = L.CheckTokenIds(
            vocab_size, max_length=max_length, name="token_check"
        )(inputs)
        mask = L.PaddingMask(pad_id, num_prefix_tokens=1, name="padding_mask")(
            ids
        )
        x = keras.layers.Embedding(vocab_size, hidden_dim, name="embedding")(
            ids
        )
        x = L.ClassToken(name="class_token")(x)
        x = L.LearnedPositionEmbedding(
            max_length + 1, name="position_embedding"
        )(x)
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name="embedding_dropout")(x)
        for index in range(num_layers):
            x = L.TransformerEncoderBlock(
                hidden_dim,
                num_heads,
                mlp_dim,
                dropout_rate=dropout_rate,
                norm_first=norm_first,
                activation=activation,
                use_bias=True,
                name=f"block_{index}",
            )(x, padding_mask=mask)
        if norm_first:
            x = keras.layers.LayerNormalization(
                epsilon=1e-5, name="final_norm"
            )(x)
        x = L.SelectToken(0, name="class_token_output")(x)
        outputs = keras.layers.Dense(
            num_classes, activation=classifier_activation, name="predictions"
        )(x)
        self._finish(inputs, outputs, name, kwargs)


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
