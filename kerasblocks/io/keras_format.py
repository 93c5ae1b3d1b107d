"""The native `.keras` format: Keras's own archive, plus our guarantees.

Keras's saving library (`saving_lib`) writes and reads the archive, so
everything Keras saves (weights, assets such as vocabularies, optimizer
and metric state, compile config) comes back exactly as in Keras. Around
it this module adds:

- atomic writes, and a manifest (SHA-256 of each member) plus a checksum
  of the whole file in the archive comment; a directory (`zipped=False`)
  gets the manifest of every file;
- before anything is inflated: the archive's declared sizes against the
  `limits`, its member names, and its config against the safety
  allow-list (`kerasblocks.io.safety`), read as data;
- tied layers (`kerasblocks.io._tied`): the config is rewritten in a
  copy of the archive before Keras reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from typing import Any

import h5py
import keras

from kerasblocks._keras_compat import saving_lib
from kerasblocks.io import _integrity, _tied, limits, safety
from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError

MANIFEST = "kerasblocks_manifest.json"
MANIFEST_VERSION = 1
# kerasblocks_image.json: an image model's convention
# (`kerasblocks.io.image_metadata`), read as data.
_MEMBERS = (
    "config.json",
    "metadata.json",
    "model.weights.h5",
    MANIFEST,
    "kerasblocks_image.json",
)


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__


def _manifest(digests: dict[str, str]) -> dict:
    return {
        "format_version": MANIFEST_VERSION,
        "keras_version": keras.__version__,
        "tensorflow_version": _tf_version(),
        "sha256": digests,
    }


def _finish_archive(path: str, orders) -> None:
    """Writes the tie-preserving config (if needed) and the manifest."""
    if orders:
        with zipfile.ZipFile(path) as source:
            members = {name: source.read(name) for name in source.namelist()}
        config = json.loads(members["config.json"])
        members["config.json"] = json.dumps(
            _tied.expand(config, orders)
        ).encode("utf-8")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            for name, data in members.items():
                target.writestr(name, data)
    with zipfile.ZipFile(path, "a") as archive:
        digests = {
            name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist()
        }
        archive.writestr(MANIFEST, json.dumps(_manifest(digests), indent=1))
        archive.comment = _integrity.zip_placeholder_comment()
    _integrity.seal_zip(path)


def save(model: keras.Model, target: Any, zipped: bool = True) -> None:
    """Saves `model` to a `.keras` path, a file object, or (unzipped) a
    directory; atomically for paths."""
    orders = _tied.sequential_orders(model)
    if isinstance(target, io.IOBase):
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "model.keras")
            saving_lib.save_model(model, path)
            _finish_archive(path, orders)
            with open(path, "rb") as f:
                shutil.copyfileobj(f, target)
        return
    target = os.fspath(target)
    if not zipped:
        with atomic_path(target) as temporary:
            saving_lib.save_model(model, temporary, zipped=False)
            if orders:
                config_path = os.path.join(temporary, "config.json")
                with open(config_path) as f:
                    config = _tied.expand(json.load(f), orders)
                with open(config_path, "w") as f:
                    json.dump(config, f)
            _integrity.seal_directory(temporary, _manifest({}))
        return
    with atomic_path(target, suffix=".keras") as temporary:
        saving_lib.save_model(model, temporary)
        _finish_archive(temporary, orders)


def _read_member(archive, name: str, where) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
        raise CorruptFileError(where, f"cannot read {name} ({error})") from None


def _checked_config(
    archive, where, trusted: bool, custom_objects, found
) -> dict:
    names = archive.namelist()
    found = list(found) + safety.archive_member_problems(names, _MEMBERS)
    if "config.json" not in names:
        raise CorruptFileError(where, "the archive has no config.json")
    if MANIFEST in names:
        try:
            manifest = json.loads(_read_member(archive, MANIFEST, where))
        except ValueError as error:
            raise CorruptFileError(
                where, f"unreadable manifest ({error})"
            ) from None
        for member, digest in manifest.get("sha256", {}).items():
            if member not in names:
                raise CorruptFileError(where, f"{member} is missing")
            data = _read_member(archive, member, where)
            if hashlib.sha256(data).hexdigest() != digest:
                raise CorruptFileError(where, f"checksum mismatch in {member}")
    if "model.weights.h5" in names:
        data = _read_member(archive, "model.weights.h5", where)
        try:
            with h5py.File(io.BytesIO(data), "r") as weights:
                found += safety.h5_problems(weights, len(data))
        except OSError as error:
            raise CorruptFileError(
                where, f"unreadable model.weights.h5 ({error})"
            ) from None
    try:
        config = json.loads(_read_member(archive, "config.json", where))
    except ValueError as error:
        raise CorruptFileError(
            where, f"unreadable config.json ({error})"
        ) from None
    return safety.gate(where, config, trusted, found, custom_objects)


def _with_config(archive, config: dict) -> io.BytesIO:
    """A copy of the archive with `config.json` replaced."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "config.json":
                data = json.dumps(config).encode("utf-8")
            target.writestr(info, data)
    buffer.seek(0)
    return buffer


