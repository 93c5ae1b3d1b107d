"""What the zoo's Transformers (`zoo.transformer`) share: the size
checks, the book's token input (embedding scaled by `sqrt(hidden_dim)`
plus the sinusoidal encoding), stacks of blocks named `{prefix}block_i`
and the optional final layer norm of pre-norm stacks, put together by
`stack_layers`.

Layers are built into a dict by name, then called by name, so that a
model and its incremental decoder use the same layers.
"""

from __future__ import annotations

import math

import keras

import kerasblocks as kb
from zoo._sequence import positive_int

L = kb.layers


def check_sizes(vocab_size, max_length, hidden_dim, num_heads, mlp_dim, layers):
    """Raises a ValueError naming the first size that is not a positive
    int, or `num_heads` when it does not divide `hidden_dim`."""
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


def embedding_layers(prefix, vocab_size, max_length, hidden_dim, dropout_rate):
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


def embed(layers, prefix, ids, start_index=0):
    """Runs `ids` through the `embedding_layers` of `prefix`."""
    x = layers[f"{prefix}embedding"](ids)
    x = layers[f"{prefix}scale"](x)
    return layers[f"{prefix}position"](x, start_index=start_index)


def blocks(cls, prefix, count, hidden_dim, num_heads, mlp_dim, **kwargs):
    """`count` blocks of class `cls`, named `{prefix}block_{i}`."""
    return {
        f"{prefix}block_{i}": cls(
            hidden_dim, num_heads, mlp_dim, name=f"{prefix}block_{i}", **kwargs
        )
        for i in range(count)
    }


def final_norm(layers, name, x):
    """`x` through the layer `name`, if the model has one (pre-norm)."""
    return layers[name](x) if name in layers else x


def norm_layer(name, norm_first, epsilon=1e-5):
    """The final layer norm of a pre-norm stack (none for post-norm)."""
    if not norm_first:
        return {}
    return {name: keras.layers.LayerNormalization(epsilon=epsilon, name=name)}


def stack_layers(
    block,
    prefix,
    *,
    check,
    mask,
    norm,
    vocab_size,
    max_length,
    hidden_dim,
    num_heads,
    mlp_dim,
    num_layers,
    pad_id,
    dropout_rate,
    norm_first,
    **block_options,
):
    """The layers of one stack over token ids, in the order they run:
    the id check and padding mask (named `check` and `mask`), the
    `embedding_layers` of `prefix`, `num_layers` `block`s (taking
    `block_options`) and, pre-norm, the final norm `norm`."""
    return {
        check: L.CheckTokenIds(vocab_size, max_length=max_length, name=check),
        mask: L.PaddingMask(pad_id, name=mask),
        **embedding_layers(
            prefix, vocab_size, max_length, hidden_dim, dropout_rate
        ),
        **blocks(
            block,
            prefix,
            num_layers,
            hidden_dim,
            num_heads,
            mlp_dim,
            dropout_rate=dropout_rate,
            norm_first=norm_first,
            **block_options,
        ),
        **norm_layer(norm, norm_first),
    }
