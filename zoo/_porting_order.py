"""keras.applications layers that have no name of their own.

Some keras.applications families (Inception-v3, Inception-ResNet-v2,
Xception's shortcuts) leave most layers unnamed, so Keras names them
after their class with a counter: `conv2d`, `conv2d_1`, ... . The
counter is global to the session, but it grows in the order the layers
were created, which is the only identity those layers have. A porter
pairs them, in that order, with the zoo layers built in the same order.
"""

from __future__ import annotations

import re

import keras


def auto_named_layers(keras_model: keras.Model, prefix: str) -> list[str]:
    """Names of the layers of `keras_model` that Keras named `prefix`,
    `prefix_1`, `prefix_2`, ..., in the order they were created.

    Args:
        keras_model: the keras.applications model.
        prefix: the snake-case class name Keras names them after (e.g.
            "conv2d", "batch_normalization").
    """
    pattern = re.compile(rf"{re.escape(prefix)}(?:_(\d+))?")
    found = []
    for layer in keras_model.layers:
        match = pattern.fullmatch(layer.name)
        if match is not None:
            found.append((int(match.group(1) or 0), layer.name))
    return [name for _, name in sorted(found)]
