"""What the LiteRT and ONNX runners share: one loaded runtime per file,
kept while the file is unchanged, and inputs matched to the file's input
names."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

import numpy as np

_CACHE_SIZE = 4


class FileCache:
    """The last few runtimes built from files, each reused while its file
    is unchanged (same path, modification time and size): building one
    costs more than running a small batch."""

    def __init__(self, size: int = _CACHE_SIZE):
        self._size = size
        self._items: collections.OrderedDict = collections.OrderedDict()

    def get(self, path: str, build: Callable[[str], Any]) -> Any:
        """The runtime of `path`, built with `build(path)` when missing."""
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        item = build(path)
        self._items[key] = item
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return item


def by_name(inputs: Any, names: list[str], path: str) -> dict:
    """Inputs keyed by the file's input names: a dict as given; a single
    array, or a list in the order of `names`."""
    if isinstance(inputs, dict):
        missing = sorted(set(names) - set(inputs))
        if missing:
            raise ValueError(f"{path} takes inputs {names}; missing {missing}.")
        return {n: inputs[n] for n in names}
    values = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if len(values) != len(names):
        raise ValueError(
            f"{path} takes {len(names)} inputs ({', '.join(names)}). "
            f"Received {len(values)}."
        )
    return dict(zip(names, values, strict=True))


def outputs(values: list[np.ndarray]):
    """One array for a single-output file, else the list."""
    return values[0] if len(values) == 1 else values
