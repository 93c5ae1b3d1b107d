"""RNN encoder-decoders, as in the book's sections "Sequence-to-Sequence
Learning for Machine Translation" (Sutskever et al., 2014, "Sequence to
sequence learning with neural networks"; Cho et al., 2014) and "The
Bahdanau Attention Mechanism" (Bahdanau et al., 2015, "Neural machine
translation by jointly learning to align and translate").
"""

from __future__ import annotations

import keras
import tensorflow as tf

import kerasblocks as kb
from zoo._registry import register_model
from zoo._sequence import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SequenceModel,
    positive_int,
    rate,
    seq2seq_test_inputs,
    token_id,
    token_input,
)


# The book's embeddings (PyTorch's default, N(0, 1)); Keras's small
# uniform default makes an untrained encoder's outputs nearly equal, and
# attention over them nearly uniform.
def _embedding_init():
    return keras.initializers.RandomNormal(stddev=1.0)


def _encode(layers, source, num_layers):
    """The encoder: `(outputs, final states per layer, source mask)`."""
    ids = layers["source_check"](source)
    mask = layers["source_mask"](ids)
    x = layers["encoder_embedding"](ids)
    states = []
    for index in range(num_layers):
        if f"encoder_dropout_{index}" in layers:
            x = layers[f"encoder_dropout_{index}"](x)
        x, state = layers[f"encoder_rnn_{index}"](x, mask=mask)
        states.append(state)
    return x, states, mask


@kb.register(package="zoo")
class Seq2Seq(SequenceModel):
    """A GRU encoder-decoder, with or without Bahdanau attention.

    Encoder: `source_check`, `source_mask` (padding), `encoder_embedding`,
    GRU layers `encoder_rnn_0` ... (`keras.layers.RNN` over
    `kerasblocks.layers.GRUCell`; padding skipped), with
    `encoder_dropout_i` between them. Decoder (`attention=False`, the
    book's `Seq2SeqDecoder`): `decoder_embedding`, the encoder's last
    final state appended to every step (`append_context`), GRU layers
    `decoder_rnn_i` started from the encoder's final states. Decoder
    (`attention=True`, the book's `Seq2SeqAttentionDecoder`): a
    `kerasblocks.layers.BahdanauDecoder` named `decoder`, attending over
    the encoder outputs with the source padding masked. Both end with
    `logits`.

    Args:
        attention: use the Bahdanau attention decoder.
        vocab_size: source vocabulary (and target, unless given).
        target_vocab_size: target vocabulary; None means `vocab_size`.
        max_length: the longest source or target accepted.
        embedding_dim: embedding width (the book's 256).
        units: GRU hidden size (the book's 256).
        num_layers: GRU layers in the encoder and decoder (the book's 2).
        dropout_rate: dropout between GRU layers (the book's 0.2).
        pad_id, bos_id, eos_id: the special target tokens (padding,
            start and end of sequence).

    Inputs: `[source_ids (batch, source_length), target_ids (batch,
    length)]`, int32, targets starting with `bos_id`. Outputs: logits
    `(batch, length, target_vocab_size)`.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("seq2seq_attention", vocab_size=20)
    >>> [tuple(t.shape) for t in model.inputs], model.output_shape
    ([(None, None), (None, None)], (None, None, 20))
    """

    kind = "seq2seq"

    def __init__(
        self,
        *,
        attention: bool = False,
        vocab_size: int = 10000,
        target_vocab_size: int | None = None,
        max_length: int = 256,
        embedding_dim: int = 256,
        units: int = 256,
        num_layers: int = 2,
        dropout_rate: float = 0.2,
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
        name: str = "seq2seq",
        **kwargs,
    ):
        positive_int("vocab_size", vocab_size)
        target_vocab = positive_int(
            "target_vocab_size", target_vocab_size or vocab_size
        )
        positive_int("max_length", max_length)
        positive_int("embedding_dim", embedding_dim)
        positive_int("units", units)
        positive_int("num_layers", num_layers)
        rate("dropout_rate", dropout_rate)
        for key, value in (("pad_id", pad_id), ("bos_id", bos_id)):
            token_id(key, value, min(vocab_size, target_vocab))
        token_id("eos_id", eos_id, target_vocab)
        layers = _make_layers(
            attention=bool(attention),
            vocab_size=vocab_size,
            target_vocab=target_vocab,
            max_length=max_length,
            embedding_dim=embedding_dim,
            units=units,
            num_layers=num_layers,
            dropout_rate=dropout_rate,
            pad_id=pad_id,
        )
        source = token_input("source_ids")
        target = token_input("target_ids")
        memory, states, source_mask = _encode(layers, source, num_layers)
        ids = layers["target_check"](target)
        target_mask = layers["target_mask"](ids)
        y = layers["decoder_embedding"](ids)
        if attention:
            y = layers["decoder"](
                [y, memory],
                initial_states=states,
                padding_mask=target_mask,
                encoder_mask=source_mask,
            )
        else:
            y = layers["append_context"]([y, states[-1]])
            for index in range(num_layers):
                if index and dropout_rate:
                    y = layers[f"decoder_dropout_{index}"](y)
                y = layers[f"decoder_rnn_{index}"](
                    y, initial_state=[states[index]], mask=target_mask
                )
        outputs = layers["logits"](y)
        self._finish([source, target], outputs, name, kwargs)

    def start_decoding(self, prompt, total_length):
        config = self.get_config()
        memory, states, mask = _encode(
            self.layer_map(), prompt, config["num_layers"]
        )
        # The book's plain decoder reads the encoder's final top state
        # at every step: kept unchanged as "context".
        return {
            "memory": memory,
            "mask": mask,
            "states": states,
            "context": states[-1],
        }

    def decode_step(self, tokens, index, state):
        layers = self.layer_map()
        x = layers["decoder_embedding"](tokens[:, None])[:, 0]
        states = state["states"]
        if "decoder" in layers:
            x, states = layers["decoder"].step(
                x, states, state["memory"], state["mask"]
            )
        else:
            x = tf.concat([x, state["context"]], axis=-1)
            new_states = []
            for i, h in enumerate(states):
                x, (h,) = layers[f"decoder_rnn_{i}"].cell(x, [h])
                new_states.append(h)
            states = new_states
        logits = layers["logits"](x)
        return logits, {**state, "states": states}


