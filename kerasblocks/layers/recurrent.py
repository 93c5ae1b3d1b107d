"""Recurrent layers: this module gathers, under the path they had before
it was split by concept,

- `kerasblocks.layers.rnn_cells`: the book's RNN, GRU and LSTM cells from
  scratch, with Keras's weight layout;
- `kerasblocks.layers.seq2seq`: the pieces of the book's RNN
  encoder-decoders (`BahdanauDecoder`, `AppendContext`).

Registered names (`kerasblocks>GRUCell`, ...) did not change, so files
saved before the split load as they did.
"""

# BahdanauDecoder's attention was importable from here too.
from kerasblocks.layers.attention_scoring import (
    AdditiveAttention as AdditiveAttention,
)
from kerasblocks.layers.rnn_cells import _CELL_EXAMPLE as _CELL_EXAMPLE
from kerasblocks.layers.rnn_cells import GRUCell as GRUCell
from kerasblocks.layers.rnn_cells import LSTMCell as LSTMCell
from kerasblocks.layers.rnn_cells import RNNCell as RNNCell
from kerasblocks.layers.rnn_cells import _Cell as _Cell
from kerasblocks.layers.rnn_cells import previous_states as _previous  # noqa: F401
from kerasblocks.layers.seq2seq import AppendContext as AppendContext
from kerasblocks.layers.seq2seq import BahdanauDecoder as BahdanauDecoder
