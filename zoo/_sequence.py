"""What the zoo's sequence models share.

A `SequenceModel` is a Keras Functional model whose config is its
constructor call (like `ImageModel`). Its inputs are integer token ids
of dynamic batch and length, `(None, None)` int32, named `token_ids`
(language models, classifiers) or `source_ids` and `target_ids`
(encoder-decoders, which take `[source_ids, target_ids]` with the
target shifted right, starting with `bos_id`). Padding is `pad_id`
(default 0); every model turns it into a padding mask itself, so masks
survive saving, export and serving with no extra input. Language models
and encoder-decoders output logits, `(batch, length, vocab_size)`.

Models that generate text implement the decoding protocol `zoo.generate`
uses: `start_decoding` (an initial state: recurrent states, or key/value
caches) and `decode_step` (one token in, next-token logits out).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasblocks import _keras_compat
from kerasblocks._config import CapturedConfig
from kerasblocks._validation import positive_int as positive_int
from kerasblocks._validation import rate as rate

# Registered test inputs use these token ids.
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


def token_id(name: str, value, vocab_size: int, *, optional=False):
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value < vocab_size
    ):
        raise ValueError(
            f"{name} must be a token id in [0, {vocab_size}). Received: "
            f"{name}={value!r}"
        )
    return value


def token_input(name: str) -> keras.KerasTensor:
    """Token ids with dynamic batch and length."""
    return keras.Input(shape=(None,), dtype="int32", name=name)


class SequenceModel(CapturedConfig, keras.Model):
    """Base class of the zoo's sequence models.

    A subclass builds its graph in `__init__` and calls `self._finish(
    inputs, outputs, name, kwargs)`. Generating subclasses set `kind`
    ("lm" or "seq2seq") and implement `start_decoding` and
    `decode_step`.
    """

    kind = "classifier"

    def _finish(self, inputs, outputs, name, kwargs):
        # Keras's Functional constructor ignores unknown keywords, which
        # would let a misspelt argument pass silently.
        unknown = sorted(set(kwargs) - {"trainable", "dtype"})
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got an unexpected keyword argument "
                f"{unknown[0]!r}"
            )
        # Through super(), not keras.Model.__init__ (see ImageModel).
        super(SequenceModel, self).__init__(
            inputs=inputs,
            outputs=outputs,
            name=name,
            **self._base_kwargs(kwargs),
        )

    def check_inputs(self, inputs) -> None:
        """Runs the model's token-id checks eagerly on concrete inputs.

        Inside an XLA cluster the in-graph assertions are dropped (XLA's
        gather then clamps an out-of-range id silently), so the compiled
        functions of `kerasblocks.compile` call this before running XLA.

        Raises:
            ValueError: an id out of range, or a sequence too long.
        """
        from kerasblocks.layers.tokens import CheckTokenIds

        values = tf.nest.flatten(inputs)
        if len(values) != len(self.inputs):
            return  # the compiled function's own spec check reports it
        by_input = {id(t): v for t, v in zip(self.inputs, values, strict=True)}
        for layer in _keras_compat.flatten_layers(self, include_self=False):
            if not isinstance(layer, CheckTokenIds):
                continue
            for node in _keras_compat.inbound_nodes(layer):
                source = node.input_tensors[0] if node.input_tensors else None
                if id(source) in by_input:
                    layer(tf.convert_to_tensor(by_input[id(source)]))

    def layer_map(self) -> dict[str, keras.layers.Layer]:
        """The model's layers by name."""
        return {layer.name: layer for layer in self.layers}

    @property
    def can_generate(self) -> bool:
        return self.kind in ("lm", "seq2seq")

    def start_decoding(self, prompt: Any, total_length: int):
        """The decoding state for `total_length` positions.

        Args:
            prompt: the batch size (language models) or the source ids
                (encoder-decoders).
            total_length: positions the decoder will see.
        """
        raise TypeError(f"{type(self).__name__} does not generate text.")

    def decode_step(self, tokens, index, state):
        """`(next-token logits (batch, vocab), new state)` for `tokens`
        `(batch,)` at position `index`."""
        raise TypeError(f"{type(self).__name__} does not generate text.")


def _ids(rng, shape, low, high, pad_from=None):
    ids = rng.integers(low, high, shape).astype(np.int32)
    if pad_from is not None:
        ids[-1, pad_from:] = PAD_ID
    return ids


def lm_test_inputs(model) -> tf.Tensor:
    """Two sequences of 6 tokens, the second padded after 4."""
    rng = np.random.default_rng(0)
    vocab = model.get_config()["vocab_size"]
    return tf.constant(_ids(rng, (2, 6), 1, vocab, pad_from=4))


def seq2seq_test_inputs(model) -> list[tf.Tensor]:
    """Sources of 5 tokens and targets of 6 (starting with BOS), both
    with a padded second example."""
    rng = np.random.default_rng(0)
    config = model.get_config()
    source = _ids(rng, (2, 5), 3, config["vocab_size"], pad_from=3)
    target = _ids(
        rng,
        (2, 6),
        3,
        config["target_vocab_size"] or config["vocab_size"],
        pad_from=4,
    )
    target[:, 0] = config["bos_id"]
    return [tf.constant(source), tf.constant(target)]
