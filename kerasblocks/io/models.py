"""Saving and loading whole models: `.keras`, legacy `.h5`, SavedModel.

On top of Keras's own formats this adds:

- atomic writes (a crash mid-save leaves the old file intact);
- integrity: a `.keras` archive carries a manifest (format version,
  Keras/TF versions, SHA-256 of each member) and a checksum of the whole
  file in its comment; an `.h5` file carries a checksum of itself in its
  HDF5 user block; a SavedModel directory a manifest of every file. Any
  damage raises `CorruptFileError` naming the file and the problem;
- safe loading by default: anything that would run code or reach
  outside the file (a Lambda, an unregistered or non-Keras class or
  function, a file reference, an archive member escaping the archive, an
  HDF5 external link, a dataset larger than its file, a SavedModel op
  that reads or writes files) is refused with `UnsafeModelError` before
  anything is built, unless `trusted=True`;
- tied layers stay tied: a `keras.Sequential` holding one layer twice,
  which Keras 3.15 saves but cannot load, comes back with one layer used
  twice (and one set of variables).
"""

from __future__ import annotations

import io
import os
from typing import Any

import keras
from absl import logging

from kerasblocks._keras_compat import io_utils
from kerasblocks.io import _specs, _tied, h5_format, keras_format
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError
from kerasblocks.io.limits import Limits
from kerasblocks.io.saved_model import export_saved_model, load_saved_model

# Kept importable from here (TiedSequential is a registered class).
TiedSequential = _tied.TiedSequential
MANIFEST = keras_format.MANIFEST


class ModelFileNotFoundError(FileNotFoundError, ValueError):
    """No model at the path (a `FileNotFoundError`, and the `ValueError`
    that Keras raises)."""


# Keras's own words (its tests match them), so that a user sees the same
# advice whichever API saved the file.
_LEGACY_H5_WARNING = (
    "You are saving your model as an HDF5 file via "
    "`model.save()` or `keras.saving.save_model(model)`. "
    "This file format is considered legacy. "
    "We recommend using instead the native Keras format, "
    "e.g. `model.save('my_model.keras')` or "
    "`keras.saving.save_model(model, 'my_model.keras')`. "
)


def _format_of(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".keras"):
        return "keras"
    if lowered.endswith((".h5", ".hdf5")):
        return "h5"
    if os.path.isdir(path) and os.path.exists(
        os.path.join(path, "config.json")
    ):
        return "keras_dir"
    if os.path.isdir(path) or not os.path.splitext(path)[1]:
        return "saved_model"
    raise ValueError(
        f"{path}: unknown model format. File format not supported (Invalid "
        "filepath extension for saving): use a path ending in '.keras' or "
        "'.h5', or a directory (SavedModel)."
    )


def _save_format_argument(filepath, kwargs: dict) -> None:
    """Keras's deprecated `save_format`: a warning with a suffix Keras
    knows, an error otherwise; any other keyword is an error."""
    save_format = kwargs.pop("save_format", False)
    if save_format:
        if str(filepath).endswith((".h5", ".hdf5", ".keras")):
            logging.warning(
                "The `save_format` argument is deprecated in Keras 3; the "
                "format follows the file path. Received: save_format=%s",
                save_format,
            )
        else:
            raise ValueError(
                "The `save_format` argument is deprecated in Keras 3. "
                "Please remove this argument and pass a file path with "
                f"either `.keras` or `.h5` extension. "
                f"Received: save_format={save_format}"
            )
    if kwargs:
        raise ValueError(
            "The following argument(s) are not supported: "
            f"{list(kwargs.keys())}"
        )


