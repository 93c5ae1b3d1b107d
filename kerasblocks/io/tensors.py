"""Saving and loading tensors, lists and dicts of tensors, with no pickle.

The book saves tensors with `np.save(..., allow_pickle=True)` and loads
them with pickle enabled, which runs code from the file. Here a file is a
zip archive of `.npy` arrays written and read with `allow_pickle=False`,
plus a JSON description of the structure and a SHA-256 of each array.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any

import ml_dtypes
import numpy as np
import tensorflow as tf

from kerasblocks.io import _integrity
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError

FORMAT = "kerasblocks.tensors"
VERSION = 1
_STRUCTURE = "structure.json"

# dtypes numpy cannot describe in a .npy header: stored as same-width
# unsigned integers, restored by name.
_EXTENDED = {
    "bfloat16": ml_dtypes.bfloat16,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
}
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32}


def _array_of(value: Any) -> tuple[np.ndarray, str, str]:
    """Returns (array, kind, dtype name) for a tensor-like leaf."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        kind = "tf"
        dtype = value.dtype.name
        array = value.numpy()
    elif hasattr(value, "value") and hasattr(value, "path"):  # keras.Variable
        kind = "tf"
        dtype = str(value.dtype)
        array = np.asarray(value.value)
    else:
        kind = "numpy"
        array = value
        dtype = array.dtype.name
    if dtype == "string":
        array = np.asarray(array, dtype=np.bytes_)
    elif array.dtype == object:
        raise TypeError("object arrays cannot be saved without pickle")
    return np.asarray(array), kind, dtype


def _encode(value: Any, where: str, arrays: list[np.ndarray]) -> dict:
    if value is None:
        return {"kind": "none"}
    if isinstance(value, bool):
        return {"kind": "bool", "value": value}
    if isinstance(value, int):
        return {"kind": "int", "value": value}
    if isinstance(value, float):
        return {"kind": "float", "value": repr(value)}
    if isinstance(value, str):
        return {"kind": "str", "value": value}
    if isinstance(value, (list, tuple)):
        return {
            "kind": type(value).__name__,
            "items": [
                _encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(value)
            ],
        }
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(
                    f"{where}: dict keys must be strings. Received: {key!r}"
                )
        return {
            "kind": "dict",
            "items": {
                k: _encode(v, f"{where}[{k!r}]", arrays)
                for k, v in value.items()
            },
        }
    is_variable = hasattr(value, "value") and hasattr(value, "path")
    if isinstance(value, (tf.Tensor, tf.Variable, np.ndarray, np.generic)) or (
        is_variable
    ):
        try:
            array, kind, dtype = _array_of(value)
        except TypeError as error:
            raise TypeError(f"{where}: {error}") from None
        if isinstance(value, np.generic):
            kind = "numpy_scalar"
        arrays.append(array)
        return {"kind": kind, "index": len(arrays) - 1, "dtype": dtype}
    raise TypeError(
        f"{where}: cannot save a {type(value).__name__}; expected tensors, "
        "arrays, numbers, strings, None, and lists/tuples/dicts of them."
    )


def save_tensors(path: str | os.PathLike, obj: Any) -> None:
    """Saves a tensor, or a nested list/tuple/dict of tensors, to `path`.

    Values, dtypes (bfloat16 included) and structure are kept; nothing is
    pickled. The write is atomic.

    Example:

    >>> import os, tempfile, tensorflow as tf, kerasblocks
    >>> path = os.path.join(tempfile.mkdtemp(), "xy")
    >>> kerasblocks.io.save_tensors(path, {"x": tf.range(4), "y": [1.5]})
    >>> loaded = kerasblocks.io.load_tensors(path)
    >>> loaded["x"].numpy().tolist(), loaded["y"]
    ([0, 1, 2, 3], [1.5])
    """
    arrays: list[np.ndarray] = []
    structure = _encode(obj, "obj", arrays)
    members = {}
    for index, array in enumerate(arrays):
        buffer = io.BytesIO()
        if any(array.dtype == dtype for dtype in _EXTENDED.values()):
            array = array.view(_UNSIGNED[array.dtype.itemsize])
        np.save(buffer, array, allow_pickle=False)
        members[f"arrays/{index}.npy"] = buffer.getvalue()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "structure": structure,
        "sha256": {
            name: hashlib.sha256(data).hexdigest()
            for name, data in members.items()
        },
    }
    with atomic_path(path) as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(_STRUCTURE, json.dumps(header))
            for name, data in members.items():
                archive.writestr(name, data)
            archive.comment = _integrity.zip_placeholder_comment()
        _integrity.seal_zip(temporary)


def _decode(node: Any, arrays: dict[int, np.ndarray], path: str) -> Any:
    if not isinstance(node, dict) or "kind" not in node:
        raise CorruptFileError(path, "malformed structure description")
    kind = node["kind"]
    if kind == "none":
        return None
    if kind in ("bool", "int", "str"):
        return node["value"]
    if kind == "float":
        return float(node["value"])
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays, path) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _decode(v, arrays, path) for k, v in node["items"].items()}
    if kind in ("tf", "numpy", "numpy_scalar"):
        index = node.get("index")
        if index not in arrays:
            raise CorruptFileError(path, f"array {index} is missing")
        array = arrays[index]
        dtype = node.get("dtype")
        if dtype in _EXTENDED:
            array = array.view(_EXTENDED[dtype])
        if kind == "tf":
            if dtype == "string":
                return tf.constant(array)
            return tf.convert_to_tensor(array, dtype=dtype)
        if kind == "numpy_scalar":
            return array[()]
        return array
    raise CorruptFileError(path, f"unknown entry kind {kind!r}")


def load_tensors(path: str | os.PathLike) -> Any:
    """Loads what `save_tensors` wrote, with the same structure and dtypes.

    Never unpickles. Raises `FileNotFoundError` for a missing path and
    `kerasblocks.io.CorruptFileError` for a damaged or foreign file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    _integrity.verify_zip(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(
                n != _STRUCTURE
                and not (n.startswith("arrays/") and ".." not in n)
                for n in names
            ):
                raise CorruptFileError(path, "unexpected archive members")
            header = json.loads(archive.read(_STRUCTURE))
            if header.get("format") != FORMAT:
                raise CorruptFileError(path, "not a kerasblocks tensors file")
            if header.get("version") != VERSION:
                raise CorruptFileError(
                    path, f"unsupported version {header.get('version')!r}"
                )
            arrays = {}
            for name, digest in header["sha256"].items():
                data = archive.read(name)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise CorruptFileError(path, f"checksum mismatch in {name}")
                index = int(name.split("/")[1].split(".")[0])
                arrays[index] = np.load(io.BytesIO(data), allow_pickle=False)
    except CorruptFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise CorruptFileError(
            path, f"not a readable tensors file ({type(e).__name__}: {e})"
        ) from None
    return _decode(header["structure"], arrays, path)
