"""Tied layers that reload tied: one layer used twice in a Sequential.

Keras 3.15's `Sequential.get_config` lists each layer once, so a model
that uses one layer twice saves but cannot load ("expected 2
variables"). On save, the full layer order is written back into the
config; on load, such a config is routed to `TiedSequential`, which
rebuilds it with one shared layer. Used by every format.
"""

from __future__ import annotations

from typing import Any

import keras

from kerasblocks import _keras_compat
from kerasblocks._keras_compat import legacy_saving_utils
from kerasblocks._registry import register


def sequential_orders(model) -> dict[tuple[str, ...], list[str]]:
    """For each Sequential that uses a layer twice, its layer order.

    Keras's `Sequential.get_config` lists each layer once, which loses
    the second use; the order is written back into the saved config.
    Keys are the chain of layer names from the model down.
    """
    orders = {}

    def visit(layer, prefix):
        here = (*prefix, layer.name)
        if isinstance(layer, keras.Sequential):
            names = [sub.name for sub in layer.layers]
            if len(names) != len(set(names)):
                orders[here] = names
        children = _keras_compat.flatten_layers(
            layer, include_self=False, recursive=False
        )
        for child in children:
            visit(child, here)

    visit(model, ())
    return orders


def expand(config, orders, prefix=()):
    """Rewrites the layer lists of the Sequentials in `orders`."""
    if isinstance(config, list):
        return [expand(v, orders, prefix) for v in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if "class_name" in config and isinstance(inner, dict) and "name" in inner:
        here = (*prefix, inner["name"])
        inner = {k: expand(v, orders, here) for k, v in inner.items()}
        if config["class_name"] == "Sequential" and here in orders:
            layers = inner["layers"]
            by_name = {layer["config"]["name"]: layer for layer in layers}
            heads = [x for x in layers if x["class_name"] == "InputLayer"]
            inner["layers"] = heads + [by_name[n] for n in orders[here]]
        return {**config, "config": inner}
    return {k: expand(v, orders, prefix) for k, v in config.items()}


def mark(config: Any) -> Any:
    """Routes each Sequential config that repeats a layer to the loader
    that rebuilds it with one shared layer."""
    if isinstance(config, list):
        return [mark(v) for v in config]
    if not isinstance(config, dict):
        return config
    config = {k: mark(v) for k, v in config.items()}
    if config.get("class_name") == "Sequential" and isinstance(
        config.get("config"), dict
    ):
        names = [
            layer.get("config", {}).get("name")
            for layer in config["config"].get("layers", [])
            if isinstance(layer, dict)
        ]
        if len(names) != len(set(names)):
            config["class_name"] = "kerasblocks>TiedSequential"
            config["registered_name"] = "kerasblocks>TiedSequential"
            config["module"] = None
    return config


@register()
class TiedSequential(keras.Sequential):
    """Loader for a `keras.Sequential` that uses one layer several times.

    Only its `from_config` is used: it returns a plain `keras.Sequential`
    in which each repeated layer name is one shared layer.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = keras.Sequential(name=config["name"])
        by_name: dict[str, keras.layers.Layer] = {}
        for layer_config in config["layers"]:
            name = layer_config.get("config", {}).get("name")
            if name not in by_name:
                if "module" in layer_config:
                    layer = keras.saving.deserialize_keras_object(
                        layer_config, custom_objects=custom_objects
                    )
                else:  # the legacy (.h5) config style
                    layer = legacy_saving_utils.model_from_config(
                        layer_config, custom_objects=custom_objects
                    )
                by_name[name] = layer
            model.add(by_name[name])
        shape = config.get("build_input_shape")
        if not _keras_compat.sequential_is_graph(model) and isinstance(
            shape, (tuple, list)
        ):
            model.build(shape)
        return model
