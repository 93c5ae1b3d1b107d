"""Fetching keras.applications' ImageNet weights (`weights="imagenet"`).

The files, their URLs and hashes are keras.applications' own (the table
in `zoo._download_table`, checked against the installed Keras by the
tests). A file is fetched the way keras.applications fetches it:
`keras.utils.get_file` (with its progress bar) into Keras's cache,
`$KERAS_HOME/models`. Around it this module adds what Keras lacks:

- atomic writes: the download goes to a temporary name in the cache
  directory and is renamed once complete and verified, so an interrupted
  or corrupt download leaves nothing behind, and the error is one line;
- `ZOO_WEIGHTS_MIRROR=URL`: the scheme and host of Keras's URL (and any
  path prefix of the mirror) replace Keras's, the path is kept;
- `ZOO_OFFLINE=1`: the network is never used; a file missing from the
  cache is one line naming the file and where to put it;
- files for which Keras publishes no hash (MobileNet, MobileNetV2): the
  SHA-256 of the first file stored is recorded beside it
  (`<file>.sha256`, in `sha256sum` format) and every later load is
  checked against it;
- nothing in Keras is patched, so threads may create models at once (one
  download per file and process; the others wait for it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import keras

from kerasblocks._keras_compat import backend_config, file_utils
from zoo._download_table import WeightsFile, imagenet_file

MIRROR_ENV = "ZOO_WEIGHTS_MIRROR"
OFFLINE_ENV = "ZOO_OFFLINE"

logger = logging.getLogger("zoo.download")
# The trainer quiets the "zoo" logger while it builds a model (it prints
# the load report itself); a recorded hash must still be announced.
logger.setLevel(logging.INFO)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class PretrainedWeightsError(ValueError):
    """Pretrained weights cannot be found, verified or applied."""


def offline() -> bool:
    """Whether `ZOO_OFFLINE` forbids the network.

    Example:

    >>> import os
    >>> saved = os.environ.get("ZOO_OFFLINE")
    >>> os.environ["ZOO_OFFLINE"] = "0"
    >>> offline()
    False
    >>> os.environ["ZOO_OFFLINE"] = "1"
    >>> offline()
    True
    >>> if saved is not None:
    ...     os.environ["ZOO_OFFLINE"] = saved
    ... else:
    ...     del os.environ["ZOO_OFFLINE"]
    """
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise PretrainedWeightsError(
            f"{OFFLINE_ENV}={value!r}: use 1 (never download) or 0."
        )
    return value in _TRUE


def mirrored(origin: str) -> str:
    """`origin` as `ZOO_WEIGHTS_MIRROR` maps it: the mirror's scheme,
    host and path prefix, then `origin`'s path.

    Example:

    >>> import os
    >>> saved = os.environ.get("ZOO_WEIGHTS_MIRROR")
    >>> os.environ["ZOO_WEIGHTS_MIRROR"] = "https://mirror.example/keras"
    >>> mirrored("https://storage.googleapis.com/tensorflow/a/b.h5")
    'https://mirror.example/keras/tensorflow/a/b.h5'
    >>> if saved is not None:
    ...     os.environ["ZOO_WEIGHTS_MIRROR"] = saved
    ... else:
    ...     del os.environ["ZOO_WEIGHTS_MIRROR"]
    """
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return origin
    parts = urllib.parse.urlsplit(mirror)
    if (
        parts.scheme not in ("http", "https", "file")
        or (parts.scheme != "file" and not parts.netloc)
        or parts.query
        or parts.fragment
    ):
        raise PretrainedWeightsError(
            f"{MIRROR_ENV}={mirror!r} is not a mirror URL: use "
            "http(s)://HOST[:PORT][/PREFIX] or file:///DIRECTORY"
        )
    path = urllib.parse.urlsplit(origin).path
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + path, "", "")
    )


def cache_dir() -> str:
    """Keras's cache directory for weights, `$KERAS_HOME/models` (read
    now, so a KERAS_HOME set after Keras was imported counts), falling
    back to /tmp/.keras/models as `keras.utils.get_file` does when the
    base is not writable.

    Example:

    >>> os.path.basename(cache_dir())
    'models'
    """
    base = os.path.expanduser(
        os.environ.get("KERAS_HOME") or backend_config.keras_home()
    )
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    return os.path.join(base, "models")


def sha256_of(path: str) -> str:
    """The SHA-256 hex digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def imagenet_weights(
    model_name: str, keras_application: str, keras_args: Mapping[str, Any]
) -> str:
    """The path of the verified ImageNet weights file that
    `keras.applications.<keras_application>(weights="imagenet",
    **keras_args)` would load, downloaded into Keras's cache if absent.

    Args:
        model_name: the zoo model, named in messages.
        keras_application: a keras.applications constructor name.
        keras_args: its arguments under Keras's names (`include_top`,
            `input_shape`, `alpha`, `minimalistic`, ...).

    Raises:
        PretrainedWeightsError: no such ImageNet file, or it cannot be
            fetched or verified (one line, nothing left in the cache).

    Example:

    >>> import os, tempfile
    >>> saved = dict(os.environ)
    >>> os.environ["KERAS_HOME"] = tempfile.mkdtemp()
    >>> os.environ["ZOO_OFFLINE"] = "1"
    >>> imagenet_weights("resnet50", "ResNet50", {"include_top": False})
    Traceback (most recent call last):
    ...
    zoo._download.PretrainedWeightsError: resnet50: ZOO_OFFLINE=1 and ...
    >>> os.environ.clear(); os.environ.update(saved)
    """
    try:
        file = imagenet_file(keras_application, keras_args)
    except ValueError as error:
        raise PretrainedWeightsError(f"{model_name}: {error}") from None
    return fetch(model_name, file)


