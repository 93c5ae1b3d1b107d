"""Saving and loading weights by variable path, strictly, with a report.

A weights file is HDF5: one dataset per distinct variable (a tied
variable is stored once) with its path relative to the model, its SHA-256,
and the model's input spec, so that an unbuilt model can be built from
the file before loading. Any file name works; no suffix is imposed.

Loading matches variables by relative path. Layers that Keras named
automatically (`dense_3` in one process, `dense_7` in another) are
matched by their name with the counter removed and their order, so a
fresh instance of the same architecture loads its twin's file. Nothing is
ever matched by position alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections import Counter
from typing import Any

import h5py
import keras
import numpy as np
import tensorflow as tf

from kerasblocks._keras_compat import io_utils
from kerasblocks.deferred import NotBuiltError, materialize
from kerasblocks.io import _integrity, keras_weights, safety
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io._specs import (
    build_like,
    finalize_state,
    input_spec_of,
    relative_path,
    spec_to_keras,
    state_outside_variables,
)
from kerasblocks.io.errors import (
    CorruptFileError,
    UnsafeModelError,
)
from kerasblocks.io.limits import Limits
from kerasblocks.io.models import ModelFileNotFoundError, load_model
from kerasblocks.io.report import LoadReport, refuse_mismatch
from kerasblocks.params import unique_variables

FORMAT = "kerasblocks.weights"
VERSION = 1


_COUNTER = re.compile(r"_\d+$")


def _canonical_keys(paths: list[str]) -> list[str]:
    """Paths with Keras's automatic name counters removed, numbered by
    order of appearance so that equal names stay distinct."""
    seen: Counter = Counter()
    keys = []
    for path in paths:
        base = "/".join(_COUNTER.sub("", part) for part in path.split("/"))
        keys.append(f"{base}#{seen[base]}")
        seen[base] += 1
    return keys


def save_weights(
    model: keras.layers.Layer,
    filepath: str | os.PathLike,
    overwrite: bool = True,
    max_shard_size: float | None = None,
    *,
    objects_to_skip=None,
) -> None:
    """Saves every distinct variable of `model` to `filepath` (any name).

    A name ending in `.weights.h5` (or `.weights.json`, with
    `max_shard_size`) gets Keras's own weights file, as
    `model.save_weights` writes it; any other name gets the checksummed
    kerasblocks format described above. The write is atomic: a failure
    leaves an existing file untouched.

    Args:
        model: a built model (or layer).
        filepath: the file.
        overwrite: when False and the file exists, ask on the terminal.
        max_shard_size: Keras's sharding, in GB (`.weights.json`).
        objects_to_skip: layers whose variables are not saved (Keras's
            format only).

    Example:

    >>> import os, tempfile, tensorflow as tf, kerasblocks
    >>> net = kerasblocks.layers.MLP()
    >>> x = tf.random.uniform((2, 20))
    >>> y = net(x)
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.params")
    >>> kerasblocks.io.save_weights(net, path)
    >>> clone = kerasblocks.layers.MLP()  # not built yet
    >>> kerasblocks.io.load_weights(clone, path).ok
    True
    >>> bool(tf.reduce_all(clone(x) == y))
    True
    """
    path = os.fspath(filepath)
    if os.path.exists(path) and not overwrite:
        if not io_utils.ask_to_proceed_with_overwrite(path):
            return
    if max_shard_size is not None or keras_weights.is_keras_weights(path):
        if max_shard_size is not None and not path.endswith(
            ("weights.h5", "weights.json")
        ):
            raise ValueError(
                "The filename must end in `.weights.json` when "
                f"`max_shard_size` is specified. Received: filepath={path}"
            )
        keras_weights.save(model, path, max_shard_size, objects_to_skip)
        return
    if objects_to_skip is not None:
        raise ValueError(
            "`objects_to_skip` needs Keras's format: a name ending in "
            f"'.weights.h5'. Received: filepath={path}"
        )
    if not model.built:
        raise ValueError(
            f"{type(model).__name__} '{model.name}' is not built; there are "
            "no weights to save yet."
        )
    outside = state_outside_variables(model)
    if outside:
        raise ValueError(
            f"{path}: layer '{outside[0]}' keeps a vocabulary, which a "
            "weights file cannot hold; save the model (save_model) instead."
        )
    variables = unique_variables(model)
    spec = input_spec_of(model)
    with atomic_path(path) as temporary:
        with h5py.File(
            temporary, "w", userblock_size=_integrity.USERBLOCK_SIZE
        ) as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["keras_version"] = keras.__version__
            f.attrs["tensorflow_version"] = tf.__version__
            f.attrs["model_class"] = type(model).__name__
            f.attrs["input_spec"] = json.dumps(spec)
            group = f.create_group("variables")
            for index, variable in enumerate(variables):
                value = _storable(keras.ops.convert_to_numpy(variable))
                dataset = group.create_dataset(f"{index:06d}", data=value)
                dataset.attrs["path"] = relative_path(model, variable)
                dataset.attrs["dtype"] = str(variable.dtype)
                dataset.attrs["sha256"] = _digest(value)
        _integrity.seal_h5(temporary)


def _storable(value) -> np.ndarray:
    """HDF5 has no bfloat16 (or other ml_dtypes) type: such values are
    stored as float32, which holds them exactly, and cast back on load
    from the dtype recorded beside them."""
    value = np.asarray(value)
    if value.dtype.kind == "V" or value.dtype.name in _WIDENED:
        return value.astype("float32")
    return value


_WIDENED = ("bfloat16", "float8_e4m3fn", "float8_e5m2")


def _digest(value: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()


@dataclasses.dataclass
class _Entry:
    path: str
    shape: tuple
    dataset: Any


def _read_entries(f: h5py.File, path: str) -> list[_Entry]:
    if f.attrs.get("format") != FORMAT:
        raise CorruptFileError(path, "not a kerasblocks weights file")
    if f.attrs.get("version") != VERSION:
        raise CorruptFileError(
            path, f"unsupported version {f.attrs.get('version')!r}"
        )
    group = f.get("variables")
    if not isinstance(group, h5py.Group):
        raise CorruptFileError(path, "the variables group is missing")
    entries = []
    for name in sorted(group):
        dataset = group[name]
        if not isinstance(dataset, h5py.Dataset):
            raise CorruptFileError(path, f"{name} is not a dataset")
        entries.append(
            _Entry(str(dataset.attrs["path"]), tuple(dataset.shape), dataset)
        )
    return entries


def _pair(model_paths: list[str], file_paths: list[str]):
    """Pairs model indices with file indices: exact path, then canonical."""
    pairs: dict[int, int] = {}
    by_path = {p: i for i, p in enumerate(file_paths)}
    for i, p in enumerate(model_paths):
        if p in by_path:
            pairs[i] = by_path.pop(p)
    rest_model = [i for i in range(len(model_paths)) if i not in pairs]
    rest_file = sorted(by_path.values())
    if rest_model and rest_file:
        model_keys = _canonical_keys([model_paths[i] for i in rest_model])
        file_keys = _canonical_keys([file_paths[j] for j in rest_file])
        by_key = dict(zip(file_keys, rest_file, strict=True))
        for i, key in zip(rest_model, model_keys, strict=True):
            if key in by_key:
                pairs[i] = by_key.pop(key)
    return pairs


def _kind_of(path: str) -> str:
    """ "kerasblocks" (a weights file), "model" (.keras/.h5/SavedModel)."""
    if os.path.isdir(path):
        return "model"
    with open(path, "rb") as f:
        head = f.read(_integrity.USERBLOCK_SIZE + 8)
    if head[:2] == b"PK":
        return "model"  # a .keras archive
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") == FORMAT:
                return "kerasblocks"
            if "model_config" in f.attrs:
                return "model"
    except OSError:
        return "kerasblocks"  # let the weights reader say what is wrong
    return "kerasblocks"


def _match(model, source_paths, source_shapes, path):
    """Pairs model variables with source entries; returns the report and
    the (variable, source index, model path) assignments."""
    variables = unique_variables(model)
    model_paths = [relative_path(model, v) for v in variables]
    pairs = _pair(model_paths, source_paths)
    report = LoadReport()
    assignments = []
    for i, variable in enumerate(variables):
        if i not in pairs:
            report.missing.append(model_paths[i])
            continue
        shape = source_shapes[pairs[i]]
        if shape != tuple(variable.shape):
            report.mismatched.append(
                (model_paths[i], shape, tuple(variable.shape))
            )
            continue
        assignments.append((variable, pairs[i], model_paths[i]))
    used = set(pairs.values())
    report.unexpected = [p for j, p in enumerate(source_paths) if j not in used]
    return report, assignments


def _check_arguments(path: str, objects_to_skip, by_name) -> None:
    """Keras's refusals of arguments a format cannot honour."""
    if objects_to_skip is not None and not keras_weights.is_keras_weights(path):
        raise ValueError(
            "`objects_to_skip` only supports loading '.weights.h5' files. "
            f"Received: {path}"
        )
    if by_name is not None and not path.endswith((".h5", ".hdf5")):
        raise ValueError(
            "`by_name` only supports loading legacy '.h5' or '.hdf5' "
            f"files. Received: {path}"
        )
    if by_name is not None and keras_weights.is_keras_weights(path):
        raise ValueError(
            "`by_name` only supports loading legacy '.h5' or '.hdf5' "
            f"files. Received: {path}"
        )


