"""Keras's own weights files (`.weights.h5`, sharded `.weights.json`).

Written and read by Keras's saving library, so a file holds exactly what
`model.save_weights` writes and `model.load_weights` reads. Added: the
write is atomic (a sharded save that fails, or is killed, leaves the
previous index and shards in place: see `_save_sharded`); each HDF5 file
is copied into one with a user block holding its checksum (HDF5, and so
Keras, ignores the block); and on load every HDF5 file is verified and
checked as data first (no links to other files, no dataset declaring more
than the limits).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import warnings

import h5py
import keras

from kerasblocks._keras_compat import saving_lib, weights_layout
from kerasblocks.io import _integrity, safety
from kerasblocks.io import limits as io_limits
from kerasblocks.io._atomic import (
    atomic_path,
    fsync_one,
    fsync_tree,
    stale_siblings,
    temporary_sibling,
)
from kerasblocks.io._specs import relative_path
from kerasblocks.io.errors import CorruptFileError, UnsafeModelError
from kerasblocks.io.report import LoadReport, refuse_mismatch
from kerasblocks.params import unique_variables

SUFFIXES = (".weights.h5", ".weights.json")


def is_keras_weights(path) -> bool:
    return str(path).endswith(SUFFIXES)


def _sealed_copy(source: str, target: str) -> None:
    """`source` copied into a new HDF5 file with a user block, sealed."""
    with (
        h5py.File(source, "r") as f,
        h5py.File(target, "w", userblock_size=_integrity.USERBLOCK_SIZE) as g,
    ):
        for key, value in f.attrs.items():
            g.attrs[key] = value
        for name in f:
            f.copy(f[name], g, name=name)
    _integrity.seal_h5(target)


def save(model, path: str, max_shard_size=None, objects_to_skip=None) -> None:
    """Saves like `keras.saving.save_weights`, atomically and sealed."""
    if max_shard_size is None:
        with (
            atomic_path(path, suffix=".weights.h5") as temporary,
            tempfile.TemporaryDirectory() as scratch,
        ):
            raw = os.path.join(scratch, "raw.weights.h5")
            saving_lib.save_weights_only(
                model, raw, objects_to_skip=objects_to_skip
            )
            _sealed_copy(raw, temporary)
        return
    _save_sharded(model, os.path.abspath(path), max_shard_size, objects_to_skip)


def _save_sharded(model, path: str, max_shard_size, objects_to_skip) -> None:
    """A sharded save that never leaves a mix of two saves behind.

    Keras's reader opens its shards by fixed names (`<name>_00000...`),
    so a new set cannot sit beside the old one under other names. The new
    files are written and sealed in a scratch directory beside the index
    (named for this process, `.<index>.kbtmp-<pid>-...`); then the old
    index is moved into it first, the old shards after it, the new shards
    in, and the new index last. The index is therefore in place only
    while the directory holds one whole set. On an exception the old
    files are moved back; after a kill, the next save or load of the
    same index finds the dead process's scratch and does the same
    (`recover_interrupted_save`).
    """
    directory, base = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    recover_interrupted_save(path)
    try:
        previous = {os.path.basename(f) for f in _h5_files(path)}
    except (CorruptFileError, UnsafeModelError, OSError):
        previous = set()  # an unreadable index names no shard to keep
    scratch = temporary_sibling(path)
    os.mkdir(scratch)
    try:
        raw, new, old = (os.path.join(scratch, n) for n in _SCRATCH)
        for folder in (raw, new, old):
            os.mkdir(folder)
        saving_lib.save_weights_only(
            model,
            os.path.join(raw, base),
            max_shard_size,
            objects_to_skip=objects_to_skip,
        )
        names = sorted(os.listdir(raw), key=lambda n: n == base)
        for name in names:  # the index last
            if name == base:
                os.replace(os.path.join(raw, name), os.path.join(new, name))
            else:
                _sealed_copy(os.path.join(raw, name), os.path.join(new, name))
        fsync_tree(new)
        aside = sorted(
            (
                name
                for name in previous | set(names)
                if os.path.isfile(os.path.join(directory, name))
            ),
            key=lambda n: n != base,  # the old index first
        )
        try:
            for name in aside:
                _move(os.path.join(directory, name), os.path.join(old, name))
            for name in names:
                _move(os.path.join(new, name), os.path.join(directory, name))
        except BaseException:
            _roll_back(directory, scratch, names)
            raise
        fsync_one(directory)
    finally:
        _discard(scratch)


def _move(source: str, target: str) -> None:
    os.replace(source, target)


def _discard(scratch: str) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


# The scratch directory's parts: Keras's output, the sealed new set, and
# the previous set moved aside.
_SCRATCH = ("raw", "new", "old")


def _roll_back(directory: str, scratch: str, names) -> None:
    """Puts the previous set (in `scratch/old`) back in place of any of
    the new files `names` already moved into `directory`."""
    new, old = os.path.join(scratch, "new"), os.path.join(scratch, "old")
    for name in names:
        if not os.path.exists(os.path.join(new, name)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))
    for name in os.listdir(old):
        os.replace(os.path.join(old, name), os.path.join(directory, name))
    fsync_one(directory)


def recover_interrupted_save(path: str) -> None:
    """Undoes a sharded save of `path` that a killed process left midway.

    Its scratch directory (of a process no longer running) holds the
    previous set under `old/`. With the index in place, the directory
    already holds one whole set, and the scratch is only removed;
    without it, the previous set is moved back.
    """
    directory, base = os.path.split(os.path.abspath(path))
    for scratch in stale_siblings(path):
        new = os.path.join(scratch, "new")
        if not os.path.exists(os.path.join(directory, base)) and os.path.isdir(
            os.path.join(scratch, "old")
        ):
            names = os.listdir(new) if os.path.isdir(new) else []
            moved = []
            try:
                with open(os.path.join(new, base)) as f:
                    index = json.load(f)
                moved = _shard_names(index)
            except (OSError, ValueError):
                pass
            _roll_back(directory, scratch, sorted(set(moved) - set(names)))
        _discard(scratch)


def _shard_names(index) -> list[str]:
    """The shard file names a sharded index names, sorted."""
    return sorted(
        {
            value
            for value in safety.nested_values(index)
            if isinstance(value, str) and value.endswith(".weights.h5")
        }
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
    files = []
    for shard in _shard_names(index):
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
        _integrity.verify_h5(name)
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


def h5_layout(f: h5py.File) -> dict[str, dict[str, tuple]]:
    """The entries of an open Keras weights HDF5 file: entry path (`""`
    for the model's own) -> {key: shape}, from the structure alone."""
    layout: dict[str, dict[str, tuple]] = {}

    def visit(key, item):
        if not isinstance(item, h5py.Dataset):
            return
        group, _, dataset = key.rpartition("/")
        entry, _, tail = group.rpartition("/")
        if group == "vars":
            layout.setdefault("", {})[dataset] = tuple(item.shape)
        elif tail == "vars":
            layout.setdefault(entry, {})[dataset] = tuple(item.shape)

    f.visititems(visit)
    return layout


def file_layout(path: str) -> dict[str, dict[str, tuple]]:
    """`h5_layout` of a (possibly sharded) Keras weights file."""
    layout: dict[str, dict[str, tuple]] = {}
    for name in _h5_files(path):
        if not os.path.exists(name):
            raise CorruptFileError(path, f"the shard {name} is missing")
        with h5py.File(name, "r") as f:
            for entry, keys in h5_layout(f).items():
                layout.setdefault(entry, {}).update(keys)
    return layout


def match(model, path: str, objects_to_skip=None) -> LoadReport:
    """What loading Keras's weights file `path` into `model` would do:
    Keras's own layout of the model (the entries `save_weights` writes)
    against the file's, by entry and key, without reading a value.

    A layer whose entry does not match as a whole is not loaded by Keras
    (`skip_mismatch=True` skips it): its variables are reported as
    missing or mismatched, never as loaded. Entries Keras reads its own
    way (an optimizer's, a layer's that stores other than variables) are
    left to Keras and not reported."""
    return _match(model, path, objects_to_skip)[0]


def _match(model, path: str, objects_to_skip=None):
    """`match`, and the model paths whose whole entry the file lacks
    (Keras may still find those under another attribute name)."""
    stored = file_layout(path)
    report, absent = LoadReport(), []
    for entry, variables in weights_layout(model, objects_to_skip).items():
        if entry not in stored:
            absent += [relative_path(model, v) for v in variables.values()]
        held = dict(stored.pop(entry, {}))
        if entry.split("/", 1)[0] == "optimizer" or not all(
            isinstance(v, keras.Variable) for v in variables.values()
        ):
            continue
        whole, names = True, []
        for key, variable in variables.items():
            name = relative_path(model, variable)
            shape = held.pop(key, None)
            if shape is None:
                report.missing.append(name)
                whole = False
            elif shape != tuple(variable.shape):
                report.mismatched.append((name, shape, tuple(variable.shape)))
                whole = False
            else:
                names.append(name)
        report.unexpected += [f"{entry}/vars/{key}" for key in held]
        if whole and not held:
            report.loaded += names
        else:
            report.missing += names
    for entry, held in stored.items():
        if entry.split("/", 1)[0] != "optimizer":
            report.unexpected += [f"{entry}/vars/{key}" for key in held]
    return report, absent


def load(
    model,
    path: str,
    skip_mismatch: bool = False,
    objects_to_skip=None,
    limits: io_limits.Limits | None = None,
) -> None:
    """Loads like `keras.saving.load_weights`, checked first."""
    if path.endswith(".weights.json"):
        recover_interrupted_save(path)
    check(path, limits)
    saving_lib.load_weights_only(
        model,
        path,
        skip_mismatch=skip_mismatch,
        objects_to_skip=objects_to_skip,
    )


def load_matched(model, path, strict, objects_to_skip, limits):
    """Keras's weights file, matched first: a strict load that would
    not load everything raises before anything is assigned (Keras's own
    error would list tensor values, and assign what it could)."""
    if not model.built or not os.path.exists(path):
        # Keras's own words for these.
        load(model, path, not strict, objects_to_skip, limits)
        return LoadReport(
            loaded=[relative_path(model, v) for v in unique_variables(model)]
        )
    if path.endswith(".weights.json"):
        recover_interrupted_save(path)
    check(path, limits)
    report, absent = _match(model, path, objects_to_skip)
    only_absent = set(report.missing) <= set(absent)
    if strict and report.missing and only_absent and not report.mismatched:
        # Only whole entries are absent: Keras may find them under another
        # attribute name. Let Keras decide, and say it in our words.
        try:
            load(model, path, False, objects_to_skip, limits=limits)
        except ValueError:
            refuse_mismatch(model, path, _no_extra(report), strict)
            raise
        return LoadReport(
            loaded=[relative_path(model, v) for v in unique_variables(model)]
        )
    # Keras ignores what a file holds beyond the model: so do we, here.
    refuse_mismatch(model, path, _no_extra(report), strict)
    with warnings.catch_warnings():
        # The report says what was skipped, in fewer words.
        warnings.simplefilter("ignore")
        skip = bool(report.missing or report.mismatched)
        load(model, path, skip, objects_to_skip, limits=limits)
    return report


def _no_extra(report: LoadReport) -> LoadReport:
    return dataclasses.replace(report, unexpected=[])
