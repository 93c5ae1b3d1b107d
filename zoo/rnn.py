"""Recurrent language models, as in the book's chapters "Recurrent Neural
Networks" and "Modern Recurrent Neural Networks": the RNN (Elman, 1990,
"Finding structure in time"), GRU (Cho et al., 2014, "On the properties
of neural machine translation: encoder-decoder approaches") and LSTM
(Hochreiter & Schmidhuber, 1997, "Long short-term memory") language
models, deep and bidirectional.
"""

from __future__ import annotations

import keras

import kerasblocks as kb
from zoo._registry import register_model
from zoo._sequence import (
    SequenceModel,
    lm_test_inputs,
    positive_int,
    rate,
    token_input,
)

CELLS = {
    "rnn": kb.layers.RNNCell,
    "gru": kb.layers.GRUCell,
    "lstm": kb.layers.LSTMCell,
}


def _embed(layers, ids):
    return (layers.get("embedding") or layers["one_hot"])(ids)


@kb.register(package="zoo")
class RNNLanguageModel(SequenceModel):
    """A recurrent language model: next-token logits at every position.

    Token ids are checked (`token_check`), one-hot encoded (`one_hot`,
    the book's character-level inputs) or embedded (`embedding`), run
    through `num_layers` recurrent layers `rnn_0`, `rnn_1`, ...
    (`keras.layers.RNN` over the zoo's from-scratch cells, or
    `keras.layers.Bidirectional` of two, concatenated), with `dropout_i`
    between layers, and projected to the vocabulary by `logits`. Padding
    tokens are masked: the recurrent state skips them.

    A bidirectional model sees the future, so it cannot generate text
    (the book's point about bidirectional RNNs); use it as an encoder.

    Args:
        cell_type: "rnn", "gru" or "lstm".
        vocab_size: number of token ids (the book's character
            vocabulary has 28).
        max_length: the longest sequence accepted.
        embedding_dim: None for one-hot inputs (character level), or the
            width of a learned embedding (token level).
        units: hidden size of each recurrent layer (the book's 32).
        num_layers: stacked recurrent layers.
        bidirectional: run each layer in both directions.
        dropout_rate: dropout between recurrent layers.
        pad_id: the padding token (masked); None disables masking.

    Inputs: `token_ids` `(batch, length)` int32. Outputs: logits
    `(batch, length, vocab_size)`.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("gru_lm", vocab_size=30)
    >>> model.output_shape
    (None, None, 30)
    """

    kind = "lm"

    def __init__(
        self,
        *,
        cell_type: str = "gru",
        vocab_size: int = 28,
        max_length: int = 512,
        embedding_dim: int | None = None,
        units: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout_rate: float = 0.0,
        pad_id: int | None = 0,
        name: str = "rnn_lm",
        **kwargs,
    ):
        if cell_type not in CELLS:
            raise ValueError(
                f"cell_type must be one of {sorted(CELLS)}. Received: "
                f"{cell_type=}"
            )
        positive_int("vocab_size", vocab_size)
        positive_int("max_length", max_length)
        if embedding_dim is not None:
            positive_int("embedding_dim", embedding_dim)
        positive_int("units", units)
        positive_int("num_layers", num_layers)
        rate("dropout_rate", dropout_rate)
        if pad_id is not None and not (
            isinstance(pad_id, int) and 0 <= pad_id < vocab_size
        ):
            raise ValueError(
                f"pad_id must be None or in [0, {vocab_size}). Received: "
                f"{pad_id=}"
            )
        layers = {
            "token_check": kb.layers.CheckTokenIds(
                vocab_size, max_length=max_length, name="token_check"
            ),
            "logits": keras.layers.Dense(vocab_size, name="logits"),
        }
        if embedding_dim is None:
            layers["one_hot"] = kb.layers.OneHot(vocab_size, name="one_hot")
        else:
            layers["embedding"] = keras.layers.Embedding(
                vocab_size, embedding_dim, name="embedding"
            )
        inputs = token_input("token_ids")
        ids = layers["token_check"](inputs)
        mask = None
        if pad_id is not None:
            mask = kb.layers.PaddingMask(pad_id, name="padding_mask")(ids)
        x = _embed(layers, ids)
        for index in range(num_layers):
            if index and dropout_rate:
                x = keras.layers.Dropout(dropout_rate, name=f"dropout_{index}")(
                    x
                )
            recurrent = keras.layers.RNN(
                CELLS[cell_type](units, name="cell"),
                return_sequences=True,
                name="rnn" if bidirectional else f"rnn_{index}",
            )
            if bidirectional:
                # The backward layer is built here, not by Bidirectional:
                # Bidirectional copies the layer by serializing it, and
                # inside a Keras load (an ObjectSharingScope keyed by
                # id()) that copy can come back as a reused object with
                # go_backwards=False. Same names, same weight paths.
                backward = keras.layers.RNN(
                    CELLS[cell_type](units, name="cell"),
                    return_sequences=True,
                    go_backwards=True,
                    name="backward_rnn",
                )
                recurrent = keras.layers.Bidirectional(
                    recurrent, backward_layer=backward, name=f"rnn_{index}"
                )
            x = recurrent(x, mask=mask)
        outputs = layers["logits"](x)
        self._finish(inputs, outputs, name, kwargs)

    def _config(self, key):
        return self.get_config()[key]

    def start_decoding(self, prompt, total_length):
        if self._config("bidirectional"):
            raise ValueError(
                "A bidirectional language model sees the future and cannot "
                "generate text."
            )
        layers = self.layer_map()
        return [
            layers[f"rnn_{i}"].cell.get_initial_state(batch_size=prompt)
            for i in range(self._config("num_layers"))
        ]

    def decode_step(self, tokens, index, state):
        layers = self.layer_map()
        x = _embed(layers, tokens[:, None])[:, 0]
        new_state = []
        for i, states in enumerate(state):
            x, states = layers[f"rnn_{i}"].cell(x, states)
            new_state.append(states)
        return layers["logits"](x), new_state


def _lm(cell_type, name, overrides):
    return RNNLanguageModel(
        **{"cell_type": cell_type, "name": name, **overrides}
    )


_TEST = {
    "vocab_size": 12,
    "max_length": 16,
    "units": 8,
    "num_layers": 2,
    "embedding_dim": 6,
}


@register_model(
    task="sequence", test_inputs=lm_test_inputs, test_overrides=_TEST
)
def rnn_lm(**overrides) -> RNNLanguageModel:
    """A character-level RNN language model (the book's, 32 units)."""
    return _lm("rnn", "rnn_lm", overrides)


@register_model(
    task="sequence",
    test_inputs=lm_test_inputs,
    test_overrides={**_TEST, "bidirectional": True, "dropout_rate": 0.1},
)
def gru_lm(**overrides) -> RNNLanguageModel:
    """A character-level GRU language model (the book's, 32 units)."""
    return _lm("gru", "gru_lm", overrides)


@register_model(
    task="sequence", test_inputs=lm_test_inputs, test_overrides=_TEST
)
def lstm_lm(**overrides) -> RNNLanguageModel:
    """A character-level LSTM language model (the book's, 32 units)."""
    return _lm("lstm", "lstm_lm", overrides)
