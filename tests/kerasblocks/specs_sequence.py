"""Conformance specs for the sequence blocks: attention, Transformer
blocks, position and token layers, recurrent cells."""

import kerasblocks as kb
from kerasblocks.testing import BlockSpec

L = kb.layers

# A cell called without states starts from zeros, so one step gives its
# recurrent kernel no gradient; test_recurrent.py trains the cells over
# whole sequences.
_ZERO_STATE = ("*recurrent_kernel",)

SPECS = {
    "kerasblocks>MaskedSoftmax": BlockSpec(
        lambda: L.MaskedSoftmax(), (2, 3, 4), (2, 3, 4)
    ),
    "kerasblocks>DotProductAttention": BlockSpec(
        lambda: L.DotProductAttention(0.1),
        [(2, 3, 4), (2, 5, 4), (2, 5, 6)],
        (2, 3, 6),
    ),
    "kerasblocks>AdditiveAttention": BlockSpec(
        lambda: L.AdditiveAttention(6),
        [(2, 3, 5), (2, 4, 7), (2, 4, 6)],
        (2, 3, 6),
    ),
    "kerasblocks>MultiHeadAttention": BlockSpec(
        lambda: L.MultiHeadAttention(8, 2, use_bias=True),
        (2, 5, 8),
        (2, 5, 8),
    ),
    "kerasblocks>PositionalEncoding": BlockSpec(
        lambda: L.PositionalEncoding(max_length=10, dropout_rate=0.1),
        (2, 5, 8),
        (2, 5, 8),
    ),
    "kerasblocks>LearnedPositionEmbedding": BlockSpec(
        lambda: L.LearnedPositionEmbedding(6), (2, 5, 8), (2, 5, 8)
    ),
    "kerasblocks>ClassToken": BlockSpec(
        lambda: L.ClassToken(), (2, 5, 8), (2, 6, 8)
    ),
    "kerasblocks>SelectToken": BlockSpec(
        lambda: L.SelectToken(1), (2, 5, 8), (2, 8)
    ),
    "kerasblocks>PatchEmbedding": BlockSpec(
        lambda: L.PatchEmbedding(4, 8), (2, 8, 8, 3), (2, 4, 8)
    ),
    "kerasblocks>PatchGrid": BlockSpec(
        lambda: L.PatchGrid(2, 2), (2, 5, 8), (2, 2, 2, 8)
    ),
    "kerasblocks>PositionWiseFFN": BlockSpec(
        lambda: L.PositionWiseFFN(16, 6), (2, 5, 8), (2, 5, 6)
    ),
    "kerasblocks>AddNorm": BlockSpec(
        lambda: L.AddNorm(dropout_rate=0.1),
        [(2, 5, 8), (2, 5, 8)],
        (2, 5, 8),
    ),
    "kerasblocks>TransformerEncoderBlock": BlockSpec(
        lambda: L.TransformerEncoderBlock(8, 2, 16, dropout_rate=0.1),
        (2, 5, 8),
        (2, 5, 8),
    ),
    "kerasblocks>TransformerDecoderBlock": BlockSpec(
        lambda: L.TransformerDecoderBlock(8, 2, 16),
        [(2, 5, 8), (2, 7, 8)],
        (2, 5, 8),
    ),
    "kerasblocks>RNNCell": BlockSpec(
        lambda: L.RNNCell(4),
        (3, 5),
        ((3, 4), [(3, 4)]),
        allow_no_gradient=_ZERO_STATE,
    ),
    "kerasblocks>GRUCell": BlockSpec(
        lambda: L.GRUCell(4),
        (3, 5),
        ((3, 4), [(3, 4)]),
        allow_no_gradient=_ZERO_STATE,
    ),
    "kerasblocks>LSTMCell": BlockSpec(
        lambda: L.LSTMCell(4),
        (3, 5),
        ((3, 4), [(3, 4), (3, 4)]),
        allow_no_gradient=_ZERO_STATE,
    ),
    "kerasblocks>BahdanauDecoder": BlockSpec(
        lambda: L.BahdanauDecoder(8, 2),
        [(2, 4, 3), (2, 5, 8)],
        (2, 4, 8),
    ),
    "kerasblocks>AppendContext": BlockSpec(
        lambda: L.AppendContext(), [(2, 4, 3), (2, 5)], (2, 4, 8)
    ),
    "kerasblocks>CheckTokenIds": BlockSpec(
        lambda: L.CheckTokenIds(10, max_length=8),
        (2, 5),
        (2, 5),
        input_dtype="int32",
    ),
    "kerasblocks>PaddingMask": BlockSpec(
        lambda: L.PaddingMask(0, num_prefix_tokens=1),
        (2, 5),
        (2, 6),
        input_dtype="int32",
    ),
    "kerasblocks>OneHot": BlockSpec(
        lambda: L.OneHot(10), (2, 5), (2, 5, 10), input_dtype="int32"
    ),
}

_ZOO_MODEL = "a zoo model: tests/zoo/test_conformance.py runs it by name"

EXCUSED = {
    "zoo>RNNLanguageModel": _ZOO_MODEL,
    "zoo>Seq2Seq": _ZOO_MODEL,
    "zoo>Transformer": _ZOO_MODEL,
    "zoo>TransformerLM": _ZOO_MODEL,
    "zoo>TransformerEncoderClassifier": _ZOO_MODEL,
}
