"""A BERT-style Transformer encoder with a classification head, as in
the book's "Bidirectional Encoder Representations from Transformers
(BERT)". Part of the "transformer" family: registered in
`zoo.transformer` (`transformer_encoder_classifier`), where the papers
are cited.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._sequence import (
    PAD_ID,
    SequenceModel,
    positive_int,
    rate,
    token_id,
    token_input,
)
from zoo._transformer import L, check_sizes


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
        check_sizes(
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