def _directory_as_archive(directory: str, config: dict) -> io.BytesIO:
    """A `zipped=False` directory as an in-memory archive with its
    `config.json` replaced (Keras reads a directory's config from disk,
    which a load must not rewrite)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for root, _, files in os.walk(directory):
            for name in sorted(files):
                path = os.path.join(root, name)
                member = os.path.relpath(path, directory)
                member = member.replace(os.sep, "/")
                if member == "config.json":
                    target.writestr(member, json.dumps(config))
                else:
                    target.write(path, member)
    buffer.seek(0)
    return buffer


def load(
    source: Any,
    *,
    custom_objects=None,
    compile: bool = True,
    safe_mode: bool = True,
    trusted: bool = False,
    resource_limits: limits.Limits | None = None,
) -> keras.Model:
    """Loads a `.keras` archive (path or file object), checked first."""
    where = getattr(source, "name", None) or "<file object>"
    if isinstance(source, io.IOBase):
        opened = contextlib.nullcontext(source)
    else:
        where = source = os.fspath(source)
        _integrity.verify_zip(source)
        opened = open(source, "rb")
    with opened as f:
        try:
            archive = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError) as error:
            raise CorruptFileError(
                where, f"not a readable .keras archive ({error})"
            ) from None
        with archive:
            limits.check_archive(archive, where, resource_limits)
            original = json.loads(_read_member(archive, "config.json", where))
            config = _checked_config(
                archive, where, trusted, custom_objects, ()
            )
            if config != original:
                f = _with_config(archive, config)
            else:
                f.seek(0)
            return saving_lib.load_model(
                f,
                custom_objects=custom_objects,
                compile=compile,
                safe_mode=safe_mode and not trusted,
            )


def load_directory(
    directory: str,
    *,
    custom_objects=None,
    compile: bool = True,
    safe_mode: bool = True,
    trusted: bool = False,
) -> keras.Model:
    """Loads a model saved with `zipped=False`, checked first."""
    _integrity.verify_directory(directory)
    with open(os.path.join(directory, "config.json")) as f:
        original = json.load(f)
    found = []
    weights = os.path.join(directory, "model.weights.h5")
    if os.path.exists(weights):
        with h5py.File(weights, "r") as h5:
            found = safety.h5_problems(h5, os.path.getsize(weights))
    config = safety.gate(directory, original, trusted, found, custom_objects)
    source = directory
    if config != original:  # tied layers: Keras reads the config we route
        source = _directory_as_archive(directory, config)
    return saving_lib.load_model(
        source,
        custom_objects=custom_objects,
        compile=compile,
        safe_mode=safe_mode and not trusted,
    )
