"""Every private Keras name this project touches, in one place.

Keras's public API does not expose everything this project needs (the
archive library, the legacy HDF5 writer, the export archive, symbolic
shape inference, the Functional class, automatic layer names), so those
are imported here and nowhere else; and the private attributes of Keras
layers and models this project reads (`PRIVATE_ATTRIBUTES`) are read
here, each by a small named function (`flatten_layers(layer)`, ...).
`setup.cfg` pins keras below the next minor release; upgrading Keras
means reviewing this file and its test
(`tests/kerasblocks/test_keras_compat.py`), which lists every name and
fails when a private Keras name is used anywhere else.

`kerasblocks.io` calls Keras's saving functions through these module
references, never through `keras.saving.*` or `Model.save`: those public
names may be re-pointed at `kerasblocks.io` by a caller (our own test of
Keras's suites does exactly that).
"""

from __future__ import annotations

import contextlib
import types

import keras
from keras.src import backend
from keras.src.backend import config as backend_config
from keras.src.export import export_utils, tf2onnx_lib
from keras.src.export import saved_model as export_lib
from keras.src.legacy.saving import json_utils as legacy_json_utils
from keras.src.legacy.saving import legacy_h5_format
from keras.src.legacy.saving import saving_options as legacy_saving_options
from keras.src.legacy.saving import saving_utils as legacy_saving_utils
from keras.src.models import functional as models_functional
from keras.src.saving import saving_api, saving_lib, serialization_lib
from keras.src.utils import file_utils, io_utils, naming

# Module-level names of keras.src used by kerasblocks; the test imports
# each and checks the attributes below exist.
MODULES = {
    "backend": "keras.src.backend",
    "backend_config": "keras.src.backend.config",
    "file_utils": "keras.src.utils.file_utils",
    "models_functional": "keras.src.models.functional",
    "naming": "keras.src.utils.naming",
    "export_lib": "keras.src.export.saved_model",
    "export_utils": "keras.src.export.export_utils",
    # numpy 2 fixes for tf2onnx, applied in the ONNX conversion child.
    "tf2onnx_lib": "keras.src.export.tf2onnx_lib",
    "legacy_json_utils": "keras.src.legacy.saving.json_utils",
    "legacy_h5_format": "keras.src.legacy.saving.legacy_h5_format",
    "legacy_saving_options": "keras.src.legacy.saving.saving_options",
    "legacy_saving_utils": "keras.src.legacy.saving.saving_utils",
    "saving_api": "keras.src.saving.saving_api",
    "saving_lib": "keras.src.saving.saving_lib",
    "serialization_lib": "keras.src.saving.serialization_lib",
    "io_utils": "keras.src.utils.io_utils",
}
# The attributes of those modules that kerasblocks uses.
ATTRIBUTES = {
    "backend": ("compute_output_spec",),
    # zoo._download finds Keras's cache directory as get_file does and
    # checks keras.applications' published hashes with Keras's function.
    "backend_config": ("keras_home",),
    "file_utils": ("get_file", "validate_file"),
    "models_functional": ("Functional",),
    "naming": ("auto_name",),
    "export_lib": ("ExportArchive", "DEFAULT_ENDPOINT_NAME"),
    "export_utils": ("get_input_signature", "make_tf_tensor_spec"),
    "tf2onnx_lib": ("patch_tf2onnx",),
    "legacy_json_utils": ("get_json_type",),
    "legacy_h5_format": (
        "save_weights_to_hdf5_group",
        "save_optimizer_weights_to_hdf5_group",
        "load_weights_from_hdf5_group",
        "load_optimizer_weights_from_hdf5_group",
        "load_model_from_hdf5",
        "save_model_to_hdf5",
    ),
    "legacy_saving_options": ("keras_option_scope",),
    "legacy_saving_utils": ("model_metadata", "model_from_config"),
    "saving_api": ("save_model", "load_model", "save_weights", "load_weights"),
    "saving_lib": (
        "save_model",
        "load_model",
        "save_weights_only",
        "load_weights_only",
        "_reject_zip_bomb",
        "_reject_zip_extract_bomb",
        "_save_state",
        "H5IOStore",
    ),
    "serialization_lib": ("SafeModeScope",),
    "io_utils": ("ask_to_proceed_with_overwrite",),
}

# Models whose inputs Keras records as a graph (export needs no call).
GRAPH_MODELS = (models_functional.Functional, keras.Sequential)