# One download per cache file at a time in this process: a second
# thread waits and then finds the file verified in the cache.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(path, threading.Lock())


def fetch(model_name: str, file: WeightsFile) -> str:
    """The path of `file` in Keras's cache, verified; downloaded (unless
    offline) when absent. See the module docstring."""
    directory = cache_dir()
    path = os.path.join(directory, file.fname)
    with _lock_for(path):
        try:
            if os.path.exists(path):
                if _cached_file_is_good(model_name, file, path):
                    return path
            elif offline():
                raise PretrainedWeightsError(
                    f"{model_name}: {OFFLINE_ENV}=1 and {file.fname} is not "
                    "in Keras's cache: place the file from "
                    f"{mirrored(file.origin)} at {path}"
                )
            _download(model_name, file, path)
        except OSError as error:
            # An unreadable file or a cache directory we cannot write.
            raise PretrainedWeightsError(
                f"{model_name}: Keras's cache at {directory}: {error}"
            ) from None
    return path


def _recorded(path: str) -> str | None:
    try:
        with open(path + ".sha256", encoding="utf-8") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def _record(path: str, digest: str) -> None:
    """Writes `<path>.sha256` atomically (sha256sum's format)."""
    fd, partial = tempfile.mkstemp(
        dir=os.path.dirname(path), prefix=".sha256.", suffix=".part"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{digest}  {os.path.basename(path)}\n")
        os.replace(partial, path + ".sha256")
    except BaseException:
        _remove(partial)
        raise


def _cached_file_is_good(model_name: str, file: WeightsFile, path: str):
    """True when the cached file verifies; False when it must be
    downloaded again (a published hash that does not match, online)."""
    if file.file_hash is not None:
        if file_utils.validate_file(path, file.file_hash):
            return True
        if offline():
            raise PretrainedWeightsError(
                f"{model_name}: {path} does not match the hash "
                f"keras.applications publishes ({file.file_hash}) and "
                f"{OFFLINE_ENV}=1: replace it with the file from "
                f"{mirrored(file.origin)}"
            )
        logger.warning(
            "%s: %s does not match the hash keras.applications publishes "
            "(%s); downloading it again",
            model_name,
            path,
            file.file_hash,
        )
        return False
    digest = sha256_of(path)
    recorded = _recorded(path)
    if recorded is None:
        # A file the user placed (or a cache filled by Keras itself).
        _record(path, digest)
        logger.warning(
            "%s: keras.applications publishes no hash for %s; recorded the "
            "SHA-256 of the file found at %s (%s) in %s.sha256: from now "
            "on only a file with this SHA-256 is accepted",
            model_name,
            file.fname,
            path,
            digest,
            path,
        )
    elif recorded != digest:
        raise PretrainedWeightsError(
            f"{model_name}: {path} has SHA-256 {digest}, not the {recorded} "
            f"recorded in {path}.sha256 when it was stored; delete both "
            "files to download it again"
        )
    else:
        logger.info(
            "%s: %s matches the SHA-256 recorded in %s.sha256",
            model_name,
            path,
            path,
        )
    return True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _download(model_name: str, file: WeightsFile, path: str) -> None:
    """Downloads `file` through `keras.utils.get_file` to a temporary
    name beside `path`, verifies it, then renames it to `path`."""
    url = mirrored(file.origin)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, partial = tempfile.mkstemp(
        dir=directory, prefix=f".{file.fname}.", suffix=".part"
    )
    os.close(fd)
    nothing = f"nothing was written to {directory}"
    try:
        try:
            keras.utils.get_file(
                os.path.basename(partial),
                url,
                cache_subdir=os.path.basename(directory),
                cache_dir=os.path.dirname(directory),
                force_download=True,
            )
        except Exception as error:  # get_file raises bare Exceptions.
            reason = str(error).strip().splitlines()
            raise PretrainedWeightsError(
                f"{model_name}: downloading {file.fname} from {url} failed "
                f"({reason[0] if reason else type(error).__name__}); "
                f"{nothing}"
            ) from None
        if file.file_hash is not None:
            if not file_utils.validate_file(partial, file.file_hash):
                raise PretrainedWeightsError(
                    f"{model_name}: the file downloaded from {url} does not "
                    "match the hash keras.applications publishes for "
                    f"{file.fname} ({file.file_hash}); {nothing}"
                )
        else:
            digest = sha256_of(partial)
            _record(path, digest)
            logger.warning(
                "%s: keras.applications publishes no hash for %s; recorded "
                "the SHA-256 of the file downloaded from %s (%s) in "
                "%s.sha256: later loads accept only a file with this SHA-256",
                model_name,
                file.fname,
                url,
                digest,
                path,
            )
        os.replace(partial, path)
    except BaseException:
        _remove(partial)
        raise
