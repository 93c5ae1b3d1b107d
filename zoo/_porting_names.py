"""Pairing a zoo model's weights with a keras.applications model's by name.

`gather_sources(target, keras_model, locate)` returns the source list
that `zoo._porting.copy_weights` expects. `locate` maps each zoo weight
path (e.g. `"block_1/expand_bn/gamma"`) to where keras.applications
keeps it: the path of the owning layer (`"block_1_expand_BN"`), and the
weight's name there or its index in that layer's weights (for weights
that keras names automatically). A weight may also come with a function
that converts the source value to the zoo's layout (a transpose).

Pairing by name, not by position, makes a port independent of the order
in which either model lists its weights, and lets a failure say which
weight is missing or different: the first zoo weight (in the zoo's
order) without a source of its shape, or the first keras weight left
over, raises a ValueError naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

from kerasblocks.params import unique_variables

Location = tuple[str, "str | int"] | tuple[str, "str | int", Callable]
Locate = Callable[[str], Location]


@dataclasses.dataclass(frozen=True)
class ConvertedWeight:
    """A source weight's value converted to the zoo's layout."""

    path: str
    value: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


def _layer_path(variable) -> str:
    return variable.path.rsplit("/", 1)[0]


def gather_sources(
    target: keras.Model,
    keras_model: keras.Model,
    locate: Locate,
) -> list:
    """The keras variable for each unique variable of `target`, in order.

    Args:
        target: the zoo model.
        keras_model: the keras.applications model.
        locate: zoo variable path -> `(layer path, name or index)` or
            `(layer path, name or index, convert)` in `keras_model`.

    Raises:
        ValueError: a zoo weight has no source, a source of another
            shape, or a keras weight is left over; the message names the
            first such weight.
    """
    source_name = keras_model.name
    by_layer: dict[str, list] = {}
    for variable in unique_variables(keras_model):
        by_layer.setdefault(_layer_path(variable), []).append(variable)
    sources, used = [], set()
    for index, variable in enumerate(unique_variables(target)):
        location = locate(variable.path)
        layer_path, key = location[0], location[1]
        convert = location[2] if len(location) > 2 else None
        candidates = by_layer.get(layer_path, [])
        if isinstance(key, int):
            found = candidates[key] if key < len(candidates) else None
        else:
            found = next(
                (v for v in candidates if v.path.rsplit("/", 1)[1] == key),
                None,
            )
        if found is None:
            what = (
                f"weight {key!r} in layer {layer_path!r}"
                if candidates
                else f"layer {layer_path!r} with weights"
            )
            raise ValueError(
                f"Weight {index} does not match: zoo {variable.path} "
                f"{tuple(variable.shape)} has no source; {source_name} has "
                f"no {what}."
            )
        source = found
        if convert is not None:
            source = ConvertedWeight(found.path, convert(found.value))
        if tuple(source.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight {index} does not match: {source_name} "
                f"{found.path} has shape {tuple(source.shape)}, zoo "
                f"{variable.path} has shape {tuple(variable.shape)}."
            )
        used.add(id(found))
        sources.append(source)
    left = [v for v in unique_variables(keras_model) if id(v) not in used]
    if left:
        raise ValueError(
            f"Weight {left[0].path} {tuple(left[0].shape)} of "
            f"{source_name} has no place in the zoo model ({len(left)} "
            f"{source_name} weights left over)."
        )
    return sources