# Private attributes of Keras layers and models that this project reads,
# each through one function below; nothing else in kerasblocks, zoo or
# tools reads them (the test checks both, and that each still exists).
PRIVATE_ATTRIBUTES = (
    "_call_has_training_arg",
    "_called",
    "_compile_config",
    "_flatten_layers",
    "_functional",
    "_inbound_nodes",
    "_inputs_struct",
    "_layers",
    "_nodes_by_depth",
    "_non_trainable_variables",
    "_trainable_variables",
)


@contextlib.contextmanager
def compile_config_kept(model):
    """Puts `model`'s compile config back as it was after the block.

    Keras 3.15's legacy HDF5 metadata (`saving_utils.model_metadata`)
    pops "optimizer" from the model's own compile config, so after an
    `.h5` save the model's `get_compile_config()` has no optimizer, and a
    later export of it records a compile config that rebuilds the wrong
    optimizer (RMSprop, Keras's default).
    """
    holder = getattr(model, "_compile_config", None)
    config = getattr(holder, "config", None)
    # A shallow copy: Keras only removes a key (its values are the
    # model's own optimizer and loss objects).
    kept = dict(config) if isinstance(config, dict) else None
    try:
        yield
    finally:
        if kept is not None:
            holder.config.clear()
            holder.config.update(kept)


def flatten_layers(
    layer, include_self: bool = True, recursive: bool = True
) -> list:
    """`layer` and its sublayers, each once, as Keras tracks them (an
    object that is not a layer has none)."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is None:
        return [layer] if include_self else []
    return list(flatten(include_self=include_self, recursive=recursive))


def tracked_layers(layer) -> list:
    """The direct sublayers Keras tracks on `layer`, in creation order."""
    return list(getattr(layer, "_layers", []))


def nodes_by_depth(layer) -> dict | None:
    """A Functional model's graph nodes by depth (None for others)."""
    return getattr(layer, "_nodes_by_depth", None)


def inbound_nodes(layer) -> list:
    """The nodes at which `layer` was called in a graph."""
    return list(getattr(layer, "_inbound_nodes", []))


def inputs_struct(model):
    """A Functional model's inputs in the structure it was built with
    (a dict keeps its keys), or None."""
    return getattr(model, "_inputs_struct", None)


def call_has_training_arg(layer) -> bool:
    """Whether `layer.call` takes a `training` argument."""
    return bool(getattr(layer, "_call_has_training_arg", False))


def was_called(layer) -> bool:
    """Whether `layer` was ever called (Keras's export requires it of a
    subclassed model)."""
    return bool(getattr(layer, "_called", False))


def sequential_is_graph(model: keras.Sequential) -> bool:
    """Whether a Sequential already holds its Functional graph (it was
    built from an input shape)."""
    return bool(model._functional)


def legacy_weights_view(model, layers: list):
    """`model` as Keras's legacy HDF5 writer and reader read it, with the
    given `layers` (each once)."""
    return types.SimpleNamespace(
        layers=layers,
        weights=model.weights,
        _trainable_variables=model._trainable_variables,
        _non_trainable_variables=model._non_trainable_variables,
    )


class _LayoutRecorder(saving_lib.H5IOStore):
    """A weights store that records which variables Keras would write
    under which entry, and writes nothing."""

    def __init__(self):  # no file: nothing is written
        self.entries: dict[str, dict] = {}

    def __bool__(self):
        return True

    def make(self, path, metadata=None):
        return self.entries.setdefault(path, {})


def weights_layout(model, objects_to_skip=None) -> dict[str, dict]:
    """Keras's `.weights.h5` layout of `model`: entry path (`""` for the
    model's own) -> {key: variable} stored there, as `model.save_weights`
    would write them (nothing is copied)."""
    recorder = _LayoutRecorder()
    visited = {id(o) for o in objects_to_skip or ()}
    saving_lib._save_state(
        model,
        weights_store=recorder,
        assets_store=None,
        inner_path="",
        visited_saveables=visited,
    )
    return {path: entry for path, entry in recorder.entries.items() if entry}


__all__ = [
    "ATTRIBUTES",
    "GRAPH_MODELS",
    "PRIVATE_ATTRIBUTES",
    "call_has_training_arg",
    "flatten_layers",
    "inbound_nodes",
    "inputs_struct",
    "legacy_weights_view",
    "nodes_by_depth",
    "sequential_is_graph",
    "tracked_layers",
    "MODULES",
    "backend",
    "backend_config",
    "file_utils",
    "models_functional",
    "naming",
    "export_lib",
    "export_utils",
    "tf2onnx_lib",
    "io_utils",
    "legacy_h5_format",
    "legacy_json_utils",
    "legacy_saving_options",
    "legacy_saving_utils",
    "saving_api",
    "saving_lib",
    "serialization_lib",
    "was_called",
    "weights_layout",
]
