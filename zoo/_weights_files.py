"""What a weights file holds, read from its structure alone (no value
is read, no code runs): its model config, whether it is Keras's legacy
layer layout, and its layers' weight shapes."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import h5py

from kerasblocks.io import keras_weights
from kerasblocks.io.limits import DEFAULT as _LIMITS


def model_config(path: str) -> dict | None:
    """The model config a `.keras` or whole-model `.h5` carries."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
            return None if config is None else json.loads(config)
    except (OSError, KeyError, ValueError):
        return None


def is_zoo_model(config: dict) -> bool:
    names = (config.get("registered_name") or "", config.get("class_name"))
    return any(str(n).startswith("zoo>") for n in names) or str(
        config.get("module", "")
    ).startswith("zoo")


def legacy_group(f: h5py.File):
    """The group of a legacy HDF5 file that holds its layers."""
    if "layer_names" in f.attrs:
        return f
    group = f.get("model_weights")
    if isinstance(group, h5py.Group) and "layer_names" in group.attrs:
        return group
    return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def layer_shapes(path: str, entries: dict[str, str]) -> dict | None:
    """Layer name -> its weight shapes, for a file whose layers are a
    flat functional model's (a keras.applications model's): the legacy
    HDF5 layout (by layer name), or Keras 3's `.weights.h5` and `.keras`
    (by entry, named after each layer's class and position: `entries`
    maps them to layer names). None for any other file."""
    if os.path.isdir(path):
        return None
    if keras_weights.is_keras_weights(path):
        return _by_layer(keras_weights.file_layout(path), entries)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            try:
                member = archive.getinfo("model.weights.h5")
            except KeyError:
                return None
            if member.file_size > _LIMITS.max_bytes:
                return None  # kerasblocks.io refuses it with the reason
            data = io.BytesIO(archive.read(member))
        with h5py.File(data, "r") as f:
            return _by_layer(keras_weights.h5_layout(f), entries)
    try:
        with h5py.File(path, "r") as f:
            group = legacy_group(f)
            if group is None:
                return None
            shapes = {}
            for name in map(_text, group.attrs["layer_names"]):
                layer = group[name]
                weights = [_text(w) for w in layer.attrs["weight_names"]]
                if weights:
                    shapes[name] = [tuple(layer[w].shape) for w in weights]
            return shapes
    except (OSError, KeyError):
        return None


def _by_layer(layout: dict, entries: dict[str, str]) -> dict:
    """Keras 3 entries as layer name -> shapes (an entry the reference
    model does not have keeps its own path, and matches no layer)."""
    return {
        entries.get(entry, entry): [
            keys[k] for k in sorted(keys, key=_key_order)
        ]
        for entry, keys in layout.items()
    }


def _key_order(key: str):
    return (0, int(key)) if key.isdigit() else (1, key)


_COUNTER = re.compile(r"_\d+$")


def canonical(names) -> list[str]:
    """Names without Keras's counters, numbered by order of appearance."""
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        base = _COUNTER.sub("", name)
        keys.append(f"{base}#{seen.get(base, 0)}")
        seen[base] = seen.get(base, 0) + 1
    return keys


def is_legacy_layout(path: str) -> bool:
    """An HDF5 file in Keras's legacy layer layout (weights or model)."""
    if os.path.isdir(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return legacy_group(f) is not None
    except OSError:
        return False


def is_legacy_weights(path: str) -> bool:
    """A legacy HDF5 file of layer weights with no model config (the
    layout of keras.applications' own files)."""
    try:
        with h5py.File(path, "r") as f:
            return "layer_names" in f.attrs and "model_config" not in f.attrs
    except OSError:
        return False