def save_model(
    model: keras.Model,
    filepath: Any,
    overwrite: bool = True,
    zipped: bool | None = None,
    *,
    include_optimizer: bool = True,
    **kwargs,
) -> None:
    """Saves a model to `.keras`, legacy `.h5` or a SavedModel, atomically.

    Accepts what `keras.saving.save_model` accepts (a path or a file
    object, `overwrite`, `zipped`, `include_optimizer`); a path with no
    suffix, or a directory, is exported as a SavedModel
    (`export_saved_model`) that reloads as Keras.

    Args:
        model: a Keras model (built, except for `.keras`).
        filepath: ends in `.keras`, `.h5` (or `.hdf5`); a writable
            binary file object (`.keras` format); or a directory.
        overwrite: when False and the file exists, ask on the terminal.
        zipped: False writes the `.keras` content as a directory.
        include_optimizer: for `.h5`, also save the optimizer state of a
            compiled model (`.keras` always includes it).
        **kwargs: Keras's deprecated `save_format` only.

    Example:

    >>> import os, tempfile, keras, kerasblocks
    >>> net = kerasblocks.SequentialBlock(keras.layers.Dense(3))
    >>> _ = kerasblocks.materialize(net, (None, 4))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.keras")
    >>> kerasblocks.io.save_model(net, path)
    >>> type(kerasblocks.io.load_model(path)).__name__
    'SequentialBlock'
    """
    _save_format_argument(filepath, kwargs)
    if str(filepath).endswith((".h5", ".hdf5")):
        logging.warning(_LEGACY_H5_WARNING)
    if isinstance(filepath, io.IOBase):
        keras_format.save(model, filepath)
        return
    path = os.fspath(filepath)
    if os.path.exists(path) and not overwrite:
        if not io_utils.ask_to_proceed_with_overwrite(path):
            return
    if zipped is False:
        if path.endswith(".keras"):
            raise ValueError(
                "When using `zipped=False`, the `filepath` argument should "
                f"not end in `.keras`. Received: filepath={path}"
            )
        keras_format.save(model, path, zipped=False)
        return
    kind = _format_of(path)
    if kind == "keras":
        keras_format.save(model, path)
        return
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built; build it (e.g. "
            "kerasblocks.materialize(model, input_shape)) before saving."
        )
    if kind in ("saved_model", "keras_dir"):
        export_saved_model(model, path)
        return
    orders = _tied.sequential_orders(model)
    with atomic_path(path, suffix=".h5") as temporary:
        h5_format.save(model, temporary, include_optimizer, orders)


def load_model(
    filepath: Any,
    custom_objects: dict | None = None,
    compile: bool = True,
    safe_mode: bool = True,
    *,
    trusted: bool = False,
    limits: Limits | None = None,
) -> keras.Model:
    """Loads a `.keras`, `.h5` or SavedModel model, safely unless trusted.

    Accepts what `keras.saving.load_model` accepts. A SavedModel written
    by `export_saved_model` comes back as the original Keras model: same
    class, config and weights, trainable.

    Args:
        filepath: the file, a readable binary file object (`.keras`), a
            directory saved with `zipped=False`, or a SavedModel
            directory.
        custom_objects: classes and functions the file may name, by
            name; these are allowed by the safety checks because the
            caller named them.
        compile: restore the training configuration if one was saved.
        safe_mode: Keras's flag; False allows code in the file (Lambda
            layers) and so implies `trusted=True`.
        trusted: allow files that would run code or reach outside the
            file (Lambda layers, unregistered classes, non-Keras
            functions, file references, file-reading ops). Only for files
            you trust. Integrity checks and `limits` apply either way.
        limits: the `kerasblocks.io.Limits` on what an archive may
            inflate to (default 4 GiB, 10,000 members), checked before
            anything is inflated.

    Raises:
        FileNotFoundError: no such file (also a ValueError, as in Keras).
        CorruptFileError: the file is damaged or not a model file.
        UnsafeModelError: the file would run code and `trusted` is False.
        ResourceLimitError: the file exceeds `limits`.
    """
    model = _load(filepath, custom_objects, compile, safe_mode, trusted, limits)
    _specs.call_on_recorded_spec(model)
    return model


def _load(filepath, custom_objects, compile, safe_mode, trusted, limits):
    """`load_model` by format, before the restored model is called."""
    trusted = trusted or not safe_mode
    options = dict(
        custom_objects=custom_objects,
        compile=compile,
        safe_mode=safe_mode,
        trusted=trusted,
    )
    if isinstance(filepath, io.IOBase):
        return keras_format.load(filepath, resource_limits=limits, **options)
    path = os.fspath(filepath)
    kind = _format_of(path)
    if not os.path.exists(path):
        raise ModelFileNotFoundError(
            f"{path}: no such file (File not found: filepath={path})"
        )
    if kind == "keras_dir":
        return keras_format.load_directory(path, **options)
    if kind == "saved_model":
        if not os.path.isdir(path):
            raise CorruptFileError(path, "not a SavedModel directory")
        return load_saved_model(
            path,
            trusted=trusted,
            compile=compile,
            custom_objects=custom_objects,
        )
    if kind == "keras":
        return keras_format.load(path, resource_limits=limits, **options)
    return h5_format.load(path, **options)
