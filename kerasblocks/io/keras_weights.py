"""Keras's own weights files (`.weights.h5`, sharded `.weights.json`).

Written and read by Keras's saving library, so a file is exactly what
`model.save_weights` writes and `model.load_weights` reads. Added: the
write is atomic (for shards, every shard is in place before the index
that names them), and on load every HDF5 file is checked as data first
(no links to other files, no dataset declaring more than the limits).
Integrity checksums are not added: Keras creates these HDF5 files itself,
with no user block to hold one; use `kerasblocks.io.save_weights` with
any other file name for a checksummed file.
"""

from __future__ import annotations

import json
import os
import tempfile

import h5py

from kerasblocks._keras_compat import saving_lib
from kerasblocks.io import limits as io_limits
from kerasblocks.io import safety
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError, UnsafeModelError

SUFFIXES = (".weights.h5", ".weights.json")


def is_keras_weights(path) -> bool:
    return str(path).endswith(SUFFIXES)


def save(model, path: str, max_shard_size=None, objects_to_skip=None) -> None:
    """Saves like `keras.saving.save_weights`, atomically."""
    if max_shard_size is None:
        with atomic_path(path, suffix=".weights.h5") as temporary:
            saving_lib.save_weights_only(
                model, temporary, objects_to_skip=objects_to_skip
            )
        return
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        saving_lib.save_weights_only(
            model,
            os.path.join(scratch, base),
            max_shard_size,
            objects_to_skip=objects_to_skip,
        )
        names = sorted(os.listdir(scratch), key=lambda n: n == base)
        for name in names:  # the index last
            os.replace(
                os.path.join(scratch, name), os.path.join(directory, name)
            )


def _h5_files(path: str) -> list[str]:
    if not path.endswith(".weights.json"):
        return [path]
    try:
        with open(path) as f:
            index = json.load(f)
    except (OSError, ValueError) as error:
        raise CorruptFileError(path, f"unreadable index ({error})") from None
    directory = os.path.dirname(path)
    shards = set()

    def visit(value):
        if isinstance(value, str) and value.endswith(".weights.h5"):
            shards.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(index)
    files = []
    for shard in sorted(shards):
        if os.path.basename(shard) != shard:
            raise UnsafeModelError(
                path, [f"shard {shard!r} points outside the directory"]
            )
        files.append(os.path.join(directory, shard))
    return files


def check(path: str, limits: io_limits.Limits | None = None) -> None:
    """Refuses HDF5 files that reach other files or declare too much."""
    limits = limits or io_limits.DEFAULT
    problems = []
    for name in _h5_files(path):
        if not os.path.exists(name):
            continue  # Keras says which shard is missing
        try:
            with h5py.File(name, "r") as f:
                size = min(os.path.getsize(name), limits.max_bytes)
                problems += safety.h5_problems(f, size)
        except OSError as error:
            raise CorruptFileError(
                name, f"not a readable HDF5 weights file ({error})"
            ) from None
    if problems:
        raise UnsafeModelError(path, problems)


def load(
    model,
    path: str,
    skip_mismatch: bool = False,
    objects_to_skip=None,
    limits: io_limits.Limits | None = None,
) -> None:
    """Loads like `keras.saving.load_weights`, checked first."""
    check(path, limits)
    saving_lib.load_weights_only(
        model,
        path,
        skip_mismatch=skip_mismatch,
        objects_to_skip=objects_to_skip,
    )