def _make_layers(
    *,
    attention,
    vocab_size,
    target_vocab,
    max_length,
    embedding_dim,
    units,
    num_layers,
    dropout_rate,
    pad_id,
):
    L = kb.layers
    layers = {
        "source_check": L.CheckTokenIds(
            vocab_size, max_length=max_length, name="source_check"
        ),
        "source_mask": L.PaddingMask(pad_id, name="source_mask"),
        "encoder_embedding": keras.layers.Embedding(
            vocab_size,
            embedding_dim,
            embeddings_initializer=_embedding_init(),
            name="encoder_embedding",
        ),
        "target_check": L.CheckTokenIds(
            target_vocab, max_length=max_length, name="target_check"
        ),
        "target_mask": L.PaddingMask(pad_id, name="target_mask"),
        "decoder_embedding": keras.layers.Embedding(
            target_vocab,
            embedding_dim,
            embeddings_initializer=_embedding_init(),
            name="decoder_embedding",
        ),
        "logits": keras.layers.Dense(target_vocab, name="logits"),
    }
    for side in ("encoder", "decoder"):
        if side == "decoder" and attention:
            break
        for index in range(num_layers):
            if index and dropout_rate:
                name = f"{side}_dropout_{index}"
                layers[name] = keras.layers.Dropout(dropout_rate, name=name)
            layers[f"{side}_rnn_{index}"] = keras.layers.RNN(
                L.GRUCell(units, name="cell"),
                return_sequences=True,
                return_state=side == "encoder",
                name=f"{side}_rnn_{index}",
            )
    if attention:
        layers["decoder"] = L.BahdanauDecoder(
            units, num_layers, dropout_rate=dropout_rate, name="decoder"
        )
    else:
        layers["append_context"] = L.AppendContext(name="append_context")
    return layers


_TEST = {
    "vocab_size": 12,
    "target_vocab_size": 11,
    "max_length": 16,
    "embedding_dim": 6,
    "units": 8,
    "num_layers": 2,
    "dropout_rate": 0.1,
}


@register_model(
    task="sequence", test_inputs=seq2seq_test_inputs, test_overrides=_TEST
)
def seq2seq_gru(**overrides) -> Seq2Seq:
    """The book's GRU encoder-decoder (2 layers, 256 units)."""
    return Seq2Seq(**{"name": "seq2seq_gru", **overrides})


@register_model(
    task="sequence", test_inputs=seq2seq_test_inputs, test_overrides=_TEST
)
def seq2seq_attention(**overrides) -> Seq2Seq:
    """The book's GRU encoder-decoder with Bahdanau attention."""
    return Seq2Seq(
        **{"attention": True, "name": "seq2seq_attention", **overrides}
    )