# The suffixes Keras's `load_weights` reads by name.
_KERAS_SUFFIXES = (".keras", ".weights.h5", ".weights.json", ".h5", ".hdf5")


def _missing_file_message(path: str) -> str:
    """What a missing file is called: with a name Keras would refuse,
    Keras's "File format not supported" first, then our words."""
    if path.endswith(_KERAS_SUFFIXES):
        return f"{path}: no such file"
    return (
        f"File format not supported: filepath={path}. There is no such "
        "file, and its name has none of the suffixes Keras reads "
        f"({', '.join(_KERAS_SUFFIXES)}); a kerasblocks weights file may "
        "have any name but must exist."
    )


def _assign(model, report, values):
    # Assign only once every value has been read and verified.
    for variable, value, model_path in values:
        variable.assign(value)
        report.loaded.append(model_path)
    finalize_state(model)
    return report


def load_weights(
    model: keras.layers.Layer,
    filepath: str | os.PathLike,
    skip_mismatch: bool = False,
    *,
    strict: bool | None = None,
    trusted: bool = False,
    objects_to_skip=None,
    limits: Limits | None = None,
    **kwargs,
) -> LoadReport:
    """Loads weights into `model` from any of the project's formats.

    `path` may be a weights file written by `save_weights`, or a whole
    model (`.keras`, `.h5`, SavedModel directory), whose weights are then
    taken by path. An unbuilt model is first built from the input spec
    recorded in a weights file. Each stored array is checked against its
    SHA-256.

    A Keras weights file (`.weights.h5`, sharded `.weights.json`) is
    read by Keras's own loader, after the safety checks.

    Args:
        model: the model to fill.
        filepath: the weights file or model.
        skip_mismatch: Keras's flag; True means `strict=False`.
        strict: when True, any missing, unexpected or misshapen variable
            raises `WeightsMismatchError` and nothing is assigned; when
            False, what matches is loaded and the report lists the rest.
            Defaults to `not skip_mismatch`.
        trusted: for a whole-model file, as in `load_model`.
        objects_to_skip: layers not to load (Keras's format only).
        limits: as in `load_model`.
        **kwargs: Keras's `by_name` (legacy `.h5` only: variables are
            matched by their names and paths in any case).

    Returns:
        A `LoadReport`.

    Raises:
        FileNotFoundError, CorruptFileError, UnsafeModelError,
        WeightsMismatchError, NotBuiltError (unbuilt model and no input
        spec in the file).
    """
    path = os.fspath(filepath)
    by_name = kwargs.pop("by_name", None)
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {kwargs}")
    _check_arguments(path, objects_to_skip, by_name)
    if strict is None:
        strict = not skip_mismatch
    if keras_weights.is_keras_weights(path):
        return keras_weights.load_matched(
            model, path, strict, objects_to_skip, limits
        )
    if not os.path.exists(path):
        raise ModelFileNotFoundError(_missing_file_message(path))
    if _kind_of(path) == "model":
        source = load_model(path, trusted=trusted, compile=False, limits=limits)
        sources = unique_variables(source)
        if not model.built:
            build_like(model, source)
        report, assignments = _match(
            model,
            [relative_path(source, v) for v in sources],
            [tuple(v.shape) for v in sources],
            path,
        )
        refuse_mismatch(model, path, report, strict)
        values = [(v, sources[j].numpy(), p) for v, j, p in assignments]
        return _assign(model, report, values)
    with _integrity.open_h5(path, "HDF5 weights file") as f:
        problems = safety.h5_problems(f, os.path.getsize(path))
        if problems:
            raise UnsafeModelError(path, problems)
        entries = _read_entries(f, path)
        if not model.built:
            spec = json.loads(f.attrs.get("input_spec", "null"))
            if spec is None:
                raise NotBuiltError(
                    f"{type(model).__name__} '{model.name}' is not built and "
                    f"{path} records no input spec; build it with "
                    "kerasblocks.materialize(model, input_shape) first."
                )
            materialize(model, spec_to_keras(spec))
        report, assignments = _match(
            model, [e.path for e in entries], [e.shape for e in entries], path
        )
        refuse_mismatch(model, path, report, strict)
        values = []
        for variable, index, model_path in assignments:
            entry = entries[index]
            try:
                value = entry.dataset[()]
            except OSError as error:
                raise CorruptFileError(
                    path, f"cannot read {entry.path} ({error})"
                ) from None
            if _digest(value) != entry.dataset.attrs.get("sha256"):
                raise CorruptFileError(
                    path, f"checksum mismatch in {entry.path}"
                )
            values.append((variable, value, model_path))
    return _assign(model, report, values)
