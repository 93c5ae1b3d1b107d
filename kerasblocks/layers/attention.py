"""Attention, as in the book's chapter "Attention Mechanisms and
Transformers": this module gathers the chapter's attention layers under
the path they had before it was split by concept.

- `kerasblocks.layers.attention_scoring`: the attention masks, masked
  softmax, scaled dot-product and additive attention, and the input and
  mask conventions all of them share;
- `kerasblocks.layers.multi_head_attention`: multi-head attention and
  its key/value cache.

Registered names (`kerasblocks>MultiHeadAttention`, ...) did not change,
so files saved before the split load as they did.
"""

# Private helpers that other modules imported from here before the split.
from kerasblocks._validation import positive_int as _positive_int  # noqa: F401
from kerasblocks._validation import rate as _validated_rate
from kerasblocks.layers._checks import checked as _checked  # noqa: F401
from kerasblocks.layers._checks import dim as _dim  # noqa: F401
from kerasblocks.layers.attention_scoring import (
    AdditiveAttention as AdditiveAttention,
)
from kerasblocks.layers.attention_scoring import (
    DotProductAttention as DotProductAttention,
)
from kerasblocks.layers.attention_scoring import MaskedSoftmax as MaskedSoftmax
from kerasblocks.layers.attention_scoring import _is_shape as _is_shape
from kerasblocks.layers.attention_scoring import (
    build_attention_mask as build_attention_mask,
)
from kerasblocks.layers.attention_scoring import causal_mask as causal_mask
from kerasblocks.layers.attention_scoring import (
    masked_softmax as masked_softmax,
)
from kerasblocks.layers.attention_scoring import unpack_qkv as unpack_qkv
from kerasblocks.layers.multi_head_attention import (
    MultiHeadAttention as MultiHeadAttention,
)
from kerasblocks.layers.multi_head_attention import (
    _write_cache as _write_cache,
)


def _rate(value) -> float:
    """The dropout-rate check other modules imported from here."""
    return _validated_rate("dropout_rate", value)
